"""`bus389 kafka up|down|status|kill|start` for real: JVMs on loopback, never on 9092.

Each test has its own data dir and its own ports, found free when it starts (:func:`free_base_port`: a
broker's client ports and, 100 above, its controller ports), so none touches the shared development
broker, another test's cluster or anything else this machine runs.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _ports import free_base_port, port_free
from _wait import wait_for

from bus389.chaos.faults import bus389_argv
from bus389.kafka import (
    broker_count,
    kafka_errors,
    make_admin,
    make_consumer,
    make_producer,
    open_transactional_producer,
    retry_until,
)
from bus389.logs import mask_secrets
from bus389.safe_text import for_terminal
from bus389.settings import KafkaClientSettings, Settings
from bus389.topics import apply_topics

Cli = Callable[..., subprocess.CompletedProcess[str]]

HEAP = {"BUS389_LOCAL__HEAP": "384m"}


@pytest.fixture
def data_dir(bus389_cli: Cli) -> Iterator[Path]:
    """A cluster's data dir outside pytest's basetemp (concurrent pytest sessions prune old basetemps,
    which would delete a running broker's files); whatever the test left running is stopped after."""
    path = Path(tempfile.mkdtemp(prefix="bus389-kafka-test-"))
    yield path
    if (path / "state.json").exists():
        bus389_cli("kafka", "down", "--data-dir", str(path), timeout=200)
    shutil.rmtree(path, ignore_errors=True)


def pid_running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def state_of(data_dir: Path) -> Any:
    return json.loads((data_dir / "state.json").read_text())


def test_up_is_idempotent_status_tells_and_down_stops_only_ours(bus389_cli: Cli, data_dir: Path) -> None:
    where = ["--data-dir", str(data_dir)]
    base = free_base_port()
    port = ["--base-port", str(base)]

    before = bus389_cli("kafka", "status", *where)
    assert before.returncode == 1
    assert "down" in before.stdout

    up = bus389_cli("kafka", "up", *where, *port, env=HEAP)
    assert up.returncode == 0, up.stderr
    assert f"BUS389_BOOTSTRAP=127.0.0.1:{base}" in up.stdout
    state = state_of(data_dir)
    [broker] = state["brokers"]
    pid = broker["pid"]
    assert pid_running(pid)
    assert (data_dir / "broker-1" / "logs" / "server.log").stat().st_size > 0

    # The cluster answers a real client, with exactly the one broker we started, and `up` already made
    # Kafka's internal topics (no client has used a group or a transaction yet).
    client = Settings(bootstrap=f"127.0.0.1:{base}")
    with make_admin(client) as admin, kafka_errors():
        assert broker_count(admin) == 1
        assert admin.describe_cluster()["cluster_id"] == state["cluster_id"]
        assert {"__consumer_offsets", "__transaction_state"} <= set(admin.list_topics())
    assert "creating Kafka's internal topics __consumer_offsets, __transaction_state" in up.stderr

    again = bus389_cli("kafka", "up", *where, *port, env=HEAP)
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stdout
    assert state_of(data_dir)["brokers"][0]["pid"] == pid

    other_size = bus389_cli("kafka", "up", "--brokers", "2", *where, *port, env=HEAP)
    assert other_size.returncode == 4
    assert "1-broker cluster is running" in other_size.stderr

    status = bus389_cli("kafka", "status", *where)
    assert status.returncode == 0, status.stdout
    assert f"broker 1: pid {pid}, port {base}, alive, unfenced" in status.stdout
    assert "cluster answers: yes" in status.stdout

    down = bus389_cli("kafka", "down", *where)
    assert down.returncode == 0, down.stderr
    assert f"broker 1 (pid {pid})" in down.stdout
    assert not pid_running(pid)
    assert port_free("127.0.0.1", base) and port_free("127.0.0.1", base + 100)

    after = bus389_cli("kafka", "status", *where)
    assert after.returncode == 1
    assert "dead" in after.stdout

    nothing = bus389_cli("kafka", "down", *where)
    assert nothing.returncode == 0
    assert "nothing to stop" in nothing.stdout


def test_up_refuses_a_port_someone_else_holds(bus389_cli: Cli, data_dir: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))  # a port the kernel gives us: held, by someone else than Kafka
        squatter.listen()
        held = squatter.getsockname()[1]
        result = bus389_cli("kafka", "up", "--data-dir", str(data_dir), "--base-port", str(held), env=HEAP)
    assert result.returncode == 4
    assert f"port 127.0.0.1:{held}" in result.stderr
    assert "already taken" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (data_dir / "broker-1" / "server.properties").exists()  # refused before formatting


def test_up_that_times_out_shows_the_broker_log_and_stops_it(data_dir: Path) -> None:
    """The broker is frozen (SIGSTOP) by the test as soon as it has written its first log lines, so it
    can never come up in time however fast or slow this machine is; ``up`` must time out, show those
    lines and stop the broker (SIGKILL reaches a stopped process)."""
    timeout_s = 20
    env = {**os.environ, **HEAP, "BUS389_LOCAL__START_TIMEOUT_S": str(timeout_s)}
    base = free_base_port()
    argv = bus389_argv("kafka", "up", "--data-dir", str(data_dir), "--base-port", str(base))
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = data_dir / "broker-1" / "logs" / "server.log"

    def freeze_once_it_logs() -> int | None:
        try:
            pid = state_of(data_dir)["brokers"][0]["pid"]
        except (FileNotFoundError, json.JSONDecodeError, IndexError, KeyError):
            return None  # not formatted yet, or the state file half written
        if pid is None or not log.exists() or not log.read_text(errors="replace").strip():
            return None
        os.kill(pid, signal.SIGSTOP)
        return int(pid)

    try:
        wait_for(
            freeze_once_it_logs, 240, "the broker to start and write its first log lines", interval_s=0.05
        )
        out, err = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 4, f"the frozen broker's `kafka up` did not time out:\n{out}\n{err}"
    result = subprocess.CompletedProcess(argv, process.returncode, out, err)
    assert f"did not come up within {timeout_s}s" in result.stderr
    header = f"lines of {log} ---\n"
    assert header in result.stderr
    shown = result.stderr.split(header, 1)[1].split("\n--- ", 1)[0].splitlines()
    assert shown
    # real lines of the broker's own log, as the CLI prints any error: secrets masked, controls shown
    printed = {for_terminal(mask_secrets(line)) for line in log.read_text().splitlines()}
    assert set(shown) <= printed
    broker = state_of(data_dir)["brokers"][0]
    assert broker["pid"] is None
    wait_for(
        lambda: port_free("127.0.0.1", base) and port_free("127.0.0.1", base + 100),
        30,
        "the ports of the broker that did not come up in time to be free (it was left running)",
    )


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_three_brokers_survive_a_killed_broker_and_take_it_back(bus389_cli: Cli, data_dir: Path) -> None:
    where = ["--data-dir", str(data_dir)]
    env = {**HEAP, "BUS389_LOCAL__START_TIMEOUT_S": "240"}
    base = free_base_port(3)
    up = bus389_cli("kafka", "up", "--brokers", "3", "--base-port", str(base), *where, env=env, timeout=400)
    assert up.returncode == 0, up.stderr
    try:
        bootstrap = ",".join(f"127.0.0.1:{base + i}" for i in range(3))
        assert f"BUS389_BOOTSTRAP={bootstrap}" in up.stdout
        status = bus389_cli("kafka", "status", *where)
        assert status.returncode == 0, status.stdout
        assert status.stdout.count("alive, unfenced") == 3

        settings = Settings(
            bootstrap=bootstrap,
            topic_prefix=f"t_{uuid.uuid4().hex[:8]}",
            kafka=KafkaClientSettings(partitions=1, replication_factor=3, min_insync_replicas=2),
        )
        report = apply_topics(settings)
        assert report.replication_factor == 3 and not report.clamped
        topic = settings.topics.outbox("police")
        with make_producer(settings) as producer, kafka_errors():
            producer.send(topic, key=b"k", value=b"before").get(timeout=60)

        killed = bus389_cli("kafka", "kill", "2", *where)
        assert killed.returncode == 0, killed.stderr
        degraded = bus389_cli("kafka", "status", *where)
        assert degraded.returncode == 1
        assert "broker 2: pid" in degraded.stdout and "dead" in degraded.stdout

        # The first transaction and the first group commit of this cluster, with a broker down: they use
        # the internal topics `up` made while all three were up (each call may still wait for its
        # coordinator to move off the killed broker).
        # kafka-python keeps asking a dead coordinator until max_block_ms, so (as the publisher and the
        # router do) each attempt is a fresh producer with a bounded wait.
        txn = retry_until(
            time.monotonic() + 180,
            "the first transaction",
            lambda attempt: open_transactional_producer(
                settings, f"{settings.topic_prefix}.police.first", attempt=attempt
            ),
        )
        with txn:
            with kafka_errors():
                txn.begin_transaction()
                txn.send(topic, key=b"k", value=b"txn").get(timeout=90)
                txn.commit_transaction()
        with make_consumer(settings, group_id=f"{settings.topic_prefix}.police.first") as member:
            from kafka import TopicPartition
            from kafka.structs import OffsetAndMetadata

            with kafka_errors():
                member.assign([TopicPartition(topic, 0)])
                member.commit({TopicPartition(topic, 0): OffsetAndMetadata(1, "", -1)})
                assert member.committed(TopicPartition(topic, 0)) == 1

        # acks=all with min.insync.replicas=2: two of three replicas are enough.
        with make_producer(settings) as producer, kafka_errors():
            producer.send(topic, key=b"k", value=b"during").get(timeout=90)

        started = bus389_cli("kafka", "start", "2", *where, env=env, timeout=300)
        assert started.returncode == 0, started.stderr
        healthy = bus389_cli("kafka", "status", *where)
        assert healthy.returncode == 0, healthy.stdout

        with make_consumer(settings, group_id=None) as consumer, kafka_errors():
            from kafka import TopicPartition

            tp = TopicPartition(topic, 0)
            consumer.assign([tp])
            consumer.seek_to_beginning(tp)
            values: list[bytes] = []
            expected = [b"before", b"txn", b"during"]

            def read_all() -> bool:
                for records in consumer.poll(timeout_ms=1000).values():
                    values.extend(r.value for r in records)
                return len(values) >= len(expected)

            wait_for(read_all, 60, f"the {len(expected)} committed records")
        assert values == expected
    finally:
        down = bus389_cli("kafka", "down", *where, timeout=200)
    assert down.returncode == 0, down.stderr
    assert down.stdout.count("broker ") == 3
    for port in (*range(base, base + 3), *range(base + 100, base + 103)):
        assert port_free("127.0.0.1", port), port
