"""Two real ``bus389 serve ict`` processes on the real broker: the second stands by without disturbing
the first (which keeps answering requests), ``bus389 status`` and ``ict approve`` say which one is
active, and when the first stops the standby takes over and answers the next request."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import BUS389, run_bus389
from test_ict_flow import (
    cli_env,
    ict_settings,  # noqa: F401 - the fixture
    put_in_inbox,
    read_results,
    request_record,
    request_state,
    unsent,
    wait_for,
)

from bus389.consumers.ict.store import RequestState
from bus389.instances import instances
from bus389.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def env(ict_settings: Settings, tmp_path: Path) -> dict[str, str]:  # noqa: F811
    return {
        **os.environ,
        **cli_env(ict_settings),
        "BUS389_ICT__AUTO_APPROVE_SENDERS": '["police"]',
        "BUS389_INSTANCES__LOCK_DIR": str(tmp_path / "run"),
    }


def _start(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [BUS389, "serve", "ict", "--metrics-port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _role(env: dict[str, str], pid: int) -> str | None:
    return next((i.role for i in instances(Path(env["BUS389_INSTANCES__LOCK_DIR"])) if i.pid == pid), None)


def _answered(settings: Settings, request: dict[str, object]) -> bool:
    meta = request["meta"]
    assert isinstance(meta, dict)
    return request_state(settings, meta["event_id"]) == RequestState.APPROVED and unsent(settings) == 0


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=60)


def test_a_second_ict_service_stands_by_and_takes_over(
    ict_settings: Settings,  # noqa: F811
    env: dict[str, str],
    processes: list[subprocess.Popen[str]],
) -> None:
    settings = ict_settings
    first = _start(env)
    processes.append(first)
    wait_for("the first service active", lambda: _role(env, first.pid) == "active")
    second = _start(env)
    processes.append(second)
    wait_for("the second service standing by", lambda: _role(env, second.pid) == "standby")

    # The first keeps working beside its standby (the standby opened no producer to fence it).
    one = request_record(source="police", domains=["mot.example.vn"])
    put_in_inbox(settings, one)
    wait_for("the first service's answer", lambda: _answered(settings, one))
    assert first.poll() is None and second.poll() is None

    status = run_bus389("status", env=env)
    # 1: no standing office runs for this test's prefix (the router's group is shared by prefixes).
    assert status.returncode == 1, status.stdout + status.stderr
    assert "standing-office  not running" in status.stdout
    ict_line = status.stdout.split("ict ", 1)[1]
    assert f"bus389-ict-pid{first.pid}-" in ict_line
    assert f"pid {first.pid}, metrics port" in ict_line and "active" in ict_line
    assert f"pid {second.pid}, metrics port" in ict_line and "standby" in ict_line

    pending = request_record(source="market_surveillance", domains=["cho-duyet.example.vn"])
    put_in_inbox(settings, pending)
    pending_id = str(pending["meta"]["event_id"])  # type: ignore[index]
    wait_for(
        "the pending request stored", lambda: request_state(settings, pending_id) == RequestState.PENDING
    )
    approved = run_bus389("ict", "approve", pending_id, env=env)
    assert approved.returncode == 0, approved.stderr
    assert f"`bus389 serve ict` (pid {first.pid}) will take it up" in approved.stderr
    wait_for("the approval answered", lambda: unsent(settings) == 0)

    first.send_signal(signal.SIGTERM)
    _, stderr = first.communicate(timeout=60)
    assert first.returncode == 0, stderr
    wait_for("the standby taking over", lambda: _role(env, second.pid) == "active", timeout_s=30)

    two = request_record(source="police", domains=["hai.example.vn"])
    put_in_inbox(settings, two)
    wait_for("the new active service's answer", lambda: _answered(settings, two))
    assert second.poll() is None, "the standby died after taking over"

    second.send_signal(signal.SIGTERM)
    _, stderr = second.communicate(timeout=60)
    assert second.returncode == 0, stderr
    assert "standing by to take over" in stderr and "taking over" in stderr
    outcomes = sorted((r["outcome"], r["blocked"][0]) for r in read_results(settings))
    assert outcomes == [
        ("BLOCKED", "cho-duyet.example.vn"),
        ("BLOCKED", "hai.example.vn"),
        ("BLOCKED", "mot.example.vn"),
    ]

    gone = run_bus389("ict", "approve", "no-such-request", env=env)
    assert "no-such-request" in gone.stderr


def test_with_standbys_off_a_second_instance_refuses_in_one_line(
    ict_settings: Settings,  # noqa: F811
    env: dict[str, str],
    processes: list[subprocess.Popen[str]],
) -> None:
    first = _start(env)
    processes.append(first)
    wait_for("the first service active", lambda: _role(env, first.pid) == "active")
    refused = subprocess.run(
        [BUS389, "serve", "ict", "--metrics-port", "0"],
        env={**env, "BUS389_INSTANCES__STANDBY": "false"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 4, refused.stderr
    last = refused.stderr.strip().splitlines()[-1]
    assert "another instance is active on this bus" in last and f"pid {first.pid}" in last
    assert first.poll() is None
    status = run_bus389("status", env=env)
    assert f"bus389-ict-pid{first.pid}-" in status.stdout


@pytest.mark.parametrize("service", ["router", "standing-office"])
def test_a_killed_active_service_is_replaced_by_its_standby(
    settings: Settings,
    tmp_path: Path,
    service: str,
    processes: list[subprocess.Popen[str]],
) -> None:
    """The same for the router and the standing office, with the active one SIGKILLed (no clean exit)."""
    env = {
        **os.environ,
        "BUS389_BOOTSTRAP": settings.bootstrap,
        "BUS389_TOPIC_PREFIX": settings.topic_prefix,
        # Never the shared broker's default router group or transactional id.
        "BUS389_ROUTER__GROUP_ID": f"{settings.topic_prefix}.router",
        "BUS389_ROUTER__TRANSACTIONAL_ID": f"{settings.topic_prefix}.router",
        "BUS389_STORE__STANDING_OFFICE_URL": f"sqlite:///{tmp_path / 'so.sqlite3'}",
        "BUS389_INSTANCES__LOCK_DIR": str(tmp_path / "run"),
    }
    command = [BUS389, "serve", service, "--metrics-port", "0"]

    def start() -> subprocess.Popen[str]:
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        processes.append(process)
        return process

    first = start()
    wait_for("the first instance active", lambda: _role(env, first.pid) == "active")
    second = start()
    wait_for("the second instance standing by", lambda: _role(env, second.pid) == "standby")
    first.kill()
    first.communicate(timeout=60)
    wait_for("the standby taking over", lambda: _role(env, second.pid) == "active", timeout_s=30)
    name = "router" if service == "router" else "standing-office"

    def in_group() -> bool:
        status = run_bus389("status", env=env)
        line = next((ln for ln in status.stdout.splitlines() if ln.startswith(name)), "")
        return f"bus389-{service}-pid{second.pid}-" in line

    wait_for("the new active instance in its consumer group", in_group)
    assert second.poll() is None
    second.send_signal(signal.SIGTERM)
    _, stderr = second.communicate(timeout=60)
    assert second.returncode == 0, stderr
    assert "taking over" in stderr


def test_status_prints_a_hostile_client_id_as_data(ict_settings: Settings, env: dict[str, str]) -> None:  # noqa: F811
    """A member of the ICT group whose client id carries terminal controls: `status` escapes them."""
    from bus389.consumers.ict.service import group_id
    from bus389.kafka import make_consumer

    consumer = make_consumer(ict_settings, group_id=group_id(ict_settings), client_id="evil\x1b[2J\nict")
    inbox = ict_settings.topics.inbox("ict")
    try:
        # The inbox's partitions known before joining: kafka-python 3.0 may join with no metadata for a
        # subscribed topic, be assigned nothing and never rejoin (the services' assignment watch exists
        # for this; this bare consumer has none).
        wait_for("the ICT inbox's metadata", lambda: bool(consumer.partitions_for_topic(inbox)))
        consumer.subscribe([inbox])
        wait_for(
            "the hostile member's partitions",
            lambda: bool(consumer.poll(timeout_ms=200) or True) and bool(consumer.assignment()),
        )
        status = run_bus389("status", env=env)
    finally:
        consumer.close()
    assert "\x1b" not in status.stdout
    assert "evil\\x1b[2J\\nict on " in status.stdout


def test_a_standby_stopped_before_taking_over_exits_0_having_opened_nothing(
    ict_settings: Settings,  # noqa: F811
    env: dict[str, str],
    processes: list[subprocess.Popen[str]],
) -> None:
    first = _start(env)
    processes.append(first)
    wait_for("the first service active", lambda: _role(env, first.pid) == "active")
    second = _start(env)
    processes.append(second)
    wait_for("the second service standing by", lambda: _role(env, second.pid) == "standby")
    second.send_signal(signal.SIGTERM)
    _, stderr = second.communicate(timeout=60)
    assert second.returncode == 0, stderr
    assert "ict: stopped while standing by" in stderr
    assert "reading" not in stderr  # it never joined the inbox's group
    assert _role(env, second.pid) is None and _role(env, first.pid) == "active"
