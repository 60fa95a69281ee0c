"""Injecting faults: SIGKILL, SIGSTOP and SIGCONT of local brokers and of the services under test.

Brokers are the ones a local cluster recorded in its ``state.json`` (:class:`bus389.localkafka.LocalCluster`,
the code behind ``bus389 kafka kill`` and ``bus389 kafka start``): only those pids are signalled.
Services are subprocesses this module started (:class:`ServiceProcess`), each in its own session,
with its output in a log file per incarnation. Nothing here signals a process by name.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

from bus389.errors import BrokerError, BusError, LocalKafkaError
from bus389.localkafka import LocalCluster
from bus389.settings import Settings

__all__ = ["BrokerFaults", "ServiceProcess", "bus389_argv"]

log = logging.getLogger(__name__)


def bus389_argv(*args: str) -> list[str]:
    """The command line of ``bus389 ARGS`` run by this interpreter (no reliance on PATH)."""
    return [sys.executable, "-c", "from bus389.cli.main import cli; cli(prog_name='bus389')", *args]


class ServiceProcess:
    """One long-running ``bus389`` service (router, ICT, standing office) that can be killed and restarted."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_dir = log_dir
        self.incarnation = 0
        self.kills = 0
        self.exit_codes: list[int] = []
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.{self.incarnation}.log"

    def start(self) -> int:
        if self.alive:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self._reap()
        self.incarnation += 1
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        self._process = subprocess.Popen(
            self.argv,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.info("%s started (pid %d, log %s)", self.name, self._process.pid, self.log_path)
        return self._process.pid

    def kill(self) -> int:
        """SIGKILL: no chance to finish the batch in hand, commit or close anything."""
        process = self._process
        if process is None or process.poll() is not None:
            raise RuntimeError(f"{self.name} is not running")
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        self.kills += 1
        self._reap()
        return process.pid

    def terminate(self, timeout_s: float = 60.0) -> int | None:
        """SIGTERM and wait (the clean stop every service promises); SIGKILL after ``timeout_s``."""
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %.0fs of SIGTERM: SIGKILL", self.name, timeout_s)
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=30)
        code = process.returncode
        self._reap()
        return code

    def _reap(self) -> None:
        if self._process is not None and self._process.poll() is not None:
            self.exit_codes.append(int(self._process.returncode))
            self._process = None
        if self._log is not None and self._process is None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class BrokerFaults:
    """Faults on the brokers of one local cluster (by the pids in its ``state.json``)."""

    def __init__(self, settings: Settings, *, data_dir: Path, base_port: int) -> None:
        self.settings = settings
        self.cluster = LocalCluster(settings, data_dir=data_dir, base_port=base_port)
        self.paused: set[int] = set()
        self.dead: set[int] = set()

    def broker_ids(self) -> list[int]:
        state = self.cluster.load_state()
        if state is None:
            raise LocalKafkaError(f"no local cluster in {self.cluster.data_dir}")
        return [b.node_id for b in state.brokers]

    def pid(self, node_id: int) -> int:
        state = self.cluster.load_state()
        pid = state.broker(node_id).pid if state is not None else None
        if pid is None:
            raise LocalKafkaError(f"broker {node_id} has no pid in {self.cluster.state_path}")
        return pid

    def describe(self, topics: list[str]) -> list[dict[str, Any]]:
        """``describe_topics`` of kafka-python (partitions with leader, replicas and ISR)."""
        from bus389.kafka import kafka_errors, make_admin

        with kafka_errors(bootstrap=self.settings.bootstrap):
            admin = make_admin(self.settings, request_timeout_ms=10_000)
            try:
                result: list[dict[str, Any]] = admin.describe_topics(topics)
            finally:
                admin.close()
        return result

    def leader_of(self, topic: str, partition: int) -> int | None:
        try:
            described = self.describe([topic])
        except BusError as exc:
            log.warning("cannot find the leader of %s/%d: %s", topic, partition, exc)
            return None
        for info in described:
            for p in info.get("partitions", []):
                if p.get("partition_index") == partition and int(p.get("leader_id", -1)) >= 0:
                    return int(p["leader_id"])
        return None

    def under_replicated(self, topics: list[str]) -> list[str]:
        """Partitions whose ISR is smaller than their replica set (``topic/partition``)."""
        lagging = []
        for info in self.describe(topics):
            for p in info.get("partitions", []):
                if len(p.get("isr_nodes", [])) < len(p.get("replica_nodes", [])):
                    lagging.append(f"{info['name']}/{p['partition_index']}")
        return lagging

    def wait_in_sync(self, topics: list[str], *, timeout_s: float) -> list[str]:
        """Wait until every replica of ``topics`` is back in sync; return what still lags at the end."""
        deadline = time.monotonic() + timeout_s
        lagging: list[str] = ["?"]
        while time.monotonic() < deadline:
            try:
                lagging = self.under_replicated(topics)
            except BusError as exc:
                lagging = [f"? ({exc})"]
            if not lagging:
                return []
            time.sleep(1.0)
        return lagging

    def kill(self, node_id: int) -> int:
        pid = self.cluster.kill(node_id)
        self.dead.add(node_id)
        return pid

    def start(self, node_id: int) -> int:
        """Start a killed broker and wait until it is unfenced (retried: a slow start is not a fault)."""
        last: BusError | None = None
        for _ in range(3):
            try:
                pid = self.cluster.start(node_id)
                self.dead.discard(node_id)
                return pid
            except BusError as exc:
                last = exc
                log.warning("broker %d did not come back: %s; trying again", node_id, exc)
                time.sleep(2.0)
        raise LocalKafkaError(f"broker {node_id} could not be restarted: {last}")

    def pause(self, node_id: int) -> int:
        pid = self.pid(node_id)
        os.kill(pid, signal.SIGSTOP)
        self.paused.add(node_id)
        return pid

    def resume(self, node_id: int) -> int:
        pid = self.pid(node_id)
        os.kill(pid, signal.SIGCONT)
        self.paused.discard(node_id)
        return pid

    def heal(self) -> list[str]:
        """Resume every paused broker and start every killed one; say what was done."""
        done = []
        for node_id in sorted(self.paused):
            self.resume(node_id)
            done.append(f"broker {node_id} resumed")
        for node_id in sorted(self.dead):
            self.start(node_id)
            done.append(f"broker {node_id} started")
        return done

    def bootstrap(self) -> str:
        state = self.cluster.load_state()
        if state is None:
            raise BrokerError(f"no local cluster in {self.cluster.data_dir}")
        return ",".join(f"{state.host}:{b.port}" for b in state.brokers)
