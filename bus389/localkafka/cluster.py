"""Running a local KRaft cluster on loopback: format, start, wait, stop, kill and restart its brokers.

The cluster's facts (cluster id, ports, pids, where the jars are) live in ``<data_dir>/state.json``,
so every command finds what an earlier one started, and ``down`` stops only those pids (checked
against ``/proc/<pid>/cmdline`` so a recycled pid is never signalled). Brokers run in their own
session and outlive the command that started them.
"""

from __future__ import annotations

import base64
import fcntl
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from bus389.config_file import write_private_file
from bus389.errors import BrokerError, LocalKafkaError
from bus389.kafka import describe_cluster, make_admin
from bus389.localkafka.config import (
    ClusterLayout,
    NodeLayout,
    plan_cluster,
    render_properties,
    server_properties,
)
from bus389.localkafka.fetch import LOG4J2_CONFIG, KafkaJars, classpath, ensure_jars, find_java
from bus389.logs import mask_secrets
from bus389.security.localbroker import (
    SECURITY_DIR,
    SecureFiles,
    admin_settings,
    prepare_secure_files,
    scram_format_args,
    secure_properties,
    write_admin_config,
)
from bus389.settings import Settings

__all__ = [
    "STATE_FILE",
    "BrokerState",
    "BrokerStatus",
    "ClusterState",
    "ClusterStatus",
    "LocalCluster",
    "StopReport",
    "UpResult",
    "log_tail",
    "random_kafka_uuid",
]

STATE_FILE = "state.json"
_LOCK_FILE = ".lock"
_TAIL_LINES = 40
_PROBE_TIMEOUT_MS = 2_000
_POLL_S = 0.5
_KILL_WAIT_S = 10.0

# Popen objects of brokers started by this process: kept so that they are reaped (no zombies, no
# "subprocess still running" ResourceWarning when a test starts a cluster in-process).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


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


@dataclass(frozen=True)
class StopReport:
    node_id: int
    pid: int
    how: str
    """``stopped`` (exited on SIGTERM) or ``killed`` (needed SIGKILL)."""


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
        try:
            text = self.state_path.read_text()
        except FileNotFoundError:
            return None
        try:
            return ClusterState.from_json(text)
        except (ValueError, TypeError, KeyError) as exc:
            raise LocalKafkaError(f"unreadable {self.state_path}: {exc}") from exc

    def _save_state(self, state: ClusterState) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(state.to_json())
        os.replace(tmp, self.state_path)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One command at a time per data directory (two ``up`` at once would both format)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with (self.data_dir / _LOCK_FILE).open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

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
        with self._locked():
            state = self.load_state()
            if state is not None:
                if state.base_port != self.base_port:
                    self.echo(f"{self.data_dir} holds a cluster on base port {state.base_port}: using it")
                alive = [b for b in state.brokers if self._alive(state, b)]
                if fresh and not alive:
                    self._wipe(state)
                    state = None
                elif state.secure != secure:
                    have = "secure" if state.secure else "plaintext"
                    raise LocalKafkaError(
                        f"a {have} cluster is formatted in {self.data_dir}; "
                        + ("`bus389 kafka down` then --fresh" if alive else "use --fresh to wipe it")
                        + ", or another --data-dir"
                    )
                elif state.size != brokers:
                    what = "running" if alive else "formatted"
                    hint = "`bus389 kafka down` first" if alive else "--fresh to wipe it"
                    raise LocalKafkaError(
                        f"a {state.size}-broker cluster is {what} in {self.data_dir}; "
                        f"use {hint}, or another --data-dir"
                    )
                elif not state.formatted:
                    self._wipe(state)
                    state = None
                elif len(alive) == state.size:
                    self._await(state, {b.node_id for b in state.brokers}, watch=[])
                    self._warm_up(state)
                    return UpResult(state, self._bootstrap(state), already_running=True)
            java = find_java()
            jars = ensure_jars(
                version=self.settings.local.version,
                cache_dir=self.settings.local.cache_dir,
                kafka_home=self.kafka_home,
                echo=self.echo,
            )
            if state is None:
                state = self._format(brokers, java, jars, secure=secure)
            else:
                state = replace(state, java=java, libs=str(jars.libs), heap=self.heap)
            to_start = [b.node_id for b in state.brokers if not self._alive(state, b)]
            self._start_nodes(state, to_start)
            self._warm_up(state)
            return UpResult(state, self._bootstrap(state), already_running=False, started=to_start)

    def down(self, *, purge: bool = False) -> list[StopReport]:
        """Stop the brokers recorded in the state file (SIGTERM, then SIGKILL after the timeout)."""
        with self._locked():
            state = self.load_state()
            if state is None:
                return []
            targets = [b for b in state.brokers if b.pid is not None and self._alive(state, b)]
            reports = self._stop(state, targets, timeout_s=self.settings.local.stop_timeout_s)
            for broker in state.brokers:
                broker.pid = None
            self._save_state(state)
            if purge:
                self._wipe(state)
            return reports

    def status(self) -> ClusterStatus:
        """Each broker's pid, port and liveness, and whether the cluster answers a metadata request."""
        state = self.load_state()
        if state is None:
            return ClusterStatus(self.data_dir, None, None, [], answering=False, detail="no cluster here")
        alive = {b.node_id: self._alive(state, b) for b in state.brokers}
        info: dict[str, Any] | None = None
        detail = ""
        if any(alive.values()):
            try:
                info = self._probe(state)
            except BrokerError as exc:
                detail = str(exc)
        else:
            detail = "no broker is running"
        unfenced = _unfenced_ids(info) if info is not None else None
        brokers = [
            BrokerStatus(
                b.node_id,
                b.pid,
                b.port,
                alive[b.node_id],
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
        with self._locked():
            state = self._require_state()
            broker = state.broker(node_id)
            if broker.pid is None or not self._alive(state, broker):
                raise LocalKafkaError(f"broker {node_id} is not running")
            pid = broker.pid
            os.kill(pid, signal.SIGKILL)
            if not self._wait_dead(state, [broker], _KILL_WAIT_S):
                raise LocalKafkaError(f"broker {node_id} (pid {pid}) survived SIGKILL")
            return pid

    def start(self, node_id: int) -> int:
        """Start one stopped or killed broker again and wait until it is unfenced; returns its pid."""
        with self._locked():
            state = self._require_state()
            broker = state.broker(node_id)
            if self._alive(state, broker):
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

    def _format(self, brokers: int, java: str, jars: KafkaJars, *, secure: bool = False) -> ClusterState:
        layout = plan_cluster(
            brokers=brokers,
            host=self.settings.local.host,
            base_port=self.base_port,
            data_dir=self.data_dir,
            secure=secure,
        )
        self._check_ports(layout, [n.node_id for n in layout.nodes])
        files: SecureFiles | None = None
        if secure:
            files = prepare_secure_files(self.data_dir)
            layout = replace(layout, extra_properties={**layout.extra_properties, **secure_properties(files)})
        state = ClusterState(
            cluster_id=random_kafka_uuid(),
            version=self.settings.local.version,
            host=self.settings.local.host,
            base_port=self.base_port,
            heap=self.heap,
            java=java,
            libs=str(jars.libs),
            brokers=[
                BrokerState(
                    node_id=n.node_id,
                    port=n.broker_port,
                    controller_port=n.controller_port,
                    directory=str(n.directory),
                    directory_id=random_kafka_uuid(),
                )
                for n in layout.nodes
            ],
            secure=secure,
        )
        self.echo(f"formatting a {brokers}-broker KRaft cluster {state.cluster_id} in {self.data_dir}")
        if brokers == 1:
            quorum = ["--standalone"]
        else:
            controllers = ",".join(
                f"{b.node_id}@{state.host}:{b.controller_port}:{b.directory_id}" for b in state.brokers
            )
            quorum = ["--initial-controllers", controllers]
        cp = classpath(jars)
        runs: list[tuple[NodeLayout, subprocess.Popen[str]]] = []
        argfiles: list[Path] = []
        try:
            for node in layout.nodes:
                node.log_dir.mkdir(parents=True, exist_ok=True)
                node.logs_dir.mkdir(parents=True, exist_ok=True)
                properties = render_properties(
                    server_properties(layout, node.node_id),
                    header="Written by `bus389 kafka up`; rewritten on every format.",
                )
                tool = [
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    state.cluster_id,
                    "-c",
                    str(node.properties_path),
                ]
                tool += quorum
                if files is None:
                    node.properties_path.write_text(properties)
                    command = [java, "-Xmx256m", *_logging_flags(node), "-cp", cp, *tool]
                else:
                    # The properties and the SCRAM arguments hold passwords: files 0600, and the
                    # arguments in a java @argfile so that `ps` never shows them.
                    write_private_file(node.properties_path, properties)
                    argfile = node.directory / "format.args"
                    write_private_file(argfile, _argfile_text([*tool, *scram_format_args(files)]))
                    argfiles.append(argfile)
                    command = [java, "-Xmx256m", *_logging_flags(node), "-cp", cp, f"@{argfile}"]
                proc = subprocess.Popen(
                    command,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    text=True,
                )
                runs.append((node, proc))
            problems = []
            for node, proc in runs:
                try:
                    output, _ = proc.communicate(timeout=max(60.0, self.settings.local.start_timeout_s))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    output, _ = proc.communicate()
                    problems.append(f"broker {node.node_id}: StorageTool format timed out")
                    continue
                if proc.returncode != 0:
                    tail = "\n".join(output.strip().splitlines()[-_TAIL_LINES:])
                    if files is not None:
                        secrets = (files.admin_password(), files.broker_password())
                        tail = mask_secrets(tail, tuple(x.get_secret_value() for x in secrets))
                    problems.append(
                        f"broker {node.node_id}: StorageTool format exit {proc.returncode}:\n{tail}"
                    )
        finally:
            for argfile in argfiles:
                argfile.unlink(missing_ok=True)
        if problems:
            raise LocalKafkaError("could not format the storage:\n" + "\n".join(problems))
        if files is not None:
            write_admin_config(files, layout.bootstrap)
        state.formatted = True
        self._save_state(state)
        return state

    def _check_ports(self, layout: ClusterLayout, node_ids: list[int]) -> None:
        for node_id in node_ids:
            node = layout.node(node_id)
            for port in node.ports():
                if not _port_free(node.host, port):
                    raise LocalKafkaError(
                        f"port {node.host}:{port} (broker {node_id}) is already taken by another process; "
                        "stop it, or choose other ports with BUS389_LOCAL__BASE_PORT / --base-port"
                    )

    def _start_nodes(self, state: ClusterState, node_ids: list[int]) -> None:
        if not node_ids:
            return
        layout = state.layout(self.data_dir)
        self._check_ports(layout, node_ids)
        cp = ":".join(str(p) for p in sorted(Path(state.libs).glob("*.jar")))
        started = []
        try:
            for node_id in node_ids:
                node = layout.node(node_id)
                node.logs_dir.mkdir(parents=True, exist_ok=True)
                broker = state.broker(node_id)
                broker.pid = self._launch(state, node, cp)
                started.append(broker)
                self.echo(f"started broker {node_id} (pid {broker.pid}) on {node.bootstrap}")
            self._save_state(state)
            self._await(state, {b.node_id for b in state.brokers}, watch=started)
        except BaseException:
            self._stop(state, [b for b in started if self._alive(state, b)], timeout_s=5.0)
            for broker in started:
                broker.pid = None
            self._save_state(state)
            raise

    def _launch(self, state: ClusterState, node: NodeLayout, cp: str) -> int:
        command = [
            state.java,
            f"-Xmx{state.heap}",
            "-Xms64m",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            *_logging_flags(node),
            "-cp",
            cp,
            "kafka.Kafka",
            str(node.properties_path),
        ]
        with (node.logs_dir / "console.log").open("ab") as console:
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                cwd=node.directory,
                start_new_session=True,
            )
        _CHILDREN[proc.pid] = proc
        return proc.pid

    def _await(self, state: ClusterState, need: set[int], *, watch: list[BrokerState]) -> None:
        """Wait until the brokers ``need`` are unfenced in this cluster; fail fast if a watched one dies."""
        timeout_s = self.settings.local.start_timeout_s
        deadline = time.monotonic() + timeout_s
        last_problem = "no answer yet"
        missing = set(need)
        while True:
            for broker in watch:
                if not self._alive(state, broker):
                    raise LocalKafkaError(
                        f"broker {broker.node_id} (pid {broker.pid}) exited while starting\n"
                        + log_tail(Path(broker.directory) / "logs")
                    )
            try:
                info = self._probe(state)
            except BrokerError as exc:
                last_problem = str(exc)
            else:
                if info.get("cluster_id") != state.cluster_id:
                    raise LocalKafkaError(
                        f"a different cluster ({info.get('cluster_id')}) answers on "
                        f"{self._bootstrap(state)}; expected {state.cluster_id}"
                    )
                missing = need - _unfenced_ids(info)
                if not missing:
                    return
                last_problem = "not yet unfenced: broker " + ", ".join(str(i) for i in sorted(missing))
            if time.monotonic() >= deadline:
                suspects = [b for b in state.brokers if b.node_id in missing] or watch or state.brokers
                laggard = suspects[0]
                raise LocalKafkaError(
                    f"the cluster did not come up within {timeout_s:g}s ({last_problem})\n"
                    + log_tail(Path(laggard.directory) / "logs")
                )
            time.sleep(_POLL_S)

    def _client_settings(self, state: ClusterState) -> Settings:
        """Settings for a client of this cluster: plaintext, or the admin's SASL_SSL when secure."""
        if state.secure:
            files = SecureFiles(self.data_dir / SECURITY_DIR)
            return admin_settings(self.settings, files, self._bootstrap(state))
        plain = self.settings.kafka.model_copy(update={"security_protocol": "PLAINTEXT"})
        return self.settings.model_copy(update={"bootstrap": self._bootstrap(state), "kafka": plain})

    def _warm_up(self, state: ClusterState) -> None:
        """Create ``__consumer_offsets`` and ``__transaction_state`` now, while every broker is up."""
        from bus389.localkafka.warmup import create_internal_topics

        try:
            create_internal_topics(self._client_settings(state), echo=self.echo)
        except BrokerError as exc:
            raise LocalKafkaError(
                f"the cluster is up, but its internal topics could not be made: {exc}"
            ) from exc

    def _probe(self, state: ClusterState) -> dict[str, Any]:
        """Ask the cluster for its brokers (as the admin when secure) within about two seconds."""
        settings = self._client_settings(state)
        with _quiet_kafka_logs():
            admin = make_admin(
                settings,
                client_id="bus389-localkafka",
                request_timeout_ms=_PROBE_TIMEOUT_MS,
                bootstrap_timeout_ms=_PROBE_TIMEOUT_MS,
            )
            try:
                return describe_cluster(admin)
            finally:
                admin.close()

    def _alive(self, state: ClusterState, broker: BrokerState) -> bool:
        if broker.pid is None:
            return False
        properties = str(Path(broker.directory) / "server.properties")
        return _pid_is_broker(broker.pid, properties)

    def _stop(self, state: ClusterState, brokers: list[BrokerState], *, timeout_s: float) -> list[StopReport]:
        reports: list[StopReport] = []
        running = [(b, b.pid) for b in brokers if b.pid is not None]
        for broker, pid in running:
            self.echo(f"stopping broker {broker.node_id} (pid {pid})")
            _signal(pid, signal.SIGTERM)
        self._wait_dead(state, brokers, timeout_s)
        for broker, pid in running:
            if self._alive(state, broker):
                _signal(pid, signal.SIGKILL)
                reports.append(StopReport(broker.node_id, pid, "killed"))
            else:
                reports.append(StopReport(broker.node_id, pid, "stopped"))
        if not self._wait_dead(state, brokers, _KILL_WAIT_S):
            left = [str(b.pid) for b in brokers if self._alive(state, b)]
            raise LocalKafkaError(f"pids {', '.join(left)} survived SIGKILL")
        return reports

    def _wait_dead(self, state: ClusterState, brokers: list[BrokerState], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while any(self._alive(state, b) for b in brokers):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
        return True

    def _wipe(self, state: ClusterState) -> None:
        """Delete the brokers' directories and the state file (only what ``up`` created)."""
        for broker in state.brokers:
            shutil.rmtree(broker.directory, ignore_errors=True)
        self.state_path.unlink(missing_ok=True)


def _argfile_text(args: list[str]) -> str:
    """A java ``@argfile``: one double-quoted argument a line (backslashes and quotes escaped)."""
    return "".join('"' + a.replace("\\", "\\\\").replace('"', '\\"') + '"\n' for a in args)


def _logging_flags(node: NodeLayout) -> list[str]:
    return [f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}", f"-Dkafka.logs.dir={node.logs_dir}"]


def _unfenced_ids(info: dict[str, Any]) -> set[int]:
    return {int(b["broker_id"]) for b in info.get("brokers", []) if not b.get("is_fenced", False)}


def _port_free(host: str, port: int) -> bool:
    # SO_REUSEADDR as the JVM sets it: a port in TIME_WAIT is free, one with a listener is not.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _pid_is_broker(pid: int, properties: str) -> bool:
    """Is ``pid`` a live (not zombie) ``kafka.Kafka`` process started with this properties file?"""
    child = _CHILDREN.get(pid)
    if child is not None:
        # Our own child: its pid cannot be reused before we reap it, and its cmdline is not yet
        # "kafka.Kafka" for a moment after Popen returns (the java launcher re-executes itself).
        if child.poll() is None:
            return True
        del _CHILDREN[pid]
        return False
    proc = Path("/proc") / str(pid)
    if not Path("/proc/self").exists():  # not Linux: trust the pid
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    try:
        stat = (proc / "stat").read_text()
        cmdline = (proc / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X"):
        return False
    return b"kafka.Kafka" in cmdline and properties.encode() in cmdline


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def log_tail(logs_dir: Path, lines: int = _TAIL_LINES) -> str:
    """The last lines of a broker's ``server.log`` (and of ``console.log`` if the JVM wrote there)."""
    parts: list[str] = []
    for name, count in (("server.log", lines), ("console.log", 10)):
        path = logs_dir / name
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        if text.strip():
            tail = "\n".join(text.rstrip().splitlines()[-count:])
            parts.append(f"--- last {count} lines of {path} ---\n{tail}")
    return "\n".join(parts) if parts else f"(no log written yet in {logs_dir})"


@contextmanager
def _quiet_kafka_logs() -> Iterator[None]:
    """kafka-python logs every refused connection; while waiting for a broker those are expected."""
    logger = logging.getLogger("kafka")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)
