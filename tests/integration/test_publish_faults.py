"""``bus389 publish`` under broker faults, on the 3-broker cluster (RF 3, min.insync.replicas 2).

- One broker down (killed just before, its partitions and maybe the transaction coordinator still
  failing over): the publish succeeds and every event is on the outbox once.
- Two brokers down (fewer in-sync replicas than ``min.insync.replicas``, and no controller quorum): the
  publish fails within its timeouts with a message and a non-zero exit, reports no success, and nothing
  of the file is visible to ``read_committed`` readers once the brokers are back.
- Brokers killed in the middle of a file published in several transactions: what is visible afterwards
  is exactly whole transactions, and exactly the ones the command said were committed.
- No broker at all: exit 3 and "no broker at ...".

No clock in the assertions: a publish that hangs is caught by its ``communicate`` timeout and by
pytest-timeout; how fast it gives up is measured by ``make bench``, not here.
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _chaos_cluster import ChaosCluster, heal, shared_cluster
from _wait import wait_for
from kafka.structs import TopicPartition

from bus389.chaos.checker import read_topic
from bus389.chaos.faults import bus389_argv
from bus389.codec import decode_event
from bus389.kafka import make_consumer
from bus389.producers.publisher import publish_file
from bus389.producers.readers import read_records
from bus389.settings import Settings
from bus389.topics import apply_topics

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The checkout this test runs from (examples, deploy files)."""

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture(scope="module")
def cluster() -> ChaosCluster:
    return shared_cluster()


@pytest.fixture
def durable(cluster: ChaosCluster) -> Iterator[Settings]:
    """This test's topics on the cluster, replicated 3 times with min ISR 2; every broker back afterwards."""
    settings = cluster.settings(topic_prefix=f"t_pf_{uuid.uuid4().hex[:8]}")
    report = apply_topics(settings)
    assert report.replication_factor == 3
    try:
        yield settings
    finally:
        heal(cluster)


def lines_file(tmp_path: Path, count: int) -> Path:
    """``count`` suspect sellers, line ``i`` with ``case_ref`` QNG-LINE-i (so a reader tells lines apart)."""
    base = json.loads(
        (REPO_ROOT / "examples" / "suspect_seller.jsonl").read_text(encoding="utf-8").splitlines()[0]
    )
    path = tmp_path / "sellers.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        for i in range(1, count + 1):
            record = json.loads(json.dumps(base))
            record["meta"]["case_ref"] = f"QNG-LINE-{i}"
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def publish(
    settings: Settings, path: Path, *, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.Popen[str]:
    full = {
        **os.environ,
        "BUS389_BOOTSTRAP": settings.bootstrap,
        "BUS389_TOPIC_PREFIX": settings.topic_prefix,
        **(env or {}),
    }
    return subprocess.Popen(
        bus389_argv("publish", "suspect_seller", "--as", "police", "--file", str(path)),
        env=full,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str], timeout: float = 300) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def _committed_offsets(settings: Settings) -> int:
    """The police outbox's last stable offsets, summed: above 0 once a transaction has committed."""
    consumer = make_consumer(settings, group_id=None)
    try:
        topic = settings.topics.outbox("police")
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(consumer.end_offsets(tps).values())
    finally:
        consumer.close()


def visible_lines(settings: Settings) -> dict[int, list[str]]:
    """Line number → event ids of that line on the police outbox (read_committed, from the beginning)."""
    lines: dict[int, list[str]] = {}
    for record in read_topic(settings, settings.topics.outbox("police"), timeout_s=120):
        decoded = decode_event(record.value, record.headers or [])
        line = int(str(decoded.meta["case_ref"]).rsplit("-", 1)[1])
        lines.setdefault(line, []).append(decoded.event_id)
    return lines


@pytest.mark.parametrize("victim", ["outbox leader", "first bootstrap broker"])
def test_one_broker_down_the_publish_succeeds(
    durable: Settings, cluster: ChaosCluster, tmp_path: Path, victim: str
) -> None:
    """Two in-sync replicas remain: the publish succeeds, every event on the outbox exactly once.

    The broker dies just before the publish starts, so its partitions (and, one time in three, the
    transaction coordinator of the run's random transactional id) are still failing over: the topic
    check may ask the dead broker, and ``init_transactions`` may wait on it. "first bootstrap broker"
    is the one every client tries first.
    """
    faults = cluster.faults()
    node = faults.leader_of(durable.topics.outbox("police"), 0) if victim == "outbox leader" else 1
    assert node is not None
    faults.kill(node)
    rc, out, err = finish(
        publish(durable, lines_file(tmp_path, 60), env={"BUS389_KAFKA__DELIVERY_TIMEOUT_MS": "60000"})
    )
    assert rc == 0, f"broker {node} down, the publish failed:\n{err[-3000:]}"
    assert "published 60 events" in out
    assert "Traceback" not in err
    lines = visible_lines(durable)
    assert sorted(lines) == list(range(1, 61))
    assert all(len(ids) == 1 for ids in lines.values()), "each event exactly once"


def _java_hash(text: str) -> int:
    """Java's ``String.hashCode`` (UTF-16 code units, 32-bit wrap-around), as Kafka hashes ids."""
    value = 0
    for unit in struct.unpack(f">{len(text.encode('utf-16-be')) // 2}H", text.encode("utf-16-be")):
        value = (31 * value + unit) & 0xFFFFFFFF
    return value - 2**32 if value >= 2**31 else value


def _partition_of(faults: Any, transactional_id: str) -> int:
    """The ``__transaction_state`` partition of ``transactional_id``: abs(hashCode(id)) mod the count."""
    [state] = faults.describe(["__transaction_state"])
    hashed = _java_hash(transactional_id)
    return (0 if hashed == -(2**31) else abs(hashed)) % len(state["partitions"])


def _transactional_id_and_its_coordinator(faults: Any, settings: Settings) -> tuple[str, int]:
    """A publish transactional id and the broker coordinating its transactions (Kafka: the leader of
    its ``__transaction_state`` partition)."""
    [state] = faults.describe(["__transaction_state"])
    leaders = {p["partition_index"]: p["leader_id"] for p in state["partitions"]}
    transactional_id = f"{settings.topic_prefix}.police.publish.{uuid.uuid4()}"
    return transactional_id, int(leaders[_partition_of(faults, transactional_id)])


def test_the_transaction_coordinator_s_broker_down_the_publish_succeeds(
    durable: Settings, cluster: ChaosCluster, tmp_path: Path
) -> None:
    """The case a random transactional id hits one time in three, made certain: the coordinator is dead.

    kafka-python's ``init_transactions`` kept asking the dead broker and gave up after 60 s
    ("Timeout expired while initializing transactional state"); the publisher retries with a fresh
    producer until the coordinator has moved.
    """
    faults = cluster.faults()
    transactional_id, node = _transactional_id_and_its_coordinator(faults, durable)
    records = read_records(lines_file(tmp_path, 20))
    faults.kill(node)
    report = publish_file(durable, "suspect_seller", "police", records, transactional_id=transactional_id)
    assert report.count == 20
    lines = visible_lines(durable)
    assert sorted(lines) == list(range(1, 21))
    assert all(len(ids) == 1 for ids in lines.values()), "each event exactly once"


def test_two_brokers_down_the_publish_fails_clearly_and_nothing_is_visible(
    durable: Settings, cluster: ChaosCluster, tmp_path: Path
) -> None:
    faults = cluster.faults()
    for node in (2, 3):
        faults.kill(node)
    rc, out, err = finish(
        publish(
            durable,
            lines_file(tmp_path, 40),
            env={"BUS389_KAFKA__DELIVERY_TIMEOUT_MS": "8000", "BUS389_KAFKA__REQUEST_TIMEOUT_MS": "5000"},
        ),
        timeout=240,
    )
    # Gave up within its timeouts: `finish` waits 240 s at most (a hang fails there), speed is for bench.
    assert rc != 0, f"a publish with 2 of 3 brokers down reported success:\n{out}\n{err[-2000:]}"
    assert "published" not in out
    messages = [line for line in err.splitlines() if line.startswith("error:")]
    assert messages, f"no error message:\n{err[-2000:]}"
    assert "Traceback" not in err
    heal(cluster)
    assert visible_lines(durable) == {}, "nothing of a failed file may be visible"


def test_brokers_killed_mid_file_leave_exactly_the_transactions_reported_committed(
    durable: Settings, cluster: ChaosCluster, tmp_path: Path
) -> None:
    chunk, count = 150, 1500
    process = publish(
        durable,
        lines_file(tmp_path, count),
        env={
            "BUS389_KAFKA__TRANSACTION_CHUNK_EVENTS": str(chunk),
            "BUS389_KAFKA__DELIVERY_TIMEOUT_MS": "8000",
            "BUS389_KAFKA__REQUEST_TIMEOUT_MS": "5000",
        },
    )
    # Kill as soon as the first transaction is committed (visible to read_committed readers): the
    # kill then lands mid-file whatever the speed of this machine, with nine transactions to go.
    faults = cluster.faults()
    try:
        wait_for(
            lambda: process.poll() is not None or _committed_offsets(durable) > 0,
            180,
            "the first transaction of the file to be committed",
            interval_s=0.05,
        )
    finally:
        if process.poll() is None:
            for node in (2, 3):
                faults.kill(node)
    rc, out, err = finish(process, timeout=240)
    heal(cluster)
    lines = visible_lines(durable)
    assert all(len(ids) == 1 for ids in lines.values()), "no event twice"
    seen = sorted(lines)
    assert seen == list(range(1, len(seen) + 1)), "transactions commit in order: a prefix of the file"
    # The scenario was reached: some transactions committed and some not, and the command said so.
    assert rc != 0 and 0 < len(seen) < count, (
        f"the kill did not land mid-file (exit {rc}, {len(seen)} of {count} lines visible):\n{err[-2000:]}"
    )
    assert "not committed:" in err or "commit not confirmed" in err, err[-2000:]
    assert "published" not in out
    assert len(seen) % chunk == 0, f"{len(seen)} lines visible: half a transaction ({chunk} events each)"
    committed_part = (
        err.split("committed (on the topic):", 1)[1].split("\n", 1)[0] if "committed (on" in err else ""
    )
    reported = set(UUID.findall(committed_part))
    assert reported, f"the command reported no committed transaction, yet {len(seen)} lines are visible"
    visible_ids = {i for ids in lines.values() for i in ids}
    if "commit not confirmed" in err:
        unconfirmed = set(
            UUID.findall(err.split("commit not confirmed (check the topic):", 1)[1].split("\n", 1)[0])
        )
        assert reported <= visible_ids <= reported | unconfirmed
    else:
        assert visible_ids == reported, "what is visible is exactly what the command said was committed"


def test_no_broker_at_all_fails_fast_with_exit_3(tmp_path: Path) -> None:
    settings = Settings(bootstrap="127.0.0.1:29099", topic_prefix=f"t_pf_{uuid.uuid4().hex[:8]}")
    rc, out, err = finish(
        publish(settings, lines_file(tmp_path, 3), env={"BUS389_KAFKA__REQUEST_TIMEOUT_MS": "3000"}),
        timeout=120,
    )
    assert rc == 3 and "no broker at 127.0.0.1:29099" in err and "published" not in out, err
