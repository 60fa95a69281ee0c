"""``bus389 serve``: the long-running agency services, one subcommand each (defined beside each service)."""

from __future__ import annotations

import click

from bus389.cli.ict_cmd import serve_ict
from bus389.cli.standing_office_cmd import standing_office
from bus389.cli.web_cmd import serve_web

__all__ = ["serve"]


@click.group("serve")
def serve() -> None:
    """Run an agency's inbox service until SIGTERM (metrics on its own port).

    \b
    Example:
      bus389 serve ict
      bus389 serve standing-office
      bus389 serve web
    """


serve.add_command(serve_ict)
serve.add_command(standing_office)
serve.add_command(serve_web)
