"""A consumer group whose leader gives its partitions to no one, on the real broker.

:class:`ForgetfulLeader` is a plain kafka-python consumer whose range assignor "forgets" once: the first
time the group has two members it gives every member nothing, as kafka-python's own leader does when it
assigns before its metadata knows the topic (seen in CI: ``No partition metadata for topic``). Left
alone, such a group reads nothing, forever: the leader's metadata did not change, so it never rebalances
again. :mod:`bus389.assignment_watch` is what ends it; the tests using this show that it does.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from kafka.coordinator.assignors.abstract import ConsumerProtocolAssignment
from kafka.coordinator.assignors.range import RangePartitionAssignor

from bus389.kafka import make_consumer
from bus389.settings import Settings


class ForgetfulRange(RangePartitionAssignor):
    """``range``, except that the first assignment of a group of two or more gives out nothing."""

    forgot: ClassVar[list[int]] = []
    """The group sizes it forgot (at most one entry); cleared by :class:`ForgetfulLeader`."""

    @classmethod
    def assign(cls, cluster: Any, members: Any) -> dict[str, Any]:
        if len(members) > 1 and not cls.forgot:
            cls.forgot.append(len(members))
            return {m.member_id: ConsumerProtocolAssignment(cls.version, [], b"") for m in members}
        assigned: dict[str, Any] = super().assign(cluster, members)
        return assigned


class ForgetfulLeader:
    """The forgetful leader of ``group`` over ``topics``, polling in a thread while in a ``with``."""

    def __init__(self, settings: Settings, group: str, topics: list[str]) -> None:
        ForgetfulRange.forgot.clear()
        self.consumer = make_consumer(
            settings, group_id=group, topics=topics, partition_assignment_strategy=[ForgetfulRange]
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="forgetful-leader", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.consumer.poll(timeout_ms=200)

    def assignment(self) -> set[Any]:
        return set(self.consumer.assignment())

    def __enter__(self) -> ForgetfulLeader:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.consumer.close(autocommit=False)
        ForgetfulRange.forgot.clear()
