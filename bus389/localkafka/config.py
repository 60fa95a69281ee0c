"""The layout of a local KRaft cluster (nodes, ports, directories) and each node's server.properties.

Pure functions, no I/O: the same layout always gives the same properties, which a unit test pins.
Listeners are data (:class:`Listener`): another listener is one more entry in
``NodeLayout.extra_listeners`` plus its properties in ``extra_properties``. Secure mode
(``NodeLayout.secure``, ``kafka up --secure``) replaces the plaintext client listener with a SASL_SSL
one and puts the quorum on SASL; its shared properties come from :mod:`bus389.security.localbroker`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bus389.security.localbroker import CONTROLLER_PROTOCOL, SECURE_LISTENER, SECURE_PROTOCOL

__all__ = [
    "CONTROLLER_LISTENER",
    "CONTROLLER_PORT_OFFSET",
    "PLAINTEXT_LISTENER",
    "ClusterLayout",
    "Listener",
    "NodeLayout",
    "plan_cluster",
    "render_properties",
    "server_properties",
]

PLAINTEXT_LISTENER = "PLAINTEXT"
CONTROLLER_LISTENER = "CONTROLLER"
CONTROLLER_PORT_OFFSET = 100
"""Node i's controller listens on ``base_port + 100 + i - 1`` (9192 next to a broker on 9092)."""

_INTERNAL_TOPIC_PARTITIONS = 10
"""Kafka's default of 50 partitions for the offsets and transaction logs is slow to load on a laptop."""


@dataclass(frozen=True)
class Listener:
    """One listener: its name (as in ``listeners=NAME://host:port``), port and security protocol."""

    name: str
    port: int
    protocol: str = "PLAINTEXT"
    advertised: bool = True


@dataclass(frozen=True)
class NodeLayout:
    """One combined broker+controller node."""

    node_id: int
    host: str
    broker_port: int
    controller_port: int
    directory: Path
    extra_listeners: tuple[Listener, ...] = ()
    secure: bool = False
    """Secure mode (``kafka up --secure``): clients on SASL_SSL, the quorum on loopback with SASL."""

    @property
    def log_dir(self) -> Path:
        """Kafka's data (``log.dirs``, including the KRaft metadata log)."""
        return self.directory / "data"

    @property
    def logs_dir(self) -> Path:
        """The broker's own logging (``server.log``, ``console.log``)."""
        return self.directory / "logs"

    @property
    def properties_path(self) -> Path:
        return self.directory / "server.properties"

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.broker_port}"

    def listeners(self) -> list[Listener]:
        """The client listener first (it is also the inter-broker one), then the controller's."""
        if self.secure:
            return [
                Listener(SECURE_LISTENER, self.broker_port, SECURE_PROTOCOL),
                Listener(CONTROLLER_LISTENER, self.controller_port, CONTROLLER_PROTOCOL),
                *self.extra_listeners,
            ]
        return [
            Listener(PLAINTEXT_LISTENER, self.broker_port),
            Listener(CONTROLLER_LISTENER, self.controller_port),
            *self.extra_listeners,
        ]

    def ports(self) -> list[int]:
        return [listener.port for listener in self.listeners()]


@dataclass(frozen=True)
class ClusterLayout:
    """Every node of a local cluster, and the settings that depend on how many there are."""

    nodes: tuple[NodeLayout, ...]
    extra_properties: Mapping[str, str] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.nodes)

    @property
    def bootstrap(self) -> str:
        return ",".join(node.bootstrap for node in self.nodes)

    @property
    def controller_bootstrap(self) -> str:
        return ",".join(f"{n.host}:{n.controller_port}" for n in self.nodes)

    def node(self, node_id: int) -> NodeLayout:
        for candidate in self.nodes:
            if candidate.node_id == node_id:
                return candidate
        raise KeyError(node_id)


def plan_cluster(
    *, brokers: int, host: str, base_port: int, data_dir: Path, secure: bool = False
) -> ClusterLayout:
    """Node i (1-based) serves clients on ``base_port + i - 1`` and the quorum on ``+100``."""
    if brokers < 1:
        raise ValueError("a cluster needs at least one broker")
    nodes = tuple(
        NodeLayout(
            node_id=i,
            host=host,
            broker_port=base_port + i - 1,
            controller_port=base_port + CONTROLLER_PORT_OFFSET + i - 1,
            directory=data_dir / f"broker-{i}",
            secure=secure,
        )
        for i in range(1, brokers + 1)
    )
    return ClusterLayout(nodes)


def server_properties(layout: ClusterLayout, node_id: int) -> dict[str, str]:
    """The server.properties of one node, in KRaft combined mode (broker and controller).

    Replication of the internal topics and the default ``min.insync.replicas`` follow the cluster
    size (3 replicas, 2 in sync when three nodes run), so that ``acks=all`` means what it says.
    """
    node = layout.node(node_id)
    size = layout.size
    rf = str(min(3, size))
    min_isr = str(min(2, size))
    listeners = node.listeners()
    props: dict[str, str] = {
        "node.id": str(node.node_id),
        "process.roles": "broker,controller",
        "listeners": ",".join(f"{lst.name}://{node.host}:{lst.port}" for lst in listeners),
        "advertised.listeners": ",".join(
            f"{lst.name}://{node.host}:{lst.port}" for lst in listeners if lst.advertised
        ),
        "listener.security.protocol.map": ",".join(f"{lst.name}:{lst.protocol}" for lst in listeners),
        "inter.broker.listener.name": listeners[0].name,
        "controller.listener.names": CONTROLLER_LISTENER,
        "controller.quorum.bootstrap.servers": layout.controller_bootstrap,
        "log.dirs": str(node.log_dir),
        "auto.create.topics.enable": "false",
        "group.initial.rebalance.delay.ms": "0",
        "default.replication.factor": rf,
        "min.insync.replicas": min_isr,
        "unclean.leader.election.enable": "false",
        "offsets.topic.replication.factor": rf,
        "offsets.topic.num.partitions": str(_INTERNAL_TOPIC_PARTITIONS),
        "transaction.state.log.replication.factor": rf,
        "transaction.state.log.min.isr": min_isr,
        "transaction.state.log.num.partitions": str(_INTERNAL_TOPIC_PARTITIONS),
        "share.coordinator.state.topic.replication.factor": rf,
        "share.coordinator.state.topic.min.isr": min_isr,
        "num.partitions": "1",
        "log.retention.hours": "168",
    }
    props.update(layout.extra_properties)
    return props


def render_properties(props: Mapping[str, str], *, header: str = "") -> str:
    """A Java ``.properties`` text, keys in the given order (backslashes and newlines escaped)."""
    lines = [f"# {line}" for line in header.splitlines()]
    for key, value in props.items():
        escaped = value.replace("\\", "\\\\").replace("\n", "\\n")
        lines.append(f"{key}={escaped}")
    return "\n".join(lines) + "\n"
