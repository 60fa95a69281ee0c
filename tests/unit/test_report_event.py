"""The six-monthly report as a compiled_report event: the members' own figures, who reported, who did not."""

from __future__ import annotations

from datetime import UTC, datetime

from _so_records import periodic_report, vn

from bus389.agencies import REPORTING_MEMBERS
from bus389.consumers.standing_office.report import Period, build_report
from bus389.consumers.standing_office.report_event import compiled_report_fields
from bus389.consumers.standing_office.store import StandingOfficeStore
from bus389.events import build_event


def test_the_members_own_figures_are_summed_the_latest_report_of_each_counts_once() -> None:
    police_old = periodic_report("police", vn(2021, 7, 2), "2021-H1")
    police_new = {**periodic_report("police", vn(2021, 7, 5), "2021-H1"), "fines_vnd": 40_000_000}
    tax = {**periodic_report("tax", vn(2021, 7, 3), "2021-H1"), "tax_collected_vnd": 380_000_000}
    rapid = periodic_report("customs", vn(2021, 5, 3), "2021-H1", kind="RAPID")  # not a six-monthly one
    with StandingOfficeStore.open("sqlite:///:memory:") as store:
        for record in (police_old, police_new, tax, rapid):
            store.add_event(record)
        report = build_report(store, Period.parse("2021-H1"), now=datetime(2021, 7, 20, tzinfo=UTC))
        fields = compiled_report_fields(report, store)
    assert fields["members_reported"] == ["police", "tax"]
    assert set(fields["members_missing"]) == {a.value for a in REPORTING_MEMBERS} - {"police", "tax"}
    assert (fields["cases_detected"], fields["cases_handled"]) == (6, 4)  # 3 + 3, 2 + 2: one per member
    assert (fields["fines_vnd"], fields["tax_collected_vnd"]) == (40_000_000, 380_000_000)
    assert fields["events_seen"] == report.events_total
    assert "- police: Báo cáo 2021-H1" in fields["body"] and "fines_vnd 40000000" in fields["body"]
    event = build_event("compiled_report", "market_surveillance", fields)  # a valid event as it stands
    assert event.to_json_dict()["period"] == "2021-H1"
