"""The rules the models add to the .avsc: identifiers, domains, URLs, money, periods, text, meta."""

from __future__ import annotations

import unicodedata
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from bus389.agencies import Agency
from bus389.errors import InputError, UnknownEventTypeError
from bus389.events import (
    EVENT_MODELS,
    CaseOutcome,
    DomainBlockRequest,
    EventMeta,
    Person,
    Platform,
    Seller,
    SellerAccount,
    SuspectSeller,
    TaxDiscrepancy,
    Tlp,
    Urgency,
    build_event,
    new_meta,
    parse_event,
    validation_problems,
)
from bus389.events._rules import (
    check_domain,
    check_ip,
    check_national_id,
    check_period,
    check_phone,
    check_tax_code,
    check_url,
    to_utc_millis,
)

NOW = datetime(2021, 7, 1, 2, 0, tzinfo=UTC)


def _problems(call: Any, *args: Any, **kwargs: Any) -> list[str]:
    with pytest.raises(ValidationError) as info:
        call(*args, **kwargs)
    return validation_problems(info.value)


def _suspect(**fields: Any) -> dict[str, Any]:
    return {
        "seller": {"name": "Lê Văn Tám"},
        "goods": "Thuốc lá",
        "summary": "Rao bán thuốc lá lậu",
        **fields,
    }


def _tax(**fields: Any) -> dict[str, Any]:
    return {
        "seller": {"name": "Phạm Thị Lan", "tax_code": "4300123456"},
        "period": "2021-H1",
        "estimated_revenue_vnd": 900_000_000,
        "declared_revenue_vnd": 100_000_000,
        "undeclared_revenue_vnd": 800_000_000,
        "estimated_tax_owed_vnd": 40_000_000,
        **fields,
    }


# ---------------------------------------------------------------- identifiers


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("4300123456", "4300123456"), (" 0101243150-001 ", "0101243150-001")],
)
def test_tax_code_good(raw: str, expected: str) -> None:
    assert check_tax_code(raw) == expected
    assert Seller(name="A", tax_code=raw).tax_code == expected


@pytest.mark.parametrize(
    "raw",
    [
        "430012345",
        "43001234567",
        "4300123456-01",
        "4300123456001",
        "43OO123456",
        "4300123456-0011",
        "430 0123456",
    ],
)
def test_tax_code_bad(raw: str) -> None:
    assert _problems(Seller, name="A", tax_code=raw) == [
        f"tax_code: {raw!r} is not a Vietnamese tax code (10 digits, or 10 digits-3 digits for a branch)"
    ]


@pytest.mark.parametrize(
    ("raw", "expected"), [("051190000123", "051190000123"), ("212 345 678", "212345678")]
)
def test_national_id_good(raw: str, expected: str) -> None:
    assert check_national_id(raw) == expected
    assert Person(full_name="A", national_id=raw).national_id == expected


@pytest.mark.parametrize("raw", ["12345678", "1234567890", "12345678901", "1234567890123", "05119000012X"])
def test_national_id_bad(raw: str) -> None:
    assert _problems(Person, full_name="A", national_id=raw) == [
        f"national_id: {raw!r} is not a national ID number (9 or 12 digits)"
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0912345678", "+84912345678"),
        ("0912 345 678", "+84912345678"),
        ("091.234.5678", "+84912345678"),
        ("+84 912 345 678", "+84912345678"),
        ("+84 (0) 912-345-678", "+84912345678"),
        ("0084912345678", "+84912345678"),
        ("84912345678", "+84912345678"),
        ("0255 3822 123", "+842553822123"),
        ("+84 255 3822 123", "+842553822123"),
        ("+86 138 0013 8000", "+8613800138000"),
    ],
)
def test_phone_good_is_normalised(raw: str, expected: str) -> None:
    assert check_phone(raw) == expected
    assert Seller(name="A", phone=raw).phone == expected


@pytest.mark.parametrize(
    "raw",
    [
        "091234567",
        "09123456789",
        "0112345678",
        "912345678",
        "+84 112 345 678",
        "hotline",
        "0912-345-67x",
        "+12",
    ],
)
def test_phone_bad(raw: str) -> None:
    problems = _problems(Seller, name="A", phone=raw)
    assert len(problems) == 1 and problems[0].startswith(f"phone: {raw!r} is not"), problems


# ---------------------------------------------------------------- domains, URLs, IP addresses


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Example.VN", "example.vn"),
        ("shop.example.com.vn.", "shop.example.com.vn"),
        ("mỹphẩm.vn", "xn--mphm-ds5apv.vn"),
        ("MỸPHẨM.VN", "xn--mphm-ds5apv.vn"),
        ("xn--mphm-ds5apv.vn", "xn--mphm-ds5apv.vn"),
        ("a-b.c1.io", "a-b.c1.io"),
    ],
)
def test_domain_good_is_lowercase_a_labels(raw: str, expected: str) -> None:
    assert check_domain(raw) == expected


def test_domain_decomposed_input_gives_the_same_a_label() -> None:
    data = _suspect(domains=[unicodedata.normalize("NFD", "mỹphẩm.vn")])
    assert SuspectSeller.model_validate(
        {**data, "meta": new_meta("suspect_seller", "police").model_dump()}
    ).domains == ["xn--mphm-ds5apv.vn"]


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("localhost", "needs a dot"),
        ("https://example.vn/x", "a URL goes in 'urls'"),
        ("example.vn:8080", "a URL goes in 'urls'"),
        ("-bad.vn", "not a valid domain name"),
        ("bad-.vn", "not a valid domain name"),
        ("a..vn", "not a valid domain name"),
        ("under_score.vn", "not a valid domain name"),
        ("*.example.vn", "not a valid domain name"),
        ("xn--zz.vn", "not a valid domain name"),
        ("x" * 64 + ".vn", "not a valid domain name"),
        ("1.2.3.4", "all-digit top-level label"),
        ("", "must not be empty"),
        ("has space.vn", "not a valid domain name"),
    ],
)
def test_domain_bad(raw: str, why: str) -> None:
    with pytest.raises(ValueError) as info:
        check_domain(raw)
    assert why in str(info.value)


def test_domain_rule_applies_in_models() -> None:
    meta = new_meta("domain_block_request", "police").model_dump()
    problems = _problems(
        DomainBlockRequest.model_validate,
        {
            "meta": meta,
            "domains": ["ok.vn", "bad_domain.vn"],
            "action": "BLOCK",
            "reason": "r",
            "legal_basis": "b",
        },
    )
    assert len(problems) == 1 and problems[0].startswith(
        "domains.1: 'bad_domain.vn' is not a valid domain name"
    )


@pytest.mark.parametrize(
    "raw",
    [
        "https://shopee.vn/shop/123?x=1",
        "http://example.com.vn",
        "https://203.0.113.9:8443/a",
        "https://[2001:db8::1]/",
        "https://mỹphẩm.vn/sản-phẩm",
        "HTTPS://Example.VN/",
    ],
)
def test_url_good_is_kept_as_written(raw: str) -> None:
    assert check_url(raw) == raw
    assert SellerAccount(platform=Platform.WEBSITE, account="a", url=raw).url == raw


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("ftp://example.vn/file", "not an http or https URL"),
        ("example.vn/page", "not an http or https URL"),
        ("https://", "has no host"),
        ("https:///path", "has no host"),
        ("https://exa mple.vn", "contains spaces"),
        ("https://bad_host.vn/", "invalid host"),
        ("https://example.vn:99999/", "not a URL"),
        ("javascript:alert(1)", "not an http or https URL"),
    ],
)
def test_url_bad(raw: str, why: str) -> None:
    with pytest.raises(ValueError) as info:
        check_url(raw)
    assert why in str(info.value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("203.0.113.45", "203.0.113.45"),
        (" 2001:DB8:0:0::7 ", "2001:db8::7"),
        ("::ffff:1.2.3.4", "::ffff:102:304"),
    ],
)
def test_ip_good_is_normalised(raw: str, expected: str) -> None:
    assert check_ip(raw) == expected


@pytest.mark.parametrize("raw", ["256.1.1.1", "1.2.3", "203.0.113.0/24", "example.vn", "01.2.3.4"])
def test_ip_bad(raw: str) -> None:
    with pytest.raises(ValueError, match="is not an IPv4 or IPv6 address"):
        check_ip(raw)


# ---------------------------------------------------------------- money, counts, periods


@pytest.mark.parametrize("field", ["estimated_revenue_vnd", "declared_revenue_vnd", "estimated_tax_owed_vnd"])
def test_money_is_never_negative(field: str) -> None:
    problems = _problems(build_event, "tax_discrepancy", "tax", _tax(**{field: -1}))
    assert f"{field}: Input should be greater than or equal to 0" in problems


def test_money_must_be_whole_dong_and_fit_a_long() -> None:
    assert _problems(build_event, "tax_discrepancy", "tax", _tax(estimated_tax_owed_vnd=1.5)) == [
        "estimated_tax_owed_vnd: Input should be a valid integer, got a number with a fractional part"
    ]
    assert _problems(build_event, "tax_discrepancy", "tax", _tax(estimated_tax_owed_vnd=2**63)) == [
        "estimated_tax_owed_vnd: Input should be less than or equal to 9223372036854775807"
    ]
    problems = _problems(
        build_event,
        "case_outcome",
        "police",
        {"outcome": "WARNING", "decided_on": "2021-01-01", "summary": "s", "fine_vnd": -5},
    )
    assert problems == ["fine_vnd: Input should be greater than or equal to 0"]


def test_counts_are_never_negative_and_fit_an_int() -> None:
    base = {"report_kind": "RAPID", "period": "2021", "title": "t", "body": "b"}
    assert _problems(build_event, "periodic_report", "tax", {**base, "cases_detected": -1}) == [
        "cases_detected: Input should be greater than or equal to 0"
    ]
    assert _problems(build_event, "periodic_report", "tax", {**base, "domains_blocked": 2**31}) == [
        "domains_blocked: Input should be less than or equal to 2147483647"
    ]


def test_undeclared_revenue_must_be_the_difference() -> None:
    assert build_event("tax_discrepancy", "tax", _tax()).undeclared_revenue_vnd == 800_000_000  # type: ignore[attr-defined]
    assert _problems(build_event, "tax_discrepancy", "tax", _tax(undeclared_revenue_vnd=700_000_000)) == [
        "(event): undeclared_revenue_vnd must be estimated_revenue_vnd - declared_revenue_vnd = 800000000, "
        "not 700000000"
    ]
    # declared above estimated: the difference is negative, which no amount may be
    problems = _problems(
        build_event,
        "tax_discrepancy",
        "tax",
        _tax(declared_revenue_vnd=1_000_000_000, undeclared_revenue_vnd=-100_000_000),
    )
    assert problems == ["undeclared_revenue_vnd: Input should be greater than or equal to 0"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2021", "2021"),
        ("2021-H1", "2021-H1"),
        ("2021-h2", "2021-H2"),
        ("2021-Q3", "2021-Q3"),
        ("2021-07", "2021-07"),
        ("2023-12", "2023-12"),
    ],
)
def test_period_good(raw: str, expected: str) -> None:
    assert check_period(raw) == expected


@pytest.mark.parametrize(
    "raw", ["2021-H3", "2021-Q5", "2021-13", "2021-00", "21-H1", "2021/07", "2021-7", "H1-2021", "1999"]
)
def test_period_bad(raw: str) -> None:
    problems = _problems(build_event, "tax_discrepancy", "tax", _tax(period=raw))
    assert problems == [f"period: {raw!r} is not a period (YYYY, YYYY-H1/H2, YYYY-Q1..Q4 or YYYY-MM)"]


# ---------------------------------------------------------------- text


def test_all_text_is_nfc_byte_for_byte() -> None:
    name = "Nguyễn Thị Hồng Nhung"
    address = "Thôn Phú Thọ, xã Nghĩa Hà, TP. Quảng Ngãi"
    nfd = {k: unicodedata.normalize("NFD", v) for k, v in {"name": name, "address": address}.items()}
    assert nfd["name"].encode() != name.encode()
    event = build_event(
        "suspect_seller",
        "police",
        _suspect(
            seller={**nfd, "province": unicodedata.normalize("NFD", "Quảng Ngãi")},
            accounts=[{"platform": "ZALO", "account": unicodedata.normalize("NFD", "Hồng Nhung")}],
            goods=unicodedata.normalize("NFD", "Mỹ phẩm"),
            meta={"case_ref": unicodedata.normalize("NFD", "Vụ-Đức")},
        ),
    )
    assert isinstance(event, SuspectSeller)
    assert event.seller.name.encode("utf-8") == name.encode("utf-8")
    assert event.seller.address == address
    assert event.seller.province == "Quảng Ngãi"
    assert event.accounts[0].account == "Hồng Nhung"
    assert event.goods == "Mỹ phẩm"
    assert event.meta.case_ref == "Vụ-Đức"
    for text in (event.seller.name, event.seller.address, event.goods):
        assert unicodedata.is_normalized("NFC", text)


def test_text_is_kept_as_written_otherwise() -> None:
    event = build_event(
        "law_gap_proposal", "ict", {"regulation": "  NĐ 52/2013  ", "problem": "a\nb", "proposal": "c"}
    )
    assert event.regulation == "  NĐ 52/2013  "  # type: ignore[attr-defined]
    assert event.problem == "a\nb"  # type: ignore[attr-defined]


def test_required_text_must_not_be_blank() -> None:
    assert _problems(
        build_event, "law_gap_proposal", "ict", {"regulation": "  ", "problem": "p", "proposal": ""}
    ) == [
        "regulation: must not be empty",
        "proposal: must not be empty",
    ]


def test_blank_optionals_mean_not_given() -> None:
    seller = Seller(name="A", tax_code="", national_id=" ", phone="", address="", province="  ")
    assert seller.model_dump() == {
        "name": "A",
        "tax_code": None,
        "national_id": None,
        "phone": None,
        "address": None,
        "province": None,
    }


# ---------------------------------------------------------------- frozen, no unknown fields, enums


def test_unknown_fields_are_errors_naming_them() -> None:
    problems = _problems(
        build_event,
        "suspect_seller",
        "police",
        _suspect(
            sellr={"name": "x"},
            seller={"name": "A", "taxcode": "4300123456"},
            accounts=[{"platform": "TIKI", "account": "a", "link": "x"}],
        ),
    )
    assert sorted(problems) == [
        "accounts.0.link: unknown field",
        "seller.taxcode: unknown field",
        "sellr: unknown field",
    ]


def test_models_are_frozen() -> None:
    event = build_event("suspect_seller", "police", _suspect())
    with pytest.raises(ValidationError, match="frozen"):
        event.meta = event.meta  # type: ignore[misc]
    with pytest.raises(ValidationError, match="frozen"):
        event.seller.name = "B"  # type: ignore[attr-defined]


def test_enums_accept_any_case_and_refuse_unknown_symbols() -> None:
    event = build_event(
        "suspect_seller",
        "police",
        _suspect(accounts=[{"platform": "tiktok_shop", "account": "a"}], violation_kinds=["counterfeit"]),
    )
    assert event.accounts[0].platform is Platform.TIKTOK_SHOP  # type: ignore[attr-defined]
    problems = _problems(build_event, "suspect_seller", "police", _suspect(violation_kinds=["PIRACY"]))
    assert len(problems) == 1 and problems[0].startswith("violation_kinds.0: Input should be 'SMUGGLING'")


def test_wrong_types_are_named() -> None:
    problems = _problems(
        build_event,
        "suspect_seller",
        "police",
        _suspect(goods_imported="maybe", estimated_value_vnd="lots", domains="a.vn"),
    )
    assert sorted(p.split(":")[0] for p in problems) == ["domains", "estimated_value_vnd", "goods_imported"]


def test_block_request_must_name_something_to_block() -> None:
    data = {"action": "BLOCK", "reason": "r", "legal_basis": "CV 12/2021"}
    assert _problems(build_event, "domain_block_request", "police", data) == [
        "(event): a block request needs at least one of domains, urls or ip_addresses"
    ]
    assert build_event("domain_block_request", "police", {**data, "ip_addresses": ["2001:db8::1"]})


def test_block_result_must_answer_a_request() -> None:
    data = {"requester": "police", "outcome": "BLOCKED", "decided_at": "2021-03-16T10:45:00+07:00"}
    assert _problems(build_event, "domain_block_result", "ict", data) == [
        "(event): meta.in_reply_to must be the event_id of the domain_block_request answered"
    ]
    request_id = str(uuid.uuid4())
    result = build_event("domain_block_result", "ict", {**data, "meta": {"in_reply_to": request_id.upper()}})
    assert result.meta.in_reply_to == request_id


def test_meta_event_type_must_be_the_models() -> None:
    meta = new_meta("complaint", "police").model_dump()
    problems = _problems(parse_event, "suspect_seller", {"meta": meta, **_suspect()})
    assert problems == ["(event): meta.event_type is 'complaint' but this is a 'suspect_seller' event"]


def test_event_ids_are_uuids() -> None:
    meta = new_meta("suspect_seller", "police").model_dump()
    problems = _problems(
        parse_event, "suspect_seller", {"meta": {**meta, "event_id": "not-a-uuid"}, **_suspect()}
    )
    assert problems == ["meta.event_id: 'not-a-uuid' is not a UUID"]
    upper = str(uuid.uuid4()).upper()
    assert (
        parse_event("suspect_seller", {"meta": {**meta, "event_id": upper}, **_suspect()}).event_id
        == upper.lower()
    )


# ---------------------------------------------------------------- times


def test_times_are_utc_milliseconds_and_naive_means_vietnam_time() -> None:
    assert to_utc_millis(datetime(2021, 7, 1, 9, 0, 0, 123456)) == datetime(
        2021, 7, 1, 2, 0, 0, 123000, tzinfo=UTC
    )
    plus7 = datetime(2021, 7, 1, 9, 0, tzinfo=timezone(timedelta(hours=7)))
    assert to_utc_millis(plus7) == datetime(2021, 7, 1, 2, 0, tzinfo=UTC)
    event = build_event(
        "complaint",
        "industry_trade",
        {"kind": "COMPLAINT", "channel": "EMAIL", "received_at": "2021-04-02T08:05:00", "summary": "s"},
    )
    assert event.received_at == datetime(2021, 4, 2, 1, 5, tzinfo=UTC)  # type: ignore[attr-defined]
    assert _problems(
        build_event,
        "complaint",
        "industry_trade",
        {"kind": "COMPLAINT", "channel": "EMAIL", "received_at": "yesterday", "summary": "s"},
    )[0].startswith("received_at: ")


def test_dates() -> None:
    event = build_event(
        "case_outcome", "police", {"outcome": "WARNING", "decided_on": "2021-05-20", "summary": "s"}
    )
    assert isinstance(event, CaseOutcome) and event.decided_on == date(2021, 5, 20)
    assert _problems(
        build_event,
        "case_outcome",
        "police",
        {"outcome": "WARNING", "decided_on": "2021-02-30", "summary": "s"},
    )[0].startswith("decided_on: ")


# ---------------------------------------------------------------- meta: new_meta and build_event


def test_new_meta_fills_identity_and_times() -> None:
    meta = new_meta("suspect_seller", Agency.POLICE, now=NOW)
    assert isinstance(meta, EventMeta)
    assert uuid.UUID(meta.event_id).version == 4
    assert meta.published_at == meta.occurred_at == NOW
    assert (meta.sensitivity, meta.urgency, meta.case_ref, meta.in_reply_to) == (
        Tlp.RED,
        Urgency.ROUTINE,
        None,
        None,
    )
    other = new_meta(
        "suspect_seller", "police", occurred_at=NOW - timedelta(days=1), sensitivity="amber", now=NOW
    )
    assert other.occurred_at == NOW - timedelta(days=1) and other.sensitivity is Tlp.AMBER
    assert other.event_id != meta.event_id


def test_build_event_fills_meta() -> None:
    event = build_event("suspect_seller", "police", _suspect(), now=NOW)
    meta = event.meta
    assert (meta.event_type, meta.source, meta.published_at, meta.occurred_at) == (
        "suspect_seller",
        Agency.POLICE,
        NOW,
        NOW,
    )
    assert uuid.UUID(meta.event_id).version == 4
    assert meta.sensitivity is Tlp.RED  # fail closed when the publisher says nothing
    given = build_event(
        "suspect_seller",
        "police",
        _suspect(
            meta={
                "occurred_at": "2021-06-30T08:00:00+07:00",
                "case_ref": "QNG-1",
                "sensitivity": "GREEN",
                "urgency": "IMMEDIATE",
                "in_reply_to": None,
                "recipients": ["customs", "police"],
            }
        ),
        now=NOW,
        event_id="8f14e45f-ceea-4e7a-9a1b-2a0c9d3b7e51",
    )
    assert given.meta.model_dump() == {
        "event_id": "8f14e45f-ceea-4e7a-9a1b-2a0c9d3b7e51",
        "event_type": "suspect_seller",
        "source": Agency.POLICE,
        "occurred_at": datetime(2021, 6, 30, 1, 0, tzinfo=UTC),
        "published_at": NOW,
        "case_ref": "QNG-1",
        "in_reply_to": None,
        "sensitivity": Tlp.GREEN,
        "urgency": Urgency.IMMEDIATE,
        "recipients": [Agency.CUSTOMS, Agency.POLICE],
    }


def test_build_event_accepts_consistent_and_rejects_contradicting_meta() -> None:
    consistent = {"source": "police", "event_type": "suspect_seller"}
    assert build_event("suspect_seller", "police", _suspect(meta=consistent)).source is Agency.POLICE
    problems = _problems(build_event, "suspect_seller", "police", _suspect(meta={"source": "tax"}, goods=""))
    assert problems == ["meta.source: 'tax' contradicts the publisher's 'police'", "goods: must not be empty"]
    problems = _problems(build_event, "suspect_seller", "police", _suspect(meta={"event_type": "complaint"}))
    assert problems == ["meta.event_type: 'complaint' contradicts the publisher's 'suspect_seller'"]
    given_id = str(uuid.uuid4())
    problems = _problems(
        build_event,
        "suspect_seller",
        "police",
        _suspect(meta={"event_id": str(uuid.uuid4())}),
        event_id=given_id,
    )
    assert len(problems) == 1 and problems[0].startswith("meta.event_id: ")
    from_data = build_event("suspect_seller", "police", _suspect(meta={"event_id": given_id}))
    assert from_data.event_id == given_id


def test_build_event_rejects_meta_the_bus_sets() -> None:
    problems = _problems(
        build_event,
        "suspect_seller",
        "police",
        _suspect(meta={"published_at": "2021-01-01T00:00:00Z", "priority": 1}),
    )
    allowed = "a publisher may set only occurred_at, case_ref, in_reply_to, sensitivity, urgency, recipients"
    assert problems == [
        f"meta.published_at: set by the bus; {allowed}",
        f"meta.priority: set by the bus; {allowed}",
    ]
    assert _problems(build_event, "suspect_seller", "police", _suspect(meta="urgent")) == [
        "meta: meta must be an object"
    ]


def test_build_event_unknown_type_or_agency() -> None:
    with pytest.raises(UnknownEventTypeError, match="unknown event type 'seller'"):
        build_event("seller", "police", {})
    with pytest.raises(InputError, match="unknown agency 'army'"):
        build_event("suspect_seller", "army", _suspect())
    with pytest.raises(UnknownEventTypeError):
        parse_event("nope", {})


def test_build_event_refuses_a_non_object() -> None:
    assert _problems(build_event, "suspect_seller", "police", ["not", "a", "dict"])[0].startswith(
        "(event): Input should be a valid dictionary"
    )  # type: ignore[arg-type]


def test_validation_problems_format_paths() -> None:
    problems = _problems(
        build_event,
        "complaint",
        "industry_trade",
        {
            "kind": "COMPLAINT",
            "channel": "EMAIL",
            "received_at": NOW,
            "summary": "s",
            "complainant": {"full_name": "A", "phone": "12"},
            "accounts": [{"platform": "X", "account": "a"}],
        },
    )
    assert [p.split(":")[0] for p in problems] == ["complainant.phone", "accounts.0.platform"]


def test_json_dict_is_json_safe() -> None:
    import json

    event = build_event(
        "case_outcome",
        "police",
        {"outcome": "WARNING", "decided_on": "2021-05-20", "summary": "Cảnh cáo"},
        now=NOW,
    )
    data = event.to_json_dict()
    assert json.loads(json.dumps(data, ensure_ascii=False)) == data
    assert data["decided_on"] == "2021-05-20"
    assert data["meta"]["published_at"] == "2021-07-01T02:00:00Z"
    assert data["meta"]["source"] == "police" and data["outcome"] == "WARNING"
    assert type(event).model_validate(data) == event


def test_every_model_is_registered_under_its_type() -> None:
    assert set(EVENT_MODELS) == {
        "suspect_seller",
        "domain_block_request",
        "tax_discrepancy",
        "domain_block_result",
        "complaint",
        "case_referral",
        "case_outcome",
        "periodic_report",
        "law_gap_proposal",
        "routing_notice",
        "directive",
        "case_claim",
        "inspection_result",
        "compiled_report",
    }
    assert EVENT_MODELS["tax_discrepancy"] is TaxDiscrepancy
