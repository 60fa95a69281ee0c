"""The tax clerk's pages: upload a workbook or CSV, preview every row's verdict, publish, the receipt.

The preview is :func:`bus389.producers.tax.publish.publish_alerts` with ``dry_run`` (the same row and
column messages as ``bus389 tax publish-alerts --dry-run``); publishing is the same function, as the
tax office, on the same stored file. Only the uploader's agency (tax) sees its uploads.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import RedirectResponse
from starlette.requests import Request

from bus389.agencies import Agency
from bus389.errors import InputError
from bus389.producers.tax.publish import AlertsReport, publish_alerts
from bus389.web.actions import log_action
from bus389.web.console import Console, console_of, require
from bus389.web.errors import Refused
from bus389.web.sessions import CSRF_FIELD, check_csrf
from bus389.web.users import Role, User

__all__ = ["ALLOWED_SUFFIXES", "check_upload", "router"]

router = APIRouter(include_in_schema=False)

ALLOWED_SUFFIXES = (".xlsx", ".csv")
_ZIP_MAGIC = b"PK\x03\x04"
_UPLOAD_ID = re.compile(r"^[0-9a-f]{24}$")


def check_upload(filename: str, head: bytes) -> str:
    """The safe file name to store an upload as, or :class:`Refused` for a file of the wrong type.

    The suffix must be ``.xlsx`` (a zip, as every workbook is) or ``.csv`` (UTF-8 text, no NUL byte).
    """
    name = Path(filename.replace("\\", "/")).name
    suffix = Path(name).suffix.lower()
    if suffix not in ALLOWED_SUFFIXES:
        raise Refused(
            f"Tệp {name!r}: chỉ nhận bảng tính .xlsx hoặc .csv (UTF-8).", status=415, reason="upload"
        )
    if suffix == ".xlsx" and not head.startswith(_ZIP_MAGIC):
        raise Refused(f"Tệp {name!r} không phải bảng tính .xlsx hợp lệ.", status=415, reason="upload")
    if suffix == ".csv":
        if b"\x00" in head:
            raise Refused(f"Tệp {name!r} không phải tệp CSV văn bản.", status=415, reason="upload")
    stem = re.sub(r"[^\w.\-]+", "_", Path(name).stem, flags=re.UNICODE)[:80] or "upload"
    return stem + suffix


def _tax_clerk(console: Console, request: Request) -> User:
    user = console.user(request)
    require(user, agency=Agency.TAX)
    return user


def _upload_row(console: Console, user: User, upload_id: str) -> Any:
    rows = (
        console.store.query(
            "SELECT * FROM uploads WHERE upload_id = ? AND agency = ?", (upload_id, user.agency.value)
        )
        if _UPLOAD_ID.match(upload_id)
        else []
    )
    if not rows:
        # Another agency's upload looks exactly like none at all.
        raise Refused(f"Không có tệp tải lên {upload_id!r} của cơ quan bạn.", status=404, reason="rights")
    return rows[0]


def _verdicts(report: AlertsReport) -> list[dict[str, Any]]:
    """Every row with its verdict, in file order."""
    rows: list[dict[str, Any]] = []
    for ready in report.ready:
        fields = ready.alert.fields
        seller = fields.get("seller", {})
        rows.append(
            {
                "row": ready.alert.row.number,
                "verdict": "ok",
                "seller": seller.get("name"),
                "tax_code": seller.get("tax_code"),
                "undeclared": fields.get("undeclared_revenue_vnd"),
                "owed": fields.get("estimated_tax_owed_vnd"),
                "event_id": ready.event_id,
                "messages": [],
            }
        )
    blank = {"seller": None, "tax_code": None, "undeclared": None, "owed": None, "event_id": None}
    for skipped in report.skipped:
        rows.append({**blank, "row": skipped.row.number, "verdict": "skipped", "messages": [skipped.reason]})
    for rejected in report.rejected:
        rows.append(
            {**blank, "row": rejected.row.number, "verdict": "rejected", "messages": list(rejected.problems)}
        )
    return sorted(rows, key=lambda r: int(r["row"]))


def _summary(report: AlertsReport, name: str) -> list[str]:
    """The command's summary lines, naming the file as the clerk uploaded it (not where it is kept)."""
    lines = report.summary_lines()
    return [f"file: {name}" if line.startswith("file: ") else line for line in lines]


@router.get("/tax")
def uploads_page(request: Request) -> Any:
    console = console_of(request)
    user = _tax_clerk(console, request)
    uploads = console.store.query(
        "SELECT * FROM uploads WHERE agency = ? ORDER BY uploaded_at DESC LIMIT 50", (user.agency.value,)
    )
    return console.page(
        request, "tax_upload.html", user, uploads=uploads, max_bytes=console.settings.web.upload_max_bytes
    )


@router.post("/tax/upload")
async def upload(
    request: Request,
    file: Annotated[UploadFile, File()],
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD)] = "",
) -> Any:
    console = console_of(request)
    user = _tax_clerk(console, request)
    check_csrf(request, csrf_token)
    require(user, role=Role.CLERK)
    limit = console.settings.web.upload_max_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise Refused(
            f"Tệp quá lớn: tối đa {limit // 1000} kB (settings web.upload_max_bytes).",
            status=413,
            reason="upload",
        )
    name = check_upload(file.filename or "", data[:512])
    upload_id = secrets.token_hex(12)
    folder = console.settings.web.upload_dir.expanduser() / upload_id
    folder.mkdir(parents=True, mode=0o700)
    (folder / name).write_bytes(data)
    console.store.execute(
        "INSERT INTO uploads (upload_id, agency, username, filename, stored_path, uploaded_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (upload_id, user.agency.value, user.username, name, str(folder / name), time.time()),
    )
    log_action(user.username, user.agency.value, "tax.upload", upload_id=upload_id, bytes=len(data))
    return RedirectResponse(f"/tax/uploads/{upload_id}", status_code=303)


@router.get("/tax/uploads/{upload_id}")
def preview(request: Request, upload_id: str) -> Any:
    console = console_of(request)
    user = _tax_clerk(console, request)
    row = _upload_row(console, user, upload_id)
    settings = console.identities.settings_for(user.agency)
    try:
        report = publish_alerts(settings, Path(row["stored_path"]), dry_run=True)
    except InputError as exc:
        # An unreadable file or a missing column: the command's message, on the page.
        return console.page(
            request, "tax_preview.html", user, upload=row, problem=str(exc), rows=[], report=None
        )
    published = json.loads(row["published_ids"]) if row["published_ids"] else None
    return console.page(
        request,
        "tax_preview.html",
        user,
        upload=row,
        problem=None,
        rows=_verdicts(report),
        report=report,
        summary=_summary(report, row["filename"]),
        published=published,
    )


@router.post("/tax/uploads/{upload_id}/publish")
def publish(request: Request, upload_id: str, csrf_token: Annotated[str, Form(alias=CSRF_FIELD)] = "") -> Any:
    console = console_of(request)
    user = _tax_clerk(console, request)
    check_csrf(request, csrf_token)
    require(user, role=Role.CLERK)
    row = _upload_row(console, user, upload_id)
    settings = console.identities.settings_for(user.agency)
    report = publish_alerts(settings, Path(row["stored_path"]))
    if report.blocked:
        log_action(user.username, user.agency.value, "tax.publish", "blocked", upload_id=upload_id)
        return console.page(
            request,
            "tax_preview.html",
            user,
            status=422,
            upload=row,
            problem="Có dòng bị từ chối: chưa gửi gì. Sửa tệp rồi tải lên lại.",
            rows=_verdicts(report),
            report=report,
            summary=_summary(report, row["filename"]),
            published=None,
        )
    ids = list(report.published)
    console.store.execute(
        "UPDATE uploads SET published_at = ?, published_ids = ? WHERE upload_id = ?",
        (time.time(), json.dumps(ids), upload_id),
    )
    log_action(
        user.username,
        user.agency.value,
        "tax.publish",
        upload_id=upload_id,
        published=len(ids),
        already=len(report.already_published or []),
    )
    return console.page(
        request,
        "tax_receipt.html",
        user,
        upload=row,
        report=report,
        summary=_summary(report, row["filename"]),
    )
