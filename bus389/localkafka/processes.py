"""The brokers as processes: launch, recognise (pid checked against ``/proc/<pid>/cmdline``, so a
recycled pid is never signalled), signal, stop, and read their logs; and whether a port is free.

Brokers run in their own session and outlive the command that started them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bus389.errors import LocalKafkaError
from bus389.localkafka.config import ClusterLayout, NodeLayout
from bus389.localkafka.fetch import LOG4J2_CONFIG
from bus389.localkafka.state import BrokerState, ClusterState

__all__ = [
    "KILL_WAIT_S",
    "TAIL_LINES",
    "StopReport",
    "alive",
    "check_ports",
    "launch",
    "log_tail",
    "logging_flags",
    "port_free",
    "send_signal",
    "stop",
    "wait_dead",
]

TAIL_LINES = 40
KILL_WAIT_S = 10.0

# Popen objects of brokers started by this process: kept so that they are reaped (no zombies, no
# "subprocess still running" ResourceWarning when a test starts a cluster in-process).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class StopReport:
    node_id: int
    pid: int
    how: str
    """``stopped`` (exited on SIGTERM) or ``killed`` (needed SIGKILL)."""


def logging_flags(node: NodeLayout) -> list[str]:
    return [f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}", f"-Dkafka.logs.dir={node.logs_dir}"]


def launch(state: ClusterState, node: NodeLayout, cp: str) -> int:
    """Start one broker in its own session, console to ``logs/console.log``; returns its pid."""
    command = [
        state.java,
        f"-Xmx{state.heap}",
        "-Xms64m",
        "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true",
        *logging_flags(node),
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


def alive(broker: BrokerState) -> bool:
    """Is the broker's recorded pid still this broker?"""
    if broker.pid is None:
        return False
    properties = str(Path(broker.directory) / "server.properties")
    return _pid_is_broker(broker.pid, properties)


def stop(
    brokers: list[BrokerState], *, timeout_s: float, echo: Callable[[str], None] = lambda _: None
) -> list[StopReport]:
    """SIGTERM the brokers, SIGKILL those still running after ``timeout_s``; how each one ended."""
    reports: list[StopReport] = []
    running = [(b, b.pid) for b in brokers if b.pid is not None]
    for broker, pid in running:
        echo(f"stopping broker {broker.node_id} (pid {pid})")
        send_signal(pid, signal.SIGTERM)
    wait_dead(brokers, timeout_s)
    for broker, pid in running:
        if alive(broker):
            send_signal(pid, signal.SIGKILL)
            reports.append(StopReport(broker.node_id, pid, "killed"))
        else:
            reports.append(StopReport(broker.node_id, pid, "stopped"))
    if not wait_dead(brokers, KILL_WAIT_S):
        left = [str(b.pid) for b in brokers if alive(b)]
        raise LocalKafkaError(f"pids {', '.join(left)} survived SIGKILL")
    return reports


def wait_dead(brokers: list[BrokerState], timeout_s: float) -> bool:
    """Wait until none of the brokers runs; False if one still does after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while any(alive(b) for b in brokers):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def send_signal(pid: int, sig: signal.Signals) -> None:
    """Signal ``pid``; one that has already exited is not an error."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def check_ports(layout: ClusterLayout, node_ids: list[int]) -> None:
    """Refuse to start brokers whose ports another process holds."""
    for node_id in node_ids:
        node = layout.node(node_id)
        for port in node.ports():
            if not port_free(node.host, port):
                raise LocalKafkaError(
                    f"port {node.host}:{port} (broker {node_id}) is already taken by another process; "
                    "stop it, or choose other ports with BUS389_LOCAL__BASE_PORT / --base-port"
                )


def port_free(host: str, port: int) -> bool:
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


def log_tail(logs_dir: Path, lines: int = TAIL_LINES) -> str:
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
