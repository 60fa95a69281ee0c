"""The 3-broker cluster of the fault tests: its own ports (base 29092) and data dir, never the shared broker.

Started once per test process by whichever test needs it first (``bus389 kafka up --brokers 3``, the same
code), reused when already running in its data dir, stopped (and its data removed) when the process
exits if this process started it. Brokers run with a 384m heap: three of them fit a 2-core CI machine.
"""

from __future__ import annotations

import atexit
import getpass
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from bus389.chaos.faults import BrokerFaults
from bus389.localkafka import LocalCluster
from bus389.settings import ChaosSettings, Settings

BASE_PORT = 29092
HEAP = "384m"
DATA_DIR = Path(tempfile.gettempdir()) / f"bus389-chaos-test-{getpass.getuser()}"

_lock = threading.Lock()
_cluster: ChaosCluster | None = None


@dataclass(frozen=True)
class ChaosCluster:
    """The running cluster: where it is, and the fault injector over its brokers."""

    bootstrap: str
    data_dir: Path
    base_port: int

    def settings(self, **overrides: object) -> Settings:
        """Settings on this cluster: durable topics (RF 3, min ISR 2), the chaos group pointing here."""
        base = Settings(
            bootstrap=self.bootstrap,
            chaos=ChaosSettings(base_port=self.base_port, data_dir=self.data_dir, heap=HEAP),
            **overrides,  # type: ignore[arg-type]
        )
        kafka = base.kafka.model_copy(update={"replication_factor": 3, "min_insync_replicas": 2})
        return base.model_copy(update={"kafka": kafka})

    def faults(self) -> BrokerFaults:
        return BrokerFaults(self.settings(), data_dir=self.data_dir, base_port=self.base_port)


def warm_up(settings: Settings) -> None:
    """Create Kafka's internal topics while every broker is up.

    ``__transaction_state`` and ``__consumer_offsets`` are created on first use with replication factor
    3: on a fresh cluster, a first transactional producer (or group commit) while one broker is down
    waits for a topic that cannot be created, and ``init_transactions`` times out after 60 s.
    """
    from kafka import TopicPartition
    from kafka.structs import OffsetAndMetadata

    from bus389.kafka import make_consumer, make_producer
    from bus389.topics import apply_topics

    warm = settings.model_copy(update={"topic_prefix": "warmup"})
    apply_topics(warm)
    producer = make_producer(warm, transactional_id="warmup.tx")
    try:
        producer.init_transactions()
    finally:
        producer.close()
    consumer = make_consumer(warm, group_id="warmup.group")
    try:
        tp = TopicPartition(warm.topics.dlq, 0)
        consumer.assign([tp])
        consumer.commit({tp: OffsetAndMetadata(0, "", -1)})
    finally:
        consumer.close()


def _stop(cluster: LocalCluster) -> None:
    cluster.down(purge=True)


def shared_cluster() -> ChaosCluster:
    """The cluster, started on first use."""
    global _cluster  # noqa: PLW0603 - one cluster per test process
    with _lock:
        if _cluster is None:
            settings = Settings(bootstrap="127.0.0.1:1")
            local = LocalCluster(settings, data_dir=DATA_DIR, base_port=BASE_PORT, heap=HEAP)
            result = local.up(3)
            if not result.already_running:
                atexit.register(_stop, local)
            _cluster = ChaosCluster(result.bootstrap, local.data_dir, BASE_PORT)
            warm_up(_cluster.settings())
        return _cluster


def heal(cluster: ChaosCluster) -> None:
    """Bring every broker back (after a test that killed some) and wait until replicas are in sync."""
    local = LocalCluster(
        cluster.settings(), data_dir=cluster.data_dir, base_port=cluster.base_port, heap=HEAP
    )
    local.up(3)
