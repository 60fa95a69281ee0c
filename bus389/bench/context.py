"""What every benchmark runs with: the settings, the broker (started if needed), scratch topics, sizes.

A run uses the broker at ``BUS389_BOOTSTRAP`` when it is set. When it is not, it tries the default
address and, if no broker answers there, starts one with ``bus389 kafka up`` (and stops it again
with ``bus389 kafka down`` at the end). Every benchmark creates its topics under its own prefix
``bench_<8 hex>`` and deletes them afterwards, so a run never touches anyone else's topics.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bus389.errors import BusError, LocalKafkaError
from bus389.kafka import kafka_errors, make_admin
from bus389.settings import KafkaClientSettings, RouterSettings, Settings

__all__ = ["BenchContext", "Sizes", "broker_answers", "ensure_broker"]

log = logging.getLogger("bench")


@dataclass(frozen=True)
class Sizes:
    """How much work each benchmark does: the full run (~10 min) or ``--quick`` (~2 min)."""

    rounds: int
    """Rounds of the in-process benchmarks (codec, publish)."""
    loop_rounds: int
    """Rounds of the consumer-loop benchmarks (router, scale-out, confluent): a process per round."""
    codec_events: int
    publish_events: int
    router_backlog: int
    latency_seconds: float
    scaleout_backlog: int
    memory_small: int
    memory_large: int

    @classmethod
    def full(cls) -> Sizes:
        return cls(
            rounds=5,
            loop_rounds=3,
            codec_events=5_000,
            publish_events=5_000,
            router_backlog=8_000,
            latency_seconds=20.0,
            scaleout_backlog=16_000,
            memory_small=1_000,
            memory_large=30_000,
        )

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            rounds=3,
            loop_rounds=1,
            codec_events=1_000,
            publish_events=1_000,
            router_backlog=1_500,
            latency_seconds=4.0,
            scaleout_backlog=4_000,
            memory_small=300,
            memory_large=3_000,
        )


def broker_answers(settings: Settings, *, timeout_ms: int = 5_000) -> bool:
    """True when a broker answers at ``settings.bootstrap`` within ``timeout_ms``."""
    try:
        with kafka_errors(bootstrap=settings.bootstrap):
            admin = make_admin(settings, request_timeout_ms=timeout_ms, bootstrap_timeout_ms=timeout_ms)
        admin.close()
    except BusError:
        return False
    return True


def _bus389_command() -> str:
    return str(Path(sys.executable).with_name("bus389"))


def ensure_broker(settings: Settings) -> tuple[Settings, bool]:
    """The settings to use and whether this run started the broker (so must stop it).

    ``BUS389_BOOTSTRAP`` set: that broker is used as it is (an error if it does not answer).
    Unset: the default address is tried, then ``bus389 kafka up`` starts a local broker.
    """
    if broker_answers(settings):
        return settings, False
    if "bootstrap" in settings.model_fields_set:
        raise LocalKafkaError(f"no broker answers at BUS389_BOOTSTRAP={settings.bootstrap}")
    log.info("no broker at %s: starting one with `bus389 kafka up`", settings.bootstrap)
    result = subprocess.run(
        [_bus389_command(), "kafka", "up"], capture_output=True, text=True, check=False, timeout=900
    )
    if result.returncode != 0:
        raise LocalKafkaError(f"`bus389 kafka up` failed:\n{result.stdout}\n{result.stderr}")
    bootstrap = settings.bootstrap
    for text in result.stdout.splitlines():
        if "BUS389_BOOTSTRAP=" in text:
            bootstrap = text.split("=", 1)[1].strip()
    started = "already running" not in result.stdout
    return settings.model_copy(update={"bootstrap": bootstrap}), started


def stop_broker() -> None:
    subprocess.run([_bus389_command(), "kafka", "down"], capture_output=True, check=False, timeout=120)


@dataclass
class BenchContext:
    """Settings, sizes and the figures later benchmarks need from earlier ones (the router's peak)."""

    settings: Settings
    sizes: Sizes
    quick: bool = False
    state: dict[str, Any] = field(default_factory=dict)
    _prefixes: list[str] = field(default_factory=list)

    def new_prefix(self) -> str:
        prefix = f"bench_{uuid.uuid4().hex[:8]}"
        self._prefixes.append(prefix)
        return prefix

    def scratch_settings(
        self,
        prefix: str,
        *,
        partitions: int | None = None,
        router: dict[str, Any] | None = None,
    ) -> Settings:
        """Settings on ``prefix`` with a router group and transactional id of their own."""
        base_router = {
            "group_id": f"{prefix}.router",
            "transactional_id": f"{prefix}.router",
            "session_timeout_ms": 6_000,
        }
        kafka = self.settings.kafka
        if partitions is not None:
            kafka = KafkaClientSettings(**{**kafka.model_dump(), "partitions": partitions})
        router_settings = RouterSettings(
            **{**self.settings.router.model_dump(), **base_router, **(router or {})}
        )
        return self.settings.model_copy(
            update={"topic_prefix": prefix, "kafka": kafka, "router": router_settings}
        )

    @contextmanager
    def topics(
        self, *, partitions: int | None = None, router: dict[str, Any] | None = None
    ) -> Iterator[Settings]:
        """Create every bus389 topic under a fresh prefix; delete them when the block ends."""
        from bus389.topics import apply_topics

        prefix = self.new_prefix()
        settings = self.scratch_settings(prefix, partitions=partitions, router=router)
        apply_topics(settings, partitions=partitions)
        try:
            yield settings
        finally:
            delete_prefix(settings)


def delete_prefix(settings: Settings) -> None:
    """Delete every topic under ``settings.topic_prefix`` (best effort: never hides a result)."""
    try:
        with make_admin(settings) as admin, kafka_errors(bootstrap=settings.bootstrap):
            mine = [t for t in admin.list_topics() if t.startswith(settings.topic_prefix + ".")]
            if mine:
                admin.delete_topics(mine)
    except BusError as exc:
        log.warning("could not delete the topics of %s: %s", settings.topic_prefix, exc)
