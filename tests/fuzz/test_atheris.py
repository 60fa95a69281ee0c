"""Run the coverage-guided fuzzer (atheris) for a bounded number of inputs, seeded with the corpus.

Skipped (not passed) where atheris has no wheel; everywhere else a crash, an escaped exception or an
input slower than ``-timeout`` seconds fails the test with libFuzzer's report.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris", reason="atheris (libFuzzer for Python) is not installed here")

HERE = Path(__file__).resolve().parent
RUNS = 20_000


@pytest.mark.timeout(600)
def test_atheris_finds_no_crash_in_the_codec_and_the_router(tmp_path: Path) -> None:
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
    assert f"Done {RUNS} runs" in result.stderr, tail
    assert not list(tmp_path.glob("crash-*")) and not list(tmp_path.glob("timeout-*"))
