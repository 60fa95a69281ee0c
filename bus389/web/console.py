"""The console's parts, built once per server: settings, stores, identities, mirrors, limits, templates."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import jinja2
from fastapi.templating import Jinja2Templates
from starlette.requests import Request
from starlette.responses import Response

from bus389.agencies import AGENCY_INFO, Agency
from bus389.routing.policy import Policy, load_policy
from bus389.settings import Settings
from bus389.web.errors import Refused
from bus389.web.identity import AgencyIdentities
from bus389.web.mirror import TopicMirror
from bus389.web.publishing import AgencyPublishers
from bus389.web.ratelimit import RateLimiter
from bus389.web.sessions import csrf_token, current_user
from bus389.web.store import WebStore
from bus389.web.tokens import TokenRegistry
from bus389.web.users import Role, User, UserDirectory

__all__ = ["ROLE_LABELS", "Console", "MirrorKind", "console_of", "require"]

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

MirrorKind = Literal["inbox", "outbox", "audit"]

ROLE_LABELS = {
    Role.CLERK: "Cán bộ nghiệp vụ",
    Role.OPERATOR: "Cán bộ vận hành",
    Role.VIEWER: "Người xem",
    Role.ADMIN: "Quản trị viên",
}


def _utc(epoch_s: float | None) -> str:
    """An instant (epoch seconds) as ``YYYY-MM-DD HH:MM UTC`` for the pages."""
    if epoch_s is None:
        return ""
    return datetime.fromtimestamp(float(epoch_s), UTC).strftime("%Y-%m-%d %H:%M UTC")


class Console:
    """Everything a request handler needs; :meth:`close` stops the mirrors and closes the store."""

    def __init__(self, settings: Settings, *, metrics_url: str | None = None) -> None:
        self.settings = settings
        web = settings.web
        self.store = WebStore(web.users_db.expanduser())
        self.users = UserDirectory(self.store, max_failed=web.max_failed_logins, lockout_s=web.lockout_s)
        self.tokens = TokenRegistry(self.store)
        self.identities = AgencyIdentities(settings)
        self.limiter = RateLimiter(web.api_rate_per_s, web.api_burst)
        self.publishers = AgencyPublishers(self.identities.settings_for, lambda: self.policy)
        self.metrics_url = metrics_url
        environment = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
            autoescape=True,  # every value is data, never markup: on in every template, not by suffix
        )
        self.templates = Jinja2Templates(env=environment)
        self.templates.env.globals["agency_name"] = lambda code: AGENCY_INFO[Agency(code)].name_vi
        self.templates.env.globals["role_labels"] = ROLE_LABELS
        self.templates.env.filters["utc"] = _utc
        self._mirrors: dict[tuple[Agency, MirrorKind], TopicMirror] = {}
        self._mirror_lock = threading.Lock()
        self._policy: Policy | None = None

    def close(self) -> None:
        with self._mirror_lock:
            mirrors, self._mirrors = list(self._mirrors.values()), {}
        for mirror in mirrors:
            mirror.stop()
        self.publishers.close()
        self.store.close()

    @property
    def policy(self) -> Policy:
        if self._policy is None:
            self._policy = load_policy(self.settings.router.policy_path)
        return self._policy

    def mirror(self, agency: Agency, kind: MirrorKind) -> TopicMirror:
        """The mirror of ``agency``'s inbox or outbox (or the audit trail, read as ``agency``)."""
        key = (agency, kind)
        with self._mirror_lock:
            if key not in self._mirrors:
                settings = self.identities.settings_for(agency)
                topics = settings.topics
                topic = {
                    "inbox": topics.inbox(agency),
                    "outbox": topics.outbox(agency),
                    "audit": topics.audit,
                }[kind]
                self._mirrors[key] = TopicMirror(settings, topic, keep=self.settings.web.inbox_keep_events)
            return self._mirrors[key]

    def user(self, request: Request) -> User:
        return current_user(request, self.users, self.settings.web.session_ttl_s)

    def page(
        self,
        request: Request,
        template: str,
        user: User | None,
        status: int = 200,
        headers: dict[str, str] | None = None,
        **context: Any,
    ) -> Response:
        """A page rendered from ``template`` (autoescaped), with the user and the form's CSRF token."""
        return self.templates.TemplateResponse(
            request,
            template,
            {"user": user, "csrf": csrf_token(request), "Role": Role, **context},
            status_code=status,
            headers=headers,
        )


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def require(user: User, *, agency: Agency | None = None, role: Role | None = None) -> None:
    """Refuse (403) a user of another agency than ``agency``, or one without ``role``."""
    if agency is not None and user.agency != agency:
        raise Refused(
            f"Trang này dành cho {AGENCY_INFO[agency].name_vi}; tài khoản của bạn thuộc "
            f"{AGENCY_INFO[user.agency].name_vi}.",
            status=403,
        )
    if role is not None and not user.has(role):
        raise Refused(f"Bạn không có quyền {ROLE_LABELS[role].lower()} cho thao tác này.", status=403)
