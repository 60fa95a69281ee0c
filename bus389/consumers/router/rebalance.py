"""The router's side of a rebalance: notice it, and drop the batch in hand back onto its partitions.

kafka-python runs the rebalance listener on its IO loop, where a blocking producer call must not run:
the listener only sets a flag, and the router's loop (between calls) aborts the open transaction and
gives the batch back when it sees it. After a failed transaction the committed offsets are the
truth: :func:`rewind` puts every assigned partition back to them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from kafka import ConsumerRebalanceListener, TopicPartition

from bus389 import kafka as bus_kafka

__all__ = ["RebalanceListener", "give_back", "rewind"]

log = logging.getLogger(__name__)


class RebalanceListener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Hands every assignment change to ``note`` (``"revoked"``, ``"assigned"`` or ``"lost"``, and the
    partitions), which notes it so that the batch in hand is dropped."""

    def __init__(self, note: Callable[[str, Any], None]) -> None:
        self._note = note

    def on_partitions_revoked(self, revoked: Any) -> None:
        self._note("revoked", revoked)

    def on_partitions_assigned(self, assigned: Any) -> None:
        self._note("assigned", assigned)

    def on_partitions_lost(self, lost: Any) -> None:
        self._note("lost", lost)


def give_back(consumer: Any, batch: list[Any], *, bootstrap: str) -> None:
    """Drop a batch polled across a rebalance: each partition still ours goes back to its first event.

    Partitions newly assigned already start at their committed offset; a partition we kept was
    committed by us alone, up to the batch's first event of it. No broker call is needed (and none
    is made while the group may still be settling). Raises :class:`~bus389.errors.BrokerError` when
    the assignment moved under us (then the committed offsets are the truth: :func:`rewind`).
    """
    first: dict[Any, int] = {}
    for raw in batch:
        tp = TopicPartition(raw.topic, raw.partition)
        first[tp] = min(first.get(tp, raw.offset), raw.offset)
    with bus_kafka.kafka_errors(bootstrap=bootstrap):
        assigned = consumer.assignment()
        for tp, offset in first.items():
            if tp in assigned:
                consumer.seek(tp, offset)


def rewind(consumer: Any, *, bootstrap: str, timeout_s: float) -> None:
    """Put every assigned partition back to its committed offset (or the beginning).

    After a failed transaction the committed offset is the truth: a commit that timed out may still
    have gone through, and then the batch must not be read again.
    """
    timeout_ms = int(timeout_s * 1000)
    with bus_kafka.kafka_errors(bootstrap=bootstrap):
        for tp in sorted(consumer.assignment(), key=lambda t: (t.topic, t.partition)):
            committed = consumer.committed(TopicPartition(tp.topic, tp.partition), timeout_ms=timeout_ms)
            if committed is None:
                consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, committed)
