"""The local cluster's state file: ids, JSON, atomic replacement, a clear error when unreadable; the lock."""

from __future__ import annotations

import base64
import fcntl
from pathlib import Path

import pytest

from bus389.errors import LocalKafkaError
from bus389.localkafka.state import (
    STATE_FILE,
    BrokerState,
    ClusterState,
    load_state,
    locked,
    random_kafka_uuid,
    save_state,
)


def test_random_kafka_uuid_is_what_kafka_parses() -> None:
    ids = {random_kafka_uuid() for _ in range(200)}
    assert len(ids) == 200
    for value in ids:
        assert len(value) == 22
        assert not value.startswith("-")
        assert len(base64.urlsafe_b64decode(value + "==")) == 16


def test_state_round_trips_through_json(tmp_path: Path) -> None:
    state = ClusterState(
        cluster_id="abc",
        version="4.1.1",
        host="127.0.0.1",
        base_port=19092,
        heap="384m",
        java="/usr/bin/java",
        libs="/cache/libs",
        brokers=[BrokerState(1, 19092, 19192, str(tmp_path / "broker-1"), "dir1", pid=42)],
        formatted=True,
    )
    assert ClusterState.from_json(state.to_json()) == state
    assert state.broker(1).pid == 42
    with pytest.raises(LocalKafkaError, match="no broker 7"):
        state.broker(7)


def test_no_state_file_is_no_cluster_and_a_saved_one_loads_back(tmp_path: Path) -> None:
    assert load_state(tmp_path / "absent") is None
    state = ClusterState(
        "abc", "4.1.1", "127.0.0.1", 19092, "384m", "java", "/libs", [BrokerState(1, 1, 2, "d", "x")]
    )
    save_state(tmp_path / "new", state)
    assert load_state(tmp_path / "new") == state
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == [STATE_FILE]  # no temporary left


@pytest.mark.parametrize("text", ["{not json", '{"cluster_id": "abc"}', '{"brokers": [{"node": 1}]}'])
def test_an_unreadable_state_file_is_a_clear_error_naming_it(tmp_path: Path, text: str) -> None:
    (tmp_path / STATE_FILE).write_text(text)
    with pytest.raises(LocalKafkaError, match=f"unreadable {tmp_path / STATE_FILE}"):
        load_state(tmp_path)


def test_the_lock_lets_one_command_at_a_time_work_on_a_data_dir(tmp_path: Path) -> None:
    def try_lock() -> bool:
        with (tmp_path / ".lock").open("w") as other:
            try:
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            fcntl.flock(other, fcntl.LOCK_UN)
            return True

    with locked(tmp_path):
        assert not try_lock()  # another command (another open file of the lock) must wait
    assert try_lock()
