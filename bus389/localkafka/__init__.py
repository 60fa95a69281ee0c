"""The local Kafka that ``bus389 kafka up`` runs: fetched jars, KRaft config, and process control."""

from bus389.localkafka.cluster import (
    BrokerStatus,
    ClusterState,
    ClusterStatus,
    LocalCluster,
    StopReport,
    UpResult,
)
from bus389.localkafka.config import ClusterLayout, Listener, NodeLayout, plan_cluster, server_properties
from bus389.localkafka.fetch import ensure_jars, find_java, parse_java_major

__all__ = [
    "BrokerStatus",
    "ClusterLayout",
    "ClusterState",
    "ClusterStatus",
    "Listener",
    "LocalCluster",
    "NodeLayout",
    "StopReport",
    "UpResult",
    "ensure_jars",
    "find_java",
    "parse_java_major",
    "plan_cluster",
    "server_properties",
]
