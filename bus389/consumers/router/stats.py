"""What the router did: its run's counters (:class:`RouterStats`, for logs and tests) and its
Prometheus metrics, counted once per committed batch."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bus389 import metrics
from bus389.agencies import Agency, Topics
from bus389.consumers.router.records import Routed
from bus389.routing.decision import SPOOFED_SOURCE

__all__ = ["RouterStats", "observe_aborted", "observe_committed"]

log = logging.getLogger(__name__)


@dataclass
class RouterStats:
    """What a router run did (for logs and tests)."""

    batches: int = 0
    events: int = 0
    routed: int = 0
    copies: int = 0
    dead_letters: dict[str, int] = field(default_factory=dict)
    aborted: int = 0
    duplicates: int = 0
    producers_built: int = 0
    rejoins: int = 0

    def committed(self, results: list[Routed]) -> None:
        """Count a committed batch, and log each of its events that went to the DLQ."""
        self.batches += 1
        self.events += len(results)
        for routed in results:
            if routed.duplicate:
                self.duplicates += 1
            elif routed.routed:
                self.routed += 1
                self.copies += routed.copies
            else:
                reason = routed.dlq_reason or "unknown"
                self.dead_letters[reason] = self.dead_letters.get(reason, 0) + 1
                log.warning(
                    "router: %s/%d/%d to the DLQ: %s: %s",
                    routed.origin.topic,
                    routed.origin.partition,
                    routed.origin.offset,
                    reason,
                    routed.dlq_detail,
                )


def observe_committed(topics: Topics, results: list[Routed], started: float, commit_started: float) -> None:
    """The metrics of a committed batch: its size and times, and each event routed, withheld or refused."""
    now = time.monotonic()
    wall = datetime.now(UTC)
    metrics.ROUTER_TRANSACTIONS.labels("committed").inc()
    metrics.ROUTER_BATCH_EVENTS.observe(len(results))
    metrics.ROUTER_BATCH_SECONDS.observe(now - started)
    metrics.ROUTER_COMMIT_SECONDS.observe(now - commit_started)
    for routed in results:
        decision = routed.decision
        if not routed.routed:
            metrics.EVENTS_REJECTED.labels(routed.dlq_reason or "unknown").inc()
            if routed.dlq_reason == SPOOFED_SOURCE:
                sender = topics.sender_of(routed.origin.topic)
                metrics.SPOOF_ATTEMPTS.labels(
                    _label(routed.claimed_source), sender.value if sender else "unknown"
                ).inc()
            continue
        if decision is None:
            continue
        for delivery in decision.deliveries:
            metrics.EVENTS_ROUTED.labels(
                decision.sender.value, delivery.recipient.value, decision.event_type
            ).inc()
        for withheld in decision.withheld:
            code = withheld.reason.split(":", 1)[0].strip().replace(" ", "_").lower()
            if code != "sender":
                metrics.EVENTS_WITHHELD.labels(withheld.agency.value, code).inc()
        if routed.published_at is not None:
            metrics.PUBLISH_TO_ROUTED.labels(decision.event_type).observe(
                max(0.0, (wall - routed.published_at).total_seconds())
            )


def observe_aborted() -> None:
    metrics.ROUTER_TRANSACTIONS.labels("aborted").inc()


def _label(value: str) -> str:
    """A metric label from an untrusted field: agency codes only, anything else ``other``."""
    try:
        return Agency(value).value
    except ValueError:
        return "other"
