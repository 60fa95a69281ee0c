"""The router's strikes (:mod:`bus389.consumers.router.transaction`): a failing batch is read one event at
a time, and an event that fails alone three times is dead-lettered as ``router_error``, nothing else."""

from __future__ import annotations

from dataclasses import dataclass

from bus389.agencies import Topics
from bus389.consumers.router.transaction import ROUTER_ERROR, STRIKES, Strikes, struck_out


@dataclass
class Raw:
    topic: str
    partition: int
    offset: int
    key: bytes | None = b"k"
    value: bytes = b"\x00\x00\x00\x00\x01"
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp: int = 0


def test_a_failed_batch_is_read_one_event_at_a_time_for_a_batch_s_worth() -> None:
    strikes = Strikes(batch_max_events=4)
    assert strikes.batch_limit == 4
    strikes.isolate()
    for _ in range(4):
        assert strikes.batch_limit == 1
        strikes.committed()
    assert strikes.batch_limit == 4
    strikes.committed()
    assert strikes.single_left == 0


def test_an_event_strikes_out_on_its_third_failure_alone_and_others_keep_their_count() -> None:
    strikes = Strikes(batch_max_events=10)
    bad, other = Raw("p.outbox.police", 0, 7), Raw("p.outbox.police", 0, 8)
    assert [strikes.strike(bad) for _ in range(STRIKES)] == [False] * (STRIKES - 1) + [True]
    assert not strikes.strike(other)
    strikes.forget(bad)
    assert not strikes.strike(bad)  # forgotten once dead-lettered: a new count


def test_what_a_struck_out_event_writes_is_one_dlq_record() -> None:
    topics = Topics("p")
    raw = Raw("p.outbox.police", 2, 41)
    dead = struck_out(topics, raw, ValueError("bad input"))
    assert dead.dlq_reason == ROUTER_ERROR and not dead.routed
    assert f"{STRIKES} times: ValueError: bad input" in dead.dlq_detail
    (record,) = dead.outgoing
    assert record.topic == topics.dlq
    assert (dead.origin.topic, dead.origin.partition, dead.origin.offset) == ("p.outbox.police", 2, 41)
