"""An agency's inbox group whose leader gave its partitions to no one (see ``_group_support``), on the real
broker: the shared inbox loop's member notices, rejoins, and then reads its share."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import pytest
from _group_support import ForgetfulLeader, ForgetfulRange
from _router_support import encode, suspect_seller, wait_until

from bus389 import metrics
from bus389.agencies import Agency
from bus389.assignment_watch import group_member_count
from bus389.kafka import make_producer
from bus389.runtime.inbox_loop import run_inbox_service
from bus389.runtime.stop import StopFlag
from bus389.settings import KafkaClientSettings, Settings

pytestmark = pytest.mark.integration

REJOIN_S = 3.0


def put_one_per_partition(settings: Settings, topic: str) -> set[str]:
    producer = make_producer(settings)
    ids = set()
    try:
        for partition in range(settings.kafka.partitions):
            event = suspect_seller(Agency.POLICE)
            key, value, headers = encode(event)
            producer.send(topic, key=key, value=value, headers=headers, partition=partition)
            ids.add(str(event.meta.event_id))
        producer.flush(timeout=30)
    finally:
        producer.close()
    return ids


def test_a_member_the_leader_gave_nothing_rejoins_and_reads_its_share(
    make_settings: Callable[..., Settings],
    unique_group: Callable[..., str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings(kafka=KafkaClientSettings(unassigned_rejoin_s=REJOIN_S))
    group = unique_group("ict")
    topic = settings.topics.inbox(Agency.ICT)
    handled: list[tuple[int, str]] = []
    stop = StopFlag()
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            run_inbox_service(
                settings,
                agency=Agency.ICT,
                group_id=group,
                handle=lambda message: handled.append((message.partition, message.event_id)),
                stop=stop,
                poll_timeout_ms=200,
            )
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    caplog.set_level(logging.INFO)
    with ForgetfulLeader(settings, group, [topic]) as leader:
        wait_until(lambda: len(leader.assignment()) == 3, 60, "the leader to take every partition")
        service = threading.Thread(target=serve, daemon=True)
        service.start()
        try:
            # Deadlines for a loaded 2-core machine, where one rebalance can take a minute; the service may
            # also give up on an assignment still in progress before the leader's, and rejoin more than once.
            # ``forgot`` is set only by an assignment of two or more members: the service was in the group.
            wait_until(lambda: bool(ForgetfulRange.forgot), 180, "the leader to give nothing out")
            wait_until(
                lambda: any("no partition assigned for" in r.getMessage() for r in caplog.records),
                180,
                "the service to rejoin",
            )
            wait_until(lambda: len(leader.assignment()) in (1, 2), 180, "both members to hold partitions")
            wait_until(lambda: group_member_count(settings, group) == 2, 180, "the group to have two members")
            ids = put_one_per_partition(settings, topic)
            ours = set(range(settings.kafka.partitions)) - {tp.partition for tp in leader.assignment()}
            wait_until(lambda: {p for p, _ in handled} == ours, 180, "the service to read its share")
        finally:
            stop.set()
            service.join(timeout=60)
    assert not errors, errors
    rejoins = metrics.REGISTRY.get_sample_value("bus389_group_rejoins_total", {"group": group})
    assert rejoins is not None and rejoins >= 1, rejoins
    assert {event_id for _, event_id in handled} <= ids
    assert len(handled) == len(ours), handled
