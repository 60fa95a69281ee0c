"""The admin's pages: the users of the admin's agency, the routing policy (read-only), the metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request

from bus389.web.console import console_of, require
from bus389.web.users import Role

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.get("/admin")
def admin_page(request: Request) -> Any:
    console = console_of(request)
    user = console.user(request)
    require(user, role=Role.ADMIN)
    # An admin manages the users and tokens of their own agency only.
    users = [u for u in console.users.all() if u.agency == user.agency]
    tokens = [t for t in console.tokens.all() if t.agency == user.agency]
    policy = console.policy
    return console.page(
        request,
        "admin.html",
        user,
        users=users,
        tokens=tokens,
        rules=policy.rules,
        personal_data=policy.personal_data,
        metrics_url=console.metrics_url,
        secure=console.identities.secure,
    )
