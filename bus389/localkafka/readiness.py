"""Whether a local cluster is ready: ask it for its brokers, wait until the ones we need are unfenced,
then create Kafka's internal topics while every broker is up.

A broker is ready when the cluster (the one whose id ``state.json`` records, not another answering on
the same ports) reports it registered and unfenced.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bus389.errors import BrokerError, LocalKafkaError
from bus389.kafka import describe_cluster, make_admin
from bus389.localkafka.processes import alive, log_tail
from bus389.localkafka.state import BrokerState, ClusterState
from bus389.localkafka.warmup import create_internal_topics
from bus389.security.localbroker import SECURITY_DIR, SecureFiles, admin_settings
from bus389.settings import Settings

__all__ = ["await_unfenced", "client_settings", "probe", "unfenced_ids", "warm_up"]

_PROBE_TIMEOUT_MS = 2_000
_POLL_S = 0.5


def client_settings(settings: Settings, data_dir: Path, state: ClusterState) -> Settings:
    """Settings for a client of this cluster: plaintext, or the admin's SASL_SSL when secure."""
    bootstrap = state.layout(data_dir).bootstrap
    if state.secure:
        files = SecureFiles(data_dir / SECURITY_DIR)
        return admin_settings(settings, files, bootstrap)
    plain = settings.kafka.model_copy(update={"security_protocol": "PLAINTEXT"})
    return settings.model_copy(update={"bootstrap": bootstrap, "kafka": plain})


def probe(settings: Settings, data_dir: Path, state: ClusterState) -> dict[str, Any]:
    """Ask the cluster for its brokers (as the admin when secure) within about two seconds."""
    client = client_settings(settings, data_dir, state)
    with _quiet_kafka_logs():
        admin = make_admin(
            client,
            client_id="bus389-localkafka",
            request_timeout_ms=_PROBE_TIMEOUT_MS,
            bootstrap_timeout_ms=_PROBE_TIMEOUT_MS,
        )
        try:
            return describe_cluster(admin)
        finally:
            admin.close()


def unfenced_ids(info: dict[str, Any]) -> set[int]:
    """The ids of the brokers a cluster description reports registered and unfenced."""
    return {int(b["broker_id"]) for b in info.get("brokers", []) if not b.get("is_fenced", False)}


def await_unfenced(
    settings: Settings, data_dir: Path, state: ClusterState, need: set[int], *, watch: list[BrokerState]
) -> None:
    """Wait until the brokers ``need`` are unfenced in this cluster; fail fast if a watched one dies."""
    timeout_s = settings.local.start_timeout_s
    deadline = time.monotonic() + timeout_s
    last_problem = "no answer yet"
    missing = set(need)
    while True:
        for broker in watch:
            if not alive(broker):
                raise LocalKafkaError(
                    f"broker {broker.node_id} (pid {broker.pid}) exited while starting\n"
                    + log_tail(Path(broker.directory) / "logs")
                )
        try:
            info = probe(settings, data_dir, state)
        except BrokerError as exc:
            last_problem = str(exc)
        else:
            if info.get("cluster_id") != state.cluster_id:
                raise LocalKafkaError(
                    f"a different cluster ({info.get('cluster_id')}) answers on "
                    f"{state.layout(data_dir).bootstrap}; expected {state.cluster_id}"
                )
            missing = need - unfenced_ids(info)
            if not missing:
                return
            last_problem = "not yet unfenced: broker " + ", ".join(str(i) for i in sorted(missing))
        if time.monotonic() >= deadline:
            suspects = [b for b in state.brokers if b.node_id in missing] or watch or state.brokers
            laggard = suspects[0]
            raise LocalKafkaError(
                f"the cluster did not come up within {timeout_s:g}s ({last_problem})\n"
                + log_tail(Path(laggard.directory) / "logs")
            )
        time.sleep(_POLL_S)


def warm_up(settings: Settings, data_dir: Path, state: ClusterState, echo: Callable[[str], None]) -> None:
    """Create ``__consumer_offsets`` and ``__transaction_state`` now, while every broker is up."""
    try:
        create_internal_topics(client_settings(settings, data_dir, state), echo=echo)
    except BrokerError as exc:
        raise LocalKafkaError(f"the cluster is up, but its internal topics could not be made: {exc}") from exc


@contextmanager
def _quiet_kafka_logs() -> Iterator[None]:
    """kafka-python logs every refused connection; while waiting for a broker those are expected."""
    logger = logging.getLogger("kafka")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)
