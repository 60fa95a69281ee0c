"""Records and enums shared by several event types: Seller, Person, SellerAccount, Platform, ViolationKind."""

from __future__ import annotations

from bus389.events._base import ENUM_DEFAULTS, AvroEnum, BusModel
from bus389.events._rules import Name, OptNationalId, OptPhone, OptTaxCode, OptText, OptUrl

__all__ = ["PERSONAL_DATA_FIELDS", "Person", "Platform", "Seller", "SellerAccount", "ViolationKind"]


class Platform(AvroEnum):
    SHOPEE = "SHOPEE"
    LAZADA = "LAZADA"
    TIKI = "TIKI"
    SENDO = "SENDO"
    TIKTOK_SHOP = "TIKTOK_SHOP"
    FACEBOOK = "FACEBOOK"
    ZALO = "ZALO"
    YOUTUBE = "YOUTUBE"
    WEBSITE = "WEBSITE"
    OTHER = "OTHER"


class ViolationKind(AvroEnum):
    SMUGGLING = "SMUGGLING"
    COUNTERFEIT = "COUNTERFEIT"
    TRADE_FRAUD = "TRADE_FRAUD"
    TAX_EVASION = "TAX_EVASION"
    ORIGIN_FRAUD = "ORIGIN_FRAUD"
    PROHIBITED_GOODS = "PROHIBITED_GOODS"
    UNLICENSED_BUSINESS = "UNLICENSED_BUSINESS"
    CONSUMER_FRAUD = "CONSUMER_FRAUD"
    IP_INFRINGEMENT = "IP_INFRINGEMENT"
    OTHER = "OTHER"


ENUM_DEFAULTS[Platform] = Platform.OTHER
ENUM_DEFAULTS[ViolationKind] = ViolationKind.OTHER


class Seller(BusModel):
    """``vn.bcd389.Seller``: an online seller. ``national_id``, ``phone``, ``address`` are personal data."""

    name: Name
    tax_code: OptTaxCode = None
    national_id: OptNationalId = None
    phone: OptPhone = None
    address: OptText = None
    province: OptText = None


class Person(BusModel):
    """``vn.bcd389.Person``: a complainant. Every field but ``full_name`` is personal data."""

    full_name: Name
    national_id: OptNationalId = None
    phone: OptPhone = None
    address: OptText = None


class SellerAccount(BusModel):
    """``vn.bcd389.SellerAccount``: one account or shop of a seller on a platform."""

    platform: Platform
    account: Name
    url: OptUrl = None


PERSONAL_DATA_FIELDS: dict[str, tuple[str, ...]] = {
    "Seller": ("national_id", "phone", "address"),
    "Person": ("national_id", "phone", "address"),
}
"""Per shared record, the fields that are personal data (what the router may redact)."""
