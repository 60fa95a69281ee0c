"""The service runtime: what every long-running service shares (the stop flag, the self-healing group
member, the inbox loop of the agency services).

Above the Kafka helpers, below the producers and the consumers (see docs/architecture.md).
"""

from bus389.runtime.inbox_loop import InboxMessage, run_inbox_service
from bus389.runtime.member import GroupMember
from bus389.runtime.stop import StopFlag

__all__ = ["GroupMember", "InboxMessage", "StopFlag", "run_inbox_service"]
