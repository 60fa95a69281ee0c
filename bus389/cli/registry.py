"""Which command groups the root ``bus389`` command offers (one line per group module)."""

from __future__ import annotations

import importlib

import click

__all__ = ["commands"]

_COMMANDS: list[tuple[str, str]] = [
    # (module, attribute) — each module defines one click command or group.
]


def commands() -> list[click.Command]:
    found: list[click.Command] = []
    for module_name, attribute in _COMMANDS:
        module = importlib.import_module(module_name)
        found.append(getattr(module, attribute))
    return found
