"""When a member must rejoin (left without partitions, or dropped while holding them): the rules, and the
watch's timing, without a broker."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from kafka.structs import ConsumerGroupMetadata, MemberState

from bus389 import metrics
from bus389.assignment_watch import AssignmentWatch, group_is_stuck, was_dropped
from bus389.settings import KafkaClientSettings, Settings


@pytest.mark.parametrize(
    ("members", "fewest", "stuck"),
    [
        (1, 3, True),  # alone with three partitions and none of them: the leader gave nothing out
        (3, 3, True),  # range gives each of three members one partition
        (4, 3, False),  # the fourth member of a three-partition group is a standby
        (2, 0, False),  # a topic without partitions (not known yet): nothing to be given
        (None, 3, True),  # the coordinator could not be asked: rejoin rather than leave events unread
    ],
)
def test_the_rule(members: int | None, fewest: int, stuck: bool) -> None:
    assert group_is_stuck(members=members, fewest_partitions=fewest) is stuck


@pytest.mark.parametrize(
    ("member_id", "stable", "listed", "dropped"),
    [
        ("me", True, ["other"], True),  # the coordinator removed it (its session expired)
        ("me", True, [], True),  # ... and the group is empty now
        ("me", True, ["other", "me"], False),  # still a member
        ("me", False, ["other"], False),  # mid-join: its new id may not be listed yet
        ("", True, ["other"], False),  # no member id yet
        ("me", True, None, False),  # the coordinator could not be asked: no evidence
    ],
)
def test_the_dropped_rule(member_id: str, stable: bool, listed: list[str] | None, dropped: bool) -> None:
    assert was_dropped(member_id=member_id, stable=stable, listed=listed) is dropped


@dataclass
class Consumer:
    assigned: set[tuple[str, int]] = field(default_factory=set)
    partitions: dict[str, set[int]] = field(default_factory=lambda: {"a": {0, 1, 2}, "b": {0, 1}})
    member_id: str = "me"
    state: str = MemberState.STABLE

    def group_metadata(self) -> ConsumerGroupMetadata:
        return ConsumerGroupMetadata("g", 2, self.member_id, None, self.state)

    def assignment(self) -> set[tuple[str, int]]:
        return self.assigned

    def subscription(self) -> set[str]:
        return set(self.partitions)

    def partitions_for_topic(self, topic: str) -> set[int]:
        return self.partitions[topic]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def watch(
    members: int | None, clock: Clock, asked: list[int], *, listed: list[str] | None = None
) -> AssignmentWatch:
    """A watch whose coordinator lists ``listed``, or else ``members`` members none of which is "me"."""
    settings = Settings(bootstrap="127.0.0.1:1", kafka=KafkaClientSettings(unassigned_rejoin_s=20))

    def member_ids() -> list[str] | None:
        asked.append(1)
        if listed is not None:
            return listed
        return None if members is None else [f"member-{i}" for i in range(members)]

    return AssignmentWatch(settings, "g", members=member_ids, clock=clock)


@pytest.mark.parametrize(
    ("members", "listed", "assigned", "expected"),
    [
        # left without partitions in a group of two: range would give it some
        (2, None, set(), ["no partition assigned for 20s in group g", "2 member(s), 2 partition(s)"]),
        # holding two partitions, while the coordinator lists only another member
        (
            None,
            ["member-0"],
            {("a", 0), ("a", 1)},
            ["the coordinator of group g no longer lists this member", "(2 partition(s) held, 1 other"],
        ),
    ],
    ids=["unassigned", "dropped"],
)
def test_a_stuck_member_rejoins_after_the_period_and_not_before(
    members: int | None, listed: list[str] | None, assigned: set[tuple[str, int]], expected: list[str]
) -> None:
    clock, asked = Clock(), []
    w = watch(members, clock, asked, listed=listed)
    consumer = Consumer(assigned=assigned)
    assert w.check(consumer) is None  # starts the period
    clock.now += 19.9
    assert w.check(consumer) is None
    assert asked == []  # the coordinator is not asked before the period ends
    clock.now += 0.2
    why = w.check(consumer)
    assert why is not None and all(part in why for part in expected), why
    assert asked == [1]


def test_partitions_reset_the_period() -> None:
    clock, asked = Clock(), []
    w = watch(2, clock, asked)
    consumer = Consumer()
    w.check(consumer)
    clock.now += 15
    consumer.assigned = {("a", 0)}
    assert w.check(consumer) is None
    consumer.assigned = set()
    clock.now += 1
    assert w.check(consumer) is None
    clock.now += 15
    assert w.check(consumer) is None  # 15 s since it lost them, not 31 s since the first check
    assert asked == []


def test_a_standby_is_left_alone_and_asks_again_one_period_later() -> None:
    clock, asked = Clock(), []
    w = watch(3, clock, asked)  # three members, the smallest topic has two partitions
    consumer = Consumer()
    w.check(consumer)
    clock.now += 21
    assert w.check(consumer) is None
    assert asked == [1]
    clock.now += 10
    assert w.check(consumer) is None
    assert asked == [1]
    clock.now += 11
    assert w.check(consumer) is None
    assert asked == [1, 1]


def test_reset_gives_a_new_consumer_the_whole_period() -> None:
    clock, asked = Clock(), []
    w = watch(1, clock, asked)
    consumer = Consumer()
    w.check(consumer)
    clock.now += 19
    w.reset()
    w.check(consumer)
    clock.now += 19
    assert w.check(consumer) is None
    clock.now += 1
    assert w.check(consumer) is not None


def rejoins_counted(group: str) -> float:
    return metrics.REGISTRY.get_sample_value("bus389_group_rejoins_total", {"group": group}) or 0.0


def test_each_rejoin_it_asks_for_is_counted_and_a_standby_is_not() -> None:
    before = rejoins_counted("g")
    clock, asked = Clock(), []
    stuck, standby = watch(1, clock, asked), watch(5, clock, asked)
    consumer = Consumer()
    stuck.check(consumer)
    standby.check(consumer)
    clock.now += 21
    assert stuck.check(consumer) is not None
    assert standby.check(consumer) is None
    assert rejoins_counted("g") == before + 1


def test_a_listed_member_holding_partitions_is_left_alone_and_asks_once_per_period() -> None:
    clock, asked = Clock(), []
    w = watch(None, clock, asked, listed=["member-0", "me"])
    consumer = Consumer(assigned={("a", 0)})
    w.check(consumer)
    for _ in range(4):
        clock.now += 10
        assert w.check(consumer) is None
    assert asked == [1, 1]  # at 20 s and at 40 s


def test_a_member_mid_join_is_not_taken_for_dropped() -> None:
    clock, asked = Clock(), []
    w = watch(None, clock, asked, listed=[])
    consumer = Consumer(assigned={("a", 0)}, member_id="new", state=MemberState.REBALANCING)
    w.check(consumer)
    clock.now += 21
    assert w.check(consumer) is None


def test_losing_the_partitions_restarts_the_membership_period() -> None:
    clock, asked = Clock(), []
    w = watch(None, clock, asked, listed=[])
    consumer = Consumer(assigned={("a", 0)})
    w.check(consumer)
    clock.now += 15
    consumer.assigned = set()
    w.check(consumer)
    consumer.assigned = {("a", 0)}
    clock.now += 1
    w.check(consumer)
    clock.now += 15
    assert w.check(consumer) is None  # 15 s since it got them back, not 31 s
    assert asked == []


def test_a_rejoin_for_a_dropped_member_is_counted() -> None:
    before = rejoins_counted("g")
    clock, asked = Clock(), []
    w = watch(None, clock, asked, listed=[])
    consumer = Consumer(assigned={("a", 0)})
    w.check(consumer)
    clock.now += 21
    assert w.check(consumer) is not None
    assert rejoins_counted("g") == before + 1
