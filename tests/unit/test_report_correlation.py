"""Correlation keys: equivalent spellings normalise to one key, different sellers never do."""

from __future__ import annotations

import unicodedata

import pytest
from _so_records import account, domain_block_request, domain_block_result, seller, suspect_seller, vn

from bus389.consumers.standing_office.correlation import (
    CorrelationKey,
    extract_keys,
    normalise_domain,
    normalise_name,
    normalise_phone,
    normalise_tax_code,
)


@pytest.mark.parametrize(
    "spelling",
    [
        "Nguyễn Văn Hùng",
        "NGUYỄN VĂN HÙNG",
        "  nguyễn   văn\thùng ",
        unicodedata.normalize("NFD", "Nguyễn Văn Hùng"),
        unicodedata.normalize("NFD", "NGUYỄN  VĂN HÙNG"),
        "Nguyễn-Văn-Hùng.",
    ],
)
def test_equivalent_names_normalise_equal(spelling: str) -> None:
    assert normalise_name(spelling) == "nguyễn văn hùng"


@pytest.mark.parametrize(("a", "b"), [("Lê Văn Tám", "Lễ Văn Tám"), ("Nguyễn Văn Hùng", "Nguyen Van Hung")])
def test_diacritics_keep_names_apart(a: str, b: str) -> None:
    assert normalise_name(a) != normalise_name(b)


def test_d_with_stroke_folds_case() -> None:
    assert normalise_name("ĐẶNG THỊ HOA") == normalise_name("đặng thị hoa") == "đặng thị hoa"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0312345678", "0312345678"),
        (" 0312 345 678 ", "0312345678"),
        ("0312.345.678", "0312345678"),
        ("0312345678001", "0312345678-001"),
        ("0312345678 - 001", "0312345678-001"),
    ],
)
def test_tax_codes(raw: str, expected: str) -> None:
    assert normalise_tax_code(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0912345678", "0912345678"),
        ("+84 912 345 678", "0912345678"),
        ("84912345678", "0912345678"),
        ("0084 912 345 678", "0912345678"),
        ("0912.345.678", "0912345678"),
        ("(0255) 3822 111", "02553822111"),
        ("113", ""),
    ],
)
def test_phones(raw: str, expected: str) -> None:
    assert normalise_phone(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Example.VN", "example.vn"),
        ("https://www.example.vn/path?q=1", "example.vn"),
        ("example.vn.", "example.vn"),
        ("http://shop.example.vn:8080/", "shop.example.vn"),
        ("hàngxáchtay.vn", "xn--hngxchtay-q1ao.vn"),
        ("XN--HNGXCHTAY-Q1AO.vn", "xn--hngxchtay-q1ao.vn"),
        ("", ""),
    ],
)
def test_domains(raw: str, expected: str) -> None:
    assert normalise_domain(raw) == expected


def test_keys_of_a_suspect_seller() -> None:
    record = suspect_seller(
        "police",
        vn(2021, 3, 1),
        seller("Nguyễn Văn Hùng", tax_code="0312345678", phone="+84912345678", national_id="051090001234"),
        domains=["WWW.HangXachTay-Hung.vn", "shopee.vn"],
        accounts=[account("FACEBOOK", "@hung.shop", "https://facebook.com/hung.shop")],
    )
    keys = extract_keys("suspect_seller", record, ignore_domains=["shopee.vn", "facebook.com"])
    assert [(k.kind, k.value) for k in keys] == [
        ("account", "FACEBOOK:hung shop"),
        ("domain", "hangxachtay-hung.vn"),
        ("national_id", "051090001234"),
        ("phone", "0912345678"),
        ("seller", "nguyễn văn hùng|0312345678"),
        ("tax_code", "0312345678"),
    ]
    assert CorrelationKey("domain", "hangxachtay-hung.vn", "WWW.HangXachTay-Hung.vn") in keys


def test_seller_without_tax_code_is_keyed_by_name_alone() -> None:
    record = suspect_seller("customs", vn(2021, 3, 1), seller("Trần Thị Mai"))
    assert [(k.kind, k.value) for k in extract_keys("suspect_seller", record)] == [
        ("seller", "trần thị mai|")
    ]


def test_block_request_urls_give_domains_but_results_give_nothing() -> None:
    request = domain_block_request("police", vn(2021, 3, 1), ["a.vn"], urls=["https://b.example.com/x"])
    assert [k.value for k in extract_keys("domain_block_request", request)] == ["a.vn", "b.example.com"]
    result = domain_block_result(request, "BLOCKED", vn(2021, 3, 2))
    assert extract_keys("domain_block_result", result) == []
