"""What readiness asks of a local cluster: which brokers are unfenced, and as which client it asks."""

from __future__ import annotations

from pathlib import Path

from bus389.localkafka.readiness import client_settings, unfenced_ids
from bus389.localkafka.state import BrokerState, ClusterState
from bus389.settings import Settings


def test_only_registered_unfenced_brokers_count() -> None:
    info = {
        "brokers": [
            {"broker_id": 1, "is_fenced": False},
            {"broker_id": "2"},
            {"broker_id": 3, "is_fenced": True},
        ]
    }
    assert unfenced_ids(info) == {1, 2}
    assert unfenced_ids({}) == set()


def test_a_plaintext_cluster_is_asked_on_its_own_ports_in_plaintext(tmp_path: Path) -> None:
    state = ClusterState(
        "abc", "4.1.1", "127.0.0.1", 19092, "384m", "java", "/libs", [BrokerState(1, 19092, 19192, "d", "x")]
    )
    settings = client_settings(Settings(bootstrap="elsewhere:9092"), tmp_path, state)
    assert settings.bootstrap == "127.0.0.1:19092"
    assert settings.kafka.security_protocol == "PLAINTEXT"
