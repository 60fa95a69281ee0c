"""The report period of plan III.3: a half year in Vietnam's time (``2021-H1``, ``2021-H2``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from bus389.errors import ConfigError, InputError

__all__ = ["VN_TZ", "Period", "due_at"]

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
"""The province's time zone: periods and dates in the report are Vietnam's (UTC+7)."""

_PERIOD = re.compile(r"^(\d{4})-H([12])$")


@dataclass(frozen=True)
class Period:
    """A half year, Vietnam time: ``2021-H1`` = [1 Jan, 1 Jul 2021), ``2021-H2`` = [1 Jul, 1 Jan 2022)."""

    year: int
    half: int

    @classmethod
    def parse(cls, text: str) -> Period:
        match = _PERIOD.match(text.strip().upper())
        if match is None or not 1 <= int(match.group(1)) <= 9998:
            raise InputError(
                f"{text!r} is not a six-month period: expected YYYY-H1 (January–June) "
                "or YYYY-H2 (July–December), e.g. 2021-H1"
            )
        return cls(int(match.group(1)), int(match.group(2)))

    @property
    def label(self) -> str:
        return f"{self.year}-H{self.half}"

    @property
    def start(self) -> datetime:
        return datetime(self.year, 1 if self.half == 1 else 7, 1, tzinfo=VN_TZ)

    @property
    def end(self) -> datetime:
        """The first instant after the period."""
        if self.half == 1:
            return datetime(self.year, 7, 1, tzinfo=VN_TZ)
        return datetime(self.year + 1, 1, 1, tzinfo=VN_TZ)

    def previous(self) -> Period:
        return Period(self.year, 1) if self.half == 2 else Period(self.year - 1, 2)

    @property
    def last_day(self) -> date:
        return (self.end - timedelta(days=1)).date()


def due_at(period: Period, due_dates: dict[str, str]) -> datetime:
    """The instant (00:00 Vietnam time) the report of ``period`` is due."""
    text = due_dates.get(f"H{period.half}", "")
    try:
        month, day = (int(x) for x in text.split("-"))
        year = period.year if period.half == 1 else period.year + 1
        due = datetime(year, month, day, tzinfo=VN_TZ)
    except ValueError:
        raise ConfigError(
            f"BUS389_REPORT__DUE_DATES: H{period.half} must be MM-DD (e.g. 07-15), not {text!r}"
        ) from None
    if due < period.end:
        raise ConfigError(f"BUS389_REPORT__DUE_DATES: H{period.half} {text} falls before the period ends")
    return due
