"""The one topic scan (:mod:`bus389.topic_scan`) on a real broker: committed records only, up to the end
offsets taken at the start, from a time when asked, and a missing topic named."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import closing

import pytest
from _wait import wait_for

from bus389.kafka import kafka_errors, make_producer
from bus389.settings import Settings
from bus389.topic_scan import TopicMissingError, scan_topic

pytestmark = pytest.mark.integration


def _publish(settings: Settings, topic: str, tx_id: str, values: list[bytes], *, abort: list[bytes]) -> None:
    with make_producer(settings, transactional_id=tx_id) as producer, kafka_errors():
        producer.init_transactions()
        producer.begin_transaction()
        for value in abort:
            producer.send(topic, key=value, value=value)
        producer.flush()
        producer.abort_transaction()
        producer.begin_transaction()
        for value in values:
            producer.send(topic, key=value, value=value)
        producer.commit_transaction()


def test_a_scan_reads_every_committed_record_and_stops_at_the_end_offsets(
    settings: Settings, unique_group: Callable[..., str]
) -> None:
    topic = settings.topics.outbox("police")
    first = [f"one-{i}".encode() for i in range(20)]
    _publish(settings, topic, unique_group("police", "tx"), first, abort=[b"aborted"])
    records = scan_topic(settings, topic, timeout_s=60)
    seen = [next(records).value]
    # Published after the scan took its end offsets: not waited for, not read.
    _publish(settings, topic, unique_group("police", "tx"), [b"later"], abort=[])
    seen.extend(r.value for r in records)
    assert sorted(seen) == sorted(first)

    again = [r.value for r in scan_topic(settings, topic, timeout_s=60)]
    assert sorted(again) == sorted([*first, b"later"])


def test_a_scan_from_a_time_skips_what_came_before(
    settings: Settings, unique_group: Callable[..., str]
) -> None:
    topic = settings.topics.outbox("tax")
    _publish(settings, topic, unique_group("tax", "tx"), [b"old"], abort=[])
    (old,) = list(scan_topic(settings, topic, timeout_s=60))
    since_ms = old.timestamp + 1  # just after the old record, as the broker stamped it
    # the next record's timestamp must be after since_ms
    wait_for(lambda: time.time() * 1000 > since_ms, 5, "the clock to pass since_ms", interval_s=0.01)
    _publish(settings, topic, unique_group("tax", "tx"), [b"new"], abort=[])
    assert [r.value for r in scan_topic(settings, topic, timeout_s=60, since_ms=since_ms)] == [b"new"]
    assert sorted(r.value for r in scan_topic(settings, topic, timeout_s=60)) == [b"new", b"old"]


def test_leaving_a_scan_early_closes_it(settings: Settings, unique_group: Callable[..., str]) -> None:
    topic = settings.topics.outbox("ict")
    _publish(settings, topic, unique_group("ict", "tx"), [f"{i}".encode() for i in range(5)], abort=[])
    records = scan_topic(settings, topic, timeout_s=60)
    with closing(records):
        assert next(records).value is not None
    with pytest.raises(StopIteration):
        next(records)


def test_an_empty_topic_yields_nothing_and_a_missing_one_is_named(settings: Settings) -> None:
    assert list(scan_topic(settings, settings.topics.outbox("media"), timeout_s=30)) == []
    missing = f"{settings.topic_prefix}.no-such-topic"
    with pytest.raises(TopicMissingError) as raised:
        list(scan_topic(settings, missing, timeout_s=30))
    assert raised.value.retriable
    assert f"topic {missing} does not exist (create it with `bus389 topics apply`)" in str(raised.value)
