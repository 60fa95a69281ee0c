"""The stop flag of a service: set by SIGTERM or SIGINT, read by its loop between batches."""

from __future__ import annotations

import logging
import signal
from types import FrameType

__all__ = ["StopFlag"]

log = logging.getLogger(__name__)


class StopFlag:
    """Set by SIGTERM or SIGINT (once installed): the loop finishes the batch in hand, commits and returns."""

    def __init__(self) -> None:
        self._set = False

    @property
    def is_set(self) -> bool:
        return self._set

    def set(self, *_: object) -> None:
        self._set = True

    def install(self) -> StopFlag:
        def _handler(signum: int, _frame: FrameType | None) -> None:
            log.info("signal %s received: finishing the batch in hand", signal.Signals(signum).name)
            self._set = True

        signal.signal(signal.SIGTERM, _handler)
        signal.signal(signal.SIGINT, _handler)
        return self
