"""One spreadsheet row → one ``tax_discrepancy`` alert: the discrepancy, the tax owed, the event id.

What a row becomes:

- **discrepancy** = estimated revenue − declared revenue. A row with none (declared ≥ estimated) is no
  alert: it is *skipped*, not rejected.
- **estimated tax owed** on the undeclared revenue, at the rates of Circular 40/2021/TT-BTC for
  household and individual businesses (Appendix I): for the distribution and supply of goods, which is
  what online sellers do, VAT 1 % and PIT 0.5 %, i.e. 1.5 %. The rates are :class:`TaxRates`
  in basis points (settings ``BUS389_TAX__VAT_RATE_BP`` and ``BUS389_TAX__PIT_RATE_BP``). Arithmetic is
  integer đồng: each tax is rounded half up to the đồng on its own, as the declaration form computes
  them, then the two are added.
- **platform**: the Vietnamese or English name of the platform ("Shopee", "Sàn Lazada", "TikTok Shop",
  "Facebook", "Zalo", "Website riêng", "Khác", ...) or its web address, mapped to the ``Platform`` enum.
- **period**: "6 tháng đầu năm 2021", "2021-H1", "Quý 3/2021", "Quý III/2021", "07/2021",
  "Tháng 7 năm 2021", "2021" (or a date, "01/07/2021" or a date cell, whose month is taken) →
  ``2021-H1``, ``2021-Q3``, ``2021-07``, ``2021``.
- **event id**: HMAC-SHA256, keyed with the tax office's alert-id key
  (:mod:`~bus389.producers.tax.id_key`), of ``"tax_discrepancy|<identity>|<PLATFORM>|<period>"``, its
  first 128 bits made a UUID (version 8, RFC 9562), where the identity is the tax code, or ``account:``
  and the account folded to lower case when the row has no tax code. The same row and key give the
  same id on every run (that is what makes re-publishing a file publish no duplicates); without the
  key no other agency can work the id out and publish under it first.
- **handling marks**: TLP ``AMBER`` (tax information is confidential, Law 38/2019/QH14 art. 99: the
  recipients' own staff, on a need-to-know basis); urgency ``PRIORITY`` when the tax owed reaches
  :data:`TAX_EVASION_CRIME_THRESHOLD_VND`, the amount from which evading tax is a crime (Criminal Code
  2015, art. 200), otherwise ``ROUTINE``.

Names, addresses and notes are kept exactly as the clerk typed them (only the white space around a
cell is removed).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

from bus389.producers.tax.headers import Column
from bus389.producers.tax.spreadsheet import CellError, CellValue, Row, Table, cell_text, parse_vnd

__all__ = [
    "ACCEPTED_PLATFORMS",
    "EVENT_TYPE",
    "SENSITIVITY",
    "TAX_EVASION_CRIME_THRESHOLD_VND",
    "AccountRef",
    "Alert",
    "Rejected",
    "RowResult",
    "Skipped",
    "TaxRates",
    "alert_event_id",
    "cell_problem",
    "estimated_tax",
    "normalize_period",
    "parse_account",
    "parse_platform",
    "row_to_alert",
]

EVENT_TYPE = "tax_discrepancy"
SENSITIVITY = "AMBER"
TAX_EVASION_CRIME_THRESHOLD_VND = 100_000_000
"""Tax evaded from which the Criminal Code 2015 (art. 200, as amended 2017) makes it a crime."""


@dataclass(frozen=True)
class TaxRates:
    """Tax rates on the undeclared revenue, in basis points (1/100 of a percent).

    Defaults: Circular 40/2021/TT-BTC, Appendix I, distribution and supply of goods — VAT 1 %
    (100 bp), personal income tax 0.5 % (50 bp).
    """

    vat_bp: int = 100
    pit_bp: int = 50


def _share(amount: int, rate_bp: int) -> int:
    # Half up, in integers: amounts are whole đồng and never negative here.
    return (amount * rate_bp + 5_000) // 10_000


def estimated_tax(undeclared_vnd: int, rates: TaxRates = TaxRates()) -> int:
    """The VAT plus the PIT on ``undeclared_vnd``, each rounded half up to the đồng."""
    if undeclared_vnd < 0:
        raise ValueError("undeclared revenue must not be negative")
    return _share(undeclared_vnd, rates.vat_bp) + _share(undeclared_vnd, rates.pit_bp)


def _fold(text: str) -> str:
    """Lower case without accents ("đ" → "d"), white space collapsed: for matching words, not keeping."""
    text = unicodedata.normalize("NFC", text).casefold().replace("đ", "d")
    text = "".join(ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch))
    return re.sub(r"\s+", " ", text).strip()


# --- platforms ---------------------------------------------------------------------------------------

_PLATFORM_NAMES: dict[str, str] = {
    "SHOPEE": "shopee shopeevn sanshopee shopeemall",
    "LAZADA": "lazada lazadavn sanlazada lazmall",
    "TIKI": "tiki tikivn santiki",
    "SENDO": "sendo sendovn sansendo",
    "TIKTOK_SHOP": "tiktok tiktokshop tiktokvn tiktokshopvn santiktok santiktokshop",
    "FACEBOOK": "facebook fb facebookmarketplace marketplace fanpage fanpagefacebook trangfacebook "
    "facebookcom mangxahoifacebook",
    "ZALO": "zalo zalome zalooa zaloshop",
    "YOUTUBE": "youtube youtubecom",
    "WEBSITE": "website websiterieng web trangweb trangwebrieng trangthongtindientu "
    "websitethuongmaidientu websitetmdt",
    "OTHER": "khac other nentangkhac sankhac",
}
_PLATFORM_BY_KEY = {key: p for p, keys in _PLATFORM_NAMES.items() for key in keys.split()}
_PLATFORM_BY_HOST = {
    "shopee.vn": "SHOPEE",
    "shp.ee": "SHOPEE",
    "lazada.vn": "LAZADA",
    "tiki.vn": "TIKI",
    "sendo.vn": "SENDO",
    "tiktok.com": "TIKTOK_SHOP",
    "facebook.com": "FACEBOOK",
    "fb.com": "FACEBOOK",
    "zalo.me": "ZALO",
    "youtube.com": "YOUTUBE",
    "youtu.be": "YOUTUBE",
}
_PLATFORM_WORDS = {
    "shopee": "SHOPEE",
    "lazada": "LAZADA",
    "tiki": "TIKI",
    "sendo": "SENDO",
    "tiktok": "TIKTOK_SHOP",
    "facebook": "FACEBOOK",
    "zalo": "ZALO",
    "youtube": "YOUTUBE",
}
ACCEPTED_PLATFORMS = "Shopee, Lazada, Tiki, Sendo, TikTok Shop, Facebook, Zalo, YouTube, Website riêng, Khác"


def _platform_of_host(host: str) -> str | None:
    host = host.lower().removeprefix("www.").removeprefix("m.")
    for domain, platform in _PLATFORM_BY_HOST.items():
        if host == domain or host.endswith("." + domain):
            return platform
    return None


def parse_platform(value: CellValue) -> str:
    """The ``Platform`` symbol named by a cell: a platform's name (any case, accents, spacing) or URL."""
    text = cell_text(value)
    if text is None:
        raise CellError("required: the platform is empty")
    if "://" in text or re.fullmatch(r"[\w.-]+\.[a-z]{2,}(/.*)?", text, flags=re.IGNORECASE):
        host = urlsplit(text if "://" in text else "https://" + text).hostname or ""
        platform = _platform_of_host(host)
        if platform is not None:
            return platform
    key = re.sub(r"[^a-z0-9]", "", _fold(text))
    platform = _PLATFORM_BY_KEY.get(key)
    if platform is None:
        # "Sàn TMĐT Shopee", "Gian hàng Lazada": one platform's name inside a longer phrase.
        named = {p for word, p in _PLATFORM_WORDS.items() if word in key}
        platform = named.pop() if len(named) == 1 else None
    if platform is None:
        raise CellError(f"unknown platform {text!r}: use one of {ACCEPTED_PLATFORMS}")
    return platform


@dataclass(frozen=True)
class AccountRef:
    account: str
    url: str | None


def parse_account(value: CellValue) -> AccountRef:
    """An account cell: a handle or shop name, or a link (whose last path segment is the handle)."""
    text = cell_text(value)
    if text is None:
        raise CellError("required: the account or link is empty")
    if not re.match(r"https?://", text, flags=re.IGNORECASE):
        return AccountRef(text, None)
    parts = urlsplit(text)
    segments = [s for s in parts.path.split("/") if s]
    if segments and segments[-1] != "profile.php":
        account = segments[-1]
    else:
        host = (parts.hostname or "").removeprefix("www.")
        account = host + parts.path.rstrip("/") + (f"?{parts.query}" if parts.query else "")
    if not account:
        raise CellError(f"no account in the link {text!r}")
    return AccountRef(account, text)


# --- periods -----------------------------------------------------------------------------------------

_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4}
_YEAR = r"((?:19|20)\d\d)"
_SEP = r"\s*(?:/|-|\.|nam|\s)\s*"
_PERIOD_PATTERNS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (re.compile(rf"(?:nam\s*)?{_YEAR}"), lambda m: m[1]),
    (re.compile(rf"{_YEAR}\s*-?\s*h([12])"), lambda m: f"{m[1]}-H{m[2]}"),
    (re.compile(rf"h([12]){_SEP}{_YEAR}"), lambda m: f"{m[2]}-H{m[1]}"),
    (
        re.compile(rf"(?:6 thang|sau thang|nua)\s+(dau|cuoi)(?:\s+nam)?(?:{_SEP})?{_YEAR}"),
        lambda m: f"{m[2]}-H{1 if m[1] == 'dau' else 2}",
    ),
    (re.compile(rf"{_YEAR}\s*-?\s*q([1-4])"), lambda m: f"{m[1]}-Q{m[2]}"),
    (
        re.compile(rf"(?:quy|q)\s*([1-4]|iv|i{{1,3}}){_SEP}{_YEAR}"),
        lambda m: f"{m[2]}-Q{_ROMAN.get(m[1], m[1])}",
    ),
    (re.compile(rf"(?:thang\s*)?(\d{{1,2}}){_SEP}{_YEAR}"), lambda m: f"{m[2]}-{int(m[1]):02d}"),
    (re.compile(rf"{_YEAR}-(\d{{1,2}})"), lambda m: f"{m[1]}-{int(m[2]):02d}"),
    # A date (as a date cell reads back once written out as text) stands for its month.
    (re.compile(rf"{_YEAR}-(\d{{1,2}})-\d{{1,2}}"), lambda m: f"{m[1]}-{int(m[2]):02d}"),
    (re.compile(rf"\d{{1,2}}/(\d{{1,2}})/{_YEAR}"), lambda m: f"{m[2]}-{int(m[1]):02d}"),
)


def normalize_period(value: CellValue) -> str:
    """The period in the contract's form: ``2021``, ``2021-H1``, ``2021-Q3`` or ``2021-07``."""
    if value is None:
        raise CellError("required: the tax period is empty")
    if isinstance(value, datetime | date):
        return f"{value.year:04d}-{value.month:02d}"
    if isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer():
        value = str(int(value))
    text = cell_text(value)
    if text is None:
        raise CellError("required: the tax period is empty")
    folded = _fold(text)
    for pattern, build in _PERIOD_PATTERNS:
        match = pattern.fullmatch(folded)
        if match is None:
            continue
        period = build(match)
        if re.fullmatch(r"\d{4}-\d\d", period) and not 1 <= int(period[5:]) <= 12:
            break
        return period
    raise CellError(
        f'not a tax period: {text!r} (write e.g. "6 tháng đầu năm 2021", "Quý 3/2021", "07/2021" or "2021")'
    )


# --- ids ---------------------------------------------------------------------------------------------


def alert_event_id(key: bytes, tax_code: str | None, account: str, platform: str, period: str) -> str:
    """The alert's event id: the same key, seller, platform and period always give the same id.

    A UUID (version 8) made of the first 128 bits of HMAC-SHA256(``key``, the canonical string):
    whoever does not hold ``key`` cannot tell which id a row will have.
    """
    if not key:
        raise ValueError("the alert-id key must not be empty")
    identity = tax_code if tax_code else "account:" + unicodedata.normalize("NFC", account).casefold()
    canonical = "|".join((EVENT_TYPE, identity, platform, period)).encode("utf-8")
    digest = bytearray(hmac.new(key, canonical, hashlib.sha256).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x80  # version 8: custom (RFC 9562, section 5.8)
    digest[8] = (digest[8] & 0x3F) | 0x80  # the RFC 4122/9562 variant
    return str(uuid.UUID(bytes=bytes(digest)))


# --- rows --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Alert:
    """A row that is an alert: its event id and the event's fields (everything but ``meta``)."""

    row: Row
    event_id: str
    fields: dict[str, Any]
    urgency: str


@dataclass(frozen=True)
class Skipped:
    """A row that is no alert (nothing undeclared)."""

    row: Row
    reason: str


@dataclass(frozen=True)
class Rejected:
    """A row that cannot be published; each problem reads ``row N, column "<header>": message``."""

    row: Row
    problems: list[str] = field(default_factory=list)

    @property
    def reason(self) -> str:
        return "; ".join(self.problems)


RowResult = Alert | Skipped | Rejected


def cell_problem(table: Table, row: Row, column: Column | None, message: str) -> str:
    """``row N, column "<header as in the file>": message`` (or ``row N: message`` without a column)."""
    if column is None:
        return f"row {row.number}: {message}"
    return f'row {row.number}, column "{table.header(column)}": {message}'


def _number_cell(value: CellValue) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer():
        return str(int(value))
    return None


def _national_id_text(value: CellValue) -> str | None:
    """A national ID typed into a number cell loses its leading zero; every CCCD starts with one."""
    digits = _number_cell(value)
    if digits is None:
        return cell_text(value)
    return "0" + digits if len(digits) == 11 else digits


def _phone_text(value: CellValue) -> str | None:
    """A phone number typed into a number cell loses its leading 0 (trunk prefix): put it back."""
    digits = _number_cell(value)
    if digits is None:
        return cell_text(value)
    return digits if digits.startswith("84") and len(digits) in (11, 12) else "0" + digits


def _province_of(address: str | None) -> str | None:
    """The province named by the address's last part ("..., tỉnh Quảng Ngãi"), if it names one."""
    if not address:
        return None
    last = address.rsplit(",", 1)[-1].strip()
    match = re.match(r"(?i)(?:tỉnh|thành phố|tp\.?)\s+(.+)", unicodedata.normalize("NFC", last))
    return match[1].strip() if match else None


def _vnd(amount: int) -> str:
    return f"{amount:,} đ".replace(",", ".")


def row_to_alert(table: Table, row: Row, *, id_key: bytes, rates: TaxRates = TaxRates()) -> RowResult:
    """Turn one row into an :class:`Alert`, or say why it is :class:`Skipped` or :class:`Rejected`.

    ``id_key`` is the tax office's alert-id key (see :func:`alert_event_id`).

    Only what the spreadsheet itself can say is checked here (amounts, platform, period, required
    cells); the event model checks the rest (tax code and phone formats) when the event is built.
    """
    problems: list[str] = []

    def get(column: Column, parse: Callable[[CellValue], Any]) -> Any:
        try:
            return parse(table.cell(row, column))
        except CellError as exc:
            problems.append(cell_problem(table, row, column, str(exc)))
            return None

    def required_text(value: CellValue) -> str:
        text = cell_text(value)
        if text is None:
            raise CellError("required: the cell is empty")
        return text

    tax_code = cell_text(table.cell(row, Column.TAX_CODE))
    if tax_code is not None:
        tax_code = re.sub(r"\s+", "", tax_code).lstrip("'")
    name = get(Column.SELLER_NAME, required_text)
    platform = get(Column.PLATFORM, parse_platform)
    account: AccountRef | None = get(Column.ACCOUNT, parse_account)
    estimated = get(Column.ESTIMATED_REVENUE, parse_vnd)
    declared = get(Column.DECLARED_REVENUE, parse_vnd)
    period = get(Column.PERIOD, normalize_period)
    if problems or account is None:
        return Rejected(row, problems)

    undeclared = estimated - declared
    if undeclared <= 0:
        return Skipped(
            row,
            f"row {row.number}: nothing undeclared (declared {_vnd(declared)} ≥ estimated {_vnd(estimated)})",
        )
    tax_owed = estimated_tax(undeclared, rates)
    address = cell_text(table.cell(row, Column.ADDRESS))
    fields: dict[str, Any] = {
        "seller": {
            "name": name,
            "tax_code": tax_code,
            "national_id": _national_id_text(table.cell(row, Column.NATIONAL_ID)),
            "phone": _phone_text(table.cell(row, Column.PHONE)),
            "address": address,
            "province": _province_of(address),
        },
        "accounts": [{"platform": platform, "account": account.account, "url": account.url}],
        "period": period,
        "estimated_revenue_vnd": estimated,
        "declared_revenue_vnd": declared,
        "undeclared_revenue_vnd": undeclared,
        "estimated_tax_owed_vnd": tax_owed,
        "notes": cell_text(table.cell(row, Column.NOTES)),
    }
    urgency = "PRIORITY" if tax_owed >= TAX_EVASION_CRIME_THRESHOLD_VND else "ROUTINE"
    event_id = alert_event_id(id_key, tax_code, account.account, platform, period)
    return Alert(row, event_id, fields, urgency)
