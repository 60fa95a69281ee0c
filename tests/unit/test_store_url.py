"""The one store-URL parser (:mod:`bus389.store_url`): what each store accepts and what it refuses."""

from __future__ import annotations

import pytest

from bus389.errors import ConfigError
from bus389.store_url import StoreUrl, parse_store_url, sqlite_path

SETTING = "BUS389_STORE__STANDING_OFFICE_URL"


@pytest.mark.parametrize(
    ("url", "parsed"),
    [
        ("sqlite:///so.sqlite3", StoreUrl("sqlite", path="so.sqlite3")),
        ("sqlite:////var/lib/bus389/so.sqlite3", StoreUrl("sqlite", path="/var/lib/bus389/so.sqlite3")),
        ("sqlite:///:memory:", StoreUrl("sqlite", path=":memory:")),
        ("postgresql://bus389@db/so", StoreUrl("postgresql", conninfo="postgresql://bus389@db/so")),
        ("postgres://bus389@db/so", StoreUrl("postgresql", conninfo="postgres://bus389@db/so")),
        ("postgresql+psycopg://bus389@db/so", StoreUrl("postgresql", conninfo="postgresql://bus389@db/so")),
    ],
)
def test_accepted_urls(url: str, parsed: StoreUrl) -> None:
    assert parse_store_url(url, setting=SETTING) == parsed


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("sqlite:///", "names no file"),
        ("sqlite://so.sqlite3", "needs a sqlite:/// or postgresql:// URL, not 'sqlite'"),
        ("so.sqlite3", "needs a sqlite:/// or postgresql:// URL"),
        ("mysql://bus389@db/so", "not 'mysql'"),
        ("", "needs a sqlite:/// or postgresql:// URL"),
    ],
)
def test_refused_urls_name_the_setting_and_what_is_expected(url: str, said: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_store_url(url, setting=SETTING)
    message = str(raised.value)
    assert message.startswith(f"{SETTING}: ")
    assert said in message
    assert "sqlite:///path/to/file.sqlite3" in message
    assert "\n" not in message


def test_a_store_that_takes_sqlite_only_refuses_postgresql() -> None:
    with pytest.raises(ConfigError, match="BUS389_STORE__ICT_URL: the store needs a sqlite:/// URL"):
        sqlite_path("postgresql://bus389@db/ict")
    assert sqlite_path("sqlite:///ict.sqlite3") == "ict.sqlite3"


def test_a_password_never_appears_in_the_error() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_store_url("mysql://bus389:s3cr3t-pw@db/so", setting=SETTING)
    assert "s3cr3t-pw" not in str(raised.value)
    assert "bus389:***@db/so" in str(raised.value)


def test_the_file_of_a_store() -> None:
    assert parse_store_url("sqlite:///a/b.sqlite3", setting=SETTING).file is not None
    assert parse_store_url("sqlite:///:memory:", setting=SETTING).file is None
    assert parse_store_url("postgresql://db/so", setting=SETTING).file is None
