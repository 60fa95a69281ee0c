"""The HTTP API for the agencies' systems: publish events, read the inbox; per-agency tokens and limits.

``POST /api/v1/events/{event_type}`` takes one event (a JSON object) or a batch (an array) and
publishes it from the token's agency's outbox (:mod:`bus389.web.publishing`): the same validation as
``bus389 publish``, all or nothing, one Kafka transaction. An
``Idempotency-Key`` header makes a retried POST publish once: the first answer is stored and given
again (a key reused with another body is refused). ``GET /api/v1/inbox`` pages through the agency's
inbox with a cursor and waits up to ``wait`` seconds for something new (long polling).
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from bus389.errors import InputError, InvalidRecordsError, RecordError
from bus389.producers.readers import SourceRecord, read_records
from bus389.web.actions import log_action
from bus389.web.console import Console, console_of
from bus389.web.errors import Refused
from bus389.web.mirror import decode_cursor, encode_cursor
from bus389.web.tokens import ApiToken, Scope

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["bus389"])

_MAX_KEY = 200


class Published(BaseModel):
    """What a POST committed to the agency's outbox."""

    published: int
    topic: str
    event_ids: list[str]


class Problem(BaseModel):
    error: str
    problems: list[str] = []


class InboxEvent(BaseModel):
    event_type: str
    partition: int
    offset: int
    event: dict[str, Any]
    rule: str
    plan_section: str
    redacted: list[str]


class InboxPage(BaseModel):
    events: list[InboxEvent]
    next_cursor: str


def _token(console: Console, authorization: str | None, scope: Scope) -> ApiToken:
    """The request's token, checked: known, not revoked, holding ``scope``, under its agency's rate."""
    scheme, _, text = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not text.strip():
        raise Refused(
            "missing API token: send 'Authorization: Bearer <token>'",
            status=401,
            reason="token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    token = console.tokens.verify(text.strip())
    if token is None:
        raise Refused("invalid API token", status=401, reason="token", headers={"WWW-Authenticate": "Bearer"})
    if token.revoked:
        raise Refused(
            f"API token {token.token_id} was revoked",
            status=401,
            reason="token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if scope not in token.scopes:
        raise Refused(
            f"API token {token.token_id} lacks the {scope.value!r} scope", status=403, reason="token"
        )
    wait = console.limiter.take(token.agency.value)
    if wait:
        raise Refused(
            f"rate limit of {token.agency.value} exceeded: retry after {wait} s",
            status=429,
            reason="rate_limit",
            headers={"Retry-After": str(wait)},
        )
    return token


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Refused(
            f"request body over {limit} bytes (settings web.api_max_body_bytes)", status=413, reason="upload"
        )
    data = bytearray()
    async for chunk in request.stream():
        data.extend(chunk)
        if len(data) > limit:
            raise Refused(
                f"request body over {limit} bytes (settings web.api_max_body_bytes)",
                status=413,
                reason="upload",
            )
    return bytes(data)


@router.post(
    "/events/{event_type}",
    status_code=201,
    response_model=Published,
    responses={
        401: {"model": Problem},
        403: {"model": Problem},
        409: {"model": Problem},
        413: {"model": Problem},
        422: {"model": Problem},
        429: {"model": Problem},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            {
                                "type": "object",
                                "description": "one event (its fields as in the event's schema)",
                            },
                            {
                                "type": "array",
                                "items": {"type": "object"},
                                "description": "a batch, all or nothing",
                            },
                        ]
                    }
                }
            },
        }
    },
)
async def post_events(
    request: Request,
    event_type: str,
    authorization: Annotated[str | None, Header()] = None,
    idempotency_key: Annotated[str | None, Header(max_length=_MAX_KEY)] = None,
) -> Any:
    """Publish one event or a batch from the token's agency's outbox (all or nothing)."""
    console = console_of(request)
    token = _token(console, authorization, Scope.PUBLISH)
    body = await _body(request, console.settings.web.api_max_body_bytes)
    digest = hashlib.sha256(event_type.encode() + b"\0" + body).hexdigest()
    agency = token.agency.value
    if idempotency_key is not None:
        replay = _reserve(console, agency, idempotency_key, digest)
        if replay is not None:
            return replay
    try:
        status, answer = await run_in_threadpool(_publish, console, token, event_type, body)
    except BaseException:
        if idempotency_key is not None:
            console.store.execute(
                "DELETE FROM idempotency WHERE agency = ? AND key = ?", (agency, idempotency_key)
            )
        raise
    if idempotency_key is not None:
        if status == 201 or status == 422:
            console.store.execute(
                "UPDATE idempotency SET status = ?, body = ? WHERE agency = ? AND key = ?",
                (status, json.dumps(answer, ensure_ascii=False), agency, idempotency_key),
            )
        else:
            console.store.execute(
                "DELETE FROM idempotency WHERE agency = ? AND key = ?", (agency, idempotency_key)
            )
    return JSONResponse(answer, status_code=status)


def _reserve(console: Console, agency: str, key: str, digest: str) -> JSONResponse | None:
    """Claim ``key`` for this request, or the stored answer of the request that claimed it first."""
    if not key.strip() or not key.isprintable():
        raise Refused("Idempotency-Key: 1-200 printable characters", status=422, reason="input")
    with console.store.transaction() as store:
        rows = store.query("SELECT * FROM idempotency WHERE agency = ? AND key = ?", (agency, key))
        if not rows:
            store.execute(
                "INSERT INTO idempotency (agency, key, request_hash, created_at) VALUES (?, ?, ?, ?)",
                (agency, key, digest, time.time()),
            )
            return None
    row = rows[0]
    if row["request_hash"] != digest:
        raise Refused("Idempotency-Key already used for another request", status=422, reason="input")
    if row["status"] is None:
        raise Refused(
            "a request with this Idempotency-Key is still being published: retry later",
            status=409,
            reason="input",
            headers={"Retry-After": "1"},
        )
    return JSONResponse(
        json.loads(row["body"]), status_code=int(row["status"]), headers={"Idempotent-Replayed": "true"}
    )


def _records(body: bytes, limit: int) -> list[SourceRecord]:
    """The body's events, read as ``bus389 publish`` reads a JSON file (line numbers and all)."""
    if not body.strip():
        raise InputError("request body: empty (send one JSON object, or an array of them)")
    records = read_records("-", fmt="json", stdin=io.BytesIO(body))
    if len(records) > limit:
        raise InputError(
            f"request body: {len(records)} events, over the batch limit of {limit} "
            "(settings web.api_max_batch_events)"
        )
    return records


def _publish(console: Console, token: ApiToken, event_type: str, body: bytes) -> tuple[int, dict[str, Any]]:
    source = "request body"
    try:
        records = _records(body, console.settings.web.api_max_batch_events)
        topic, committed = console.publishers.publish(token.agency, event_type, records, source=source)
    except InvalidRecordsError as exc:
        log_action(
            f"token:{token.token_id}", token.agency.value, "api.publish", "invalid", event_type=event_type
        )
        return 422, {"error": str(exc).split("\n", 1)[0], "problems": exc.problem_lines}
    except (RecordError, InputError) as exc:
        log_action(
            f"token:{token.token_id}", token.agency.value, "api.publish", "invalid", event_type=event_type
        )
        return 422, {"error": str(exc), "problems": []}
    ids = list(committed.event_ids)
    log_action(
        f"token:{token.token_id}",
        token.agency.value,
        "api.publish",
        event_type=event_type,
        published=len(ids),
    )
    return 201, {"published": len(ids), "topic": topic, "event_ids": ids}


@router.get("/inbox", response_model=InboxPage, responses={401: {"model": Problem}, 429: {"model": Problem}})
def get_inbox(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    cursor: Annotated[str | None, Query(max_length=4000)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    wait: Annotated[float, Query(ge=0, le=60)] = 0.0,
) -> Any:
    """The token's agency's inbox after ``cursor`` (oldest first); waits up to ``wait`` s for news."""
    console = console_of(request)
    token = _token(console, authorization, Scope.READ)
    position = decode_cursor(cursor)
    mirror = console.mirror(token.agency, "inbox")
    mirror.caught_up.wait(timeout=5.0)
    events, nxt = mirror.after(position, limit=limit, wait_s=min(wait, console.settings.web.long_poll_max_s))
    return {
        "events": [
            {
                "event_type": e.event_type,
                "partition": e.partition,
                "offset": e.offset,
                "event": e.record,
                "rule": e.headers.get("bus389_rule", ""),
                "plan_section": e.headers.get("bus389_plan_section", ""),
                "redacted": [f for f in e.headers.get("bus389_redacted", "").split(",") if f],
            }
            for e in events
        ],
        "next_cursor": encode_cursor(nxt),
    }
