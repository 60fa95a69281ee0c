"""The ICT operator's pages: pending domain-block requests with their screening, approve or reject,
leads to inspect, the blocklist and its files.

Decisions go through :class:`bus389.consumers.ict.decisions.Decider` on the ICT store, exactly as
``bus389 ict approve|reject`` do: the running ``bus389 serve ict`` then rewrites the blocklist files
and publishes the ``domain_block_result``. The downloads are the files that service wrote.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form
from fastapi.responses import RedirectResponse, Response
from starlette.requests import Request

from bus389.agencies import Agency
from bus389.consumers.ict.blocklist import active_entries, blocklist_files
from bus389.consumers.ict.decisions import Decider
from bus389.consumers.ict.store import IctStore, LeadState, RequestState, open_store
from bus389.errors import InputError
from bus389.web.actions import log_action
from bus389.web.console import Console, console_of, require
from bus389.web.errors import Refused
from bus389.web.sessions import CSRF_FIELD, check_csrf
from bus389.web.users import Role, User

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

_DOWNLOADS = {"rpz": "text/dns", "txt": "text/plain", "csv": "text/csv"}


def _iso(ms: int | None) -> str:
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


@contextmanager
def _store(console: Console) -> Iterator[IctStore]:
    with open_store(console.settings.store.ict_url) as store:
        yield store


def _ict_user(console: Console, request: Request) -> User:
    user = console.user(request)
    require(user, agency=Agency.ICT)
    return user


@router.get("/ict")
def pending_page(request: Request, message: str = "") -> Any:
    console = console_of(request)
    user = _ict_user(console, request)
    with _store(console) as store:
        pending = []
        for row in store.requests(RequestState.PENDING):
            pending.append(
                {
                    "row": row,
                    "received": _iso(row.received_at),
                    "expires": _iso(row.expires_at),
                    "accepted": [(t.kind, t.value) for t in store.targets(row.key)],
                    "refused": store.refusals(row.key),
                }
            )
        decided = [r for r in store.requests() if r.state != RequestState.PENDING][-20:]
        leads = store.leads(LeadState.NEW)
    return console.page(
        request,
        "ict.html",
        user,
        pending=pending,
        decided=list(reversed(decided)),
        leads=leads,
        iso=_iso,
        message=message[:300],
    )


def _decide(request: Request, verb: str, request_id: str, requester: str, text: str, csrf_token: str) -> Any:
    console = console_of(request)
    user = _ict_user(console, request)
    check_csrf(request, csrf_token)
    require(user, role=Role.OPERATOR)
    with _store(console) as store:
        decider = Decider(store, console.settings)
        # Only a full id from the page: a prefix could name a request the operator did not see. The page
        # sends the requester too: two agencies' requests under one id are two requests.
        sender = requester.strip() or None
        found = [
            r
            for r in store.requests_with_id(request_id.strip().lower())
            if sender is None or r.requester == sender
        ]
        if not found:
            raise Refused(f"Không có yêu cầu {request_id[:64]!r} trong kho của Sở TT&TT.", status=404)
        actor = f"web:{user.username}"
        try:
            if verb == "approve":
                row, outcome = decider.approve(
                    request_id, actor=actor, note=text.strip() or None, requester=sender
                )
                message = f"Đã duyệt yêu cầu {row.event_id} ({outcome})."
            else:
                row = decider.reject(request_id, actor=actor, reason=text, requester=sender)
                message = f"Đã từ chối yêu cầu {row.event_id}."
        except InputError as exc:
            log_action(user.username, user.agency.value, f"ict.{verb}", "refused", request_id=request_id)
            raise Refused(str(exc), status=409, reason="input") from exc
    log_action(user.username, user.agency.value, f"ict.{verb}", request_id=row.event_id)
    return RedirectResponse(f"/ict?message={quote(message)}", status_code=303)


@router.post("/ict/requests/{request_id}/approve")
def approve(
    request: Request,
    request_id: str,
    note: Annotated[str, Form(max_length=2000)] = "",
    requester: Annotated[str, Form(max_length=64)] = "",
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD)] = "",
) -> Any:
    return _decide(request, "approve", request_id, requester, note, csrf_token)


@router.post("/ict/requests/{request_id}/reject")
def reject(
    request: Request,
    request_id: str,
    reason: Annotated[str, Form(max_length=2000)] = "",
    requester: Annotated[str, Form(max_length=64)] = "",
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD)] = "",
) -> Any:
    return _decide(request, "reject", request_id, requester, reason, csrf_token)


@router.get("/ict/blocklist")
def blocklist_page(request: Request) -> Any:
    console = console_of(request)
    user = _ict_user(console, request)
    with _store(console) as store:
        entries = active_entries(store)
    files = blocklist_files(console.settings.ict.output_dir.expanduser(), console.settings.ict.rpz_zone)
    return console.page(
        request,
        "blocklist.html",
        user,
        entries=entries,
        iso=_iso,
        rpz_present=files.rpz.is_file(),
        zone=console.settings.ict.rpz_zone,
    )


@router.get("/ict/blocklist.{fmt}")
def download(request: Request, fmt: str) -> Response:
    console = console_of(request)
    _ict_user(console, request)
    if fmt not in _DOWNLOADS:
        raise Refused("Chỉ có các định dạng rpz, txt, csv.", status=404, reason="input")
    files = blocklist_files(console.settings.ict.output_dir.expanduser(), console.settings.ict.rpz_zone)
    path = {"rpz": files.rpz, "txt": files.txt, "csv": files.csv}[fmt]
    if not path.is_file():
        raise Refused("Dịch vụ ICT (bus389 serve ict) chưa ghi danh sách chặn.", status=404, reason="input")
    name = path.name
    return Response(
        path.read_bytes(),
        media_type=_DOWNLOADS[fmt] + "; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
