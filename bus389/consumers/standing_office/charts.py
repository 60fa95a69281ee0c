"""The report's charts: PNG pictures of figures its tables already give, drawn server-side by matplotlib.

Four charts (each drawn only when it has something to show): events per member and type (stacked
bars), domain-block requests by outcome and their time to result, undeclared revenue by period, and
this period's events by type against the previous period's. The tables stay the source of every figure:
a chart is drawn from the same :class:`~.report_model.SixMonthReport` and never carries a number the
tables do not. matplotlib runs headless (the Agg backend, chosen before pyplot is imported), with a
font that has every Vietnamese letter, and reads nothing from the network.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bus389.consumers.standing_office.labels import BLOCK_OUTCOME_LABELS, EVENT_TYPE_LABELS, agency_name
from bus389.consumers.standing_office.report_model import SixMonthReport

__all__ = ["Chart", "charts_for"]

_FONTS = ("Times New Roman", "Liberation Serif", "DejaVu Serif", "DejaVu Sans")
"""Decree 30's font first, then its metric twin; the first installed that has every Vietnamese letter wins
(Debian's old ``fonts-liberation`` 1.07 lacks them, ``fonts-liberation2`` has them)."""

VIETNAMESE_LETTERS = (
    "aàảãáạăằẳẵắặâầẩẫấậbcdđeèẻẽéẹêềểễếệghiìỉĩíịklmnoòỏõóọôồổỗốộơờởỡớợpqrstuùủũúụưừửữứựvxyỳỷỹýỵ"
)
"""Every letter of the Vietnamese alphabet with every tone mark, lower case (upper case in the fonts
that have these has them too)."""

_font: list[str] = []


@dataclass(frozen=True)
class Chart:
    """One chart: its caption (Vietnamese) and the PNG bytes."""

    title: str
    png: bytes


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)  # no display: the report is drawn by a service or a CLI
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.family": [_vietnamese_font()], "font.size": 9})
    return plt


def _vietnamese_font() -> str:
    """The first of :data:`_FONTS` installed with every Vietnamese letter (matplotlib's DejaVu Sans else)."""
    if _font:
        return _font[0]
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    needed = {ord(ch) for ch in VIETNAMESE_LETTERS + VIETNAMESE_LETTERS.upper()}
    chosen = "DejaVu Sans"  # bundled with matplotlib: has them all
    for family in _FONTS:
        paths = [f.fname for f in font_manager.fontManager.ttflist if f.name == family]
        # every file of the family must have them: matplotlib may pick any of them by name
        if paths and all(needed <= set(FT2Font(path).get_charmap()) for path in paths):
            chosen = family
            break
    _font.append(chosen)
    return chosen


def _png(draw: Callable[[Any, Any], None], *, panels: int = 1, height: float = 3.4) -> bytes:
    plt = _pyplot()
    fig, ax = plt.subplots(1, panels, figsize=(6.4, height), dpi=110, squeeze=True)
    try:
        draw(fig, ax)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", metadata={"Software": None})
        return buffer.getvalue()
    finally:
        plt.close(fig)


def charts_for(report: SixMonthReport) -> list[Chart]:
    """The charts of ``report``, in the order the document shows them (none when the period is empty)."""
    from matplotlib.ticker import MaxNLocator

    charts: list[Chart] = []
    types = sorted(
        report.totals_by_type,
        key=lambda t: list(EVENT_TYPE_LABELS).index(t) if t in EVENT_TYPE_LABELS else len(EVENT_TYPE_LABELS),
    )
    active = [m for m in report.members if m.events_total]
    if active:

        def per_member(_fig: Any, ax: Any) -> None:
            names = [textwrap.fill(agency_name(m.agency), 26) for m in active]
            bottom = [0] * len(active)
            for t in types:
                values = [m.events_by_type.get(t, 0) for m in active]
                ax.barh(names, values, left=bottom, label=EVENT_TYPE_LABELS.get(t, t))
                bottom = [b + v for b, v in zip(bottom, values, strict=True)]
            ax.invert_yaxis()
            ax.set_xlabel("Số sự kiện")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.35, -0.18), ncol=2, frameon=False)

        height = 2.4 + 0.45 * len(active) + 0.25 * ((len(types) + 1) // 2)
        charts.append(
            Chart(
                f"Số sự kiện theo cơ quan và loại, kỳ {report.period.label}", _png(per_member, height=height)
            )
        )

    blocks = [line for m in report.members for line in m.block_requests]
    if blocks:

        def block_outcomes(_fig: Any, axes: Any) -> None:
            left, right = axes
            counts: dict[str, int] = {}
            for line in blocks:
                label = BLOCK_OUTCOME_LABELS.get(line.outcome or "", line.outcome or "")
                counts[label] = counts.get(label, 0) + 1
            left.bar([textwrap.fill(c, 10) for c in counts], list(counts.values()), color="#4c72b0")
            left.yaxis.set_major_locator(MaxNLocator(integer=True))
            left.set_ylabel("Số yêu cầu")
            left.set_title("Theo kết quả")
            hours = [line.time_to_result.total_seconds() / 3600 for line in blocks if line.time_to_result]
            right.set_title("Thời gian đến kết quả")
            if hours:
                right.boxplot(hours)
            right.set_xticks([])
            right.set_ylabel("Giờ")

        charts.append(
            Chart("Yêu cầu chặn tên miền: kết quả và thời gian đến kết quả", _png(block_outcomes, panels=2))
        )

    trend = list(report.trend)
    if any(p.undeclared_revenue_vnd for p in trend):

        def revenue(_fig: Any, ax: Any) -> None:
            ax.bar([p.label for p in trend], [p.undeclared_revenue_vnd / 1e6 for p in trend], color="#dd8452")
            ax.set_ylabel("Triệu đồng")

        charts.append(Chart("Doanh thu chưa kê khai theo kỳ (triệu đồng)", _png(revenue)))

    previous = report.previous
    if previous is not None and (previous.events_total or report.events_total):

        def compare(_fig: Any, ax: Any) -> None:
            kinds = sorted(
                set(types) | set(previous.events_by_type),
                key=lambda t: (
                    list(EVENT_TYPE_LABELS).index(t) if t in EVENT_TYPE_LABELS else len(EVENT_TYPE_LABELS)
                ),
            )
            labels = [EVENT_TYPE_LABELS.get(t, t) for t in kinds]
            ys = range(len(kinds))
            ax.barh(
                [y - 0.2 for y in ys],
                [previous.events_by_type.get(t, 0) for t in kinds],
                height=0.4,
                label=f"Kỳ trước ({previous.label})",
                color="#a0a0a0",
            )
            ax.barh(
                [y + 0.2 for y in ys],
                [report.totals_by_type.get(t, 0) for t in kinds],
                height=0.4,
                label=f"Kỳ này ({report.period.label})",
                color="#4c72b0",
            )
            ax.set_yticks(list(ys), [textwrap.fill(label, 30) for label in labels])
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.invert_yaxis()
            ax.set_xlabel("Số sự kiện")
            ax.legend(fontsize=7)

        charts.append(Chart(f"Kỳ {report.period.label} so với kỳ {previous.label}", _png(compare)))
    return charts
