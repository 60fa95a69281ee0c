"""Memory: the router's peak RSS routing a small backlog against a large one (it must stay flat).

Each run is a router process reading a pre-filled backlog to its end; the figure is the largest
resident set size sampled (every 50 ms) from its first batch to its end, i.e. what routing holds,
start-up left out; the process's ``ru_maxrss`` (start-up included), the RSS at its first batch and
at its end and the size of its in-memory reply index are in the extras. A router bounded by its fetch and batch
settings has the same peak for every backlog beyond what one fetch round holds; one that keeps
something per event grows with the backlog. The full run measures three sizes, so that the second
line shows whether the growth levels off (bounded by the fetch settings) or keeps going.
"""

from __future__ import annotations

from typing import Any

from bench.context import BenchContext
from bench.harness import Goal, Line
from bench.router import filled_backlog, router_round

__all__ = ["NAME", "run"]

NAME = "memory"
FLAT = Goal("<=", 1.1, text="flat (≤ 1.1)")


def _run(ctx: BenchContext, count: int) -> dict[str, Any]:
    with filled_backlog(ctx, count) as data:
        result = router_round(data, transactions=True)
    return {
        "events": result["events"],
        "rss_routing_max_kib": result["rss_routing_max_kib"],
        "rss_peak_kib": result["rss_peak_kib"],
        "rss_start_kib": result["rss_start_kib"],
        "rss_end_kib": result["rss_end_kib"],
        "reply_index": result["reply_index"],
    }


def _line(name: str, large: dict[str, Any], small: dict[str, Any], runs: dict[str, Any]) -> Line:
    big, little = large["rss_routing_max_kib"] / 1024, small["rss_routing_max_kib"] / 1024
    grown = (large["rss_end_kib"] - small["rss_end_kib"]) * 1024
    return Line(
        benchmark=NAME,
        name=name,
        value=big,
        baseline=little,
        unit="MiB",
        baseline_name=f"{small['events']:,} events",
        higher_is_better=False,
        goal=FLAT,
        rounds={"bus389": [big], "baseline": [little]},
        extra={
            "runs": runs,
            "end_rss_growth_bytes_per_event": grown / max(1, large["events"] - small["events"]),
        },
    )


def run(ctx: BenchContext) -> list[Line]:
    sizes = {"small": ctx.sizes.memory_small}
    if not ctx.quick:
        sizes["medium"] = ctx.sizes.memory_large // 3
    sizes["large"] = ctx.sizes.memory_large
    runs = {label: _run(ctx, count) for label, count in sizes.items()}
    small, large = runs["small"], runs["large"]
    lines = [
        _line(f"router RSS routing, {large['events']:,} vs {small['events']:,} events", large, small, runs)
    ]
    if "medium" in runs:
        medium = runs["medium"]
        lines.append(
            _line(
                f"router RSS routing, {large['events']:,} vs {medium['events']:,} events", large, medium, runs
            )
        )
    return lines
