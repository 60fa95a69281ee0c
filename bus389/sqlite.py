"""Opening the services' SQLite files: one connection per process or thread, in WAL mode.

WAL lets the operator's commands read a store while its service writes it. SQLite's busy timeout
does not cover WAL's exclusive moments (a connection recovering the WAL index as it opens the file,
or the last one checkpointing as it closes): a test polling a store its service was using got
"database is locked" at once, in CI. So the mode is read first and switched only on a new file, and
a "locked" answer at this step is waited out within the timeout.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Literal

__all__ = ["connect_wal"]


IsolationLevel = Literal["DEFERRED", "EXCLUSIVE", "IMMEDIATE"] | None


def connect_wal(
    path: str, *, timeout_s: float, isolation_level: IsolationLevel = "DEFERRED"
) -> sqlite3.Connection:
    """A connection to the SQLite file ``path`` (or ``:memory:``) with WAL on and a busy timeout.

    ``isolation_level`` as :func:`sqlite3.connect`'s (None: autocommit, the caller's own BEGINs).
    Raises ``sqlite3.Error`` (the caller names its store in the message).
    """
    connection = sqlite3.connect(path, timeout=timeout_s, isolation_level=isolation_level)
    try:
        if path != ":memory:":
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    mode = str(connection.execute("PRAGMA journal_mode").fetchone()[0]).lower()
                    if mode != "wal":
                        connection.execute("PRAGMA journal_mode = WAL")
                    break
                except sqlite3.OperationalError as exc:
                    # The busy timeout does not cover a file another connection is recovering or
                    # checkpointing as it closes (WAL's exclusive moments): wait for those here.
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
    except BaseException:
        connection.close()
        raise
    return connection
