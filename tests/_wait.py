"""The one way a test waits: for an observable condition, with a deadline that fails the test.

A fixed ``time.sleep`` guesses how long something takes: on a busy 2-core machine it is either too
short (a flaky failure) or too long (a slow suite), and a wait loop that lets its deadline pass
silently tests nothing. ``wait_for`` polls ``condition`` until it returns something truthy and
returns that, or raises ``AssertionError`` naming ``what`` it waited for. The test-lint
(``tests/_lint/check_tests.py``) refuses ``time.sleep`` anywhere under ``tests/`` but here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["WaitTimeout", "wait_for"]

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """The condition did not hold before the deadline: the test fails, saying what it waited for."""


def wait_for(condition: Callable[[], T], timeout_s: float, what: str, *, interval_s: float = 0.2) -> T:
    """Poll ``condition`` every ``interval_s`` until it returns a truthy value; return that value.

    Raises :class:`WaitTimeout` (an ``AssertionError``) after ``timeout_s`` seconds, with ``what`` and
    the last value seen. The condition is always asked at least once, and once more at the deadline.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout_s:g} s waiting for {what} (last: {value!r})")
        time.sleep(interval_s)
