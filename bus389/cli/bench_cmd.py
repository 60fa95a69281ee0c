"""``bus389 bench``: run the benchmark suite (the same harness as ``make bench`` / ``make bench``)."""

from __future__ import annotations

import click

from bus389.cli._context import pass_settings
from bus389.settings import Settings

__all__ = ["bench"]

_NAMES = ("codec", "publish", "router", "latency", "scaleout", "memory", "confluent")


@click.command("bench")
@click.option(
    "--only",
    "only",
    multiple=True,
    type=click.Choice(_NAMES),
    help="Run only this benchmark (repeatable) [default: all of them].",
)
@click.option("--quick", is_flag=True, help="Small sizes and fewer rounds: about 2 minutes instead of 10.")
@click.option("--no-write", is_flag=True, help="Print the table only; write nothing under bench/results/.")
@pass_settings
def bench(settings: Settings, only: tuple[str, ...], quick: bool, no_write: bool) -> None:
    """Measure the bus against the raw libraries, in the same run, and print one table.

    Every line gives events/s (median of several rounds) for bus389 and for its raw baseline (bare
    fastavro, a bare kafka-python producer, a bare kafka-python transactional consume → produce loop,
    confluent-kafka where installed) and the ratio bus389 ÷ baseline. The results go to
    bench/results/<time>-full.json and bench/results/latest.json; a --quick run only to
    bench/results/<time>-quick.json (git ignores it), never over latest.json. Uses the broker at
    BUS389_BOOTSTRAP; when that is unset and nothing answers at the default address, starts one with
    `bus389 kafka up` and stops it afterwards. Scratch topics are created under bench_<8 hex>
    prefixes and deleted at the end. A benchmark reports figures; it never fails on a slow machine.

    \b
    Example:
      bus389 bench --quick
      bus389 bench --only codec --only publish
      BUS389_BOOTSTRAP=127.0.0.1:9092 bus389 bench
    """
    import logging

    try:
        from bus389.bench.harness import RESULTS_DIR
        from bus389.bench.runner import BENCHMARKS, run_suite
    except ImportError as exc:  # an installed wheel without the repository's bench/ folder
        raise click.ClickException(f"the benchmark suite (bench/) is not importable here: {exc}") from exc
    if set(_NAMES) != set(BENCHMARKS):
        raise click.ClickException(
            f"bench/ offers {', '.join(BENCHMARKS)}; this command knows {', '.join(_NAMES)}"
        )
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("bench").setLevel(logging.INFO)
    logging.getLogger("kafka.net.selector").setLevel(logging.ERROR)
    run_suite(
        settings,
        only=only,
        quick=quick,
        results_dir=None if no_write else RESULTS_DIR,
        echo=click.echo,
        command="bus389 bench",
    )
