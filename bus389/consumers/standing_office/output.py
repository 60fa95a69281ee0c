"""A report as the bytes of one output format, with its default file name: what the CLI writes and mails.

Markdown, CSV and HTML come from :mod:`.render`; the Word document from :mod:`.document` (its header and
signer from ``settings.report``); the PDF is that document converted by :mod:`.pdf`. The six-monthly
report's charts (:mod:`.charts`) go into the HTML and the document; the other reports have none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from bus389.consumers.standing_office.document import DocumentHeader, render_docx, signer_from
from bus389.consumers.standing_office.render import CHARTS_HEADING, Block, layout, render
from bus389.consumers.standing_office.report_model import SixMonthReport
from bus389.settings import ReportSettings

__all__ = [
    "FORMATS",
    "MEDIA_TYPES",
    "Output",
    "default_name",
    "mail_subject",
    "report_output",
    "six_monthly_summary",
    "text_summary",
]

FORMATS = ("md", "csv", "html", "docx", "pdf")
MEDIA_TYPES = {
    "md": "text/markdown; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pdf": "application/pdf",
}
KIND_LINE = "BÁO CÁO"


@dataclass(frozen=True)
class Output:
    name: str
    data: bytes
    fmt: str

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.fmt]


def default_name(stem: str, fmt: str) -> str:
    """``bao-cao-<stem>.<fmt>`` (``bao-cao-2021-H1.pdf``)."""
    return f"bao-cao-{stem}.{fmt}"


def six_monthly_summary(report: SixMonthReport) -> str:
    """The document's summary line (trích yếu)."""
    half = "6 tháng đầu năm" if report.period.half == 1 else "6 tháng cuối năm"
    return (
        "Kết quả phòng, chống buôn lậu, gian lận thương mại và hàng giả trên môi trường thương mại "
        f"điện tử {half} {report.period.year}"
    )


def report_output(
    report: SixMonthReport | Sequence[Block],
    fmt: str,
    settings: ReportSettings,
    *,
    stem: str,
    summary: str = "",
    number_symbol: str | None = None,
    issued_at: datetime | None = None,
) -> Output:
    """``report`` as ``fmt``; for docx/pdf ``summary`` is the document's summary line (six-monthly: its own).

    Raises :class:`~bus389.errors.ConfigError` for a document without a signer and
    :class:`~bus389.errors.DocumentError` when the PDF cannot be made, before anything is written.
    """
    if fmt in ("md", "csv", "html"):
        return Output(default_name(stem, fmt), render(report, fmt).encode("utf-8"), fmt)
    if fmt not in ("docx", "pdf"):
        raise ValueError(f"unknown report format {fmt!r}: choose one of {', '.join(FORMATS)}")
    signer = signer_from(settings)
    if isinstance(report, SixMonthReport):
        from bus389.consumers.standing_office.charts import charts_for

        blocks = layout(report)[1:]  # the document's own title replaces the layout's first heading
        charts = charts_for(report)
        summary = summary or six_monthly_summary(report)
        issued_at = issued_at or report.generated_at
    else:
        blocks = list(report)[1:]
        charts = []
        issued_at = issued_at or datetime.now(UTC)
    head = DocumentHeader(
        governing_body=settings.governing_body,
        issuing_body=settings.issuing_body,
        number_symbol=number_symbol or settings.number_symbol,
        place=settings.place,
        issued_at=issued_at,
        kind=KIND_LINE,
        summary=summary,
        recipients=settings.recipients,
        signer=signer,
    )
    docx = render_docx(head, blocks, charts=charts, charts_heading=CHARTS_HEADING)
    if fmt == "docx":
        return Output(default_name(stem, fmt), docx, fmt)
    from bus389.consumers.standing_office.pdf import docx_to_pdf

    return Output(default_name(stem, fmt), docx_to_pdf(docx), fmt)


def text_summary(report: SixMonthReport) -> str:
    """The plain-text body of the mail carrying the report: the headline figures, then what is attached."""
    from bus389.consumers.standing_office.render import EVENT_TYPE_LABELS, format_vnd

    lines = [
        f"Báo cáo sáu tháng {report.period.label} của Cơ quan Thường trực BCĐ 389 tỉnh Quảng Ngãi.",
        "",
        f"Tổng số sự kiện trong kỳ: {report.events_total}",
    ]
    lines += [f"  - {EVENT_TYPE_LABELS.get(t, t)}: {n}" for t, n in report.totals_by_type.items()]
    alerts = sum(m.tax_alerts for m in report.members)
    revenue = sum(m.undeclared_revenue_vnd for m in report.members)
    lines += [
        f"Cảnh báo người bán chưa kê khai thuế: {alerts}, doanh thu chưa kê khai {format_vnd(revenue)}",
        f"Yêu cầu quá hạn chưa được trả lời: {len(report.overdue)}",
        f"Thông tin trùng lặp giữa các cơ quan: {len(report.correlations)}",
        f"Thành viên chưa gửi báo cáo sáu tháng: {len(report.missing_periodic_reports)}",
        "",
        "Chi tiết, bảng số liệu và biểu đồ: xem tệp đính kèm.",
    ]
    return "\n".join(lines) + "\n"


def mail_subject(report: SixMonthReport) -> str:
    return f"[BCĐ 389] Báo cáo sáu tháng {report.period.label}"
