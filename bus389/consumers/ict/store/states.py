"""The states the ICT store records for requests, their targets and leads (stored as text)."""

from __future__ import annotations

__all__ = ["LeadState", "RequestState", "TargetState"]


class RequestState:
    """The states of a request (stored as text)."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    UNBLOCKED = "unblocked"
    ALL = (PENDING, APPROVED, REJECTED, EXPIRED, UNBLOCKED)


class TargetState:
    """The states of one target of a request (stored as text)."""

    ACCEPTED = "accepted"
    """Passed screening, waiting for the operator's decision."""
    BLOCKED = "blocked"
    REJECTED = "rejected"
    EXPIRED = "expired"
    LIFTED = "lifted"
    """Lifted by an UNBLOCK request (``lifted_by``)."""
    DONE = "done"
    """A target of an UNBLOCK request once the request was applied."""


class LeadState:
    """The states of a lead (stored as text)."""

    NEW = "new"
    """Not yet inspected: what `bus389 ict pending` counts."""
    INSPECTED = "inspected"
    ALL = (NEW, INSPECTED)
