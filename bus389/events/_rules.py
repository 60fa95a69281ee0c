"""The rules Avro cannot say, as annotated types: identifiers, domains, URLs, money, periods, times.

Each ``check_*`` function takes the raw text and returns the normalised value or raises ``ValueError``
with a message a clerk can act on. The annotated types below attach them to model fields.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field

from bus389.events._base import AvroType
from bus389.safe_text import has_control

try:  # IDNA 2008 with UTS 46 mapping; the stdlib codec (IDNA 2003) is the fallback.
    import idna as _idna
except ImportError:  # pragma: no cover - the package is a dependency
    _idna = None  # type: ignore[assignment]

__all__ = [
    "VN_TZ",
    "Count",
    "Day",
    "DomainName",
    "EventId",
    "Instant",
    "IpAddress",
    "Long",
    "Money",
    "Name",
    "NationalId",
    "OptEventId",
    "OptInstant",
    "OptMoney",
    "OptName",
    "OptNationalId",
    "OptPhone",
    "OptTaxCode",
    "OptText",
    "OptUrl",
    "Period",
    "Phone",
    "TaxCode",
    "Text",
    "Url",
    "check_domain",
    "check_free_text",
    "check_identifier",
    "check_ip",
    "check_national_id",
    "check_period",
    "check_phone",
    "check_tax_code",
    "check_url",
    "check_uuid",
    "to_utc_millis",
]

VN_TZ = timezone(timedelta(hours=7), "ICT")
"""Vietnam's time zone (UTC+7, no daylight saving): what a time without an offset means."""

_INT_MAX = 2**31 - 1
_LONG_MAX = 2**63 - 1
_TAX_CODE = re.compile(r"^[0-9]{10}(-[0-9]{3})?$")
_NATIONAL_ID = re.compile(r"^(?:[0-9]{9}|[0-9]{12})$")
_PERIOD = re.compile(r"^(20[0-9]{2})(?:-(H[12]|Q[1-4]|0[1-9]|1[0-2]))?$")
_PHONE_SEPARATORS = re.compile(r"[\s.\-()/]")
_LDH_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _blank_to_none(value: Any) -> Any:
    """An empty or blank optional value (an empty spreadsheet cell) means "not given"."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _non_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def check_identifier(value: str) -> str:
    """An identifier (a name, an account, a case reference, a code) holds no control character at all.

    NUL, the C0 and C1 controls (tab and newline included), DEL and the bidirectional overrides,
    isolates and marks are refused: on a terminal or in a spreadsheet they would act, not read.
    """
    found = has_control(value)
    if found is not None:
        raise ValueError(
            f"contains the control character {found}: a name, account, code or reference must be plain "
            "text (no control characters, no bidirectional overrides)"
        )
    return value


def check_free_text(value: str) -> str:
    """Free text (a reason, a note, a summary) may keep tabs and line breaks, but no other control."""
    found = has_control(value, allow_whitespace=True)
    if found is not None:
        raise ValueError(
            f"contains the control character {found}: text may hold line breaks and tabs, but no other "
            "control character and no bidirectional override"
        )
    return value


def check_uuid(value: str) -> str:
    """A UUID in its canonical lowercase form."""
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        raise ValueError(f"{value!r} is not a UUID") from None


def check_tax_code(value: str) -> str:
    """A Vietnamese tax code (mã số thuế): 10 digits, or 10 digits, ``-`` and 3 digits for a branch."""
    code = check_identifier(value).strip()
    if not _TAX_CODE.match(code):
        raise ValueError(
            f"{value!r} is not a Vietnamese tax code (10 digits, or 10 digits-3 digits for a branch)"
        )
    return code


def check_national_id(value: str) -> str:
    """A national ID number: 9 digits (old CMND) or 12 digits (CCCD); spaces are dropped."""
    number = re.sub(r"\s", "", check_identifier(value))
    if not _NATIONAL_ID.match(number):
        raise ValueError(f"{value!r} is not a national ID number (9 or 12 digits)")
    return number


def check_phone(value: str) -> str:
    """A phone number, normalised to ``+<country code><number>`` (E.164 without its length rules).

    Vietnamese numbers are accepted as ``0...``, ``+84...``, ``0084...`` or ``84...`` with any spaces,
    dots, dashes or brackets, and come out as ``+84`` followed by the national number: 9 digits for
    mobiles (first digit 3, 5, 7, 8 or 9), 10 for landlines (first digit 2). Foreign numbers must be
    written with ``+`` and their country code and keep their digits (7 to 15 in all).
    """
    raw = _PHONE_SEPARATORS.sub("", check_identifier(value))
    plus = raw.startswith("+")
    digits = raw[1:] if plus else raw
    if not digits.isascii() or not digits.isdigit():
        raise ValueError(f"{value!r} is not a phone number (digits, with an optional + and separators)")
    if plus and not digits.startswith("84"):
        if not 7 <= len(digits) <= 15:
            raise ValueError(f"{value!r} is not an international phone number (7 to 15 digits after +)")
        return "+" + digits
    if plus:
        national = digits[2:]
    elif digits.startswith("0084"):
        national = digits[4:]
    elif digits.startswith("0"):
        national = digits[1:]
    elif digits.startswith("84") and len(digits) in (11, 12):
        national = digits[2:]
    else:
        raise ValueError(f"{value!r} is not a Vietnamese phone number (start with 0 or +84)")
    if national.startswith("0"):
        national = national[1:]  # "+84 0912..." is a common way of writing "+84 912..."
    mobile = len(national) == 9 and national[0] in "35789"
    landline = len(national) == 10 and national[0] == "2"
    if not (mobile or landline):
        raise ValueError(
            f"{value!r} is not a Vietnamese phone number (mobile 0 + 9 digits, landline 0 + 10 digits)"
        )
    return "+84" + national


def _to_ascii(host: str) -> str:
    if _idna is not None:
        try:
            return str(_idna.encode(host, uts46=True).decode("ascii"))
        except (_idna.IDNAError, UnicodeError) as exc:
            raise ValueError(str(exc)) from None
    try:  # pragma: no cover - fallback
        return host.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:  # pragma: no cover - fallback
        raise ValueError(str(exc)) from None


@functools.lru_cache(maxsize=8192)
def check_domain(value: str) -> str:
    """A domain name as lowercase IDNA A-labels (``Việtnam.VN`` → ``xn--vitnam-jk8b.vn``).

    Needs at least two labels, letters-digits-hyphens only after IDNA, at most 63 characters a label
    and 253 in all, and a top-level label that is not all digits (that would be an IP address). A
    trailing dot is dropped. URLs, wildcards and addresses with a port are refused.

    Cached (a pure function): the ``idna`` package is pure Python, ≈ 12–35 µs a name, and the same
    platforms and shops come back in event after event; a refused name is checked again each time.
    """
    name = check_identifier(value).strip().rstrip(".")
    if not name:
        raise ValueError("must not be empty")
    if "/" in name or ":" in name or "@" in name:
        raise ValueError(
            f"{value!r} is not a domain name (a URL goes in 'urls', an address in 'ip_addresses')"
        )
    if "." not in name:
        raise ValueError(f"{value!r} is not a domain name (needs a dot, e.g. example.vn)")
    try:
        ascii_name = _to_ascii(name).lower()
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid domain name: {exc}") from None
    labels = ascii_name.split(".")
    if len(ascii_name) > 253:
        raise ValueError(f"{value!r} is longer than 253 characters")
    for label in labels:
        if not _LDH_LABEL.match(label):
            raise ValueError(f"{value!r} is not a valid domain name: label {label!r}")
    if labels[-1].isdigit():
        raise ValueError(f"{value!r} is not a domain name (all-digit top-level label; an IP address?)")
    return ascii_name


def check_ip(value: str) -> str:
    """An IPv4 or IPv6 address in its normalised form (``2001:DB8:0::1`` → ``2001:db8::1``)."""
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 or IPv6 address") from None


def check_url(value: str) -> str:
    """An ``http`` or ``https`` URL with a valid host (domain or IP address); kept as written."""
    url = check_identifier(value).strip()
    if any(ch.isspace() for ch in url):
        raise ValueError(f"{value!r} is not a URL (contains spaces)")
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a URL: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError(f"{value!r} is not an http or https URL")
    host = parts.hostname
    if not host:
        raise ValueError(f"{value!r} has no host")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        try:
            check_domain(host)
        except ValueError:
            raise ValueError(f"{value!r} has an invalid host {host!r}") from None
    return url


def check_period(value: str) -> str:
    """A reporting period: ``2021``, ``2021-H1``, ``2021-Q3`` or ``2021-07`` (letters upper-cased)."""
    period = value.strip().upper()
    if not _PERIOD.match(period):
        raise ValueError(f"{value!r} is not a period (YYYY, YYYY-H1/H2, YYYY-Q1..Q4 or YYYY-MM)")
    return period


def to_utc_millis(value: datetime) -> datetime:
    """UTC at millisecond precision (what Avro ``timestamp-millis`` keeps); no offset means Vietnam time."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        value = value.replace(tzinfo=VN_TZ)
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


FreeText = Annotated[str, AfterValidator(check_free_text)]
Text = Annotated[str, AfterValidator(_non_blank), AfterValidator(check_free_text)]
"""Free text that must say something (NFC by the model base); kept exactly as written otherwise, but
no control character other than tab and line breaks."""
Name = Annotated[str, AfterValidator(_non_blank), AfterValidator(check_identifier)]
"""A name, account or reference: like :data:`Text`, but a single line without any control character."""
TaxCode = Annotated[str, AfterValidator(check_tax_code)]
NationalId = Annotated[str, AfterValidator(check_national_id)]
Phone = Annotated[str, AfterValidator(check_phone)]
DomainName = Annotated[str, AfterValidator(check_domain)]
Url = Annotated[str, AfterValidator(check_url)]
IpAddress = Annotated[str, AfterValidator(check_ip)]
Period = Annotated[str, AfterValidator(check_period)]
EventId = Annotated[str, AvroType("uuid"), AfterValidator(check_uuid)]
Money = Annotated[int, AvroType("long"), Field(ge=0, le=_LONG_MAX)]
"""An amount in đồng (Avro long): whole, never negative."""
Long = Annotated[int, AvroType("long"), Field(ge=-_LONG_MAX - 1, le=_LONG_MAX)]
Count = Annotated[int, AvroType("int"), Field(ge=0, le=_INT_MAX)]
"""A count (Avro int): never negative."""
Instant = Annotated[datetime, AvroType("timestamp-millis"), AfterValidator(to_utc_millis)]
"""An instant, stored in UTC at millisecond precision; a time without offset is Vietnam time."""
Day = Annotated[date, AvroType("date")]

# Optional values: absent, null or blank (an empty spreadsheet cell) all mean "not given".
OptText = Annotated[FreeText | None, BeforeValidator(_blank_to_none)]
OptName = Annotated[Name | None, BeforeValidator(_blank_to_none)]
OptTaxCode = Annotated[TaxCode | None, BeforeValidator(_blank_to_none)]
OptNationalId = Annotated[NationalId | None, BeforeValidator(_blank_to_none)]
OptPhone = Annotated[Phone | None, BeforeValidator(_blank_to_none)]
OptUrl = Annotated[Url | None, BeforeValidator(_blank_to_none)]
OptEventId = Annotated[EventId | None, BeforeValidator(_blank_to_none)]
OptMoney = Annotated[Money | None, BeforeValidator(_blank_to_none)]
OptInstant = Annotated[Instant | None, BeforeValidator(_blank_to_none)]
