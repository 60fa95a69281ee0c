"""Web API benchmark: what ``POST /api/v1/events`` costs over the bare :class:`Publisher`, same run.

Lines:

- events/s through ``POST /api/v1/events/suspect_seller`` in batches of 100 (the real ``bus389 serve
  web`` in a subprocess, one keep-alive HTTP connection) against an open
  :class:`~bus389.producers.publisher.Publisher` given the same records in transactions of 100
  (validation and encoding included); goal ≥ 0.5;
- the p99 of a single-event POST sent at half the rate single-event POSTs reach back to back, against
  the p99 of a single-event transaction on the open publisher at the same pace.

The console runs as a subprocess started through the CLI (the bench never imports :mod:`bus389.web`).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bus389.agencies import Agency
from bus389.bench.context import BenchContext
from bus389.bench.harness import Goal, Line, RoundTimer, interleaved, median, percentile, rate
from bus389.bench.workload import input_records
from bus389.settings import Settings

__all__ = ["NAME", "run"]

NAME = "web"
BATCH = 100
GOAL = Goal(">=", 0.5, text="≥ 0.5 of the bare Publisher")


def _bus389() -> str:
    return str(Path(sys.executable).with_name("bus389"))


def _env(settings: Settings, folder: Path) -> dict[str, str]:
    return {
        **os.environ,
        "BUS389_BOOTSTRAP": settings.bootstrap,
        "BUS389_TOPIC_PREFIX": settings.topic_prefix,
        "BUS389_WEB__USERS_DB": str(folder / "web.sqlite3"),
        "BUS389_WEB__SESSION_SECRET_FILE": str(folder / "web-session.key"),
        "BUS389_WEB__UPLOAD_DIR": str(folder / "uploads"),
        # The bench measures the cost of the API, not its rate limit.
        "BUS389_WEB__API_RATE_PER_S": "1000000",
        "BUS389_WEB__API_BURST": "1000000",
    }


@contextmanager
def _console(settings: Settings) -> Iterator[tuple[str, int, str]]:
    """The real console on a free port: (host, port, an API token of the police)."""
    with tempfile.TemporaryDirectory(prefix="bus389-bench-web-") as tmp:
        folder = Path(tmp)
        env = _env(settings, folder)
        token_file = folder / "police.token"
        subprocess.run(
            [_bus389(), "web", "token", "add", "police", "--name", "bench", "--out", str(token_file)],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        process = subprocess.Popen(
            [_bus389(), "serve", "web", "--port", "0", "--metrics-port", "0"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        found: list[tuple[str, int]] = []
        ready = threading.Event()

        def watch() -> None:
            assert process.stderr is not None  # noqa: S101 - piped above
            for line in process.stderr:
                match = re.search(r"web: console on http://([^:/]+):(\d+)/", line)
                if match:
                    found.append((match.group(1), int(match.group(2))))
                    ready.set()
            ready.set()

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            if not ready.wait(120) or not found:
                raise RuntimeError("the web console did not start")
            host, port = found[0]
            yield host, port, token_file.read_text(encoding="utf-8").strip()
        finally:
            process.terminate()
            process.wait(timeout=60)
            watcher.join(timeout=10)
            if process.stderr is not None:
                process.stderr.close()


class _Api:
    """One keep-alive connection posting events."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self.connection = http.client.HTTPConnection(host, port, timeout=120)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def post(self, body: bytes) -> int:
        self.connection.request("POST", "/api/v1/events/suspect_seller", body=body, headers=self.headers)
        answer = self.connection.getresponse()
        data = answer.read()
        if answer.status != 201:
            raise RuntimeError(f"POST answered {answer.status}: {data[:300]!r}")
        return int(json.loads(data)["published"])

    def close(self) -> None:
        self.connection.close()


def _paced(count: int, per_s: float, send: Any) -> list[float]:
    """Latencies (ms) of ``count`` calls of ``send`` started ``1/per_s`` apart (no catching up)."""
    latencies: list[float] = []
    interval = 1.0 / per_s
    next_at = time.monotonic()
    for _ in range(count):
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        started = time.monotonic()
        send()
        latencies.append((time.monotonic() - started) * 1000)
        next_at = max(next_at + interval, time.monotonic())
    return latencies


def _lines(ctx: BenchContext, settings: Settings) -> list[Line]:
    from bus389.producers.publisher import Publisher, prepare_events
    from bus389.producers.readers import SourceRecord

    count = max(BATCH, ctx.sizes.publish_events // BATCH * BATCH)
    inputs = [d for t, d in input_records(count * 8) if t.event_type == "suspect_seller"][:count]
    batches = [inputs[i : i + BATCH] for i in range(0, len(inputs), BATCH)]
    bodies = [json.dumps(b, ensure_ascii=False, default=str).encode("utf-8") for b in batches]
    singles = [json.dumps(d, ensure_ascii=False, default=str).encode("utf-8") for d in inputs]
    publisher = Publisher(settings, Agency.POLICE)
    publisher.open()
    try:
        with _console(settings) as (host, port, token):
            api = _Api(host, port, token)
            try:

                def web_round() -> float:
                    with RoundTimer() as timer:
                        sent = sum(api.post(body) for body in bodies)
                    return rate(sent, timer.seconds)

                def bare_round() -> float:
                    sent = 0
                    with RoundTimer() as timer:
                        for batch in batches:
                            records = [SourceRecord(i + 1, d) for i, d in enumerate(batch)]
                            events = prepare_events("suspect_seller", Agency.POLICE, records, source="bench")
                            sent += publisher.publish(events).count
                    return rate(sent, timer.seconds)

                figures = interleaved({"bus389": web_round, "baseline": bare_round}, rounds=ctx.sizes.rounds)
                throughput = Line(
                    benchmark=NAME,
                    name=f"POST /api/v1/events ({BATCH}-event batches)",
                    value=median(figures["bus389"]),
                    baseline=median(figures["baseline"]),
                    baseline_name="open Publisher, same transactions",
                    goal=GOAL,
                    rounds=figures,
                    note="one keep-alive connection; token check, rate limit, JSON read, validate, publish",
                    extra={"events": count, "batch": BATCH},
                )

                probe = singles[: min(len(singles), 20 if ctx.quick else 50)]
                with RoundTimer() as timer:
                    for body in probe:
                        api.post(body)
                pace = max(1.0, rate(len(probe), timer.seconds) / 2)
                measured = singles[: min(len(singles), 50 if ctx.quick else 200)]
                bodies_iter = iter(measured)
                web_ms = _paced(len(measured), pace, lambda: api.post(next(bodies_iter)))
            finally:
                api.close()
        records_iter = iter(inputs[: len(measured)])

        def bare_single() -> None:
            record = SourceRecord(1, next(records_iter))
            publisher.publish(prepare_events("suspect_seller", Agency.POLICE, [record], source="bench"))

        bare_ms = _paced(len(measured), pace, bare_single)
    finally:
        publisher.close()
    latency = Line(
        benchmark=NAME,
        name=f"p99 of a single-event POST at {pace:.0f} POST/s (half the back-to-back rate)",
        value=percentile(web_ms, 99),
        baseline=percentile(bare_ms, 99),
        unit="ms",
        baseline_name="open Publisher, 1-event transaction",
        higher_is_better=False,
        rounds={"bus389": web_ms, "baseline": bare_ms},
        note="the console keeps one open publisher per agency; one transaction per POST",
        extra={"requests": len(web_ms), "pace_per_s": round(pace, 1)},
    )
    return [throughput, latency]


def run(ctx: BenchContext) -> list[Line]:
    with ctx.topics() as settings:
        return _lines(ctx, settings)
