"""A local cluster's facts in ``<data_dir>/state.json``, and the lock that lets one command at a time
work on a data directory.

The state records the cluster id, ports, pids and where the jars are, so every command finds what an
earlier one started.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bus389.errors import LocalKafkaError
from bus389.localkafka.config import ClusterLayout, plan_cluster

__all__ = [
    "STATE_FILE",
    "BrokerState",
    "ClusterState",
    "load_state",
    "locked",
    "random_kafka_uuid",
    "save_state",
]

STATE_FILE = "state.json"
_LOCK_FILE = ".lock"


def random_kafka_uuid() -> str:
    """A Kafka ``Uuid`` (16 random bytes, URL-safe base64 without padding), as ``random-uuid`` prints.

    Made here rather than by a JVM (``StorageTool random-uuid``): it saves seconds per id. Like
    Kafka, never starts with ``-`` so that the id is never mistaken for a command-line flag.
    """
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


@dataclass
class BrokerState:
    node_id: int
    port: int
    controller_port: int
    directory: str
    directory_id: str
    pid: int | None = None


@dataclass
class ClusterState:
    """What ``state.json`` records about a local cluster."""

    cluster_id: str
    version: str
    host: str
    base_port: int
    heap: str
    java: str
    libs: str
    brokers: list[BrokerState]
    formatted: bool = False
    secure: bool = False
    """Formatted by ``kafka up --secure``: SASL_SSL only, ACLs enforced, secrets in ``<data_dir>/security``"""

    @property
    def size(self) -> int:
        return len(self.brokers)

    def layout(self, data_dir: Path) -> ClusterLayout:
        return plan_cluster(
            brokers=self.size, host=self.host, base_port=self.base_port, data_dir=data_dir, secure=self.secure
        )

    def broker(self, node_id: int) -> BrokerState:
        for broker in self.brokers:
            if broker.node_id == node_id:
                return broker
        ids = ", ".join(str(b.node_id) for b in self.brokers)
        raise LocalKafkaError(f"no broker {node_id} in this cluster (brokers: {ids})")

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ClusterState:
        raw: dict[str, Any] = json.loads(text)
        brokers = [BrokerState(**b) for b in raw.pop("brokers")]
        return cls(brokers=brokers, **raw)


def load_state(data_dir: Path) -> ClusterState | None:
    """The state of the cluster in ``data_dir``; None when there is none."""
    path = data_dir / STATE_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        return ClusterState.from_json(text)
    except (ValueError, TypeError, KeyError) as exc:
        raise LocalKafkaError(f"unreadable {path}: {exc}") from exc


def save_state(data_dir: Path, state: ClusterState) -> None:
    """Replace ``state.json`` atomically (a reader sees the old state or the new, never half)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / STATE_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(state.to_json())
    os.replace(tmp, path)


@contextmanager
def locked(data_dir: Path) -> Iterator[None]:
    """One command at a time per data directory (two ``up`` at once would both format)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / _LOCK_FILE).open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
