"""The root ``bus389`` group: builds the settings once and registers every command group."""

from __future__ import annotations

from pathlib import Path

import click

from bus389 import __version__
from bus389.cli._context import BusGroup
from bus389.config_file import load_settings

__all__ = ["cli"]


@click.group(cls=BusGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bus389")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    envvar="BUS389_CONFIG",
    default=None,
    help="A file of BUS389_* settings (NAME=VALUE lines, see bus389/config_file.py), e.g. an agency's "
    "credentials from `bus389 security issue`; its values override the environment (env BUS389_CONFIG).",
)
@click.pass_context
def cli(ctx: click.Context, config_file: Path | None) -> None:
    """bus389 — the information-sharing bus of BCĐ 389 (anti-smuggling, trade fraud, counterfeits).

    \b
    Example:
      bus389 kafka up && bus389 topics apply
      bus389 publish suspect_seller --as police --file examples/suspect_seller.jsonl
      bus389 --config tax.env publish tax_discrepancy --as tax --file alerts.jsonl
    """
    ctx.obj = load_settings(config_file)


def _register() -> None:
    # Imported here so that each group's module stays independent of the root.
    from bus389.cli import registry

    for command in registry.commands():
        cli.add_command(command)


_register()
