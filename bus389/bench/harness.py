"""The benchmark harness: rounds, medians, ratios, the results table and the JSON written per run.

Every benchmark line compares bus389 with a raw baseline measured in the same run, on the same
records, and reports both medians and ``ratio = bus389 ÷ baseline``. Rounds of the two sides are
interleaved (A B A B …) so that a slow spell of this shared machine hurts both sides alike. A line's
``goal`` is what the issue asks of it; the suite reports whether it was met and never fails on it:
these are benchmarks, not timed tests.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "RESULTS_DIR",
    "Goal",
    "Line",
    "RoundTimer",
    "interleaved",
    "machine_facts",
    "median",
    "percentile",
    "rate",
    "ratio",
    "render_markdown",
    "render_table",
    "results_document",
    "write_results",
]

RESULTS_DIR = Path("bench") / "results"
"""Where a run writes its JSON (``bench/results/``)."""


def median(values: Sequence[float]) -> float:
    """The median; NaN for no values (a line that could not be measured)."""
    if not values:
        return math.nan
    return float(statistics.median(values))


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100) with linear interpolation between closest ranks; NaN if empty."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is not within 0..100")
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = math.ceil(position)
    fraction = position - low
    return float(ordered[low] + (ordered[high] - ordered[low]) * fraction)


def ratio(value: float, baseline: float) -> float:
    """``value ÷ baseline``; NaN when either is missing, zero-baseline or not finite."""
    if not (math.isfinite(value) and math.isfinite(baseline)) or baseline == 0:
        return math.nan
    return value / baseline


def rate(events: int, seconds: float) -> float:
    """Events per second; NaN for a non-positive duration."""
    if seconds <= 0 or not math.isfinite(seconds):
        return math.nan
    return events / seconds


@dataclass(frozen=True)
class Goal:
    """What the issue asks of a line: ``on`` (the ratio or the value) ``op`` ``threshold``."""

    op: Literal[">=", "<="]
    threshold: float
    on: Literal["ratio", "value"] = "ratio"
    text: str = ""

    def met(self, line: Line) -> bool | None:
        """True/False, or None when the figure is missing (NaN)."""
        figure = line.ratio if self.on == "ratio" else line.value
        if not math.isfinite(figure):
            return None
        return figure >= self.threshold if self.op == ">=" else figure <= self.threshold

    def describe(self) -> str:
        if self.text:
            return self.text
        what = "ratio" if self.on == "ratio" else "value"
        return f"{what} {self.op} {self.threshold:g}"


@dataclass
class Line:
    """One row of the table: a bus389 figure against its baseline, both medians of several rounds."""

    benchmark: str
    name: str
    value: float
    baseline: float
    unit: str = "events/s"
    baseline_name: str = ""
    higher_is_better: bool = True
    goal: Goal | None = None
    rounds: dict[str, list[float]] = field(default_factory=dict)
    """Every round's figure, per side (``bus389``, ``baseline``), for the JSON."""
    extra: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    @property
    def ratio(self) -> float:
        return ratio(self.value, self.baseline)

    @property
    def goal_met(self) -> bool | None:
        if self.goal is None:
            return None
        if math.isnan(self.goal.threshold):
            return self.recorded_goal_met
        return self.goal.met(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Line:
        """A line back from :meth:`as_json` (the goal keeps its text only, for display)."""
        goal = None
        if data.get("goal"):
            goal = Goal(">=", math.nan, text=str(data["goal"]))
        line = cls(
            benchmark=str(data["benchmark"]),
            name=str(data["line"]),
            value=_number(data.get("bus389")),
            baseline=_number(data.get("baseline")),
            unit=str(data.get("unit", "events/s")),
            baseline_name=str(data.get("baseline_name", "")),
            higher_is_better=bool(data.get("higher_is_better", True)),
            goal=goal,
            extra=dict(data.get("extra") or {}),
            note=str(data.get("note", "")),
        )
        line.recorded_goal_met = data.get("goal_met")
        return line

    recorded_goal_met: bool | None = field(default=None, repr=False)
    """For a line read back from JSON: whether its goal was met when it was measured."""

    def as_json(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "line": self.name,
            "unit": self.unit,
            "bus389": _finite(self.value),
            "baseline": _finite(self.baseline),
            "baseline_name": self.baseline_name,
            "ratio": _finite(self.ratio),
            "higher_is_better": self.higher_is_better,
            "goal": None if self.goal is None else self.goal.describe(),
            "goal_met": self.goal_met,
            "rounds": {k: [_finite(v) for v in vs] for k, vs in self.rounds.items()},
            "extra": _jsonable(self.extra),
            "note": self.note,
        }


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else math.nan


def _finite(value: float) -> float | None:
    return round(value, 4) if math.isfinite(value) else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, float):
        return _finite(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


class RoundTimer:
    """Measures one round: ``with RoundTimer() as t: ...`` then ``t.seconds``."""

    def __init__(self) -> None:
        self.started = 0.0
        self.seconds = 0.0

    def __enter__(self) -> RoundTimer:
        self.started = time.perf_counter()
        return self

    def __exit__(self, *_: object) -> None:
        self.seconds = time.perf_counter() - self.started


def interleaved(
    sides: Mapping[str, Callable[[], float]], *, rounds: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Run every side ``warmup`` + ``rounds`` times, alternating sides; keep the measured figures.

    Each callable runs one round and returns its figure (events/s, or any "higher is better" or
    "lower is better" number); warm-up rounds are run and thrown away (imports, caches, connections).
    """
    if rounds < 1:
        raise ValueError("at least one round")
    figures: dict[str, list[float]] = {name: [] for name in sides}
    for index in range(warmup + rounds):
        for name, run in sides.items():
            figure = run()
            if index >= warmup:
                figures[name].append(figure)
    return figures


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine_facts() -> dict[str, Any]:
    """The machine and library versions a figure belongs to."""
    from kafka.record import util as record_util

    crc = getattr(record_util, "_crc32c", None)
    crc_module = getattr(crc, "__module__", None) or "builtin"
    cpu_model = ""
    try:
        for text in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if text.startswith("model name"):
                cpu_model = text.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "cpu": cpu_model or platform.processor(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "kafka-python": _version("kafka-python"),
        "fastavro": _version("fastavro"),
        "pydantic": _version("pydantic"),
        "crc32c": _version("crc32c"),
        "kafka_python_crc32c": f"{crc_module}.{getattr(crc, '__name__', '?')}",
        "crc32c_accelerated": crc is not None and crc_module != "kafka.record._crc32c",
        "confluent-kafka": _version("confluent-kafka"),
        "bus389": _version("bus389"),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def results_document(
    lines: Sequence[Line], *, facts: Mapping[str, Any], command: str, settings: Mapping[str, Any]
) -> dict[str, Any]:
    """The JSON document of one run."""
    return {
        "suite": "bus389 benchmarks",
        "command": command,
        "machine": dict(facts),
        "settings": _jsonable(dict(settings)),
        "lines": [line.as_json() for line in lines],
    }


def write_results(
    document: Mapping[str, Any], directory: Path = RESULTS_DIR, *, name: str, latest: bool = True
) -> Path:
    """Write ``<name>.json`` under ``directory``, and with ``latest`` also ``latest.json`` (the same
    content). A quick run passes ``latest=False``: the committed ``latest.json`` is a full run's."""
    directory.mkdir(parents=True, exist_ok=True)
    text = json.dumps(document, ensure_ascii=False, indent=2) + "\n"
    path = directory / f"{name}.json"
    path.write_text(text, encoding="utf-8")
    if latest:
        (directory / "latest.json").write_text(text, encoding="utf-8")
    return path


def _figure(value: float, unit: str) -> str:
    if not math.isfinite(value):
        return "—"
    if unit == "events/s":
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def render_table(lines: Sequence[Line]) -> str:
    """The plain-text table a run prints (also pasted into ``docs/benchmarks.md``)."""
    headers = ["benchmark", "line", "unit", "bus389", "baseline", "ratio", "goal", "met"]
    rows: list[list[str]] = []
    for line in lines:
        met = line.goal_met
        rows.append(
            [
                line.benchmark,
                line.name,
                line.unit,
                _figure(line.value, line.unit),
                _figure(line.baseline, line.unit)
                + (f" ({line.baseline_name})" if line.baseline_name else ""),
                f"{line.ratio:.2f}" if math.isfinite(line.ratio) else "—",
                line.goal.describe() if line.goal else "",
                "" if met is None else ("yes" if met else "NO"),
            ]
        )
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    numeric = {3, 4, 5}

    def fmt(cells: Sequence[str]) -> str:
        out = [c.rjust(widths[i]) if i in numeric else c.ljust(widths[i]) for i, c in enumerate(cells)]
        return "  ".join(out).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(headers), rule, *(fmt(r) for r in rows)])


def render_markdown(lines: Sequence[Line]) -> str:
    """The same table in Markdown (for ``docs/benchmarks.md``)."""
    out = [
        "| benchmark | line | unit | bus389 | baseline | ratio | goal | met |",
        "|---|---|---|--:|--:|--:|---|---|",
    ]
    for line in lines:
        met = line.goal_met
        baseline = _figure(line.baseline, line.unit)
        if line.baseline_name:
            baseline += f" ({line.baseline_name})"
        cells = [
            line.benchmark,
            line.name,
            line.unit,
            _figure(line.value, line.unit),
            baseline,
            f"{line.ratio:.2f}" if math.isfinite(line.ratio) else "—",
            line.goal.describe() if line.goal else "",
            "" if met is None else ("yes" if met else "**no**"),
        ]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)
