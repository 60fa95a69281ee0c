"""A group whose leader gave its partitions to no one, on the real broker: the inbox loop's member notices
and rejoins, and then reads its share.

The leader here is a plain kafka-python consumer whose range assignor "forgets" once: the first time the
group has two members it gives every member nothing, as kafka-python's own leader does when it assigns
before its metadata knows the topic. Left alone, that group reads nothing, forever (the leader's metadata
did not change, so it never rebalances again); :mod:`bus389.assignment_watch` is what ends it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import pytest
from kafka.coordinator.assignors.abstract import ConsumerProtocolAssignment
from kafka.coordinator.assignors.range import RangePartitionAssignor

from bus389.agencies import Agency
from bus389.assignment_watch import group_member_count
from bus389.codec import encode_event
from bus389.events import build_event
from bus389.kafka import make_consumer, make_producer
from bus389.service import InboxMessage, StopFlag, run_inbox_service
from bus389.settings import KafkaClientSettings, Settings

pytestmark = pytest.mark.integration

REJOIN_S = 3.0


class ForgetfulRange(RangePartitionAssignor):
    """``range``, except that the first assignment of a group of two or more gives out nothing."""

    forgot: ClassVar[list[int]] = []

    @classmethod
    def assign(cls, cluster: Any, members: Any) -> dict[str, Any]:
        if len(members) > 1 and not cls.forgot:
            cls.forgot.append(len(members))
            return {m.member_id: ConsumerProtocolAssignment(cls.version, [], b"") for m in members}
        assigned: dict[str, Any] = super().assign(cluster, members)
        return assigned


class Leader:
    """The forgetful leader, polling in a thread until stopped."""

    def __init__(self, settings: Settings, group: str, topic: str) -> None:
        self.consumer = make_consumer(
            settings, group_id=group, topics=[topic], partition_assignment_strategy=[ForgetfulRange]
        )
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            self.consumer.poll(timeout_ms=200)

    def __enter__(self) -> Leader:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        self.consumer.close(autocommit=False)


def wait_for(what: str, check: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def watched_settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(kafka=KafkaClientSettings(unassigned_rejoin_s=REJOIN_S))


@pytest.fixture(autouse=True)
def fresh_assignor() -> Iterator[None]:
    ForgetfulRange.forgot.clear()
    yield
    ForgetfulRange.forgot.clear()


def put_one_per_partition(settings: Settings, topic: str) -> set[str]:
    producer = make_producer(settings)
    ids = set()
    try:
        for partition in range(settings.kafka.partitions):
            event = build_event(
                "suspect_seller",
                Agency.POLICE,
                {
                    "meta": {"sensitivity": "AMBER"},
                    "seller": {"name": f"Cửa hàng số {partition}"},
                    "accounts": [{"platform": "WEBSITE", "account": f"shop{partition}.vn"}],
                    "goods": "Mỹ phẩm",
                    "violation_kinds": ["COUNTERFEIT"],
                    "domains": [f"shop{partition}.vn"],
                    "summary": "Bán hàng giả",
                },
            )
            encoded = encode_event(event)
            producer.send(
                topic, key=encoded.key, value=encoded.value, headers=encoded.headers, partition=partition
            )
            ids.add(str(event.meta.event_id))
        producer.flush(timeout=30)
    finally:
        producer.close()
    return ids


def test_a_member_the_leader_gave_nothing_rejoins_and_reads_its_share(
    watched_settings: Settings,
    unique_group: Callable[..., str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = watched_settings
    group = unique_group("ict")
    topic = settings.topics.inbox(Agency.ICT)
    handled: list[tuple[int, str]] = []

    def handle(message: InboxMessage) -> None:
        handled.append((message.partition, message.event_id))

    stop = StopFlag()
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            run_inbox_service(
                settings, agency=Agency.ICT, group_id=group, handle=handle, stop=stop, poll_timeout_ms=200
            )
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    caplog.set_level(logging.INFO)
    with Leader(settings, group, topic) as leader:
        wait_for("the leader to take every partition", lambda: len(leader.consumer.assignment()) == 3)
        service = threading.Thread(target=serve, daemon=True)
        service.start()
        try:
            wait_for("the leader to give nothing to a group of two", lambda: ForgetfulRange.forgot == [2])
            assert group_member_count(settings, group) == 2
            wait_for(
                "the service to rejoin",
                lambda: any("no partition assigned for" in r.getMessage() for r in caplog.records),
                timeout_s=REJOIN_S + 30,
            )
            wait_for(
                "the group to settle with both members holding partitions",
                lambda: len(leader.consumer.assignment()) in (1, 2),
            )
            ids = put_one_per_partition(settings, topic)
            theirs = {tp.partition for tp in leader.consumer.assignment()}
            ours = set(range(settings.kafka.partitions)) - theirs
            wait_for("the service to read its share", lambda: {p for p, _ in handled} == ours)
        finally:
            stop.set()
            service.join(timeout=60)
    assert not errors, errors
    assert ours and theirs, (ours, theirs)
    assert {event_id for _, event_id in handled} <= ids
    assert len(handled) == len(ours), handled
