"""The member agencies of BCĐ 389 (codes are contract) and the topic names derived from them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bus389.errors import InputError

__all__ = [
    "AGENCY_INFO",
    "REPORTING_MEMBERS",
    "ROUTER",
    "STANDING_OFFICE",
    "principals",
    "Agency",
    "AgencyInfo",
    "Topics",
]


class Agency(StrEnum):
    """Agency codes, as in DOMAIN.md; the order is the Avro enum's symbol order."""

    POLICE = "police"
    BORDER_GUARD = "border_guard"
    CUSTOMS = "customs"
    TAX = "tax"
    INDUSTRY_TRADE = "industry_trade"
    ICT = "ict"
    MEDIA = "media"
    OTHER_MEMBERS = "other_members"
    MARKET_SURVEILLANCE = "market_surveillance"
    COMMITTEE = "committee"
    """The provincial committee itself (its head and standing deputy): receives the standing office's
    compiled reports and proposals (II.9), directs and assigns the members (II.8)."""

    @classmethod
    def parse(cls, value: str | Agency) -> Agency:
        """The agency for a code, or an :class:`~bus389.errors.InputError` listing the valid codes."""
        try:
            return cls(value)
        except ValueError:
            valid = ", ".join(a.value for a in cls)
            raise InputError(f"unknown agency {value!r}: use one of {valid}") from None


STANDING_OFFICE = Agency.MARKET_SURVEILLANCE
"""The committee's standing office (Cơ quan Thường trực), which receives every event (plan III.3)."""

ROUTER = "router"
"""The router's name as a principal: its Kafka user and the owner of its signing key (it signs the
audit chain's heads, never an event)."""


def principals() -> list[str]:
    """Every member and the router: those with Kafka credentials and a signing key of their own."""
    return [*(a.value for a in Agency), ROUTER]


REPORTING_MEMBERS = tuple(a for a in Agency if a not in (STANDING_OFFICE, Agency.COMMITTEE))
"""The members that report to the standing office every six months (plan III.3)."""


@dataclass(frozen=True)
class AgencyInfo:
    name_vi: str
    name_en: str
    plan_section: str


AGENCY_INFO: dict[Agency, AgencyInfo] = {
    Agency.POLICE: AgencyInfo("Công an tỉnh", "Provincial Police", "II.1"),
    Agency.BORDER_GUARD: AgencyInfo(
        "Bộ chỉ huy Bộ đội Biên phòng tỉnh", "Provincial Border Guard Command", "II.2"
    ),
    Agency.CUSTOMS: AgencyInfo("Cục Hải quan tỉnh", "Provincial Customs Department", "II.3"),
    Agency.TAX: AgencyInfo("Cục Thuế tỉnh", "Provincial Tax Department", "II.4"),
    Agency.INDUSTRY_TRADE: AgencyInfo("Sở Công Thương", "Department of Industry and Trade", "II.5"),
    Agency.ICT: AgencyInfo(
        "Sở Thông tin và Truyền thông", "Department of Information and Communications", "II.6"
    ),
    Agency.MEDIA: AgencyInfo(
        "Đài Phát thanh và Truyền hình tỉnh, Báo Quảng Ngãi",
        "Provincial Radio and Television, Quảng Ngãi Newspaper",
        "II.7",
    ),
    Agency.OTHER_MEMBERS: AgencyInfo("Các ngành thành viên khác", "Other member agencies", "II.8"),
    Agency.MARKET_SURVEILLANCE: AgencyInfo(
        "Cục Quản lý thị trường tỉnh (Cơ quan Thường trực BCĐ 389)",
        "Provincial Market Surveillance Department (standing office)",
        "II.9",
    ),
    Agency.COMMITTEE: AgencyInfo(
        "Ban Chỉ đạo 389 tỉnh", "Provincial Steering Committee 389 (head and standing deputy)", "II.9"
    ),
}


@dataclass(frozen=True)
class Topics:
    """Topic names under one prefix (contract: ``<prefix>.outbox.<agency>`` and so on)."""

    prefix: str = "bus389"

    def outbox(self, agency: Agency | str) -> str:
        return f"{self.prefix}.outbox.{Agency(agency).value}"

    def inbox(self, agency: Agency | str) -> str:
        return f"{self.prefix}.inbox.{Agency(agency).value}"

    @property
    def dlq(self) -> str:
        return f"{self.prefix}.dlq"

    @property
    def audit(self) -> str:
        return f"{self.prefix}.audit"

    @property
    def keys(self) -> str:
        """The key registry (compacted; only the admin writes it, everyone reads it)."""
        return f"{self.prefix}.keys"

    def all_outboxes(self) -> list[str]:
        return [self.outbox(a) for a in Agency]

    def all_inboxes(self) -> list[str]:
        return [self.inbox(a) for a in Agency]

    def all(self) -> list[str]:
        return [*self.all_outboxes(), *self.all_inboxes(), self.dlq, self.audit, self.keys]

    def identity_prefix(self, agency: Agency | str) -> str:
        """``<prefix>.<agency>.``: every consumer group and transactional id the agency may use (ACLs)."""
        return f"{self.prefix}.{Agency(agency).value}."

    def agency_id(self, agency: Agency | str, name: str) -> str:
        """``name`` as a group or transactional id under the agency's identity prefix.

        A name already under the prefix is kept; one under another prefix's ``.<agency>.`` (such as a
        default ``bus389.ict.blocklist`` when the topic prefix is ``t_1234``) keeps only its own part.
        """
        own = self.identity_prefix(agency)
        if name.startswith(own):
            return name
        marker = f".{Agency(agency).value}."
        if marker in name:
            name = name.split(marker, 1)[1]
        return own + name

    def sender_of(self, topic: str) -> Agency | None:
        """The agency whose outbox ``topic`` is, or None: the ACL makes this the proven sender."""
        head = f"{self.prefix}.outbox."
        if not topic.startswith(head):
            return None
        try:
            return Agency(topic[len(head) :])
        except ValueError:
            return None

    def owner_of_inbox(self, topic: str) -> Agency | None:
        head = f"{self.prefix}.inbox."
        if not topic.startswith(head):
            return None
        try:
            return Agency(topic[len(head) :])
        except ValueError:
            return None
