"""Reference: the bare fan-out loop with confluent-kafka (librdkafka) against the same loop with kafka-python.

Only where confluent-kafka installs (the optional ``bench`` extra); otherwise the line says so.
Same backlog, same fan-out, same batch and commit interval, exactly-once on both sides. The line's
ratio is kafka-python ÷ librdkafka (how much of the C client's speed the pure-Python client
reaches); the extras give the router's exactly-once figure over librdkafka's too.
"""

from __future__ import annotations

import math

from bus389.bench.confluent_loop import confluent_available
from bus389.bench.context import BenchContext
from bus389.bench.harness import Line, interleaved, median, rate, ratio
from bus389.bench.router import bare_round, filled_backlog

__all__ = ["NAME", "run"]

NAME = "confluent"


def run(ctx: BenchContext) -> list[Line]:
    name = "bare txn loop: kafka-python ÷ confluent-kafka (reference)"
    if not confluent_available():
        return [
            Line(
                benchmark=NAME,
                name=name,
                value=math.nan,
                baseline=math.nan,
                baseline_name="confluent-kafka",
                note="confluent-kafka is not installed (pip install -e '.[bench]')",
            )
        ]
    count = ctx.sizes.router_backlog
    with filled_backlog(ctx, count) as data:

        def kafka_python() -> float:
            result = bare_round(data, transactions=True)
            return rate(result["events"], result["seconds"])

        def confluent() -> float:
            result = bare_round(data, transactions=True, kind="confluent")
            return rate(result["events"], result["seconds"])

        figures = interleaved(
            {"bus389": kafka_python, "baseline": confluent},
            rounds=max(1, ctx.sizes.loop_rounds - 1),
            warmup=0,
        )
    router = ctx.state.get("router_peak")
    router_eos = router if isinstance(router, float) else math.nan
    return [
        Line(
            benchmark=NAME,
            name=name,
            value=median(figures["bus389"]),
            baseline=median(figures["baseline"]),
            baseline_name="confluent-kafka",
            rounds=figures,
            extra={
                "events": count,
                "router_eos_over_confluent_loop": ratio(router_eos, median(figures["baseline"])),
            },
            note="value: the kafka-python bare loop, not bus389",
        )
    ]
