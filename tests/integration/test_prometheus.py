"""A real Prometheus (Debian's binary, loopback) scrapes a real `bus389 route` and answers for it.

Events are published with `bus389 publish`; the router routes them; Prometheus, configured from
deploy/prometheus/prometheus.yml (the router's job, pointed at the router's actual port) with the
project's alert rules loaded, is then asked through its HTTP API for ``bus389_events_routed_total``
and ``bus389_consumer_lag``. The lag of a group that never reads the police outbox must equal what
was published there: the gauge is read from the broker, not made up.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from _wait import wait_for

from bus389.agencies import Agency
from bus389.chaos.checker import read_topic
from bus389.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The checkout this test runs from (examples, deploy files)."""
PROMETHEUS_DIR = REPO_ROOT / "deploy" / "prometheus"
EXAMPLE = REPO_ROOT / "examples" / "suspect_seller.jsonl"
WAIT_S = 90.0

# Runs the real `bus389 route` command in this interpreter, with the lag collector registered for the
# router's group and for an idle group that never reads (its lag is exactly what was published).
_ROUTER_MAIN = """
import sys
from bus389.lag import register_lag_collector
from bus389.settings import Settings
settings = Settings()
groups = {
    settings.router.group_id: settings.topics.all_outboxes(),
    sys.argv[1]: [settings.topics.outbox("police")],
}
register_lag_collector(settings, groups, ttl_s=1.0)
from bus389.cli.main import cli

cli(["route", "--metrics-port", "0"], prog_name="bus389")
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, timeout: float = 5.0) -> Any:
    assert url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 — loopback http only
        return json.loads(response.read().decode())


def _wait(what: str, check: Callable[[], Any], timeout: float = WAIT_S) -> Any:
    """Wait for ``check`` to return something truthy (an ``OSError`` counts as not yet: the server may
    still be starting); fails the test naming ``what`` and the last answer."""

    def attempt() -> Any:
        try:
            return check()
        except OSError as exc:
            return _NotYet(exc)

    return wait_for(attempt, timeout, what, interval_s=0.5)


class _NotYet:
    """An ``OSError`` seen while waiting: falsy, and shown as the last answer when the wait fails."""

    def __init__(self, exc: OSError) -> None:
        self.exc = exc

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return repr(self.exc)


class PromQL:
    def __init__(self, base: str) -> None:
        self.base = base

    def query(self, expr: str) -> list[dict[str, Any]]:
        answer = _get(f"{self.base}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        assert answer["status"] == "success", answer
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None


@pytest.fixture
def router_env(settings: Settings, unique_group: Callable[..., str]) -> dict[str, str]:
    group = unique_group("router")
    return {
        **os.environ,
        "BUS389_BOOTSTRAP": settings.bootstrap,
        "BUS389_TOPIC_PREFIX": settings.topic_prefix,
        "BUS389_ROUTER__GROUP_ID": group,
        "BUS389_ROUTER__TRANSACTIONAL_ID": group,
        "BUS389_METRICS__HOST": "127.0.0.1",
        "BUS389_METRICS__PORT": "0",
    }


@dataclass(frozen=True)
class RunningRouter:
    port: int
    group: str
    idle_group: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


@pytest.fixture
def router(
    router_env: dict[str, str], unique_group: Callable[..., str], tmp_path: Path
) -> Iterator[RunningRouter]:
    """`bus389 route` in a subprocess, its metrics port read from its start-up line."""
    log = (tmp_path / "router.log").open("w+")
    idle_group = unique_group("police", "idle")
    proc = subprocess.Popen(
        [sys.executable, "-c", _ROUTER_MAIN, idle_group], env=router_env, stdout=log, stderr=subprocess.STDOUT
    )

    def port() -> int | None:
        if proc.poll() is not None:
            log.seek(0)
            pytest.fail(f"bus389 route exited {proc.returncode}:\n{log.read()}")
        match = re.search(r"metrics on http://[\d.]+:(\d+)/metrics", (tmp_path / "router.log").read_text())
        return int(match.group(1)) if match else None

    try:
        bound = _wait("the router's metrics port", port, timeout=60)
        yield RunningRouter(bound, router_env["BUS389_ROUTER__GROUP_ID"], idle_group, tmp_path / "router.log")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def prometheus(router: RunningRouter, tmp_path: Path) -> Iterator[PromQL]:
    """Debian's Prometheus on a free loopback port, scraping the router every second, rules loaded."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus not found on PATH: run `bash deploy/install-system-packages.sh`")
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    config["rule_files"] = [str(PROMETHEUS_DIR / "alerts.yml")]
    config.pop("alerting", None)
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "bus389-router")
    job["static_configs"][0]["targets"] = [f"127.0.0.1:{router.port}"]
    config["scrape_configs"] = [job]
    config_path = tmp_path / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config))
    port = _free_port()
    log = (tmp_path / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config_path}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=1h",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            if proc.poll() is not None:
                log_text = (tmp_path / "prometheus.log").read_text()
                pytest.fail(f"prometheus exited {proc.returncode}: {log_text}")
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2) as response:
                return bool(response.status == 200)

        _wait("Prometheus to be ready", ready, timeout=60)
        yield PromQL(base)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_prometheus_reads_the_routed_counter_and_the_lag_of_a_running_router(
    settings: Settings,
    router_env: dict[str, str],
    router: RunningRouter,
    prometheus: PromQL,
    bus389_cli: Callable[..., subprocess.CompletedProcess[str]],
    tmp_path: Path,
) -> None:
    # The example events, all GREEN so that the policy routes every one of them to the standing office.
    lines = [json.loads(line) for line in EXAMPLE.read_text().splitlines() if line.strip()]
    for record in lines:
        record.setdefault("meta", {})["sensitivity"] = "GREEN"
    events = tmp_path / "suspect_seller.jsonl"
    events.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines))
    published = len(lines)
    result = bus389_cli("publish", "suspect_seller", "--as", "police", "--file", str(events), env=router_env)
    assert result.returncode == 0, result.stdout + result.stderr

    _wait("the router target to be up", lambda: prometheus.value('up{job="bus389-router"}') == 1.0)
    assert prometheus.value('bus389_service_up{service="router"}') == 1.0

    # Every event reaches the standing office (plan III.3): exactly one copy each, counted by the router.
    to_standing_office = (
        'sum(bus389_events_routed_total{sender="police", recipient="market_surveillance",'
        ' event_type="suspect_seller"})'
    )
    # Wait for the count the data says (not for any count), then it must be exactly that.
    routed = _wait(
        f"the routed counter to reach {published}",
        lambda: (
            (prometheus.value(to_standing_office) or 0) >= published and prometheus.value(to_standing_office)
        ),
        timeout=60,
    )
    assert routed == float(published), f"routed {routed} of {published}; router log:\n{router.log()}"
    # Across every recipient, the counter is the number of copies the router put in the inboxes.
    copies = sum(len(read_topic(settings, settings.topics.inbox(agency))) for agency in Agency)
    all_routed = _wait(
        f"Prometheus to scrape all {copies} deliveries",
        lambda: prometheus.value('sum(bus389_events_routed_total{sender="police"})') == copies and copies,
        timeout=60,
    )
    assert all_routed == copies > published, "GREEN suspect sellers go to more than the standing office"

    # The lag gauge is read from the broker: the idle group has read nothing of the police outbox.
    outbox = settings.topics.outbox("police")
    idle_lag = f'sum(bus389_consumer_lag{{group="{router.idle_group}", topic="{outbox}"}})'
    lag = _wait(
        "the idle group's lag", lambda: (v := prometheus.value(idle_lag)) is not None and v >= published and v
    )
    partitions = settings.kafka.partitions
    assert lag <= published + partitions, "lag counts at most one transaction marker per partition"

    # The router's own group caught up: at most the commit markers are left.
    router_lag = f'sum(bus389_consumer_lag{{group="{router.group}", topic="{outbox}"}})'
    _wait(
        "the router's lag to fall",
        lambda: (v := prometheus.value(router_lag)) is not None and v <= partitions,
    )

    # The alert rules load and evaluate on real series (e.g. the _created branch of the DLQ rule).
    assert prometheus.value("count(bus389_router_transactions_created)") == 2.0
    rules = _get(f"{prometheus.base}/api/v1/rules")["data"]["groups"]
    loaded = [rule for group in rules for rule in group["rules"]]
    assert len(loaded) >= 7
    _wait("every rule evaluated healthy", lambda: _all_healthy(prometheus))


def _all_healthy(prometheus: PromQL) -> bool:
    groups = _get(f"{prometheus.base}/api/v1/rules")["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    bad = [r for r in rules if r.get("health") != "ok"]
    if bad:
        errors = [(r["name"], r.get("health"), r.get("lastError")) for r in bad]
        if any(h == "err" for _, h, _ in errors):
            pytest.fail(f"alert rules failing on real data: {errors}")
        return False
    return True
