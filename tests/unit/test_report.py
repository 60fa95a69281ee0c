"""The six-monthly report's figures, checked against the events that went into a store filled directly."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from _so_records import (
    account,
    case_outcome,
    case_referral,
    complaint,
    domain_block_request,
    domain_block_result,
    eid,
    law_gap_proposal,
    periodic_report,
    seller,
    suspect_seller,
    tax_discrepancy,
    vn,
)

from bus389.agencies import REPORTING_MEMBERS, Agency
from bus389.consumers.standing_office.report import Period, SixMonthReport, build_report
from bus389.consumers.standing_office.store import StandingOfficeStore
from bus389.errors import InputError
from bus389.settings import ReportSettings

NOW = vn(2021, 7, 10, 12)
"""The report is made ten days after the period: answers count as of 30/06 24:00 (Vietnam time)."""


@pytest.fixture
def store() -> Iterator[StandingOfficeStore]:
    with StandingOfficeStore.open("sqlite:///:memory:") as s:
        yield s


class Scenario:
    """Half a year of events from five members, with what the report must say about them."""

    def __init__(self, store: StandingOfficeStore) -> None:
        hung = seller("Nguyễn Văn Hùng", tax_code="0312345678", phone="+84 912 345 678")
        # --- police -------------------------------------------------------------------------------
        self.ss1 = suspect_seller(
            "police",
            vn(2021, 1, 1, 0, 10),  # ten minutes into the period in Vietnam, still 2020 in UTC
            hung,
            domains=["hangxachtay-hung.vn"],
            accounts=[account("SHOPEE", "hung.shop", "https://shopee.vn/hung.shop")],
        )
        self.ss_before = suspect_seller("police", vn(2020, 12, 31, 23, 50), hung)
        self.ss_after = suspect_seller("police", vn(2021, 7, 1, 0, 30), hung)  # 30/06 17:30 UTC, H2
        tam = seller("Lê Văn Tám", tax_code="0355555555")
        self.tam1 = suspect_seller("police", vn(2021, 2, 1), tam)
        self.tam2 = suspect_seller("police", vn(2021, 3, 1), tam)
        self.dbr_a = domain_block_request("police", vn(2021, 3, 1, 8), ["hangxachtay-hung.vn"])
        self.res_a = domain_block_result(self.dbr_a, "BLOCKED", vn(2021, 3, 2, 10))  # 26 h
        self.dbr_b = domain_block_request("police", vn(2021, 4, 1, 8), ["giay-gia-re.vn"])
        self.res_b = domain_block_result(self.dbr_b, "REJECTED", vn(2021, 4, 3, 10))  # 50 h
        self.dbr_c = domain_block_request("police", vn(2021, 6, 10, 8), ["dongho-fake.com"])  # unanswered
        self.dbr_d = domain_block_request("police", vn(2021, 6, 29, 20), ["tuixach-nhai.vn"])
        self.res_d = domain_block_result(self.dbr_d, "BLOCKED", vn(2021, 7, 1, 9))  # after the period
        self.police_h1 = periodic_report("police", vn(2021, 7, 5), "2021-H1")  # filed after the period
        self.out_r1 = case_outcome(
            "police",
            vn(2021, 5, 20),
            "QLTT-2021-001",
            fine=15_000_000,
            goods="120 đôi giày giả nhãn hiệu",
            goods_value=36_000_000,
        )
        # --- tax ----------------------------------------------------------------------------------
        self.td1 = tax_discrepancy(
            vn(2021, 2, 15),
            seller(unicodedata.normalize("NFD", "NGUYỄN  VĂN  HÙNG"), tax_code="0312 345 678"),
            undeclared=1_250_000_000,
            owed=87_500_000,
        )
        self.td2 = tax_discrepancy(
            vn(2021, 5, 5),
            seller("Trần Thị Mai", tax_code="0401234567"),
            undeclared=480_000_000,
            owed=33_600_000,
        )
        self.tax_rapid = periodic_report("tax", vn(2021, 6, 1), "2021-H1", kind="RAPID")
        # --- market surveillance (the standing office) ----------------------------------------------
        self.cmp1 = complaint(
            "market_surveillance",
            vn(2021, 3, 20),
            seller(" nguyễn   văn hùng ", tax_code="0312345678", phone="0912.345.678"),
            accounts=[account("SHOPEE", "@Hung.Shop")],
            case_ref="QLTT-2021-001",  # answered by the referral of the same case
        )
        self.r1 = case_referral(
            "market_surveillance",
            vn(2021, 4, 10),
            "QLTT-2021-001",
            seller("Nguyễn Văn Hùng", tax_code="0312345678"),
        )
        self.r2 = case_referral(
            "market_surveillance", vn(2021, 5, 1), "QLTT-2021-002", seller("Đặng Thị Hoa")
        )
        self.dbr_ms = domain_block_request("market_surveillance", vn(2021, 6, 2, 8), ["hangnhai-hoa.vn"])
        self.res_ms = domain_block_result(
            self.dbr_ms, "PARTIAL", vn(2021, 6, 2, 20), requester="market_surveillance"
        )  # 12 h
        # --- customs: the same name, another tax code: a different seller ---------------------------
        self.ss_c = suspect_seller(
            "customs", vn(2021, 4, 20), seller("Nguyễn Văn Hùng", tax_code="0399999999", phone="0987654321")
        )
        self.customs_h2 = periodic_report("customs", vn(2021, 1, 15), "2020-H2")  # the previous period's
        # --- border guard: referrals of the previous period -----------------------------------------
        self.bg_open = case_referral("border_guard", vn(2020, 12, 1), "BP-2020-07", None)
        self.bg_done = case_referral("border_guard", vn(2020, 11, 25), "BP-2020-05", None)
        self.bg_done_outcome = case_outcome("police", vn(2020, 12, 20), "BP-2020-05", outcome="WARNING")

        self.all = [
            self.ss1,
            self.ss_before,
            self.ss_after,
            self.tam1,
            self.tam2,
            self.dbr_a,
            self.res_a,
            self.dbr_b,
            self.res_b,
            self.dbr_c,
            self.dbr_d,
            self.res_d,
            self.police_h1,
            self.out_r1,
            self.td1,
            self.td2,
            self.tax_rapid,
            self.cmp1,
            self.r1,
            self.r2,
            self.dbr_ms,
            self.res_ms,
            self.ss_c,
            self.customs_h2,
            self.bg_open,
            self.bg_done,
            self.bg_done_outcome,
        ]
        for record in self.all:
            assert store.add_event(record)


@pytest.fixture
def scenario(store: StandingOfficeStore) -> Scenario:
    return Scenario(store)


@pytest.fixture
def report(store: StandingOfficeStore, scenario: Scenario) -> SixMonthReport:
    return build_report(store, Period.parse("2021-H1"), settings=ReportSettings(), now=NOW)


# --- the period -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2021-H1", vn(2021, 1, 1, 0), vn(2021, 7, 1, 0)),
        ("2021-H2", vn(2021, 7, 1, 0), vn(2022, 1, 1, 0)),
        (" 2022-h1 ", vn(2022, 1, 1, 0), vn(2022, 7, 1, 0)),
    ],
)
def test_period_bounds_are_vietnam_half_years(text: str, start: Any, end: Any) -> None:
    period = Period.parse(text)
    assert (period.start, period.end) == (start, end)


@pytest.mark.parametrize("text", ["2021-H3", "2021H1", "21-H1", "2021-Q1", "", "2021-H1x", "H1-2021"])
def test_malformed_period_is_an_input_error(text: str) -> None:
    with pytest.raises(InputError, match="YYYY-H1"):
        Period.parse(text)


# --- events by type ---------------------------------------------------------------------------------


def test_events_by_type_per_member_count_only_the_period_in_vietnam_time(report: SixMonthReport) -> None:
    assert report.member(Agency.POLICE).events_by_type == {
        "case_outcome": 1,
        "domain_block_request": 4,
        "suspect_seller": 3,  # ss1 (00:10 on 1 Jan, Vietnam time), tam1, tam2; not the ones either side
    }
    assert report.member(Agency.TAX).events_by_type == {"periodic_report": 1, "tax_discrepancy": 2}
    assert report.member(Agency.MARKET_SURVEILLANCE).events_by_type == {
        "case_referral": 2,
        "complaint": 1,
        "domain_block_request": 1,
    }
    assert report.member(Agency.CUSTOMS).events_by_type == {"periodic_report": 1, "suspect_seller": 1}
    assert report.member(Agency.ICT).events_by_type == {"domain_block_result": 3}
    assert report.member(Agency.BORDER_GUARD).events_by_type == {}
    assert report.events_total == 20
    assert report.totals_by_type["domain_block_request"] == 5
    assert [m.agency for m in report.members] == list(Agency)


# --- domain blocking ----------------------------------------------------------------------------------


def test_block_requests_are_joined_with_their_results(report: SixMonthReport, scenario: Scenario) -> None:
    police = report.member(Agency.POLICE)
    lines = {line.event_id: line for line in police.block_requests}
    assert lines[eid(scenario.dbr_a)].outcome == "BLOCKED"
    assert lines[eid(scenario.dbr_a)].result_event_id == eid(scenario.res_a)
    assert lines[eid(scenario.dbr_a)].time_to_result == timedelta(hours=26)
    assert lines[eid(scenario.dbr_b)].outcome == "REJECTED"
    assert lines[eid(scenario.dbr_b)].time_to_result == timedelta(hours=50)
    assert lines[eid(scenario.dbr_c)].outcome is None
    # answered on 1 July, after the as-of instant (end of the period): not yet answered in this report
    assert lines[eid(scenario.dbr_d)].outcome is None
    assert police.block_outcomes == {"": 2, "BLOCKED": 1, "REJECTED": 1}
    assert police.time_to_result_median == timedelta(hours=38)
    assert police.time_to_result_max == timedelta(hours=50)
    office = report.member(Agency.MARKET_SURVEILLANCE)
    assert [(b.outcome, b.time_to_result) for b in office.block_requests] == [
        ("PARTIAL", timedelta(hours=12))
    ]
    assert office.time_to_result_median == office.time_to_result_max == timedelta(hours=12)


def test_a_report_made_during_the_period_counts_answers_up_to_now(
    store: StandingOfficeStore, scenario: Scenario
) -> None:
    during = build_report(store, Period.parse("2021-H1"), now=vn(2021, 4, 2, 12))
    lines = {line.event_id: line for line in during.member(Agency.POLICE).block_requests}
    assert lines[eid(scenario.dbr_a)].outcome == "BLOCKED"
    assert lines[eid(scenario.dbr_b)].outcome is None  # its result came on 3 April
    assert during.as_of == vn(2021, 4, 2, 12)


# --- tax, cases -------------------------------------------------------------------------------------------


def test_undeclared_seller_alerts_sum_revenue_and_tax(report: SixMonthReport) -> None:
    tax = report.member(Agency.TAX)
    assert (tax.tax_alerts, tax.undeclared_revenue_vnd, tax.tax_owed_vnd) == (2, 1_730_000_000, 121_100_000)
    assert report.member(Agency.POLICE).tax_alerts == 0


def test_referrals_are_joined_with_outcomes_by_case_ref(report: SixMonthReport, scenario: Scenario) -> None:
    office = report.member(Agency.MARKET_SURVEILLANCE)
    refs = {r.case_ref: r for r in office.referrals}
    assert set(refs) == {"QLTT-2021-001", "QLTT-2021-002"}
    done = refs["QLTT-2021-001"]
    assert [o.event_id for o in done.outcomes] == [eid(scenario.out_r1)]
    assert (done.fine_vnd, done.goods_seized_value_vnd) == (15_000_000, 36_000_000)
    assert done.outcomes[0].agency == "police"
    assert done.seller == "Nguyễn Văn Hùng (MST 0312345678)"
    assert refs["QLTT-2021-002"].outcomes == ()
    assert office.referrals_with_outcome == 1
    assert office.referral_fine_vnd == 15_000_000
    police = report.member(Agency.POLICE)
    assert (police.outcomes.count, police.outcomes.fine_vnd, police.outcomes.goods_seized_value_vnd) == (
        1,
        15_000_000,
        36_000_000,
    )


def test_referral_answered_by_outcome_in_reply_to_it(store: StandingOfficeStore) -> None:
    referral = case_referral("customs", vn(2021, 2, 1), None, None)
    store.add_event(referral)
    store.add_event(case_outcome("police", vn(2021, 2, 10), None, fine=5_000_000, in_reply_to=eid(referral)))
    report = build_report(store, Period.parse("2021-H1"), now=NOW)
    (line,) = report.member(Agency.CUSTOMS).referrals
    assert line.fine_vnd == 5_000_000
    assert report.overdue == ()


# --- periodic reports, deadlines ----------------------------------------------------------------------


def test_members_without_a_six_monthly_report_for_the_period(
    report: SixMonthReport, scenario: Scenario
) -> None:
    assert report.missing_periodic_reports == (
        Agency.BORDER_GUARD,
        Agency.CUSTOMS,  # filed 2020-H2, not 2021-H1
        Agency.TAX,  # filed a RAPID report, not SIX_MONTHLY
        Agency.INDUSTRY_TRADE,
        Agency.ICT,
        Agency.MEDIA,
        Agency.OTHER_MEMBERS,
    )
    assert report.member(Agency.POLICE).six_monthly_reports == (eid(scenario.police_h1),)


def test_requests_unanswered_past_their_deadline(report: SixMonthReport, scenario: Scenario) -> None:
    overdue = [(o.agency, o.event_type, o.event_id) for o in report.overdue]
    assert overdue == [
        ("border_guard", "case_referral", eid(scenario.bg_open)),  # from the previous period, still open
        ("market_surveillance", "case_referral", eid(scenario.r2)),
        ("police", "domain_block_request", eid(scenario.dbr_c)),
    ]
    by_id = {o.event_id: o for o in report.overdue}
    dbr_c = by_id[eid(scenario.dbr_c)]
    assert dbr_c.deadline == vn(2021, 6, 13, 8)
    assert dbr_c.overdue == vn(2021, 7, 1, 0) - vn(2021, 6, 13, 8)
    assert dbr_c.summary == "dongho-fake.com"


def test_deadlines_come_from_the_settings(store: StandingOfficeStore, scenario: Scenario) -> None:
    strict = ReportSettings(answer_deadline_days={"domain_block_request": 1})
    report = build_report(store, Period.parse("2021-H1"), settings=strict, now=NOW)
    # dbr_a (26 h) and dbr_b (50 h) were answered, late but answered; dbr_d's day passed on 30/06 20:00
    assert {o.event_id for o in report.overdue} == {eid(scenario.dbr_c), eid(scenario.dbr_d)}


def test_a_complaint_without_an_answer_is_overdue(store: StandingOfficeStore) -> None:
    open_complaint = complaint("industry_trade", vn(2021, 3, 1), None, summary="Hàng giả <b>")
    answered = complaint("industry_trade", vn(2021, 3, 2), None)
    store.add_event(open_complaint)
    store.add_event(answered)
    reply = law_gap_proposal("market_surveillance", vn(2021, 3, 6))
    reply["meta"]["in_reply_to"] = answered["meta"]["event_id"]
    store.add_event(reply)
    report = build_report(
        store,
        Period.parse("2021-H1"),
        settings=ReportSettings(answer_deadline_days={"complaint": 15}),
        now=NOW,
    )
    assert [(o.event_id, o.summary) for o in report.overdue] == [(eid(open_complaint), "Hàng giả <b>")]


# --- correlation ---------------------------------------------------------------------------------------


def test_one_seller_reported_by_three_members_is_correlated(
    report: SixMonthReport, scenario: Scenario
) -> None:
    groups = [(g.kind, g.value, g.agencies) for g in report.correlations]
    three = ("police", "tax", "market_surveillance")
    assert groups == [
        ("seller", "nguyễn văn hùng|0312345678", three),
        ("tax_code", "0312345678", three),
        ("phone", "0912345678", ("police", "market_surveillance")),
        ("account", "SHOPEE:hung shop", ("police", "market_surveillance")),
    ]
    seller_group = report.correlations[0]
    # the police's reports just before and just after the period are listed too, marked as such
    assert [(r.agency, r.event_type, r.event_id, r.when) for r in seller_group.reports] == [
        ("police", "suspect_seller", eid(scenario.ss_before), "earlier"),
        ("police", "suspect_seller", eid(scenario.ss1), "period"),
        ("tax", "tax_discrepancy", eid(scenario.td1), "period"),
        ("market_surveillance", "complaint", eid(scenario.cmp1), "period"),
        ("market_surveillance", "case_referral", eid(scenario.r1), "period"),
        ("police", "suspect_seller", eid(scenario.ss_after), "later"),
    ]
    # each report keeps its own spelling (NFC for display)
    assert seller_group.reports[2].label == "NGUYỄN  VĂN  HÙNG (MST 0312 345 678)"


def test_what_only_one_member_reported_is_not_correlated(report: SixMonthReport) -> None:
    values = {g.value for g in report.correlations}
    # same name, other tax code (customs); two reports by the police alone; tax alone; a domain the
    # police both reported and asked to block, which the ICT's result repeats (an answer, not a report)
    for single in (
        "nguyễn văn hùng|0399999999",
        "0399999999",
        "0987654321",
        "lê văn tám|0355555555",
        "trần thị mai|0401234567",
        "0401234567",
        "hangxachtay-hung.vn",
    ):
        assert single not in values


def test_correlation_meets_reports_of_other_periods(store: StandingOfficeStore) -> None:
    who = seller("Phan Văn Long", tax_code="0311111111")
    store.add_event(suspect_seller("police", vn(2021, 6, 30, 23), who))
    store.add_event(suspect_seller("customs", vn(2021, 7, 1, 1), who))
    # a report made before the customs' event existed shows only what was reported by then
    assert build_report(store, Period.parse("2021-H1"), now=vn(2021, 7, 1, 0, 30)).correlations == ()
    h1 = build_report(store, Period.parse("2021-H1"), now=vn(2022, 1, 5))
    h2 = build_report(store, Period.parse("2021-H2"), now=vn(2022, 1, 5))
    assert {g.agencies for g in h1.correlations} == {("police", "customs")}
    assert [r.when for r in h1.correlations[0].reports] == ["period", "later"]
    assert [r.when for r in h2.correlations[0].reports] == ["earlier", "period"]
    # the tax office's alert about 2021 revenue, published in 2026, meets the 2021 reports
    store.add_event(tax_discrepancy(vn(2026, 3, 1), who, undeclared=1, owed=1))
    h2026 = build_report(store, Period.parse("2026-H1"), now=vn(2026, 7, 5))
    assert {g.agencies for g in h2026.correlations} == {("police", "customs", "tax")}
    assert [r.when for r in h2026.correlations[0].reports] == ["earlier", "earlier", "period"]


def test_an_empty_store_gives_an_empty_report(store: StandingOfficeStore) -> None:
    report = build_report(store, Period.parse("2023-H2"), now=vn(2024, 1, 2))
    assert report.events_total == 0
    assert report.overdue == () and report.correlations == ()
    assert len(report.missing_periodic_reports) == len(REPORTING_MEMBERS)
