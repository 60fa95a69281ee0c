"""The benchmark harness: statistics, ratios, the table and JSON, and a quick codec run (no broker)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bus389.bench.context import BenchContext, Sizes
from bus389.bench.harness import (
    Goal,
    Line,
    interleaved,
    median,
    percentile,
    rate,
    ratio,
    render_markdown,
    render_table,
    results_document,
    write_results,
)
from bus389.bench.runner import BENCHMARKS, run_suite
from bus389.bench.scaleout import overlap_rate
from bus389.errors import InputError
from bus389.settings import Settings


def test_median_of_odd_and_even_counts() -> None:
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5
    assert math.isnan(median([]))


def test_percentile_interpolates_between_closest_ranks() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 100.0
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile([7.0], 99) == 7.0
    assert percentile([10.0, 20.0], 25) == pytest.approx(12.5)
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError, match="percentile"):
        percentile(values, 101)


def test_ratio_and_rate_refuse_what_cannot_be_divided() -> None:
    assert ratio(800.0, 1000.0) == pytest.approx(0.8)
    assert math.isnan(ratio(1.0, 0.0))
    assert math.isnan(ratio(math.nan, 1.0))
    assert math.isnan(ratio(1.0, math.inf))
    assert rate(500, 0.25) == 2000.0
    assert math.isnan(rate(10, 0.0))


def test_line_ratio_and_goals_in_both_directions() -> None:
    fast = Line("codec", "encode", value=900.0, baseline=1000.0, goal=Goal(">=", 0.8))
    slow = Line("codec", "encode", value=700.0, baseline=1000.0, goal=Goal(">=", 0.8))
    assert fast.ratio == pytest.approx(0.9)
    assert fast.goal_met is True
    assert slow.goal_met is False
    latency = Line(
        "latency", "p99", value=250.0, baseline=120.0, unit="ms", goal=Goal("<=", 200.0, on="value")
    )
    assert latency.goal_met is False
    assert latency.ratio == pytest.approx(250 / 120)
    missing = Line("router", "(failed)", value=math.nan, baseline=math.nan, goal=Goal(">=", 0.6))
    assert missing.goal_met is None
    assert Line("x", "y", 1.0, 1.0).goal_met is None


def test_interleaved_alternates_sides_and_drops_the_warmup() -> None:
    calls: list[str] = []
    counter = {"a": 0.0, "b": 100.0}

    def side(name: str) -> float:
        calls.append(name)
        counter[name] += 1
        return counter[name]

    figures = interleaved({"a": lambda: side("a"), "b": lambda: side("b")}, rounds=3, warmup=1)
    assert calls == ["a", "b"] * 4
    assert figures == {"a": [2.0, 3.0, 4.0], "b": [102.0, 103.0, 104.0]}
    with pytest.raises(ValueError, match="round"):
        interleaved({"a": lambda: 1.0}, rounds=0)


def test_overlap_rate_counts_only_batches_while_both_ran() -> None:
    first = {"batch_ends": [(10.0, 500), (11.0, 500), (12.0, 500), (13.0, 500)]}
    second = {"batch_ends": [(11.5, 500), (12.5, 500), (14.0, 500)]}
    figure, window = overlap_rate([first, second])
    # window (11.5, 13.0]: first's batches at 12 and 13, second's at 12.5 → 1500 events in 1.5 s
    assert window == pytest.approx(1.5)
    assert figure == pytest.approx(1000.0)
    assert math.isnan(overlap_rate([first, {"batch_ends": []}])[0])


def test_table_json_and_markdown_carry_every_ratio(tmp_path: Path) -> None:
    lines = [
        Line("codec", "encode", 900.0, 1000.0, baseline_name="bare fastavro", goal=Goal(">=", 0.8)),
        Line("memory", "peak", 70.0, 60.0, unit="MiB", higher_is_better=False),
        Line("router", "(failed)", math.nan, math.nan, note="BrokerError: down"),
    ]
    table = render_table(lines)
    assert "0.90" in table and "1.17" in table and "yes" in table
    assert "—" in table  # the failed line shows no figure rather than a made-up one
    markdown = render_markdown(lines)
    assert markdown.count("\n") == len(lines) + 1
    document = results_document(
        lines,
        facts={"cores": 2, "python": "3.11"},
        command="python -m bus389.bench",
        settings={"quick": True},
    )
    path = write_results(document, tmp_path, name="run")
    written = json.loads(path.read_text(encoding="utf-8"))
    assert json.loads((tmp_path / "latest.json").read_text(encoding="utf-8")) == written
    assert [line["ratio"] for line in written["lines"]] == [0.9, pytest.approx(1.1667, abs=1e-4), None]
    assert written["lines"][0]["goal_met"] is True
    assert written["machine"]["cores"] == 2


def test_a_quick_run_leaves_latest_json_alone(tmp_path: Path) -> None:
    (tmp_path / "latest.json").write_text('{"full": true}\n', encoding="utf-8")
    path = write_results({"quick": True}, tmp_path, name="t-quick", latest=False)
    assert json.loads(path.read_text(encoding="utf-8")) == {"quick": True}
    assert json.loads((tmp_path / "latest.json").read_text(encoding="utf-8")) == {"full": True}


def test_unknown_benchmark_is_an_input_error() -> None:
    with pytest.raises(InputError, match="nosuch"):
        run_suite(Settings(), only=["nosuch"], results_dir=None, echo=lambda _: None)
    assert BENCHMARKS[0] == "codec"


def test_quick_codec_run_measures_every_line_without_a_broker(tmp_path: Path) -> None:
    """The codec benchmark needs no Kafka: every line has both figures and a ratio."""
    printed: list[str] = []
    sizes = Sizes.quick()
    assert sizes.codec_events <= 2_000
    result = run_suite(
        Settings(bootstrap="127.0.0.1:1"),  # nothing there: the codec must not need it
        only=["codec"],
        quick=True,
        results_dir=tmp_path,
        echo=printed.append,
    )
    assert len(result.lines) == 6
    for line in result.lines:
        assert line.benchmark == "codec"
        assert line.value > 0 and line.baseline > 0, line
        # Both figures measured, so a ratio exists; how big it is is the benchmark's to say, not a test's.
        assert math.isfinite(line.ratio) and line.ratio > 0, line
        assert len(line.rounds["bus389"]) == len(line.rounds["baseline"]) >= 3
    assert result.path is not None and result.path.exists()
    document = json.loads(result.path.read_text(encoding="utf-8"))
    assert document["machine"]["fastavro"] and document["machine"]["kafka-python"]
    assert document["machine"]["cores"] >= 1
    assert all("ratio" in line for line in document["lines"])
    assert any("encode value" in text for text in printed)


def test_sizes_keep_quick_smaller_than_full() -> None:
    quick, full = Sizes.quick(), Sizes.full()
    for name in ("codec_events", "publish_events", "router_backlog", "scaleout_backlog", "memory_large"):
        assert getattr(quick, name) < getattr(full, name), name
    assert quick.memory_small < quick.memory_large
    ctx = BenchContext(settings=Settings(topic_prefix="bus389"), sizes=quick)
    scratch = ctx.scratch_settings(ctx.new_prefix(), partitions=6)
    assert scratch.topic_prefix.startswith("bench_")
    assert scratch.kafka.partitions == 6
    assert scratch.router.group_id == f"{scratch.topic_prefix}.router"


def test_markdown_of_a_results_document_keeps_figures_and_goal_verdicts() -> None:
    from bus389.bench.runner import markdown_of

    lines = [
        Line("router", "eos", 1300.0, 2600.0, baseline_name="bare txn loop", goal=Goal(">=", 0.6)),
        Line("latency", "p99", 150.0, 100.0, unit="ms", goal=Goal("<=", 200.0, on="value")),
    ]
    document = results_document(
        lines, facts={"cores": 2, "kafka-python": "3.0.12"}, command="python -m bus389.bench", settings={}
    )
    back = [Line.from_json(line) for line in json.loads(json.dumps(document))["lines"]]
    assert [line.ratio for line in back] == [pytest.approx(0.5), pytest.approx(1.5)]
    assert [line.goal_met for line in back] == [False, True]
    text = markdown_of(document)
    assert "kafka-python `3.0.12`" in text
    assert (
        "| router | eos | events/s | 1,300 | 2,600 (bare txn loop) | 0.50 | ratio >= 0.6 | **no** |" in text
    )
    assert "| latency | p99 | ms | 150 | 100 | 1.50 | value <= 200 | yes |" in text


def test_ensure_broker_starts_kafka_only_when_bootstrap_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    import bus389.bench.context as context
    from bus389.errors import LocalKafkaError

    calls: list[list[str]] = []

    def fake_run(command: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        calls.append(command)
        out = "Kafka 4.1.1 is up: 1 broker\n  export BUS389_BOOTSTRAP=127.0.0.1:19092\n"
        return subprocess.CompletedProcess(command, 0, stdout=out, stderr="")

    monkeypatch.setattr(context, "broker_answers", lambda settings, timeout_ms=5000: False)
    monkeypatch.setattr(context.subprocess, "run", fake_run)
    settings, started = context.ensure_broker(Settings.model_construct())
    assert started is True
    assert settings.bootstrap == "127.0.0.1:19092"
    assert calls and calls[0][1:] == ["kafka", "up"]
    with pytest.raises(LocalKafkaError, match="BUS389_BOOTSTRAP"):
        context.ensure_broker(Settings(bootstrap="127.0.0.1:1"))
    assert len(calls) == 1  # a broker the user named is never replaced by a local one
    monkeypatch.setattr(context, "broker_answers", lambda settings, timeout_ms=5000: True)
    assert context.ensure_broker(Settings(bootstrap="127.0.0.1:1")) == (
        Settings(bootstrap="127.0.0.1:1"),
        False,
    )


def test_memory_halves_split_by_events_and_measure_growth_per_event() -> None:
    from bus389.bench.memory import halves

    series = [(0, 50_000), (250, 60_000), (500, 61_000), (600, 61_000), (1_000, 62_000)]
    first, second, slope = halves(series, 1_000)
    assert (first, second) == (61_000.0, 62_000.0)
    assert slope == pytest.approx((62_000 - 61_000) * 1024 / 400)
    assert all(math.isnan(x) for x in halves([(10, 1)], 1_000))
