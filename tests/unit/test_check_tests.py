"""The test-lint (``tests/_lint/check_tests.py``) on small bad and good snippets, and on the real tests/."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
LINT = REPO_ROOT / "tests" / "_lint" / "check_tests.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_tests", LINT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_tests"] = module
    spec.loader.exec_module(module)
    return module


lint = _load()


def findings(source: str, path: str = "tests/unit/test_x.py") -> list[tuple[int, str]]:
    return [(f.line, f.message) for f in lint.check_source(textwrap.dedent(source), path)]


BAD = {
    "clock difference in an assert": (
        """
        import time
        started = time.monotonic()
        work()
        assert time.monotonic() - started < 3.0
        """,
        5,
        "a clock in an assertion",
    ),
    "clock through a name": (
        """
        import time

        def test_x():
            started = time.perf_counter()
            work()
            elapsed = time.perf_counter() - started
            assert elapsed < 180, f"took {elapsed}"
        """,
        8,
        "a clock in an assertion",
    ),
    "from time import monotonic": (
        """
        from time import monotonic as now
        t0 = now()
        assert now() - t0 < 1
        """,
        4,
        "a clock in an assertion",
    ),
    "wall clock": (
        """
        import time
        assert time.time() > 0
        """,
        3,
        "a clock in an assertion",
    ),
    "sleep": (
        """
        import time
        time.sleep(0.5)
        """,
        3,
        "time.sleep outside the wait helper",
    ),
    "sleep imported bare": (
        """
        from time import sleep
        def f():
            sleep(1)
        """,
        4,
        "time.sleep outside the wait helper",
    ),
    "skip on a tool": (
        """
        import shutil, pytest
        if shutil.which("unbound") is None:
            pytest.skip("no unbound")
        """,
        4,
        "pytest.skip without a platform condition",
    ),
    "importorskip": (
        """
        import pytest
        atheris = pytest.importorskip("atheris")
        """,
        3,
        "pytest.importorskip without a platform condition",
    ),
    "skipif on a tool": (
        """
        import shutil, pytest
        @pytest.mark.skipif(shutil.which("psql") is None, reason="no psql")
        def test_x(): ...
        """,
        3,
        "skipif without a platform condition",
    ),
    "mark.skip": (
        """
        import pytest
        @pytest.mark.skip
        def test_x(): ...
        """,
        3,
        "bare pytest.mark.skip",
    ),
    "xfail not strict": (
        """
        import pytest
        @pytest.mark.xfail(reason="flaky")
        def test_x(): ...
        """,
        3,
        "xfail without strict=True",
    ),
    "bare xfail": (
        """
        import pytest
        @pytest.mark.xfail
        def test_x(): ...
        """,
        3,
        "bare pytest.mark.xfail",
    ),
    "imperative xfail": (
        """
        import pytest
        def test_x():
            pytest.xfail("later")
        """,
        4,
        "pytest.xfail",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_the_lint_refuses(name: str) -> None:
    source, line, message = BAD[name]
    found = findings(source)
    assert len(found) == 1, found
    assert found[0][0] == line and found[0][1].startswith(message), found


GOOD = {
    "clock used for a deadline, not asserted": """
        import time
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            break
        assert True
        """,
    "clock in the message only": """
        import time
        started = time.monotonic()
        ok = work()
        assert ok, f"failed after {time.monotonic() - started:.0f} s"
        """,
    "skip for a platform": """
        import sys, pytest
        if sys.platform != "linux":
            pytest.skip("Linux only: Unbound's control socket")
        """,
    "importorskip for a platform": """
        import platform, pytest
        if platform.machine() != "x86_64":
            atheris = pytest.importorskip("atheris")
        """,
    "skipif for a platform": """
        import sys, pytest
        @pytest.mark.skipif(sys.platform == "win32", reason="no fork on Windows")
        def test_x(): ...
        """,
    "strict xfail": """
        import pytest
        @pytest.mark.xfail(strict=True, reason="issue 12")
        def test_x(): ...
        """,
    "monkeypatched sleep is not a sleep": """
        import time
        def test_x(monkeypatch):
            monkeypatch.setattr(time, "sleep", lambda s: None)
        """,
}


@pytest.mark.parametrize("name", sorted(GOOD))
def test_the_lint_accepts(name: str) -> None:
    assert findings(GOOD[name]) == []


def test_the_wait_helper_may_sleep() -> None:
    source = "import time\ntime.sleep(0.2)\n"
    assert findings(source, "tests/_wait.py") == []
    assert findings(source, "tests/integration/_wait_more.py") != []


def test_the_command_reports_file_and_line_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "test_bad.py"
    bad.write_text("import time\n\n\ndef test_x():\n    time.sleep(1)\n", encoding="utf-8")
    good = tmp_path / "test_good.py"
    good.write_text("def test_y():\n    assert 1 + 1 == 2\n", encoding="utf-8")
    run = subprocess.run(
        [sys.executable, str(LINT), str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert f"{bad}:5: time.sleep outside the wait helper" in run.stdout
    assert str(good) not in run.stdout
    clean = subprocess.run(
        [sys.executable, str(LINT), str(good)], capture_output=True, text=True, check=False
    )
    assert (clean.returncode, clean.stdout) == (0, "")


def test_this_checkout_s_tests_pass_the_lint() -> None:
    """``make lint`` runs it too; here a finding fails the unit suite as well, with its file and line."""
    found = [str(f) for path in sorted((REPO_ROOT / "tests").rglob("*.py")) for f in lint.check_file(path)]
    assert found == []
