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
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bus389.errors import BrokerError, BusError, SignatureError
from bus389.events.notices import WRITTEN_BY_THE_ROUTER
from bus389.signing.disclosure import (
    KID_HEADER,
    SD_HEADER,
    SIG_HEADER,
    SIGNING_HEADERS,
    UNSIGNED,
    Disclosure,
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

__all__ = [
    "EventSigner",
    "Proof",
    "ReaderVerifier",
    "RouterVerifier",
    "check_copy",
    "check_read",
    "header_map",
    "signing_key_file",
    "verification_json",
]

log = logging.getLogger(__name__)
REDACTED_HEADER = "bus389_redacted"


def header_map(
    headers: Iterable[tuple[str, bytes | None]] | Mapping[str, bytes | None] | None,
) -> dict[str, bytes]:
    """Kafka headers as a name → bytes map (the last of a repeated name wins)."""
    items = headers.items() if isinstance(headers, Mapping) else (headers or ())
    return {str(k): bytes(v or b"") for k, v in items}


def signing_key_file(settings: Settings, owner: str) -> Path | None:
    """The private key ``owner`` (an agency, or ``router``) signs with here: ``signing.key_file`` when
    set (this process is one agency), else ``<signing.key_dir>/<owner>.signing.pem`` when that file
    exists (a process that speaks for several), else None: unsigned."""
    if settings.signing.key_file is not None:
        return settings.signing.key_file
    if settings.signing.key_dir is not None:
        path = settings.signing.key_dir.expanduser() / f"{owner}.signing.pem"
        if path.exists():
            return path
    return None


class EventSigner:
    """Signs encoded events with one agency's key (``signing.key_file``)."""

    def __init__(self, key: SigningKey) -> None:
        self.key = key

    @classmethod
    def from_settings(cls, settings: Settings, owner: str) -> EventSigner | None:
        """The signer of ``owner``'s events (:func:`signing_key_file`), or None when it has no key
        (its events go out unsigned)."""
        path = signing_key_file(settings, owner)
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
    """A sender's signature as every copy carries it: verified by the router, or passed through unchecked
    when the router has no verifier (:meth:`unchecked`; the recipients still check it)."""

    signature: bytes
    kid: bytes
    disclosure: Disclosure
    verification: Verification | None = None

    @classmethod
    def unchecked(cls, headers: Mapping[str, bytes]) -> Proof | None:
        """The signature headers of an event, not verified; None when absent or unreadable."""
        if not all(name in headers for name in SIGNING_HEADERS):
            return None
        try:
            disclosure = Disclosure.from_header(headers[SD_HEADER])
        except ValueError:
            return None  # the recipients will see an unsigned copy, and say so
        return cls(headers[SIG_HEADER], headers[KID_HEADER], disclosure)

    def headers_for(self, redacted: Iterable[str]) -> list[tuple[str, bytes]]:
        """The signature headers of a copy with the fields at ``redacted`` removed."""
        return [
            (SIG_HEADER, self.signature),
            (KID_HEADER, self.kid),
            (SD_HEADER, self.disclosure.without(redacted).to_header()),
        ]


class _RegistryCache:
    """The key registry, read through ``load`` when first needed, again every ``refresh_s``, and at once
    (at most once a second) when an unknown key id shows up; a failed reload keeps the last one."""

    def __init__(
        self, load: Callable[[], KeyRegistry], refresh_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._load = load
        self.refresh_s = refresh_s
        self._clock = clock
        self._registry: KeyRegistry | None = None
        self._loaded_at = 0.0

    @property
    def registry(self) -> KeyRegistry:
        """The registry; a retriable :class:`~bus389.errors.BrokerError` while none could be read yet
        (nothing is verified, nor refused, without one)."""
        if self._registry is None:
            try:
                self._registry = self._load()
            except BusError as exc:
                raise BrokerError(f"the key registry cannot be read: {exc}", retriable=True) from exc
            self._loaded_at = self._clock()
        return self._registry

    def refresh(self, *, unknown: bool) -> None:
        age = self._clock() - self._loaded_at
        if self._registry is None or age < (min(1.0, self.refresh_s) if unknown else self.refresh_s):
            return
        try:
            self._registry = self._load()
        except BusError as exc:
            log.warning("key registry not reloaded (the last one stays in force): %s", exc)
        self._loaded_at = self._clock()

    def verify(self, check: Callable[[KeyRegistry], Verification]) -> Verification:
        self.refresh(unknown=False)
        result = check(self.registry)
        if result.reason == "unknown_key":
            self.refresh(unknown=True)
            result = check(self.registry)
        return result


class RouterVerifier:
    """The router's check of each outbox event: a :class:`Proof`, None (unsigned, allowed) or a refusal.

    The registry comes from ``load`` (the ``<prefix>.keys`` topic, or the exported file), read at once
    and kept fresh as :class:`_RegistryCache` says, so a new or revoked key takes effect without a restart.
    """

    def __init__(
        self,
        load: Callable[[], KeyRegistry],
        *,
        require: bool,
        refresh_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.require = require
        self._cache = _RegistryCache(load, refresh_s, clock)
        _ = self._cache.registry  # read at start-up: a router with no registry should not start

    @property
    def registry(self) -> KeyRegistry:
        return self._cache.registry

    @classmethod
    def from_settings(cls, settings: Settings) -> RouterVerifier:
        from bus389.signing.registry_topic import load_registry

        return cls(
            lambda: load_registry(settings),
            require=settings.signatures_required,
            refresh_s=settings.signing.registry_refresh_s,
        )

    def check(
        self, sender: Agency, decoded: Decoded, headers: Mapping[str, bytes], received_at: datetime
    ) -> Verification | Proof | None:
        """The proof of a verified event, None for an unsigned one that may pass, else the refusal."""

        def verify(registry: KeyRegistry) -> Verification:
            return verify_record(
                decoded.record,
                decoded.schema.ce_type,
                headers,
                registry,
                owner=sender.value,
                not_revoked_at=received_at,
            )

        result = self._cache.verify(verify)
        if result.reason == UNSIGNED and not self.require:
            return None
        if not result.ok:
            return result
        assert result.disclosure is not None  # noqa: S101 — a verified result carries its disclosure
        return Proof(headers[SIG_HEADER], headers[KID_HEADER], result.disclosure, result)


class ReaderVerifier:
    """An agency service's check of each inbox copy (``run_inbox_service``): None when it may be used,
    else the :class:`~bus389.errors.SignatureError` that makes it a poison record.

    The registry is read only when a copy carries a signature or signatures are required, so a service
    on a bus with no signed events never reads it."""

    def __init__(
        self,
        load: Callable[[], KeyRegistry],
        *,
        reader: Agency,
        require: bool,
        policy: Policy | None = None,
        refresh_s: float = 30.0,
    ) -> None:
        self.reader = reader
        self.require = require
        self.policy = policy
        self._cache = _RegistryCache(load, refresh_s)

    @classmethod
    def from_settings(cls, settings: Settings, reader: Agency) -> ReaderVerifier:
        from bus389.routing.policy import load_policy
        from bus389.signing.registry_topic import load_registry

        try:
            policy: Policy | None = load_policy(settings.router.policy_path)
        except BusError:
            policy = None  # removals are then checked against the copy's bus389_redacted header only
        return cls(
            lambda: load_registry(settings),
            reader=reader,
            require=settings.signatures_required,
            policy=policy,
            refresh_s=settings.signing.registry_refresh_s,
        )

    def problem(self, decoded: Decoded, headers: Mapping[str, bytes]) -> SignatureError | None:
        if decoded.schema.event_type in WRITTEN_BY_THE_ROUTER:
            # The router's own notices carry no sender's content to prove: the inbox's ACL (only the
            # router writes it) is what proves who wrote them.
            return None
        if not self.require and not any(name in headers for name in SIGNING_HEADERS):
            return None
        result = self._cache.verify(
            lambda registry: check_copy(decoded, headers, registry, policy=self.policy, reader=self.reader)
        )
        if result.ok or (result.reason == UNSIGNED and not self.require):
            return None
        return SignatureError(result.reason or "bad_signature", result.detail)


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
