"""Kafka's internal topics on a fresh local cluster: made to exist while every broker is up.

``__consumer_offsets`` and ``__transaction_state`` are created by the brokers on first use, with the
cluster's replication factor (3 on a 3-broker cluster). Left to the first real client, the creation
delays its first transaction or group commit by seconds; and when a broker is down at that moment, the
new topics are born with a replica on the dead broker (under-replicated until it returns) while the
first client waits for the creation and the failover at once (measured on Kafka 4.1.1: up to 11 s for a
first ``init_transactions`` right after a broker kill, against half a second once the topics exist).

Kafka refuses ``CreateTopics`` for internal topics; what creates them is a client looking for its
coordinator (a ``FindCoordinator`` request): of a consumer group for the offsets topic, of a
transactional id for the transaction log. :func:`create_internal_topics` asks for both through the admin
client (describing a group and a transaction nobody uses: the answer is "no such group" and "no such
transactional id"), and repeats while the brokers answer ``COORDINATOR_NOT_AVAILABLE``, i.e. until the
topics exist and the coordinators' partitions have leaders. Nothing is left behind: no bus topic, no
group, no transactional id.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bus389.errors import BrokerError, LocalKafkaError
from bus389.kafka import kafka_errors, make_admin
from bus389.recovery import is_fatal

if TYPE_CHECKING:
    from bus389.settings import Settings

__all__ = ["INTERNAL_TOPICS", "WARMUP_ID", "create_internal_topics", "missing_internal_topics"]

log = logging.getLogger(__name__)

INTERNAL_TOPICS = ("__consumer_offsets", "__transaction_state")
WARMUP_ID = "bus389.localkafka.warmup"
"""The group and transactional id whose coordinators are looked up (never joined, never used)."""
_POLL_S = 0.25
_REQUEST_TIMEOUT_MS = 5_000


def missing_internal_topics(admin: Any) -> list[str]:
    """Which of :data:`INTERNAL_TOPICS` the cluster's metadata does not show yet."""
    with kafka_errors():
        present = set(admin.list_topics())
    return [topic for topic in INTERNAL_TOPICS if topic not in present]


def create_internal_topics(
    settings: Settings, *, timeout_s: float = 60.0, echo: Callable[[str], None] = lambda _: None
) -> list[str]:
    """Make the cluster create its internal topics (if missing) and wait until their coordinators answer.

    Returns the topics that were missing. Call it while every broker is up. Raises
    :class:`~bus389.errors.LocalKafkaError` when the coordinators do not answer within ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return _create_internal_topics(settings, timeout_s=timeout_s, echo=echo)
        except BrokerError as exc:
            # A broker that has just started may still refuse connections: only an authorization or
            # configuration failure is final, and the deadline bounds the rest.
            if is_fatal(exc) or time.monotonic() > deadline:
                raise
            log.info("internal topics: retrying after %s", exc)
            time.sleep(_POLL_S)


def _create_internal_topics(
    settings: Settings, *, timeout_s: float, echo: Callable[[str], None]
) -> list[str]:
    admin = make_admin(settings, request_timeout_ms=_REQUEST_TIMEOUT_MS, client_id="bus389-localkafka-warmup")
    try:
        with kafka_errors(settings=settings):
            missing = missing_internal_topics(admin)
        if not missing:
            return []
        echo(f"creating Kafka's internal topics {', '.join(missing)}")
        started = time.monotonic()
        deadline = started + timeout_s
        lookups: dict[str, Callable[[], object]] = {
            "__consumer_offsets": lambda: admin.describe_groups([WARMUP_ID]),
            "__transaction_state": lambda: admin.describe_transactions([WARMUP_ID]),
        }
        waiting = dict(lookups)
        last = ""
        while waiting:
            for topic, lookup in list(waiting.items()):
                try:
                    with kafka_errors(settings=settings):
                        lookup()
                except BrokerError as exc:
                    if exc.retriable:  # COORDINATOR_NOT_AVAILABLE while the topic is being made
                        last = f"{topic}: {exc}"
                        continue
                    # Any other answer (no such group or transactional id) came from the coordinator.
                del waiting[topic]
            if not waiting:
                break
            if time.monotonic() > deadline:
                raise LocalKafkaError(
                    f"Kafka's internal topics {', '.join(waiting)} were not ready within {timeout_s:g}s "
                    f"({last})"
                )
            time.sleep(_POLL_S)
        log.info("internal topics %s ready in %.1fs", ", ".join(missing), time.monotonic() - started)
        return missing
    finally:
        admin.close()
