"""The 3-broker cluster of the fault tests: its own ports (found free) and data dir, never the shared broker.

Started once per test process by whichever test needs it first (``bus389 kafka up --brokers 3``, the same
code), reused when already running in its data dir, stopped (and its data removed) when the process
exits if this process started it. Brokers run with a 384m heap: three of them fit a 2-core CI machine.
"""

from __future__ import annotations

import atexit
import getpass
import socket
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from _ports import free_base_port
from _wait import WaitTimeout, wait_for

from bus389.chaos.faults import BrokerFaults
from bus389.errors import BusError
from bus389.localkafka import LocalCluster, create_internal_topics
from bus389.settings import ChaosSettings, Settings

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
    """Make sure Kafka's internal topics exist while every broker is up.

    ``bus389 kafka up`` (``LocalCluster.up``) creates them already; this covers a cluster reused from a
    run of an older bus389. See :mod:`bus389.localkafka.warmup` for why a broker fault on a fresh
    cluster needs them made beforehand.
    """
    create_internal_topics(settings)


def _stop(cluster: LocalCluster) -> None:
    cluster.down(purge=True)


def shared_cluster() -> ChaosCluster:
    """The cluster, started on first use."""
    global _cluster  # noqa: PLW0603 - one cluster per test process
    with _lock:
        if _cluster is None:
            settings = Settings(bootstrap="127.0.0.1:1")
            local = LocalCluster(settings, data_dir=DATA_DIR, base_port=free_base_port(3), heap=HEAP)
            result = local.up(3)
            if not result.already_running:
                atexit.register(_stop, local)
            state = local.load_state()  # a cluster already formatted in DATA_DIR keeps its own ports
            assert state is not None, f"`kafka up` left no state in {DATA_DIR}"  # noqa: S101
            _cluster = ChaosCluster(result.bootstrap, local.data_dir, state.base_port)
            warm_up(_cluster.settings())
        return _cluster


def _accepting(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def heal(cluster: ChaosCluster, *, timeout_s: float = 180.0) -> None:
    """Bring every broker back (after a test that killed some) and wait until each one takes connections.

    ``LocalCluster.up`` waits until the brokers are registered and unfenced, but with two of the three
    controllers just killed the surviving broker's metadata is frozen and still shows them unfenced, and
    a restarted broker refuses connections until its listeners open: so ``up`` is retried, and the
    listeners are waited for, rather than letting the next test's first admin call meet a refusal.
    Then the transaction log is waited for until every replica is back in sync.
    """
    local = LocalCluster(
        cluster.settings(), data_dir=cluster.data_dir, base_port=cluster.base_port, heap=HEAP
    )
    hosts = [address.rsplit(":", 1) for address in cluster.bootstrap.split(",")]
    problems: list[str] = []

    def every_broker_takes_connections() -> bool:
        try:
            local.up(3)
        except BusError as exc:
            problems.append(str(exc))
            return False
        return all(_accepting(host, int(port)) for host, port in hosts)

    try:
        wait_for(
            every_broker_takes_connections,
            timeout_s,
            f"every broker of {cluster.bootstrap} to be up and take connections",
            interval_s=1.0,
        )
    except WaitTimeout as exc:
        raise AssertionError(f"{exc}; last problem: {problems[-1] if problems else 'none'}") from exc
    # The transaction log back at full strength: the next test may kill any one broker.
    lagging = cluster.faults().wait_in_sync(["__transaction_state"], timeout_s=timeout_s)
    assert not lagging, f"still under-replicated after {timeout_s:.0f} s: {lagging}"
