"""The console's users and their passwords: one agency and some roles each, argon2id hashes, lock-out.

A user signs in with a password hashed by argon2id (``argon2-cffi``'s defaults, memory-hard); after
``max_failed_logins`` wrong passwords in a row the account is locked for ``lockout_s`` seconds, and a
locked or disabled account is refused even with the right password.
"""

from __future__ import annotations

import re
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from bus389.agencies import Agency
from bus389.errors import InputError
from bus389.web.store import WebStore

__all__ = [
    "LoginResult",
    "Role",
    "User",
    "UserDirectory",
    "check_password_strength",
    "generate_password",
    "parse_roles",
]

_HASHER = PasswordHasher()
_DUMMY_HASH = _HASHER.hash("bus389: a password nobody has")
"""Verified against when the user does not exist, so that the answer takes as long either way."""

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._\-]{1,62}$")
MIN_PASSWORD_LENGTH = 12


class Role(StrEnum):
    """What a user may do: a clerk publishes, an operator decides, a viewer reads, an admin manages."""

    CLERK = "clerk"
    OPERATOR = "operator"
    VIEWER = "viewer"
    ADMIN = "admin"


def parse_roles(text: str) -> tuple[Role, ...]:
    """``clerk,viewer`` → the roles; an :class:`InputError` naming an unknown one."""
    roles: list[Role] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            role = Role(part)
        except ValueError:
            valid = ", ".join(r.value for r in Role)
            raise InputError(f"unknown role {part!r}: use one or more of {valid}") from None
        if role not in roles:
            roles.append(role)
    if not roles:
        raise InputError("a user needs at least one role (clerk, operator, viewer, admin)")
    return tuple(roles)


def generate_password() -> str:
    """A random password of 20 URL-safe characters (about 120 bits)."""
    return secrets.token_urlsafe(15)


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InputError(f"the password is too short: at least {MIN_PASSWORD_LENGTH} characters")


@dataclass(frozen=True)
class User:
    username: str
    agency: Agency
    roles: tuple[Role, ...]
    disabled: bool
    failed_logins: int
    locked_until: float
    password_changed_at: float

    def has(self, role: Role) -> bool:
        return role in self.roles


@dataclass(frozen=True)
class LoginResult:
    """The outcome of a sign-in: ``user`` when it succeeded, else the metric label and the message."""

    user: User | None
    outcome: str
    message: str = ""


def _user(row: sqlite3.Row) -> User:
    return User(
        username=row["username"],
        agency=Agency(row["agency"]),
        roles=tuple(Role(r) for r in row["roles"].split(",") if r),
        disabled=bool(row["disabled"]),
        failed_logins=int(row["failed_logins"]),
        locked_until=float(row["locked_until"]),
        password_changed_at=float(row["password_changed_at"]),
    )


class UserDirectory:
    """The users of one :class:`WebStore`; ``clock`` returns epoch seconds."""

    def __init__(
        self,
        store: WebStore,
        *,
        max_failed: int = 5,
        lockout_s: float = 900.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.max_failed = max_failed
        self.lockout_s = lockout_s
        self.clock = clock

    def get(self, username: str) -> User | None:
        rows = self.store.query("SELECT * FROM users WHERE username = ?", (username,))
        return _user(rows[0]) if rows else None

    def all(self) -> list[User]:
        return [_user(r) for r in self.store.query("SELECT * FROM users ORDER BY agency, username")]

    def add(self, username: str, agency: Agency, roles: tuple[Role, ...], password: str) -> User:
        if not USERNAME.match(username):
            raise InputError(
                f"user name {username!r}: 2-63 characters, lower-case letters, digits, '.', '_' or '-'"
            )
        check_password_strength(password)
        now = self.clock()
        try:
            self.store.execute(
                "INSERT INTO users (username, agency, roles, password_hash, password_changed_at, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (username, agency.value, ",".join(r.value for r in roles), _HASHER.hash(password), now, now),
            )
        except sqlite3.IntegrityError:
            raise InputError(
                f"user {username!r} already exists (change the password with `passwd`)"
            ) from None
        user = self.get(username)
        assert user is not None  # noqa: S101 - inserted just above
        return user

    def set_password(self, username: str, password: str) -> None:
        """A new password; it also lifts a lock-out (an admin reset it)."""
        check_password_strength(password)
        changed = self.store.execute(
            "UPDATE users SET password_hash = ?, failed_logins = 0, locked_until = 0, password_changed_at = ?"
            " WHERE username = ?",
            (_HASHER.hash(password), self.clock(), username),
        )
        if not changed:
            raise InputError(f"no user {username!r}")

    def set_disabled(self, username: str, disabled: bool = True) -> None:
        changed = self.store.execute(
            "UPDATE users SET disabled = ? WHERE username = ?", (int(disabled), username)
        )
        if not changed:
            raise InputError(f"no user {username!r}")

    def authenticate(self, username: str, password: str) -> LoginResult:
        """Check a sign-in; counts a wrong password, locks after ``max_failed`` in a row."""
        rows = self.store.query("SELECT * FROM users WHERE username = ?", (username,))
        if not rows:
            _verify(_DUMMY_HASH, password)
            return LoginResult(None, "bad_password", "Sai tên đăng nhập hoặc mật khẩu.")
        row = rows[0]
        user = _user(row)
        now = self.clock()
        if user.disabled:
            return LoginResult(None, "disabled", "Tài khoản đã bị vô hiệu hóa: liên hệ quản trị viên.")
        if user.locked_until > now:
            minutes = max(1, round((user.locked_until - now) / 60))
            return LoginResult(
                None, "locked", f"Tài khoản tạm khóa do đăng nhập sai nhiều lần: thử lại sau {minutes} phút."
            )
        if not _verify(row["password_hash"], password):
            failed = user.failed_logins + 1
            locked_until = now + self.lockout_s if failed >= self.max_failed else 0.0
            self.store.execute(
                "UPDATE users SET failed_logins = ?, locked_until = ? WHERE username = ?",
                (0 if locked_until else failed, locked_until, username),
            )
            if locked_until:
                return LoginResult(
                    None, "locked", "Tài khoản tạm khóa do đăng nhập sai nhiều lần: thử lại sau."
                )
            return LoginResult(None, "bad_password", "Sai tên đăng nhập hoặc mật khẩu.")
        self.store.execute(
            "UPDATE users SET failed_logins = 0, locked_until = 0 WHERE username = ?", (username,)
        )
        if _HASHER.check_needs_rehash(row["password_hash"]):
            self.store.execute(
                "UPDATE users SET password_hash = ? WHERE username = ?", (_HASHER.hash(password), username)
            )
        return LoginResult(self.get(username), "ok")


def _verify(stored: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False
