"""Router throughput: the real router on a pre-filled backlog against the bare kafka-python loop.

One backlog of N events (every type, from their publishers' outboxes) is written once; every round
reads all of it from the beginning under a fresh consumer group (and transactional id), so every
side routes exactly the same records. Batch size and commit interval are the router's settings
(``batch_max_events``, ``batch_max_ms``) on both sides. Each round is a process of its own (see
:mod:`bus389.bench.child`), timed from its first batch to its last commit (start-up and group join left out).

Lines:

- router, exactly-once: events routed per second against the bare transactional consume → produce
  loop doing the same fan-out (see :mod:`bus389.bench.loops`); goal ≥ 0.6 (stretch 0.8);
- router inbox writes per second (the copies), against the bare loop's;
- router, at-least-once (``transactions: false``) against the bare loop without transactions;
- what exactly-once costs: the router with transactions against the router without; goal: costs
  ≤ 15 %, i.e. ratio ≥ 0.85.

The router's exactly-once median is kept as the peak the latency benchmark runs at half of.
"""

from __future__ import annotations

import json
import logging
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bus389.bench.child import run_child
from bus389.bench.context import BenchContext
from bus389.bench.harness import Goal, Line, interleaved, median, rate, ratio
from bus389.bench.loops import create_bare_audit_topic, fanout_plan, fill_backlog
from bus389.bench.workload import BacklogEvent, backlog
from bus389.settings import RouterSettings, Settings

__all__ = ["NAME", "Backlog", "filled_backlog", "run", "with_router"]

log = logging.getLogger("bench")

NAME = "router"


def with_router(settings: Settings, **changes: Any) -> Settings:
    """``settings`` with a fresh router group and transactional id (and any other router changes)."""
    ident = f"{settings.topic_prefix}.router.{uuid.uuid4().hex[:8]}"
    fields = {**settings.router.model_dump(), "group_id": ident, "transactional_id": ident, **changes}
    return settings.model_copy(update={"router": RouterSettings(**fields)})


@dataclass(frozen=True)
class Backlog:
    """Topics under a fresh prefix holding ``count`` events, and the bare loop's fan-out plan file."""

    settings: Settings
    count: int
    plan_path: Path
    copies: int
    """Inbox copies the router writes for the whole backlog (audit records not counted)."""


@contextmanager
def filled_backlog(
    ctx: BenchContext, count: int, *, partitions: int | None = None, events: list[BacklogEvent] | None = None
) -> Iterator[Backlog]:
    """A fresh prefix with ``count`` events (or ``events``) in its outboxes; topics deleted afterwards."""
    events = events if events is not None else backlog(count)
    count = len(events)
    with ctx.topics(partitions=partitions) as settings, tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        create_bare_audit_topic(settings)
        fill_backlog(settings, events)
        plan = fanout_plan(settings, events)
        path = Path(tmp) / "plan.json"
        path.write_text(json.dumps({k.decode(): list(v) for k, v in plan.items()}), encoding="utf-8")
        copies = sum(len(t) - 1 for t in plan.values())
        yield Backlog(settings, count, path, copies)


def round_timeout(count: int) -> float:
    """Generous: a round that takes this long is stuck, not slow (≥ 100 events/s plus start-up)."""
    return 60.0 + count / 100


def router_round(data: Backlog, *, transactions: bool, sample_rss: bool = False) -> dict[str, Any]:
    """One router process over the whole backlog; its JSON (events, copies, seconds, …); with
    ``sample_rss`` its RSS series too (a sampling thread in the router's process)."""
    result = run_child(
        "router",
        with_router(data.settings, transactions=transactions),
        ["--target", str(data.count), *(["--sample-rss"] if sample_rss else [])],
        timeout_s=round_timeout(data.count),
        fresh=lambda: with_router(data.settings, transactions=transactions),
    )
    if result["events"] < data.count or result["dead_letters"]:
        raise RuntimeError(
            f"router routed {result['events']} of {data.count} events ({result['dead_letters']} dead letters)"
        )
    log.info(
        "router (transactions %s): %d events in %.2f s, %d aborted batch(es)",
        transactions,
        result["events"],
        result["seconds"],
        result["aborted"],
    )
    return result


def bare_round(data: Backlog, *, transactions: bool, kind: str = "bare") -> dict[str, Any]:
    """One bare loop process (kafka-python, or confluent-kafka with ``kind="confluent"``)."""
    args = [
        "--plan",
        str(data.plan_path),
        "--target",
        str(data.count),
        "--transactions",
        "on" if transactions else "off",
    ]
    result = run_child(kind, data.settings, args, timeout_s=round_timeout(data.count))
    log.info(
        "%s loop (transactions %s): %d events in %.2f s",
        kind,
        transactions,
        result["events"],
        result["seconds"],
    )
    return result


def run(ctx: BenchContext) -> list[Line]:
    count = ctx.sizes.router_backlog
    rounds = ctx.sizes.loop_rounds
    copies: dict[str, list[float]] = {"bus389": [], "baseline": []}
    aborted = 0

    with filled_backlog(ctx, count) as data:

        def router_side(transactions: bool) -> Callable[[], float]:
            def one_round() -> float:
                nonlocal aborted
                result = router_round(data, transactions=transactions)
                if transactions:
                    copies["bus389"].append(rate(result["copies"], result["seconds"]))
                    aborted += result["aborted"]
                return rate(result["events"], result["seconds"])

            return one_round

        def bare_side(transactions: bool) -> Callable[[], float]:
            def one_round() -> float:
                result = bare_round(data, transactions=transactions)
                if transactions:
                    copies["baseline"].append(rate(result["copies"] - result["events"], result["seconds"]))
                return rate(result["events"], result["seconds"])

            return one_round

        eos = interleaved({"bus389": router_side(True), "baseline": bare_side(True)}, rounds=rounds, warmup=0)
        alo = interleaved(
            {"bus389": router_side(False), "baseline": bare_side(False)}, rounds=rounds, warmup=0
        )
        settings = data.settings
        copies_per_event = data.copies / count
    router_eos = median(eos["bus389"])
    ctx.state["router_peak"] = router_eos
    ctx.state["bare_loop_eos"] = median(eos["baseline"])
    common = {
        "events": count,
        "copies_per_event": copies_per_event,
        "batch_max_events": settings.router.batch_max_events,
        "batch_max_ms": settings.router.batch_max_ms,
        "partitions_per_outbox": settings.kafka.partitions,
    }
    return [
        Line(
            benchmark=NAME,
            name="router, exactly-once (events routed)",
            value=router_eos,
            baseline=median(eos["baseline"]),
            baseline_name="bare txn loop",
            goal=Goal(">=", 0.6, text="≥ 0.6 (stretch 0.8)"),
            rounds=eos,
            extra={**common, "aborted_batches": aborted},
        ),
        Line(
            benchmark=NAME,
            name="router, exactly-once (inbox writes)",
            value=median(copies["bus389"]),
            baseline=median(copies["baseline"]),
            unit="writes/s",
            baseline_name="bare txn loop",
            rounds=copies,
            extra=common,
        ),
        Line(
            benchmark=NAME,
            name="router, at-least-once (events routed)",
            value=median(alo["bus389"]),
            baseline=median(alo["baseline"]),
            baseline_name="bare loop, no txn",
            rounds=alo,
            extra=common,
        ),
        Line(
            benchmark=NAME,
            name="exactly-once cost: router txn ÷ router no-txn",
            value=router_eos,
            baseline=median(alo["bus389"]),
            baseline_name="router, at-least-once",
            goal=Goal(">=", 0.85, text="cost ≤ 15 % (≥ 0.85)"),
            rounds={"bus389": eos["bus389"], "baseline": alo["bus389"]},
            extra={
                **common,
                "bare_loop_txn_over_no_txn": ratio(median(eos["baseline"]), median(alo["baseline"])),
            },
        ),
    ]
