"""The router against a fake cluster whose every call can fail as during a leader change or a broker kill.

Every broker error, whatever kafka-python's ``retriable`` flag says (``UnknownBrokerIdError`` says no),
from any call (init, poll, send, flush, the offsets, the commit, the committed offsets, the metadata)
must end in abort or rebuild, a re-read from the committed offsets and a backoff: never an exit, never
a lost, duplicated or dead-lettered event. Only an authorization or configuration error stops it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import kafka.errors as kerrors
import pytest
from kafka import TopicPartition

from bus389 import kafka as bus_kafka
from bus389 import recovery
from bus389.agencies import Agency
from bus389.codec import decode_value, encode_event
from bus389.consumers.router import service as router_service
from bus389.consumers.router.service import RouterService
from bus389.errors import BrokerError
from bus389.events import build_event
from bus389.routing.policy import load_policy
from bus389.settings import RouterSettings, Settings
from bus389.signing import registry_topic

PREFIX = "t_rr"
OUTBOX = TopicPartition(f"{PREFIX}.outbox.police", 0)


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    timestamp: int = 0
    leader_epoch: int = -1


@dataclass
class Cluster:
    """The fake brokers: one outbox partition, the committed writes, the group's committed offset.

    ``faults[site]`` holds errors raised one per call at that call site; a site ending in ``+`` raises
    after the call took effect (a commit that went through but whose answer was lost).
    """

    outbox: list[Record]
    written: list[tuple[str, bytes, dict[str, bytes]]] = field(default_factory=list)
    committed: dict[TopicPartition, int] = field(default_factory=dict)
    faults: dict[str, list[BaseException]] = field(default_factory=dict)
    producers: int = 0
    consumers: int = 0
    aborted: int = 0

    def fault(self, site: str) -> None:
        queue = self.faults.get(site)
        if queue:
            raise queue.pop(0)

    def left(self) -> dict[str, int]:
        return {site: len(errors) for site, errors in self.faults.items() if errors}


class Future:
    def failed(self) -> bool:
        return False


class FakeProducer:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.open: list[tuple[str, bytes, dict[str, bytes]]] | None = None
        self.offsets: dict[Any, Any] = {}
        cluster.producers += 1

    def init_transactions(self) -> None:
        self.cluster.fault("init")

    def begin_transaction(self) -> None:
        self.cluster.fault("begin")
        self.open, self.offsets = [], {}

    def send(self, topic: str, *, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> Future:
        self.cluster.fault("send")
        assert self.open is not None
        self.open.append((topic, value, dict(headers)))
        return Future()

    def flush(self, timeout: float | None = None) -> None:
        self.cluster.fault("flush")

    def send_offsets_to_transaction(self, offsets: dict[Any, Any], group: Any) -> None:
        self.cluster.fault("send_offsets")
        self.offsets = offsets

    def commit_transaction(self) -> None:
        self.cluster.fault("commit")
        assert self.open is not None
        self.cluster.written.extend(self.open)
        for tp, meta in self.offsets.items():
            self.cluster.committed[tp] = meta.offset
        self.open = None
        self.cluster.fault("commit+")

    def abort_transaction(self) -> None:
        self.cluster.fault("abort")
        self.open = None
        self.cluster.aborted += 1

    def close(self, timeout: float | None = None) -> None:
        self.open = None


class FakeConsumer:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.listener: Any = None
        self.assigned = False
        self.position = 0
        self.closed = False
        cluster.consumers += 1

    def partitions_for_topic(self, topic: str) -> set[int]:
        self.cluster.fault("metadata")
        return {0}

    def subscribe(self, topics: list[str], listener: Any) -> None:
        assert OUTBOX.topic in topics
        self.listener = listener

    def poll(self, timeout_ms: int = 0, max_records: int | None = None) -> dict[Any, list[Record]]:
        assert not self.closed
        self.cluster.fault("poll")
        if not self.assigned:  # the first poll joins the group: assigned from the committed offset
            self.assigned = True
            self.position = self.cluster.committed.get(OUTBOX, 0)
            self.listener.on_partitions_assigned([OUTBOX])
            return {}
        got = self.cluster.outbox[self.position : self.position + (max_records or 500)]
        self.position += len(got)
        return {OUTBOX: got} if got else {}

    def assignment(self) -> set[TopicPartition]:
        return {OUTBOX} if self.assigned else set()

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.position = offset

    def seek_to_beginning(self, *tps: TopicPartition) -> None:
        self.position = 0

    def committed(self, tp: TopicPartition, timeout_ms: int | None = None) -> int | None:
        self.cluster.fault("committed")
        return self.cluster.committed.get(tp)

    def group_metadata(self) -> object:
        return object()

    def close(self, autocommit: bool = True) -> None:
        self.closed = True


def outbox_records(count: int) -> list[Record]:
    out = []
    for offset in range(count):
        event = build_event(
            "suspect_seller",
            Agency.POLICE,
            {
                "meta": {"sensitivity": "AMBER"},
                "seller": {"name": f"Cửa hàng {offset}"},
                "accounts": [{"platform": "WEBSITE", "account": f"shop{offset}.vn"}],
                "goods": "Mỹ phẩm",
                "violation_kinds": ["COUNTERFEIT"],
                "domains": [f"shop{offset}.vn"],
                "summary": "Bán hàng giả",
            },
        )
        encoded = encode_event(event)
        out.append(Record(OUTBOX.topic, 0, offset, encoded.key, encoded.value, list(encoded.headers)))
    return out


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(recovery, "_sleep", slept.append)
    return slept


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    made = Cluster(outbox_records(6))
    monkeypatch.setattr(bus_kafka, "make_producer", lambda settings, **kw: FakeProducer(made))
    monkeypatch.setattr(bus_kafka, "make_consumer", lambda settings, **kw: FakeConsumer(made))
    monkeypatch.setattr(router_service, "rebuild_from_audit", lambda settings, index, **kw: 0)
    # The key registry and the audit chains' heads: read from topics that hold nothing yet.
    monkeypatch.setattr(registry_topic, "read_to_end", lambda settings, topic, **kw: iter(()))
    yield made


def router(**overrides: Any) -> RouterService:
    chosen: dict[str, Any] = {"batch_max_events": 2, "batch_max_ms": 1, "transaction_timeout_s": 5}
    settings = Settings(
        bootstrap="127.0.0.1:1",
        topic_prefix=PREFIX,
        router=RouterSettings(**{**chosen, **overrides}),
    )
    return RouterService(settings, policy=load_policy(settings.router.policy_path), count_metrics=False)


def copies(cluster: Cluster) -> dict[str, list[str]]:
    """topic → the event ids written there (committed), in order."""
    out: dict[str, list[str]] = {}
    for topic, value, headers in cluster.written:
        if topic.endswith(".audit"):
            event_id = str(decode_value(value).record["event_id"])
        else:
            event_id = headers["ce_id"].decode()
        out.setdefault(topic.removeprefix(PREFIX + "."), []).append(event_id)
    return out


def event_ids(cluster: Cluster) -> list[str]:
    return [dict(r.headers)["ce_id"].decode() for r in cluster.outbox]


def assert_routed_once(cluster: Cluster) -> None:
    ids = event_ids(cluster)
    got = copies(cluster)
    assert "dlq" not in got, got.get("dlq")
    for topic in ("inbox.ict", "inbox.market_surveillance", "inbox.tax", "audit"):
        assert got[topic] == ids, topic  # every event once, in order
    assert "inbox.police" not in got  # the sender does not get its own event back
    assert cluster.committed[OUTBOX] == len(cluster.outbox)


TRANSIENT = [
    kerrors.UnknownBrokerIdError(3),
    kerrors.NotLeaderForPartitionError(),
    kerrors.KafkaConnectionError("111 ECONNREFUSED"),
    kerrors.KafkaTimeoutError("Timeout after 10000 ms"),
    kerrors.NodeNotReadyError(3),
]
SITES = ["init", "poll", "begin", "send", "flush", "send_offsets", "commit", "abort", "committed", "metadata"]


@pytest.mark.parametrize("site", SITES)
@pytest.mark.parametrize("error", TRANSIENT, ids=lambda e: type(e).__name__)
def test_a_broker_error_at_any_call_is_waited_out(cluster: Cluster, site: str, error: Exception) -> None:
    cluster.faults[site] = [error] if site == "abort" else [error, error]
    if site in ("abort", "committed"):  # reached only after a batch failed: make one fail first
        cluster.faults["commit"] = [kerrors.KafkaTimeoutError("commit")]
    stats = router().run(max_idle_polls=3)
    assert cluster.left() == {}, "every planned fault was met"
    assert_routed_once(cluster)
    assert stats.routed == len(cluster.outbox)
    assert sum(stats.dead_letters.values()) == 0


def test_a_commit_that_went_through_but_timed_out_is_not_routed_twice(cluster: Cluster) -> None:
    cluster.faults["commit+"] = [kerrors.KafkaTimeoutError("commit answer lost")]
    cluster.faults["abort"] = [kerrors.UnknownBrokerIdError(2)]  # and the producer must be rebuilt
    stats = router().run(max_idle_polls=3)
    assert_routed_once(cluster)  # re-read from the committed offsets, which had moved
    assert cluster.producers == 2
    assert stats.producers_built == 2


def test_a_long_outage_never_dead_letters_an_event(cluster: Cluster) -> None:
    # More failures in a row than the router's strikes: still the broker's fault, not the event's.
    cluster.faults["send"] = [kerrors.UnknownBrokerIdError(3)] * 8
    cluster.faults["committed"] = [kerrors.UnknownBrokerIdError(3)] * 2
    stats = router().run(max_idle_polls=3)
    assert cluster.left() == {}
    assert_routed_once(cluster)
    assert stats.dead_letters == {}


def test_committed_offsets_that_cannot_be_read_make_the_router_rejoin(cluster: Cluster) -> None:
    cluster.faults["commit"] = [kerrors.KafkaTimeoutError("commit")]
    cluster.faults["committed"] = [kerrors.NodeNotReadyError(1)] * 3
    stats = router().run(max_idle_polls=3)
    assert_routed_once(cluster)
    assert stats.rejoins == 1 and cluster.consumers == 2


def test_a_poll_that_keeps_failing_makes_the_router_rejoin(cluster: Cluster) -> None:
    cluster.faults["poll"] = [kerrors.UnknownBrokerIdError(3)] * 3
    stats = router().run(max_idle_polls=3)
    assert_routed_once(cluster)
    assert stats.rejoins == 1


@pytest.mark.parametrize(
    ("site", "error", "what"),
    [
        ("send", kerrors.TopicAuthorizationFailedError(), "the batch's transaction"),
        ("init", kerrors.TransactionalIdAuthorizationFailedError(), "the transactional producer"),
        ("poll", kerrors.GroupAuthorizationFailedError(), "the poll"),
        ("metadata", kerrors.SaslAuthenticationFailedError(), "join the group"),
    ],
)
def test_an_authorization_error_stops_the_router_with_a_clear_message(
    cluster: Cluster, site: str, error: Exception, what: str
) -> None:
    cluster.faults[site] = [error]
    with pytest.raises(BrokerError) as caught:
        router().run(max_idle_polls=3)
    assert not caught.value.retriable
    assert f"router: Kafka refused {what} for good ({type(error).__name__}" in str(caught.value)
    assert "check the ACLs" in str(caught.value)
    assert "dlq" not in copies(cluster)


def test_a_record_the_broker_refuses_still_goes_to_the_dlq(cluster: Cluster) -> None:
    # The batch's own fault (too large): isolated and dead-lettered after the strikes, the rest routed.
    cluster.outbox = cluster.outbox[:1]
    cluster.faults["send"] = [kerrors.MessageSizeTooLargeError()] * 3
    stats = router().run(max_idle_polls=3)
    assert stats.dead_letters == {"router_error": 1}
    assert copies(cluster)["dlq"] == event_ids(cluster)
    assert cluster.committed[OUTBOX] == 1
