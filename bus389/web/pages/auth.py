"""Signing in and out, and the home page that sends each person to their pages."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form
from fastapi.responses import RedirectResponse
from starlette.requests import Request

from bus389 import metrics
from bus389.agencies import STANDING_OFFICE, Agency
from bus389.web.actions import log_action
from bus389.web.console import console_of
from bus389.web.errors import Refused
from bus389.web.sessions import CSRF_FIELD, check_csrf, sign_in, sign_out

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.get("/login")
def login_form(request: Request) -> Any:
    return console_of(request).page(request, "login.html", None)


@router.post("/login")
def login(
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=200)] = "",
) -> Any:
    console = console_of(request)
    check_csrf(request, csrf_token)
    result = console.users.authenticate(username.strip(), password)
    metrics.WEB_LOGINS.labels(result.outcome).inc()
    if result.user is None:
        log_action(username.strip()[:64], "-", "login", result.outcome)
        return console.page(request, "login.html", None, status=401, message=result.message)
    sign_in(request, result.user)
    log_action(result.user.username, result.user.agency.value, "login")
    return RedirectResponse("/", status_code=303)


@router.post("/logout")
def logout(request: Request, csrf_token: Annotated[str, Form(alias=CSRF_FIELD)] = "") -> Any:
    console = console_of(request)
    user = console.user(request)
    check_csrf(request, csrf_token)
    sign_out(request)
    log_action(user.username, user.agency.value, "logout")
    return RedirectResponse("/login", status_code=303)


@router.get("/")
def home(request: Request) -> Any:
    console = console_of(request)
    try:
        user = console.user(request)
    except Refused:
        return RedirectResponse("/login", status_code=303)
    return console.page(
        request,
        "home.html",
        user,
        is_tax=user.agency == Agency.TAX,
        is_ict=user.agency == Agency.ICT,
        is_standing_office=user.agency == STANDING_OFFICE,
    )
