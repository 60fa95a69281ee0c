"""The root ``bus389`` group: builds the settings once and registers every command group."""

from __future__ import annotations

import click
from pydantic import ValidationError

from bus389 import __version__
from bus389.cli._context import BusGroup
from bus389.settings import Settings

__all__ = ["cli"]


@click.group(cls=BusGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bus389")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """bus389 — the information-sharing bus of BCĐ 389 (anti-smuggling, trade fraud, counterfeits).

    \b
    Example:
      bus389 kafka up && bus389 topics apply
      bus389 publish suspect_seller --as police --file examples/suspect_seller.jsonl
    """
    try:
        ctx.obj = Settings()
    except ValidationError as exc:
        raise click.ClickException(f"invalid BUS389_* setting: {exc}") from exc


def _register() -> None:
    # Imported here so that each group's module stays independent of the root.
    from bus389.cli import registry

    for command in registry.commands():
        cli.add_command(command)


_register()
