"""The ICT store as its users see it: :class:`IctStore`, opened by :func:`open_store` from its URL.

:class:`IctStore` is every concept's queries on one connection. SQLite by default
(``sqlite:///relative/path`` or ``sqlite:////abs/path``); see :mod:`.connection` for the transaction
discipline and :mod:`.migrations` for the schema.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bus389.consumers.ict.store.counters import CounterQueries
from bus389.consumers.ict.store.decisions import DecisionQueries
from bus389.consumers.ict.store.leads import LeadQueries
from bus389.consumers.ict.store.outbox import OutboxQueries
from bus389.consumers.ict.store.rejected import RejectedEventQueries
from bus389.consumers.ict.store.replies import ReplyQueries
from bus389.consumers.ict.store.requests import RequestQueries
from bus389.consumers.ict.store.targets import TargetQueries
from bus389.errors import StoreError
from bus389.sqlite import connect_wal
from bus389.store_url import sqlite_path

__all__ = ["IctStore", "open_store", "sqlite_path"]

_BUSY_TIMEOUT_MS = 30_000


class IctStore(
    CounterQueries,
    RequestQueries,
    TargetQueries,
    DecisionQueries,
    OutboxQueries,
    LeadQueries,
    ReplyQueries,
    RejectedEventQueries,
):
    """The ICT store on one SQLite connection; close it, or use it as a context manager.

    Reads may happen anywhere; writes only inside :meth:`transaction`.
    """


def open_store(url: str) -> IctStore:
    """Open (creating the file and its folder if needed) and migrate the ICT store at ``url``."""
    path = sqlite_path(url)
    if path != ":memory:":
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the folder of the ICT store {path}: {exc}") from exc
    try:
        connection = connect_wal(path, timeout_s=_BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA synchronous = FULL")
        connection.execute("PRAGMA foreign_keys = ON")
        connection.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the ICT store {path}: {exc}") from exc
    store = IctStore(connection, path)
    try:
        store._migrate()
    except BaseException:
        store.close()
        raise
    return store
