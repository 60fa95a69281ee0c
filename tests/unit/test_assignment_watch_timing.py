"""When a member without partitions must rejoin: the rule, and the watch's timing, without a broker."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from bus389 import metrics
from bus389.assignment_watch import AssignmentWatch, group_is_stuck
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


@dataclass
class Consumer:
    assigned: set[tuple[str, int]] = field(default_factory=set)
    partitions: dict[str, set[int]] = field(default_factory=lambda: {"a": {0, 1, 2}, "b": {0, 1}})

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


def watch(members: int | None, clock: Clock, asked: list[int]) -> AssignmentWatch:
    settings = Settings(bootstrap="127.0.0.1:1", kafka=KafkaClientSettings(unassigned_rejoin_s=20))

    def count() -> int | None:
        asked.append(1)
        return members

    return AssignmentWatch(settings, "g", members=count, clock=clock)


def test_a_member_left_without_partitions_rejoins_after_the_period_and_not_before() -> None:
    clock, asked = Clock(), []
    w = watch(2, clock, asked)
    consumer = Consumer()
    assert w.check(consumer) is None  # starts the period
    clock.now += 19.9
    assert w.check(consumer) is None
    assert asked == []  # the coordinator is not asked before the period ends
    clock.now += 0.2
    why = w.check(consumer)
    assert why is not None and "no partition assigned for 20s in group g" in why
    assert "2 member(s), 2 partition(s) in its smallest topic" in why
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
