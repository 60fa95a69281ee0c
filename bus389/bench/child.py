"""The benchmark's child processes: the real router, the bare loops and the latency probe, one per process.

Every run of a Kafka consumer loop is a process of its own (``python -m bus389.bench.child KIND …``), for
three reasons: two routers in a group must be two processes to use two cores; peak RSS is a
per-process figure; and kafka-python 3.0.12 can block forever inside a synchronous call (its
``NetworkSelector.run`` waits on an event without a timeout; seen here in
``ensure_coordinator_ready`` after a few consumers had been opened and closed in one process, see
kafka-python issue #3121), so the parent must be able to kill a stuck round and run it again.

The parent passes the settings in the ``BUS389_*`` environment and reads one JSON object, the last
line of the child's stdout. SIGTERM stops a child that runs without a target (it finishes its batch).

Kinds:

- ``router``: the real router (:class:`TimedRouter`), until ``--target`` events or SIGTERM;
- ``bare``: the bare kafka-python loop of :mod:`bus389.bench.loops` with the fan-out plan of ``--plan``;
- ``confluent``: the same bare loop with confluent-kafka (librdkafka);
- ``latency``: publish at ``--rate`` events/s through the bus389 publisher for ``--seconds`` and time
  each event until a ``read_committed`` consumer of the inboxes sees it.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bus389.consumers.router.service import RouterService
from bus389.runtime.stop import StopFlag
from bus389.settings import Settings

__all__ = [
    "ChildError",
    "RouterRun",
    "TimedRouter",
    "child_env",
    "collect",
    "peak_rss_kib",
    "rss_kib",
    "run_child",
    "spawn",
    "wait_ready",
]

log = logging.getLogger("bench")


class ChildError(RuntimeError):
    """A child process failed, printed no result, or did not finish in time."""


def rss_kib() -> int:
    """This process's resident set size now, in KiB (0 where ``/proc`` is missing)."""
    try:
        for text in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
            if text.startswith("VmRSS:"):
                return int(text.split()[1])
    except OSError:
        pass
    return 0


def peak_rss_kib() -> int:
    """The peak resident set size of this process so far, in KiB (``ru_maxrss`` is KiB on Linux)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


# -- the parent's side ---------------------------------------------------------------------------------


def child_env(settings: Settings) -> dict[str, str]:
    """The ``BUS389_*`` variables that rebuild ``settings``' broker, prefix and router in a child."""
    router = settings.router
    return {
        "BUS389_BOOTSTRAP": settings.bootstrap,
        "BUS389_TOPIC_PREFIX": settings.topic_prefix,
        "BUS389_KAFKA__PARTITIONS": str(settings.kafka.partitions),
        "BUS389_ROUTER__GROUP_ID": router.group_id,
        "BUS389_ROUTER__TRANSACTIONAL_ID": router.transactional_id,
        "BUS389_ROUTER__TRANSACTIONS": "true" if router.transactions else "false",
        "BUS389_ROUTER__BATCH_MAX_EVENTS": str(router.batch_max_events),
        "BUS389_ROUTER__BATCH_MAX_MS": str(router.batch_max_ms),
        "BUS389_ROUTER__SESSION_TIMEOUT_MS": str(router.session_timeout_ms),
        "BUS389_ROUTER__POLICY_PATH": str(router.policy_path),
    }


def spawn(kind: str, settings: Settings, args: Sequence[str] = ()) -> subprocess.Popen[str]:
    """Start ``python -m bus389.bench.child KIND ARGS`` with ``settings`` in its environment."""
    env = {**os.environ, **child_env(settings)}
    return subprocess.Popen(
        [sys.executable, "-m", "bus389.bench.child", kind, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def collect(process: subprocess.Popen[str], *, timeout_s: float, stop: bool = False) -> dict[str, Any]:
    """Wait for a child (SIGTERM it first with ``stop``) and return its JSON; kill it after ``timeout_s``."""
    if stop and process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        out, err = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise ChildError(
            f"child {process.args!r} did not finish within {timeout_s:.0f} s: {err[-2000:]}"
        ) from None
    lines = [t for t in out.splitlines() if t.startswith("{")]
    if process.returncode != 0 or not lines:
        raise ChildError(f"child {process.args!r} failed ({process.returncode}): {err[-2000:]}")
    for text in err.splitlines():
        if text.startswith(("WARNING:consumers.", "ERROR:consumers.", "WARNING:bus389.", "ERROR:bus389.")):
            log.warning("bench: child: %s", text[:300])
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def run_child(
    kind: str,
    settings: Settings,
    args: Sequence[str] = (),
    *,
    timeout_s: float,
    attempts: int = 2,
    fresh: Callable[[], Settings] | None = None,
) -> dict[str, Any]:
    """Run a child to its end; on a failure or a hang, try again (with ``fresh()`` settings if given)."""
    last: ChildError | None = None
    for attempt in range(attempts):
        use = settings if attempt == 0 or fresh is None else fresh()
        try:
            return collect(spawn(kind, use, args), timeout_s=timeout_s)
        except ChildError as exc:
            log.warning("bench: %s child failed (attempt %d of %d): %s", kind, attempt + 1, attempts, exc)
            last = exc
    assert last is not None
    raise last


# -- the router ------------------------------------------------------------------------------------


@dataclass
class RouterRun:
    """What one loop run did and when (wall-clock batch ends, to combine several processes)."""

    events: int = 0
    copies: int = 0
    batches: int = 0
    aborted: int = 0
    dead_letters: int = 0
    seconds: float = 0.0
    first_wall: float = 0.0
    last_wall: float = 0.0
    batch_ends: list[tuple[float, int]] = field(default_factory=list)
    rss_start_kib: int = 0
    rss_peak_kib: int = 0
    """``ru_maxrss``: the whole process's peak, start-up included."""
    rss_routing_max_kib: int = 0
    """The largest RSS sampled (every 50 ms) from the first batch on: what routing itself holds."""
    rss_end_kib: int = 0
    rss_series: list[tuple[int, int]] = field(default_factory=list)
    """(events committed, RSS KiB) sampled every 50 ms from the first batch on."""
    reply_index: int = 0


class TimedRouter(RouterService):
    """The router service with a stopwatch around every batch; stops after ``target`` events.

    The hook is the service's per-batch method: the routing, the transaction and the commit are the
    service's own code, unchanged.
    """

    def __init__(
        self,
        settings: Any,
        *,
        target: int | None,
        ready_file: Path | None = None,
        gate: Path | None = None,
        sample_rss: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(settings, stop=StopFlag(), **kwargs)
        self.target = target
        self._sample = sample_rss
        """Sample the RSS every 50 ms (the memory benchmark): a thread reading ``/proc`` in the router's
        process, so the throughput rounds leave it off."""
        self.timing = RouterRun()
        self._first = 0.0
        self._ready_file = ready_file
        self._gate = gate
        self.joined = threading.Event()
        """Set once the group assigned this process partitions (see :func:`_watchdog`)."""

    def note_rebalance(self, what: str, partitions: Any) -> None:
        # Until the gate opens, every partition the group gives us stays paused: the process is in
        # the group (so the other router's join does not interrupt it later) but takes no record.
        if self._gate is not None and what == "assigned" and partitions:
            self._consumer.pause(*partitions)
        super().note_rebalance(what, partitions)

    def _poll_batch(self) -> list[Any]:
        while True:
            batch = super()._poll_batch()
            assigned = self._consumer.assignment()
            if assigned:
                self.joined.set()
            if self._ready_file is not None and assigned and not self._rebalanced.is_set():
                self._ready_file.touch()
                self._ready_file = None
            if self._gate is None or batch or self._rebalanced.is_set() or self.stop.is_set:
                return batch
            if self._ready_file is None and self._gate.exists():
                self._gate = None
                self._consumer.resume(*assigned)
                return batch
            # Gated: keep polling (heartbeats, rebalances) without counting the polls as idle.

    def _sample_rss(self) -> None:
        while True:
            now = rss_kib()
            self.timing.rss_routing_max_kib = max(self.timing.rss_routing_max_kib, now)
            self.timing.rss_series.append((self.stats.events, now))
            time.sleep(0.05)

    def _process(self, batch: list[Any]) -> None:
        if not self._first:
            self._first = time.perf_counter()
            self.timing.first_wall = time.time()
            self.timing.rss_start_kib = rss_kib()
            if self._sample:
                threading.Thread(target=self._sample_rss, name="bench-rss", daemon=True).start()
        super()._process(batch)
        self.timing.seconds = time.perf_counter() - self._first
        self.timing.last_wall = time.time()
        self.timing.batch_ends.append((time.time(), len(batch)))
        if self.target is not None and self.stats.events >= self.target:
            self.stop.set()


def _watchdog(joined: threading.Event, timeout_s: float) -> None:
    """Exit the process (status 75) unless ``joined`` is set within ``timeout_s``.

    kafka-python 3.0.12 sometimes never completes the group join (its synchronous wait has no
    timeout); the parent then runs the round again in a new process instead of waiting minutes.
    """

    def watch() -> None:
        if not joined.wait(timeout_s):
            sys.stderr.write(
                f"bus389.bench.child: no partitions assigned within {timeout_s:.0f} s: giving up\n"
            )
            sys.stderr.flush()
            os._exit(75)

    threading.Thread(target=watch, name="bench-watchdog", daemon=True).start()


def _override_consumers(**overrides: Any) -> None:
    """What-if knob: every consumer bus389 makes in this process gets ``overrides`` (e.g. fetch wait)."""
    import bus389.kafka as kafka_module

    made = kafka_module.make_consumer

    def make_consumer(settings: Any, **kwargs: Any) -> Any:
        return made(settings, **{**kwargs, **overrides})

    kafka_module.make_consumer = make_consumer


def _router(args: Any) -> dict[str, Any]:
    if args.fetch_max_wait_ms:
        _override_consumers(fetch_max_wait_ms=args.fetch_max_wait_ms)
    router = TimedRouter(
        Settings(),
        target=args.target,
        ready_file=Path(args.ready_file) if args.ready_file else None,
        gate=Path(args.gate) if args.gate else None,
        sample_rss=args.sample_rss,
    )
    router.stop.install()
    _watchdog(router.joined, args.join_timeout)
    stats = router.run(max_idle_polls=args.idle_polls)
    timing = router.timing
    timing.events = stats.events
    timing.copies = stats.copies
    timing.batches = stats.batches
    timing.aborted = stats.aborted
    timing.dead_letters = sum(stats.dead_letters.values())
    timing.rss_peak_kib = peak_rss_kib()
    timing.rss_end_kib = rss_kib()
    timing.rss_routing_max_kib = max(timing.rss_routing_max_kib, timing.rss_end_kib)
    timing.reply_index = len(router.replies)
    return asdict(timing)


# -- the bare loops --------------------------------------------------------------------------------


def _stop_on_sigterm() -> StopFlag:
    return StopFlag().install()


def _bare(args: Any) -> dict[str, Any]:
    from bus389.bench.loops import bare_fanout_loop

    plan = {k.encode(): tuple(v) for k, v in json.loads(Path(args.plan).read_text(encoding="utf-8")).items()}
    stop = _stop_on_sigterm()
    joined = threading.Event()
    _watchdog(joined, args.join_timeout)
    result = bare_fanout_loop(
        Settings(),
        plan,
        target=args.target,
        transactional=args.transactions == "on",
        stop=stop,
        ready_file=Path(args.ready_file) if args.ready_file else None,
        joined=joined,
        consumer_overrides={"fetch_max_wait_ms": args.fetch_max_wait_ms} if args.fetch_max_wait_ms else None,
    )
    return {
        "events": result.events,
        "copies": result.copies,
        "batches": result.batches,
        "seconds": result.seconds,
        "batch_ends": result.batch_ends,
        "rss_peak_kib": peak_rss_kib(),
    }


def _confluent(args: Any) -> dict[str, Any]:
    from bus389.bench.confluent_loop import confluent_fanout_loop

    plan = {k.encode(): tuple(v) for k, v in json.loads(Path(args.plan).read_text(encoding="utf-8")).items()}
    result = confluent_fanout_loop(
        Settings(), plan, target=args.target, transactional=args.transactions == "on"
    )
    return {
        "events": result.events,
        "copies": result.copies,
        "batches": result.batches,
        "seconds": result.seconds,
        "rss_peak_kib": peak_rss_kib(),
    }


# -- the latency probe -----------------------------------------------------------------------------


def _latency(args: Any) -> dict[str, Any]:
    from kafka import TopicPartition

    from bus389.agencies import Agency
    from bus389.bench.workload import inputs_of
    from bus389.kafka import make_consumer
    from bus389.producers.publisher import Publisher, prepare_events
    from bus389.producers.readers import SourceRecord

    settings = Settings()
    agency = Agency(args.agency)
    total = int(args.rate * (args.seconds + args.warmup_s))
    records = [SourceRecord(i + 1, d) for i, d in enumerate(inputs_of(args.event_type, agency, total))]
    events = prepare_events(args.event_type, agency, records, source="bench")
    expected = {outgoing.event_id for outgoing in events}
    reader_overrides: dict[str, Any] = {}
    if args.reader_fetch_wait_ms is not None:
        reader_overrides["fetch_max_wait_ms"] = args.reader_fetch_wait_ms
    sent_at: dict[str, float] = {}
    seen_at: dict[str, float] = {}
    ready = threading.Event()
    done = threading.Event()

    def consume() -> None:
        consumer = make_consumer(settings, group_id=None, **reader_overrides)
        try:
            tps = [
                TopicPartition(topic, p)
                for topic in settings.topics.all_inboxes()
                for p in sorted(consumer.partitions_for_topic(topic) or ())
            ]
            consumer.assign(tps)
            consumer.seek_to_end(*tps)
            for tp in tps:
                consumer.position(tp)
            ready.set()
            while not done.is_set():
                for records_of in consumer.poll(timeout_ms=50).values():
                    now = time.perf_counter()
                    for raw in records_of:
                        for name, value in raw.headers or ():
                            if name == "ce_id" and value.decode() in expected:
                                seen_at.setdefault(value.decode(), now)
                if len(seen_at) >= len(events):
                    break
        finally:
            consumer.close(autocommit=False)

    reader = threading.Thread(target=consume, name="latency-reader", daemon=True)
    reader.start()
    if not ready.wait(60):
        raise ChildError("the inbox reader did not start within 60 s")
    tick = args.tick_ms / 1000
    with Publisher(settings, agency) as publisher:
        started = time.perf_counter()
        index = 0
        while index < len(events):
            due = min(len(events), int((time.perf_counter() - started) * args.rate) + 1)
            if due > index:
                chunk = events[index:due]
                now = time.perf_counter()
                for outgoing in chunk:
                    sent_at[outgoing.event_id] = now
                publisher.publish(chunk)
                index = due
            next_tick = started + (index / args.rate)
            time.sleep(max(0.0, min(tick, next_tick - time.perf_counter())))
        publish_seconds = time.perf_counter() - started
    deadline = time.monotonic() + args.drain_s
    while len(seen_at) < len(events) and time.monotonic() < deadline:
        time.sleep(0.05)
    done.set()
    reader.join(10)
    measured = [i for i in sent_at if sent_at[i] - started >= args.warmup_s]
    latencies = [(seen_at[i] - sent_at[i]) * 1000 for i in measured if i in seen_at]
    series = sorted((sent_at[i] - started, (seen_at[i] - sent_at[i]) * 1000) for i in sent_at if i in seen_at)
    return {
        "published": len(events),
        "measured": len(measured),
        "seen": len(latencies),
        "seen_all": len(seen_at),
        "publish_seconds": publish_seconds,
        "achieved_rate": len(events) / publish_seconds if publish_seconds > 0 else 0.0,
        "latencies_ms": latencies,
        "series": series[:: max(1, len(series) // 200)],
    }


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bus389.bench.child")
    sub = parser.add_subparsers(dest="kind", required=True)
    router = sub.add_parser("router")
    router.add_argument("--target", type=int, default=None)
    router.add_argument("--idle-polls", type=int, default=None)
    router.add_argument("--ready-file", default=None, help="touched once the group assigned partitions")
    router.add_argument("--gate", default=None, help="take no record until this file exists")
    router.add_argument("--fetch-max-wait-ms", type=int, default=None, help="what-if: the consumer's")
    router.add_argument("--join-timeout", type=float, default=45.0, help="exit 75 if not assigned by then")
    router.add_argument("--sample-rss", action="store_true", help="sample the RSS every 50 ms (memory)")
    for name in ("bare", "confluent"):
        loop = sub.add_parser(name)
        loop.add_argument("--plan", required=True)
        loop.add_argument("--target", type=int, default=None)
        loop.add_argument("--transactions", choices=("on", "off"), default="on")
        loop.add_argument("--ready-file", default=None, help="touched once the group assigned partitions")
        loop.add_argument("--fetch-max-wait-ms", type=int, default=None, help="the loop consumer's")
        loop.add_argument("--join-timeout", type=float, default=45.0, help="exit 75 if not assigned by then")
    latency = sub.add_parser("latency")
    latency.add_argument("--rate", type=float, required=True)
    latency.add_argument("--seconds", type=float, required=True)
    latency.add_argument("--agency", default="police")
    latency.add_argument("--event-type", default="suspect_seller")
    latency.add_argument("--tick-ms", type=float, default=20.0)
    latency.add_argument("--drain-s", type=float, default=15.0)
    latency.add_argument(
        "--reader-fetch-wait-ms", type=int, default=None, help="the reader's fetch_max_wait_ms"
    )
    latency.add_argument(
        "--warmup-s", type=float, default=2.0, help="events sent before this are not measured"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.getLogger("kafka.net.selector").setLevel(logging.ERROR)
    kinds: dict[str, Callable[[Any], dict[str, Any]]] = {
        "router": _router,
        "bare": _bare,
        "confluent": _confluent,
        "latency": _latency,
    }
    result = kinds[args.kind](args)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


def wait_ready(path: Path, process: subprocess.Popen[str], *, timeout_s: float = 60.0) -> None:
    """Wait until a child touched ``path`` (its group assigned it partitions); ChildError otherwise."""
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if process.poll() is not None:
            raise ChildError(f"child {process.args!r} exited ({process.returncode}) before it was ready")
        if time.monotonic() > deadline:
            process.kill()
            process.communicate()
            raise ChildError(f"child {process.args!r} not ready within {timeout_s:.0f} s")
        time.sleep(0.1)


if __name__ == "__main__":
    raise SystemExit(main())
