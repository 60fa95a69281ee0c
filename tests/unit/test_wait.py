"""The wait helper (``tests/_wait.py``): returns what the condition returned, or fails saying what."""

from __future__ import annotations

import pytest
from _wait import WaitTimeout, wait_for


def test_returns_the_first_truthy_value() -> None:
    answers = iter([0, None, "", 7, 8])
    assert wait_for(lambda: next(answers), 5, "a number", interval_s=0) == 7


def test_a_deadline_that_passes_fails_the_test_saying_what_and_the_last_value() -> None:
    asked: list[int] = []

    def never() -> int:
        asked.append(1)
        return 0

    with pytest.raises(AssertionError, match=r"waiting for the broker to answer \(last: 0\)") as raised:
        wait_for(never, 0, "the broker to answer")
    assert isinstance(raised.value, WaitTimeout)
    assert asked == [1], "asked once even with no time at all"


def test_an_exception_in_the_condition_is_not_swallowed() -> None:
    def broken() -> bool:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        wait_for(broken, 5, "anything")
