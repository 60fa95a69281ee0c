"""The refusals of the web console: each a :class:`~bus389.errors.BusError` with its HTTP status."""

from __future__ import annotations

from bus389.errors import BusError

__all__ = ["Refused"]


class Refused(BusError):
    """A request the console refuses: ``status`` is its HTTP status, ``reason`` the metric label.

    The message is shown to the user as it is (Vietnamese, one line) and changes nothing.
    """

    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        status: int = 403,
        reason: str = "rights",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.headers = headers or {}
