"""The six-monthly report rendered for people: Markdown, CSV (for Excel) and HTML, with Vietnamese labels.

The three renderers share one layout (:func:`_layout`: headings, paragraphs, lists and tables), so the
figures are the same in every format. Money is in đồng, written the Vietnamese way (``1.234.567 ₫``);
in CSV it stays a plain integer (the column header says ``(đồng)``) so that Excel can add it up.
CSV is UTF-8 with a byte-order mark, which is how Excel recognises UTF-8; HTML escapes every text.
Dates and times are Vietnam's (Asia/Ho_Chi_Minh), ``dd/mm/yyyy``.
"""

from __future__ import annotations

import base64
import csv
import html
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Literal

from bus389.agencies import AGENCY_INFO, Agency
from bus389.consumers.standing_office.labels import (
    BLOCK_ACTION_LABELS,
    BLOCK_OUTCOME_LABELS,
    CASE_OUTCOME_LABELS,
    EVENT_TYPE_LABELS,
    KEY_KIND_LABELS,
    agency_name,
)
from bus389.consumers.standing_office.period import VN_TZ
from bus389.consumers.standing_office.report_model import MemberReport, SixMonthReport
from bus389.safe_text import csv_cell, markdown_inline

if TYPE_CHECKING:
    from bus389.consumers.standing_office.charts import Chart

__all__ = [
    "BLOCK_OUTCOME_LABELS",
    "CASE_OUTCOME_LABELS",
    "CHARTS_HEADING",
    "EVENT_TYPE_LABELS",
    "FORMATS",
    "KEY_KIND_LABELS",
    "WHEN_LABELS",
    "Block",
    "Heading",
    "ListBlock",
    "Money",
    "Para",
    "Table",
    "agency_name",
    "format_date",
    "format_datetime",
    "format_duration",
    "format_vnd",
    "layout",
    "render",
    "render_csv",
    "render_html",
    "render_markdown",
]

Format = Literal["md", "csv", "html"]
FORMATS: tuple[Format, ...] = ("md", "csv", "html")

WHEN_LABELS: dict[str, str] = {"earlier": "Kỳ trước", "period": "Trong kỳ", "later": "Sau kỳ"}

_TITLE = "Báo cáo sáu tháng"
CHARTS_HEADING = "7. Biểu đồ (minh họa số liệu của các bảng trên)"
_NONE = "Không có"


# --- formatting --------------------------------------------------------------------------------------


def format_vnd(amount: int) -> str:
    """``1234567`` → ``1.234.567 ₫`` (Vietnamese thousands separator, the đồng sign after)."""
    sign = "-" if amount < 0 else ""
    return f"{sign}{abs(amount):,}".replace(",", ".") + " ₫"


def format_date(moment: datetime) -> str:
    return moment.astimezone(VN_TZ).strftime("%d/%m/%Y")


def format_datetime(moment: datetime) -> str:
    return moment.astimezone(VN_TZ).strftime("%d/%m/%Y %H:%M")


def format_duration(span: timedelta | None) -> str:
    """``1 ngày 2 giờ 5 phút``; ``0 phút`` under a minute; ``—`` when there is none."""
    if span is None:
        return "—"
    minutes = int(span.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [f"{days} ngày"] if days else []
    if hours:
        parts.append(f"{hours} giờ")
    if mins or not parts:
        parts.append(f"{mins} phút")
    return " ".join(parts)


def _type_label(event_type: str) -> str:
    return EVENT_TYPE_LABELS.get(event_type, event_type)


def _in_type_order(event_types: Iterable[str]) -> list[str]:
    """The contract's order of event types (DOMAIN.md), unknown types last."""
    order = list(EVENT_TYPE_LABELS)
    return sorted(event_types, key=lambda t: (order.index(t) if t in order else len(order), t))


def _as_of(report: SixMonthReport) -> str:
    if report.as_of == report.period.end:
        return f"hết ngày {report.period.last_day.strftime('%d/%m/%Y')}"
    return format_datetime(report.as_of)


def _day(iso_date: str) -> str:
    try:
        return date.fromisoformat(iso_date).strftime("%d/%m/%Y")
    except ValueError:
        return iso_date


# --- the shared layout -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Money:
    amount: int

    def __str__(self) -> str:
        return format_vnd(self.amount)


_Cell = str | int | _Money


@dataclass(frozen=True)
class _Heading:
    level: int
    text: str


@dataclass(frozen=True)
class _Para:
    text: str


@dataclass(frozen=True)
class _List:
    items: tuple[str, ...]


@dataclass(frozen=True)
class _Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[_Cell, ...], ...]


_Block = _Heading | _Para | _List | _Table


def _layout(report: SixMonthReport) -> list[_Block]:
    period = report.period
    blocks: list[_Block] = [
        _Heading(1, f"{_TITLE} {period.label}"),
        _Para("Ban Chỉ đạo 389 tỉnh Quảng Ngãi — Kế hoạch 141/KH-UBND, mục III.3 (chế độ báo cáo)"),
        _List(
            (
                f"Kỳ báo cáo: {format_date(period.start)} – {period.last_day.strftime('%d/%m/%Y')}",
                f"Cơ quan tổng hợp: {AGENCY_INFO[Agency.MARKET_SURVEILLANCE].name_vi}",
                f"Thời điểm lập báo cáo: {format_datetime(report.generated_at)}",
                f"Kết quả trả lời và thời hạn tính đến: {_as_of(report)}",
                f"Tổng số sự kiện trong kỳ: {report.events_total}",
            )
        ),
    ]
    blocks += _summary_section(report)
    blocks.append(_Heading(2, "2. Chi tiết theo cơ quan"))
    for member in report.members:
        blocks += _member_section(member)
    blocks += _missing_section(report)
    blocks += _overdue_section(report)
    blocks += _correlation_section(report)
    blocks += _trend_section(report)
    return blocks


def layout(report: SixMonthReport) -> list[_Block]:
    """The report's blocks in order: the one layout every format renders (the docx too)."""
    return _layout(report)


def _summary_section(report: SixMonthReport) -> list[_Block]:
    blocks: list[_Block] = [_Heading(2, "1. Số sự kiện theo loại")]
    types = _in_type_order(report.totals_by_type)
    if not types:
        return [*blocks, _Para("Không có sự kiện nào trong kỳ.")]
    rows: list[tuple[_Cell, ...]] = [
        (agency_name(m.agency), *(m.events_by_type.get(t, 0) for t in types), m.events_total)
        for m in report.members
    ]
    rows.append(("Tổng cộng", *(report.totals_by_type[t] for t in types), report.events_total))
    headers = ("Cơ quan", *(_type_label(t) for t in types), "Tổng cộng")
    return [*blocks, _Table(headers, tuple(rows))]


def _member_section(member: MemberReport) -> list[_Block]:
    blocks: list[_Block] = [_Heading(3, f"{agency_name(member.agency)} ({member.agency.value})")]
    if member.six_monthly_reports:
        blocks.append(_Para(f"Báo cáo sáu tháng: đã gửi ({', '.join(member.six_monthly_reports)})."))
    elif member.agency != Agency.MARKET_SURVEILLANCE:
        blocks.append(_Para("Báo cáo sáu tháng: chưa gửi."))
    if not member.events_total:
        blocks.append(_Para("Không có sự kiện trong kỳ."))
        return blocks
    blocks.append(_Para("Số sự kiện theo loại:"))
    blocks.append(_List(tuple(f"{_type_label(t)}: {n}" for t, n in member.events_by_type.items())))
    if member.block_requests:
        blocks.append(_Para(f"Yêu cầu chặn tên miền: {len(member.block_requests)}"))
        outcomes = ", ".join(
            f"{BLOCK_OUTCOME_LABELS.get(o, o)}: {n}" for o, n in member.block_outcomes.items()
        )
        blocks.append(
            _List(
                (
                    f"Kết quả: {outcomes}",
                    "Thời gian từ yêu cầu đến kết quả: trung vị "
                    f"{format_duration(member.time_to_result_median)}, "
                    f"dài nhất {format_duration(member.time_to_result_max)}",
                )
            )
        )
        blocks.append(
            _Table(
                (
                    "Ngày yêu cầu",
                    "Tên miền, URL, IP",
                    "Đề nghị",
                    "Kết quả",
                    "Thời gian đến kết quả",
                    "Mã sự kiện",
                ),
                tuple(
                    (
                        format_datetime(line.occurred_at),
                        ", ".join(line.domains),
                        BLOCK_ACTION_LABELS.get(line.action, line.action),
                        BLOCK_OUTCOME_LABELS.get(line.outcome or "", line.outcome or ""),
                        format_duration(line.time_to_result),
                        line.event_id,
                    )
                    for line in member.block_requests
                ),
            )
        )
    if member.tax_alerts:
        blocks.append(_Para("Cảnh báo người bán chưa kê khai thuế:"))
        blocks.append(
            _Table(
                ("Số cảnh báo", "Doanh thu chưa kê khai", "Số thuế ước tính phải nộp"),
                ((member.tax_alerts, _Money(member.undeclared_revenue_vnd), _Money(member.tax_owed_vnd)),),
            )
        )
    if member.referrals:
        blocks.append(
            _Para(
                f"Vụ việc chuyển giao: {len(member.referrals)}, đã có kết quả xử lý: "
                f"{member.referrals_with_outcome}; tiền phạt {format_vnd(member.referral_fine_vnd)}, "
                f"giá trị hàng hóa tịch thu {format_vnd(member.referral_goods_seized_value_vnd)}"
            )
        )
        rows: list[tuple[_Cell, ...]] = []
        for ref in member.referrals:
            outcome = "; ".join(
                f"{CASE_OUTCOME_LABELS.get(o.outcome, o.outcome)} ({agency_name(o.agency)})"
                for o in ref.outcomes
            )
            goods = "; ".join(o.goods_seized for o in ref.outcomes if o.goods_seized)
            rows.append(
                (
                    format_date(ref.occurred_at),
                    ref.case_ref or "—",
                    ref.seller or "—",
                    outcome or "Chưa có kết quả",
                    _Money(ref.fine_vnd),
                    goods or "—",
                    _Money(ref.goods_seized_value_vnd),
                    ref.event_id,
                )
            )
        blocks.append(
            _Table(
                (
                    "Ngày chuyển",
                    "Mã vụ việc",
                    "Người bán",
                    "Kết quả xử lý",
                    "Tiền phạt",
                    "Hàng hóa tịch thu",
                    "Giá trị hàng hóa",
                    "Mã sự kiện",
                ),
                tuple(rows),
            )
        )
    if member.outcomes.count:
        summary = member.outcomes
        blocks.append(
            _Para(
                f"Vụ việc đã xử lý (do cơ quan công bố): {summary.count}; tiền phạt "
                f"{format_vnd(summary.fine_vnd)}, giá trị hàng hóa tịch thu "
                f"{format_vnd(summary.goods_seized_value_vnd)}"
            )
        )
        blocks.append(
            _Table(
                (
                    "Ngày quyết định",
                    "Kết quả xử lý",
                    "Số quyết định",
                    "Tiền phạt",
                    "Hàng hóa tịch thu",
                    "Giá trị hàng hóa",
                    "Mã sự kiện",
                ),
                tuple(
                    (
                        _day(o.decided_on),
                        CASE_OUTCOME_LABELS.get(o.outcome, o.outcome),
                        o.decision_ref or "—",
                        _Money(o.fine_vnd),
                        o.goods_seized or "—",
                        _Money(o.goods_seized_value_vnd),
                        o.event_id,
                    )
                    for o in summary.lines
                ),
            )
        )
    return blocks


def _missing_section(report: SixMonthReport) -> list[_Block]:
    blocks: list[_Block] = [_Heading(2, "3. Thành viên chưa gửi báo cáo sáu tháng")]
    if report.report_due is not None:
        blocks.append(_Para(f"Hạn gửi báo cáo sáu tháng của kỳ: {format_date(report.report_due)}."))
    if not report.missing_periodic_reports:
        blocks.append(_Para("Tất cả thành viên đã gửi báo cáo sáu tháng của kỳ."))
    else:
        blocks.append(_List(tuple(f"{agency_name(a)} ({a.value})" for a in report.missing_periodic_reports)))
    if report.late_periodic_reports:
        blocks.append(_Para("Gửi muộn so với hạn:"))
        blocks.append(
            _List(
                tuple(
                    f"{agency_name(a)} ({a.value}): gửi ngày {format_date(at)}"
                    for a, at in report.late_periodic_reports
                )
            )
        )
    return blocks


def _overdue_section(report: SixMonthReport) -> list[_Block]:
    deadlines = ", ".join(
        f"{_type_label(t)}: {report.deadlines[t]} ngày" for t in _in_type_order(report.deadlines)
    )
    blocks: list[_Block] = [
        _Heading(2, "4. Yêu cầu quá hạn chưa được trả lời"),
        _Para(f"Thời hạn trả lời: {deadlines or _NONE}. Tính đến {_as_of(report)}."),
    ]
    if not report.overdue:
        return [*blocks, _Para("Không có yêu cầu quá hạn.")]
    rows = tuple(
        (
            agency_name(o.agency),
            _type_label(o.event_type),
            format_datetime(o.occurred_at),
            format_datetime(o.deadline),
            format_duration(o.overdue),
            o.summary,
            o.event_id,
        )
        for o in report.overdue
    )
    headers = ("Cơ quan", "Loại yêu cầu", "Ngày gửi", "Hạn trả lời", "Quá hạn", "Nội dung", "Mã sự kiện")
    return [*blocks, _Table(headers, rows)]


def _correlation_section(report: SixMonthReport) -> list[_Block]:
    blocks: list[_Block] = [
        _Heading(2, "5. Đối chiếu thông tin giữa các cơ quan"),
        _Para(
            "Người bán, mã số thuế, tên miền, số điện thoại hoặc tài khoản bán hàng báo cáo trong kỳ, "
            "đối chiếu với mọi báo cáo đã lưu (kỳ trước, trong kỳ, sau kỳ): những thông tin được từ hai "
            "cơ quan thành viên trở lên báo cáo."
        ),
    ]
    if not report.correlations:
        return [*blocks, _Para("Không có thông tin trùng lặp giữa các cơ quan.")]
    for group in report.correlations:
        names = ", ".join(agency_name(a) for a in group.agencies)
        blocks.append(_Heading(3, f"{KEY_KIND_LABELS.get(group.kind, group.kind)}: {group.label}"))
        blocks.append(_Para(f"{len(group.agencies)} cơ quan báo cáo: {names}"))
        blocks.append(
            _Table(
                ("Cơ quan", "Loại sự kiện", "Ngày", "Thời điểm", "Ghi nhận", "Mã sự kiện"),
                tuple(
                    (
                        agency_name(r.agency),
                        _type_label(r.event_type),
                        format_date(r.occurred_at),
                        WHEN_LABELS.get(r.when, r.when),
                        r.label,
                        r.event_id,
                    )
                    for r in group.reports
                ),
            )
        )
    return blocks


def _trend_section(report: SixMonthReport) -> list[_Block]:
    blocks: list[_Block] = [_Heading(2, "6. So sánh với các kỳ trước")]
    if not report.trend:
        return [*blocks, _Para(_NONE)]
    types = _in_type_order({t for p in report.trend for t in p.events_by_type})
    rows: tuple[tuple[_Cell, ...], ...] = tuple(
        (
            p.label,
            *(p.events_by_type.get(t, 0) for t in types),
            p.events_total,
            p.tax_alerts,
            _Money(p.undeclared_revenue_vnd),
        )
        for p in report.trend
    )
    headers = (
        "Kỳ",
        *(_type_label(t) for t in types),
        "Tổng số sự kiện",
        "Số cảnh báo thuế",
        "Doanh thu chưa kê khai",
    )
    return [*blocks, _Table(headers, rows)]


def _blocks_of(report: SixMonthReport | Sequence[_Block]) -> Sequence[_Block]:
    """The six-monthly report's layout, or the blocks of another report (a case, an entity's history)."""
    return _layout(report) if isinstance(report, SixMonthReport) else report


def _title_of(report: SixMonthReport | Sequence[_Block]) -> str:
    if isinstance(report, SixMonthReport):
        return f"{_TITLE} {report.period.label}"
    return next((b.text for b in report if isinstance(b, _Heading)), _TITLE)


# The public names of the layout's parts, for the other renderers (the docx of :mod:`.document`).
Heading = _Heading
Para = _Para
ListBlock = _List
Table = _Table
Money = _Money
Block = _Block


# --- Markdown ------------------------------------------------------------------------------------------


def _md(text: object) -> str:
    return markdown_inline(text)


def render_markdown(report: SixMonthReport | Sequence[_Block]) -> str:
    out: list[str] = []
    for block in _blocks_of(report):
        if isinstance(block, _Heading):
            out += ["#" * block.level + " " + markdown_inline(block.text, at_line_start=False), ""]
        elif isinstance(block, _Para):
            out += [_md(block.text), ""]
        elif isinstance(block, _List):
            out += [f"- {_md(item)}" for item in block.items] + [""]
        else:
            out.append("| " + " | ".join(_md(h) for h in block.headers) + " |")
            out.append(
                "|"
                + "|".join(" ---: " if _numeric(block, i) else " --- " for i in range(len(block.headers)))
                + "|"
            )
            out += ["| " + " | ".join(_md(c) for c in row) + " |" for row in block.rows]
            out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def _numeric(table: _Table, column: int) -> bool:
    return bool(table.rows) and all(isinstance(row[column], int | _Money) for row in table.rows)


# --- CSV -----------------------------------------------------------------------------------------------


def render_csv(report: SixMonthReport | Sequence[_Block]) -> str:
    """One sheet: each section's title row, then its table (header + rows), then an empty row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for block in _blocks_of(report):
        if isinstance(block, _Heading | _Para):
            writer.writerow([csv_cell(block.text)])
        elif isinstance(block, _List):
            for item in block.items:
                writer.writerow([csv_cell(item)])
        else:
            headers = [
                f"{h} (đồng)" if any(isinstance(r[i], _Money) for r in block.rows) else h
                for i, h in enumerate(block.headers)
            ]
            writer.writerow([csv_cell(h) for h in headers])
            for row in block.rows:
                writer.writerow([csv_cell(c.amount if isinstance(c, _Money) else c) for c in row])
            writer.writerow([])
    return "\ufeff" + buffer.getvalue()


# --- HTML ----------------------------------------------------------------------------------------------

_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em;line-height:1.4}"
    "table{border-collapse:collapse;margin:.5em 0 1em}"
    "th,td{border:1px solid #999;padding:.25em .5em;vertical-align:top}"
    "th{background:#eee}td.n{text-align:right;white-space:nowrap}"
    "figure{margin:1em 0}img{max-width:100%}"
)


def _cell_html(cell: _Cell, tag: str) -> str:
    numeric = isinstance(cell, int | _Money)
    attr = ' class="n"' if numeric and tag == "td" else ""
    return f"<{tag}{attr}>{html.escape(str(cell), quote=True)}</{tag}>"


def render_html(report: SixMonthReport | Sequence[_Block], charts: Sequence[Chart] = ()) -> str:
    """A standalone page; ``charts`` follow the tables as embedded PNG (``data:`` URIs, nothing fetched)."""
    e = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="vi">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{e(_title_of(report))}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
    ]
    for block in _blocks_of(report):
        if isinstance(block, _Heading):
            out.append(f"<h{block.level}>{e(block.text)}</h{block.level}>")
        elif isinstance(block, _Para):
            out.append(f"<p>{e(block.text)}</p>")
        elif isinstance(block, _List):
            out.append("<ul>" + "".join(f"<li>{e(item)}</li>" for item in block.items) + "</ul>")
        else:
            out.append("<table>")
            out.append("<thead><tr>" + "".join(_cell_html(h, "th") for h in block.headers) + "</tr></thead>")
            out.append("<tbody>")
            out += ["<tr>" + "".join(_cell_html(c, "td") for c in row) + "</tr>" for row in block.rows]
            out.append("</tbody></table>")
    if charts:
        out.append(f"<h2>{e(CHARTS_HEADING)}</h2>")
        for chart in charts:
            data = base64.b64encode(chart.png).decode("ascii")
            out.append(
                f'<figure><img src="data:image/png;base64,{data}" alt="{e(chart.title)}">'
                f"<figcaption>{e(chart.title)}</figcaption></figure>"
            )
    out += ["</body>", "</html>", ""]
    return "\n".join(out)


def render(report: SixMonthReport | Sequence[_Block], fmt: Format | str) -> str:
    """The report (or another report's blocks) in ``fmt`` (``md``, ``csv`` or ``html``)."""
    if fmt == "md":
        return render_markdown(report)
    if fmt == "csv":
        return render_csv(report)
    if fmt == "html":
        from bus389.consumers.standing_office.charts import charts_for

        return render_html(report, charts_for(report) if isinstance(report, SixMonthReport) else ())
    raise ValueError(f"unknown report format {fmt!r}: choose one of {', '.join(FORMATS)}")
