"""What every command receives: the settings built once, and the one place errors become exit codes."""

from __future__ import annotations

from collections.abc import Callable
from functools import update_wrapper
from typing import Any, ParamSpec, TypeVar

import click

from bus389.errors import BusError
from bus389.logs import mask_secrets
from bus389.safe_text import for_terminal
from bus389.settings import Settings

__all__ = ["BusGroup", "pass_settings", "printable"]

P = ParamSpec("P")
R = TypeVar("R")


class BusGroup(click.Group):
    """A click group that turns a :class:`BusError` into its message and exit code, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BusError as exc:
            # An error may quote input (a name, a URL): secrets masked, control characters made visible.
            click.echo(f"error: {for_terminal(mask_secrets(str(exc)), keep_newlines=True)}", err=True)
            ctx.exit(exc.exit_code)


def pass_settings(f: Callable[..., R]) -> Callable[..., R]:
    """Give the command the :class:`Settings` built once by the root group."""

    @click.pass_context
    def wrapper(ctx: click.Context, /, *args: Any, **kwargs: Any) -> R:
        settings = ctx.find_object(Settings)
        if settings is None:
            settings = Settings()
            ctx.obj = settings
        return ctx.invoke(f, settings, *args, **kwargs)

    return update_wrapper(wrapper, f)


def printable(text: str) -> str:
    """``text`` with every non-printable character (ESC, other controls, line breaks) escaped: what a
    command prints of data others chose (a file's content, a Kafka client id) is data, never a
    terminal instruction."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
