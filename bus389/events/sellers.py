"""Events about online sellers: ``suspect_seller`` (any member) and ``tax_discrepancy`` (the tax office)."""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import model_validator

from bus389.events._rules import DomainName, Money, OptMoney, OptText, Period, Text, Url
from bus389.events.common import Seller, SellerAccount, ViolationKind
from bus389.events.meta import Event

__all__ = ["SuspectSeller", "TaxDiscrepancy"]


class SuspectSeller(Event):
    """An online seller suspected of smuggling, counterfeits or trade fraud (plan II.1-II.9)."""

    EVENT_TYPE: ClassVar[str] = "suspect_seller"

    seller: Seller
    accounts: list[SellerAccount] = []
    goods: Text
    violation_kinds: list[ViolationKind] = []
    evidence_urls: list[Url] = []
    domains: list[DomainName] = []
    goods_imported: bool = False
    border_area: bool = False
    estimated_value_vnd: OptMoney = None
    summary: Text


class TaxDiscrepancy(Event):
    """An online seller whose platform revenue exceeds the declared revenue (plan II.4)."""

    EVENT_TYPE: ClassVar[str] = "tax_discrepancy"

    seller: Seller
    accounts: list[SellerAccount] = []
    period: Period
    estimated_revenue_vnd: Money
    declared_revenue_vnd: Money
    undeclared_revenue_vnd: Money
    estimated_tax_owed_vnd: Money
    notes: OptText = None

    @model_validator(mode="after")
    def _undeclared_is_the_difference(self) -> Self:
        expected = self.estimated_revenue_vnd - self.declared_revenue_vnd
        if self.undeclared_revenue_vnd != expected:
            raise ValueError(
                f"undeclared_revenue_vnd must be estimated_revenue_vnd - declared_revenue_vnd = {expected}, "
                f"not {self.undeclared_revenue_vnd}"
            )
        return self
