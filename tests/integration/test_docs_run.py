"""The README and the user docs are a tested program: their shell blocks run in order, as a newcomer
types them after ``make demo``, in a fresh copy of the checkout with an empty HOME.

The test plays the newcomer: it copies the checkout's files (what a clone holds, plus uncommitted
edits), runs the demo there (``bash deploy/demo.sh``) with its own HOME and its own ports (never the
default 9092 or 9464-9466 another demo may use), runs every block of :data:`DOCS` in order with
:mod:`_doc_runner` (Sybil), and stops that demo (``deploy/demo.sh down``). The Kafka download is
reused from this user's cache (``BUS389_LOCAL__CACHE_DIR``): the one thing not fresh.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from _doc_runner import DocRunner, summary
from _ports import free_base_port

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]

REPO_ROOT = Path(__file__).resolve().parents[2]

DOCS = ["README.md", "docs/benchmarks.md", "deploy/prometheus/README.md"]
"""The user-facing documents with commands, in the order a reader meets them."""


def _copy_checkout(target: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO_ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    (target / ".venv").symlink_to(REPO_ROOT / ".venv")  # `make venv` is the part this test skips


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DocRunner]:
    work = tmp_path_factory.mktemp("clone")
    home = tmp_path_factory.mktemp("home")
    _copy_checkout(work)
    base = free_base_port()
    metrics = free_base_port(3)
    # What the reader's terminal has: no venv on PATH, no BUS389_* but the demo's ports.
    path = ":".join(p for p in os.environ.get("PATH", "").split(":") if ".venv" not in p)
    env = {
        "HOME": str(home),
        "PATH": path,
        "LANG": "C.UTF-8",
        "BUS389_LOCAL__CACHE_DIR": str(Path.home() / ".cache" / "bus389"),
    }
    demo_env = {
        **env,
        "BUS389_DEMO_BASE_PORT": str(base),
        "BUS389_DEMO_METRICS_PORT": str(metrics),
        # Its own console and mail ports too: a developer's own demo may hold the defaults.
        "BUS389_DEMO_WEB_PORT": str(free_base_port()),
        "BUS389_DEMO_SMTP_PORT": str(free_base_port()),
    }
    started = subprocess.run(
        ["bash", "deploy/demo.sh"], cwd=work, env=demo_env, capture_output=True, text=True, timeout=300
    )
    try:
        assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-3000:]
        next_steps = started.stdout.split("Next, in this folder, reach the bus389 command", 1)[-1]
        assert "  . .venv/bin/activate\n" in next_steps, started.stdout[-3000:]
        # The reader follows the demo's last lines: the non-default ports it printed.
        env.update(BUS389_BOOTSTRAP=f"127.0.0.1:{base}", BUS389_LOCAL__BASE_PORT=str(base))
        yield DocRunner(work=work, env=env)
    finally:
        stopped = subprocess.run(
            ["bash", "deploy/demo.sh", "down"], cwd=work, env=demo_env, capture_output=True, text=True
        )
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr


def test_every_user_doc_with_commands_is_run() -> None:
    with_commands = {
        str(p.relative_to(REPO_ROOT))
        for p in [REPO_ROOT / "README.md", *REPO_ROOT.glob("docs/*.md"), *REPO_ROOT.glob("deploy/**/*.md")]
        if "```sh" in p.read_text(encoding="utf-8") or "```bash" in p.read_text(encoding="utf-8")
    }
    assert with_commands <= set(DOCS), f"add to DOCS (in reading order): {sorted(with_commands - set(DOCS))}"


def test_the_docs_run_as_written_after_the_demo(demo: DocRunner) -> None:
    for doc in DOCS:
        demo.run_document(demo.work / doc)
    print(summary(demo.ran))
    ran = [r for r in demo.ran if r.skipped is None]
    assert ran, "no block ran"
