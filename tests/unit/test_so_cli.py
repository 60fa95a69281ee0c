"""``bus389 so directives`` and ``bus389 so compile``: the standing office's follow-up from its store."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from bus389.cli.main import cli
from bus389.consumers.standing_office.store import StandingOfficeStore
from bus389.events import build_event


def _store(tmp_path: Path) -> tuple[dict[str, str], StandingOfficeStore]:
    url = f"sqlite:///{tmp_path / 'so.sqlite3'}"
    return {"BUS389_STORE__STANDING_OFFICE_URL": url}, StandingOfficeStore.open(url)


def _directive(subject: str, due: str, *addressees: str) -> dict:
    data = {
        "meta": {"sensitivity": "AMBER", "recipients": list(addressees)},
        "kind": "URGE",
        "subject": subject,
        "plan_section": "II.9",
        "due_at": due,
    }
    return build_event("directive", "market_surveillance", data).to_json_dict()


def test_directives_show_who_owes_an_answer_and_escape_control_characters(tmp_path: Path) -> None:
    env, store = _store(tmp_path)
    late = _directive("Gửi báo cáo ngay", "2021-07-10T17:00:00+07:00", "police", "tax")
    # The models refuse control characters now; a record stored by an older peer may still hold them.
    late["subject"] = "Gửi báo cáo\x1b[2J\x07 ngay"
    later = _directive("Phối hợp", "2999-01-01T00:00:00+07:00", "other_members")
    answer = build_event(
        "law_gap_proposal",
        "police",
        {
            "meta": {"in_reply_to": late["meta"]["event_id"]},
            "regulation": "Nghị định 52/2013/NĐ-CP",
            "problem": "x",
            "proposal": "y",
        },
    ).to_json_dict()
    with store:
        for record in (late, later, answer):
            store.add_event(record)
    result = CliRunner().invoke(cli, ["so", "directives"], env=env)
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "\\x1b[2J" in result.output
    assert "OVERDUE" in result.output and "waiting for: tax" in result.output
    assert result.output.splitlines()[-1] == "2 directive(s), 1 overdue"

    only = CliRunner().invoke(cli, ["so", "directives", "--overdue", "--json"], env=env)
    (line,) = [json.loads(x) for x in only.output.splitlines()]
    assert (line["id"], line["answered_by"], line["waiting_for"]) == (
        late["meta"]["event_id"],
        ["police"],
        ["tax"],
    )


def test_compile_prints_a_valid_compiled_report_line_and_a_bad_period_is_one_clear_line(
    tmp_path: Path,
) -> None:
    env, store = _store(tmp_path)
    store.close()
    result = CliRunner().invoke(cli, ["so", "compile", "2021-H1"], env=env)
    assert result.exit_code == 0, result.output
    fields = json.loads(result.output)
    build_event("compiled_report", "market_surveillance", fields)
    assert fields["members_reported"] == [] and fields["period"] == "2021-H1"
    bad = CliRunner().invoke(cli, ["so", "compile", "2021-H3"], env=env)
    assert bad.exit_code != 0 and "Traceback" not in bad.output
    assert "six-month period" in bad.output
