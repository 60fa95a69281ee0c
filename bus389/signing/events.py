"""Signing and checking events in transit: the publisher's signer, the router's verifier, a reader's check.

:class:`EventSigner` adds the signature headers to an encoded event (``bus389 publish``, the ICT
results, the tax alerts: every producer goes through it). :class:`RouterVerifier` is what the router
asks before routing (``signing.require`` decides about unsigned events; a signature present is always
checked) and gives each inbox copy its proof with the redacted fields' salts dropped.
:func:`check_copy` is a reader's check of one copy (``consume``, ``verify``, the evidence bundle): the
fields it may miss are those the copy's ``bus389_redacted`` header names and, given the policy, those
the policy withholds from the reader.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bus389.errors import BusError
from bus389.signing.disclosure import (
    KID_HEADER,
    SD_HEADER,
    SIG_HEADER,
    SIGNING_HEADERS,
    UNSIGNED,
    Verification,
    sign_record,
    verify_record,
)
from bus389.signing.keys import KeyRegistry, SigningKey, load_signing_key

if TYPE_CHECKING:
    from bus389.agencies import Agency, Topics
    from bus389.codec import Decoded
    from bus389.routing.policy import Policy
    from bus389.settings import Settings

__all__ = ["EventSigner", "Proof", "RouterVerifier", "check_copy", "header_map", "verification_json"]

log = logging.getLogger(__name__)
REDACTED_HEADER = "bus389_redacted"


def header_map(
    headers: Iterable[tuple[str, bytes | None]] | Mapping[str, bytes | None] | None,
) -> dict[str, bytes]:
    """Kafka headers as a name → bytes map (the last of a repeated name wins)."""
    items = headers.items() if isinstance(headers, Mapping) else (headers or ())
    return {str(k): bytes(v or b"") for k, v in items}


class EventSigner:
    """Signs encoded events with one agency's key (``signing.key_file``)."""

    def __init__(self, key: SigningKey) -> None:
        self.key = key

    @classmethod
    def from_settings(cls, settings: Settings) -> EventSigner | None:
        """The signer of ``signing.key_file``, or None when no key is configured (unsigned events)."""
        path = settings.signing.key_file
        return None if path is None else cls(load_signing_key(path))

    def headers(self, value: bytes, headers: Iterable[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
        """``headers`` plus the signature of the event in ``value`` (an older signature is replaced).

        The event is decoded from the very bytes that will be sent, so the digests are of what every
        reader will decode."""
        from bus389.codec import decode_value

        decoded = decode_value(value)
        kept = [(n, v) for n, v in headers if n not in SIGNING_HEADERS]
        return kept + sign_record(decoded.record, decoded.schema.ce_type, self.key)


@dataclass(frozen=True)
class Proof:
    """A verified event's signature, as every copy carries it."""

    verification: Verification
    signature: bytes
    kid: bytes

    def headers_for(self, redacted: Iterable[str]) -> list[tuple[str, bytes]]:
        """The signature headers of a copy with the fields at ``redacted`` removed."""
        disclosure = self.verification.disclosure
        assert disclosure is not None  # noqa: S101 — a Proof is built from a verified event only
        return [
            (SIG_HEADER, self.signature),
            (KID_HEADER, self.kid),
            (SD_HEADER, disclosure.without(redacted).to_header()),
        ]


class RouterVerifier:
    """The router's check of each outbox event: a :class:`Proof`, None (unsigned, allowed) or a refusal.

    The registry comes from ``load`` (the ``<prefix>.keys`` topic, or the exported file) and is read
    again every ``refresh_s`` and whenever an unknown key id shows up (at most once a second),
    so a new or revoked key takes effect without a restart. A failed reload keeps the last registry.
    """

    def __init__(
        self,
        load: Callable[[], KeyRegistry],
        *,
        require: bool,
        refresh_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self.require = require
        self.refresh_s = refresh_s
        self._clock = clock
        self.registry = load()
        self._loaded_at = clock()

    @classmethod
    def from_settings(cls, settings: Settings) -> RouterVerifier:
        from bus389.signing.registry_topic import load_registry

        return cls(
            lambda: load_registry(settings),
            require=settings.signatures_required,
            refresh_s=settings.signing.registry_refresh_s,
        )

    def _refresh(self, *, unknown: bool) -> None:
        age = self._clock() - self._loaded_at
        if age < (min(1.0, self.refresh_s) if unknown else self.refresh_s):
            return
        try:
            self.registry = self._load()
        except BusError as exc:
            log.warning("key registry not reloaded (the last one stays in force): %s", exc)
        self._loaded_at = self._clock()

    def check(
        self, sender: Agency, decoded: Decoded, headers: Mapping[str, bytes], received_at: datetime
    ) -> Verification | Proof | None:
        """The proof of a verified event, None for an unsigned one that may pass, else the refusal."""
        self._refresh(unknown=False)
        result = self._verify(sender, decoded, headers, received_at)
        if result.reason == "unknown_key":
            self._refresh(unknown=True)
            result = self._verify(sender, decoded, headers, received_at)
        if result.reason == UNSIGNED and not self.require:
            return None
        if not result.ok:
            return result
        return Proof(result, headers[SIG_HEADER], headers[KID_HEADER])

    def _verify(
        self, sender: Agency, decoded: Decoded, headers: Mapping[str, bytes], received_at: datetime
    ) -> Verification:
        return verify_record(
            decoded.record,
            decoded.schema.ce_type,
            headers,
            self.registry,
            owner=sender.value,
            not_revoked_at=received_at,
        )


def check_copy(
    decoded: Decoded,
    headers: Mapping[str, bytes],
    registry: KeyRegistry,
    *,
    policy: Policy | None = None,
    reader: Agency | None = None,
) -> Verification:
    """A reader's check of one copy: the sender's signature, every field it got, and that each missing
    field is one the router says it redacted (``bus389_redacted``) and, given ``policy`` and
    ``reader``, one the policy withholds from the reader."""
    claimed = {p for p in headers.get(REDACTED_HEADER, b"").decode("utf-8", "replace").split(",") if p}
    withheld = set(policy.personal_data.withheld_from(reader)) if policy and reader else None

    def may_remove(path: str) -> bool:
        return path in claimed and (withheld is None or path in withheld)

    return verify_record(decoded.record, decoded.schema.ce_type, headers, registry, may_remove=may_remove)


def check_read(
    topics: Topics,
    topic: str,
    value: bytes | None,
    headers: Mapping[str, bytes],
    registry: KeyRegistry,
    *,
    policy: Policy | None = None,
) -> Verification:
    """A reader's check of one record read from ``topic`` (``consume``, ``verify``, evidence bundles).

    From an outbox, the event must be whole and signed by that outbox's agency; from an inbox, as
    :func:`check_copy` with the inbox's agency as the reader. A value that does not decode is refused
    (``undecodable``)."""
    from bus389.codec import decode_event
    from bus389.errors import CodecError

    try:
        decoded = decode_event(value, headers)
    except CodecError as exc:
        return Verification("undecodable", f"{exc.reason}: {exc}")
    sender = topics.sender_of(topic)
    if sender is not None:
        return verify_record(
            decoded.record,
            decoded.schema.ce_type,
            headers,
            registry,
            owner=sender.value,
            may_remove=lambda _path: False,
        )
    return check_copy(decoded, headers, registry, policy=policy, reader=topics.owner_of_inbox(topic))


def verification_json(result: Verification) -> dict[str, Any]:
    """The verification of one event as the ``signature`` member of a consume / verify line."""
    out: dict[str, Any] = {"status": "verified" if result.ok else result.reason}
    if result.kid:
        out["kid"] = result.kid
    if result.owner:
        out["signer"] = result.owner
    if result.ok:
        out["removed"] = list(result.removed)
    else:
        out["detail"] = result.detail
    return out
