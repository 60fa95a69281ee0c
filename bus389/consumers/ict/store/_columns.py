"""Row types declared once: a frozen dataclass's fields are its table's columns, in one list.

The SQL column list of an ``INSERT``, the row → object mapper and the object → row mapper of each
table are derived from that list (:class:`Table`), so a column is named in the migration and in its
dataclass, nowhere else. A field SQLite has no type for says how it is stored with :func:`stored_as`;
the codecs below reproduce the bytes the store has always written (the files on disk do not change).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "BLOB",
    "HEADERS",
    "JSON_OBJECT",
    "JSON_TUPLE",
    "PLAIN",
    "SORTED_JSON_OBJECT",
    "TEXT_TUPLE",
    "Codec",
    "Table",
    "stored_as",
]

_CODEC = "bus389.ict.store.codec"

R = TypeVar("R", bound="DataclassInstance")


@dataclass(frozen=True)
class Codec:
    """How one field becomes a column value (``dump``) and back (``load``)."""

    dump: Callable[[Any], Any]
    load: Callable[[Any], Any]


def _same(value: Any) -> Any:
    return value


def _dump_headers(headers: Sequence[tuple[str, bytes]]) -> str:
    return json.dumps([(name, value.decode("utf-8")) for name, value in headers])


def _load_headers(text: str) -> list[tuple[str, bytes]]:
    return [(name, value.encode("utf-8")) for name, value in json.loads(text)]


PLAIN = Codec(_same, _same)
"""A column SQLite stores as is (text, integer, NULL)."""
JSON_TUPLE = Codec(lambda v: json.dumps(list(v)), lambda text: tuple(json.loads(text)))
"""A tuple of ASCII symbols (violation kinds) as a JSON array, non-ASCII escaped."""
TEXT_TUPLE = Codec(lambda v: json.dumps(list(v), ensure_ascii=False), lambda text: tuple(json.loads(text)))
"""A tuple of free text (domains, accounts, URLs) as a JSON array, Vietnamese kept as UTF-8."""
JSON_OBJECT = Codec(lambda v: json.dumps(v, ensure_ascii=False), json.loads)
"""A JSON object, keys in their order, text as UTF-8."""
SORTED_JSON_OBJECT = Codec(lambda v: json.dumps(v, ensure_ascii=False, sort_keys=True), json.loads)
"""A JSON object with sorted keys, text as UTF-8."""
BLOB = Codec(_same, bytes)
"""Bytes in a BLOB column (SQLite may hand back a memoryview)."""
HEADERS = Codec(_dump_headers, _load_headers)
"""Kafka headers ``[(name, bytes)]`` as a JSON array of ``[name, UTF-8 text]`` pairs."""


def stored_as(codec: Codec) -> dict[str, Codec]:
    """A field's metadata saying how it is stored: ``x: dict = field(metadata=stored_as(JSON_OBJECT))``.

    (A ``field(...)`` call written out, not wrapped, so that type checkers still see no default.)
    """
    return {_CODEC: codec}


class Table(Generic[R]):
    """One table and the dataclass whose fields are its columns (all of them, or all but generated ones)."""

    def __init__(self, name: str, row_type: type[R]) -> None:
        self.name = name
        self._make: Callable[..., R] = row_type
        self.codecs: dict[str, Codec] = {f.name: f.metadata.get(_CODEC, PLAIN) for f in fields(row_type)}

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns, in the order the dataclass declares its fields."""
        return tuple(self.codecs)

    def column_list(self, alias: str) -> str:
        """``alias.a, alias.b, ...``: the columns of this table in a join."""
        return ", ".join(f"{alias}.{name}" for name in self.codecs)

    def load(self, row: sqlite3.Row) -> R:
        """The object of a row (read by column name, so ``SELECT *`` and joins both work)."""
        return self._make(**{name: codec.load(row[name]) for name, codec in self.codecs.items()})

    def values(self, obj: R) -> dict[str, Any]:
        """Every field of ``obj`` by column name (what :meth:`insert` takes)."""
        return {name: getattr(obj, name) for name in self.codecs}

    def insert(self, values: Mapping[str, Any]) -> tuple[str, tuple[Any, ...]]:
        """``INSERT OR IGNORE`` of these columns, and its parameters encoded for SQLite.

        A column the table leaves to SQLite (an ``AUTOINCREMENT`` id, a value set later) is left out
        of ``values``; a name that is not a field is a programming error (``KeyError``).
        """
        unknown = sorted(set(values) - set(self.codecs))
        if unknown:
            raise KeyError(f"{self.name} has no column {', '.join(unknown)}")
        names = ", ".join(f'"{name}"' for name in values)
        marks = ", ".join("?" for _ in values)
        # Identifiers come from the dataclass, never from input; the values are parameters.
        sql = f"INSERT OR IGNORE INTO {self.name} ({names}) VALUES ({marks})"  # noqa: S608
        return sql, tuple(self.codecs[name].dump(value) for name, value in values.items())
