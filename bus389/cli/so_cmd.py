"""``bus389 so``: the standing office's follow-up of its directives (plan II.9, "đôn đốc")."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from bus389.cli._context import pass_settings
from bus389.settings import Settings

__all__ = ["so"]


def _shown(text: str) -> str:
    """Text from an event as data on a terminal: control characters escaped, never interpreted."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


@click.group("so")
def so() -> None:
    """The standing office (Cơ quan Thường trực, market_surveillance): follow-up views."""


@so.command("directives")
@click.option("--overdue", "only_overdue", is_flag=True, help="Only the directives past their due date.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per directive.")
@pass_settings
def directives(settings: Settings, only_overdue: bool, as_json: bool) -> None:
    """The directives the standing office holds: who has answered, who has not, which are overdue.

    A directive (urge, remind, assign, deconflict) is closed when every addressee answered it (an
    event whose meta.in_reply_to is the directive's id); it is overdue once its due date passed
    without that. Reads the standing office's store (BUS389_STORE__STANDING_OFFICE_URL).

    \b
    Example:
      bus389 so directives
      bus389 so directives --overdue --json
    """
    from bus389.consumers.standing_office.directives import statuses_in
    from bus389.consumers.standing_office.store import StandingOfficeStore

    now = datetime.now(UTC)
    with StandingOfficeStore.open(settings.store.standing_office_url, create=False) as store:
        rows = [d for d in statuses_in(store, now=now) if d.overdue or not only_overdue]
    for d in rows:
        due = d.due_at.astimezone(UTC).isoformat(timespec="minutes") if d.due_at else None
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "id": d.event_id,
                        "from": d.source,
                        "kind": d.kind,
                        "plan_section": d.plan_section,
                        "subject": d.subject,
                        "addressees": list(d.addressees),
                        "answered_by": list(d.answered_by),
                        "waiting_for": list(d.waiting_for),
                        "due_at": due,
                        "overdue": d.overdue,
                    },
                    ensure_ascii=False,
                )
            )
            continue
        state = "OVERDUE" if d.overdue else ("closed" if d.closed else "open")
        click.echo(f"{d.event_id}  {state}  {d.kind} from {d.source} ({d.plan_section}), due {due or '-'}")
        click.echo(f"    {_shown(d.subject)}")
        if d.waiting_for:
            click.echo(f"    waiting for: {', '.join(d.waiting_for)}")
    if not as_json:
        overdue = sum(1 for d in rows if d.overdue)
        click.echo(f"{len(rows)} directive(s), {overdue} overdue")


@so.command("compile")
@click.argument("period")
@pass_settings
def compile_report(settings: Settings, period: str) -> None:
    """Print the six-monthly report for PERIOD (YYYY-H1 or YYYY-H2) as a compiled_report JSON line.

    The line carries the members' own figures (their SIX_MONTHLY periodic reports), who reported and
    who did not, and what the bus saw; publish it to the committee (plan II.9) with
    `bus389 publish compiled_report --as market_surveillance --file FILE`.

    \b
    Example:
      bus389 so compile 2021-H1 > compiled.jsonl
      bus389 publish compiled_report --as market_surveillance --file compiled.jsonl
    """
    from bus389.consumers.standing_office.report import Period, build_report
    from bus389.consumers.standing_office.report_event import compiled_report_fields
    from bus389.consumers.standing_office.store import StandingOfficeStore

    half = Period.parse(period)
    with StandingOfficeStore.open(settings.store.standing_office_url, create=False) as store:
        report = build_report(store, half, settings=settings.report)
        fields = compiled_report_fields(report, store)
    click.echo(json.dumps(fields, ensure_ascii=False))
