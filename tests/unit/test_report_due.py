"""Members' six-monthly reports against the province's due dates (BUS389_REPORT__DUE_DATES): missing, late."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from bus389.agencies import REPORTING_MEMBERS, Agency
from bus389.consumers.standing_office.period import VN_TZ, Period, due_at
from bus389.consumers.standing_office.render import render_markdown
from bus389.consumers.standing_office.report import build_report
from bus389.consumers.standing_office.store import StandingOfficeStore
from bus389.events import build_event
from bus389.settings import ReportSettings


def _six_monthly(source: str, published: datetime) -> dict[str, object]:
    data = {
        "report_kind": "SIX_MONTHLY",
        "period": "2021-H1",
        "title": "Báo cáo 6 tháng đầu năm 2021",
        "body": "Kết quả thực hiện Kế hoạch 141/KH-UBND",
        "cases_detected": 3,
    }
    return build_event("periodic_report", source, data, now=published).to_json_dict()


def test_a_report_after_the_due_date_is_listed_late_and_a_missing_one_missing(tmp_path: Path) -> None:
    settings = ReportSettings(due_dates={"H1": "07-15", "H2": "01-15"})
    period = Period.parse("2021-H1")
    due = due_at(period, settings.due_dates)
    assert due == datetime(2021, 7, 15, tzinfo=VN_TZ)
    store = StandingOfficeStore.open(f"sqlite:///{tmp_path / 'so.sqlite3'}")
    with store:
        store.add_event(_six_monthly("police", datetime(2021, 7, 10, 9, 0, tzinfo=VN_TZ)))  # on time
        store.add_event(_six_monthly("customs", datetime(2021, 7, 20, 9, 0, tzinfo=VN_TZ)))  # five days late
        report = build_report(store, period, settings=settings, now=datetime(2021, 8, 1, tzinfo=VN_TZ))
    assert report.report_due == due
    assert [(a, at.astimezone(VN_TZ).date().isoformat()) for a, at in report.late_periodic_reports] == [
        (Agency.CUSTOMS, "2021-07-20")
    ]
    assert Agency.POLICE not in report.missing_periodic_reports
    assert Agency.CUSTOMS not in report.missing_periodic_reports  # late, not missing
    assert set(report.missing_periodic_reports) == set(REPORTING_MEMBERS) - {Agency.POLICE, Agency.CUSTOMS}
    text = render_markdown(report)
    assert "Hạn gửi báo cáo sáu tháng của kỳ: 15/07/2021." in text
    assert "Gửi muộn so với hạn:" in text and "gửi ngày 20/07/2021" in text
