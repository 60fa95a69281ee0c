"""bus389.metrics, bus389.lag and bus389.logs without a broker: names, serving, pushing, lag caching, logs."""

from __future__ import annotations

import io
import json
import logging
import socket
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import prometheus_client
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bus389 import lag, logs, metrics
from bus389.errors import BrokerError, ConfigError
from bus389.settings import Settings


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def _sample(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


@pytest.fixture
def served() -> Iterator[list[int]]:
    ports: list[int] = []
    yield ports
    for port in ports:
        metrics.stop_metrics(port)


# --- naming ---------------------------------------------------------------------------------------


def test_every_metric_follows_the_naming_conventions() -> None:
    assert len(metrics.CATALOG) >= 20
    for spec in metrics.CATALOG:
        assert spec.name.startswith("bus389_"), spec.name
        assert spec.name == spec.name.lower()
        if spec.kind == "counter":
            assert spec.name.endswith("_total"), spec.name
        else:
            assert not spec.name.endswith("_total"), spec.name
        if spec.kind == "histogram":
            assert spec.name.endswith(("_seconds", "_events")), spec.name
        assert spec.help.strip(), spec.name


def test_no_metric_is_labelled_by_an_unbounded_value() -> None:
    unbounded = {"event_id", "id", "case_ref", "key", "offset", "url", "domain", "seller", "tax_code"}
    for spec in metrics.CATALOG:
        assert not unbounded & set(spec.labels), spec


@pytest.mark.parametrize(
    ("name", "labels"),
    [
        ("bus389_events_published_total", ("agency", "event_type")),
        ("bus389_events_routed_total", ("sender", "recipient", "event_type")),
        ("bus389_events_consumed_total", ("agency", "event_type", "service")),
        ("bus389_events_rejected_total", ("reason",)),
        ("bus389_spoof_attempts_total", ("claimed_source", "outbox")),
        ("bus389_events_withheld_total", ("recipient", "reason")),
        ("bus389_publish_to_routed_seconds", ("event_type",)),
        ("bus389_routed_to_handled_seconds", ("agency", "event_type")),
        ("bus389_router_batch_seconds", ()),
        ("bus389_router_commit_seconds", ()),
        ("bus389_router_batch_events", ()),
        ("bus389_router_transactions_total", ("outcome",)),
        ("bus389_ict_requests", ("state",)),
        ("bus389_ict_oldest_pending_seconds", ()),
        ("bus389_ict_decisions_total", ("decision",)),
        ("bus389_ict_request_to_result_seconds", ()),
        ("bus389_standing_office_events_stored_total", ("event_type",)),
        ("bus389_service_up", ("service",)),
        ("bus389_build_info", ("version", "kafka_python", "fastavro")),
        ("bus389_poison_events_total", ("service", "reason")),
    ],
)
def test_the_contracted_metrics_exist_with_their_labels(name: str, labels: tuple[str, ...]) -> None:
    by_name = {spec.name: spec for spec in metrics.CATALOG}
    assert name in by_name, name
    assert by_name[name].labels == labels


def test_metrics_live_on_the_private_registry_not_the_global_one() -> None:
    global_names = {family.name for family in prometheus_client.REGISTRY.collect()}
    assert not any(name.startswith("bus389_") for name in global_names)
    private = generate_latest(metrics.REGISTRY).decode()
    assert "bus389_build_info{" in private


def test_build_info_carries_the_versions() -> None:
    from bus389 import __version__

    text = generate_latest(metrics.REGISTRY).decode()
    assert _sample(text, "bus389_build_info", version=__version__) == 1.0


def test_router_transaction_outcomes_start_at_zero_so_the_first_abort_is_an_increase() -> None:
    text = generate_latest(metrics.REGISTRY).decode()
    assert _sample(text, "bus389_router_transactions_total", outcome="aborted") is not None
    assert _sample(text, "bus389_router_transactions_total", outcome="committed") is not None


# --- serving --------------------------------------------------------------------------------------


def test_serve_metrics_on_an_ephemeral_port_serves_the_registry(served: list[int]) -> None:
    port = metrics.serve_metrics(Settings(), 0, "unit-serve")
    served.append(port)
    assert port > 0
    metrics.EVENTS_ROUTED.labels("police", "market_surveillance", "suspect_seller").inc(3)
    text = _scrape(port)
    assert _sample(text, "bus389_service_up", service="unit-serve") == 1.0
    routed = _sample(
        text,
        "bus389_events_routed_total",
        sender="police",
        recipient="market_surveillance",
        event_type="suspect_seller",
    )
    assert routed is not None and routed >= 3


def test_stop_metrics_marks_the_service_down_and_frees_the_port(served: list[int]) -> None:
    port = metrics.serve_metrics(Settings(), 0, "unit-stop")
    metrics.stop_metrics(port)
    text = generate_latest(metrics.REGISTRY).decode()
    assert _sample(text, "bus389_service_up", service="unit-stop") == 0.0
    with pytest.raises(OSError):
        _scrape(port)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_port_comes_from_the_option_then_the_setting_then_the_default(served: list[int]) -> None:
    setting_port = _free_port()
    settings = Settings(metrics={"port": setting_port})
    got = metrics.serve_metrics(settings, 1, "unit-setting")  # default 1 is never used: the setting wins
    served.append(got)
    assert got == setting_port

    option_port = metrics.serve_metrics(settings, 1, "unit-option", port=0)  # --metrics-port 0 wins
    served.append(option_port)
    assert option_port not in (0, setting_port)

    default_port = _free_port()
    got_default = metrics.serve_metrics(Settings(), default_port, "unit-default")
    served.append(got_default)
    assert got_default == default_port


def test_a_busy_port_is_a_config_error_naming_the_setting(served: list[int]) -> None:
    port = metrics.serve_metrics(Settings(), 0, "unit-busy")
    served.append(port)
    with pytest.raises(ConfigError, match="BUS389_METRICS__PORT"):
        metrics.serve_metrics(Settings(), port, "unit-busy-2")


def test_service_name_defaults_from_the_default_port() -> None:
    assert metrics.DEFAULT_PORTS == {"router": 9464, "ict": 9465, "standing-office": 9466, "web": 9467}


# --- pushing --------------------------------------------------------------------------------------


class _Gateway(BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]] = []

    def _record(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        type(self).received.append((self.command, self.path, self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    do_PUT = _record  # noqa: N815
    do_POST = _record  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture
def gateway() -> Iterator[str]:
    _Gateway.received = []
    server = HTTPServer(("127.0.0.1", 0), _Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_push_counts_pushes_the_registry_to_the_gateway(gateway: str) -> None:
    metrics.EVENTS_PUBLISHED.labels("tax", "tax_discrepancy").inc(2)
    pushed = metrics.push_counts(Settings(metrics={"pushgateway_url": gateway}), "bus389_publish")
    assert pushed is True
    method, path, body = _Gateway.received[-1]
    assert method == "PUT"
    assert path == "/metrics/job/bus389_publish"
    assert b'bus389_events_published_total{agency="tax",event_type="tax_discrepancy"}' in body


def test_push_counts_without_a_gateway_logs_the_counts(caplog: pytest.LogCaptureFixture) -> None:
    metrics.EVENTS_PUBLISHED.labels("customs", "case_referral").inc()
    with caplog.at_level(logging.INFO, logger="bus389.metrics"):
        assert metrics.push_counts(Settings(), "bus389_publish") is False
    assert any("case_referral" in r.getMessage() and "customs" in r.getMessage() for r in caplog.records)


def test_an_unreachable_gateway_is_a_warning_not_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    with caplog.at_level(logging.WARNING, logger="bus389.metrics"):
        assert metrics.push_counts(Settings(metrics={"pushgateway_url": url}), "bus389_publish") is False
    assert any("could not push" in r.getMessage() for r in caplog.records)


# --- consumer lag ---------------------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class _Source:
    def __init__(self, *values: dict[lag.LagKey, int] | Exception) -> None:
        self.values = list(values)
        self.calls = 0
        self.closed = False

    def __call__(self) -> dict[lag.LagKey, int]:
        self.calls += 1
        value = self.values.pop(0) if len(self.values) > 1 else self.values[0]
        if isinstance(value, Exception):
            raise value
        return value

    def close(self) -> None:
        self.closed = True


def _lag_values(registry: CollectorRegistry) -> dict[tuple[str, str, str], float]:
    text = generate_latest(registry).decode()
    return {
        (s.labels["group"], s.labels["topic"], s.labels["partition"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "bus389_consumer_lag"
    }


def test_lag_is_exposed_per_group_topic_and_partition() -> None:
    registry = CollectorRegistry()
    source = _Source({("bus389.router", "bus389.outbox.police", 0): 7, ("g", "t", 2): 0})
    registry.register(lag.ConsumerLagCollector(source))
    assert _lag_values(registry) == {
        ("bus389.router", "bus389.outbox.police", "0"): 7.0,
        ("g", "t", "2"): 0.0,
    }


def test_registering_the_collector_does_not_read_the_broker() -> None:
    registry = CollectorRegistry(auto_describe=True)
    source = _Source({("g", "t", 0): 1})
    registry.register(lag.ConsumerLagCollector(source))
    assert source.calls == 0


def test_lag_is_cached_for_the_ttl_then_read_again() -> None:
    clock = _Clock()
    registry = CollectorRegistry()
    source = _Source({("g", "t", 0): 1}, {("g", "t", 0): 5})
    registry.register(lag.ConsumerLagCollector(source, ttl_s=5.0, clock=clock))
    assert _lag_values(registry) == {("g", "t", "0"): 1.0}
    clock.now += 2
    assert _lag_values(registry) == {("g", "t", "0"): 1.0}
    assert source.calls == 1
    clock.now += 4
    assert _lag_values(registry) == {("g", "t", "0"): 5.0}
    assert source.calls == 2


def test_a_failed_read_keeps_the_last_values_and_counts_the_error() -> None:
    clock = _Clock()
    registry = CollectorRegistry()
    source = _Source({("g", "t", 0): 4}, BrokerError("no broker", retriable=True))
    registry.register(lag.ConsumerLagCollector(source, ttl_s=1.0, clock=clock))
    before = metrics.CONSUMER_LAG_ERRORS._value.get()
    assert _lag_values(registry) == {("g", "t", "0"): 4.0}
    clock.now += 2
    assert _lag_values(registry) == {("g", "t", "0"): 4.0}
    assert metrics.CONSUMER_LAG_ERRORS._value.get() == before + 1


def test_registering_again_adds_groups_for_the_same_brokers_and_replaces_for_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No broker: each source reports lag 1 per watched group, so the exposition shows what is watched.
    monkeypatch.setattr(lag.BrokerLagSource, "__call__", lambda self: {(g, "t", 0): 1 for g in self.groups})
    registry = CollectorRegistry()
    first = lag.register_lag_collector(Settings(), ["g1"], registry=registry)
    assert _lag_values(registry) == {("g1", "t", "0"): 1.0}
    again = lag.register_lag_collector(Settings(), {"g2": ["t"]}, registry=registry)
    assert again is first
    assert _lag_values(registry) == {("g1", "t", "0"): 1.0, ("g2", "t", "0"): 1.0}  # read again at once
    other = lag.register_lag_collector(Settings(bootstrap="10.0.0.1:9092"), ["g3"], registry=registry)
    assert other is not first
    assert _lag_values(registry) == {("g3", "t", "0"): 1.0}
    lag.unregister_lag_collector(registry)
    assert _lag_values(registry) == {}


def test_broker_lag_source_normalises_its_groups() -> None:
    by_name = lag.BrokerLagSource(Settings(), ["a", "b"])
    assert by_name.groups == {"a": [], "b": []}
    by_topics = lag.BrokerLagSource(Settings(), {"a": ["t2", "t1", "t1"]})
    assert by_topics.groups == {"a": ["t1", "t2"]}
    by_topics.add({"a": ["t0"], "b": ["t9"]})
    by_topics.add(["c"])
    assert by_topics.groups == {"a": ["t0", "t1", "t2"], "b": ["t9"], "c": []}


# --- logs -----------------------------------------------------------------------------------------


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    before_handlers, before_level = list(root.handlers), root.level
    yield stream
    for handler in list(root.handlers):
        if handler not in before_handlers:
            root.removeHandler(handler)
    root.setLevel(before_level)


def test_json_logs_carry_the_event_context(log_stream: io.StringIO) -> None:
    logs.configure_logging(Settings(metrics={"json_logs": True}), stream=log_stream)
    logging.getLogger("bus389.test").info(
        "routed %s", "x", extra={"event_id": "e-1", "event_type": "complaint", "agency": "police"}
    )
    entry = json.loads(log_stream.getvalue().strip().splitlines()[-1])
    assert entry["msg"] == "routed x"
    assert entry["level"] == "INFO"
    assert entry["logger"] == "bus389.test"
    assert entry["ts"].endswith("Z")
    assert (entry["event_id"], entry["event_type"], entry["agency"]) == ("e-1", "complaint", "police")


def test_plain_logs_append_the_context(log_stream: io.StringIO) -> None:
    logs.configure_logging(Settings(), stream=log_stream)
    logging.getLogger("bus389.test").warning("skipped", extra={"event_id": "e-2"})
    line = log_stream.getvalue().strip().splitlines()[-1]
    assert " WARNING bus389.test: skipped event_id=e-2" in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_configuring_twice_does_not_duplicate_lines(log_stream: io.StringIO) -> None:
    logs.configure_logging(Settings(), stream=log_stream)
    logs.configure_logging(Settings(), stream=log_stream)
    logging.getLogger("bus389.test").info("once")
    assert log_stream.getvalue().count("once") == 1


def test_secrets_never_reach_the_log(log_stream: io.StringIO) -> None:
    settings = Settings(metrics={"json_logs": True}, kafka={"password": "Hunter2-secret"})
    logs.configure_logging(settings, stream=log_stream)
    log = logging.getLogger("bus389.test")
    log.info("config %s", {"sasl_plain_password": "Hunter2-secret", "user": "police"})
    log.info("connecting with password=abc123 to postgresql://bus:pa55@db/x")
    try:
        raise ValueError("token: tok-999")
    except ValueError:
        log.exception("failed")
    out = log_stream.getvalue()
    for secret in ("Hunter2-secret", "abc123", "pa55", "tok-999"):
        assert secret not in out
    assert "police" in out  # masking is targeted, not everything


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("password=x1", "password=***"),
        ("KAFKA_PASSWORD: 's3'", "KAFKA_PASSWORD: '***'"),
        ('{"api_key": "k"}', '{"api_key": "***"}'),
        ("https://u:p@host/x", "https://u:***@host/x"),
        ("nothing secret here", "nothing secret here"),
    ],
)
def test_mask_secrets(text: str, expected: str) -> None:
    assert logs.mask_secrets(text) == expected


def test_log_level_follows_the_setting(log_stream: io.StringIO) -> None:
    logs.configure_logging(Settings(metrics={"log_level": "warning"}), stream=log_stream)
    logging.getLogger("bus389.test").info("hidden")
    logging.getLogger("bus389.test").warning("shown")
    assert "hidden" not in log_stream.getvalue()
    assert "shown" in log_stream.getvalue()
