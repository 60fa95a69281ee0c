"""Latency: publish → visible to a ``read_committed`` inbox consumer, at about half the measured peak.

A probe process publishes suspect-seller events through the bus389 publisher (the police's outbox,
one transaction per 20 ms tick) at a fixed rate, and a ``read_committed`` consumer of every inbox in
the same process notes when each event id first becomes visible. The time of an event runs from the
moment its tick handed it to the publisher to the moment the reader got it: the publisher's
transaction, the router's batch and transaction, and the fetches. The router (bus389) is compared with
the bare transactional loop doing the same fan-out, each in its own process with the same batch size
and commit interval. The rate is half the router's exactly-once peak on the probe's own traffic
(suspect sellers, the heaviest type to validate), measured first in the same run.

A second measurement (full runs only) is a what-if: the same with ``fetch_max_wait_ms`` at
kafka-python's default (500 ms) on every consumer (router, bare loop, reader) instead of bus389's
``kafka.fetch_max_wait_ms`` (100 ms). Events become visible to ``read_committed`` consumers only when
their transaction commits, and a fetch that found nothing waits up to ``fetch_max_wait_ms`` before it
asks again: with the default, that wait was most of the tail.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from bus389.agencies import Agency
from bus389.bench.child import ChildError, collect, run_child, spawn, wait_ready
from bus389.bench.context import BenchContext
from bus389.bench.harness import Goal, Line, percentile
from bus389.bench.loops import create_bare_audit_topic, fanout_plan
from bus389.bench.router import filled_backlog, router_round, with_router
from bus389.bench.workload import BacklogEvent, backlog_of, inputs_of
from bus389.codec import encode_event
from bus389.events import build_event
from bus389.settings import Settings

__all__ = ["NAME", "WHAT_IF_FETCH_WAIT_MS", "run"]

log = logging.getLogger("bench")

NAME = "latency"
AGENCY = Agency.POLICE
EVENT_TYPE = "suspect_seller"
WARMUP_S = 2.0
WHAT_IF_FETCH_WAIT_MS = 500
"""The what-if's ``fetch_max_wait_ms`` on every consumer: kafka-python's default (bus389 sets 100)."""


def _probe_peak(ctx: BenchContext) -> float:
    """The router's exactly-once events/s on a backlog of the probe's own events."""
    count = max(1_000, ctx.sizes.router_backlog // 2)
    with filled_backlog(ctx, count, events=backlog_of(EVENT_TYPE, AGENCY, count)) as data:
        result = router_round(data, transactions=True)
    return float(result["events"] / result["seconds"])


def _default_plan(settings: Settings, path: Path) -> None:
    """The bare loop's plan for the probe's events: the fan-out of the probe's first template."""
    event = build_event(EVENT_TYPE, AGENCY, inputs_of(EVENT_TYPE, AGENCY, 1)[0])
    sample = BacklogEvent(AGENCY, EVENT_TYPE, event.event_id, encode_event(event))
    targets = fanout_plan(settings, [sample])[event.event_id.encode()]
    path.write_text(json.dumps({"*": list(targets)}), encoding="utf-8")


def _probe(
    ctx: BenchContext, settings: Settings, kind: str, rate: float, tmp: Path, fetch_wait_ms: int | None
) -> dict[str, Any]:
    ready = tmp / f"{kind}.ready"
    tuned = ["--fetch-max-wait-ms", str(fetch_wait_ms)] if fetch_wait_ms else []
    if kind == "router":
        loop = spawn("router", with_router(settings), ["--ready-file", str(ready), *tuned])
    else:
        loop = spawn("bare", settings, ["--plan", str(tmp / "plan.json"), "--ready-file", str(ready), *tuned])
    try:
        wait_ready(ready, loop)
        seconds = ctx.sizes.latency_seconds
        args = ["--rate", f"{rate:.1f}", "--seconds", str(seconds), "--agency", AGENCY.value]
        args += ["--event-type", EVENT_TYPE, "--warmup-s", str(WARMUP_S)]
        if fetch_wait_ms:
            args += ["--reader-fetch-wait-ms", str(fetch_wait_ms)]
        probe = run_child("latency", settings, args, timeout_s=120 + seconds * 3, attempts=1)
    finally:
        try:
            collect(loop, timeout_s=60, stop=True)
        except ChildError as exc:
            log.warning("bench: the %s loop did not stop cleanly: %s", kind, exc)
    log.info(
        "latency via %s (fetch wait %s): %d of %d measured events seen at %.0f events/s",
        kind,
        fetch_wait_ms or "default",
        probe["seen"],
        probe["measured"],
        probe["achieved_rate"],
    )
    return probe


def _measure(ctx: BenchContext, rate: float, fetch_wait_ms: int | None) -> dict[str, dict[str, Any]]:
    probes: dict[str, dict[str, Any]] = {}
    for kind in ("router", "bare"):
        with ctx.topics() as settings, tempfile.TemporaryDirectory(prefix="bench-") as tmp_name:
            tmp = Path(tmp_name)
            create_bare_audit_topic(settings)
            _default_plan(settings, tmp / "plan.json")
            probes[kind] = _probe(ctx, settings, kind, rate, tmp, fetch_wait_ms)
    return probes


def _extra(probes: dict[str, dict[str, Any]], **more: Any) -> dict[str, Any]:
    return {
        **more,
        "achieved_rate": {k: p["achieved_rate"] for k, p in probes.items()},
        "seen": {k: f"{p['seen']}/{p['measured']}" for k, p in probes.items()},
        "max_ms": {k: max(p["latencies_ms"], default=float("nan")) for k, p in probes.items()},
        "warmup_s": WARMUP_S,
    }


def run(ctx: BenchContext) -> list[Line]:
    peak = _probe_peak(ctx)
    rate = max(20.0, peak / 2)
    commit_ms = ctx.settings.router.batch_max_ms
    goal = Goal("<=", commit_ms + 100, on="value", text=f"≤ {commit_ms + 100} ms")
    probes = _measure(ctx, rate, None)
    lines: list[Line] = []
    for q in (50, 95, 99):
        bus = percentile(probes["router"]["latencies_ms"], q)
        bare = percentile(probes["bare"]["latencies_ms"], q)
        lines.append(
            Line(
                benchmark=NAME,
                name=f"publish → inbox p{q}",
                value=bus,
                baseline=bare,
                unit="ms",
                baseline_name="bare txn loop",
                higher_is_better=False,
                goal=goal if q == 99 else None,
                rounds={"bus389": [bus], "baseline": [bare]},
                extra=_extra(
                    probes, target_rate=rate, probe_peak=peak, router_peak_mixed=ctx.state.get("router_peak")
                )
                if q == 99
                else {},
            )
        )
    if not ctx.quick:
        tuned = _measure(ctx, rate, WHAT_IF_FETCH_WAIT_MS)
        bus = percentile(tuned["router"]["latencies_ms"], 99)
        bare = percentile(tuned["bare"]["latencies_ms"], 99)
        lines.append(
            Line(
                benchmark=NAME,
                name=f"p99, fetch_max_wait_ms={WHAT_IF_FETCH_WAIT_MS} (kafka-python's default, what-if)",
                value=bus,
                baseline=bare,
                unit="ms",
                baseline_name="bare txn loop",
                higher_is_better=False,
                goal=None,
                rounds={"bus389": [bus], "baseline": [bare]},
                extra=_extra(
                    tuned,
                    target_rate=rate,
                    p50={k: percentile(p["latencies_ms"], 50) for k, p in tuned.items()},
                    p95={k: percentile(p["latencies_ms"], 95) for k, p in tuned.items()},
                ),
                note="every consumer (router, bare loop, reader) with the library's default fetch wait",
            )
        )
    return lines
