"""Helpers of the web console's integration tests: the real `bus389 serve web` on a real port."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import _wait
import httpx
import pytest
from conftest import BUS389, run_bus389

from bus389.consumers.inbox_reader import ConsumedEvent, TopicReader
from bus389.settings import Settings

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def wait_for(what: str, check: Callable[[], bool], timeout_s: float = 60.0) -> None:
    """The web tests' order of arguments for :func:`_wait.wait_for` (fails the test at the deadline)."""
    _wait.wait_for(check, timeout_s, what)


def read_topic(settings: Settings, topic: str, idle_s: float = 2.0) -> list[ConsumedEvent]:
    """Every committed event on ``topic`` (read_committed, from the beginning)."""
    with TopicReader(settings, topic, from_beginning=True) as reader:
        return [i for i in reader.read(idle_timeout_s=idle_s) if isinstance(i, ConsumedEvent)]


def console_env(settings: Settings, tmp_path: Path, **extra: str) -> dict[str, str]:
    # The tax office's alert-id key of this test (0600), so an upload never makes one in the user's state.
    tax_key = tmp_path / "tax-alert-id.key"
    if not tax_key.exists():
        tax_key.write_text(secrets.token_urlsafe(32) + "\n", encoding="utf-8")
        tax_key.chmod(0o600)
    return {
        "BUS389_BOOTSTRAP": settings.bootstrap,
        "BUS389_TOPIC_PREFIX": settings.topic_prefix,
        "BUS389_WEB__USERS_DB": str(tmp_path / "web.sqlite3"),
        "BUS389_WEB__SESSION_SECRET_FILE": str(tmp_path / "web-session.key"),
        "BUS389_WEB__UPLOAD_DIR": str(tmp_path / "uploads"),
        "BUS389_STORE__ICT_URL": settings.store.ict_url,
        "BUS389_STORE__STANDING_OFFICE_URL": settings.store.standing_office_url,
        "BUS389_ICT__OUTPUT_DIR": str(settings.ict.output_dir),
        "BUS389_ICT__RPZ_ZONE": settings.ict.rpz_zone,
        "BUS389_TAX__ALERT_ID_KEY_FILE": str(tax_key),
        **extra,
    }


@dataclass
class Console:
    """A running console: its address, its environment and the users' passwords."""

    url: str
    env: dict[str, str]
    tmp_path: Path
    passwords: dict[str, str] = field(default_factory=dict)
    log_lines: list[str] = field(default_factory=list)
    """What the server wrote to stderr (its action log among it)."""

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_bus389(*args, env=self.env)

    def add_user(self, name: str, agency: str, roles: str) -> None:
        out = self.tmp_path / f"{name}.pw"
        result = self.cli(
            "web", "user", "add", name, "--agency", agency, "--roles", roles, "--password-out", str(out)
        )
        assert result.returncode == 0, result.stderr
        assert out.stat().st_mode & 0o777 == 0o600
        self.passwords[name] = out.read_text().strip()

    def add_token(self, agency: str, scopes: str = "publish,read") -> tuple[str, str]:
        """A new API token of ``agency``: (its id, its text)."""
        out = self.tmp_path / f"{agency}-{len(self.passwords)}-{uuid.uuid4().hex}.token"
        result = self.cli(
            "web", "token", "add", agency, "--name", "test", "--scopes", scopes, "--out", str(out)
        )
        assert result.returncode == 0, result.stderr
        token_id = result.stdout.split()[1]
        return token_id, out.read_text().strip()

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, follow_redirects=False, timeout=60.0)

    def csrf(self, client: httpx.Client, path: str = "/login") -> str:
        page = client.get(path)
        found = _CSRF.search(page.text)
        assert found is not None, f"no CSRF token on {path} ({page.status_code})"
        return found.group(1)

    def login(self, name: str) -> httpx.Client:
        client = self.client()
        token = self.csrf(client)
        answer = client.post(
            "/login", data={"username": name, "password": self.passwords[name], "csrf_token": token}
        )
        assert answer.status_code == 303, answer.text
        return client


@contextmanager
def running_console(
    env: dict[str, str], tmp_path: Path, users: list[tuple[str, str, str]]
) -> Iterator[Console]:
    """Add ``users`` (name, agency, roles) with the real CLI, start `bus389 serve web`, stop it after."""
    console = Console("", env, tmp_path)
    lines = console.log_lines
    for name, agency, roles in users:
        console.add_user(name, agency, roles)
    process = subprocess.Popen(
        [BUS389, "serve", "web", "--port", "0", "--metrics-port", "0"],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    found: list[str] = []
    ready = threading.Event()

    def watch() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            match = re.search(r"web: console on (http://\S+)", line)
            if match:
                found.append(match.group(1).rstrip("/"))
                ready.set()
        ready.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        if not ready.wait(60) or not found:
            pytest.fail("the console did not start:\n" + "".join(lines))
        console.url = found[0]
        yield console
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        watcher.join(timeout=10)
        process.stderr.close()


@contextmanager
def running_process(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """A `bus389` service (``args``) in a subprocess, stopped with SIGTERM after the block."""
    process = subprocess.Popen(
        [BUS389, *args],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            _, stderr = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise
        assert process.returncode == 0, stderr


def router_env(topic_prefix: str) -> dict[str, str]:
    """`bus389 route` on this test's prefix with its own group and transactional id."""
    ident = f"{topic_prefix}.router.{time.monotonic_ns()}"
    return {"BUS389_ROUTER__GROUP_ID": ident, "BUS389_ROUTER__TRANSACTIONAL_ID": ident}
