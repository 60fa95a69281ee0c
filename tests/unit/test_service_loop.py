"""The shared inbox loop against a fake consumer whose poll and commit fail as they do while a broker is
killed or paused: the loop backs off and goes on (re-creating a closed consumer), never skips a batch,
and ends only on an authorization or configuration error, with a message saying so."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import kafka.errors as kerrors
import pytest
from _ict_records import T0, request_record

from bus389 import recovery
from bus389.agencies import Agency
from bus389.codec import encode_event
from bus389.errors import BrokerError
from bus389.lag import unregister_lag_collector
from bus389.runtime import inbox_loop as service_module
from bus389.runtime.inbox_loop import InboxMessage, run_inbox_service
from bus389.runtime.stop import StopFlag
from bus389.settings import Settings

TOPIC = "t_loop.inbox.ict"


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    timestamp: int = T0


def records(count: int, start: int = 0) -> list[Record]:
    out = []
    for offset in range(start, start + count):
        encoded = encode_event(request_record())
        out.append(Record(TOPIC, 0, offset, encoded.key, encoded.value, list(encoded.headers)))
    return out


@dataclass
class Log:
    """Shared by every fake consumer the loop makes: the inbox (offset 0..n) and what was committed."""

    inbox: list[Record]
    committed: int = 0
    """The group's committed offset (next record to read)."""
    made: int = 0
    closed: int = 0
    commits_ok: int = 0


@dataclass
class FakeConsumer:
    """A consumer of one partition; ``poll_errors`` / ``commit_errors`` are raised one per call first."""

    log: Log
    poll_errors: list[BaseException] = field(default_factory=list)
    commit_errors: list[BaseException] = field(default_factory=list)
    batch: int = 2
    position: int = 0
    is_closed: bool = False

    def __post_init__(self) -> None:
        self.position = self.log.committed  # a new member starts at the committed offset

    def poll(self, timeout_ms: int = 0) -> dict[Any, list[Record]]:
        if self.is_closed:
            raise kerrors.IllegalStateError("KafkaConsumer is closed")
        if self.poll_errors:
            raise self.poll_errors.pop(0)
        got = self.log.inbox[self.position : self.position + self.batch]
        self.position += len(got)
        return {("t", 0): got} if got else {}

    def assignment(self) -> set[tuple[str, int]]:
        return {("t", 0)}

    def commit(self, offsets: Any = None) -> None:
        if self.is_closed:
            raise kerrors.IllegalStateError("KafkaConsumer is closed")
        if self.commit_errors:
            raise self.commit_errors.pop(0)
        self.log.committed = self.position
        self.log.commits_ok += 1

    def close(self, autocommit: bool = True) -> None:
        assert autocommit is False
        self.is_closed = True
        self.log.closed += 1


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    slept: list[float] = []
    monkeypatch.setattr(recovery, "_sleep", slept.append)
    yield slept
    unregister_lag_collector()


@pytest.fixture
def settings() -> Settings:
    return Settings(bootstrap="127.0.0.1:1", topic_prefix="t_loop")


def run(
    settings: Settings,
    consumers: list[FakeConsumer],
    *,
    handle: Callable[[InboxMessage], None] | None = None,
    max_idle_polls: int = 2,
    stop: StopFlag | None = None,
) -> list[int]:
    """Run the loop over ``consumers`` (one per (re)creation); returns the offsets handled, in order."""
    handled: list[int] = []
    made = iter(consumers)

    def factory() -> FakeConsumer:
        consumer = next(made)
        consumer.log.made += 1
        return consumer

    def default_handle(message: InboxMessage) -> None:
        handled.append(message.offset)

    run_inbox_service(
        settings,
        agency=Agency.ICT,
        group_id="t_loop.ict.test",
        handle=handle or default_handle,
        stop=stop,
        max_idle_polls=max_idle_polls,
        consumer_factory=factory,
    )
    return handled


def test_a_timeout_from_poll_is_waited_out(settings: Settings, no_sleep: list[float]) -> None:
    log = Log(records(3))
    consumer = FakeConsumer(
        log, poll_errors=[kerrors.KafkaTimeoutError("poll"), kerrors.NodeNotReadyError(3)]
    )
    assert run(settings, [consumer]) == [0, 1, 2]
    assert log.committed == 3
    assert log.made == 1
    assert no_sleep, "the loop backed off"


def test_a_timeout_from_commit_keeps_the_batch_and_commits_it_later(settings: Settings) -> None:
    log = Log(records(4))
    consumer = FakeConsumer(
        log, commit_errors=[kerrors.KafkaTimeoutError("commit"), kerrors.UnknownBrokerIdError(3)]
    )
    assert run(settings, [consumer]) == [0, 1, 2, 3]  # nothing skipped, nothing handled twice
    assert log.committed == 4
    assert log.made == 1


def test_a_consumer_closed_underneath_is_recreated_and_the_batch_read_again(settings: Settings) -> None:
    log = Log(records(4))
    first = FakeConsumer(log, commit_errors=[kerrors.IllegalStateError("KafkaConsumer is closed")])
    second = FakeConsumer(log)
    handled = run(settings, [first, second])
    # The first batch was handled but never committed: the new consumer reads it again (idempotent).
    assert handled == [0, 1, 0, 1, 2, 3]
    assert log.committed == 4
    assert log.made == 2 and first.is_closed


def test_a_poll_that_keeps_failing_gets_a_new_consumer(settings: Settings) -> None:
    log = Log(records(2))
    failures = 10
    broken = FakeConsumer(log, poll_errors=[kerrors.UnknownBrokerIdError(3)] * failures)
    fresh = FakeConsumer(log)
    assert run(settings, [broken, fresh]) == [0, 1]
    assert log.made == 2 and broken.is_closed
    # Replaced after _REBUILD_AFTER failures in a row (not one poll later, not one earlier).
    rebuild_after = service_module._REBUILD_AFTER
    assert 1 < rebuild_after < failures
    assert len(broken.poll_errors) == failures - rebuild_after


def test_a_broker_away_while_re_creating_the_consumer_is_waited_out(settings: Settings) -> None:
    log = Log(records(2))
    broken = FakeConsumer(log, poll_errors=[kerrors.IllegalStateError("KafkaConsumer is closed")])
    made = [0]
    fresh = FakeConsumer(log)

    def factory() -> FakeConsumer:
        made[0] += 1
        if made[0] == 1:
            return broken
        if made[0] < 4:
            raise BrokerError(
                "Kafka: KafkaConnectionError", retriable=True
            ) from kerrors.KafkaConnectionError()
        return fresh

    handled: list[int] = []
    run_inbox_service(
        settings,
        agency=Agency.ICT,
        group_id="g",
        handle=lambda m: handled.append(m.offset),
        max_idle_polls=2,
        consumer_factory=factory,
    )
    assert handled == [0, 1]
    assert made[0] == 4


def test_an_authorization_error_ends_the_loop_with_a_clear_message(settings: Settings) -> None:
    log = Log(records(2))
    consumer = FakeConsumer(log, poll_errors=[kerrors.GroupAuthorizationFailedError("t_loop.ict.test")])
    with pytest.raises(BrokerError) as caught:
        run(settings, [consumer])
    assert not caught.value.retriable and caught.value.exit_code == 3
    assert "ict: Kafka refused poll for good (GroupAuthorizationFailedError" in str(caught.value)
    assert "check the ACLs" in str(caught.value)
    assert consumer.is_closed


def test_a_commit_refused_by_an_acl_ends_the_loop(settings: Settings) -> None:
    log = Log(records(2))
    consumer = FakeConsumer(log, commit_errors=[kerrors.GroupAuthorizationFailedError("g")])
    with pytest.raises(BrokerError, match="refused the offset commit for good"):
        run(settings, [consumer])
    assert log.committed == 0


def test_stopping_while_the_commit_fails_returns_and_leaves_the_batch_to_be_read_again(
    settings: Settings,
) -> None:
    log = Log(records(2))
    stop = StopFlag()
    failures = 10
    consumer = FakeConsumer(log, commit_errors=[kerrors.KafkaTimeoutError("commit")] * failures)

    def handle(message: InboxMessage) -> None:
        stop.set()  # SIGTERM while the batch is in hand

    run(settings, [consumer], handle=handle, stop=stop, max_idle_polls=100)
    assert log.committed == 0  # not committed, so the next start reads it again: nothing lost
    # One attempt after the batch, then _FINAL_COMMIT_ATTEMPTS when stopping; then it gives up cleanly.
    final_attempts = service_module._FINAL_COMMIT_ATTEMPTS
    assert 1 + final_attempts < failures
    assert len(consumer.commit_errors) == failures - 1 - final_attempts
    assert consumer.is_closed


def test_a_retriable_failure_that_recovers_while_stopping_is_still_committed(settings: Settings) -> None:
    log = Log(records(2))
    stop = StopFlag()
    consumer = FakeConsumer(log, commit_errors=[kerrors.RequestTimedOutError()])

    def handle(message: InboxMessage) -> None:
        stop.set()

    run(settings, [consumer], handle=handle, stop=stop, max_idle_polls=100)
    assert log.committed == 2


def test_a_polled_batch_is_handled_urgent_first_and_each_case_key_in_order(settings: Settings) -> None:
    def event(urgency: str, case_ref: str) -> Record:
        encoded = encode_event(request_record(urgency=urgency, case_ref=case_ref))
        return Record(TOPIC, 0, 0, encoded.key, encoded.value, list(encoded.headers))

    batch = [
        event("ROUTINE", "A"),  # 0
        event("ROUTINE", "B"),  # 1
        event("IMMEDIATE", "C"),  # 2
        event("PRIORITY", "A"),  # 3: carries 0, its case's earlier event, along
    ]
    for offset, record in enumerate(batch):
        record.offset = offset
    log = Log(batch)
    assert run(settings, [FakeConsumer(log, batch=4)]) == [2, 0, 3, 1]
    assert log.committed == 4
