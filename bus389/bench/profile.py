"""Profiling the hot paths: ``python -m bus389.bench.profile codec|publisher|router`` (py-spy, else cProfile).

Runs the same work the benchmarks measure in a child process under ``py-spy record`` (sampling, sees
every thread, C frames of fastavro and pydantic-core folded into their callers) and prints where the
samples fall: inclusive (a function and what it calls) and self (the function's own code). With
``--speedscope FILE`` it also writes a profile for https://www.speedscope.app/. Where py-spy is not
installed or cannot attach (no ptrace), the work runs under cProfile instead and the report says so.

The publisher and router profiles need a broker (``BUS389_BOOTSTRAP``); they create their topics under
a ``bench_<8 hex>`` prefix and delete them afterwards.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import json
import os
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bus389.bench.context import BenchContext, Sizes
from bus389.bench.router import filled_backlog, with_router
from bus389.settings import Settings

__all__ = ["main", "summarize_speedscope"]


def summarize_speedscope(document: dict[str, Any], *, top: int = 30, within: str | None = None) -> str:
    """Inclusive and self shares of a py-spy speedscope profile; ``within``: only stacks through it."""
    frames = [f"{f.get('name', '?')} ({f.get('file', '?')})" for f in document["shared"]["frames"]]
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    total = 0
    for profile in document.get("profiles", []):
        thread = re.sub(r"\s*\(?\d+\)?$", "", str(profile.get("name", "")))
        for sample, weight in zip(profile.get("samples", []), profile.get("weights", []), strict=False):
            names = [frames[i] for i in sample]
            if within and not any(within in n for n in names):
                continue
            total += weight
            threads[thread] += weight
            for name in set(names):
                inclusive[name] += weight
            if names:
                own[names[-1]] += weight
    if not total:
        return "no samples"
    skip = ("<frozen runpy>", "threading.py", "<module>")
    unit = str((document.get("profiles") or [{}])[0].get("unit", "none"))
    amount = f"{total:.1f} s sampled" if unit == "seconds" else f"{total:.0f} samples"
    out = [amount + (f" in stacks through {within!r}" if within else ""), "threads:"]
    out.extend(f"  {n / total:6.1%}  {name}" for name, n in threads.most_common(6))
    out.append("inclusive:")
    kept = [(f, n) for f, n in inclusive.most_common(top * 3) if not any(s in f for s in skip)][:top]
    out.extend(f"  {n / total:6.1%}  {f[:140]}" for f, n in kept)
    out.append("self:")
    out.extend(f"  {n / total:6.1%}  {f[:140]}" for f, n in own.most_common(top))
    return "\n".join(out)


def _py_spy() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def _work_codec(seconds: float) -> None:
    from bus389.bench.workload import avro_records
    from bus389.codec import decode_event, encode_event
    from bus389.events import event_from_avro

    records = avro_records(2_000)
    encoded = [encode_event(r) for r in records]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for record in records:
            encode_event(record)
        for item in encoded:
            event_from_avro(decode_event(item.value, item.headers).record)


def _work_publisher(count: int, settings: Settings | None = None) -> None:
    from bus389.agencies import Agency
    from bus389.bench.workload import input_records
    from bus389.producers.publisher import Publisher, prepare_events
    from bus389.producers.readers import SourceRecord

    groups: dict[tuple[str, Agency], list[SourceRecord]] = {}
    for index, (template, data) in enumerate(input_records(count)):
        groups.setdefault((template.event_type, template.agency), []).append(SourceRecord(index + 1, data))
    with Publisher(settings or Settings(), Agency.POLICE) as publisher:
        for (event_type, agency), records in groups.items():
            events = prepare_events(event_type, agency, records, source="profile")
            for start in range(0, len(events), 500):
                publisher.publish(events[start : start + 500])


def _record(command: list[str], env: dict[str, str], output: Path) -> dict[str, Any] | None:
    """Run ``command`` under py-spy (every thread) into a speedscope file; its JSON, or None on failure."""
    spy = _py_spy()
    if spy is None:
        return None
    result = subprocess.run(
        [spy, "record", "-r", "200", "-f", "speedscope", "-o", str(output), "--", *command],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not output.exists():
        sys.stderr.write(f"py-spy failed ({result.returncode}): {result.stderr[-1000:]}\n")
        return None
    document: dict[str, Any] = json.loads(output.read_text(encoding="utf-8"))
    return document


def _cprofile(target: str, argument: float, settings: Settings | None = None) -> str:
    profiler = cProfile.Profile()
    if target == "codec":
        profiler.runcall(_work_codec, argument)
    else:
        profiler.runcall(_work_publisher, int(argument), settings)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stats.txt"
        with path.open("w", encoding="utf-8") as stream:
            pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(30)
        return (
            "cProfile (py-spy unavailable; C extensions' time is folded into their callers)\n"
            + path.read_text(encoding="utf-8")
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bus389.bench.profile", description=__doc__)
    parser.add_argument("target", choices=("codec", "publisher", "router", "_work"))
    parser.add_argument("--events", type=int, default=8_000, help="publisher and router: how many events")
    parser.add_argument("--seconds", type=float, default=8.0, help="codec: how long to loop")
    parser.add_argument("--within", default=None, help="summarize only stacks through this function")
    parser.add_argument("--speedscope", type=Path, default=None, help="also write a speedscope profile here")
    parser.add_argument("--work", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.target == "_work":  # the child process py-spy watches
        if args.work == "codec":
            _work_codec(args.seconds)
        else:
            _work_publisher(args.events)
        return 0

    from bus389.bench.child import child_env

    output = (
        args.speedscope or Path(tempfile.mkdtemp(prefix="bench-profile-")) / f"{args.target}.speedscope.json"
    )
    base = [sys.executable, "-m", "bus389.bench.profile", "_work", "--events", str(args.events)]
    if args.target == "codec":
        document = _record(
            [*base, "--work", "codec", "--seconds", str(args.seconds)], dict(os.environ), output
        )
        print(
            summarize_speedscope(document, within=args.within)
            if document
            else _cprofile("codec", args.seconds)
        )
        print(f"profile: {output}" if document else "")
        return 0
    ctx = BenchContext(settings=Settings(), sizes=Sizes.full())
    with filled_backlog(ctx, args.events if args.target == "router" else 1) as data:
        settings = with_router(data.settings)
        env = {**os.environ, **child_env(settings)}
        if args.target == "router":
            command = [sys.executable, "-m", "bus389.bench.child", "router", "--target", str(args.events)]
        else:
            command = [*base, "--work", "publisher"]
        document = _record(command, env, output)
        if document is None and args.target == "publisher":
            print(_cprofile("publisher", args.events, settings))
    if document is not None:
        print(summarize_speedscope(document, within=args.within))
        print(f"profile: {output} (open it in https://www.speedscope.app/)")
    elif args.target == "router":
        print(
            "py-spy is not available: profile the router with "
            "`python -m cProfile -m bus389.bench.child router …`"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
