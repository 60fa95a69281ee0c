"""The ICT operator's commands through click's CliRunner: no broker, only the store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _ict_records import law_gap_proposal_record, request_record, suspect_seller_record
from click.testing import CliRunner

from bus389.cli.main import cli
from bus389.consumers.ict.decisions import BlockRequest, Decider
from bus389.consumers.ict.leads import lead_row, reply_row
from bus389.consumers.ict.store import RequestState, open_store
from bus389.settings import Settings, StoreSettings


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "BUS389_STORE__ICT_URL": f"sqlite:///{tmp_path / 'ict.sqlite3'}",
        "BUS389_ICT__OUTPUT_DIR": str(tmp_path / "blocklist"),
        "BUS389_ICT__RPZ_ZONE": "rpz.test",
    }


def add_request(env: dict[str, str], **fields: object) -> str:
    record = request_record(**fields)  # type: ignore[arg-type]
    settings = Settings(store=StoreSettings(ict_url=env["BUS389_STORE__ICT_URL"]))
    with open_store(settings.store.ict_url) as store:
        Decider(store, settings).ingest(BlockRequest.from_record(record), origin="t.inbox.ict/0/0")
    return str(record["meta"]["event_id"])


def run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["ict"],
        ["ict", "pending"],
        ["ict", "approve"],
        ["ict", "reject"],
        ["ict", "blocklist"],
        ["ict", "leads"],
        ["ict", "inspected"],
        ["ict", "replies"],
        ["serve", "ict"],
    ],
)
def test_every_command_has_help_with_an_example(command: list[str]) -> None:
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output


def test_pending_lists_what_waits_with_what_screening_refused(env: dict[str, str]) -> None:
    request_id = add_request(env, domains=["hang-gia.example.vn", "x.gov.vn"], ip_addresses=["45.77.10.20"])
    add_request(env, domains=["gov.vn"])  # rejected at once: not pending
    code, out, _ = run(env, "ict", "pending")
    assert code == 0
    assert request_id in out
    assert "domain hang-gia.example.vn" in out
    assert "ip     45.77.10.20" in out
    assert "refused x.gov.vn: under gov.vn, which is on the never-block list" in out
    assert "legal basis: Công văn 12/CAT-PC03" in out
    assert out.rstrip().endswith("1 request(s)")

    code, out, _ = run(env, "ict", "pending", "--all", "--json")
    lines = [json.loads(line) for line in out.splitlines()]
    assert sorted(line["state"] for line in lines) == ["pending", "rejected"]
    mine = next(line for line in lines if line["id"] == request_id)
    assert mine["targets"][0] == {"kind": "domain", "value": "hang-gia.example.vn", "state": "accepted"}
    assert mine["refused"] == [
        {"item": "x.gov.vn", "reason": "under gov.vn, which is on the never-block list"}
    ]


def test_an_empty_queue_says_so(env: dict[str, str]) -> None:
    assert run(env, "ict", "pending")[:2] == (0, "no pending request\n")


def test_approve_by_prefix_then_the_blocklist_shows_it(env: dict[str, str]) -> None:
    request_id = add_request(env, domains=["hang-gia.example.vn"], ip_addresses=["45.77.10.20"])
    code, out, err = run(env, "ict", "approve", request_id[:8], "--note", "QĐ 45", "--operator", "op.le")
    assert code == 0, err
    assert f"request {request_id} from police: BLOCKED" in out
    assert "serve ict" in err
    with open_store(env["BUS389_STORE__ICT_URL"]) as store:
        row = store.request((request_id, "police"))
        assert row is not None
        assert (row.state, row.decided_by, row.note) == (RequestState.APPROVED, "op.le", "QĐ 45")
        assert len(store.outbox()) == 1

    code, out, err = run(env, "ict", "blocklist")
    assert code == 0
    assert "hang-gia.example.vn CNAME ." in out
    assert "*.hang-gia.example.vn CNAME ." in out
    assert "32.20.10.77.45.rpz-ip CNAME ." in out
    assert f"; event {request_id} from police, Công văn 12/CAT-PC03" in out
    assert "$ORIGIN rpz.test." in out
    assert "not written this list yet" in err  # no service ran
    assert run(env, "ict", "blocklist", "--format", "txt")[1] == "hang-gia.example.vn\n"
    csv_out = run(env, "ict", "blocklist", "--format", "csv")[1]
    assert csv_out.splitlines()[0] == "target,kind,request_id,requester,approved_at,expires_at,legal_basis"
    assert f"45.77.10.20,ip,{request_id},police," in csv_out


def test_an_id_two_agencies_sent_is_decided_only_with_from(env: dict[str, str]) -> None:
    request_id = add_request(env, domains=["hang-gia.example.vn"])
    assert add_request(env, source="customs", event_id=request_id, domains=["khac.example.vn"]) == request_id
    code, out, _ = run(env, "ict", "pending")
    assert code == 0
    assert f"{request_id}  BLOCK  from police" in out and f"{request_id}  BLOCK  from customs" in out
    code, _, err = run(env, "ict", "approve", request_id[:8])
    assert code == 1
    assert (
        f"request {request_id} was sent by several agencies (police, customs): say which with --from" in err
    )
    assert "Traceback" not in err
    code, out, _ = run(env, "ict", "approve", request_id[:8], "--from", "customs")
    assert code == 0
    assert f"request {request_id} from customs: BLOCKED" in out
    code, _, err = run(env, "ict", "reject", request_id, "--from", "tax", "--reason", "x")
    assert code == 1
    assert f"no request from tax with an id starting {request_id!r}" in err
    code, out, _ = run(env, "ict", "reject", request_id, "--reason", "Chưa đủ căn cứ", "--from", "police")
    assert code == 0
    with open_store(env["BUS389_STORE__ICT_URL"]) as store:
        states = {r.requester: r.state for r in store.requests_with_id(request_id)}
    assert states == {"police": RequestState.REJECTED, "customs": RequestState.APPROVED}


def test_a_decided_request_cannot_be_decided_again(env: dict[str, str]) -> None:
    request_id = add_request(env)
    assert run(env, "ict", "approve", request_id)[0] == 0
    code, out, err = run(env, "ict", "reject", request_id, "--reason", "x")
    assert code == 1
    assert f"error: cannot reject request {request_id}: it is approved" in err


def test_reject_needs_a_reason_and_tells_the_requester(env: dict[str, str]) -> None:
    request_id = add_request(env)
    assert run(env, "ict", "reject", request_id)[0] == 2  # click: missing --reason
    code, out, _ = run(env, "ict", "reject", request_id, "--reason", "Chưa đủ căn cứ")
    assert code == 0
    assert "REJECTED" in out
    with open_store(env["BUS389_STORE__ICT_URL"]) as store:
        [row] = store.outbox()
        assert (row.outcome, row.record["note"]) == ("REJECTED", "Chưa đủ căn cứ")


def test_unknown_ids_are_a_clear_error(env: dict[str, str]) -> None:
    code, _, err = run(env, "ict", "approve", "deadbeef")
    assert code == 1
    assert "no request with an id starting 'deadbeef'" in err


def test_a_postgres_url_is_a_config_error_not_a_traceback(env: dict[str, str]) -> None:
    code, _, err = run({**env, "BUS389_STORE__ICT_URL": "postgresql://x@db/ict"}, "ict", "pending")
    assert code == 2
    assert "needs a sqlite:/// URL" in err


def add_lead(env: dict[str, str], **fields: object) -> str:
    record = suspect_seller_record(**fields)  # type: ignore[arg-type]
    with open_store(env["BUS389_STORE__ICT_URL"]) as store, store.transaction():
        store.insert_lead(
            lead_row(
                record, rule="suspect_seller.ict", origin="t.inbox.ict/0/1", received_at=1_614_585_600_000
            )
        )
    return str(record["meta"]["event_id"])


def test_the_leads_help_says_a_lead_is_never_blocked_automatically() -> None:
    result = CliRunner().invoke(cli, ["ict", "leads", "--help"])
    text = " ".join(result.output.split())
    assert "A lead is never blocked automatically" in text
    assert "blocking needs a domain_block_request with a legal basis" in text


def test_pending_says_how_many_leads_are_new(env: dict[str, str]) -> None:
    add_request(env)
    first = add_lead(env)
    add_lead(env)
    code, out, _ = run(env, "ict", "pending")
    assert code == 0
    assert out.splitlines()[-2:] == [
        "1 request(s)",
        "2 new lead(s) to inspect (suspect_seller, plan II.6): see `bus389 ict leads`",
    ]
    assert run(env, "ict", "inspected", first[:8], "--note", "đã kiểm tra", "--operator", "lan")[0] == 0
    code, out, err = run(env, "ict", "pending", "--json")
    assert [json.loads(line)["state"] for line in out.splitlines()] == ["pending"]  # stdout: requests only
    assert "1 new lead(s) to inspect" in err


def test_an_empty_queue_still_mentions_new_leads(env: dict[str, str]) -> None:
    add_lead(env)
    code, out, _ = run(env, "ict", "pending")
    assert out.splitlines() == [
        "no pending request",
        "1 new lead(s) to inspect (suspect_seller, plan II.6): see `bus389 ict leads`",
    ]


def test_leads_lists_the_domains_accounts_and_evidence(env: dict[str, str]) -> None:
    lead_id = add_lead(env)
    code, out, _ = run(env, "ict", "leads")
    assert code == 0
    assert f"{lead_id}  from police  ROUTINE  received 2021-03-01T08:00:00Z" in out
    assert "    seller: Shop Mỹ phẩm Hàn Quốc Ngọc Trâm (tax code 4300581296)" in out
    assert "    domain   myphamngoctram.vn" in out
    assert "    account  FACEBOOK myphamngoctram  https://facebook.com/myphamngoctram" in out
    assert "    account  SHOPEE ngoctram.shop\n" in out
    assert "    evidence https://myphamngoctram.vn/san-pham/kem-trang-da" in out
    assert out.rstrip().endswith(
        "1 lead(s); a lead is never blocked automatically: "
        "blocking needs a domain_block_request with a legal basis"
    )
    [line] = [json.loads(x) for x in run(env, "ict", "leads", "--json")[1].splitlines()]
    assert line["id"] == lead_id and line["state"] == "new" and line["sender"] == "police"
    assert line["domains"] == ["myphamngoctram.vn"]
    assert line["received_at"] == "2021-03-01T08:00:00Z"
    assert line["seller"] == {"name": "Shop Mỹ phẩm Hàn Quốc Ngọc Trâm", "tax_code": "4300581296"}


def test_an_inspected_lead_is_no_longer_new(env: dict[str, str]) -> None:
    lead_id = add_lead(env)
    code, out, _ = run(
        env, "ict", "inspected", lead_id[:8], "--operator", "lan", "--note", "không có giấy phép"
    )
    assert (code, out) == (0, f"lead {lead_id} (Shop Mỹ phẩm Hàn Quốc Ngọc Trâm, from police): inspected\n")
    assert run(env, "ict", "leads")[1] == "no new lead\n"
    [line] = [json.loads(x) for x in run(env, "ict", "leads", "--all", "--json")[1].splitlines()]
    assert (line["state"], line["inspected_by"], line["note"]) == ("inspected", "lan", "không có giấy phép")
    code, _, err = run(env, "ict", "inspected", "ffffffff")
    assert code == 1 and "no lead 'ffffffff'" in err


def test_replies_lists_the_answers_to_ict_events(env: dict[str, str]) -> None:
    ours = "6f1c2d3e-0000-4000-8000-000000000389"
    record = law_gap_proposal_record(source="market_surveillance", in_reply_to=ours)
    with open_store(env["BUS389_STORE__ICT_URL"]) as store, store.transaction():
        store.insert_reply(reply_row(record, rule="reply.original_sender", origin="o", received_at=0))
    code, out, _ = run(env, "ict", "replies")
    assert code == 0
    assert f"law_gap_proposal  from market_surveillance  answering {ours}" in out
    [line] = [json.loads(x) for x in run(env, "ict", "replies", "--json")[1].splitlines()]
    assert line["record"]["proposal"] == "Bổ sung nghĩa vụ xác minh danh tính người bán"


def test_inspection_result_answers_the_lead_with_its_case_and_sensitivity(env: dict[str, str]) -> None:
    from datetime import UTC, datetime

    from bus389.consumers.ict.leads import inspection_result_for

    lead_id = add_lead(env)
    with open_store(env["BUS389_STORE__ICT_URL"]) as store:
        lead = store.lead(lead_id, "police")
    assert lead is not None
    event = inspection_result_for(
        lead,
        finding="VIOLATION_FOUND",
        signs_of_crime=True,
        inspected_at=datetime(2021, 3, 2, tzinfo=UTC),
        inspected_by="lan",
        summary=None,
    )
    data = event.to_json_dict()
    assert data["meta"]["source"] == "ict" and data["meta"]["in_reply_to"] == lead_id
    assert (data["meta"]["case_ref"], data["meta"]["sensitivity"]) == (lead.case_ref, lead.sensitivity)
    assert data["domains"] == list(lead.domains) and data["signs_of_crime"] is True


def test_inspected_with_a_finding_publishes_first_and_marks_nothing_when_it_cannot(
    env: dict[str, str],
) -> None:
    lead_id = add_lead(env)
    unreachable = {
        **env,
        "BUS389_BOOTSTRAP": "127.0.0.1:1",
        "BUS389_KAFKA__DELIVERY_TIMEOUT_MS": "2000",
        "BUS389_KAFKA__REQUEST_TIMEOUT_MS": "1000",
    }
    code, _, err = run(unreachable, "ict", "inspected", lead_id[:8], "--finding", "NO_VIOLATION")
    assert code != 0 and err.strip() and "Traceback" not in err
    with open_store(env["BUS389_STORE__ICT_URL"]) as store:
        lead = store.lead(lead_id, "police")
    assert lead is not None and lead.state == "new"
