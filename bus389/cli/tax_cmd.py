"""``bus389 tax``: the tax office's commands (publishing its undeclared-seller spreadsheet as alerts)."""

from __future__ import annotations

from pathlib import Path

import click

from bus389.cli._context import pass_settings
from bus389.safe_text import for_terminal
from bus389.settings import Settings

__all__ = ["tax"]


@click.group("tax")
def tax() -> None:
    """The tax office (Cục Thuế tỉnh, plan II.4): undeclared online sellers.

    \b
    Example:
      bus389 tax publish-alerts examples/tax_undeclared_sellers.xlsx
    """


@tax.command("publish-alerts")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--skip-invalid",
    is_flag=True,
    help="Publish the valid rows and write the rejected ones (with a reason column) to "
    "<FILE stem>.rejected.csv beside FILE.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Check the file and report; send, read and write nothing (but the alert-id key on first use).",
)
@pass_settings
def publish_alerts(settings: Settings, file: Path, skip_invalid: bool, dry_run: bool) -> None:
    """Publish the sellers of FILE (.xlsx or .csv) as tax_discrepancy alerts from the tax outbox.

    FILE has one row per seller, platform and tax period, with Vietnamese headers: "Mã số thuế",
    "Tên người bán", "Nền tảng", "Tài khoản/URL", "Doanh thu ước tính", "Doanh thu đã kê khai",
    "Kỳ tính thuế" (common variants accepted), optionally "Số CCCD", "Số điện thoại", "Địa chỉ",
    "Ghi chú". The undeclared revenue is estimated minus declared; the tax owed on it is VAT 1 % +
    PIT 0.5 % (Circular 40/2021/TT-BTC, goods). Rows with nothing undeclared are skipped.

    Every row is checked first: a bad row is reported as `row N, column "...": problem`, and nothing
    is published until the file is clean (or --skip-invalid). Re-running a file publishes no
    duplicates: each alert's event id comes from the tax code (or account), platform and period,
    keyed with the tax office's alert-id key (BUS389_TAX__ALERT_ID_KEY_FILE, by default created 0600
    in ~/.local/state/bus389 at the first run: back it up), and the ids already on the tax outbox are
    left out. Exit status 1 when rows were rejected without --skip-invalid.

    \b
    Example:
      bus389 tax publish-alerts examples/tax_undeclared_sellers.xlsx --dry-run
      bus389 tax publish-alerts examples/tax_undeclared_sellers.xlsx
      bus389 tax publish-alerts ban_ke_6T_2021.csv --skip-invalid
    """
    from bus389.producers.tax.publish import publish_alerts as run

    report = run(settings, file, skip_invalid=skip_invalid, dry_run=dry_run)
    # Problems quote the clerk's cells: control characters in them are shown, not executed.
    for line in report.problem_lines():
        click.echo(for_terminal(line), err=True)
    for skipped in report.skipped:
        click.echo(for_terminal(f"skipped {skipped.reason}"))
    for line in report.summary_lines():
        click.echo(line)
    if report.blocked:
        raise click.exceptions.Exit(1)
