"""Running the suite: pick the benchmarks, make sure a broker answers, print the table, write the JSON.

``python -m bus389.bench`` (``make bench``) and ``bus389 bench`` both call :func:`run_suite`. A benchmark
that fails is reported as a line with no figure and the error, and the suite goes on: one broken
benchmark must not hide the others' figures.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bus389.bench.context import BenchContext, Sizes, ensure_broker, stop_broker
from bus389.bench.harness import (
    RESULTS_DIR,
    Line,
    machine_facts,
    render_markdown,
    render_table,
    results_document,
    write_results,
)
from bus389.errors import InputError
from bus389.settings import Settings

__all__ = ["BENCHMARKS", "NEEDS_KAFKA", "SuiteResult", "main", "markdown_of", "run_suite"]

log = logging.getLogger("bench")

BENCHMARKS: tuple[str, ...] = (
    "codec",
    "publish",
    "router",
    "latency",
    "scaleout",
    "memory",
    "confluent",
    "web",
    "signing",
)
"""Every benchmark, in the order a run measures them (latency uses the router's measured peak)."""
NEEDS_KAFKA = frozenset(BENCHMARKS) - {"codec"}


@dataclass(frozen=True)
class SuiteResult:
    lines: list[Line]
    path: Path | None
    table: str
    seconds: float


def _select(only: Sequence[str]) -> list[str]:
    if not only:
        return list(BENCHMARKS)
    unknown = sorted(set(only) - set(BENCHMARKS))
    if unknown:
        raise InputError(f"unknown benchmark {', '.join(unknown)}: use one of {', '.join(BENCHMARKS)}")
    return [name for name in BENCHMARKS if name in only]


def _failed(name: str, exc: BaseException) -> Line:
    return Line(
        benchmark=name,
        name="(failed)",
        value=math.nan,
        baseline=math.nan,
        note=f"{type(exc).__name__}: {exc}",
    )


def run_suite(
    settings: Settings | None = None,
    *,
    only: Sequence[str] = (),
    quick: bool = False,
    results_dir: Path | None = RESULTS_DIR,
    echo: Callable[[str], None] = print,
    command: str = "python -m bus389.bench",
) -> SuiteResult:
    """Run the selected benchmarks (all by default); print the table; write the JSON results.

    ``results_dir`` None writes nothing (the unit tests). Returns the lines, the path written and the
    table as printed.
    """
    started = time.monotonic()
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    selected = _select(only)
    settings = settings or Settings()
    sizes = Sizes.quick() if quick else Sizes.full()
    started_broker = False
    if NEEDS_KAFKA & set(selected):
        settings, started_broker = ensure_broker(settings)
    ctx = BenchContext(settings=settings, sizes=sizes, quick=quick)
    lines: list[Line] = []
    try:
        for name in selected:
            echo(f"bench: {name} …")
            step = time.monotonic()
            module = importlib.import_module(f"bus389.bench.{name}")
            try:
                found: list[Line] = module.run(ctx)
            except Exception as exc:  # noqa: BLE001 - one broken benchmark must not hide the others
                log.exception("benchmark %s failed", name)
                found = [_failed(name, exc)]
            lines.extend(found)
            echo(f"bench: {name} done in {time.monotonic() - step:.0f} s")
    finally:
        if started_broker:
            stop_broker()
    table = render_table(lines)
    echo(table)
    path: Path | None = None
    if results_dir is not None:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        document = results_document(
            lines,
            facts=machine_facts(),
            command=command + (" --quick" if quick else "") + "".join(f" --only {n}" for n in only),
            settings={
                "quick": quick,
                "sizes": sizes.__dict__,
                "bootstrap": settings.bootstrap,
                "router_batch_max_events": settings.router.batch_max_events,
                "router_batch_max_ms": settings.router.batch_max_ms,
                "duration_s": round(time.monotonic() - started, 1),
                "load_average_at_start": load_at_start,
            },
        )
        kind = "quick" if quick else "full"
        path = write_results(document, results_dir, name=f"{stamp}-{kind}", latest=not quick)
        echo(f"bench: results written to {path}")
    return SuiteResult(lines, path, table, time.monotonic() - started)


def markdown_of(document: dict[str, Any]) -> str:
    """A results document as Markdown: the command, the machine and the table (for docs/benchmarks.md)."""
    facts = document.get("machine", {})
    settings = document.get("settings", {})
    keys = (
        "date",
        "cores",
        "cpu",
        "python",
        "kafka-python",
        "fastavro",
        "pydantic",
        "crc32c",
        "kafka_python_crc32c",
        "confluent-kafka",
        "load_average",
    )
    machine = ", ".join(f"{k} `{facts.get(k)}`" for k in keys if k in facts)
    lines = [Line.from_json(line) for line in document.get("lines", [])]
    return "\n".join(
        [
            f"Command: `{document.get('command', '')}` ({settings.get('duration_s', '?')} s; "
            f"load average at start {settings.get('load_average_at_start', '?')})",
            "",
            f"Machine: {machine}",
            "",
            render_markdown(lines),
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bus389.bench [--only NAME]… [--quick] [--no-write]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bus389.bench", description="bus389 benchmarks")
    parser.add_argument("--only", action="append", default=[], choices=BENCHMARKS, help="run only this one")
    parser.add_argument("--quick", action="store_true", help="small sizes, fewer rounds (~2 min)")
    parser.add_argument("--no-write", action="store_true", help="do not write bench/results/")
    parser.add_argument("--verbose", action="store_true", help="log every round")
    parser.add_argument(
        "--markdown", type=Path, default=None, help="print a results JSON as Markdown, run nothing"
    )
    args = parser.parse_args(argv)
    if args.markdown is not None:
        print(markdown_of(json.loads(args.markdown.read_text(encoding="utf-8"))))
        return 0
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    logging.getLogger("bench").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    # kafka-python warns when a batch of ours keeps its IO loop busy > 100 ms: expected under load.
    logging.getLogger("kafka.net.selector").setLevel(logging.ERROR)
    run_suite(only=args.only, quick=args.quick, results_dir=None if args.no_write else RESULTS_DIR)
    return 0
