"""The brokers as processes: which pid is ours, SIGTERM then SIGKILL, free ports, the log tail.

A stand-in broker is a real process whose command line names ``kafka.Kafka`` and its properties file,
which is all :func:`alive` looks at; no JVM is needed.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bus389.localkafka.processes import alive, log_tail, port_free, stop
from bus389.localkafka.state import BrokerState

_FAKE_BROKER = """
import signal, sys, time
if sys.argv[1] == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
while True:
    time.sleep(1)
"""


FakeBroker = Callable[[int, str], tuple[BrokerState, "subprocess.Popen[str]"]]
"""Start a stand-in broker: node id, ``polite`` (exits on SIGTERM) or ``stubborn`` (ignores it)."""


@pytest.fixture
def fake_broker(tmp_path: Path) -> Iterator[FakeBroker]:
    procs: list[subprocess.Popen[str]] = []

    def start(node_id: int, mode: str) -> tuple[BrokerState, subprocess.Popen[str]]:
        directory = tmp_path / f"broker-{node_id}"
        directory.mkdir()
        proc = subprocess.Popen(
            [sys.executable, "-c", _FAKE_BROKER, mode, "kafka.Kafka", str(directory / "server.properties")],
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        return BrokerState(node_id, 0, 0, str(directory), "d", pid=proc.pid), proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()


def test_a_broker_is_ours_only_with_its_own_properties_file(fake_broker: FakeBroker) -> None:
    broker, _ = fake_broker(1, "polite")
    assert alive(broker)
    other_dir = BrokerState(2, 0, 0, str(Path(broker.directory).parent / "elsewhere"), "d", pid=broker.pid)
    assert not alive(other_dir)
    assert not alive(BrokerState(3, 0, 0, broker.directory, "d", pid=None))


def test_stop_terms_then_kills_and_says_which(fake_broker: FakeBroker) -> None:
    polite, polite_proc = fake_broker(1, "polite")
    stubborn, stubborn_proc = fake_broker(2, "stubborn")
    said: list[str] = []
    reports = stop([polite, stubborn], timeout_s=1.0, echo=said.append)
    assert [(r.node_id, r.pid, r.how) for r in reports] == [
        (1, polite.pid, "stopped"),
        (2, stubborn.pid, "killed"),
    ]
    assert said == [f"stopping broker 1 (pid {polite.pid})", f"stopping broker 2 (pid {stubborn.pid})"]
    assert polite_proc.wait(timeout=30) == -15
    assert stubborn_proc.wait(timeout=30) == -9
    assert not alive(polite) and not alive(stubborn)


def test_port_free_sees_a_listener() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert not port_free("127.0.0.1", port)
    assert port_free("127.0.0.1", port)


def test_log_tail_shows_the_end_of_server_log(tmp_path: Path) -> None:
    (tmp_path / "server.log").write_text("".join(f"line {i}\n" for i in range(100)))
    tail = log_tail(tmp_path, lines=5)
    assert tail.splitlines()[1:] == [f"line {i}" for i in range(95, 100)]
    assert str(tmp_path / "server.log") in tail
    assert "no log written yet" in log_tail(tmp_path / "missing")
