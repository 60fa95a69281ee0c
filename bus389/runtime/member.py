"""The self-healing consumer-group member that the router and every inbox service read through.

A member is one kafka-python consumer subscribed to a fixed list of topics. It replaces itself, never
exits, when the consumer is broken (closed underneath, a poll or commit that keeps failing) or when
the group left it without partitions or dropped it (:mod:`bus389.assignment_watch`): the old consumer is
closed without committing and a new one joins, starting from the group's committed offsets. Replacing
happens between batches only, when nothing is in flight; the caller decides when (the router after a
failed transaction, the inbox loop when nothing is pending). A failure to join again is waited out
with backoff; only an authorization, authentication or configuration error ends the service
(:func:`bus389.recovery.fatal_error`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from bus389 import kafka as bus_kafka
from bus389.assignment_watch import AssignmentWatch
from bus389.recovery import Backoff, FailureKind, classify, fatal_error
from bus389.runtime.stop import StopFlag

__all__ = ["GroupMember"]

log = logging.getLogger(__name__)


class GroupMember:
    """One member of ``group_id`` reading ``topics``; :meth:`replace` swaps its consumer for a new one.

    ``topics_wait_s``: how long a join waits for every topic to show in the metadata before it
    subscribes (a member that joins before a topic shows is assigned nothing of it until its next
    metadata refresh). ``topics_wait_every_join``: wait on every join (the router), or on the first
    only (the inbox loop: on a replacement the call waits without a bound for a broker to answer, and
    the assignment watch covers what it would catch). ``factory`` (tests) replaces
    :func:`bus389.kafka.make_consumer` and the subscription; ``listener`` is the rebalance listener;
    ``consumer_options`` go to :func:`bus389.kafka.make_consumer`.
    """

    def __init__(
        self,
        settings: Any,
        *,
        group_id: str,
        topics: list[str],
        name: str,
        stop: StopFlag,
        topics_wait_s: float = 0.0,
        topics_wait_every_join: bool = False,
        listener: Any = None,
        factory: Callable[[], Any] | None = None,
        **consumer_options: Any,
    ) -> None:
        self.settings = settings
        self.group_id = group_id
        self.topics = topics
        self.name = name
        self.stop = stop
        self.topics_wait_s = topics_wait_s
        self.topics_wait_every_join = topics_wait_every_join
        self.listener = listener
        self._factory = factory
        self._options = consumer_options
        self.consumer: Any = None
        self.replaced = 0
        """How many times the consumer was replaced by a new member."""
        self.assignment_watch = AssignmentWatch(settings, group_id)

    def open(self) -> None:
        """Join with the first consumer; a failure is raised (the caller decides whether to retry)."""
        self.consumer = self._join(first=True)

    def _join(self, *, first: bool) -> Any:
        """A new consumer subscribed to the topics; on failure none is left behind (retry-safe)."""
        self.assignment_watch.reset()
        if self._factory is not None:
            return self._factory()
        with bus_kafka.kafka_errors(bootstrap=self.settings.bootstrap):
            consumer = bus_kafka.make_consumer(self.settings, group_id=self.group_id, **self._options)
        try:
            if first or self.topics_wait_every_join:
                self._await_topics(consumer)
            with bus_kafka.kafka_errors(bootstrap=self.settings.bootstrap):
                if self.listener is not None:
                    consumer.subscribe(topics=self.topics, listener=self.listener)
                else:
                    consumer.subscribe(topics=self.topics)
        except BaseException:
            _close_quietly(consumer, self.name)
            raise
        return consumer

    def _await_topics(self, consumer: Any) -> None:
        """Wait up to ``topics_wait_s`` until the metadata shows every topic (kafka-python joins
        without waiting for its first metadata, and a leader that assigns before it knows a topic
        gives it out to no one)."""
        missing = list(self.topics)
        deadline = time.monotonic() + self.topics_wait_s
        while missing and not self.stop.is_set:
            with bus_kafka.kafka_errors(bootstrap=self.settings.bootstrap):
                missing = [t for t in missing if not consumer.partitions_for_topic(t)]
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(0.5)  # a topic just created takes a moment to show in the metadata
        if missing:
            log.warning(
                "%s: no metadata for %s yet (run `bus389 topics apply`); picked up within %ds",
                self.name,
                ", ".join(missing),
                self.settings.kafka.metadata_max_age_ms // 1000,
            )

    def stuck(self) -> str | None:
        """Why the consumer should be replaced now (left without partitions, or dropped), or None. Between
        batches only, when nothing read is waiting for its commit."""
        return self.assignment_watch.check(self.consumer)

    def replace(self, why: str) -> bool:
        """Close the consumer without committing and join with a new one, retrying until it joins.

        The new member starts from the committed offsets: what was read and not committed comes again.
        False when stopped first; raises only an authorization, authentication or configuration error.
        """
        log.warning(
            "%s: %s: replacing the consumer by a new group member (uncommitted events are read again)",
            self.name,
            why,
            extra={"service": self.name},
        )
        consumer, self.consumer = self.consumer, None
        if consumer is not None:
            _close_quietly(consumer, self.name)
        backoff = Backoff()
        while not self.stop.is_set:
            try:
                self.consumer = self._join(first=False)
            except Exception as exc:  # noqa: BLE001 - sorted by classify: fatal ones are raised
                kind = classify(exc)
                if kind is FailureKind.FATAL:
                    raise fatal_error(self.name, "rejoining the group", exc) from exc
                if kind is FailureKind.REQUEST:
                    raise
                log.warning(
                    "%s: cannot rejoin the group yet (%s: %s); retrying in %.1fs",
                    self.name,
                    type(exc).__name__,
                    exc,
                    backoff.upcoming,
                    extra={"service": self.name},
                )
                backoff.wait(lambda: self.stop.is_set)
                continue
            self.replaced += 1
            return True
        return False

    def close(self) -> None:
        """Leave the group without committing (the owner commits what it handled before)."""
        consumer, self.consumer = self.consumer, None
        if consumer is not None:
            consumer.close(autocommit=False)


def _close_quietly(consumer: Any, name: str) -> None:
    try:
        consumer.close(autocommit=False)
    except Exception as exc:  # noqa: BLE001 - a broken consumer is being thrown away
        log.warning("%s: consumer close failed: %s", name, exc)
