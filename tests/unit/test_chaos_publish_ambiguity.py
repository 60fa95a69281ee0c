"""A commit that fails is not a transaction that was aborted: the chaos run's phantom, pinned without Kafka.

The chaos checker found an event that ``bus389 publish`` had reported "commit failed, transaction
aborted" on the bus afterwards: the broker leading the transaction coordinator was paused while the
commit (EndTxn) was in flight; the request timed out on the client, but the coordinator had the commit
and completed it once the broker resumed. Once a commit has been sent, a failure of it leaves the
outcome unknown: the publisher must say "may or may not be on the topic" (``outcome_unknown``), never
"nothing of it committed" — a clerk told the latter publishes the file again, and the cases are on the
bus twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kafka.errors as kerr
import pytest

from bus389.agencies import Agency
from bus389.codec import encode_event
from bus389.errors import PublishError
from bus389.events import build_event
from bus389.producers.publisher import OutgoingEvent, Publisher
from bus389.producers.tax.id_key import AlertIdKey
from bus389.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The checkout this test runs from (examples, deploy files)."""


class _Future:
    def get(self, timeout: float | None = None) -> Any:
        return None

    def failed(self) -> bool:
        return False


class _Producer:
    """A transactional producer whose commit request times out (the coordinator's broker is paused)."""

    def __init__(self, commit_error: Exception) -> None:
        self.commit_error = commit_error
        self.calls: list[str] = []

    def begin_transaction(self) -> None:
        self.calls.append("begin")

    def send(self, *args: Any, **kwargs: Any) -> _Future:
        self.calls.append("send")
        return _Future()

    def flush(self, timeout: float | None = None) -> None:
        self.calls.append("flush")

    def commit_transaction(self) -> None:
        self.calls.append("commit")
        raise self.commit_error

    def abort_transaction(self) -> None:
        self.calls.append("abort")
        raise kerr.KafkaError("cannot abort: a commit is in progress")

    def close(self, timeout: float | None = None) -> None:
        self.calls.append("close")


def _event() -> OutgoingEvent:
    event = build_event(
        "law_gap_proposal",
        Agency.ICT,
        {"meta": {"sensitivity": "GREEN"}, "regulation": "NĐ 52/2013", "problem": "x", "proposal": "y"},
    )
    return OutgoingEvent(1, event, encode_event(event))


@pytest.mark.parametrize(
    "error",
    [
        kerr.KafkaError(
            "Could not execute transactional request for unknown reasons: [Error 7] RequestTimedOutError"
        ),
        kerr.RequestTimedOutError(),
        kerr.NotCoordinatorError(),
    ],
    ids=["wrapped-timeout", "timeout", "not-coordinator"],
)
def test_a_failed_commit_is_reported_as_unknown_not_as_aborted(error: Exception) -> None:
    publisher = Publisher(Settings(bootstrap="127.0.0.1:1", topic_prefix="t_unit"), Agency.ICT)
    producer = _Producer(error)
    publisher._producer = producer  # what open() would have set up, without a broker
    event = _event()
    with pytest.raises(PublishError) as raised:
        publisher.publish([event])
    assert "commit" in producer.calls
    message = str(raised.value)
    assert "nothing of it committed" not in message and "transaction aborted" not in message, message
    assert "may or may not be on t_unit.outbox.ict" in message, message
    assert publisher.outcome_unknown, "the caller must learn that the events may be on the topic"
    assert raised.value.unconfirmed_event_ids == (event.event_id,)
    assert raised.value.uncommitted_event_ids == (), "not committed is what nobody knows"
    assert not raised.value.retriable, "retrying the same events could put them on the topic twice"
    # Closed at once and never aborted: an abort proves nothing about a commit the coordinator may have.
    assert "abort" not in producer.calls
    assert producer.calls[-1] == "close"
    with pytest.raises(PublishError, match="closed"):
        publisher.publish([_event()])


class _ChunkProducer(_Producer):
    """Commits every transaction but the ``fail_at``-th (0-based), whose commit fails with ``error``."""

    def __init__(self, error: Exception, fail_at: int) -> None:
        super().__init__(error)
        self.fail_at = fail_at
        self.commits = 0

    def init_transactions(self) -> None:
        self.calls.append("init")

    def commit_transaction(self) -> None:
        self.calls.append("commit")
        self.commits += 1
        if self.commits - 1 == self.fail_at:
            raise self.commit_error


class _Admin:
    def __init__(self, topics: list[str]) -> None:
        self.topics = topics

    def __enter__(self) -> _Admin:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def list_topics(self) -> list[str]:
        return self.topics


def _fake_kafka(monkeypatch: pytest.MonkeyPatch, settings: Settings, producer: _Producer) -> None:
    import bus389.kafka as kafka_module
    import bus389.producers.publisher as publisher_module

    monkeypatch.setattr(kafka_module, "make_producer", lambda *_a, **_k: producer)
    monkeypatch.setattr(publisher_module, "make_admin", lambda *_a, **_k: _Admin(settings.topics.all()))


def test_publish_file_names_the_unconfirmed_chunk_apart_from_committed_and_unsent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bus389.producers.publisher import publish_file
    from bus389.producers.readers import read_records

    settings = Settings(bootstrap="127.0.0.1:1", topic_prefix="t_unit", kafka={"transaction_chunk_events": 1})
    records = read_records(REPO_ROOT / "examples" / "suspect_seller.jsonl")  # 4 lines, one per transaction
    producer = _ChunkProducer(kerr.RequestTimedOutError(), fail_at=1)
    _fake_kafka(monkeypatch, settings, producer)
    with pytest.raises(PublishError) as raised:
        publish_file(settings, "suspect_seller", "police", records, source="s.jsonl")
    error = raised.value
    message = str(error)
    assert len(error.committed_event_ids) == 1
    assert len(error.unconfirmed_event_ids) == 1
    assert len(error.uncommitted_event_ids) == 2
    assert not set(error.unconfirmed_event_ids) & set(error.uncommitted_event_ids)
    assert "committed (on the topic): line 1 " in message
    assert (
        f"commit not confirmed (check the topic): line 2 (1 events: {error.unconfirmed_event_ids[0]})"
        in message
    )
    assert "not committed: line 3 " in message and "line 2" not in message.split("not committed:", 1)[1]
    assert "bus389 consume --as police --topic outbox" in message
    assert "publish again only the lines that are not on t_unit.outbox.police" in message
    assert "transaction aborted" not in message and "nothing was committed" not in message
    assert "abort" not in producer.calls
    assert producer.calls.count("begin") == 2, "nothing is sent after an unconfirmed commit"


def test_tax_publish_says_unconfirmed_alerts_may_be_there_and_a_rerun_is_safe(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import bus389.producers.tax.publish as tax_publish

    settings = Settings(bootstrap="127.0.0.1:1", topic_prefix="t_unit", kafka={"transaction_chunk_events": 4})
    monkeypatch.setattr(tax_publish, "published_event_ids", lambda *_a, **_k: set())
    monkeypatch.setattr(tax_publish, "load_alert_id_key", lambda *_a, **_k: AlertIdKey(b"k" * 32))
    producer = _ChunkProducer(kerr.NotCoordinatorError(), fail_at=1)
    _fake_kafka(monkeypatch, settings, producer)
    with pytest.raises(PublishError) as raised:
        tax_publish.publish_alerts(settings, REPO_ROOT / "examples" / "tax_undeclared_sellers.csv")
    error = raised.value
    message = str(error)
    # 11 alerts: committed 4, not confirmed 4, never sent 3.
    assert (len(error.committed_event_ids), len(error.unconfirmed_event_ids)) == (4, 4)
    assert len(error.uncommitted_event_ids) == 3
    assert not set(error.unconfirmed_event_ids) & set(error.uncommitted_event_ids)
    assert "4 of 11 alerts were committed before the failure" in message
    assert "4 alerts may or may not be on t_unit.outbox.tax" in message
    assert "re-running the file is safe" in message
    assert "nothing was committed" not in message and "transaction aborted" not in message
    assert not error.retriable
    assert "abort" not in producer.calls


def test_tax_publish_with_nothing_committed_and_an_unconfirmed_commit_never_says_nothing_committed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import bus389.producers.tax.publish as tax_publish

    settings = Settings(bootstrap="127.0.0.1:1", topic_prefix="t_unit")
    monkeypatch.setattr(tax_publish, "published_event_ids", lambda *_a, **_k: set())
    monkeypatch.setattr(tax_publish, "load_alert_id_key", lambda *_a, **_k: AlertIdKey(b"k" * 32))
    producer = _ChunkProducer(kerr.RequestTimedOutError(), fail_at=0)
    _fake_kafka(monkeypatch, settings, producer)
    with pytest.raises(PublishError) as raised:
        tax_publish.publish_alerts(settings, REPO_ROOT / "examples" / "tax_undeclared_sellers.csv")
    message = str(raised.value)
    assert "nothing was committed" not in message, message
    assert "11 alerts may or may not be on" in message
    assert raised.value.uncommitted_event_ids == ()
