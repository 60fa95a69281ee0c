"""The history file of a fault-injection run: one JSON object a line, written as things happen.

Like a Jepsen history, it records what the clients were told, not what the system did: the checker
compares it with what it finds on the bus afterwards. Line kinds:

- ``run``: the first line, what a later ``bus389 chaos check`` needs to find the bus again (bootstrap,
  topic prefix, policy file, stores, blocklist folder, seed);
- ``event``: one publish attempt and its outcome: ``ok`` (the transaction was committed: acknowledged),
  ``fail`` (definitely not committed: aborted, or never sent) or ``info`` (the commit was not confirmed:
  the event may or may not be on the bus), with the event as JSON;
- ``fault``: one injected fault, when it began and ended, and what it hit;
- ``note``: anything else worth reading next to the timeline.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TextIO

from bus389.errors import InputError

__all__ = [
    "ACKNOWLEDGED",
    "FAILED",
    "INDETERMINATE",
    "EventEntry",
    "History",
    "HistoryWriter",
    "RunInfo",
    "read_history",
]

ACKNOWLEDGED = "ok"
FAILED = "fail"
INDETERMINATE = "info"
Status = Literal["ok", "fail", "info"]


@dataclass(frozen=True)
class RunInfo:
    """The ``run`` line: where the bus of a run is, so that it can be checked again later."""

    bootstrap: str
    topic_prefix: str
    policy_path: str
    seed: int
    standing_office_url: str = ""
    ict_url: str = ""
    ict_output_dir: str = ""
    rpz_zone: str = ""
    started_at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"kind": "run", **self.__dict__}


@dataclass(frozen=True)
class EventEntry:
    """One publish attempt: the event (JSON form), who published it, and what the producer was told."""

    event_id: str
    event_type: str
    source: str
    status: Status
    record: dict[str, Any]
    invoked_at: float = 0.0
    completed_at: float = 0.0
    error: str = ""

    @property
    def acknowledged(self) -> bool:
        return self.status == ACKNOWLEDGED

    def to_json(self) -> dict[str, Any]:
        return {"kind": "event", **self.__dict__}


@dataclass
class History:
    """A history read back: the run line, every event attempt, the faults and notes."""

    run: RunInfo | None = None
    events: list[EventEntry] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)

    def by_status(self, status: str) -> list[EventEntry]:
        return [e for e in self.events if e.status == status]

    @property
    def acknowledged(self) -> list[EventEntry]:
        return self.by_status(ACKNOWLEDGED)


class HistoryWriter:
    """Appends lines to a history file from several threads (workload, fault injector) safely.

    Each line is flushed as written, so that a run killed half-way still leaves a readable history.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._file: TextIO | None = None

    def __enter__(self) -> HistoryWriter:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def write(self, line: dict[str, Any]) -> None:
        text = json.dumps(line, ensure_ascii=False, sort_keys=True, default=str)
        with self._lock:
            if self._file is None:
                raise RuntimeError("HistoryWriter.write before open()")
            self._file.write(text + "\n")
            self._file.flush()

    def run(self, info: RunInfo) -> None:
        self.write(info.to_json())

    def event(self, entry: EventEntry) -> None:
        self.write(entry.to_json())

    def fault(self, **details: Any) -> None:
        self.write({"at": time.time(), **details, "kind": "fault"})

    def note(self, text: str, **details: Any) -> None:
        self.write({"at": time.time(), **details, "kind": "note", "text": text})


def _lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read the history {path}: {exc.strerror or exc}") from exc
    with handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                line = json.loads(text)
            except json.JSONDecodeError as exc:
                if text.endswith("\n"):
                    raise InputError(f"{path}:{number}: not JSON: {exc}") from exc
                return  # the last line of a run that was killed while writing it
            if not isinstance(line, dict):
                raise InputError(f"{path}:{number}: not a JSON object")
            yield number, line


def read_history(path: Path) -> History:
    """Read a history file; an :class:`InputError` names the line that is not a history line."""
    history = History()
    for number, line in _lines(path):
        kind = line.pop("kind", None)
        try:
            if kind == "run":
                history.run = RunInfo(**line)
            elif kind == "event":
                history.events.append(EventEntry(**line))
            elif kind == "fault":
                history.faults.append(line)
            elif kind == "note":
                history.notes.append(line)
            else:
                raise InputError(f"{path}:{number}: unknown line kind {kind!r}")
        except TypeError as exc:
            raise InputError(f"{path}:{number}: not a {kind} line: {exc}") from exc
    return history
