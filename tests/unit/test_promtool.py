"""deploy/prometheus with Prometheus's own tools: configs and rules check, and every alert's unit tests pass.

``promtool`` and ``amtool`` come from Debian's ``prometheus`` and ``prometheus-alertmanager`` packages,
installed by ``deploy/install-system-packages.sh``. Without them these tests fail (they never skip):
an unchecked alert rule is an alert that may never fire.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The checkout this test runs from (examples, deploy files)."""


PROMETHEUS_DIR = REPO_ROOT / "deploy" / "prometheus"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
ALERTS_TEST = PROMETHEUS_DIR / "alerts_test.yml"
INSTALL_HINT = (
    "run `bash deploy/install-system-packages.sh` (Debian packages prometheus, prometheus-alertmanager)"
)


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found on PATH: {INSTALL_HINT}")
    return path


def run(*args: str, cwd: Path = PROMETHEUS_DIR) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, cwd=cwd, timeout=120, check=False)


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"{' '.join(result.args)}:\n{result.stdout}\n{result.stderr}"


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(ALERTS.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_promtool_check_rules() -> None:
    assert_ok(run(tool("promtool"), "check", "rules", str(ALERTS)))


def test_promtool_check_config_local() -> None:
    assert_ok(run(tool("promtool"), "check", "config", str(PROMETHEUS_DIR / "prometheus.yml")))


def test_promtool_check_config_compose(tmp_path: Path) -> None:
    # The compose config names the rules by their path in the container; check it against ours.
    text = (PROMETHEUS_DIR / "prometheus.compose.yml").read_text()
    assert "/etc/prometheus/alerts.yml" in text
    config = tmp_path / "prometheus.yml"
    config.write_text(text.replace("/etc/prometheus/alerts.yml", str(ALERTS)))
    assert_ok(run(tool("promtool"), "check", "config", str(config)))


def test_promtool_test_rules() -> None:
    result = run(tool("promtool"), "test", "rules", str(ALERTS_TEST))
    assert_ok(result)
    assert "SUCCESS" in result.stdout + result.stderr


def test_a_broken_rule_fails_its_unit_test(tmp_path: Path) -> None:
    """The unit tests have teeth: raise the domain-block threshold and they fail."""
    broken = ALERTS.read_text().replace("> 3 * 86400", "> 30 * 86400")
    assert broken != ALERTS.read_text()
    (tmp_path / "alerts.yml").write_text(broken)
    shutil.copy(ALERTS_TEST, tmp_path / "alerts_test.yml")
    result = run(tool("promtool"), "test", "rules", "alerts_test.yml", cwd=tmp_path)
    assert result.returncode != 0
    assert "Bus389DomainBlockRequestOverdue" in result.stdout + result.stderr


def test_amtool_check_config() -> None:
    assert_ok(run(tool("amtool"), "check-config", str(PROMETHEUS_DIR / "alertmanager.yml")))


def test_every_alert_has_a_runbook_a_summary_and_a_severity() -> None:
    rules = _rules()
    assert {r["alert"] for r in rules} >= {
        "Bus389ServiceDown",
        "Bus389ConsumerLagGrowing",
        "Bus389DeadLetterQueueGrowing",
        "Bus389SpoofAttempt",
        "Bus389DomainBlockRequestOverdue",
        "Bus389RouterTransactionsAborting",
    }
    for rule in rules:
        annotations = rule.get("annotations", {})
        assert len(annotations.get("runbook", "").split()) >= 20, f"{rule['alert']}: runbook too thin"
        assert annotations.get("summary"), rule["alert"]
        assert rule.get("labels", {}).get("severity") in {"warning", "critical"}, rule["alert"]


def test_every_alert_is_unit_tested_firing_and_not_firing() -> None:
    doc = yaml.safe_load(ALERTS_TEST.read_text())
    firing: set[str] = set()
    quiet: set[str] = set()
    for test in doc["tests"]:
        for case in test.get("alert_rule_test", []):
            (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    alerts = {r["alert"] for r in _rules()}
    assert alerts - firing == set(), "alerts never tested firing"
    assert alerts - quiet == set(), "alerts never tested staying quiet"


def test_the_deadline_threshold_matches_the_settings() -> None:
    from bus389.settings import ReportSettings

    days = ReportSettings().answer_deadline_days["domain_block_request"]
    rule = next(r for r in _rules() if r["alert"] == "Bus389DomainBlockRequestOverdue")
    assert f"> {days} * 86400" in rule["expr"]


def test_the_scrape_configs_use_the_services_default_ports() -> None:
    from bus389.metrics import DEFAULT_PORTS

    local = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    compose = yaml.safe_load((PROMETHEUS_DIR / "prometheus.compose.yml").read_text())
    for config, host_of in ((local, lambda s: "127.0.0.1"), (compose, lambda s: s)):
        targets = {
            sc["labels"]["service"]: sc["targets"]
            for job in config["scrape_configs"]
            for sc in job["static_configs"]
            if "service" in sc.get("labels", {})
        }
        assert targets == {s: [f"{host_of(s)}:{p}"] for s, p in DEFAULT_PORTS.items()}


def test_every_command_a_runbook_names_exists_in_the_cli() -> None:
    import click

    from bus389.cli.main import cli

    named = [
        cmd
        for rule in _rules()
        for cmd in re.findall(r"`bus389 ([^`]+)`", " ".join(rule["annotations"]["runbook"].split()))
    ]
    assert len(named) >= 5
    for text in named:
        command: click.Command = cli
        words = text.split()
        while isinstance(command, click.Group) and words and re.fullmatch(r"[a-z][a-z-]*", words[0]):
            found = command.get_command(click.Context(command), words[0])
            assert found is not None, f"runbook names `bus389 {text}`: no command {words[0]!r}"
            command, words = found, words[1:]
        assert not isinstance(command, click.Group), f"runbook names a group: `bus389 {text}`"
        options = {o for p in command.params if isinstance(p, click.Option) for o in p.opts}
        for word in words:
            if word.startswith("--"):
                assert word in options, f"runbook: `bus389 {text}` has no option {word}"
