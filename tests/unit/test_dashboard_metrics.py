"""Every metric the dashboard and the alert rules query is one the services really expose.

The exposed names are read the way Prometheus reads them: every declared metric family is touched
(one probe label set each), the lag collector is registered, and the ``/metrics`` page of a running
:func:`bus389.metrics.serve_metrics` server is scraped and parsed. No list of names is written here.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from bus389 import lag, metrics
from bus389.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The checkout this test runs from (examples, deploy files)."""

DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "dashboards" / "bus389.json"
ALERTS = REPO_ROOT / "deploy" / "prometheus" / "alerts.yml"

PROMETHEUS_SYNTHESISED = {"up"}
"""Series Prometheus makes itself for every target (not exposed by a service)."""

_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset"}
_KEYWORDS |= {"bool", "inf", "nan", "atan2"}
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_STRING = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|`[^`]*`")
_IDENT = re.compile(r"(?<![\w$.])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?")
_LABEL_VALUES = re.compile(r"label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, keywords and label names removed)."""
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges and subqueries
    text = _LABEL_LIST.sub(" ", text)
    text = re.sub(r"\b\d+(?:\.\d+)?(?:e[+-]?\d+)?[smhdwy]?\b", " ", text)  # numbers and durations
    names: set[str] = set()
    for match in _IDENT.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('sum by (reason) (rate(bus389_x_total{reason=~"a|b"}[5m]))', {"bus389_x_total"}),
        ("histogram_quantile(0.95, sum by (le) (rate(h_bucket[$__rate_interval])))", {"h_bucket"}),
        ("a > 0 and (time() - b_created) < 900", {"a", "b_created"}),
        ("x / on (job) group_left (service) y offset 15m", {"x", "y"}),
        ('up{service!=""} == 0 or bus389_service_up == 0', {"up", "bus389_service_up"}),
        ("sum(x) by (group) > 3 * 86400", {"x"}),
    ],
)
def test_metric_names_are_extracted_from_promql(expr: str, expected: set[str]) -> None:
    assert metric_names(expr) == expected


def dashboard_exprs() -> list[str]:
    doc = json.loads(DASHBOARD.read_text())
    exprs: list[str] = []

    def walk(panels: list[dict[str, object]]) -> None:
        for panel in panels:
            for target in panel.get("targets", []) or []:  # type: ignore[attr-defined]
                if target.get("expr"):
                    exprs.append(target["expr"])
            walk(panel.get("panels", []) or [])  # type: ignore[arg-type]

    walk(doc["panels"])
    return exprs


def template_metrics() -> set[str]:
    doc = json.loads(DASHBOARD.read_text())
    found: set[str] = set()
    for variable in doc.get("templating", {}).get("list", []):
        query = variable.get("query")
        text = query.get("query", "") if isinstance(query, dict) else str(query or "")
        found.update(_LABEL_VALUES.findall(text))
    return found


def alert_exprs() -> list[str]:
    doc = yaml.safe_load(ALERTS.read_text())
    return [rule["expr"] for group in doc["groups"] for rule in group["rules"]]


@pytest.fixture(scope="module")
def exposed() -> Iterator[set[str]]:
    """Sample names on the /metrics page of a running metrics server, every family touched."""
    probes: list[tuple[object, tuple[str, ...]]] = []
    for spec in metrics.CATALOG:
        if spec.labels:
            values = tuple(f"probe_{label}" for label in spec.labels)
            spec.metric.labels(*values)
            probes.append((spec.metric, values))
    lag.unregister_lag_collector(metrics.REGISTRY)
    lag_collector = lag.ConsumerLagCollector(lambda: {("probe_group", "probe_topic", 0): 0})
    metrics.REGISTRY.register(lag_collector)
    port = metrics.serve_metrics(Settings(), 0, "probe_service")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    finally:
        metrics.stop_metrics(port)
        metrics.REGISTRY.unregister(lag_collector)
        metrics.SERVICE_UP.remove("probe_service")
        for metric, values in probes:
            metric.remove(*values)  # type: ignore[attr-defined]
    yield {s.name for family in text_string_to_metric_families(text) for s in family.samples}


def test_the_exposition_is_really_read(exposed: set[str]) -> None:
    assert "bus389_consumer_lag" in exposed
    assert "bus389_publish_to_routed_seconds_bucket" in exposed
    assert "bus389_events_routed_total" in exposed
    assert "bus389_events_rejected_created" in exposed  # the alert rules' "new series" branch reads it


def test_dashboard_queries_only_exposed_metrics(exposed: set[str]) -> None:
    used = set().union(*(metric_names(e) for e in dashboard_exprs())) | template_metrics()
    assert used, "no PromQL found in the dashboard"
    unknown = used - exposed - PROMETHEUS_SYNTHESISED
    assert unknown == set(), f"dashboard queries metrics no service exposes: {sorted(unknown)}"


def test_alert_rules_query_only_exposed_metrics(exposed: set[str]) -> None:
    used = set().union(*(metric_names(e) for e in alert_exprs()))
    assert used
    unknown = used - exposed - PROMETHEUS_SYNTHESISED
    assert unknown == set(), f"alert rules query metrics no service exposes: {sorted(unknown)}"


def test_every_declared_metric_is_on_the_dashboard_or_in_an_alert() -> None:
    used = set().union(*(metric_names(e) for e in [*dashboard_exprs(), *alert_exprs()]))
    families = {re.sub(r"_(bucket|sum|count|created)$", "", name) for name in used}
    declared = {spec.name for spec in metrics.CATALOG} | {lag.LAG_METRIC}
    unseen = {name for name in declared if name not in families and name not in used}
    assert unseen == set(), f"metrics nobody looks at: {sorted(unseen)}"


def test_dashboard_promql_parses(tmp_path: Path) -> None:
    """promtool parses every dashboard expression (as recording rules; Grafana's variables filled in)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool not found on PATH: run `bash deploy/install-system-packages.sh`")
    exprs = [
        e.replace("$__rate_interval", "5m").replace("$__interval", "1m").replace("$agency", ".*")
        for e in dashboard_exprs()
    ]
    rules = {
        "groups": [
            {"name": "dashboard", "rules": [{"record": f"r{i}", "expr": e} for i, e in enumerate(exprs)]}
        ]
    }
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump(rules))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_uses_the_provisioned_datasource() -> None:
    doc = json.loads(DASHBOARD.read_text())
    provisioned = yaml.safe_load(
        (REPO_ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    uid = provisioned["datasources"][0]["uid"]
    for panel in doc["panels"]:
        if panel.get("type") != "row":
            assert panel["datasource"]["uid"] == uid, panel["title"]
    titles = " ".join(p["title"].lower() for p in doc["panels"])
    for topic in ("lag", "dead letters", "routed", "pending", "p95"):
        assert topic in titles, topic


def test_every_metric_and_alert_is_documented_for_operators() -> None:
    readme = (REPO_ROOT / "deploy" / "prometheus" / "README.md").read_text()
    for name in [spec.name for spec in metrics.CATALOG] + [lag.LAG_METRIC]:
        assert f"`{name}`" in readme, f"{name} is not in deploy/prometheus/README.md"
    for rule in yaml.safe_load(ALERTS.read_text())["groups"][0]["rules"]:
        assert f"`{rule['alert']}`" in readme, rule["alert"]
