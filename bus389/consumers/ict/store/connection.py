"""The ICT store's SQLite connection: one ``BEGIN IMMEDIATE`` transaction per write, and migrations.

SQLite in WAL mode with ``synchronous=FULL``: a committed transaction survives a crash, which is what
lets the service commit its Kafka offsets right after it. The service and the operator's commands
open the same file at the same time; every write is one ``BEGIN IMMEDIATE`` transaction
(:meth:`StoreConnection.transaction`), so they serialise on SQLite's write lock and wait for each
other (``busy_timeout``) instead of failing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Self

from bus389.consumers.ict.store.migrations import MIGRATIONS, statements
from bus389.errors import StoreError

__all__ = ["StoreConnection", "like_prefix"]


class StoreConnection:
    """One SQLite connection of the ICT store; close it, or use it as a context manager.

    Reads may happen anywhere; writes only inside :meth:`transaction`. The queries of each concept
    are mixins on this class, combined in :class:`bus389.consumers.ict.store.IctStore`.
    """

    def __init__(self, connection: sqlite3.Connection, path: str) -> None:
        self._db = connection
        self.path = path
        self._in_transaction = False

    # --- lifecycle ------------------------------------------------------------------------------------

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        current = self.schema_version
        if current > len(MIGRATIONS):
            raise StoreError(
                f"{self.path} has schema version {current}, newer than this bus389 knows "
                f"({len(MIGRATIONS)}): upgrade bus389"
            )
        if current == len(MIGRATIONS):
            return
        with self.transaction():
            # Re-read under the write lock: another process may have migrated meanwhile.
            current = self.schema_version
            for number, script in enumerate(MIGRATIONS[current:], start=current + 1):
                for statement in statements(script):
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {number}")

    @contextmanager
    def transaction(self) -> Iterator[Self]:
        """One ``BEGIN IMMEDIATE`` transaction: committed when the block ends, rolled back on error."""
        if self._in_transaction:
            raise RuntimeError("nested ICT store transaction")
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot begin a transaction: {exc}") from exc
        self._in_transaction = True
        try:
            yield self
        except BaseException:
            self._in_transaction = False
            self._db.execute("ROLLBACK")
            raise
        self._in_transaction = False
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._db.execute("ROLLBACK")
            raise StoreError(f"{self.path}: commit failed: {exc}") from exc

    def _write(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        if not self._in_transaction:
            raise RuntimeError("ICT store write outside a transaction")
        try:
            return self._db.execute(sql, params)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from exc

    def _insert(self, statement: tuple[str, Sequence[Any]]) -> bool:
        """Run a :meth:`Table.insert <bus389.consumers.ict.store._columns.Table.insert>`; False if ignored."""
        sql, params = statement
        return self._write(sql, params).rowcount == 1

    def _read(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        try:
            return self._db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from exc


def like_prefix(id_prefix: str) -> str:
    """A ``LIKE ... ESCAPE '\\'`` pattern for ids starting with what an operator typed (wildcards literal)."""
    escaped = id_prefix.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"
