"""The standing office's pages: a period's report (the HTML renderer of ``bus389 report``) and the
requests unanswered past their deadline."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from starlette.requests import Request

from bus389.agencies import STANDING_OFFICE
from bus389.consumers.standing_office.render import render_html
from bus389.consumers.standing_office.report import Period, SixMonthReport, build_report
from bus389.consumers.standing_office.store import StandingOfficeStore
from bus389.web.console import Console, console_of, require

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


def _current_period() -> Period:
    now = datetime.now(UTC)
    return Period(now.year, 1 if now.month <= 6 else 2)


def _report(console: Console, period: Period) -> SixMonthReport:
    settings = console.settings
    with StandingOfficeStore.open(
        settings.store.standing_office_url, create=False, ignore_domains=settings.ict.never_block
    ) as store:
        return build_report(store, period, settings=settings.report)


@router.get("/report")
def report_page(request: Request, period: str = "") -> Any:
    console = console_of(request)
    user = console.user(request)
    require(user, agency=STANDING_OFFICE)
    chosen = Period.parse(period) if period else _current_period()
    model = _report(console, chosen)
    return console.page(request, "report.html", user, period=chosen.label, report=model)


@router.get("/report/view")
def report_view(request: Request, period: str) -> HTMLResponse:
    """The report exactly as ``bus389 report --format html`` writes it (the renderer escapes every value)."""
    console = console_of(request)
    user = console.user(request)
    require(user, agency=STANDING_OFFICE)
    model = _report(console, Period.parse(period))
    response = HTMLResponse(render_html(model))
    # The standalone page carries its own style and no script.
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
    )
    return response
