"""``bus389.sqlite.connect_wal``: a store another process is still creating is waited for, not refused."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from bus389.sqlite import connect_wal


def _creating(path: Path) -> sqlite3.Connection:
    """A connection in the middle of creating the store: rollback journal, write lock held."""
    creator = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    creator.execute("BEGIN IMMEDIATE")
    creator.execute("CREATE TABLE requests (id TEXT PRIMARY KEY)")
    return creator


def test_switching_to_wal_while_another_connection_writes_is_refused_by_sqlite(tmp_path: Path) -> None:
    # Why connect_wal exists: the busy timeout does not cover the switch (seen in CI).
    creator = _creating(tmp_path / "ict.sqlite3")
    try:
        plain = sqlite3.connect(tmp_path / "ict.sqlite3", timeout=5, isolation_level=None)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            plain.execute("PRAGMA journal_mode = WAL")
        plain.close()
    finally:
        creator.execute("COMMIT")
        creator.close()


def test_connect_wal_waits_for_the_creator_and_switches_the_file_to_wal(tmp_path: Path) -> None:
    path = tmp_path / "ict.sqlite3"
    creator = _creating(path)
    done = threading.Timer(0.3, lambda: creator.execute("COMMIT"))
    done.start()
    try:
        connection = connect_wal(str(path), timeout_s=10)
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert connection.execute("SELECT count(*) FROM requests").fetchone()[0] == 0
        connection.close()
    finally:
        done.join()
        creator.close()


def test_connect_wal_gives_up_after_its_timeout(tmp_path: Path) -> None:
    creator = _creating(tmp_path / "ict.sqlite3")
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            connect_wal(str(tmp_path / "ict.sqlite3"), timeout_s=0.3)
    finally:
        creator.execute("COMMIT")
        creator.close()


def test_memory_databases_need_no_wal() -> None:
    connection = connect_wal(":memory:", timeout_s=1)
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "memory"
    connection.close()
