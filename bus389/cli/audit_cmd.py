"""``bus389 audit verify``: check the audit trail's hash chains and the router's signed heads."""

from __future__ import annotations

from pathlib import Path

import click

from bus389.cli._context import pass_settings
from bus389.settings import Settings

__all__ = ["audit"]


@click.group("audit")
def audit() -> None:
    """The audit trail (<prefix>.audit): who was told what, under which rule, linked and signed."""


@audit.command("verify")
@click.option(
    "--keys",
    "keys_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A key registry exported by `bus389 security keys export` (default: signing.registry_file, "
    "else the <prefix>.keys topic): the router's keys that signed the chain heads.",
)
@pass_settings
def verify(settings: Settings, keys_file: Path | None) -> None:
    """Read the whole audit topic and check every chain link and signed head.

    Each audit record carries the hash of the previous record of its chain (the events routed from
    one outbox partition); the router signs chain heads with its key. Prints the first record of each
    chain that was altered, inserted, reordered or removed (including records deleted from the head
    of a partition with DeleteRecords), and exits 1; or prints that the chains hold.

    \b
    Example:
      bus389 audit verify
      bus389 audit verify --keys keys.json
    """
    from bus389.consumers.router.audit_chain import verify_audit_topic
    from bus389.signing.keys import KeyRegistry

    report = verify_audit_topic(settings, KeyRegistry.load(keys_file) if keys_file is not None else None)
    for finding in report.findings:
        click.echo(finding.describe())
    summary = (
        f"{report.records} audit record(s), {report.chains} chain(s), {report.signed_heads} signed head(s)"
        + (f", {report.unchained} written before chaining" if report.unchained else "")
    )
    if report.holds:
        click.echo(f"the audit chain holds: {summary}")
        return
    click.echo(f"the audit chain is broken ({len(report.findings)} problem(s)): {summary}")
    raise SystemExit(1)
