"""``bus389 dlq``: list the router's dead letters, and replay them to their outbox once the cause is fixed."""

from __future__ import annotations

import json

import click

from bus389.cli._context import pass_settings
from bus389.safe_text import for_terminal, json_for_terminal
from bus389.settings import Settings

__all__ = ["dlq"]

_REASON_HELP = (
    "A DLQ reason code: bad_magic_byte, truncated_frame, unknown_schema_id, corrupt_body, schema_mismatch, "
    "invalid_event, spoofed_source, unknown_original, no_route, router_error; signatures: unsigned, "
    "bad_signature, unknown_key, key_not_valid, wrong_key, field_altered."
)


@click.group("dlq")
def dlq() -> None:
    """The dead-letter topic <prefix>.dlq: what the router could not route, and why.

    \b
    Example:
      bus389 dlq list --reason unknown_schema_id
      bus389 dlq replay --reason unknown_schema_id
    """


@dlq.command("list")
@click.option("--reason", default=None, metavar="REASON", help=_REASON_HELP)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per dead letter.")
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=1),
    default=60.0,
    show_default=True,
    help="Give up after.",
)
@pass_settings
def list_(settings: Settings, reason: str | None, as_json: bool, timeout_s: float) -> None:
    """List the dead letters (read_committed, oldest first), each with its reason, detail and origin.

    A letter already sent back by `bus389 dlq replay` is marked "replayed".

    \b
    Example:
      bus389 dlq list
      bus389 dlq list --reason spoofed_source --json | jq .origin
    """
    from bus389.consumers.router.dlq import read_dead_letters

    letters = read_dead_letters(settings, reason=reason, timeout_s=timeout_s)
    for letter in letters:
        if as_json:
            click.echo(
                json_for_terminal(
                    json.dumps(
                        {
                            "dlq": letter.place,
                            "reason": letter.reason,
                            "detail": letter.detail,
                            "origin": letter.origin,
                            "event_id": letter.header("ce_id") or None,
                            "event_type": letter.header("ce_type") or None,
                            "replayed": letter.replayed,
                        },
                        ensure_ascii=False,
                    )
                )
            )
        else:
            mark = " (replayed)" if letter.replayed else ""
            event = letter.header("ce_id") or "?"
            click.echo(
                for_terminal(
                    f"{letter.place}  {letter.reason}{mark}  from {letter.origin}  "
                    f"event {event}: {letter.detail}"
                )
            )
    click.echo(f"{len(letters)} dead letter(s) in {settings.topics.dlq}", err=True)


@dlq.command("replay")
@click.option("--reason", required=True, metavar="REASON", help=_REASON_HELP)
@click.option(
    "--as-is",
    is_flag=True,
    help="Send every chosen letter unchanged, without checking it now decodes and validates.",
)
@click.option("--dry-run", is_flag=True, help="Show what would be sent; send nothing.")
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=1),
    default=60.0,
    show_default=True,
    help="Give up after.",
)
@pass_settings
def replay(settings: Settings, reason: str, as_is: bool, dry_run: bool, timeout_s: float) -> None:
    """Send the dead letters of REASON back to their outbox, once the cause is fixed.

    Each letter's original key, value and headers go back to the outbox it came from, in one
    transaction with a marker that makes a letter replayed at most once. Without --as-is a letter
    that would still fail to decode or validate stays in place (and is listed). spoofed_source
    letters are never replayed. Run one replay at a time.

    \b
    Example:
      bus389 dlq replay --reason unknown_schema_id --dry-run
      bus389 dlq replay --reason no_route --as-is
    """
    from bus389.consumers.router.dlq import replay as do_replay

    report = do_replay(settings, reason=reason, as_is=as_is, dry_run=dry_run, timeout_s=timeout_s)
    verb = "would send" if dry_run else "sent"
    for letter in report.sent:
        click.echo(
            for_terminal(
                f"{verb} {letter.place} back to {letter.origin_topic} (event {letter.header('ce_id') or '?'})"
            )
        )
    for letter, why in report.skipped:
        click.echo(for_terminal(f"left {letter.place} in the DLQ: {why}"), err=True)
    click.echo(f"{verb} {len(report.sent)}, left {len(report.skipped)} ({reason})", err=True)
