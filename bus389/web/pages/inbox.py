"""Every agency's inbox (newest first, searchable, each event with why it came and what was removed)
and outbox (each event's delivery status from the audit trail).

What the router decided travels with each inbox copy in its ``bus389_rule``, ``bus389_plan_section``
and ``bus389_redacted`` headers (contract); the page adds the rule's description from the policy.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterator, Mapping
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request

from bus389.web.console import console_of
from bus389.web.errors import Refused
from bus389.web.mirror import MirroredEvent

__all__ = ["explanation", "matches", "router", "search_keys"]

router = APIRouter(include_in_schema=False)


def _fold(text: str) -> str:
    return unicodedata.normalize("NFC", text).casefold()


def search_keys(record: Mapping[str, Any]) -> Iterator[str]:
    """What the inbox search looks at: the case, tax codes, domains, URLs, sellers and accounts."""
    meta = record.get("meta")
    if isinstance(meta, Mapping) and meta.get("case_ref"):
        yield str(meta["case_ref"])
    seller = record.get("seller")
    if isinstance(seller, Mapping):
        for key in ("name", "tax_code", "phone", "national_id"):
            if seller.get(key):
                yield str(seller[key])
    for key in ("domains", "urls", "evidence_urls"):
        values = record.get(key)
        if isinstance(values, list):
            yield from (str(v) for v in values if v)
    accounts = record.get("accounts")
    if isinstance(accounts, list):
        for account in accounts:
            if isinstance(account, Mapping):
                yield from (str(account[k]) for k in ("account", "url") if account.get(k))


def matches(record: Mapping[str, Any], query: str) -> bool:
    wanted = _fold(query.strip())
    return not wanted or any(wanted in _fold(key) for key in search_keys(record))


def explanation(event: MirroredEvent, descriptions: Mapping[str, str]) -> dict[str, Any]:
    rule = event.headers.get("bus389_rule", "")
    redacted = [f for f in event.headers.get("bus389_redacted", "").split(",") if f]
    return {
        "rule": rule,
        "plan_section": event.headers.get("bus389_plan_section", ""),
        "description": descriptions.get(rule, ""),
        "redacted": redacted,
    }


def _summary(record: Mapping[str, Any]) -> str:
    seller = record.get("seller")
    parts = []
    if isinstance(seller, Mapping) and seller.get("name"):
        parts.append(str(seller["name"]))
    for key in ("summary", "reason", "subject", "title"):
        if record.get(key):
            parts.append(str(record[key]))
            break
    domains = record.get("domains")
    if isinstance(domains, list) and domains:
        parts.append(", ".join(str(d) for d in domains[:3]))
    return " — ".join(parts)


@router.get("/inbox")
def inbox_page(request: Request, q: str = "") -> Any:
    console = console_of(request)
    user = console.user(request)
    mirror = console.mirror(user.agency, "inbox")
    mirror.caught_up.wait(timeout=5.0)
    descriptions = {rule.id: rule.description for rule in console.policy.rules}
    q = q[:200]
    events = [
        {"event": e, "summary": _summary(e.record), "why": explanation(e, descriptions)}
        for e in mirror.newest_first()
        if matches(e.record, q)
    ][:500]
    return console.page(request, "inbox.html", user, events=events, q=q, error=mirror.error)


@router.get("/inbox/{event_id}")
def inbox_event(request: Request, event_id: str) -> Any:
    console = console_of(request)
    user = console.user(request)
    mirror = console.mirror(user.agency, "inbox")
    mirror.caught_up.wait(timeout=5.0)
    event = mirror.find(event_id[:64])
    if event is None:
        # An id from another agency's inbox looks exactly like one that does not exist.
        raise Refused(f"Không có sự kiện {event_id[:64]!r} trong hộp thư của cơ quan bạn.", status=404)
    descriptions = {rule.id: rule.description for rule in console.policy.rules}
    return console.page(
        request,
        "event.html",
        user,
        event=event,
        why=explanation(event, descriptions),
        body=json.dumps(event.record, ensure_ascii=False, indent=2),
    )


@router.get("/outbox")
def outbox_page(request: Request) -> Any:
    console = console_of(request)
    user = console.user(request)
    outbox = console.mirror(user.agency, "outbox")
    audit = console.mirror(user.agency, "audit")
    outbox.caught_up.wait(timeout=5.0)
    audit.caught_up.wait(timeout=5.0)
    routed = {a.event_id: a.record for a in audit.newest_first()}
    rows = []
    for event in outbox.newest_first()[:500]:
        record = routed.get(event.event_id)
        rows.append(
            {
                "event": event,
                "summary": _summary(event.record),
                "deliveries": record.get("deliveries", []) if record else None,
                "withheld": record.get("withheld", []) if record else [],
                "routed_at": record.get("routed_at") if record else None,
            }
        )
    return console.page(request, "outbox.html", user, rows=rows, error=outbox.error, audit_error=audit.error)
