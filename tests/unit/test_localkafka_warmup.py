"""Making Kafka's internal topics on a fresh cluster, against a fake admin client (no broker)."""

from __future__ import annotations

from typing import Any

import kafka.errors as kerrors
import pytest

from bus389.errors import LocalKafkaError
from bus389.localkafka import warmup
from bus389.settings import Settings


class FakeAdmin:
    """Answers COORDINATOR_NOT_AVAILABLE ``busy`` times per coordinator type, then what a broker says."""

    def __init__(self, topics: list[str], busy: int) -> None:
        self.topics = topics
        self.busy = {"group": busy, "txn": busy}
        self.calls: list[str] = []
        self.closed = False

    def list_topics(self) -> list[str]:
        return list(self.topics)

    def _lookup(self, kind: str, topic: str) -> None:
        self.calls.append(kind)
        if self.busy[kind] > 0:
            self.busy[kind] -= 1
            if self.busy[kind] == 0:
                self.topics.append(topic)
            raise kerrors.CoordinatorNotAvailableError(f"FindCoordinator {kind}")

    def describe_groups(self, group_ids: list[str]) -> dict[str, Any]:
        self._lookup("group", "__consumer_offsets")
        return {group_ids[0]: {"group_state": "Dead"}}

    def describe_transactions(self, ids: list[str]) -> None:
        self._lookup("txn", "__transaction_state")
        raise kerrors.TransactionalIdNotFoundError(ids[0])  # the coordinator answered: no such id

    def close(self) -> None:
        self.closed = True


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(warmup.time, "sleep", lambda _: None)


def use(monkeypatch: pytest.MonkeyPatch, admin: FakeAdmin) -> None:
    monkeypatch.setattr(warmup, "make_admin", lambda settings, **kw: admin)


def test_both_topics_are_made_by_asking_for_their_coordinators(monkeypatch: pytest.MonkeyPatch) -> None:
    admin = FakeAdmin([], busy=3)
    use(monkeypatch, admin)
    said: list[str] = []
    made = warmup.create_internal_topics(Settings(bootstrap="127.0.0.1:1"), echo=said.append)
    assert made == ["__consumer_offsets", "__transaction_state"]
    assert admin.calls.count("group") == 4 and admin.calls.count("txn") == 4  # 3 busy, then answered
    assert said == ["creating Kafka's internal topics __consumer_offsets, __transaction_state"]
    assert admin.closed


def test_a_cluster_that_has_them_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    admin = FakeAdmin(["__consumer_offsets", "__transaction_state", "bus389.dlq"], busy=0)
    use(monkeypatch, admin)
    assert warmup.create_internal_topics(Settings(bootstrap="127.0.0.1:1")) == []
    assert admin.calls == []


def test_coordinators_that_never_answer_fail_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    admin = FakeAdmin([], busy=10**9)
    use(monkeypatch, admin)
    with pytest.raises(LocalKafkaError, match="were not ready within 0s .*CoordinatorNotAvailable"):
        warmup.create_internal_topics(Settings(bootstrap="127.0.0.1:1"), timeout_s=0)
    assert admin.closed
