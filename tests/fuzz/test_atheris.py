"""Run the coverage-guided fuzzer (atheris) for a bounded number of inputs, seeded with the corpus.

Skipped (not passed) only off Linux x86-64, where atheris has no wheel (the dev extras install it only
there). On Linux x86-64 a missing atheris is an install failure and fails the test; a crash, an escaped
exception or an input slower than ``-timeout`` seconds fails it with libFuzzer's report.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import platform
import re
import subprocess
import sys
from pathlib import Path

import pytest

if sys.platform != "linux" or platform.machine() != "x86_64":
    pytest.skip(
        f"atheris has wheels for Linux x86-64 only, not {sys.platform}/{platform.machine()}",
        allow_module_level=True,
    )

HERE = Path(__file__).resolve().parent
RUNS = 20_000


@pytest.mark.timeout(600)
def test_atheris_finds_no_crash_in_the_codec_and_the_router(tmp_path: Path) -> None:
    assert importlib.util.find_spec("atheris") is not None, (
        "atheris is not installed: it is in the dev extras for Linux x86-64 (pip install -e '.[dev]')"
    )
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for path in sorted((HERE / "corpus").glob("*.json")):
        value = json.loads(path.read_text(encoding="utf-8"))["value"]
        if value:
            (seeds / path.stem).write_bytes(base64.b64decode(value))
    assert len(list(seeds.iterdir())) >= 40
    result = subprocess.run(
        [
            sys.executable,
            str(HERE / "atheris_router.py"),
            f"-runs={RUNS}",
            "-max_len=4096",
            "-timeout=10",
            "-rss_limit_mb=2048",
            "-seed=389",
            f"-artifact_prefix={tmp_path}/",
            str(seeds),
        ],
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
        cwd=tmp_path,
    )
    tail = "\n".join(result.stderr.splitlines()[-40:])
    assert result.returncode == 0, f"atheris found a problem (exit {result.returncode}):\n{tail}"
    # libFuzzer compares its run count with -runs only between its own steps, so it can stop just past
    # it (a loaded run printed "Done 20001 runs"): at least RUNS inputs is the property.
    done = re.search(r"^Done (\d+) runs in ", result.stderr, re.MULTILINE)
    assert done is not None, f"atheris stopped without finishing its runs:\n{tail}"
    assert int(done.group(1)) >= RUNS, f"atheris ran {done.group(1)} of {RUNS} inputs:\n{tail}"
    assert not list(tmp_path.glob("crash-*")) and not list(tmp_path.glob("timeout-*"))
