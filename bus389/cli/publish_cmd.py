"""``bus389 publish``: validate an input file and publish its events to the agency's own outbox."""

from __future__ import annotations

import sys

import click

from bus389.agencies import Agency
from bus389.cli._context import pass_settings
from bus389.safe_text import for_terminal
from bus389.settings import Settings

__all__ = ["publish"]


@click.command("publish")
@click.argument("event_type", metavar="EVENT_TYPE")
@click.option(
    "--as",
    "agency",
    required=True,
    metavar="AGENCY",
    help="The publishing agency (police, tax, ict, ...): its outbox is the only topic written.",
)
@click.option(
    "--file",
    "file",
    required=True,
    metavar="FILE",
    help="JSON (an object or a list), JSON Lines or CSV; '-' reads standard input "
    "(format from its first bytes, or --format).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "jsonl", "csv"], case_sensitive=False),
    default=None,
    help="The file's format (default: from the extension .json, .jsonl/.ndjson, .csv; for standard "
    "input from its first bytes: [ JSON, { JSON Lines or a JSON object, else CSV).",
)
@click.option("--dry-run", is_flag=True, help="Validate every record and report; send nothing.")
@click.option(
    "--allow-unrouted",
    is_flag=True,
    help="Publish even events the routing policy sends nowhere (the DLQ takes them; your inbox says so).",
)
@pass_settings
def publish(
    settings: Settings,
    event_type: str,
    agency: str,
    file: str,
    fmt: str | None,
    dry_run: bool,
    allow_unrouted: bool,
) -> None:
    """Publish the events of FILE, all or nothing, to the outbox of AGENCY.

    Every record is validated first; if any is invalid, each problem is printed as
    FILE:LINE: field: message, nothing is published and the exit status is 1. Otherwise the
    events are sent in one Kafka transaction (or one per settings.kafka.transaction_chunk_events
    events), and the exit status is 0 only after the transaction was committed. Before sending, each
    event is checked against the routing policy the router reads: one AGENCY may not publish, or one
    that would reach no one (a RED event naming no recipient whose duties cover it), refuses the file
    with its line, the reason and the fix, unless --allow-unrouted.

    Each record is one event's own fields plus, optionally, "meta" with occurred_at, case_ref,
    in_reply_to, sensitivity (TLP; RED unless given), urgency and recipients (the agencies a RED or
    AMBER_STRICT event is addressed to); the bus fills event_id,
    event_type, source (= AGENCY) and published_at.

    \b
    CSV: a header row; nested fields as dotted headers (seller.name); arrays as ';'-separated
    cells (violation_kinds, domains; accounts.platform + accounts.account item by item); an empty
    cell is "not given"; UTF-8 with or without the BOM Excel writes.

    \b
    Example:
      bus389 publish suspect_seller --as police --file examples/suspect_seller.jsonl
      bus389 publish tax_discrepancy --as tax --file alerts.csv --dry-run
      cat examples/complaint.jsonl | bus389 publish complaint --as industry_trade --file - --dry-run
    """
    # Imported here: the models and Kafka clients load only when a command needs them.
    from bus389.producers.publisher import publish_file
    from bus389.producers.readers import read_records, source_name
    from bus389.schemas.catalog import load_catalog

    sender = Agency.parse(agency)
    catalog = load_catalog()
    if event_type not in catalog.event_types():
        from bus389.errors import InputError

        valid = ", ".join(catalog.event_types())
        raise InputError(f"unknown event type {event_type!r}: use one of {valid}")
    records = read_records(
        file,
        fmt=fmt,
        stdin=sys.stdin,
        schema=catalog.latest(event_type).schema_json,
        max_bytes=settings.input.max_bytes,
        max_rows=settings.input.max_rows,
    )
    from bus389.routing.policy import load_policy

    policy = load_policy(settings.router.policy_path)
    # The rights are checked whatever the flag: the router would refuse the event anyway.
    report = publish_file(
        settings,
        event_type,
        sender,
        records,
        dry_run=dry_run,
        source=source_name(file),
        policy=policy,
        allow_unrouted=allow_unrouted,
    )
    click.echo(for_terminal(report.summary(), keep_newlines=True))
