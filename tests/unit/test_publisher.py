"""The publisher's transaction handling, against a fake producer: what is committed, aborted, reported.

The real broker path is in tests/integration/test_publish_consume.py; these cover the failures a real
broker does not produce on demand (an abort that fails, a commit that never answers).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import kafka.errors
import pytest

import bus389.kafka as kafka_module
import bus389.producers.publisher as publisher_module
from bus389.agencies import Agency
from bus389.errors import BrokerError, ConfigError, InputError, NoBrokerError, PublishError
from bus389.producers.publisher import Publisher, publish_file
from bus389.producers.readers import read_records
from bus389.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The checkout this test runs from (examples, deploy files)."""

SELLERS = read_records(REPO_ROOT / "examples" / "suspect_seller.jsonl")
FAST = {"delivery_timeout_ms": 1000, "request_timeout_ms": 1000}


class FakeFuture:
    def __init__(self, error: Exception | None) -> None:
        self.error = error

    def get(self, timeout: float | None = None) -> object:
        if self.error is not None:
            raise self.error
        return object()


class FakeProducer:
    """Records every call; ``fail_send_at`` makes the n-th send's future fail (0-based, over all sends)."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.sent: list[bytes] = []
        self.fail_send_at: int | None = None
        self.abort_error: Exception | None = None
        self.commit_blocks = threading.Event()
        self.commit_hangs = False
        self.closed_with: float | None = None

    def init_transactions(self) -> None:
        self.calls.append("init")

    def begin_transaction(self) -> None:
        self.calls.append("begin")

    def send(self, topic: str, *, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> FakeFuture:
        index = len(self.sent)
        self.sent.append(value)
        failing = index == self.fail_send_at
        return FakeFuture(kafka.errors.NotEnoughReplicasError("not enough replicas") if failing else None)

    def flush(self, timeout: float | None = None) -> None:
        self.calls.append("flush")

    def commit_transaction(self) -> None:
        self.calls.append("commit")
        if self.commit_hangs:
            self.commit_blocks.wait(30)

    def abort_transaction(self) -> None:
        self.calls.append("abort")
        if self.abort_error is not None:
            raise self.abort_error

    def close(self, timeout: float | None = None) -> None:
        self.calls.append("close")
        self.closed_with = timeout


class FakeAdmin:
    def __init__(self, topics: set[str]) -> None:
        self.topics = topics

    def __enter__(self) -> FakeAdmin:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def list_topics(self) -> set[str]:
        return self.topics


@contextmanager
def _fakes(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, *, topic_exists: bool = True
) -> Iterator[FakeProducer]:
    producer = FakeProducer()
    made: list[str | None] = []

    def make_producer(_settings: Settings, *, transactional_id: str | None = None, **_: Any) -> FakeProducer:
        made.append(transactional_id)
        return producer

    topics = set(settings.topics.all()) if topic_exists else set()
    monkeypatch.setattr(kafka_module, "make_producer", make_producer)
    monkeypatch.setattr(publisher_module, "make_admin", lambda _settings: FakeAdmin(topics))
    try:
        yield producer
    finally:
        producer.commit_blocks.set()
    if made:
        assert made[0] is not None
        assert made[0].startswith(f"{settings.topic_prefix}.police.publish.")


def _settings(**kafka: Any) -> Settings:
    return Settings(bootstrap="127.0.0.1:1", topic_prefix="unit", kafka={**FAST, **kafka})


def test_one_transaction_per_file(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings()
    with _fakes(monkeypatch, settings) as producer:
        report = publish_file(settings, "suspect_seller", "police", SELLERS)
    assert producer.calls == ["init", "begin", "flush", "commit", "flush", "close"]
    assert len(producer.sent) == 4
    assert report.count == 4
    assert [(c.first_line, c.last_line) for c in report.committed] == [(1, 4)]
    assert report.summary() == "published 4 events of suspect_seller to unit.outbox.police"


def test_chunks_and_a_failing_chunk_is_aborted_and_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(transaction_chunk_events=3)
    with _fakes(monkeypatch, settings) as producer:
        producer.fail_send_at = 3  # the first event of the second chunk (line 4)
        with pytest.raises(PublishError) as info:
            publish_file(settings, "suspect_seller", "police", SELLERS, source="s.jsonl")
    assert producer.calls[:8] == ["init", "begin", "flush", "commit", "begin", "flush", "abort", "flush"]
    error = info.value
    assert len(error.committed_event_ids) == 3
    assert len(error.uncommitted_event_ids) == 1
    message = str(error)
    assert "line 4 (event " in message
    assert "not acknowledged" in message
    assert "committed (on the topic): lines 1-3" in message
    assert "not committed: line 4" in message
    assert error.exit_code == 3


def test_a_failed_abort_closes_the_producer_without_retrying(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings()
    with _fakes(monkeypatch, settings) as producer:
        producer.fail_send_at = 0
        producer.abort_error = kafka.errors.KafkaTimeoutError("abort timed out")
        with pytest.raises(PublishError, match="nothing was committed before the failure"):
            publish_file(settings, "suspect_seller", "police", SELLERS)
    assert producer.calls.count("abort") == 1
    assert producer.calls[-1] == "close"
    assert producer.closed_with == 0


def test_a_broken_publisher_refuses_more_work(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings()
    events = publisher_module.prepare_events("suspect_seller", Agency.POLICE, SELLERS)
    with _fakes(monkeypatch, settings) as producer:
        producer.fail_send_at = 0
        producer.abort_error = kafka.errors.KafkaTimeoutError("abort timed out")
        with Publisher(settings, Agency.POLICE) as publisher:
            with pytest.raises(PublishError):
                publisher.publish(events[:1])
            with pytest.raises(PublishError, match="closed"):
                publisher.publish(events[1:])
    assert producer.calls.count("begin") == 1


def test_a_commit_that_never_answers_is_reported_as_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings()
    with _fakes(monkeypatch, settings) as producer:
        producer.commit_hangs = True
        with pytest.raises(PublishError) as info:
            publish_file(settings, "suspect_seller", "police", SELLERS)
    message = str(info.value)
    assert "commit not confirmed" in message
    assert "abort" not in producer.calls  # an abort after an unknown commit could not be trusted either
    assert producer.closed_with == 0


def test_missing_topic_is_a_config_error_before_any_producer(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings()
    with _fakes(monkeypatch, settings, topic_exists=False) as producer:
        with pytest.raises(ConfigError, match="bus389 topics apply"):
            publish_file(settings, "suspect_seller", "police", SELLERS)
    assert producer.calls == []


def test_dry_run_sends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings()
    with _fakes(monkeypatch, settings) as producer:
        report = publish_file(settings, "suspect_seller", "police", SELLERS, dry_run=True, source="x.jsonl")
    assert producer.calls == []
    assert report.count == 4
    assert report.summary().startswith("dry run: 4 valid suspect_seller events in x.jsonl")


def test_unknown_agency_and_event_type(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings = _settings()
    with _fakes(monkeypatch, settings) as producer:
        with pytest.raises(InputError, match="unknown agency 'tax_office'.*police"):
            publish_file(settings, "suspect_seller", "tax_office", SELLERS)
        with pytest.raises(InputError, match="unknown event type 'seller'.*suspect_seller"):
            publish_file(settings, "seller", "police", SELLERS)
    assert producer.calls == []


# --- opening during a broker failure: retried within the delivery timeout ----------------------------


class FlakyAdmin(FakeAdmin):
    """``list_topics`` refuses ``failures`` times (the broker it asked just died), then answers."""

    def __init__(self, topics: set[str], failures: int) -> None:
        super().__init__(topics)
        self.failures = failures
        self.calls = 0

    def list_topics(self) -> set[str]:
        self.calls += 1
        if self.calls <= self.failures:
            raise kafka.errors.KafkaConnectionError("111 ECONNREFUSED")
        return self.topics


class InitProducer(FakeProducer):
    def __init__(self, init_error: Exception | None = None, hang: threading.Event | None = None) -> None:
        super().__init__()
        self.init_error = init_error
        self.hang = hang

    def init_transactions(self) -> None:
        self.calls.append("init")
        if self.hang is not None:
            self.hang.wait(30)
        if self.init_error is not None:
            raise self.init_error


def _opening(
    monkeypatch: pytest.MonkeyPatch, admin: FakeAdmin, producers: list[FakeProducer]
) -> list[dict[str, Any]]:
    """Hand out ``admin`` and then ``producers`` one by one; return the overrides each producer got."""
    made: list[dict[str, Any]] = []

    def make_producer(_settings: Settings, **overrides: Any) -> FakeProducer:
        made.append(overrides)
        return producers[len(made) - 1]

    monkeypatch.setattr(kafka_module, "make_producer", make_producer)
    monkeypatch.setattr(publisher_module, "make_admin", lambda _settings: admin)
    monkeypatch.setattr(kafka_module, "_RETRY_BACKOFF_S", (0.01,))
    return made


def _three_brokers(**kafka: Any) -> Settings:
    return Settings(bootstrap="b1:9092,b2:9092,b3:9092", topic_prefix="unit", kafka={**FAST, **kafka})


def test_a_topic_check_refused_by_a_dead_broker_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _three_brokers()
    admin = FlakyAdmin(set(settings.topics.all()), failures=2)
    producer = InitProducer()
    _opening(monkeypatch, admin, [producer])
    report = publish_file(settings, "suspect_seller", "police", SELLERS)
    assert admin.calls == 3, "one admin client, asked again (the dead broker is in backoff in it)"
    assert report.count == 4
    assert producer.calls[:2] == ["init", "begin"]


def test_init_transactions_stuck_on_a_dead_coordinator_is_retried_on_a_fresh_producer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _three_brokers()
    stuck = threading.Event()
    first = InitProducer(hang=stuck)  # waits on the dead coordinator: never answers in time
    second = InitProducer(
        kafka.errors.KafkaTimeoutError("Timeout expired while initializing transactional state")
    )
    third = InitProducer()
    made = _opening(monkeypatch, FakeAdmin(set(settings.topics.all())), [first, second, third])
    monkeypatch.setattr(kafka_module, "init_timeout_s", lambda _settings: 0.2)
    try:
        report = publish_file(settings, "suspect_seller", "police", SELLERS)
    finally:
        stuck.set()
    assert report.count == 4
    assert [p.closed_with for p in (first, second)] == [0, 0], "each abandoned producer closed at once"
    assert "commit" in third.calls
    # The same transactional id every time; the bootstrap brokers in another order each time.
    assert len({m["transactional_id"] for m in made}) == 1
    assert [m["bootstrap_servers"][0] for m in made] == ["b1:9092", "b2:9092", "b3:9092"]


def test_no_broker_answering_at_all_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _three_brokers()
    attempts: list[int] = []

    def make_admin(_settings: Settings) -> FakeAdmin:
        attempts.append(1)
        raise NoBrokerError("no broker at b1:9092,b2:9092,b3:9092", retriable=True)

    monkeypatch.setattr(publisher_module, "make_admin", make_admin)
    with pytest.raises(NoBrokerError):
        publish_file(settings, "suspect_seller", "police", SELLERS)
    assert attempts == [1]


def test_a_non_retriable_error_while_opening_is_raised_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _three_brokers()
    denied = InitProducer(kafka.errors.TransactionalIdAuthorizationFailedError())
    made = _opening(monkeypatch, FakeAdmin(set(settings.topics.all())), [denied])
    with pytest.raises(BrokerError, match="TransactionalIdAuthorizationFailed"):
        publish_file(settings, "suspect_seller", "police", SELLERS)
    assert len(made) == 1
    assert denied.closed_with == 0


@pytest.mark.timeout(60)  # retries that never stopped would hang: caught here, not by a clock assert
def test_retries_stop_at_the_delivery_timeout_and_say_so(monkeypatch: pytest.MonkeyPatch) -> None:
    timeout_ms, backoff_s = 1000, 0.05
    settings = _three_brokers(delivery_timeout_ms=timeout_ms)
    admin = FlakyAdmin(set(settings.topics.all()), failures=10**6)
    _opening(monkeypatch, admin, [])
    monkeypatch.setattr(kafka_module, "_RETRY_BACKOFF_S", (backoff_s,))
    with pytest.raises(BrokerError) as raised:
        publish_file(settings, "suspect_seller", "police", SELLERS)
    message = str(raised.value)
    assert "ECONNREFUSED" in message and "kafka.delivery_timeout_ms" in message, message
    assert f"checking that {settings.topics.outbox('police')} exists" in message
    # It retried, and stopped: each retry waits at least the backoff, so no more attempts than fit in
    # the delivery timeout (plus the first) can have been made before it gave up.
    assert 3 < admin.calls <= timeout_ms / 1000 / backoff_s + 1, admin.calls
    assert raised.value.exit_code == 3
