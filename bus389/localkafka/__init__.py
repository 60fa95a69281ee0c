"""The local Kafka that ``bus389 kafka up`` runs: fetched jars, KRaft config, and process control.

:mod:`.cluster` holds the commands; :mod:`.state` the state file and its lock, :mod:`.formatting` the
storage format, :mod:`.processes` the broker processes and signals, :mod:`.readiness` the waits.
"""

from bus389.localkafka.cluster import BrokerStatus, ClusterStatus, LocalCluster, UpResult
from bus389.localkafka.config import ClusterLayout, Listener, NodeLayout, plan_cluster, server_properties
from bus389.localkafka.fetch import ensure_jars, find_java, parse_java_major
from bus389.localkafka.processes import StopReport
from bus389.localkafka.state import ClusterState
from bus389.localkafka.warmup import INTERNAL_TOPICS, create_internal_topics

__all__ = [
    "INTERNAL_TOPICS",
    "BrokerStatus",
    "ClusterLayout",
    "ClusterState",
    "ClusterStatus",
    "Listener",
    "LocalCluster",
    "NodeLayout",
    "StopReport",
    "UpResult",
    "create_internal_topics",
    "ensure_jars",
    "find_java",
    "parse_java_major",
    "plan_cluster",
    "server_properties",
]
