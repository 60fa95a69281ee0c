"""The local Kafka's pure parts: layout, server.properties, Java detection, the jar cache, the commands
without a cluster (state and processes: test_localkafka_state.py, test_localkafka_processes.py)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from bus389.cli.main import cli
from bus389.errors import LocalKafkaError
from bus389.localkafka import fetch
from bus389.localkafka.cluster import LocalCluster
from bus389.localkafka.config import Listener, NodeLayout, plan_cluster, render_properties, server_properties
from bus389.localkafka.state import BrokerState, ClusterState
from bus389.settings import LocalKafkaSettings, Settings


def test_one_node_properties_are_pinned(tmp_path: Path) -> None:
    layout = plan_cluster(brokers=1, host="127.0.0.1", base_port=9092, data_dir=tmp_path)
    assert server_properties(layout, 1) == {
        "node.id": "1",
        "process.roles": "broker,controller",
        "listeners": "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9192",
        "advertised.listeners": "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9192",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "controller.quorum.bootstrap.servers": "127.0.0.1:9192",
        "log.dirs": str(tmp_path / "broker-1" / "data"),
        "auto.create.topics.enable": "false",
        "group.initial.rebalance.delay.ms": "0",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "unclean.leader.election.enable": "false",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "10",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "num.partitions": "1",
        "log.retention.hours": "168",
    }


def test_three_nodes_replicate_internal_topics_three_times_with_two_in_sync(tmp_path: Path) -> None:
    layout = plan_cluster(brokers=3, host="127.0.0.1", base_port=19092, data_dir=tmp_path)
    assert [n.broker_port for n in layout.nodes] == [19092, 19093, 19094]
    assert [n.controller_port for n in layout.nodes] == [19192, 19193, 19194]
    assert layout.bootstrap == "127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094"
    props = server_properties(layout, 2)
    assert props["node.id"] == "2"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19093,CONTROLLER://127.0.0.1:19193"
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:19192,127.0.0.1:19193,127.0.0.1:19194"
    assert props["log.dirs"] == str(tmp_path / "broker-2" / "data")
    for key in ("offsets.topic.replication.factor", "transaction.state.log.replication.factor"):
        assert props[key] == "3"
    assert props["transaction.state.log.min.isr"] == "2"
    assert props["min.insync.replicas"] == "2"
    # Each node has its own directories: no two brokers share a log dir.
    assert len({server_properties(layout, i)["log.dirs"] for i in (1, 2, 3)}) == 3


def test_a_secure_listener_is_one_more_listener_not_a_rewrite(tmp_path: Path) -> None:
    base = plan_cluster(brokers=1, host="127.0.0.1", base_port=9092, data_dir=tmp_path)
    node = base.nodes[0]
    secure_node = NodeLayout(
        node.node_id,
        node.host,
        node.broker_port,
        node.controller_port,
        node.directory,
        extra_listeners=(Listener("SECURE", 9292, "SASL_SSL"),),
    )
    secure = type(base)((secure_node,), {"sasl.enabled.mechanisms": "SCRAM-SHA-512"})
    props = server_properties(secure, 1)
    assert props["listeners"].endswith(",SECURE://127.0.0.1:9292")
    assert props["listener.security.protocol.map"].endswith(",SECURE:SASL_SSL")
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["inter.broker.listener.name"] == "PLAINTEXT"
    assert secure_node.ports() == [9092, 9192, 9292]


def test_plan_rejects_an_empty_cluster(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one"):
        plan_cluster(brokers=0, host="127.0.0.1", base_port=9092, data_dir=tmp_path)


def test_render_properties_keeps_order_and_escapes_backslashes() -> None:
    text = render_properties({"b": "2", "a": "C:\\kafka", "c": "x\ny"}, header="made by a test")
    assert text == "# made by a test\nb=2\na=C:\\\\kafka\nc=x\\ny\n"


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15\nOpenJDK Runtime Environment', 17),
        ('openjdk version "21" 2023-09-19', 21),
        ('java version "1.8.0_392"', 8),
        ('openjdk version "11.0.2" 2019-01-15', 11),
        ("no java here", None),
    ],
)
def test_parse_java_major(output: str, major: int | None) -> None:
    assert fetch.parse_java_major(output) == major


def _fake_java(tmp_path: Path, version_line: str) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    java = bin_dir / "java"
    java.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    java.chmod(java.stat().st_mode | stat.S_IEXEC)
    return bin_dir


def test_an_old_java_is_refused_with_its_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(_fake_java(tmp_path, 'openjdk version "11.0.2" 2019-01-15')))
    with pytest.raises(LocalKafkaError, match="Java 11; Kafka needs Java 17"):
        fetch.find_java()


def test_no_java_at_all_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LocalKafkaError, match="java not found"):
        fetch.find_java()


def test_java_17_is_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = _fake_java(tmp_path, 'openjdk version "17.0.15" 2025-04-15')
    monkeypatch.setenv("PATH", str(bin_dir))
    assert fetch.find_java() == str(bin_dir / "java")


def test_a_complete_cache_is_reused_without_maven(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "kafka-9.9.9"
    (home / "libs").mkdir(parents=True)
    (home / "libs" / "kafka_2.13-9.9.9.jar").write_bytes(b"")
    (home / "libs" / "a.jar").write_bytes(b"")
    (home / ".bus389-fetch-complete").write_text("kafka 9.9.9\n")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no mvn: it must not be needed
    jars = fetch.ensure_jars(version="9.9.9", cache_dir=tmp_path)
    assert jars.libs == home / "libs"
    assert fetch.classpath(jars) == f"{home / 'libs' / 'a.jar'}:{home / 'libs' / 'kafka_2.13-9.9.9.jar'}"


def test_an_incomplete_cache_without_maven_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "kafka-9.9.9" / "libs").mkdir(parents=True)  # a fetch that never finished: no marker
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(LocalKafkaError, match="mvn is not on PATH"):
        fetch.ensure_jars(version="9.9.9", cache_dir=tmp_path)


def test_kafka_home_needs_kafka_jars(tmp_path: Path) -> None:
    (tmp_path / "libs").mkdir()
    with pytest.raises(LocalKafkaError, match=r"no kafka_2\.13-\*\.jar"):
        fetch.ensure_jars(version="4.1.1", cache_dir=tmp_path / "cache", kafka_home=tmp_path)
    (tmp_path / "libs" / "kafka_2.13-4.1.1.jar").write_bytes(b"")
    assert fetch.ensure_jars(version="4.1.1", cache_dir=tmp_path / "cache", kafka_home=tmp_path).libs == (
        tmp_path / "libs"
    )


def test_a_recorded_pid_that_is_not_a_broker_is_not_alive(tmp_path: Path) -> None:
    settings = Settings(local=LocalKafkaSettings(data_dir=tmp_path))
    cluster = LocalCluster(settings)
    state = ClusterState(
        cluster_id="abc",
        version="4.1.1",
        host="127.0.0.1",
        base_port=19092,
        heap="384m",
        java="java",
        libs=str(tmp_path),
        brokers=[BrokerState(1, 19092, 19192, str(tmp_path / "broker-1"), "d", pid=os.getpid())],
        formatted=True,
    )
    (tmp_path / "state.json").write_text(state.to_json())
    # Our own pid is alive but is not kafka.Kafka with this properties file: never "ours".
    status = cluster.status()
    assert [b.alive for b in status.brokers] == [False]
    assert not status.healthy
    assert cluster.down() == []  # nothing of ours to stop, and certainly not this process


def test_cli_status_of_an_empty_data_dir_is_down(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["kafka", "status", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "down" in result.output


def test_cli_kill_without_a_cluster_exits_4(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["kafka", "kill", "1", "--data-dir", str(tmp_path)])
    assert result.exit_code == 4
    assert "no local cluster" in result.output
