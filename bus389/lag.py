"""Consumer lag, read from the broker when Prometheus scrapes: ``bus389_consumer_lag{group,topic,partition}``.

Lag is the partition's last stable offset (what a ``read_committed`` consumer can reach) minus the
group's committed offset. A partition the group has not committed yet counts from the log start, so
a backlog waiting for a new group shows. With transactional producers each commit marker takes an
offset, so an idle, caught-up group can read 1 per partition: alert on lag *growing*, not on > 0.

Reading offsets costs broker round trips, so a scrape reuses the values of the last few seconds, and a
scrape that comes while another is reading gets the cached values instead of waiting. When the broker
does not answer, the last values stay and ``bus389_consumer_lag_errors_total`` counts the failure.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from bus389 import metrics
from bus389.errors import BusError

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from bus389.settings import Settings

__all__ = [
    "LAG_METRIC",
    "BrokerLagSource",
    "ConsumerLagCollector",
    "LagKey",
    "register_lag_collector",
    "unregister_lag_collector",
]

log = logging.getLogger(__name__)

LAG_METRIC = "bus389_consumer_lag"
_LAG_HELP = "Events a consumer group has yet to read: last stable offset minus committed offset."

LagKey = tuple[str, str, int]
"""(group, topic, partition)"""

LagSource = Callable[[], dict[LagKey, int]]


class BrokerLagSource:
    """Reads committed offsets of ``groups`` and the last stable offsets of their partitions.

    ``groups`` maps each group to the topics it should read; a group given without topics (an
    empty list, or a plain iterable of group names) is measured on the partitions it has committed.
    One admin client is kept open between reads and rebuilt after a failure.
    """

    def __init__(self, settings: Settings, groups: Mapping[str, Iterable[str]] | Iterable[str]) -> None:
        self._settings = settings
        self._groups: dict[str, list[str]] = {}
        self._admin: Any = None
        self.add(groups)

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def groups(self) -> dict[str, list[str]]:
        return {g: list(t) for g, t in self._groups.items()}

    def add(self, groups: Mapping[str, Iterable[str]] | Iterable[str]) -> None:
        """Watch more groups (topics of a group already watched are added to it)."""
        merged = {g: set(t) for g, t in self._groups.items()}
        items = groups.items() if isinstance(groups, Mapping) else ((g, ()) for g in groups)
        for group, topics in items:
            merged.setdefault(str(group), set()).update(str(t) for t in topics)
        # Replaced whole, never mutated: a scrape reading the old dict is not disturbed.
        self._groups = {g: sorted(t) for g, t in merged.items()}

    def __call__(self) -> dict[LagKey, int]:
        from bus389.kafka import kafka_errors

        try:
            with kafka_errors(bootstrap=self._settings.bootstrap):
                return self._read(self._client())
        except BusError:
            self.close()
            raise

    def _client(self) -> Any:
        if self._admin is None:
            from bus389.kafka import make_admin

            # Short timeouts: a scrape must answer within Prometheus's scrape timeout.
            self._admin = make_admin(self._settings, request_timeout_ms=5_000, bootstrap_timeout_ms=5_000)
        return self._admin

    def _read(self, admin: Any) -> dict[LagKey, int]:
        from kafka import TopicPartition
        from kafka.admin import OffsetSpec
        from kafka.protocol.consumer.offsets import IsolationLevel

        groups = self._groups
        committed_by_group: dict[str, dict[Any, Any]] = admin.list_group_offsets(list(groups))
        wanted_topics = sorted({t for topics in groups.values() for t in topics})
        partitions_of: dict[str, list[int]] = {}
        if wanted_topics:
            for topic in admin.describe_topics(wanted_topics):
                if topic.get("error_code", 0) == 0:
                    partitions_of[topic["name"]] = [
                        int(p["partition_index"]) for p in topic.get("partitions", [])
                    ]

        watched: dict[str, set[Any]] = {}
        for group, topics in groups.items():
            tps = {tp for tp, om in committed_by_group.get(group, {}).items() if om.offset >= 0}
            for topic in topics:
                tps.update(TopicPartition(topic, p) for p in partitions_of.get(topic, []))
            watched[group] = tps
        every_tp = set().union(*watched.values()) if watched else set()
        if not every_tp:
            return {}
        latest = admin.list_partition_offsets(
            dict.fromkeys(every_tp, OffsetSpec.LATEST), isolation_level=IsolationLevel.READ_COMMITTED
        )
        earliest = admin.list_partition_offsets(dict.fromkeys(every_tp, OffsetSpec.EARLIEST))

        lag: dict[LagKey, int] = {}
        for group, tps in watched.items():
            committed = committed_by_group.get(group, {})
            for tp in tps:
                end = latest.get(tp)
                if end is None:
                    continue
                om = committed.get(tp)
                start = om.offset if om is not None and om.offset >= 0 else None
                if start is None:
                    first = earliest.get(tp)
                    start = first.offset if first is not None else 0
                lag[(group, tp.topic, tp.partition)] = max(0, int(end.offset) - int(start))
        return lag

    def close(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            try:
                admin.close()
            except Exception:  # noqa: BLE001 — closing a broken client must not hide the first error
                log.debug("closing the lag admin client failed", exc_info=True)


class ConsumerLagCollector(Collector):
    """A Prometheus collector yielding ``bus389_consumer_lag`` from ``source``, cached ``ttl_s`` seconds."""

    def __init__(
        self,
        source: LagSource,
        *,
        ttl_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._values: dict[LagKey, int] = {}
        self._read_at: float | None = None

    @property
    def source(self) -> LagSource:
        return self._source

    def invalidate(self) -> None:
        """Read the broker again at the next scrape (e.g. after watching more groups)."""
        self._read_at = None

    def describe(self) -> list[Metric]:
        # Registration calls describe(), not collect(): no broker round trip at start-up.
        return [GaugeMetricFamily(LAG_METRIC, _LAG_HELP, labels=("group", "topic", "partition"))]

    def collect(self) -> Iterator[Metric]:
        self._refresh()
        family = GaugeMetricFamily(LAG_METRIC, _LAG_HELP, labels=("group", "topic", "partition"))
        for (group, topic, partition), value in sorted(self._values.items()):
            family.add_metric((group, topic, str(partition)), float(value))
        yield family

    def lag(self) -> dict[LagKey, int]:
        """The current values (refreshed if stale), e.g. for a CLI status line."""
        self._refresh()
        return dict(self._values)

    def _refresh(self) -> None:
        now = self._clock()
        if self._read_at is not None and now - self._read_at < self._ttl_s:
            return
        if not self._lock.acquire(blocking=self._read_at is None):
            return  # another scrape is reading: serve what we have
        try:
            if self._read_at is not None and self._clock() - self._read_at < self._ttl_s:
                return
            try:
                self._values = self._source()
            except BusError as exc:
                metrics.CONSUMER_LAG_ERRORS.inc()
                log.warning("consumer lag not read (keeping the last values): %s", exc)
            except (LookupError, TypeError, ValueError, AttributeError):
                # An unexpected answer must not break the whole /metrics page.
                metrics.CONSUMER_LAG_ERRORS.inc()
                log.exception("consumer lag not read: unexpected broker answer")
            self._read_at = self._clock()
        finally:
            self._lock.release()

    def close(self) -> None:
        close = getattr(self._source, "close", None)
        if callable(close):
            close()


_registered: dict[int, ConsumerLagCollector] = {}
_registered_lock = threading.Lock()


def register_lag_collector(
    settings: Settings,
    groups: Mapping[str, Iterable[str]] | Iterable[str],
    *,
    registry: CollectorRegistry = metrics.REGISTRY,
    ttl_s: float = 5.0,
) -> ConsumerLagCollector:
    """Expose the lag of ``groups`` (group → topics, or group names) on ``registry``.

    One lag collector per registry: registering again for the same brokers adds the groups to the
    one already registered; for other brokers it replaces it (and closes the old one).
    """
    with _registered_lock:
        previous = _registered.get(id(registry))
        if previous is not None:
            source = previous.source
            if isinstance(source, BrokerLagSource) and source.settings.bootstrap == settings.bootstrap:
                source.add(groups)
                previous.invalidate()
                return previous
            del _registered[id(registry)]
            registry.unregister(previous)
            previous.close()
        collector = ConsumerLagCollector(BrokerLagSource(settings, groups), ttl_s=ttl_s)
        registry.register(collector)
        _registered[id(registry)] = collector
    return collector


def unregister_lag_collector(registry: CollectorRegistry = metrics.REGISTRY) -> None:
    """Remove (and close) the lag collector of ``registry``, if one is registered."""
    with _registered_lock:
        previous = _registered.pop(id(registry), None)
        if previous is not None:
            registry.unregister(previous)
    if previous is not None:
        previous.close()
