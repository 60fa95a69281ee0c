"""Domain blocking (plan II.6): ``domain_block_request`` to the ICT department, ``domain_block_result``."""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import model_validator

from bus389.agencies import Agency
from bus389.events._base import ENUM_DEFAULTS, AvroEnum
from bus389.events._rules import DomainName, Instant, IpAddress, OptInstant, OptText, Text, Url
from bus389.events.common import ViolationKind
from bus389.events.meta import Event

__all__ = ["BlockAction", "BlockOutcome", "DomainBlockRequest", "DomainBlockResult"]


class BlockAction(AvroEnum):
    BLOCK = "BLOCK"
    UNBLOCK = "UNBLOCK"
    REVOKE_VN_DOMAIN = "REVOKE_VN_DOMAIN"
    SUSPEND_LICENCE = "SUSPEND_LICENCE"
    UNKNOWN = "UNKNOWN"


class BlockOutcome(AvroEnum):
    BLOCKED = "BLOCKED"
    PARTIAL = "PARTIAL"
    REJECTED = "REJECTED"
    UNBLOCKED = "UNBLOCKED"
    EXPIRED = "EXPIRED"
    UNKNOWN = "UNKNOWN"


ENUM_DEFAULTS[BlockAction] = BlockAction.UNKNOWN
ENUM_DEFAULTS[BlockOutcome] = BlockOutcome.UNKNOWN


class DomainBlockRequest(Event):
    """A request to block domains, URLs or IP addresses, or revoke a .VN domain or a licence."""

    EVENT_TYPE: ClassVar[str] = "domain_block_request"

    domains: list[DomainName] = []
    urls: list[Url] = []
    ip_addresses: list[IpAddress] = []
    action: BlockAction
    reason: Text
    legal_basis: Text
    violation_kinds: list[ViolationKind] = []
    expires_at: OptInstant = None

    @model_validator(mode="after")
    def _names_something(self) -> Self:
        if not (self.domains or self.urls or self.ip_addresses):
            raise ValueError("a block request needs at least one of domains, urls or ip_addresses")
        return self


class DomainBlockResult(Event):
    """The ICT department's answer to a request; ``meta.in_reply_to`` is the request's event id."""

    EVENT_TYPE: ClassVar[str] = "domain_block_result"

    requester: Agency
    outcome: BlockOutcome
    blocked: list[Text] = []
    not_blocked: list[Text] = []
    decided_at: Instant
    providers_notified: list[Text] = []
    note: OptText = None

    @model_validator(mode="after")
    def _answers_a_request(self) -> Self:
        if self.meta.in_reply_to is None:
            raise ValueError("meta.in_reply_to must be the event_id of the domain_block_request answered")
        return self
