"""The ICT store's named counters and values (table ``kv``): serials, change numbers, the written hash."""

from __future__ import annotations

from bus389.consumers.ict.store.connection import StoreConnection

__all__ = ["CounterQueries"]


class CounterQueries(StoreConnection):
    """Read and set the ``kv`` values the blocklist writer and the outbox drain keep."""

    def counter(self, name: str) -> int:
        rows = self._read("SELECT value FROM kv WHERE name = ?", (name,))
        return int(rows[0]["value"]) if rows else 0

    def text(self, name: str) -> str:
        rows = self._read("SELECT value FROM kv WHERE name = ?", (name,))
        return str(rows[0]["value"]) if rows else ""

    def set_value(self, name: str, value: int | str) -> None:
        self._write(
            "INSERT INTO kv (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, str(value)),
        )

    def bump_blocklist_seq(self) -> int:
        """Note that the blocklist changed; returns the new change number (results wait for it)."""
        seq = self.counter("blocklist_seq") + 1
        self.set_value("blocklist_seq", seq)
        return seq
