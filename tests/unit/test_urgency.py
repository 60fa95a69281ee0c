"""The urgency order of a polled batch: urgent first, one case key's events never reordered."""

from __future__ import annotations

from bus389.urgency import in_urgency_order


def _order(items: list[tuple[str, str | None, str]]) -> list[str]:
    ordered = in_urgency_order(items, key_of=lambda i: i[1], urgency_of=lambda i: i[2])
    return [name for name, _, _ in ordered]


def test_urgent_events_of_other_keys_go_first_and_ties_keep_their_order() -> None:
    batch = [
        ("a", "k1", "ROUTINE"),
        ("b", "k2", "PRIORITY"),
        ("c", None, "IMMEDIATE"),
        ("d", "k3", "ROUTINE"),
    ]
    assert _order(batch) == ["c", "b", "a", "d"]


def test_a_routine_event_ahead_of_an_urgent_one_of_its_case_goes_with_it() -> None:
    batch = [
        ("a", "k1", "ROUTINE"),
        ("b", "k2", "ROUTINE"),
        ("c", "k1", "IMMEDIATE"),
        ("d", "k2", "PRIORITY"),
    ]
    assert _order(batch) == ["a", "c", "b", "d"]


def test_an_unknown_urgency_is_routine_and_nothing_is_lost() -> None:
    batch = [("a", None, "SOON"), ("b", None, None), ("c", None, "PRIORITY")]
    assert _order(batch) == ["c", "a", "b"]
    assert in_urgency_order([], key_of=lambda i: i, urgency_of=lambda i: None) == []
