"""Selective-disclosure signatures of events: verifiable after the router nulls redacted fields.

The sender flattens the decoded event into its leaf fields (``seller.phone``, ``accounts[0].platform``),
draws a random 16-byte salt per leaf and computes ``SHA-256(salt || path || 0x00 || canonical value)``
(canonical: a type tag and the value's bytes; the salted-digest idea of the IETF SD-JWT design). It
signs, with its Ed25519 key, the CloudEvents attributes (id, source, type, time), its key id and the
sorted list of (path, digest). Three Kafka headers carry the proof (the Avro value and the
CloudEvents headers are untouched):

- ``bus389_sig``: the Ed25519 signature, base64;
- ``bus389_sig_kid``: the signing key's id in the key registry;
- ``bus389_sd``: base64 of a binary list (:meth:`Disclosure.to_header`): per field its path, its
  digest and, when disclosed, its salt.

The router never re-signs: for a recipient that may not see a field it nulls the value and drops that
field's salt, keeping its digest (:meth:`Disclosure.without`). The recipient re-computes the digest of
every field it got, and sees that each field without a salt is null: removed, not altered.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from bus389.signing.keys import KeyRegistry, MalformedError, SigningKey

__all__ = [
    "KID_HEADER",
    "SD_HEADER",
    "SIGNING_HEADERS",
    "SIG_HEADER",
    "Attributes",
    "Disclosure",
    "Verification",
    "leaves",
    "path_pattern",
    "sign_record",
    "verify_record",
]

SIG_HEADER = "bus389_sig"
KID_HEADER = "bus389_sig_kid"
SD_HEADER = "bus389_sd"
SIGNING_HEADERS = (SIG_HEADER, KID_HEADER, SD_HEADER)
_DOMAIN = b"bus389-sd/1\n"
_SALT_BYTES = 16
_INDEX = re.compile(r"\[\d+\]")
_LEAF = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\[\d+\])*(\.[A-Za-z_][A-Za-z0-9_]*(\[\d+\])*)*$")
"""A concrete leaf path; anything else in a header is refused, so no detail can carry control text."""
_KID = re.compile(r"^[0-9a-f]{32}$")
_SD_VERSION = 1

# Verification outcomes (also the router's DLQ reasons).
UNSIGNED = "unsigned"
BAD_SIGNATURE = "bad_signature"
UNKNOWN_KEY = "unknown_key"
KEY_NOT_VALID = "key_not_valid"
WRONG_KEY = "wrong_key"
FIELD_ALTERED = "field_altered"
FIELD_REMOVED = "field_removed"


def _b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def _unb64(text: str) -> bytes:
    return binascii.a2b_base64(text.encode("ascii"), strict_mode=True)


def _plain(value: Any) -> Any:
    """``value`` as JSON-ready data: one canonical text per Avro value."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return {"$t": moment.astimezone(UTC).isoformat(timespec="microseconds")}
    if isinstance(value, date):
        return {"$d": value.isoformat()}
    if isinstance(value, bytes | bytearray):
        return {"$b": _b64(bytes(value))}
    if isinstance(value, Decimal):
        return {"$n": str(value)}
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return getattr(value, "value", value)


def _canonical(value: Any) -> bytes:
    """One byte string per Avro value: a type tag, then the value (the common scalars without JSON)."""
    if value is None:
        return b"n"
    if value is True or value is False:
        return b"b1" if value else b"b0"
    if type(value) is str:
        return b"s" + value.encode("utf-8")
    if type(value) is int:
        return b"i" + str(value).encode()
    return (
        b"j" + json.dumps(_plain(value), sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()
    )


def leaves(record: Mapping[str, Any]) -> dict[str, Any]:
    """Every leaf field of ``record`` by concrete path (``a.b``, ``items[0].c``); empty containers and
    nulls are leaves too."""
    out: dict[str, Any] = {}

    def walk(node: Any, path: str) -> None:
        if isinstance(node, Mapping) and node:
            for name, value in node.items():
                walk(value, f"{path}.{name}" if path else str(name))
        elif isinstance(node, list | tuple) and node:
            for index, value in enumerate(node):
                walk(value, f"{path}[{index}]")
        else:
            out[path] = node

    walk(record, "")
    return out


def path_pattern(path: str) -> str:
    """The policy path of a concrete leaf path: ``accounts[2].platform`` → ``accounts[].platform``."""
    return _INDEX.sub("[]", path)


def _digest(salt: bytes, path: str, value: Any) -> bytes:
    return hashlib.sha256(salt + path.encode("utf-8") + b"\x00" + _canonical(value)).digest()


@dataclass(frozen=True)
class Attributes:
    """The signed CloudEvents attributes of an event (as its ``ce_*`` headers carry them)."""

    id: str
    source: str
    type: str
    time: str

    @classmethod
    def of(cls, record: Mapping[str, Any], ce_type: str) -> Attributes:
        from bus389.codec import rfc3339

        meta = record.get("meta")
        if not isinstance(meta, Mapping):
            raise MalformedError("the record has no meta")
        source = getattr(meta["source"], "value", meta["source"])
        return cls(str(meta["event_id"]), f"/bus389/{source}", ce_type, rfc3339(meta["published_at"]))

    @property
    def agency(self) -> str:
        return self.source.removeprefix("/bus389/")

    @property
    def moment(self) -> datetime:
        return datetime.fromisoformat(self.time.replace("Z", "+00:00"))


def _message(attributes: Attributes, kid: str, digests: Mapping[str, bytes]) -> bytes:
    """What is signed: the attributes and key id (JSON), then each ``path 0x00 digest`` in path order
    (a path never holds 0x00 and a digest is 32 bytes, so the list reads one way only)."""
    head = {
        "id": attributes.id,
        "source": attributes.source,
        "type": attributes.type,
        "time": attributes.time,
        "kid": kid,
    }
    body = b"".join(path.encode("utf-8") + b"\x00" + digests[path] for path in sorted(digests))
    return (
        _DOMAIN
        + json.dumps(head, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()
        + b"\n"
        + body
    )


@dataclass(frozen=True)
class Disclosure:
    """Every field's digest, and the salts of the fields disclosed to this reader."""

    digests: dict[str, bytes]
    salts: dict[str, bytes]

    def to_header(self) -> bytes:
        """Base64 of: version 1, the count (2 bytes), then per field in path order its path (1 length
        byte, ASCII), its digest (32 bytes), and 1 and its salt (16 bytes), or 0 when withheld."""
        out = [bytes([_SD_VERSION]), len(self.digests).to_bytes(2, "big")]
        for path in sorted(self.digests):
            name = path.encode("ascii")
            salt = self.salts.get(path)
            out.append(bytes([len(name)]) + name + self.digests[path] + (b"\x01" + salt if salt else b"\x00"))
        # base64 of it: header values stay text, so exports (``consume``, ``verify``) carry them as is.
        return binascii.b2a_base64(b"".join(out), newline=False)

    @classmethod
    def from_header(cls, text: bytes) -> Disclosure:
        """Parse ``bus389_sd``; ValueError saying what is wrong."""
        try:
            raw = binascii.a2b_base64(text, strict_mode=True)
        except binascii.Error:
            raise ValueError(f"{SD_HEADER} is not base64") from None
        if len(raw) < 3 or raw[0] != _SD_VERSION:
            raise ValueError(f"{SD_HEADER} is not a version {_SD_VERSION} disclosure")
        count, at = int.from_bytes(raw[1:3], "big"), 3
        digests: dict[str, bytes] = {}
        salts: dict[str, bytes] = {}
        try:
            for _ in range(count):
                size = raw[at]
                path = raw[at + 1 : at + 1 + size].decode("ascii")
                at += 1 + size
                digest, flag = raw[at : at + 32], raw[at + 32]
                at += 33
                if len(digest) != 32 or not _LEAF.match(path) or path in digests:
                    raise MalformedError(f"{SD_HEADER} holds a malformed entry")
                digests[path] = digest
                if flag == 1:
                    salts[path] = raw[at : at + _SALT_BYTES]
                    at += _SALT_BYTES
                    if len(salts[path]) != _SALT_BYTES:
                        raise MalformedError(f"{SD_HEADER} is cut short")
                elif flag != 0:
                    raise MalformedError(f"{SD_HEADER} holds a malformed entry")
        except (IndexError, UnicodeDecodeError):
            raise ValueError(f"{SD_HEADER} is cut short or not ASCII") from None
        if at != len(raw):
            raise ValueError(f"{SD_HEADER} has bytes after its last entry")
        return cls(digests, salts)

    def without(self, patterns: Iterable[str]) -> Disclosure:
        """This disclosure with the salts of every field at ``patterns`` (policy paths) dropped."""
        gone = set(patterns)
        if not gone:
            return self
        return Disclosure(self.digests, {p: s for p, s in self.salts.items() if path_pattern(p) not in gone})


def sign_record(record: Mapping[str, Any], ce_type: str, key: SigningKey) -> list[tuple[str, bytes]]:
    """The three signing headers of ``record`` (a decoded event) written with schema ``ce_type``."""
    attributes = Attributes.of(record, ce_type)
    salts: dict[str, bytes] = {}
    digests: dict[str, bytes] = {}
    fields = leaves(record)
    randomness = secrets.token_bytes(_SALT_BYTES * len(fields))  # one read of the CSPRNG per event
    for index, (path, value) in enumerate(fields.items()):
        salt = randomness[index * _SALT_BYTES : (index + 1) * _SALT_BYTES]
        salts[path] = salt
        digests[path] = _digest(salt, path, value)
    signature = key.sign(_message(attributes, key.kid, digests))
    return [
        (SIG_HEADER, _b64(signature).encode("ascii")),
        (KID_HEADER, key.kid.encode("ascii")),
        (SD_HEADER, Disclosure(digests, salts).to_header()),
    ]


@dataclass(frozen=True)
class Verification:
    """What checking one event's signature found. ``reason`` is None when it verifies."""

    reason: str | None
    detail: str = ""
    kid: str = ""
    owner: str = ""
    removed: tuple[str, ...] = ()
    """Fields the sender signed that this copy does not disclose (null here: redacted)."""
    disclosure: Disclosure | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.reason is None

    def describe(self) -> str:
        if self.ok:
            removed = f"; removed by redaction: {', '.join(self.removed)}" if self.removed else ""
            return f"verified (key {self.kid} of {self.owner}{removed})"
        return f"{self.reason}: {self.detail}"


def _null_here(path: str, received: Mapping[str, Any]) -> bool:
    """True when ``path`` (or a record on the way to it) is null in the received leaves."""
    if path in received:
        return received[path] is None
    probe = path
    while True:
        cut = max(probe.rfind("."), probe.rfind("["))
        if cut <= 0:
            return False
        probe = probe[:cut]
        if probe in received:
            return received[probe] is None


def verify_record(
    record: Mapping[str, Any],
    ce_type: str,
    headers: Mapping[str, bytes],
    registry: KeyRegistry,
    *,
    owner: str | None = None,
    not_revoked_at: datetime | None = None,
    may_remove: Callable[[str], bool] | None = None,
) -> Verification:
    """Check the signature headers of ``record`` (a decoded event) against the key registry.

    ``owner``: the agency the key must belong to besides the event's source (the outbox's agency, at
    the router). ``not_revoked_at``: also refuse a key revoked before this moment (the router's clock,
    so a stolen key cannot back-date). ``may_remove``: which policy paths may be missing; by default
    any field may be withheld. Never raises on bad input.
    """
    present = [name for name in SIGNING_HEADERS if name in headers]
    if not present:
        return Verification(UNSIGNED, "the event carries no signature")
    if len(present) < len(SIGNING_HEADERS):
        missing = ", ".join(n for n in SIGNING_HEADERS if n not in headers)
        return Verification(BAD_SIGNATURE, f"signature headers incomplete: {missing} missing")
    kid = headers[KID_HEADER].decode("ascii", errors="replace")
    if not _KID.match(kid):
        return Verification(BAD_SIGNATURE, f"{KID_HEADER} is not a key id")
    try:
        disclosure = Disclosure.from_header(headers[SD_HEADER])
        signature = _unb64(headers[SIG_HEADER].decode("ascii"))
    except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
        return Verification(BAD_SIGNATURE, str(exc), kid)
    try:
        attributes = Attributes.of(record, ce_type)
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        return Verification(BAD_SIGNATURE, f"the event lacks its CloudEvents attributes: {exc}", kid)
    signed_attributes = (
        ("ce_id", attributes.id),
        ("ce_source", attributes.source),
        ("ce_time", attributes.time),
    )
    for name, value in signed_attributes:
        said = headers.get(name)
        if said is not None and said.decode("utf-8", errors="replace") != value:
            return Verification(BAD_SIGNATURE, f"header {name} differs from the signed event ({value})", kid)
    entry = registry.get(kid)
    if entry is None:
        return Verification(UNKNOWN_KEY, f"key {kid!r} is not in the key registry", kid)
    if entry.owner != attributes.agency or (owner is not None and entry.owner != owner):
        claimed = attributes.agency if owner is None or owner == attributes.agency else owner
        return Verification(WRONG_KEY, f"key {kid} belongs to {entry.owner}, not {claimed}", kid, entry.owner)
    problem = entry.problem_at(attributes.moment)
    if problem is None and not_revoked_at is not None and entry.revoked_at is not None:
        if not_revoked_at >= entry.revoked_at:
            problem = f"key {kid} of {entry.owner} was revoked before this event was routed"
    if problem is not None:
        return Verification(KEY_NOT_VALID, problem, kid, entry.owner)
    if not entry.verify(signature, _message(attributes, kid, disclosure.digests)):
        return Verification(BAD_SIGNATURE, f"the signature does not verify with key {kid}", kid, entry.owner)
    received = leaves(record)
    removed: list[str] = []
    for path, digest in sorted(disclosure.digests.items()):
        salt = disclosure.salts.get(path)
        if salt is None:
            if not _null_here(path, received):
                return Verification(
                    FIELD_ALTERED, f"field {path} holds a value the sender did not sign", kid, entry.owner
                )
            if may_remove is not None and not may_remove(path_pattern(path)):
                return Verification(
                    FIELD_REMOVED, f"field {path} was removed but may not be redacted", kid, entry.owner
                )
            removed.append(path)
            continue
        if path not in received:
            return Verification(FIELD_ALTERED, f"field {path} was signed but is missing", kid, entry.owner)
        if not secrets.compare_digest(_digest(salt, path, received[path]), digest):
            return Verification(
                FIELD_ALTERED, f"field {path} differs from what the sender signed", kid, entry.owner
            )
    removed_set = set(removed)
    for path, value in received.items():
        if path in disclosure.digests:
            continue
        under = (path + ".", path + "[")
        covers = value is None and any(p.startswith(under) for p in removed_set)
        if not covers:
            return Verification(FIELD_ALTERED, f"field {path} was not signed by the sender", kid, entry.owner)
    return Verification(None, "", kid, entry.owner, tuple(removed), disclosure)
