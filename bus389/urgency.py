"""Urgency order of a polled batch: IMMEDIATE and PRIORITY events first, each case key kept in order.

``meta.urgency`` says how fast recipients must act; a service working through a backlog handles the
urgent events of the batch before the routine ones. The router keeps each case key's events in order
(the key is the case reference), so reordering must never pass one event of a key before an earlier
one: each event takes the rank of the most urgent event at or after it under the same key (a routine
event ahead of an urgent one of its own case goes first, carried along by it), and the batch is sorted
stably by that rank. Events without a key have no order to keep with another.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

__all__ = ["RANK", "in_urgency_order"]

RANK = {"IMMEDIATE": 0, "PRIORITY": 1, "ROUTINE": 2}
"""Lower goes first; an unknown urgency counts as ROUTINE (the schema's default)."""

T = TypeVar("T")


def in_urgency_order(
    items: Sequence[T], key_of: Callable[[T], Hashable | None], urgency_of: Callable[[T], str | None]
) -> list[T]:
    """``items`` most urgent first; stable, and the items of one key (not None) keep their order."""
    effective = [RANK.get(str(urgency_of(item) or "ROUTINE"), RANK["ROUTINE"]) for item in items]
    best_after: dict[Hashable, int] = {}
    for index in range(len(items) - 1, -1, -1):
        key = key_of(items[index])
        if key is None:
            continue
        rank = min(effective[index], best_after.get(key, RANK["ROUTINE"]))
        best_after[key] = rank
        effective[index] = rank
    order = sorted(range(len(items)), key=lambda i: effective[i])
    return [items[i] for i in order]
