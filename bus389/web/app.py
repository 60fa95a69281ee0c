"""The application factory: the FastAPI app of the console and the API, with its security middleware."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request

from bus389 import metrics
from bus389.errors import BusError, InputError
from bus389.settings import Settings
from bus389.web.actions import log_action
from bus389.web.console import Console
from bus389.web.errors import Refused
from bus389.web.sessions import SESSION_COOKIE, load_session_secret

__all__ = ["create_app"]

log = logging.getLogger(__name__)

_SECURITY_HEADERS = {
    # Every page is self-contained: no script, style or image from anywhere but this server.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _status_class(status: int) -> str:
    return f"{status // 100}xx"


def create_app(settings: Settings, *, metrics_url: str | None = None) -> FastAPI:
    """The console for ``settings``; its parts start with the app and stop with it."""
    from pathlib import Path

    from bus389.web import api
    from bus389.web.pages import admin, auth, ict, inbox, report, tax

    console = Console(settings, metrics_url=metrics_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            console.close()

    app = FastAPI(
        title="bus389 — API cho hệ thống của các cơ quan thành viên",
        version="1",
        lifespan=lifespan,
        docs_url=None,  # Swagger UI would fetch JavaScript from a CDN: the document alone is served
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )
    app.state.console = console
    app.add_middleware(
        SessionMiddleware,
        secret_key=load_session_secret(settings.web.session_secret_file),
        session_cookie=SESSION_COOKIE,
        max_age=settings.web.session_ttl_s,
        same_site="strict",
        https_only=False,  # served on loopback; a TLS proxy in front should set Secure itself
    )

    @app.middleware("http")
    async def headers_and_metrics(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        for name, value in _SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        route = request.scope.get("route")
        template = getattr(route, "path", "unmatched")
        metrics.WEB_REQUESTS.labels(template, _status_class(response.status_code)).inc()
        return response

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> Response:
        metrics.WEB_REFUSED.labels(exc.reason).inc()
        who = request.session.get("u", "-") if "session" in request.scope else "-"
        log_action(
            str(who),
            "-",
            f"{request.method} {request.url.path}",
            "refused",
            reason=exc.reason,
            status=exc.status,
        )
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": str(exc)}, status_code=exc.status, headers=exc.headers)
        user = None
        if exc.status != 401:
            try:
                user = console.user(request)
            except Refused:
                user = None
        template = "login.html" if exc.status == 401 else "error.html"
        return console.page(request, template, user, status=exc.status, message=str(exc), headers=exc.headers)

    @app.exception_handler(BusError)
    async def bus_error(request: Request, exc: BusError) -> Response:
        status = 422 if isinstance(exc, InputError) else 503
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": str(exc)}, status_code=status)
        try:
            user = console.user(request)
        except Refused:
            user = None
        return console.page(request, "error.html", user, status=status, message=str(exc))

    app.mount(
        "/static", StaticFiles(directory=str(Path(__file__).resolve().parent / "static")), name="static"
    )
    for module in (auth, tax, ict, inbox, report, admin):
        app.include_router(module.router)
    app.include_router(api.router)
    return app
