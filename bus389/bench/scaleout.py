"""Scale-out: one router process against two in the same group, on outboxes with more partitions.

The backlog sits in outboxes of 6 partitions each (54 partitions in all), so two routers each get
half. Two routers are two processes (two cores, two GILs), each with its own transactional id; both
join the group with their partitions paused and start together once both have their share. One
router's rate is its events over its own first-batch → last-commit time. The two routers' rate is
the events both committed while both were running (from the later first batch to the earlier last
commit) over that window, so that one process starting a little before the other does not count.
"""

from __future__ import annotations

import logging
import tempfile
import uuid
from pathlib import Path
from typing import Any

from bus389.bench.child import ChildError, collect, spawn, wait_ready
from bus389.bench.context import BenchContext
from bus389.bench.harness import Goal, Line, interleaved, median, rate
from bus389.bench.router import Backlog, filled_backlog, round_timeout, router_round
from bus389.settings import RouterSettings, Settings

__all__ = ["NAME", "PARTITIONS", "overlap_rate", "run"]

log = logging.getLogger("bench")

NAME = "scaleout"
PARTITIONS = 6


def overlap_rate(runs: list[dict[str, Any]]) -> tuple[float, float]:
    """(events/s while every process was committing, that window in seconds) from the batch ends.

    A batch counts in the window when it ended inside it; the window opens at the latest first batch
    end and closes at the earliest last batch end.
    """
    if not runs or any(not r["batch_ends"] for r in runs):
        return float("nan"), 0.0
    opens = max(r["batch_ends"][0][0] for r in runs)
    closes = min(r["batch_ends"][-1][0] for r in runs)
    if closes <= opens:
        return float("nan"), 0.0
    events = sum(n for r in runs for end, n in r["batch_ends"] if opens < end <= closes)
    return rate(events, closes - opens), closes - opens


def _two_routers(data: Backlog) -> tuple[float, dict[str, Any]]:
    group = f"{data.settings.topic_prefix}.router.{uuid.uuid4().hex[:8]}"
    processes = []
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp_name:
        tmp = Path(tmp_name)
        gate = tmp / "gate"
        readies = [tmp / f"ready.{index}" for index in range(2)]
        for index, ready in enumerate(readies):
            fields = {
                **data.settings.router.model_dump(),
                "group_id": group,
                "transactional_id": f"{group}.{index}",
            }
            settings: Settings = data.settings.model_copy(update={"router": RouterSettings(**fields)})
            args = ["--idle-polls", "2", "--ready-file", str(ready), "--gate", str(gate)]
            processes.append(spawn("router", settings, args))
        try:
            for ready, process in zip(readies, processes, strict=True):
                wait_ready(ready, process, timeout_s=90)
        except ChildError:
            for process in processes:
                process.kill()
                process.communicate()
            raise
        gate.touch()
        runs = [collect(p, timeout_s=round_timeout(data.count)) for p in processes]
    total = sum(r["events"] for r in runs)
    if total < data.count:
        raise ChildError(f"two routers routed {total} of {data.count} events")
    figure, window = overlap_rate(runs)
    share = [r["events"] for r in runs]
    log.info("two routers: %s events, %.0f events/s over %.1f s both running", share, figure, window)
    return figure, {
        "events_per_router": share,
        "window_s": window,
        "aborted": sum(r["aborted"] for r in runs),
    }


def run(ctx: BenchContext) -> list[Line]:
    count = ctx.sizes.scaleout_backlog
    details: list[dict[str, Any]] = []
    with filled_backlog(ctx, count, partitions=PARTITIONS) as data:

        def one() -> float:
            result = router_round(data, transactions=True)
            return rate(result["events"], result["seconds"])

        def two() -> float:
            for attempt in range(2):
                try:
                    figure, detail = _two_routers(data)
                    details.append(detail)
                    return figure
                except ChildError as exc:
                    log.warning("bench: two routers failed (attempt %d): %s", attempt + 1, exc)
            return float("nan")

        figures = interleaved(
            {"bus389": two, "baseline": one}, rounds=max(1, ctx.sizes.loop_rounds - 1), warmup=0
        )
    return [
        Line(
            benchmark=NAME,
            name=f"two routers ÷ one ({PARTITIONS} partitions per outbox)",
            value=median(figures["bus389"]),
            baseline=median(figures["baseline"]),
            baseline_name="one router",
            goal=Goal(">=", 1.5, text="≥ 1.5 where the cores allow"),
            rounds=figures,
            extra={"events": count, "two_router_runs": details, "partitions_per_outbox": PARTITIONS},
            note="2 cores shared by both routers, the broker and the machine's other work",
        )
    ]
