"""The watch over a group member left without partitions: when it must rejoin with a new consumer.

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
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kafka.errors import GroupIdNotFoundError

from bus389.errors import BrokerError

if TYPE_CHECKING:
    from bus389.settings import Settings

__all__ = ["AssignmentWatch", "group_is_stuck", "group_member_count"]

log = logging.getLogger(__name__)


def group_is_stuck(*, members: int | None, fewest_partitions: int) -> bool:
    """Whether a member with no partition shows a stuck group rather than a standby.

    ``members`` None (the coordinator could not be asked) counts as stuck: a needless rejoin costs one
    rebalance, a missed one leaves events unread.
    """
    if members is None:
        return True
    return members <= fewest_partitions


def group_member_count(settings: Settings, group_id: str) -> int | None:
    """How many members the group coordinator lists for ``group_id``; None when it cannot say."""
    from bus389.kafka import kafka_errors, make_admin

    try:
        with kafka_errors(bootstrap=settings.bootstrap):
            admin = make_admin(settings)
            try:
                described = admin.describe_groups([group_id])
            finally:
                admin.close()
    except BrokerError as exc:
        log.warning("cannot describe group %s: %s", group_id, exc)
        return None
    group = described.get(group_id) or {}
    error = group.get("error")
    if error and GroupIdNotFoundError.__name__ in error:
        return 0  # no member and no committed offset: the coordinator forgot the group
    if error:
        log.warning("cannot describe group %s: %s", group_id, error)
        return None
    return len(group.get("members") or ())


class AssignmentWatch:
    """Tells a consumer loop when its member has been left without partitions by a stuck group.

    Call :meth:`check` between batches with the consumer; it answers why to rejoin, or None.
    """

    def __init__(
        self,
        settings: Settings,
        group_id: str,
        *,
        members: Callable[[], int | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stuck_after_s = settings.kafka.unassigned_rejoin_s
        self.group_id = group_id
        self._members = members or (lambda: group_member_count(settings, group_id))
        self._clock = clock
        self._unassigned_since: float | None = None

    def reset(self) -> None:
        """A new consumer was made: its first join gets the whole period."""
        self._unassigned_since = None

    def check(self, consumer: Any) -> str | None:
        """Why ``consumer`` should rejoin now, or None (it has partitions, waits, or is a standby).

        A "rejoin" answer is counted in ``bus389_group_rejoins_total``: the caller rejoins on it."""
        if consumer.assignment():
            self._unassigned_since = None
            return None
        now = self._clock()
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
        members = self._members()
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
