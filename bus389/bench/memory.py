"""Memory: the router's RSS routing a small backlog against a large one, and along one long run.

Each run is a router process reading a pre-filled backlog to its end. Its RSS is sampled every 50 ms
from its first batch on (start-up left out; the process's ``ru_maxrss`` is in the extras too).

- Small against large backlog: the largest RSS while routing 1,000 events against 30,000. A process
  that routed a small backlog never filled its consumer's prefetch buffers (kafka-python's default
  fetch sizes: 1 MiB per partition), so this ratio shows that fill as well as any growth.
- Second half against first half of the large run: the largest RSS while routing the second half
  of the backlog against the first half. A router bounded by its fetch and batch settings is flat
  here; one that keeps something per event grows, and the extras give that growth in bytes per
  routed event (the router's reply index keeps every routed event id, ≈ 180 bytes each).
"""

from __future__ import annotations

from typing import Any

from bus389.bench.context import BenchContext
from bus389.bench.harness import Goal, Line
from bus389.bench.router import filled_backlog, router_round

__all__ = ["NAME", "halves", "run"]

NAME = "memory"
FLAT = Goal("<=", 1.1, text="flat (≤ 1.1)")


def halves(series: list[tuple[int, int]], total: int) -> tuple[float, float, float]:
    """(max RSS KiB in the first half, in the second half, growth in bytes per event across the second).

    ``series`` holds (events committed, RSS KiB) samples; the halves split at ``total / 2`` events.
    """
    middle = total / 2
    first = [rss for events, rss in series if events <= middle]
    second = [(events, rss) for events, rss in series if events > middle]
    if not first or len(second) < 2:
        return float("nan"), float("nan"), float("nan")
    (start_events, start_rss), (end_events, end_rss) = second[0], second[-1]
    slope = (end_rss - start_rss) * 1024 / max(1, end_events - start_events)
    return float(max(first)), float(max(rss for _, rss in second)), slope


def _run(ctx: BenchContext, count: int) -> dict[str, Any]:
    with filled_backlog(ctx, count) as data:
        result = router_round(data, transactions=True, sample_rss=True)
    return {
        "events": result["events"],
        "rss_routing_max_kib": result["rss_routing_max_kib"],
        "rss_peak_kib": result["rss_peak_kib"],
        "rss_start_kib": result["rss_start_kib"],
        "rss_end_kib": result["rss_end_kib"],
        "reply_index": result["reply_index"],
        "series": result["rss_series"],
    }


def run(ctx: BenchContext) -> list[Line]:
    small = _run(ctx, ctx.sizes.memory_small)
    large = _run(ctx, ctx.sizes.memory_large)
    summary = {
        label: {k: v for k, v in r.items() if k != "series"}
        for label, r in (("small", small), ("large", large))
    }
    first, second, slope = halves(large["series"], large["events"])
    sampled = large["series"][:: max(1, len(large["series"]) // 60)]
    return [
        Line(
            benchmark=NAME,
            name=f"router RSS routing, {large['events']:,} vs {small['events']:,} events",
            value=large["rss_routing_max_kib"] / 1024,
            baseline=small["rss_routing_max_kib"] / 1024,
            unit="MiB",
            baseline_name=f"{small['events']:,} events",
            higher_is_better=False,
            goal=FLAT,
            rounds={
                "bus389": [large["rss_routing_max_kib"] / 1024],
                "baseline": [small["rss_routing_max_kib"] / 1024],
            },
            extra={"runs": summary},
            note="includes filling the consumer's prefetch buffers, which a small backlog never does",
        ),
        Line(
            benchmark=NAME,
            name=f"router RSS, 2nd ÷ 1st half of {large['events']:,} events",
            value=second / 1024,
            baseline=first / 1024,
            unit="MiB",
            baseline_name="1st half",
            higher_is_better=False,
            goal=FLAT,
            rounds={"bus389": [second / 1024], "baseline": [first / 1024]},
            extra={"growth_bytes_per_event_2nd_half": slope, "rss_series_events_kib": sampled},
        ),
    ]
