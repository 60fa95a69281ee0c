"""``bus389 consume``: print an agency's inbox (or outbox, the DLQ, the audit log) as JSON lines."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import click

from bus389.agencies import Agency
from bus389.cli._context import pass_settings
from bus389.safe_text import json_for_terminal
from bus389.settings import Settings

if TYPE_CHECKING:
    from bus389.consumers.inbox_reader import ConsumedEvent

__all__ = ["consume"]


@click.command("consume")
@click.option(
    "--as",
    "agency",
    required=True,
    metavar="AGENCY",
    help="The reading agency: --topic inbox reads <prefix>.inbox.AGENCY.",
)
@click.option(
    "--topic",
    "kind",
    type=click.Choice(["inbox", "outbox", "dlq", "audit"]),
    default="inbox",
    show_default=True,
    help="Which topic: the agency's inbox or outbox, or the bus's DLQ or audit log.",
)
@click.option("--from-beginning", is_flag=True, help="Start at the oldest event (default: only new ones).")
@click.option("--max", "max_events", type=click.IntRange(min=1), default=None, help="Stop after N events.")
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0.1),
    default=5.0,
    show_default=True,
    help="Stop after this many seconds without a new event.",
)
@click.option(
    "--group",
    default=None,
    metavar="NAME",
    help="Read as consumer group <prefix>.AGENCY.NAME and commit after printing (default: no group, "
    "nothing committed).",
)
@pass_settings
def consume(
    settings: Settings,
    agency: str,
    kind: str,
    from_beginning: bool,
    max_events: int | None,
    timeout_s: float,
    group: str | None,
) -> None:
    """Print each event as one JSON line (UTF-8, Vietnamese as is); read_committed.

    Each line has topic, partition, offset, key, headers, schema_id, event_type, event (meta and
    fields, instants in RFC 3339 UTC), value (the record's bytes, base64) and, for an inbox or
    outbox, signature: the check of the sender's signature ("verified" with the signer and the fields
    removed by redaction, or the reason it fails; "unchecked" when no key registry could be read).
    A record that does not decode is printed as a line with "error" (the reason code) and "detail",
    and reading goes on. A count goes to standard error. `bus389 verify FILE` checks such a file again.

    \b
    Example:
      bus389 consume --as ict --from-beginning --max 10
      bus389 consume --as market_surveillance --group store-check --timeout 30
      bus389 consume --as police --topic dlq --from-beginning | jq .error
    """
    from bus389.consumers.inbox_reader import (
        ConsumedEvent,
        TopicKind,
        TopicReader,
        agency_group_id,
        to_json_line,
        topic_for,
    )

    reader_agency = Agency.parse(agency)
    topic = topic_for(settings, reader_agency, cast(TopicKind, kind))
    group_id = agency_group_id(settings, reader_agency, group) if group else None
    out = sys.stdout.buffer
    events = errors = 0
    check = _signature_check(settings, topic) if kind in ("inbox", "outbox") else None
    with TopicReader(settings, topic, group_id=group_id, from_beginning=from_beginning) as reader:
        for item in reader.read(max_events=max_events, idle_timeout_s=timeout_s):
            extra = {"signature": check(item)} if check and isinstance(item, ConsumedEvent) else {}
            # C0 controls are JSON-escaped already; C1 and bidi controls are escaped too (same value).
            out.write(json_for_terminal(to_json_line(item, **extra)).encode("utf-8") + b"\n")
            out.flush()
            if isinstance(item, ConsumedEvent):
                events += 1
            else:
                errors += 1
    click.echo(f"read {events} events ({errors} undecodable) from {topic}", err=True)


def _signature_check(settings: Settings, topic: str) -> Callable[[ConsumedEvent], dict[str, Any]]:
    """What checks each event's signature: the key registry and the policy, read once."""
    from bus389.errors import BusError
    from bus389.routing.policy import load_policy
    from bus389.signing.events import check_read, verification_json
    from bus389.signing.keys import KeyRegistry
    from bus389.signing.registry_topic import load_registry

    registry: KeyRegistry | None
    try:
        registry = load_registry(settings, timeout_s=10.0)
    except BusError as exc:
        registry, problem = None, str(exc)
    try:
        policy = load_policy(settings.router.policy_path)
    except BusError:
        policy = None  # removals are then checked against the copy's bus389_redacted header only

    def check(item: ConsumedEvent) -> dict[str, Any]:
        if registry is None:
            return {"status": "unchecked", "detail": f"no key registry: {problem}"}
        headers = {name: text.encode("utf-8") for name, text in item.headers.items()}
        result = check_read(settings.topics, topic, item.value, headers, registry, policy=policy)
        return verification_json(result)

    return check
