"""Store URLs (``BUS389_STORE__*_URL``): the one parser of which database a service keeps its state in.

Accepted, and nothing else:

- ``sqlite:///relative/path.sqlite3``, ``sqlite:////absolute/path.sqlite3`` or ``sqlite:///:memory:``
  (three slashes, then the path: SQLAlchemy's reading, so a fourth slash starts an absolute path);
- ``postgresql://…``, ``postgres://…`` or ``postgresql+psycopg://…``: a libpq connection URL (the
  ``+psycopg`` driver suffix is dropped).

A URL with another scheme, ``sqlite://`` with fewer than three slashes, or no path is a
:class:`~bus389.errors.ConfigError` naming the setting and saying what is expected. A service that
needs one kind (the ICT store is SQLite only) says so with ``kinds``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bus389.errors import ConfigError

__all__ = ["StoreUrl", "parse_store_url", "sqlite_path"]

Kind = Literal["sqlite", "postgresql"]

_SQLITE = "sqlite:///"
_POSTGRES = ("postgresql://", "postgres://", "postgresql+psycopg://")
_HEADS = {"sqlite": "sqlite:///", "postgresql": "postgresql://"}
_EXPECTED = {
    "sqlite": "sqlite:///path/to/file.sqlite3",
    "postgresql": "postgresql://user@host/db",
}


@dataclass(frozen=True)
class StoreUrl:
    """A parsed store URL: ``path`` for SQLite (``:memory:`` included), ``conninfo`` for PostgreSQL."""

    kind: Kind
    path: str = ""
    conninfo: str = ""

    @property
    def file(self) -> Path | None:
        """The SQLite file, or None for an in-memory or a PostgreSQL store."""
        if self.kind != "sqlite" or self.path == ":memory:":
            return None
        return Path(self.path)


def parse_store_url(
    url: str, *, setting: str, kinds: tuple[Kind, ...] = ("sqlite", "postgresql")
) -> StoreUrl:
    """Parse ``url`` (the value of ``setting``) into a :class:`StoreUrl` of one of ``kinds``."""
    expected = " or ".join(_EXPECTED[k] for k in kinds)
    if url.startswith(_SQLITE) and "sqlite" in kinds:
        path = url[len(_SQLITE) :]
        if not path:
            raise ConfigError(f"{setting}: the SQLite URL {url!r} names no file (expected {expected})")
        return StoreUrl("sqlite", path=path)
    if url.startswith(_POSTGRES) and "postgresql" in kinds:
        return StoreUrl("postgresql", conninfo=url.replace("postgresql+psycopg://", "postgresql://", 1))
    scheme = url.split(":", 1)[0] if ":" in url else ""
    heads = " or ".join(_HEADS[k] for k in kinds)
    raise ConfigError(
        f"{setting}: the store needs a {heads} URL, not {scheme!r}: {_shown(url)} (expected {expected})"
    )


def sqlite_path(url: str, *, setting: str = "BUS389_STORE__ICT_URL") -> str:
    """The file of a SQLite store URL (``:memory:`` included); any other URL is a ConfigError."""
    return parse_store_url(url, setting=setting, kinds=("sqlite",)).path


def _shown(url: str) -> str:
    """The URL as an error shows it: a PostgreSQL password never appears in a message or a log."""
    if "@" in url and "://" in url:
        head, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        user = credentials.split(":", 1)[0]
        return repr(f"{head}://{user}:***@{host}" if ":" in credentials else url)
    return repr(url)
