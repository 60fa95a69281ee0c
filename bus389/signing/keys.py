"""Signing keys and the key registry: who owns which Ed25519 public key, and when it may sign.

An agency's private key is a PKCS#8 PEM file (0600) beside its Kafka credentials; its key id (``kid``)
is the first 16 bytes of SHA-256 of the raw public key, in hex. The registry maps key ids to
:class:`KeyEntry` — owner, public key, ``not_before``, ``not_after`` (set when the key is rotated out) and
``revoked_at`` (set when it is revoked). A key verifies a signature made at time *t* only when
``not_before <= t`` and *t* is before ``not_after`` and ``revoked_at``: rotation keeps old signatures
verifiable, a revoked key's later signatures are refused. The registry's file form (``bus389 security keys
export``) is the same JSON entries as the ``<prefix>.keys`` topic's values, for offline checks.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from bus389.config_file import stage_private_file
from bus389.errors import ConfigError, InputError

__all__ = [
    "KeyEntry",
    "MalformedError",
    "KeyRegistry",
    "SigningKey",
    "generate_key_file",
    "key_id",
    "load_signing_key",
]

REGISTRY_FORMAT = "bus389-keys/1"


class MalformedError(ValueError):
    """A registry entry or a signature header is malformed (the message says which field)."""


def key_id(public_raw: bytes) -> str:
    """The key id of a raw 32-byte Ed25519 public key."""
    return hashlib.sha256(public_raw).hexdigest()[:32]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _time(value: Any, what: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise MalformedError(f"{what} must be an RFC 3339 time or null")
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{what} must carry a time zone")
    return moment.astimezone(UTC)


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class SigningKey:
    """A loaded private key and its key id (never printed: ``repr`` shows the id only)."""

    kid: str
    private: Ed25519PrivateKey

    def __repr__(self) -> str:
        return f"SigningKey(kid={self.kid!r})"

    @property
    def public_raw(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    def sign(self, message: bytes) -> bytes:
        return self.private.sign(message)


def load_signing_key(path: Path) -> SigningKey:
    """The Ed25519 private key in ``path`` (PKCS#8 PEM); :class:`ConfigError` naming the file otherwise.

    A key file readable by others is refused: a signing key is a secret.
    """
    path = path.expanduser()
    try:
        mode = path.stat().st_mode & 0o777
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"signing key {path}: {exc.strerror}") from None
    if mode & 0o077:
        raise ConfigError(f"signing key {path}: mode {mode:o} lets others read it; chmod 600 it")
    try:
        private = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise ConfigError(f"signing key {path}: not an unencrypted PKCS#8 PEM private key") from None
    if not isinstance(private, Ed25519PrivateKey):
        raise ConfigError(f"signing key {path}: not an Ed25519 key")
    raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return SigningKey(key_id(raw), private)


def generate_key_file(path: Path) -> SigningKey:
    """A new Ed25519 key written to ``path`` (0600 from the first byte; replaces an existing file)."""
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    path = path.expanduser()
    tmp = stage_private_file(path, pem)
    try:
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return SigningKey(key_id(raw), private)


@dataclass(frozen=True)
class KeyEntry:
    """One public key of the registry and when it may sign."""

    kid: str
    owner: str
    """An agency code, or ``router`` for the router's audit-head key."""
    public_key: bytes
    not_before: datetime
    not_after: datetime | None = None
    revoked_at: datetime | None = None

    def problem_at(self, moment: datetime) -> str | None:
        """Why this key may not have signed at ``moment``, or None when it may."""
        if moment < self.not_before:
            return f"key {self.kid} of {self.owner} is valid only from {_iso(self.not_before)}"
        if self.revoked_at is not None and moment >= self.revoked_at:
            return f"key {self.kid} of {self.owner} was revoked at {_iso(self.revoked_at)}"
        if self.not_after is not None and moment >= self.not_after:
            return f"key {self.kid} of {self.owner} was rotated out at {_iso(self.not_after)}"
        return None

    def verify(self, signature: bytes, message: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True

    def to_json(self) -> dict[str, Any]:
        return {
            "kid": self.kid,
            "owner": self.owner,
            "public_key": _b64(self.public_key),
            "not_before": _iso(self.not_before),
            "not_after": _iso(self.not_after),
            "revoked_at": _iso(self.revoked_at),
        }

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_json(cls, data: Any) -> KeyEntry:
        """Parse one entry; ValueError naming the field when it is malformed."""
        if not isinstance(data, Mapping):
            raise MalformedError("a key entry must be an object")
        for name in ("kid", "owner", "public_key", "not_before"):
            if not isinstance(data.get(name), str):
                raise MalformedError(f"field {name!r} is missing or not a string")
        try:
            public = _unb64(data["public_key"])
        except ValueError:
            raise ValueError("field 'public_key' is not base64url") from None
        if len(public) != 32:
            raise ValueError("field 'public_key' is not a 32-byte Ed25519 key")
        if key_id(public) != data["kid"]:
            raise ValueError(f"field 'kid' {data['kid']!r} is not the id of its public key")
        return cls(
            kid=data["kid"],
            owner=data["owner"],
            public_key=public,
            not_before=_time(data["not_before"], "not_before") or datetime.min.replace(tzinfo=UTC),
            not_after=_time(data.get("not_after"), "not_after"),
            revoked_at=_time(data.get("revoked_at"), "revoked_at"),
        )


class KeyRegistry:
    """Every known public key by id; later entries of one id (rotation, revocation) replace earlier."""

    def __init__(self, entries: Iterable[KeyEntry] = ()) -> None:
        self._entries: dict[str, KeyEntry] = {}
        for entry in entries:
            self.put(entry)

    def put(self, entry: KeyEntry) -> None:
        self._entries[entry.kid] = entry

    def get(self, kid: str) -> KeyEntry | None:
        return self._entries.get(kid)

    def entries(self) -> list[KeyEntry]:
        return sorted(self._entries.values(), key=lambda e: (e.owner, e.not_before, e.kid))

    def __len__(self) -> int:
        return len(self._entries)

    def current(self, owner: str, moment: datetime) -> list[KeyEntry]:
        """The keys of ``owner`` valid at ``moment``."""
        return [e for e in self.entries() if e.owner == owner and e.problem_at(moment) is None]

    def rotate(self, owner: str, public_raw: bytes, moment: datetime) -> list[KeyEntry]:
        """The entries to write when ``owner``'s new key takes over at ``moment``: the old valid keys
        closed (``not_after``), then the new key. Applied to this registry too."""
        changed = [replace(e, not_after=moment) for e in self.current(owner, moment)]
        changed.append(KeyEntry(key_id(public_raw), owner, public_raw, moment))
        for entry in changed:
            self.put(entry)
        return changed

    def revoke(self, kid: str, moment: datetime) -> KeyEntry:
        """The entry of ``kid`` revoked from ``moment`` on; :class:`InputError` for an unknown id."""
        entry = self.get(kid)
        if entry is None:
            raise InputError(f"no key {kid!r} in the registry")
        revoked = replace(entry, revoked_at=moment)
        self.put(revoked)
        return revoked

    def to_text(self) -> str:
        """The export file: every entry, one JSON document."""
        body = {"format": REGISTRY_FORMAT, "keys": [e.to_json() for e in self.entries()]}
        return json.dumps(body, indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    @classmethod
    def from_text(cls, text: str, *, source: str = "key registry") -> KeyRegistry:
        try:
            body = json.loads(text)
        except ValueError as exc:
            raise InputError(f"{source}: not JSON ({exc})") from None
        if not isinstance(body, dict) or body.get("format") != REGISTRY_FORMAT:
            raise InputError(f"{source}: not a {REGISTRY_FORMAT} key registry")
        keys = body.get("keys")
        if not isinstance(keys, list):
            raise InputError(f"{source}: 'keys' must be a list")
        entries = []
        for index, item in enumerate(keys):
            try:
                entries.append(KeyEntry.from_json(item))
            except ValueError as exc:
                raise InputError(f"{source}: key {index}: {exc}") from None
        return cls(entries)

    @classmethod
    def load(cls, path: Path) -> KeyRegistry:
        try:
            text = path.expanduser().read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"key registry {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise InputError(f"key registry {path}: not UTF-8 text") from None
        return cls.from_text(text, source=str(path))
