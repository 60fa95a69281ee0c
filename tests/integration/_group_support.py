"""A consumer group whose leader gives its partitions to no one, on the real broker.

:class:`ForgetfulLeader` is a plain kafka-python consumer whose range assignor "forgets": when the group
reaches two members it gives every member nothing, as kafka-python's own leader does when it assigns before
its metadata knows the topic (seen in CI: ``No partition metadata for topic``), and keeps doing so in
any later rebalance of the same members, as a group whose completed join was lost stays stuck. Only a
member that rejoins as a new consumer ends it: what :mod:`bus389.assignment_watch` does; the tests using
this show that it does.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from kafka.coordinator.assignors.abstract import ConsumerProtocolAssignment
from kafka.coordinator.assignors.range import RangePartitionAssignor

from bus389.kafka import make_consumer
from bus389.settings import Settings


class ForgetfulRange(RangePartitionAssignor):
    """``range``, except that once the group has two members it gives nothing to anyone for as long as
    the group has only those members: any number of rebalances later, until a new member joins."""

    forgot: ClassVar[list[int]] = []
    """The group size when it started forgetting (at most one entry); cleared by :class:`ForgetfulLeader`."""
    forgotten: ClassVar[set[str]] = set()
    """The member ids it gives nothing to."""

    @classmethod
    def assign(cls, cluster: Any, members: Any) -> dict[str, Any]:
        ids = {m.member_id for m in members}
        if len(members) > 1 and not cls.forgot:
            cls.forgot.append(len(members))
            cls.forgotten = ids
        if cls.forgot and ids <= cls.forgotten:
            return {m.member_id: ConsumerProtocolAssignment(cls.version, [], b"") for m in members}
        assigned: dict[str, Any] = super().assign(cluster, members)
        return assigned


class ForgetfulLeader:
    """The forgetful leader of ``group`` over ``topics``, polling in a thread while in a ``with``."""

    def __init__(self, settings: Settings, group: str, topics: list[str]) -> None:
        ForgetfulRange.forgot.clear()
        ForgetfulRange.forgotten = set()
        self.consumer = make_consumer(
            settings, group_id=group, partition_assignment_strategy=[ForgetfulRange]
        )
        # Its metadata first, so that it takes every partition while it is alone.
        for topic in topics:
            assert self.consumer.partitions_for_topic(topic), f"no metadata for {topic}"
        self.consumer.subscribe(topics=topics)
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
        ForgetfulRange.forgotten = set()
