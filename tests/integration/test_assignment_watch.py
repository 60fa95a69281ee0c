"""An agency's inbox group whose leader gave its partitions to no one (see ``_group_support``), on the real
broker: the shared inbox loop's member notices, rejoins, and then reads its share."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import pytest
from _group_support import ForgetfulLeader, ForgetfulRange

from bus389 import metrics
from bus389.agencies import Agency
from bus389.assignment_watch import group_member_count
from bus389.codec import encode_event
from bus389.events import build_event
from bus389.kafka import make_producer
from bus389.service import StopFlag, run_inbox_service
from bus389.settings import KafkaClientSettings, Settings

pytestmark = pytest.mark.integration

REJOIN_S = 3.0


def wait_for(what: str, check: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


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
        wait_for("the leader to take every partition", lambda: len(leader.assignment()) == 3)
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
            wait_for("both members to hold partitions", lambda: len(leader.assignment()) in (1, 2))
            ids = put_one_per_partition(settings, topic)
            ours = set(range(settings.kafka.partitions)) - {tp.partition for tp in leader.assignment()}
            wait_for("the service to read its share", lambda: {p for p, _ in handled} == ours)
        finally:
            stop.set()
            service.join(timeout=60)
    assert not errors, errors
    assert metrics.REGISTRY.get_sample_value("bus389_group_rejoins_total", {"group": group}) == 1
    assert {event_id for _, event_id in handled} <= ids
    assert len(handled) == len(ours), handled
