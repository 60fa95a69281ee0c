"""Sessions and CSRF: who is signed in, since when, and the token every form must carry back.

The session lives in a cookie signed with the console's key (Starlette's ``SessionMiddleware`` on
``itsdangerous``), ``HttpOnly`` and ``SameSite=Strict``. It holds the user name, the last request's
time and a random CSRF token; it ends ``session_ttl_s`` after the last request, when the user is
disabled, or when the password changed after it began.
"""

from __future__ import annotations

import hmac
import secrets
import time
from pathlib import Path
from typing import Any

from starlette.requests import Request

from bus389.config_file import write_private_file
from bus389.errors import ConfigError
from bus389.web.errors import Refused
from bus389.web.users import User, UserDirectory

__all__ = [
    "CSRF_FIELD",
    "SESSION_COOKIE",
    "check_csrf",
    "csrf_token",
    "current_user",
    "load_session_secret",
    "sign_in",
    "sign_out",
]

SESSION_COOKIE = "bus389_session"
CSRF_FIELD = "csrf_token"


def load_session_secret(path: Path) -> str:
    """The key that signs session cookies: read from ``path``, created there (0600) when missing."""
    path = path.expanduser()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private_file(path, secrets.token_urlsafe(48) + "\n")
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise ConfigError(f"{path}: the session key must be readable by its owner only (chmod 600 {path})")
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the session key {path}: {exc.strerror}") from exc
    if len(secret) < 32:
        raise ConfigError(f"{path}: the session key is too short (at least 32 characters)")
    return secret


def _session(request: Request) -> dict[str, Any]:
    session: dict[str, Any] = request.session
    return session


def sign_in(request: Request, user: User) -> None:
    """Start a fresh session for ``user`` (a new CSRF token: nothing from before the sign-in is kept)."""
    session = _session(request)
    session.clear()
    session.update(
        {"u": user.username, "t": time.time(), "since": time.time(), "csrf": secrets.token_urlsafe(32)}
    )


def sign_out(request: Request) -> None:
    _session(request).clear()


def csrf_token(request: Request) -> str:
    """The session's CSRF token (one is made for a visitor not signed in, for the sign-in form)."""
    session = _session(request)
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def check_csrf(request: Request, submitted: object) -> None:
    """Refuse a form whose CSRF token is missing or not the session's."""
    expected = _session(request).get("csrf")
    if not isinstance(submitted, str) or not submitted:
        raise Refused("Thiếu mã chống giả mạo (CSRF): tải lại trang rồi gửi lại.", status=403, reason="csrf")
    if not isinstance(expected, str) or not hmac.compare_digest(expected, submitted):
        raise Refused(
            "Mã chống giả mạo (CSRF) không đúng: tải lại trang rồi gửi lại.", status=403, reason="csrf"
        )


def current_user(request: Request, users: UserDirectory, ttl_s: float) -> User:
    """The signed-in user, or :class:`Refused` (401) when there is none or the session ended."""
    session = _session(request)
    username = session.get("u")
    if not isinstance(username, str):
        raise Refused("Vui lòng đăng nhập.", status=401, reason="session")
    now = time.time()
    last = session.get("t")
    if not isinstance(last, int | float) or now - last > ttl_s:
        session.clear()
        raise Refused("Phiên làm việc đã hết hạn: vui lòng đăng nhập lại.", status=401, reason="session")
    user = users.get(username)
    since = session.get("since")
    if (
        user is None
        or user.disabled
        or not isinstance(since, int | float)
        or user.password_changed_at > since
    ):
        session.clear()
        raise Refused(
            "Phiên làm việc không còn hiệu lực: vui lòng đăng nhập lại.", status=401, reason="session"
        )
    session["t"] = now
    return user
