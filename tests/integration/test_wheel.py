"""The bus runs where it is installed: the wheel alone, in a fresh environment, outside the checkout.

The wheel is built from a copy of what the Dockerfile copies (``pyproject.toml``, ``README.md``,
``bus389/``), installed with pip into a new venv in a temporary directory (its dependencies from the
package index, as a deployment gets them), and every command runs with a working directory outside the
checkout and without ``PYTHONPATH``: the schemas and the default routing policy must come from the
installed package data, and ``BUS389_ROUTER__POLICY_PATH`` must point a deployment at its own policy.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from _wait import wait_for

from bus389.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

REPO_ROOT = Path(__file__).resolve().parents[2]


class Installed:
    """A fresh venv with the wheel installed, and a working directory outside the checkout."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.venv = root / "venv"
        self.bin = self.venv / "bin"
        self.cwd = root / "elsewhere"
        self.cwd.mkdir()

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a deployment: no BUS389_* of the test run, no PYTHONPATH, the venv first."""
        base = {k: v for k, v in os.environ.items() if not k.startswith("BUS389_") and k != "PYTHONPATH"}
        base.pop("VIRTUAL_ENV", None)
        base["PATH"] = f"{self.bin}{os.pathsep}{base.get('PATH', '')}"
        return {**base, **extra}

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin / "bus389"), *args],
            cwd=self.cwd,
            env=env or self.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def _run(command: list[str], cwd: Path) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wheel")
    source = root / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / name, source / name)
    shutil.copytree(
        REPO_ROOT / "bus389", source / "bus389", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    out = root / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), "."], source)
    (built,) = out.glob("bus389-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    target = Installed(tmp_path_factory.mktemp("installed"))
    _run([sys.executable, "-m", "venv", str(target.venv)], target.root)
    _run([str(target.bin / "python"), "-m", "pip", "install", "--quiet", str(wheel)], target.root)
    return target


def test_the_wheel_installs_only_the_bus389_namespace(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    top = {name.split("/", 1)[0] for name in names}
    dist_info = {t for t in top if t.endswith(".dist-info")}
    assert top - dist_info == {"bus389"}, f"unexpected top-level entries: {sorted(top - dist_info)}"
    assert len(dist_info) == 1
    # The data the commands need travels as package data.
    assert "bus389/routing/routing-policy.yaml" in names
    assert "bus389/schemas/ids.yaml" in names
    assert any(n.startswith("bus389/schemas/suspect_seller/") and n.endswith(".avsc") for n in names)


def test_the_installed_package_is_the_one_that_runs(installed: Installed) -> None:
    result = subprocess.run(
        [str(installed.bin / "python"), "-c", "import bus389; print(bus389.__file__)"],
        cwd=installed.cwd,
        env=installed.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    where = Path(result.stdout.strip()).resolve()
    assert where.is_relative_to(installed.venv.resolve()), where
    assert not where.is_relative_to(REPO_ROOT), where


def test_routes_and_schemas_check_from_the_installed_wheel(installed: Installed) -> None:
    routes = installed.run("routes", "check")
    assert routes.returncode == 0, routes.stderr
    default_policy = installed.venv.resolve()
    assert "valid" in routes.stdout
    policy_line = routes.stdout.splitlines()[0]
    assert policy_line.startswith("policy "), routes.stdout
    assert Path(policy_line.split()[1].rstrip(":")).resolve().is_relative_to(default_policy), policy_line

    schemas = installed.run("schemas", "check")
    assert schemas.returncode == 0, schemas.stderr
    assert schemas.stdout.startswith("ok: ") or "\nok: " in schemas.stdout, schemas.stdout


def test_routes_explain_an_example_file_from_the_installed_wheel(installed: Installed) -> None:
    example = installed.cwd / "suspect_seller.jsonl"
    shutil.copy2(REPO_ROOT / "examples" / "suspect_seller.jsonl", example)
    explained = installed.run("routes", "explain", str(example), "--as", "police")
    assert explained.returncode == 0, explained.stderr
    assert "-> tax                  rule suspect_seller.tax (plan II.4)" in explained.stdout, explained.stdout


def test_a_deployment_points_at_its_own_policy(installed: Installed) -> None:
    own = installed.root / "policy" / "our-routing-policy.yaml"
    own.parent.mkdir()
    shutil.copy2(REPO_ROOT / "bus389" / "routing" / "routing-policy.yaml", own)
    routes = installed.run("routes", "check", env=installed.env(BUS389_ROUTER__POLICY_PATH=str(own)))
    assert routes.returncode == 0, routes.stderr
    assert routes.stdout.splitlines()[0].startswith(f"policy {own}"), routes.stdout

    # The setting is what is read: a broken copy fails, naming the file, without a traceback.
    own.write_text("rules: [\n", encoding="utf-8")
    broken = installed.run("routes", "check", env=installed.env(BUS389_ROUTER__POLICY_PATH=str(own)))
    assert broken.returncode != 0
    assert str(own) in broken.stderr + broken.stdout
    assert "Traceback" not in broken.stderr


def _lines(stream: object, into: queue.Queue[str]) -> Callable[[], None]:
    def pump() -> None:
        for line in stream:  # type: ignore[attr-defined]
            into.put(line)

    return pump


def test_the_router_runs_from_the_installed_wheel(installed: Installed, settings: Settings) -> None:
    """``bus389 route`` from the wheel joins the group (it says so), and SIGTERM ends it with 0."""
    env = installed.env(
        BUS389_BOOTSTRAP=settings.bootstrap,
        BUS389_TOPIC_PREFIX=settings.topic_prefix,
        BUS389_ROUTER__GROUP_ID=f"{settings.topic_prefix}.router",
        BUS389_ROUTER__TRANSACTIONAL_ID=f"{settings.topic_prefix}.router",
        BUS389_ROUTER__SESSION_TIMEOUT_MS="6000",
    )
    process = subprocess.Popen(
        [str(installed.bin / "bus389"), "route", "--metrics-port", "0"],
        cwd=installed.cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=_lines(process.stderr, lines), daemon=True)
    reader.start()
    seen: list[str] = []
    try:

        def routing() -> bool:
            assert process.poll() is None, "".join(seen)
            try:
                seen.append(lines.get(timeout=1.0))
            except queue.Empty:
                pass
            return any("router: routing" in line for line in seen)

        wait_for(routing, 120, "the wheel's router to start routing", interval_s=0)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        reader.join(timeout=30)  # the pipe's end: everything the router wrote is in ``lines``
        assert process.stderr is not None
        process.stderr.close()
    while not lines.empty():
        seen.append(lines.get())
    assert process.returncode == 0, "".join(seen)
    routing = next(line for line in seen if "router: routing" in line)
    assert settings.topic_prefix in routing
    assert f"policy {installed.venv}" in routing, routing  # the default policy: package data
