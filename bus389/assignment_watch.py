"""The watch over a group member left without partitions, or dropped: when it rejoins with a new consumer.

kafka-python 3.0 can leave a consumer group with partitions nobody reads. It joins without waiting for
its first metadata, so a leader that assigns before its metadata knows the topic gives that topic out to
no one; the rebalance its next metadata refresh should start can be lost too (when the join completes
between two polls the member never applies the new assignment). Either way the members poll nothing,
forever, with no error anywhere.

A member that has had no partition for ``kafka.unassigned_rejoin_s`` asks the group coordinator how many
members the group has. The range assignor gives every member something while no subscribed topic has
fewer partitions than the group has members, so then an empty assignment means the group is stuck and the
member rejoins with a new consumer (a new member: the group rebalances and the leader assigns again). A
member of a group with more members than partitions is a standby and is left alone; it asks again after
the same time. Used by the router and by every agency's inbox loop (:mod:`bus389.runtime.inbox_loop`).

A member can also be dropped while it holds partitions: on a loaded machine kafka-python 3.0 has sent no
heartbeat after a join, the coordinator removed the member when its session expired, and the consumer,
told nothing, went on polling its old assignment without reading anything (seen in a stressed run of
``test_duties``: removed 6 s after its join, nothing routed for 90 s). So a member that holds partitions
asks the coordinator, once per the same period, at a moment when its poll came back empty, whether it is
still listed; a stable member the coordinator does not list rejoins with a new consumer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kafka.structs import MemberState

if TYPE_CHECKING:
    from bus389.settings import Settings

__all__ = ["AssignmentWatch", "group_is_stuck", "group_member_count", "group_member_ids", "was_dropped"]

log = logging.getLogger(__name__)


def group_is_stuck(*, members: int | None, fewest_partitions: int) -> bool:
    """Whether a member with no partition shows a stuck group rather than a standby.

    ``members`` None (the coordinator could not be asked) counts as stuck: a needless rejoin costs one
    rebalance, a missed one leaves events unread.
    """
    if members is None:
        return True
    return members <= fewest_partitions


def was_dropped(*, member_id: str, stable: bool, listed: list[str] | None) -> bool:
    """Whether a member holding partitions has been removed from its group by the coordinator.

    Only positive evidence counts: a member that is mid-join (not ``stable``) or has no id yet, or a
    coordinator that could not be asked (``listed`` None), is not dropped.
    """
    return stable and bool(member_id) and listed is not None and member_id not in listed


def group_member_count(settings: Settings, group_id: str) -> int | None:
    """How many members the group coordinator lists for ``group_id``; None when it cannot say."""
    listed = group_member_ids(settings, group_id)
    return None if listed is None else len(listed)


def group_member_ids(settings: Settings, group_id: str) -> list[str] | None:
    """The member ids the group coordinator lists for ``group_id``; None when it cannot say."""
    from bus389.instances import group_members

    members = group_members(settings, group_id)
    return None if members is None else [member.member_id for member in members]


class AssignmentWatch:
    """Tells a consumer loop when its member has been left without partitions by a stuck group, or
    dropped by the coordinator while it held partitions.

    Call :meth:`check` between batches with the consumer; it answers why to rejoin, or None.
    """

    def __init__(
        self,
        settings: Settings,
        group_id: str,
        *,
        members: Callable[[], list[str] | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stuck_after_s = settings.kafka.unassigned_rejoin_s
        self.group_id = group_id
        self._members = members or (lambda: group_member_ids(settings, group_id))
        self._clock = clock
        self._unassigned_since: float | None = None
        self._listed_checked_at: float | None = None

    def reset(self) -> None:
        """A new consumer was made: its first join gets the whole period."""
        self._unassigned_since = None
        self._listed_checked_at = None

    def check(self, consumer: Any) -> str | None:
        """Why ``consumer`` should rejoin now, or None (it is a listed member, waits, or is a standby).

        A "rejoin" answer is counted in ``bus389_group_rejoins_total``: the caller rejoins on it."""
        now = self._clock()
        if consumer.assignment():
            self._unassigned_since = None
            return self._dropped(consumer, now)
        self._listed_checked_at = None
        if self._unassigned_since is None:
            self._unassigned_since = now
            return None
        waited = now - self._unassigned_since
        if waited < self.stuck_after_s:
            return None
        self._unassigned_since = now  # a standby asks again one period later
        fewest = min(
            (len(consumer.partitions_for_topic(topic) or ()) for topic in consumer.subscription() or ()),
            default=0,
        )
        listed = self._members()
        members = None if listed is None else len(listed)
        if not group_is_stuck(members=members, fewest_partitions=fewest):
            log.info(
                "group %s: no partition for %.0fs as one of %d members of a group whose smallest topic "
                "has %d partition(s): a standby",
                self.group_id,
                waited,
                members,
                fewest,
            )
            return None
        from bus389 import metrics

        metrics.GROUP_REJOINS.labels(self.group_id).inc()
        return (
            f"no partition assigned for {waited:.0f}s in group {self.group_id} "
            f"({'unknown number of' if members is None else members} member(s), "
            f"{fewest} partition(s) in its smallest topic)"
        )

    def _dropped(self, consumer: Any, now: float) -> str | None:
        """Why a member holding partitions must rejoin (the coordinator no longer lists it), or None.

        Asks at most once per period, the first period starting with the assignment."""
        if self._listed_checked_at is None:
            self._listed_checked_at = now
            return None
        if now - self._listed_checked_at < self.stuck_after_s:
            return None
        self._listed_checked_at = now
        membership = consumer.group_metadata()
        listed = self._members()
        if not was_dropped(
            member_id=membership.member_id, stable=membership.state == MemberState.STABLE, listed=listed
        ):
            return None
        from bus389 import metrics

        metrics.GROUP_REJOINS.labels(self.group_id).inc()
        return (
            f"the coordinator of group {self.group_id} no longer lists this member "
            f"({len(consumer.assignment())} partition(s) held, {len(listed or ())} other member(s) listed)"
        )
