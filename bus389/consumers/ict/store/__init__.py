"""The ICT service's store, one module per concept, re-exported here.

Requests, their targets, decisions, the result outbox, the blocklist state, and the leads and replies
ICT keeps for its operator (see :mod:`bus389.consumers.ict.leads`).

All SQL of the ICT service lives in this package.
"""

from bus389.consumers.ict.store.ict_store import IctStore, open_store, sqlite_path
from bus389.consumers.ict.store.leads import LeadRow
from bus389.consumers.ict.store.migrations import MIGRATIONS
from bus389.consumers.ict.store.outbox import OutboxRow
from bus389.consumers.ict.store.rejected import RejectedEventRow
from bus389.consumers.ict.store.replies import ReplyRow
from bus389.consumers.ict.store.requests import RequestFields, RequestKey, RequestRow
from bus389.consumers.ict.store.states import LeadState, RequestState, TargetState
from bus389.consumers.ict.store.targets import TargetRow

__all__ = [
    "MIGRATIONS",
    "IctStore",
    "LeadRow",
    "LeadState",
    "OutboxRow",
    "RejectedEventRow",
    "ReplyRow",
    "RequestFields",
    "RequestKey",
    "RequestRow",
    "RequestState",
    "TargetRow",
    "TargetState",
    "open_store",
    "sqlite_path",
]
