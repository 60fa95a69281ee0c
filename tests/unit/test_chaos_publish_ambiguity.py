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

from typing import Any

import kafka.errors as kerr
import pytest

from bus389.agencies import Agency
from bus389.codec import encode_event
from bus389.errors import PublishError
from bus389.events import build_event
from bus389.settings import Settings
from producers.publisher import OutgoingEvent, Publisher


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


@pytest.mark.xfail(
    strict=True,
    reason=(
        "finding (producers/publisher.py): a commit_transaction that fails with a request timeout is "
        "reported as 'commit failed, transaction aborted' although the coordinator may have committed it"
    ),
)
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
    with pytest.raises(PublishError) as raised:
        publisher.publish([_event()])
    assert "commit" in producer.calls
    message = str(raised.value)
    assert "nothing of it committed" not in message and "transaction aborted" not in message, message
    assert publisher.outcome_unknown, "the caller must learn that the events may be on the topic"
