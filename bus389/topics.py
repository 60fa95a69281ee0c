"""The bus389 topics (every outbox, every inbox, the DLQ and the audit log): their specs and creation.

``apply_topics`` is idempotent: it creates what is missing and reports what already existed, never
changing an existing topic. The replication factor is clamped to the brokers that are live, so the
same command works on a one-broker laptop and a three-broker cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import kafka.errors as kafka_errors_module

from bus389.errors import BrokerError, ConfigError
from bus389.kafka import broker_count, kafka_errors, make_admin
from bus389.settings import Settings

__all__ = [
    "AUDIT_RETENTION_MS",
    "DLQ_RETENTION_MS",
    "TopicInfo",
    "TopicReport",
    "TopicSpec",
    "apply_topics",
    "list_topics",
    "topic_specs",
]

DLQ_RETENTION_MS = 90 * 24 * 3600 * 1000
"""90 days: long enough for an operator to look at every dead letter and replay it."""
AUDIT_RETENTION_MS = -1
"""Forever: the audit log is the record of who was told what, and why."""

_WAIT_FOR_LEADERS_MS = 30_000


@dataclass(frozen=True)
class TopicSpec:
    """One topic as bus389 wants it created."""

    name: str
    partitions: int
    replication_factor: int
    configs: dict[str, str]


@dataclass(frozen=True)
class TopicReport:
    """What :func:`apply_topics` did: topics created, topics that already existed, and the RF used."""

    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    partitions: int = 0
    replication_factor: int = 0
    requested_replication_factor: int = 0
    live_brokers: int = 0

    @property
    def clamped(self) -> bool:
        """True when fewer brokers were live than the requested replication factor needs."""
        return self.replication_factor < self.requested_replication_factor


@dataclass(frozen=True)
class TopicInfo:
    """One existing topic as the cluster describes it."""

    name: str
    partitions: int
    replication_factor: int


def topic_specs(settings: Settings, *, partitions: int, replication_factor: int) -> list[TopicSpec]:
    """The spec of every bus389 topic under ``settings.topic_prefix`` (pure: no broker needed)."""
    if partitions < 1 or replication_factor < 1:
        raise ConfigError("partitions and replication factor must be at least 1")
    base = {
        "min.insync.replicas": str(min(settings.kafka.min_insync_replicas, replication_factor)),
        "unclean.leader.election.enable": "false",
        "max.message.bytes": str(settings.kafka.max_message_bytes),
    }
    topics = settings.topics
    specs = [
        TopicSpec(name, partitions, replication_factor, dict(base))
        for name in [*topics.all_outboxes(), *topics.all_inboxes()]
    ]
    specs.append(
        TopicSpec(topics.dlq, partitions, replication_factor, {**base, "retention.ms": str(DLQ_RETENTION_MS)})
    )
    specs.append(
        TopicSpec(
            topics.audit,
            partitions,
            replication_factor,
            {**base, "retention.ms": str(AUDIT_RETENTION_MS), "retention.bytes": "-1"},
        )
    )
    specs.append(
        TopicSpec(
            topics.keys,
            partitions,
            replication_factor,
            {**base, "cleanup.policy": "compact", "min.compaction.lag.ms": "0"},
        )
    )
    return specs


def apply_topics(
    settings: Settings,
    *,
    partitions: int | None = None,
    replication_factor: int | None = None,
) -> TopicReport:
    """Create every missing bus389 topic; an existing topic is reported and left as it is.

    ``partitions`` and ``replication_factor`` default to ``settings.kafka``; the replication factor
    is lowered to the number of live brokers when fewer are up (``report.clamped`` says so), and
    ``min.insync.replicas`` never exceeds it. Returns once every created topic has a leader.
    """
    wanted_partitions = partitions if partitions is not None else settings.kafka.partitions
    wanted_rf = replication_factor if replication_factor is not None else settings.kafka.replication_factor
    admin = make_admin(settings)
    try:
        live = broker_count(admin)
        if live < 1:
            raise BrokerError("the cluster reports no live broker", retriable=True)
        rf = min(wanted_rf, live)
        specs = topic_specs(settings, partitions=wanted_partitions, replication_factor=rf)
        with kafka_errors(bootstrap=settings.bootstrap):
            present = set(admin.list_topics())
        missing = [s for s in specs if s.name not in present]
        existing = [s.name for s in specs if s.name in present]
        created: list[str] = []
        if missing:
            request = {
                s.name: {
                    "num_partitions": s.partitions,
                    "replication_factor": s.replication_factor,
                    "configs": s.configs,
                }
                for s in missing
            }
            with kafka_errors(bootstrap=settings.bootstrap):
                response = admin.create_topics(request, raise_errors=False)
            created, raced = _sort_response(response)
            existing.extend(raced)
            if created:
                with kafka_errors(bootstrap=settings.bootstrap):
                    admin.wait_for_topics(created, timeout_ms=_WAIT_FOR_LEADERS_MS)
    finally:
        admin.close()
    order = {s.name: i for i, s in enumerate(specs)}
    return TopicReport(
        created=sorted(created, key=order.__getitem__),
        existing=sorted(existing, key=order.__getitem__),
        partitions=wanted_partitions,
        replication_factor=rf,
        requested_replication_factor=wanted_rf,
        live_brokers=live,
    )


def _sort_response(response: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Split a CreateTopics response into (created, already existed); raise on any other error."""
    created: list[str] = []
    raced: list[str] = []
    problems: list[str] = []
    retriable = True
    for topic in response.get("topics", []):
        error = kafka_errors_module.for_code(topic["error_code"])
        if error is kafka_errors_module.NoError:
            created.append(topic["name"])
        elif error is kafka_errors_module.TopicAlreadyExistsError:
            raced.append(topic["name"])
        else:
            retriable = retriable and bool(error.retriable)
            problems.append(f"{topic['name']}: {topic.get('error_message') or error.__name__}")
    if problems:
        raise BrokerError("could not create topics: " + "; ".join(problems), retriable=retriable)
    return created, raced


def list_topics(settings: Settings, *, all_topics: bool = False) -> list[TopicInfo]:
    """The topics under ``settings.topic_prefix`` (or every topic) with partitions and replicas."""
    with make_admin(settings) as admin, kafka_errors(bootstrap=settings.bootstrap):
        names = sorted(admin.list_topics())
        if not all_topics:
            names = [n for n in names if n.startswith(settings.topic_prefix + ".")]
        if not names:
            return []
        described = admin.describe_topics(names)
    infos: list[TopicInfo] = []
    for topic in described:
        parts = topic.get("partitions", [])
        rf = max((len(p.get("replica_nodes", [])) for p in parts), default=0)
        infos.append(TopicInfo(topic["name"], len(parts), rf))
    return sorted(infos, key=lambda t: t.name)
