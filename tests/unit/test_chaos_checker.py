"""The chaos checker's comparison on hand-made histories: it must see a lost, a duplicated, a misrouted
and a phantom event, and nothing when all is well."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bus389.chaos.checker import Copy, Observed, Result, compare
from bus389.chaos.expectation import PolicyModel
from bus389.chaos.history import EventEntry, History

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The checkout this test runs from (examples, deploy files)."""

POLICY = PolicyModel.load(REPO_ROOT / "bus389" / "routing" / "routing-policy.yaml")
SELLER = {
    "name": "Hộ kinh doanh Trần Văn Đức",
    "tax_code": None,
    "national_id": "051190000123",
    "phone": None,
    "address": None,
    "province": "Quảng Ngãi",
}


def meta(
    event_id: str, event_type: str, source: str, sensitivity: str = "AMBER", **extra: Any
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "event_type": event_type,
        "source": source,
        "sensitivity": sensitivity,
        "case_ref": None,
        "in_reply_to": None,
        **extra,
    }


def tax_alert(event_id: str, owed: int, status: str = "ok") -> EventEntry:
    """A tax discrepancy: market_surveillance (II.9); police from 100 M owed (II.1)."""
    record = {
        "meta": meta(event_id, "tax_discrepancy", "tax"),
        "seller": dict(SELLER),
        "accounts": [],
        "estimated_tax_owed_vnd": owed,
    }
    return EventEntry(event_id, "tax_discrepancy", "tax", status, record)  # type: ignore[arg-type]


def block_request(event_id: str, source: str = "police", sensitivity: str = "AMBER") -> EventEntry:
    record = {"meta": meta(event_id, "domain_block_request", source, sensitivity), "domains": ["x.vn"]}
    return EventEntry(event_id, "domain_block_request", source, "ok", record)


def copy(
    agency: str, rule: str, redacted: frozenset[str] = frozenset(), present: frozenset[str] = frozenset()
) -> Copy:
    return Copy(agency, rule, redacted, present)


NID = frozenset({"seller.national_id"})


def delivered_tax_alert(observed: Observed, event_id: str, *, police: bool) -> None:
    observed.copies[event_id] += [
        copy("market_surveillance", "tax_discrepancy.market_surveillance", present=NID),
    ]
    recipients = {"market_surveillance"}
    if police:
        observed.copies[event_id].append(copy("police", "tax_discrepancy.police", present=NID))
        recipients.add("police")
    observed.audits[event_id].append(frozenset(recipients))


def answered(observed: Observed, request_id: str, requester: str = "police", n: int = 1) -> None:
    """The ICT service's result for ``request_id``, routed back to the requester and the standing office."""
    result_id = f"result-of-{request_id}"
    record = {
        "meta": meta(result_id, "domain_block_result", "ict", in_reply_to=request_id),
        "requester": requester,
        "outcome": "BLOCKED",
    }
    for _ in range(n):
        observed.results.append(Result(result_id, request_id, record))
    observed.copies[result_id] += [
        copy(requester, "domain_block_result.requester"),
        copy("market_surveillance", "domain_block_result.market_surveillance"),
    ]
    observed.audits[result_id].append(frozenset({requester, "market_surveillance"}))


def healthy() -> tuple[History, Observed]:
    history = History(events=[tax_alert("e1", 5_000_000), tax_alert("e2", 150_000_000), block_request("r1")])
    observed = Observed(standing_office=set(), ict_requests={"r1"})
    delivered_tax_alert(observed, "e1", police=False)
    delivered_tax_alert(observed, "e2", police=True)
    observed.copies["r1"] += [
        copy("ict", "domain_block_request.ict"),
        copy("market_surveillance", "domain_block_request.market_surveillance"),
    ]
    observed.audits["r1"].append(frozenset({"ict", "market_surveillance"}))
    answered(observed, "r1")
    assert observed.standing_office is not None
    observed.standing_office |= {"e1", "e2", "r1", "result-of-r1"}
    return history, observed


def test_a_healthy_run_has_no_anomaly() -> None:
    history, observed = healthy()
    report = compare(history, observed, POLICY)
    assert report.ok, report.describe()
    assert (report.acknowledged, report.results, report.copies_checked) == (3, 1, 7)


def test_a_missing_copy_is_lost() -> None:
    history, observed = healthy()
    observed.copies["e2"] = [c for c in observed.copies["e2"] if c.agency != "police"]
    report = compare(history, observed, POLICY)
    assert (report.lost, report.duplicated, report.misrouted) == (1, 0, 0)
    assert "e2" in report.details["lost"][0] and "police" in report.details["lost"][0]


def test_a_missing_audit_record_a_missing_answer_and_a_missing_stored_event_are_lost() -> None:
    history, observed = healthy()
    del observed.audits["e1"]
    observed.results.clear()
    observed.copies.pop("result-of-r1")
    observed.audits.pop("result-of-r1")
    assert observed.standing_office is not None
    observed.standing_office.discard("e2")
    report = compare(history, observed, POLICY)
    assert report.lost == 3, report.describe()
    assert report.duplicated == report.misrouted == 0


def test_a_second_copy_a_second_audit_and_a_second_answer_are_duplicates() -> None:
    history, observed = healthy()
    observed.copies["e1"].append(
        copy("market_surveillance", "tax_discrepancy.market_surveillance", present=NID)
    )
    observed.audits["e2"].append(frozenset({"market_surveillance", "police"}))
    answered(observed, "r1", n=1)  # the same result event once more in the ict outbox, and its copies
    report = compare(history, observed, POLICY)
    assert report.lost == 0 and report.misrouted == 0
    assert report.duplicated == 6, report.describe()  # e1 copy, e2 audit, result in outbox + 2 copies + audit


def test_an_unexpected_recipient_is_misrouted() -> None:
    history, observed = healthy()
    observed.copies["e1"].append(copy("police", "tax_discrepancy.police", present=NID))  # below 100 M owed
    report = compare(history, observed, POLICY)
    assert (report.lost, report.duplicated, report.misrouted) == (0, 0, 1)
    assert "police" in report.details["misrouted"][0]


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda c: copy(c.agency, "standing_office.all", c.redacted, c.personal_present), "under"),
        (lambda c: copy(c.agency, c.rule_id, NID, c.personal_present), "redacted"),
        (lambda c: copy(c.agency, c.rule_id, c.redacted, NID), "carries"),
    ],
)
def test_a_copy_under_the_wrong_rule_or_redaction_is_misrouted(change: Any, why: str) -> None:
    history, observed = healthy()
    observed.copies["r1"] = [change(c) if c.agency == "ict" else c for c in observed.copies["r1"]]
    report = compare(history, observed, POLICY)
    assert report.misrouted >= 1 and report.lost == 0 and report.duplicated == 0
    assert any(why in line for line in report.details["misrouted"]), report.describe()


def test_a_valid_event_in_the_dlq_and_an_event_nobody_published_are_misrouted() -> None:
    history, observed = healthy()
    observed.dead_letters["e1"].append("no_route")
    observed.copies["stranger"].append(copy("police", "suspect_seller.police"))
    report = compare(history, observed, POLICY)
    assert report.misrouted == 2, report.describe()


def test_an_event_the_policy_dead_letters_must_be_in_the_dlq_once() -> None:
    """A block request from the media, who may not ask for one: dead-lettered, and its sender told."""
    history = History(events=[block_request("bad", source="media")])
    observed = Observed()
    assert compare(history, observed, POLICY).lost == 2  # the dead letter and the sender's notice
    observed.dead_letters["bad"].append("not_permitted")
    observed.notices["bad"].append(("media", "UNDELIVERABLE"))
    assert compare(history, observed, POLICY).ok
    observed.dead_letters["bad"].append("not_permitted")
    assert compare(history, observed, POLICY).duplicated == 1


def test_a_red_event_must_leave_a_sealed_notice_with_the_standing_office() -> None:
    """A RED block request reaches ICT (II.6), and the standing office only as a sealed notice."""
    history = History(events=[block_request("red", sensitivity="RED")])
    observed = Observed(ict_requests={"red"})
    observed.copies["red"].append(copy("ict", "domain_block_request.ict"))
    observed.audits["red"].append(frozenset({"ict"}))
    answered(observed, "red")
    report = compare(history, observed, POLICY)
    assert report.lost == 1 and "no SEALED notice in market_surveillance's inbox" in report.describe()
    observed.notices["red"].append(("market_surveillance", "SEALED"))
    assert compare(history, observed, POLICY).ok
    observed.notices["red"].append(("police", "SEALED"))
    assert compare(history, observed, POLICY).misrouted == 1


def test_unconfirmed_events_may_be_absent_but_not_half_there() -> None:
    entry = tax_alert("maybe", 5_000_000, status="info")
    history = History(events=[entry])
    assert compare(history, Observed(), POLICY).ok
    observed = Observed()
    delivered_tax_alert(observed, "maybe", police=False)
    report = compare(history, observed, POLICY)
    assert report.ok and report.indeterminate_present == 1
    observed.copies["maybe"].pop()
    assert compare(history, observed, POLICY).lost == 1


def test_a_failed_publish_found_on_the_bus_is_a_phantom() -> None:
    history = History(events=[tax_alert("aborted", 5_000_000, status="fail")])
    observed = Observed()
    assert compare(history, observed, POLICY).ok
    delivered_tax_alert(observed, "aborted", police=False)
    report = compare(history, observed, POLICY)
    assert report.phantom == 1 and not report.ok


def test_a_reply_goes_back_to_the_original_sender_known_from_the_history() -> None:
    history = History(events=[block_request("r2", source="customs")])
    observed = Observed()
    observed.copies["r2"] += [
        copy("ict", "domain_block_request.ict"),
        copy("market_surveillance", "domain_block_request.market_surveillance"),
    ]
    observed.audits["r2"].append(frozenset({"ict", "market_surveillance"}))
    answered(observed, "r2", requester="police")  # a result that lies about the requester
    report = compare(history, observed, POLICY)
    assert any("police" in line for line in report.details["misrouted"]), report.describe()
    assert any("customs" in line for line in report.details["lost"]), report.describe()
