"""``bus389 serve standing-office``: run the standing office's inbox service (a subcommand of ``serve``)."""

from __future__ import annotations

import click

from bus389.cli._context import pass_settings
from bus389.cli._service import running_service, service_options
from bus389.settings import Settings

__all__ = ["standing_office"]


@click.command("standing-office")
@service_options("standing-office")
@pass_settings
def standing_office(settings: Settings, metrics_port: int | None, max_idle_polls: int | None) -> None:
    """Store every event of the market_surveillance inbox for the six-monthly report (plan III.3).

    Reads <prefix>.inbox.market_surveillance (read_committed) into the store at
    BUS389_STORE__STANDING_OFFICE_URL (SQLite file by default; postgresql://... with
    bus389[postgres]). Idempotent by event id: a restart or a replay stores nothing twice. Offsets
    are committed only after the events are stored. A record that cannot be used is recorded in the
    store's rejected table and skipped. SIGTERM finishes the batch in hand, commits and exits 0.

    \b
    Example:
      bus389 serve standing-office
      BUS389_STORE__STANDING_OFFICE_URL=postgresql://bus389@127.0.0.1/bus389 bus389 serve standing-office
      bus389 report --period 2021-H1
    """
    from bus389.consumers.standing_office.service import SERVICE_NAME, run_standing_office

    with running_service(settings, SERVICE_NAME, metrics_port=metrics_port) as stop:
        run_standing_office(settings, stop=stop, max_idle_polls=max_idle_polls)
