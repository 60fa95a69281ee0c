"""Integration fixtures: one real Kafka per session, and per-test topics and consumer groups.

``kafka_bootstrap`` reuses ``BUS389_BOOTSTRAP`` when it is set (a shared broker, CI's broker);
otherwise it runs ``bus389 kafka up`` once and ``bus389 kafka down`` at the end, if it started it.
Every test gets its own topic prefix (so its own outboxes, inboxes, DLQ and audit topic) and makes
unique group ids, so tests never see each other's events, even on a shared broker.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bus389.kafka import kafka_errors, make_admin
from bus389.settings import Settings
from bus389.topics import apply_topics

BUS389 = str(Path(sys.executable).with_name("bus389"))
"""The console script of the interpreter running the tests (the venv's)."""


def run_bus389(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the real ``bus389`` command in a subprocess (stdout and stderr captured as text)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [BUS389, *args], capture_output=True, text=True, env=full_env, timeout=timeout, check=False
    )


@pytest.fixture(scope="session")
def bus389_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``bus389_cli("kafka", "status", env={...})``: the real command in a subprocess."""
    return run_bus389


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """The bootstrap address of a live broker for this test session."""
    given = os.environ.get("BUS389_BOOTSTRAP")
    if given:
        yield given
        return
    result = run_bus389("kafka", "up")
    if result.returncode != 0:
        pytest.fail(f"`bus389 kafka up` failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    started = "already running" not in result.stdout
    bootstrap = next(
        line.split("=", 1)[1].strip() for line in result.stdout.splitlines() if "BUS389_BOOTSTRAP=" in line
    )
    # Subprocesses the tests start (`bus389 route`, `bus389 publish`) find the same broker.
    os.environ["BUS389_BOOTSTRAP"] = bootstrap
    try:
        yield bootstrap
    finally:
        del os.environ["BUS389_BOOTSTRAP"]
        if started:
            run_bus389("kafka", "down")


@pytest.fixture
def topic_prefix() -> str:
    """A topic prefix no other test uses: ``t_<8 hex>``."""
    return f"t_{uuid.uuid4().hex[:8]}"


@pytest.fixture
def make_settings(kafka_bootstrap: str, topic_prefix: str) -> Iterator[Callable[..., Settings]]:
    """Factory: ``make_settings(apply=True, **overrides)`` → Settings on the session broker and this
    test's prefix; with ``apply`` the prefix's topics are created first. Deletes them afterwards."""
    made: list[Settings] = []

    def make(*, apply: bool = True, **overrides: Any) -> Settings:
        fields: dict[str, Any] = {"bootstrap": kafka_bootstrap, "topic_prefix": topic_prefix, **overrides}
        settings = Settings(**fields)
        if apply:
            apply_topics(settings)
        made.append(settings)
        return settings

    yield make
    for settings in made:
        _delete_prefix_topics(settings)


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    """Settings on the session broker with this test's own prefix, its topics already created."""
    return make_settings()


@pytest.fixture
def unique_group(topic_prefix: str) -> Callable[..., str]:
    """Factory: ``unique_group("ict")`` → ``<prefix>.ict.<8 hex>``, a consumer group (or transactional
    id) under the agency's identity prefix that no other test uses."""

    def make(agency: str = "test", purpose: str = "") -> str:
        middle = f"{agency}.{purpose}." if purpose else f"{agency}."
        return f"{topic_prefix}.{middle}{uuid.uuid4().hex[:8]}"

    return make


def _delete_prefix_topics(settings: Settings) -> None:
    # Best effort: a shared broker should not fill up with test topics.
    try:
        with make_admin(settings) as admin, kafka_errors(bootstrap=settings.bootstrap):
            mine = [t for t in admin.list_topics() if t.startswith(settings.topic_prefix + ".")]
            if mine:
                admin.delete_topics(mine)
    except Exception:  # noqa: S110 — cleanup must never fail a test that passed
        pass
