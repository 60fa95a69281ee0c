"""The standing office's correlation keys: how a seller, tax code, domain or phone is recognised again.

Plan III.3 asks the committee to see the overlap between members' reports: the same online seller
reported by the police, the tax office and market surveillance is one case, not three. Each stored
event yields a set of :class:`CorrelationKey` (normalised value + the spelling seen in that event);
the report lists every key that two or more *different* members reported.

Normalisation (two spellings are the same key exactly when they normalise equal):

- seller name: Unicode NFC, case-folded, every run of characters that are not letters, digits or
  combining marks turned into one space, trimmed. Diacritics are kept: "Lê" and "Lễ" are different
  Vietnamese names. The seller key is the name together with the tax code (``name|tax_code``, or
  ``name|`` when the report carries no tax code).
- tax code (mã số thuế): digits only, the branch suffix written ``0123456789-001``.
- domain: lower case, no scheme, path, port, trailing dot or leading ``www.``; international names as
  IDNA ASCII (``xn--``). The platforms' own domains (``shopee.vn``, ``facebook.com``: the ICT
  ``never_block`` setting) say nothing about who the seller is and are never keys.
- phone: digits only, the Vietnamese country code ``+84``/``84`` written as the leading ``0``.
- national id and seller account (platform + account name): stored; national ids are personal data
  and are not listed in the report (see :data:`CORRELATED_KINDS`).

``domain_block_result`` events yield no keys: they repeat the request's domains, and an answer is
not a second report.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "CORRELATED_KINDS",
    "KEY_KINDS",
    "CorrelationKey",
    "extract_keys",
    "normalise_account",
    "normalise_domain",
    "normalise_name",
    "normalise_national_id",
    "normalise_phone",
    "normalise_tax_code",
    "seller_key",
]

KEY_KINDS: tuple[str, ...] = ("seller", "tax_code", "domain", "phone", "account", "national_id")
"""Every kind of key the store keeps."""

CORRELATED_KINDS: tuple[str, ...] = ("seller", "tax_code", "domain", "phone", "account")
"""The kinds the report's correlation section lists (national ids stay out of the report)."""

_NO_KEYS_FROM = frozenset({"domain_block_result"})
_SELLER_FIELDS = ("seller",)
_WS = re.compile(r"\s+")


@dataclass(frozen=True, order=True)
class CorrelationKey:
    """One key of one event: ``value`` is the normalised form, ``label`` the spelling in that event."""

    kind: str
    value: str
    label: str


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def normalise_name(name: str) -> str:
    """Case-, spacing-, punctuation- and Unicode-form-insensitive name; diacritics kept."""
    folded = _nfc(_nfc(name).casefold())
    kept = "".join(ch if unicodedata.category(ch)[0] in "LNM" else " " for ch in folded)
    return _WS.sub(" ", kept).strip()


def normalise_tax_code(tax_code: str) -> str:
    """``0123 456 789`` → ``0123456789``; ``0123456789001`` or ``0123456789 - 001`` → ``0123456789-001``."""
    cleaned = re.sub(r"[\s.]", "", _nfc(tax_code)).upper()
    digits = re.sub(r"\D", "", cleaned)
    if len(digits) == 10 and cleaned.replace("-", "") == digits:
        return digits
    if len(digits) == 13 and cleaned.replace("-", "") == digits:
        return f"{digits[:10]}-{digits[10:]}"
    return cleaned


def normalise_phone(phone: str) -> str:
    """``+84 912 345 678``, ``0084912345678``, ``0912.345.678`` → ``0912345678``; empty when too short."""
    text = _nfc(phone).strip()
    digits = re.sub(r"\D", "", text)
    if digits.startswith("0084"):
        digits = digits[2:]
        text = "+" + digits
    if digits.startswith("84") and (text.startswith("+") or len(digits) in (11, 12)):
        digits = "0" + digits[2:]
    elif text.startswith("+"):
        digits = "+" + digits
    return digits if len(digits.lstrip("+")) >= 8 else ""


def normalise_national_id(national_id: str) -> str:
    return re.sub(r"\D", "", _nfc(national_id))


def normalise_domain(text: str) -> str:
    """A bare, lower-case, ASCII host name from a domain or a URL; empty when there is none."""
    raw = _nfc(text).strip()
    if not raw:
        return ""
    if "://" not in raw:
        raw = "//" + raw
    try:
        host = urlsplit(raw).hostname or ""
    except ValueError:
        return ""
    host = host.strip().rstrip(".").lower()
    if host.startswith("www."):
        host = host[4:]
    labels = []
    for label in host.split("."):
        if not label:
            return ""
        if label.isascii():
            labels.append(label)
            continue
        try:
            labels.append(label.encode("idna").decode("ascii"))
        except UnicodeError:
            labels.append(label)
    return ".".join(labels)


def normalise_account(platform: str, account: str) -> str:
    name = normalise_name(account.strip().lstrip("@"))
    return f"{platform.strip().upper()}:{name}" if name else ""


def seller_key(name: str, tax_code: str | None) -> str:
    return f"{normalise_name(name)}|{normalise_tax_code(tax_code) if tax_code else ''}"


def _is_ignored(domain: str, ignored: Sequence[str]) -> bool:
    return any(domain == apex or domain.endswith("." + apex) for apex in ignored)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable) and not isinstance(value, (bytes, Mapping)):
        return [v for v in value if isinstance(v, str)]
    return []


def extract_keys(
    event_type: str, record: Mapping[str, Any], *, ignore_domains: Iterable[str] = ()
) -> list[CorrelationKey]:
    """The correlation keys of one event record (Avro-decoded or JSON form), sorted, without repeats."""
    if event_type in _NO_KEYS_FROM:
        return []
    ignored = [d for d in (normalise_domain(x) for x in ignore_domains) if d]
    keys: set[CorrelationKey] = set()

    def add(kind: str, value: str, label: str) -> None:
        if value and value.strip("|"):
            keys.add(CorrelationKey(kind, value, _nfc(label).strip()))

    def add_domain(text: str) -> None:
        domain = normalise_domain(text)
        if domain and "." in domain and not _is_ignored(domain, ignored):
            add("domain", domain, text)

    for field in _SELLER_FIELDS:
        seller = record.get(field)
        if not isinstance(seller, Mapping):
            continue
        name = seller.get("name")
        tax_code = seller.get("tax_code") if isinstance(seller.get("tax_code"), str) else None
        if isinstance(name, str) and normalise_name(name):
            label = f"{_nfc(name).strip()} (MST {tax_code.strip()})" if tax_code else _nfc(name).strip()
            add("seller", seller_key(name, tax_code), label)
        if tax_code:
            add("tax_code", normalise_tax_code(tax_code), tax_code)
        phone = seller.get("phone")
        if isinstance(phone, str):
            add("phone", normalise_phone(phone), phone)
        national_id = seller.get("national_id")
        if isinstance(national_id, str):
            add("national_id", normalise_national_id(national_id), national_id)

    for account in record.get("accounts") or []:
        if not isinstance(account, Mapping):
            continue
        platform = str(account.get("platform") or "OTHER")
        name = account.get("account")
        if isinstance(name, str):
            add("account", normalise_account(platform, name), f"{platform} {name.strip()}")
        url = account.get("url")
        if isinstance(url, str):
            add_domain(url)

    for domain in _strings(record.get("domains")):
        add_domain(domain)
    if event_type == "domain_block_request":
        for url in _strings(record.get("urls")):
            add_domain(url)

    return sorted(keys)
