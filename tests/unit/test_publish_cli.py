"""``bus389 publish --dry-run`` on every example, and every kind of bad input named by line and field.

No broker: a dry run validates and encodes but never connects, and invalid input is refused before any
Kafka client is made (the bootstrap address below does not answer).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from bus389.agencies import Agency
from bus389.cli.main import cli
from bus389.producers.publisher import prepare_events
from bus389.producers.readers import read_records
from bus389.schemas.catalog import load_catalog

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The checkout this test runs from (examples, deploy files)."""

EXAMPLES = REPO_ROOT / "examples"

PUBLISHER_OF = {
    "suspect_seller": "police",
    "domain_block_request": "market_surveillance",
    "tax_discrepancy": "tax",
    "domain_block_result": "ict",
    "complaint": "industry_trade",
    "case_referral": "market_surveillance",
    "case_outcome": "market_surveillance",
    "periodic_report": "customs",
    "law_gap_proposal": "ict",
    "directive": "market_surveillance",
    "case_claim": "market_surveillance",
    "inspection_result": "ict",
    "compiled_report": "market_surveillance",
}
"""A plausible publisher for each example (any agency may publish any type)."""

NO_BROKER = {"BUS389_BOOTSTRAP": "127.0.0.1:1", "BUS389_TOPIC_PREFIX": "unit_no_broker"}


def _run(*args: str, input: str | bytes | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=NO_BROKER, input=input, catch_exceptions=False)


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_every_event_type_has_an_example() -> None:
    # routing_notice is the router's own: no agency publishes it, so it has no example.
    assert sorted(PUBLISHER_OF) == sorted(set(load_catalog().event_types()) - {"routing_notice"})
    for event_type in PUBLISHER_OF:
        assert 3 <= len(_lines(EXAMPLES / f"{event_type}.jsonl")) <= 5, event_type


@pytest.mark.parametrize("event_type", sorted(PUBLISHER_OF))
def test_dry_run_validates_every_example(event_type: str) -> None:
    path = EXAMPLES / f"{event_type}.jsonl"
    count = len(_lines(path))
    result = _run("publish", event_type, "--as", PUBLISHER_OF[event_type], "--file", str(path), "--dry-run")
    assert result.exit_code == 0, result.output
    assert f"dry run: {count} valid {event_type} events" in result.output
    assert f"unit_no_broker.outbox.{PUBLISHER_OF[event_type]}" in result.output


def test_dry_run_of_the_csv_example() -> None:
    path = EXAMPLES / "suspect_seller.csv"
    result = _run("publish", "suspect_seller", "--as", "tax", "--file", str(path), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "dry run: 3 valid suspect_seller events" in result.output


def test_dry_run_from_stdin() -> None:
    data = (EXAMPLES / "complaint.jsonl").read_bytes()
    result = _run(
        "publish",
        "complaint",
        "--as",
        "industry_trade",
        "--file",
        "-",
        "--format",
        "jsonl",
        "--dry-run",
        input=data,
    )
    assert result.exit_code == 0, result.output
    assert "dry run: 3 valid complaint events in <stdin>" in result.output


def test_examples_exercise_the_routing_conditions() -> None:
    def events(event_type: str) -> list[Any]:
        path = EXAMPLES / f"{event_type}.jsonl"
        agency = Agency(PUBLISHER_OF[event_type])
        return [o.event for o in prepare_events(event_type, agency, read_records(path))]

    sellers = events("suspect_seller")
    assert any(e.goods_imported for e in sellers)
    assert any(e.border_area for e in sellers)
    assert any(e.domains for e in sellers)
    assert {e.meta.sensitivity.value for t in PUBLISHER_OF for e in events(t)} >= {"RED", "CLEAR"}
    assert any(e.public for e in events("case_outcome"))
    assert any(e.estimated_tax_owed_vnd > 100_000_000 for e in events("tax_discrepancy"))
    assert any(e.signs_of_crime for e in events("complaint"))
    assert any(e.meta.in_reply_to for e in events("domain_block_result"))
    assert "Nguyễn Văn Hùng" in [e.seller.name for e in sellers]


# --- bad input: exit 1, every problem named ----------------------------------------------------


def _example_lines(event_type: str) -> list[dict[str, Any]]:
    return _lines(EXAMPLES / f"{event_type}.jsonl")


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def test_malformed_json_names_line_and_column(tmp_path: Path) -> None:
    good = (EXAMPLES / "complaint.jsonl").read_text(encoding="utf-8").splitlines()
    good[1] = good[1][:-1]  # drop the closing brace of line 2
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(good) + "\n", encoding="utf-8")
    result = _run("publish", "complaint", "--as", "industry_trade", "--file", str(path))
    assert result.exit_code == 1
    assert f"{path}:2: invalid JSON at column" in result.output


def test_every_bad_record_is_listed_with_line_and_field(tmp_path: Path) -> None:
    records = _example_lines("suspect_seller")
    records[0]["estimated_value_vnd"] = "ba mươi triệu"  # wrong type
    records[2]["seller"]["tax_code"] = "430058129"  # 9 digits
    records[3]["domains"] = ["not a domain!"]
    path = _write_jsonl(tmp_path / "bad.jsonl", records)
    result = _run("publish", "suspect_seller", "--as", "police", "--file", str(path))
    assert result.exit_code == 1
    out = result.output
    assert "3 invalid records" in out
    assert "nothing was published" in out
    assert f"{path}:1: estimated_value_vnd:" in out
    assert f"{path}:3: seller.tax_code:" in out
    assert "430058129" in out
    assert f"{path}:4: domains.0:" in out
    assert f"{path}:2:" not in out


def test_bad_tax_code_in_tax_discrepancy(tmp_path: Path) -> None:
    records = _example_lines("tax_discrepancy")
    records[1]["seller"]["tax_code"] = "43-0058-1296"
    path = _write_jsonl(tmp_path / "bad.jsonl", records)
    result = _run("publish", "tax_discrepancy", "--as", "tax", "--file", str(path))
    assert result.exit_code == 1
    assert f"{path}:2: seller.tax_code:" in result.output


def test_bad_domain_in_block_request(tmp_path: Path) -> None:
    records = _example_lines("domain_block_request")
    records[2]["domains"] = ["https://dienthoaixachtay24h.com/iphone"]
    path = _write_jsonl(tmp_path / "bad.jsonl", records)
    result = _run("publish", "domain_block_request", "--as", "police", "--file", str(path))
    assert result.exit_code == 1
    assert f"{path}:3: domains.0:" in result.output


def test_unknown_event_type_lists_the_valid_ones() -> None:
    path = EXAMPLES / "complaint.jsonl"
    result = _run("publish", "complaints", "--as", "industry_trade", "--file", str(path))
    assert result.exit_code == 1
    assert "unknown event type 'complaints'" in result.output
    for event_type in PUBLISHER_OF:
        assert event_type in result.output


def test_unknown_agency_lists_the_valid_ones() -> None:
    path = EXAMPLES / "complaint.jsonl"
    result = _run("publish", "complaint", "--as", "cong_an", "--file", str(path))
    assert result.exit_code == 1
    assert "unknown agency 'cong_an'" in result.output
    assert "police" in result.output
    assert "market_surveillance" in result.output


def test_csv_missing_a_required_column(tmp_path: Path) -> None:
    rows = list(csv.reader(io.StringIO((EXAMPLES / "suspect_seller.csv").read_text(encoding="utf-8-sig"))))
    assert rows[0][-1] == "summary"
    buffer = io.StringIO()
    csv.writer(buffer).writerows(row[:-1] for row in rows)
    path = tmp_path / "no_summary.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    result = _run("publish", "suspect_seller", "--as", "tax", "--file", str(path))
    assert result.exit_code == 1
    for line in (2, 3, 4):
        assert f"{path}:{line}: summary:" in result.output


def test_wrong_enum_symbol_names_the_field(tmp_path: Path) -> None:
    records = _example_lines("complaint")
    records[0]["channel"] = "FAX"
    path = _write_jsonl(tmp_path / "bad.jsonl", records)
    result = _run("publish", "complaint", "--as", "industry_trade", "--file", str(path))
    assert result.exit_code == 1
    assert f"{path}:1: channel:" in result.output


def test_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    data = (EXAMPLES / "law_gap_proposal.jsonl").read_bytes().replace("Nghị".encode(), b"Ngh\xe1", 1)
    path = tmp_path / "latin.jsonl"
    path.write_bytes(data)
    result = _run("publish", "law_gap_proposal", "--as", "ict", "--file", str(path))
    assert result.exit_code == 1
    assert f"{path}:1: not valid UTF-8" in result.output


def test_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n", encoding="utf-8")
    result = _run("publish", "complaint", "--as", "industry_trade", "--file", str(path))
    assert result.exit_code == 1
    assert "no records" in result.output


def test_help_has_an_example() -> None:
    for command in ("publish", "consume"):
        result = _run(command, "--help")
        assert result.exit_code == 0
        assert "Example:" in result.output


def test_event_too_large_for_the_brokers_is_refused_before_sending(tmp_path: Path) -> None:
    records = _example_lines("law_gap_proposal")
    records[1]["proposal"] = "Đề xuất sửa đổi. " * 70_000  # about 1.2 MB encoded: over the 1 MiB default
    path = _write_jsonl(tmp_path / "big.jsonl", records)
    result = _run("publish", "law_gap_proposal", "--as", "ict", "--file", str(path), "--dry-run")
    assert result.exit_code == 1
    assert f"{path}:2: (event):" in result.output
    assert "over the limit of 1048576 bytes" in result.output
