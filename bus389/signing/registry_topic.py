"""The key registry on Kafka: read ``<prefix>.keys`` to its end, write entries (the admin), issue keys.

The topic is compacted and keyed by key id, so its latest record per id is that key's entry (a
rotation or a revocation rewrites it). Only the admin may write it (the ACL spec gives every agency and
the router READ only). :func:`load_registry` is what every service calls: the exported file named by
``signing.registry_file`` when set (offline), otherwise the topic.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bus389.errors import BusError
from bus389.settings import Settings
from bus389.signing.keys import KeyEntry, KeyRegistry, MalformedError, SigningKey, generate_key_file

__all__ = [
    "IssuedKey",
    "first_offsets",
    "issue_signing_key",
    "load_registry",
    "read_registry",
    "read_to_end",
    "signing_key_path",
    "write_entries",
]

log = logging.getLogger(__name__)


def read_to_end(settings: Settings, topic: str, *, timeout_s: float = 60.0) -> Iterator[Any]:
    """Every committed record of ``topic`` up to the end offsets taken at the start (the one topic scan,
    :func:`bus389.topic_scan.scan_topic`). :class:`BusError` when the topic does not exist; a retriable
    :class:`BrokerError` past the deadline."""
    from bus389.topic_scan import TopicMissingError, scan_topic

    records = scan_topic(
        settings, topic, timeout_s=timeout_s, wait_for_topic_s=timeout_s, max_poll_records=5000
    )
    with closing(records):
        try:
            yield from records
        except TopicMissingError as exc:
            raise BusError(f"no topic {topic} (run `bus389 topics apply`)") from exc


def first_offsets(settings: Settings, topic: str) -> dict[int, int]:
    """Each partition's first offset (its log start: above 0 once records were deleted)."""
    from kafka import TopicPartition

    from bus389.kafka import kafka_errors, make_consumer

    with kafka_errors(bootstrap=settings.bootstrap):
        consumer = make_consumer(settings, group_id=None)
    try:
        with kafka_errors(bootstrap=settings.bootstrap):
            tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
            starts: dict[Any, int] = consumer.beginning_offsets(tps) if tps else {}
    finally:
        consumer.close()
    return {tp.partition: offset for tp, offset in starts.items()}


def read_registry(settings: Settings, *, timeout_s: float = 60.0) -> KeyRegistry:
    """The registry as the ``<prefix>.keys`` topic holds it (a malformed record is skipped, logged)."""
    registry = KeyRegistry()
    for raw in read_to_end(settings, settings.topics.keys, timeout_s=timeout_s):
        if raw.value is None:
            continue
        try:
            registry.put(KeyEntry.from_json(json.loads(raw.value)))
        except (ValueError, MalformedError) as exc:
            log.warning("key registry record %d/%d skipped: %s", raw.partition, raw.offset, exc)
    return registry


def load_registry(settings: Settings, *, timeout_s: float = 60.0) -> KeyRegistry:
    """The registry every service verifies with: ``signing.registry_file`` if set, else the topic."""
    if settings.signing.registry_file is not None:
        return KeyRegistry.load(settings.signing.registry_file)
    return read_registry(settings, timeout_s=timeout_s)


def write_entries(settings: Settings, entries: list[KeyEntry]) -> None:
    """Write ``entries`` to ``<prefix>.keys`` and wait for every acknowledgement (as the admin)."""
    from bus389.kafka import kafka_errors, make_producer

    producer = make_producer(settings)
    try:
        with kafka_errors(settings=settings):
            futures = [
                producer.send(settings.topics.keys, key=e.kid.encode("ascii"), value=e.to_bytes())
                for e in entries
            ]
            producer.flush(timeout=settings.kafka.delivery_timeout_ms / 1000)
            for future in futures:
                future.get(timeout=settings.kafka.request_timeout_ms / 1000)
    finally:
        producer.close()


def signing_key_path(config_file: Path) -> Path:
    """Where ``security issue`` keeps the signing key of the client config ``config_file``."""
    return config_file.with_name(config_file.name + ".signing.pem")


@dataclass(frozen=True)
class IssuedKey:
    """What :func:`issue_signing_key` did (never the private key)."""

    kid: str
    owner: str
    path: Path
    rotated: tuple[str, ...]
    """The ids of the owner's keys this one replaced (their ``not_after`` is now)."""


def issue_signing_key(
    settings: Settings, owner: str, path: Path, *, now: datetime | None = None
) -> IssuedKey:
    """Create (or rotate) ``owner``'s signing key: registered first, then the file put in place.

    The new key is generated into a 0600 temporary file, its public key and the end of the owner's
    older keys are written to ``<prefix>.keys``, and only then is the file renamed over ``path``: a
    refused registration leaves the old key file in force.
    """
    moment = now or datetime.now(UTC)
    registry = read_registry(settings)
    path = path.expanduser()
    staged = path.with_name(f".{path.name}.{os.getpid()}.new")
    try:
        key: SigningKey = generate_key_file(staged)
        changed = registry.rotate(owner, key.public_raw, moment)
        write_entries(settings, changed)
        os.replace(staged, path)
    finally:
        staged.unlink(missing_ok=True)
    return IssuedKey(key.kid, owner, path, tuple(e.kid for e in changed if e.kid != key.kid))
