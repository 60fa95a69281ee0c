"""The checker's own reading of the routing policy, against the router's decision, event for event.

Two independent readings of one policy file that agree on thousands of varied events (every type,
every sensitivity, spoofs, replies known and unknown) are the evidence that the checker's expectation
is what the policy says; a disagreement names the event and both answers.
"""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path
from typing import Any

import pytest

from bus389.agencies import Agency
from bus389.chaos.expectation import PolicyModel, values_at
from bus389.chaos.workload import EventFactory
from bus389.events import build_event
from bus389.routing.decision import Decision, Original, decide
from bus389.routing.policy import load_policy

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The checkout this test runs from (examples, deploy files)."""

POLICY_PATH = REPO_ROOT / "bus389" / "routing" / "routing-policy.yaml"
MODEL = PolicyModel.load(POLICY_PATH)
ROUTER_POLICY = load_policy(POLICY_PATH)


def _both(
    record_avro: dict[str, Any], record_json: dict[str, Any], sender: Agency, history: dict[str, Original]
) -> Decision:
    """Both readings of one event, given the same history (event id → who sent it, who received it)."""
    decision = decide(sender, record_avro, ROUTER_POLICY, history.get)
    expected = MODEL.expect(
        record_json,
        sender.value,
        lambda i: history[i].sender.value if i in history else None,
        lambda i: frozenset(a.value for a in history[i].recipients) if i in history else frozenset(),
    )
    mine = (
        expected.dlq_reason,
        {a: (c.rule_id, sorted(c.redacted)) for a, c in expected.copies.items()},
        sorted(expected.sealed),
    )
    theirs = (
        None if decision.duplicate else decision.dlq_reason,
        {d.recipient.value: (d.rule_id, sorted(d.redacted)) for d in decision.deliveries},
        sorted(a.value for a in decision.sealed),
    )
    assert mine == theirs, f"{record_json['meta']} from {sender.value}"
    return decision


def test_the_two_readings_agree_on_the_workload() -> None:
    factory = EventFactory(seed=389)
    rng = random.Random(7)
    history: dict[str, Original] = {}
    reasons: set[str | None] = set()
    for _ in range(3000):
        event_type, source, data, event_id = factory.next()
        sender = source if rng.random() < 0.9 else rng.choice(list(Agency))
        event = build_event(event_type, source, data, event_id=event_id)
        decision = _both(event.to_avro(), event.to_json_dict(), sender, history)
        reasons.add(decision.dlq_reason)
        if decision.routed:
            history[event_id] = Original(sender, frozenset(decision.recipients))
    assert {None, "spoofed_source", "no_route"} <= reasons


@pytest.mark.parametrize("known", [True, False])
@pytest.mark.parametrize("level", ["CLEAR", "GREEN", "AMBER", "AMBER_STRICT", "RED"])
@pytest.mark.parametrize("requester", [Agency.POLICE, Agency.MARKET_SURVEILLANCE, Agency.CUSTOMS])
def test_the_two_readings_agree_on_replies(known: bool, level: str, requester: Agency) -> None:
    request_id = str(uuid.uuid4())
    result = build_event(
        "domain_block_result",
        Agency.ICT,
        {
            "meta": {"sensitivity": level, "in_reply_to": request_id},
            "requester": Agency.TAX.value,  # never addresses the answer: only the trail does
            "outcome": "BLOCKED",
            "blocked": ["x.vn"],
            "decided_at": "2021-07-16T10:45:00+07:00",
        },
    )
    received = frozenset({Agency.ICT, Agency.POLICE})
    senders = {request_id: Original(requester, received)} if known else {}
    _both(result.to_avro(), result.to_json_dict(), Agency.ICT, senders)
    outcome = build_event(
        "case_outcome",
        Agency.POLICE,
        {
            "meta": {"sensitivity": level, "in_reply_to": request_id},
            "outcome": "WARNING",
            "decided_on": "2021-07-20",
            "summary": "x",
        },
    )
    _both(outcome.to_avro(), outcome.to_json_dict(), Agency.POLICE, senders)


def test_values_at_reads_arrays_and_nesting() -> None:
    record = {"accounts": [{"platform": "SHOPEE"}, {"platform": "ZALO"}], "seller": {"phone": None}}
    assert values_at(record, "accounts[].platform") == ["SHOPEE", "ZALO"]
    assert values_at(record, "seller.phone") == [None]
    assert values_at(record, "seller.address") == []
    assert values_at(record, "complainant.phone") == []


def test_a_condition_the_checker_does_not_know_is_a_config_error() -> None:
    from bus389.errors import ConfigError

    doc = {
        "personal_data": {"fields": ["seller.phone"]},
        "rules": [
            {"id": "x", "event_type": "*", "recipients": ["police"], "when": [{"field": "a", "lt": 3}]}
        ],
    }
    with pytest.raises(ConfigError):
        PolicyModel(doc).expect({"meta": {"source": "tax", "event_type": "complaint"}}, "tax", lambda _: None)


def test_the_two_readings_agree_on_rights_answers_and_named_recipients() -> None:
    request_id = str(uuid.uuid4())
    history = {request_id: Original(Agency.CUSTOMS, frozenset({Agency.ICT}))}
    for sender in Agency:
        for level in ("GREEN", "AMBER_STRICT", "RED"):
            for named in ([], ["police"], ["customs", "market_surveillance", "media"]):
                referral = build_event(
                    "case_referral",
                    sender if sender != Agency.MEDIA else Agency.POLICE,
                    {
                        "meta": {"sensitivity": level, "recipients": named},
                        "seller": {"name": "Nguyễn Văn A"},
                        "violation_kinds": ["SMUGGLING"],
                        "summary": "x",
                    },
                )
                _both(referral.to_avro(), referral.to_json_dict(), referral.source, history)
            answer = build_event(
                "domain_block_result",
                sender,
                {
                    "meta": {"sensitivity": level, "in_reply_to": request_id},
                    "requester": "customs",
                    "outcome": "BLOCKED",
                    "blocked": ["x.vn"],
                    "decided_at": "2021-07-16T10:45:00+07:00",
                },
            )
            _both(answer.to_avro(), answer.to_json_dict(), sender, history)


@pytest.mark.parametrize("event_type", ["directive", "case_claim", "inspection_result", "compiled_report"])
def test_the_two_readings_agree_on_the_coordination_events(event_type: str) -> None:
    lines = (REPO_ROOT / "examples" / f"{event_type}.jsonl").read_text(encoding="utf-8").splitlines()
    history: dict[str, Original] = {}
    for line in lines:
        for sender in Agency:
            for level in ("GREEN", "AMBER_STRICT", "RED"):
                data = json.loads(line)
                data["meta"] = {**data["meta"], "sensitivity": level}
                data["meta"].pop("in_reply_to", None)
                if event_type != "directive":
                    data["meta"]["recipients"] = ["police", "market_surveillance"] if level == "RED" else []
                event = build_event(event_type, sender, data)
                _both(event.to_avro(), event.to_json_dict(), sender, history)
