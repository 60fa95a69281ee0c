"""Running a local KRaft cluster on loopback: the commands ``up``, ``down``, ``status``, ``kill``, ``start``.

A cluster is identified by its data directory; its facts live in ``<data_dir>/state.json``
(:mod:`.state`), so every command finds what an earlier one started, and ``down`` stops only those
pids (:mod:`.processes`). Storage is formatted by :mod:`.formatting`; a command returns once the
brokers it needs are unfenced (:mod:`.readiness`).
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bus389.errors import BrokerError, LocalKafkaError
from bus389.localkafka.fetch import ensure_jars, find_java
from bus389.localkafka.formatting import format_cluster
from bus389.localkafka.processes import KILL_WAIT_S, StopReport, alive, check_ports, launch, stop, wait_dead
from bus389.localkafka.readiness import await_unfenced, probe, unfenced_ids, warm_up
from bus389.localkafka.state import STATE_FILE, BrokerState, ClusterState, load_state, locked, save_state
from bus389.settings import Settings

__all__ = ["BrokerStatus", "ClusterStatus", "LocalCluster", "UpResult"]


@dataclass(frozen=True)
class BrokerStatus:
    node_id: int
    pid: int | None
    port: int
    alive: bool
    unfenced: bool | None = None
    """Whether the cluster reports this broker registered and unfenced (None: the cluster did not answer)."""


@dataclass(frozen=True)
class ClusterStatus:
    data_dir: Path
    cluster_id: str | None
    bootstrap: str | None
    brokers: list[BrokerStatus]
    answering: bool
    detail: str = ""

    @property
    def healthy(self) -> bool:
        """Every broker alive and unfenced, and the cluster answering."""
        return bool(self.brokers) and self.answering and all(b.alive and b.unfenced for b in self.brokers)


@dataclass(frozen=True)
class UpResult:
    state: ClusterState
    bootstrap: str
    already_running: bool
    started: list[int] = field(default_factory=list)


class LocalCluster:
    """One local cluster, identified by its data directory."""

    def __init__(
        self,
        settings: Settings,
        *,
        data_dir: Path | None = None,
        base_port: int | None = None,
        heap: str | None = None,
        kafka_home: Path | None = None,
        echo: Callable[[str], None] = lambda _: None,
    ) -> None:
        local = settings.local
        self.settings = settings
        self.data_dir = (data_dir or local.data_dir).expanduser().resolve()
        self.base_port = base_port if base_port is not None else local.base_port
        self.heap = heap or local.heap
        self.kafka_home = kafka_home or local.kafka_home
        self.echo = echo

    # -- state -------------------------------------------------------------------------------

    @property
    def state_path(self) -> Path:
        return self.data_dir / STATE_FILE

    def load_state(self) -> ClusterState | None:
        return load_state(self.data_dir)

    # -- commands ----------------------------------------------------------------------------

    def up(self, brokers: int = 1, *, fresh: bool = False, secure: bool = False) -> UpResult:
        """Start the cluster (formatting it the first time) and return once all brokers are unfenced
        and Kafka's internal topics exist (see :mod:`bus389.localkafka.warmup`).

        An already running cluster is left as it is; brokers of it that died are started again.
        ``secure`` formats a cluster with SASL_SSL and ACLs (see :mod:`bus389.security.localbroker`);
        a data dir formatted in the other mode is refused rather than silently reused.
        """
        if brokers < 1:
            raise LocalKafkaError("--brokers must be at least 1")
        with locked(self.data_dir):
            state = self.load_state()
            if state is not None:
                if state.base_port != self.base_port:
                    self.echo(f"{self.data_dir} holds a cluster on base port {state.base_port}: using it")
                running = [b for b in state.brokers if alive(b)]
                if fresh and not running:
                    self._wipe(state)
                    state = None
                elif state.secure != secure:
                    have = "secure" if state.secure else "plaintext"
                    raise LocalKafkaError(
                        f"a {have} cluster is formatted in {self.data_dir}; "
                        + ("`bus389 kafka down` then --fresh" if running else "use --fresh to wipe it")
                        + ", or another --data-dir"
                    )
                elif state.size != brokers:
                    what = "running" if running else "formatted"
                    hint = "`bus389 kafka down` first" if running else "--fresh to wipe it"
                    raise LocalKafkaError(
                        f"a {state.size}-broker cluster is {what} in {self.data_dir}; "
                        f"use {hint}, or another --data-dir"
                    )
                elif not state.formatted:
                    self._wipe(state)
                    state = None
                elif len(running) == state.size:
                    await_unfenced(
                        self.settings, self.data_dir, state, {b.node_id for b in state.brokers}, watch=[]
                    )
                    warm_up(self.settings, self.data_dir, state, self.echo)
                    return UpResult(state, self._bootstrap(state), already_running=True)
            java = find_java()
            jars = ensure_jars(
                version=self.settings.local.version,
                cache_dir=self.settings.local.cache_dir,
                kafka_home=self.kafka_home,
                echo=self.echo,
            )
            if state is None:
                state = format_cluster(
                    self.settings,
                    data_dir=self.data_dir,
                    brokers=brokers,
                    base_port=self.base_port,
                    heap=self.heap,
                    java=java,
                    jars=jars,
                    secure=secure,
                    echo=self.echo,
                )
            else:
                state = replace(state, java=java, libs=str(jars.libs), heap=self.heap)
            to_start = [b.node_id for b in state.brokers if not alive(b)]
            self._start_nodes(state, to_start)
            warm_up(self.settings, self.data_dir, state, self.echo)
            return UpResult(state, self._bootstrap(state), already_running=False, started=to_start)

    def down(self, *, purge: bool = False) -> list[StopReport]:
        """Stop the brokers recorded in the state file (SIGTERM, then SIGKILL after the timeout)."""
        with locked(self.data_dir):
            state = self.load_state()
            if state is None:
                return []
            targets = [b for b in state.brokers if b.pid is not None and alive(b)]
            reports = stop(targets, timeout_s=self.settings.local.stop_timeout_s, echo=self.echo)
            for broker in state.brokers:
                broker.pid = None
            save_state(self.data_dir, state)
            if purge:
                self._wipe(state)
            return reports

    def status(self) -> ClusterStatus:
        """Each broker's pid, port and liveness, and whether the cluster answers a metadata request."""
        state = self.load_state()
        if state is None:
            return ClusterStatus(self.data_dir, None, None, [], answering=False, detail="no cluster here")
        running = {b.node_id: alive(b) for b in state.brokers}
        info: dict[str, Any] | None = None
        detail = ""
        if any(running.values()):
            try:
                info = probe(self.settings, self.data_dir, state)
            except BrokerError as exc:
                detail = str(exc)
        else:
            detail = "no broker is running"
        unfenced = unfenced_ids(info) if info is not None else None
        brokers = [
            BrokerStatus(
                b.node_id,
                b.pid,
                b.port,
                running[b.node_id],
                None if unfenced is None else b.node_id in unfenced,
            )
            for b in state.brokers
        ]
        if info is not None and info.get("cluster_id") != state.cluster_id:
            detail = f"a different cluster ({info.get('cluster_id')}) answers on these ports"
            info = None
        return ClusterStatus(
            self.data_dir, state.cluster_id, self._bootstrap(state), brokers, info is not None, detail
        )

    def kill(self, node_id: int) -> int:
        """SIGKILL one broker (a crash, not a clean shutdown); returns its pid."""
        with locked(self.data_dir):
            state = self._require_state()
            broker = state.broker(node_id)
            if broker.pid is None or not alive(broker):
                raise LocalKafkaError(f"broker {node_id} is not running")
            pid = broker.pid
            os.kill(pid, signal.SIGKILL)
            if not wait_dead([broker], KILL_WAIT_S):
                raise LocalKafkaError(f"broker {node_id} (pid {pid}) survived SIGKILL")
            return pid

    def start(self, node_id: int) -> int:
        """Start one stopped or killed broker again and wait until it is unfenced; returns its pid."""
        with locked(self.data_dir):
            state = self._require_state()
            broker = state.broker(node_id)
            if alive(broker):
                raise LocalKafkaError(f"broker {node_id} is already running (pid {broker.pid})")
            if not Path(state.libs).is_dir():
                jars = ensure_jars(
                    version=state.version,
                    cache_dir=self.settings.local.cache_dir,
                    kafka_home=self.kafka_home,
                    echo=self.echo,
                )
                state = replace(state, libs=str(jars.libs))
            self._start_nodes(state, [node_id])
            return state.broker(node_id).pid or 0

    # -- internals ---------------------------------------------------------------------------

    def _require_state(self) -> ClusterState:
        state = self.load_state()
        if state is None:
            raise LocalKafkaError(f"no local cluster in {self.data_dir} (run `bus389 kafka up`)")
        return state

    def _bootstrap(self, state: ClusterState) -> str:
        return state.layout(self.data_dir).bootstrap

    def _start_nodes(self, state: ClusterState, node_ids: list[int]) -> None:
        """Launch these brokers and wait until the whole cluster is unfenced; stop them again on failure."""
        if not node_ids:
            return
        layout = state.layout(self.data_dir)
        check_ports(layout, node_ids)
        cp = ":".join(str(p) for p in sorted(Path(state.libs).glob("*.jar")))
        started: list[BrokerState] = []
        try:
            for node_id in node_ids:
                node = layout.node(node_id)
                node.logs_dir.mkdir(parents=True, exist_ok=True)
                broker = state.broker(node_id)
                broker.pid = launch(state, node, cp)
                started.append(broker)
                self.echo(f"started broker {node_id} (pid {broker.pid}) on {node.bootstrap}")
            save_state(self.data_dir, state)
            await_unfenced(
                self.settings, self.data_dir, state, {b.node_id for b in state.brokers}, watch=started
            )
        except BaseException:
            stop([b for b in started if alive(b)], timeout_s=5.0, echo=self.echo)
            for broker in started:
                broker.pid = None
            save_state(self.data_dir, state)
            raise

    def _wipe(self, state: ClusterState) -> None:
        """Delete the brokers' directories and the state file (only what ``up`` created)."""
        for broker in state.brokers:
            shutil.rmtree(broker.directory, ignore_errors=True)
        self.state_path.unlink(missing_ok=True)
