"""The Prometheus metrics of bus389: every metric declared once, on one private registry, and its server.

Naming follows Prometheus conventions: a ``bus389_`` prefix, ``_total`` on counters, base units
(``_seconds``), and small fixed label sets (agencies, event types, reason codes, services) — never an
event id, which belongs in the logs (see :mod:`bus389.logs`). The consumer-lag gauge
(``bus389_consumer_lag``) is produced at scrape time by :mod:`bus389.lag`.

Services call :func:`serve_metrics` once at start; one-shot commands (``bus389 publish``) call
:func:`push_counts`, which pushes to a Pushgateway when ``BUS389_METRICS__PUSHGATEWAY_URL`` is set and
otherwise logs the counts.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, push_to_gateway, start_http_server
from prometheus_client.metrics import MetricWrapperBase

from bus389 import __version__

if TYPE_CHECKING:
    from bus389.settings import Settings

__all__ = [
    "BUILD_INFO",
    "CATALOG",
    "CONSUMER_LAG_ERRORS",
    "DEFAULT_PORTS",
    "EVENTS_CONSUMED",
    "EVENTS_PUBLISHED",
    "EVENTS_REJECTED",
    "EVENTS_ROUTED",
    "EVENTS_WITHHELD",
    "ICT_DECISIONS",
    "ICT_OLDEST_PENDING",
    "ICT_REQUESTS",
    "ICT_REQUEST_TO_RESULT",
    "POISON_EVENTS",
    "PUBLISH_TO_ROUTED",
    "REGISTRY",
    "ROUTED_TO_HANDLED",
    "ROUTER_BATCH_EVENTS",
    "ROUTER_BATCH_SECONDS",
    "ROUTER_COMMIT_SECONDS",
    "ROUTER_TRANSACTIONS",
    "SERVICE_UP",
    "SPOOF_ATTEMPTS",
    "STANDING_OFFICE_EVENTS_STORED",
    "STANDING_OFFICE_REPORTS_SENT",
    "STANDING_OFFICE_REPORT_LAST_SENT",
    "WEB_LOGINS",
    "WEB_REFUSED",
    "WEB_REQUESTS",
    "CLAIM_CONFLICTS",
    "DIRECTIVES_OVERDUE",
    "MetricSpec",
    "push_counts",
    "serve_metrics",
    "stop_metrics",
]

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry(auto_describe=True)
"""The registry every bus389 metric lives on (never prometheus_client's global one)."""

DEFAULT_PORTS: dict[str, int] = {"router": 9464, "ict": 9465, "standing-office": 9466, "web": 9467}
"""Where each service serves ``/metrics`` unless a setting or ``--metrics-port`` says otherwise."""


@dataclass(frozen=True)
class MetricSpec:
    """One declared metric: its exposed name, type, label names and help text (for docs and tests)."""

    name: str
    kind: str
    labels: tuple[str, ...]
    help: str
    metric: MetricWrapperBase


_catalog: list[MetricSpec] = []


def _counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
    metric = Counter(name, doc, labels, registry=REGISTRY)
    _catalog.append(MetricSpec(name, "counter", labels, doc, metric))
    return metric


def _gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
    metric = Gauge(name, doc, labels, registry=REGISTRY)
    _catalog.append(MetricSpec(name, "gauge", labels, doc, metric))
    return metric


def _histogram(name: str, doc: str, buckets: tuple[float, ...], labels: tuple[str, ...] = ()) -> Histogram:
    metric = Histogram(name, doc, labels, registry=REGISTRY, buckets=buckets)
    _catalog.append(MetricSpec(name, "histogram", labels, doc, metric))
    return metric


_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)
_STEP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BATCH_SIZE_BUCKETS = (1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0)
_HOUR = 3600.0
_DECISION_BUCKETS = (60.0, 300.0, 900.0) + tuple(h * _HOUR for h in (1, 4, 12, 24, 48, 72, 168))

# --- the flow: publish → route → consume -------------------------------------------------------------

EVENTS_PUBLISHED = _counter(
    "bus389_events_published_total",
    "Events an agency published to its outbox and the broker acknowledged.",
    ("agency", "event_type"),
)
EVENTS_ROUTED = _counter(
    "bus389_events_routed_total",
    "Event copies the router delivered to a recipient's inbox (counted when the transaction commits).",
    ("sender", "recipient", "event_type"),
)
EVENTS_CONSUMED = _counter(
    "bus389_events_consumed_total",
    "Inbox events an agency service handled (side effect durable).",
    ("agency", "event_type", "service"),
)
EVENTS_REJECTED = _counter(
    "bus389_events_rejected_total",
    "Events the router wrote to the dead-letter topic, by reason code.",
    ("reason",),
)
SPOOF_ATTEMPTS = _counter(
    "bus389_spoof_attempts_total",
    "Events whose meta.source (claimed_source) disagreed with the agency whose outbox they were in (outbox).",
    ("claimed_source", "outbox"),
)
EVENTS_WITHHELD = _counter(
    "bus389_events_withheld_total",
    "Deliveries the routing policy withheld from a recipient (e.g. TLP too restrictive), by reason.",
    ("recipient", "reason"),
)
POISON_EVENTS = _counter(
    "bus389_poison_events_total",
    "Inbox records an agency service could not decode or handle and skipped (it cannot write the DLQ).",
    ("service", "reason"),
)

# --- latency ------------------------------------------------------------------------------------------

PUBLISH_TO_ROUTED = _histogram(
    "bus389_publish_to_routed_seconds",
    "Time from meta.published_at to the router's commit of the event's copies.",
    _LATENCY_BUCKETS,
    ("event_type",),
)
ROUTED_TO_HANDLED = _histogram(
    "bus389_routed_to_handled_seconds",
    "Time from the router writing an inbox copy to the agency service having handled it.",
    _LATENCY_BUCKETS,
    ("agency", "event_type"),
)

# --- the router's loop --------------------------------------------------------------------------------

ROUTER_BATCH_SECONDS = _histogram(
    "bus389_router_batch_seconds",
    "Time the router spent on one polled batch, from poll to committed transaction.",
    _STEP_BUCKETS,
)
ROUTER_COMMIT_SECONDS = _histogram(
    "bus389_router_commit_seconds",
    "Time of the router's commit step (offsets sent to the transaction and transaction committed).",
    _STEP_BUCKETS,
)
ROUTER_BATCH_EVENTS = _histogram(
    "bus389_router_batch_events",
    "Outbox events in one router batch.",
    _BATCH_SIZE_BUCKETS,
)
ROUTER_TRANSACTIONS = _counter(
    "bus389_router_transactions_total",
    "Router transactions by outcome (committed, aborted).",
    ("outcome",),
)

# --- the ICT domain-blocking flow ---------------------------------------------------------------------

ICT_REQUESTS = _gauge(
    "bus389_ict_requests",
    "Domain-block requests the ICT service holds, by state (pending, approved, rejected, ...).",
    ("state",),
)
ICT_OLDEST_PENDING = _gauge(
    "bus389_ict_oldest_pending_seconds",
    "Age of the oldest domain-block request still pending a decision (0 when none is pending).",
)
ICT_DECISIONS = _counter(
    "bus389_ict_decisions_total",
    "Domain-block results the ICT service published, by outcome (blocked, partial, rejected, ...).",
    ("decision",),
)
ICT_REQUEST_TO_RESULT = _histogram(
    "bus389_ict_request_to_result_seconds",
    "Time from a domain_block_request's published_at to its domain_block_result being published.",
    _DECISION_BUCKETS,
)

ICT_ZONE_CHECKS = _counter(
    "bus389_ict_zone_checks_total",
    "New RPZ zones checked by named-checkzone before they replace the old one, by result (ok, failed: "
    "the old zone stays in force).",
    ("result",),
)
ICT_ZONE_REFUSED = _counter(
    "bus389_ict_zone_entries_refused_total",
    "Blocked names the RPZ writer left out of the zone (an RPZ trigger label or an invalid name).",
)

# --- the standing office ------------------------------------------------------------------------------

STANDING_OFFICE_EVENTS_STORED = _counter(
    "bus389_standing_office_events_stored_total",
    "Events the standing office stored (first time only; replays are not counted).",
    ("event_type",),
)
STANDING_OFFICE_REPORTS_SENT = _counter(
    "bus389_reports_sent_total",
    "Reports the standing office mailed (on schedule, or by `bus389 report send`), by kind.",
    ("kind",),
)
STANDING_OFFICE_REPORT_LAST_SENT = _gauge(
    "bus389_report_last_sent_timestamp_seconds",
    "When the standing office last mailed a report of this kind (Unix time; 0 before the first).",
    ("kind",),
)

# --- the web console and HTTP API -------------------------------------------------------------------

WEB_REQUESTS = _counter(
    "bus389_web_requests_total",
    "Requests the web console and API answered, by route template and status class (2xx, 4xx, ...).",
    ("route", "status"),
)
WEB_LOGINS = _counter(
    "bus389_web_logins_total",
    "Sign-in attempts on the web console, by outcome (ok, bad_password, locked, disabled).",
    ("outcome",),
)
WEB_REFUSED = _counter(
    "bus389_web_refused_total",
    "Requests refused for a security reason (csrf, session, rights, token, rate_limit, upload).",
    ("reason",),
)

CLAIM_CONFLICTS = _counter(
    "bus389_claim_conflicts_total",
    "Second claims on a seller another agency had claimed (plan I.2), flagged by a DECONFLICT directive.",
)
DIRECTIVES_OVERDUE = _gauge(
    "bus389_directives_overdue",
    "Directives the standing office holds whose due date passed without every addressee's answer.",
)

# --- health -------------------------------------------------------------------------------------------

SERVICE_UP = _gauge(
    "bus389_service_up",
    "1 while the named service runs and serves metrics; 0 once it stops.",
    ("service",),
)
BUILD_INFO = _gauge(
    "bus389_build_info",
    "Always 1; the labels give the versions of bus389 and of its Kafka and Avro libraries.",
    ("version", "kafka_python", "fastavro"),
)
GROUP_REJOINS = _counter(
    "bus389_group_rejoins_total",
    "Times a member of the group rejoined with a new consumer: left without partitions by a stuck group, "
    "or no longer listed by the coordinator while it held partitions.",
    ("group",),
)
CONSUMER_LAG_ERRORS = _counter(
    "bus389_consumer_lag_errors_total",
    "Consumer-lag collections that failed (the broker did not answer); the last values are kept.",
)

# Fixed label values start at 0, so that the first increment is an increase Prometheus can see.
for _outcome in ("committed", "aborted"):
    ROUTER_TRANSACTIONS.labels(_outcome)
for _outcome in ("ok", "bad_password", "locked", "disabled"):
    WEB_LOGINS.labels(_outcome)

CATALOG: tuple[MetricSpec, ...] = tuple(_catalog)
"""Every metric above, in declaration order (``bus389_consumer_lag`` is in :mod:`bus389.lag`)."""


def _dist_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


BUILD_INFO.labels(__version__, _dist_version("kafka-python"), _dist_version("fastavro")).set(1)

# --- serving ------------------------------------------------------------------------------------------

_servers: dict[int, tuple[WSGIServer, threading.Thread, str]] = {}
_servers_lock = threading.Lock()


def serve_metrics(
    settings: Settings, default_port: int, service: str | None = None, *, port: int | None = None
) -> int:
    """Serve ``/metrics`` of :data:`REGISTRY` over HTTP in a daemon thread; return the bound port.

    The port is ``port`` (a command's ``--metrics-port``) if given, else ``settings.metrics.port`` if
    non-zero, else ``default_port``; 0 binds an ephemeral port. The host is ``settings.metrics.host``.
    Sets ``bus389_service_up{service}`` to 1 (``service`` defaults to the name of the default port).
    """
    chosen = port if port is not None else (settings.metrics.port or default_port)
    name = service or _service_for_port(default_port)
    try:
        server, thread = start_http_server(chosen, addr=settings.metrics.host, registry=REGISTRY)
    except OSError as exc:
        from bus389.errors import ConfigError

        raise ConfigError(
            f"cannot serve metrics on {settings.metrics.host}:{chosen}: {exc.strerror or exc} "
            "(set BUS389_METRICS__PORT or --metrics-port)"
        ) from exc
    bound = int(server.server_port)
    with _servers_lock:
        _servers[bound] = (server, thread, name)
    SERVICE_UP.labels(name).set(1)
    log.info("%s: metrics on http://%s:%d/metrics", name, settings.metrics.host, bound)
    return bound


def stop_metrics(port: int) -> None:
    """Stop the metrics server :func:`serve_metrics` started on ``port``; its service reads as down."""
    with _servers_lock:
        entry = _servers.pop(port, None)
    if entry is None:
        return
    server, thread, name = entry
    SERVICE_UP.labels(name).set(0)
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _service_for_port(port: int) -> str:
    for name, default in DEFAULT_PORTS.items():
        if default == port:
            return name
    return "bus389"


# --- one-shot commands --------------------------------------------------------------------------------


def push_counts(settings: Settings, job: str, grouping_key: dict[str, str] | None = None) -> bool:
    """Push :data:`REGISTRY` to the Pushgateway at ``settings.metrics.pushgateway_url``, or log the counts.

    For one-shot commands (``bus389 publish``) that end before any scrape. Returns True when pushed.
    A Pushgateway that does not answer is logged as a warning, never fails the command: the events
    were published already.
    """
    url = settings.metrics.pushgateway_url
    if not url:
        for family in REGISTRY.collect():
            if family.name != "bus389_events_published":
                continue
            for sample in family.samples:
                if sample.name.endswith("_total") and sample.value:
                    log.info(
                        "published %d %s event(s) as %s",
                        int(sample.value),
                        sample.labels.get("event_type", "?"),
                        sample.labels.get("agency", "?"),
                    )
        return False
    try:
        push_to_gateway(url, job=job, registry=REGISTRY, grouping_key=grouping_key, timeout=10)
    except OSError as exc:
        log.warning("could not push metrics to %s: %s", url, exc)
        return False
    log.info("pushed metrics to %s (job %s)", url, job)
    return True
