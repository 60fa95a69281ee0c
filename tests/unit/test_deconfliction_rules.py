"""Deconfliction (plan I.2): which earlier claims a new claim conflicts with, and the directive it gets."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

from bus389.consumers.standing_office.correlation import extract_keys
from bus389.consumers.standing_office.deconfliction import deconflict_directive, find_conflicts
from bus389.events import build_event

NOW = datetime(2021, 5, 20, 3, 0, tzinfo=UTC)


def _claim(source: str, sensitivity: str = "AMBER", **seller: str) -> dict:
    data = {
        "meta": {"sensitivity": sensitivity, "case_ref": f"QNG-{source}"},
        "seller": {"name": "Cửa hàng Thu Trang", **seller},
        "accounts": [{"platform": "SHOPEE", "account": f"{source}.shop"}],
        "basis": "II.1",
    }
    return build_event("case_claim", source, data, now=NOW).to_avro()


def _stored(record: dict) -> SimpleNamespace:
    meta = record["meta"]
    return SimpleNamespace(
        event_id=meta["event_id"],
        source=meta["source"],
        sensitivity=meta["sensitivity"],
        case_ref=meta["case_ref"],
    )


def _conflicts(new: dict, *earlier: dict) -> list:
    keys = extract_keys("case_claim", new)
    pairs = [(_stored(e), extract_keys("case_claim", e)) for e in earlier]
    return find_conflicts(new["meta"]["source"], keys, pairs)


def test_the_same_tax_code_by_another_agency_is_a_conflict_the_same_agency_again_is_not() -> None:
    police = _claim("police", tax_code="4300123456")
    customs = _claim("customs", tax_code="4300123456")
    police_again = _claim("police", tax_code="4300123456")
    found = _conflicts(customs, police, police_again)
    assert [c.earlier_source for c in found] == ["police", "police"]
    assert {k.kind for c in found for k in c.shared} == {"tax_code"}
    assert _conflicts(police_again, police) == []


def test_a_shared_name_alone_is_no_conflict_a_shared_phone_is() -> None:
    police = _claim("police", tax_code="4300123456")
    tax = _claim("tax", tax_code="4300654321")
    assert _conflicts(tax, police) == []
    assert [
        c.shared[0].kind
        for c in _conflicts(_claim("tax", phone="+84 905 123 456"), _claim("police", phone="0905123456"))
    ] == ["phone"]


def test_the_directive_names_both_claimants_cites_i2_hides_the_phone_and_is_replay_stable() -> None:
    police = _claim("police", sensitivity="RED", phone="0905123456")
    customs = _claim("customs", phone="0905 123 456")
    (conflict,) = _conflicts(customs, police)
    directive = deconflict_directive(customs, conflict, now=NOW)
    again = deconflict_directive(customs, conflict, now=NOW)
    data = directive.to_json_dict()
    assert data["kind"] == "DECONFLICT" and data["plan_section"] == "I.2"
    assert data["meta"]["recipients"] == ["customs", "police"]
    assert data["meta"]["source"] == "market_surveillance"
    assert data["meta"]["sensitivity"] == "RED"  # the stricter of the two claims
    assert "0905" not in data["subject"] and "số điện thoại" in data["subject"]
    assert sorted(data["about_event_ids"]) == sorted(
        [police["meta"]["event_id"], customs["meta"]["event_id"]]
    )
    assert directive.event_id == again.event_id
