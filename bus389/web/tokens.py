"""Per-agency API tokens for the agencies' systems: random secrets, stored only as hashes, with scopes.

A token is ``b389_<id>_<secret>``; the store keeps the id and the SHA-256 of the secret (a 256-bit
random secret needs no slow hash: nothing to guess), its agency, its scopes and when it was revoked.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum

from bus389.agencies import Agency
from bus389.errors import InputError
from bus389.web.store import WebStore

__all__ = ["ApiToken", "Scope", "TokenRegistry", "parse_scopes"]

_PREFIX = "b389_"


class Scope(StrEnum):
    PUBLISH = "publish"
    """``POST /api/v1/events/...`` from the token's agency's outbox."""
    READ = "read"
    """``GET /api/v1/inbox`` of the token's agency."""


def parse_scopes(text: str) -> tuple[Scope, ...]:
    scopes: list[Scope] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            scopes.append(Scope(part))
        except ValueError:
            raise InputError(f"unknown scope {part!r}: use publish, read or both") from None
    if not scopes:
        raise InputError("a token needs at least one scope (publish, read)")
    return tuple(dict.fromkeys(scopes))


@dataclass(frozen=True)
class ApiToken:
    token_id: str
    agency: Agency
    name: str
    scopes: tuple[Scope, ...]
    revoked: bool


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class TokenRegistry:
    """The API tokens of one :class:`WebStore`."""

    def __init__(self, store: WebStore) -> None:
        self.store = store

    def issue(self, agency: Agency, name: str, scopes: tuple[Scope, ...]) -> tuple[ApiToken, str]:
        """A new token; returns it and the token text, shown once and never stored."""
        token_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        self.store.execute(
            "INSERT INTO tokens (token_id, agency, name, secret_hash, scopes, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (token_id, agency.value, name, _digest(secret), ",".join(s.value for s in scopes), time.time()),
        )
        return ApiToken(token_id, agency, name, scopes, False), f"{_PREFIX}{token_id}_{secret}"

    def revoke(self, token_id: str) -> None:
        changed = self.store.execute(
            "UPDATE tokens SET revoked_at = ? WHERE token_id = ? AND revoked_at IS NULL",
            (time.time(), token_id),
        )
        if not changed:
            raise InputError(f"no active token {token_id!r} (see `bus389 web token list`)")

    def all(self) -> list[ApiToken]:
        return [
            ApiToken(
                r["token_id"],
                Agency(r["agency"]),
                r["name"],
                tuple(Scope(s) for s in r["scopes"].split(",")),
                r["revoked_at"] is not None,
            )
            for r in self.store.query("SELECT * FROM tokens ORDER BY agency, created_at")
        ]

    def verify(self, text: str) -> ApiToken | None:
        """The token ``text`` names (check ``revoked``), or None (unknown, malformed, wrong secret)."""
        if not text.startswith(_PREFIX):
            return None
        token_id, sep, secret = text[len(_PREFIX) :].partition("_")
        if not sep or not token_id or not secret:
            return None
        rows = self.store.query("SELECT * FROM tokens WHERE token_id = ?", (token_id,))
        if not rows or not hmac.compare_digest(rows[0]["secret_hash"], _digest(secret)):
            return None
        row = rows[0]
        scopes = tuple(Scope(s) for s in row["scopes"].split(","))
        return ApiToken(
            row["token_id"], Agency(row["agency"]), row["name"], scopes, row["revoked_at"] is not None
        )
