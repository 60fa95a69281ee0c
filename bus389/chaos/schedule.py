"""The fault schedule of a chaos run: which faults, in which order, when and for how long — from a seed.

The same seed gives the same schedule, so a failing run can be repeated. Every kind of fault appears
once before any repeats (given room for at least as many faults as kinds): SIGKILL of the broker that
leads a chosen partition, SIGSTOP of such a broker past the session timeouts (then SIGCONT), and
SIGKILL of the router, the ICT service and the standing office's service, each restarted after a pause.

Faults are injected one after the other, never two at once: with three brokers, ``min.insync.replicas``
of 2 and unclean leader election off, one broker down at a time must lose nothing and stop nothing; two
down at once would stop the producers (by design, not a loss), which is a different experiment.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

from bus389.agencies import Agency

__all__ = ["Fault", "FaultKind", "default_fault_count", "make_schedule"]


class FaultKind(StrEnum):
    KILL_LEADER = "kill_leader"
    """SIGKILL the broker leading ``target`` (``<topic suffix>/<partition>``), restart it after ``down_s``."""
    PAUSE_BROKER = "pause_broker"
    """SIGSTOP the broker leading ``target`` for ``down_s`` (past the session timeouts), then SIGCONT."""
    KILL_ROUTER = "kill_router"
    KILL_ICT = "kill_ict"
    KILL_STANDING_OFFICE = "kill_standing_office"

    @property
    def hits_a_broker(self) -> bool:
        return self in (FaultKind.KILL_LEADER, FaultKind.PAUSE_BROKER)

    @property
    def service(self) -> str | None:
        """The service a kill fault hits (the name the runner knows it by)."""
        return {
            FaultKind.KILL_ROUTER: "router",
            FaultKind.KILL_ICT: "ict",
            FaultKind.KILL_STANDING_OFFICE: "standing-office",
        }.get(self)


@dataclass(frozen=True)
class Fault:
    """One fault: when (seconds after the workload started), what, on which target, for how long."""

    index: int
    at_s: float
    kind: FaultKind
    target: str
    down_s: float

    def describe(self) -> str:
        return f"#{self.index} at {self.at_s:.1f}s: {self.kind.value} {self.target} for {self.down_s:.1f}s"


_PARTITION_ROLES = (
    *(f"outbox.{a.value}" for a in Agency),
    "inbox.ict",
    "inbox.market_surveillance",
    "inbox.police",
    "audit",
)


def default_fault_count(seconds: float) -> int:
    """One fault per 12 s of workload, at least 4 (each kind once, bar one; see :func:`make_schedule`)."""
    return max(4, int(seconds // 12))


def make_schedule(
    *,
    seed: int,
    seconds: float,
    count: int | None = None,
    partitions: int = 3,
    pause_s: float = 12.0,
    warmup_s: float = 3.0,
) -> list[Fault]:
    """``count`` faults spread over ``seconds`` (after ``warmup_s``), deterministic in ``seed``.

    Each fault gets an equal slot; it starts at a random point of the first half of its slot. Broker
    kills last 3–8 s, pauses ``pause_s``, service kills 1–4 s. With fewer faults than kinds, the kinds
    are a seeded sample (broker kills first); otherwise every kind appears in the first round.
    """
    rng = random.Random(seed)  # noqa: S311 - reproducible from the seed, not secret
    count = default_fault_count(seconds) if count is None else count
    if count < 1:
        return []
    kinds = list(FaultKind)
    rng.shuffle(kinds)
    if count < len(kinds):
        kinds.sort(key=lambda k: k != FaultKind.KILL_LEADER)
        order = kinds[:count]
        rng.shuffle(order)
    else:
        order = kinds + [rng.choice(list(FaultKind)) for _ in range(count - len(kinds))]
    slot = max(seconds - warmup_s, 1.0) / count
    faults: list[Fault] = []
    for index, kind in enumerate(order, start=1):
        at = warmup_s + (index - 1) * slot + rng.uniform(0, slot / 2)
        if kind.hits_a_broker:
            target = f"{rng.choice(_PARTITION_ROLES)}/{rng.randrange(partitions)}"
            down = pause_s if kind == FaultKind.PAUSE_BROKER else rng.uniform(3.0, 8.0)
        else:
            target = kind.service or ""
            down = rng.uniform(1.0, 4.0)
        faults.append(Fault(index, round(at, 2), kind, target, round(down, 2)))
    return faults
