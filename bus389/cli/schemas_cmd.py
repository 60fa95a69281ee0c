"""The ``bus389 schemas`` commands: check the catalog (ids, names, FULL_TRANSITIVE) and list it."""

from __future__ import annotations

from pathlib import Path

import click

from bus389.cli._context import pass_settings, printable
from bus389.errors import SchemaCatalogError
from bus389.schemas.catalog import check_catalog, load_catalog
from bus389.settings import Settings

__all__ = ["schemas"]

_DIR_OPTION = click.option(
    "--dir",
    "directory",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="A schemas folder to use instead of the shipped one (ids.yaml and <event_type>/vN.avsc).",
)


@click.group()
def schemas() -> None:
    """The Avro contract: one .avsc per event type and version, with pinned schema ids.

    \b
    Example:
      bus389 schemas check
      bus389 schemas list
    """


@schemas.command("check")
@_DIR_OPTION
@pass_settings
def check(settings: Settings, directory: Path | None) -> None:
    """Check ids, record names and FULL_TRANSITIVE compatibility; exit 0 if sound, 2 otherwise.

    Every version of a type must read every earlier one and be read by it (Schema Registry's
    FULL_TRANSITIVE), ids must be unique and match the files. Avro's own rules decide (Apache Avro's
    checker, defaults validated as its Java parser does) and the project's stricter ones follow (see
    ids.yaml); each problem ends with the rule that refused it, [Avro rule …] or [bus389 rule …].

    \b
    Example:
      bus389 schemas check
      bus389 schemas check --dir /tmp/schemas-with-v2
    """
    problems = check_catalog(directory)
    if problems:
        for problem in problems:
            # Names and values come from the schema files checked: shown as data, never as terminal codes.
            click.echo(f"problem: {_printable(problem)}")
        raise SchemaCatalogError(f"{len(problems)} problem(s) in the schema catalog")
    catalog = load_catalog(directory)
    types = len(catalog.event_types())
    click.echo(f"ok: {len(catalog)} schemas ({types} event types and the audit record), FULL_TRANSITIVE")


_printable = printable


@schemas.command("list")
@_DIR_OPTION
@pass_settings
def list_(settings: Settings, directory: Path | None) -> None:
    """List every schema: id, event type, version, CloudEvents type and file.

    \b
    Example:
      bus389 schemas list
    """
    catalog = load_catalog(directory)
    for entry in catalog:
        path = entry.path.relative_to(catalog.directory)
        click.echo(f"{entry.schema_id:>5}  {entry.ref:<28} {entry.ce_type:<40} {path}")
