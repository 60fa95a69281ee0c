"""``bus389 report``: the standing office's six-monthly report (plan III.3) from its store."""

from __future__ import annotations

from pathlib import Path

import click

from bus389.atomic_files import write_file
from bus389.cli._context import pass_settings
from bus389.errors import InputError
from bus389.safe_text import for_terminal
from bus389.settings import Settings

__all__ = ["report", "write_atomically"]


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the whole new one, never half.

    A symbolic link planted at ``path`` is replaced, never written through; the new file keeps the
    user's umask; a bad path is a one-line :class:`InputError`.
    """
    write_file(path, data, make_parents=True)


def _period(_ctx: click.Context, _param: click.Parameter, value: str) -> object:
    from bus389.consumers.standing_office.report import Period

    try:
        return Period.parse(value)
    except InputError as exc:
        raise click.BadParameter(str(exc)) from exc


@click.command("report")
@click.option(
    "--period",
    required=True,
    callback=_period,
    metavar="YYYY-H1|YYYY-H2",
    help="The half year: H1 = January–June, H2 = July–December (Vietnam time).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["md", "csv", "html"]),
    default="md",
    show_default=True,
    help="Markdown, CSV (UTF-8 with BOM, opens in Excel) or a standalone HTML page.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write the report to this file (atomically) instead of standard output.",
)
@pass_settings
def report(settings: Settings, period: object, fmt: str, out: Path | None) -> None:
    """Print the standing office's six-monthly report for a period, with Vietnamese labels.

    Per member agency: events by type; domain-block requests with their outcomes and the time from
    request to result; undeclared-seller alerts and the tax amounts; cases referred and their
    outcomes (fines, goods seized); members that filed no six-monthly periodic_report; requests
    unanswered past their deadline (BUS389_REPORT__ANSWER_DEADLINE_DAYS, as of the report time or
    the end of the period, whichever is earlier); and the correlation of sellers, tax codes, domains,
    phone numbers and accounts reported by two or more members. Reads the store that
    `bus389 serve standing-office` fills (BUS389_STORE__STANDING_OFFICE_URL).

    \b
    Example:
      bus389 report --period 2021-H1
      bus389 report --period 2021-H2 --format html --out bao-cao-2021-H2.html
      bus389 report --period 2021-H1 --format csv --out bao-cao.csv
    """
    from bus389.consumers.standing_office.render import render
    from bus389.consumers.standing_office.report import Period, build_report
    from bus389.consumers.standing_office.store import StandingOfficeStore

    if not isinstance(period, Period):  # the option's callback made it one
        raise click.BadParameter(str(period), param_hint="--period")
    with StandingOfficeStore.open(
        settings.store.standing_office_url, create=False, ignore_domains=settings.ict.never_block
    ) as store:
        model = build_report(store, period, settings=settings.report)
    text = render(model, fmt)
    if out is None:
        # Names and reasons come from other agencies: on a terminal they print, never act.
        click.echo(for_terminal(text, keep_newlines=True), nl=False)
        return
    write_atomically(out, text.encode("utf-8"))
    click.echo(f"wrote {out} ({fmt}, {period.label})", err=True)
