"""The admin's page: the users and tokens of the admin's agency, the routing policy and the rights on the
bus (read-only), the link to the metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request

from bus389.security.acl import client_principals, derive_acl_spec, topic_matrix
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
    # The rights on the bus, as the brokers' ACLs grant them (the same matrix as `bus389 security show`).
    principals = client_principals()
    rights = topic_matrix(derive_acl_spec(console.settings.topic_prefix), console.settings.topics, principals)
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
        principals=principals,
        rights=rights,
    )
