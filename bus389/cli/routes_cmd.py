"""``bus389 routes``: show who receives an event and why (``explain``), and check the policy (``check``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bus389.agencies import Agency
from bus389.cli._context import pass_settings
from bus389.settings import Settings

if TYPE_CHECKING:
    from bus389.routing.decision import Decision
    from bus389.routing.policy import Policy

__all__ = ["routes"]

_POLICY_OPTION = click.option(
    "--policy",
    "policy_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The routing policy YAML [default: BUS389_ROUTER__POLICY_PATH, else the packaged policy].",
)


def _load(settings: Settings, policy_path: Path | None) -> Policy:
    from bus389.routing.policy import load_policy

    return load_policy(policy_path or settings.router.policy_path)


@click.group("routes")
def routes() -> None:
    """The routing policy: explain a file's events, check the policy.

    \b
    Example:
      bus389 routes check
      bus389 routes explain examples/suspect_seller.jsonl --as police
    """


def _parse_originals(values: tuple[str, ...], answering: Any) -> dict[str, Any]:
    """``--original EVENT_ID=AGENCY``: the router routed EVENT_ID from AGENCY to the answering agency."""
    from bus389.errors import InputError
    from bus389.routing.decision import Original

    known: dict[str, Any] = {}
    for value in values:
        event_id, sep, agency = value.partition("=")
        codes = {a.value for a in Agency}
        if not sep or not event_id.strip() or agency.strip() not in codes:
            raise InputError(f"--original {value!r}: expected EVENT_ID=AGENCY, e.g. 9f1c...=police")
        known[event_id.strip()] = Original(Agency(agency.strip()), frozenset({answering}))
    return known


def _event_type_for(file: str, given: str | None, known: list[str]) -> str:
    from bus389.errors import InputError

    if given is not None:
        if given not in known:
            raise InputError(f"unknown event type {given!r}: use one of {', '.join(known)}")
        return given
    stem = Path(file).name.split(".", 1)[0]
    if stem in known:
        return stem
    raise InputError(
        f"cannot tell the event type from the file name {file!r}: give --type (one of {', '.join(known)})"
    )


def _text(line: int, decision: Decision) -> list[str]:
    head = (
        f"line {line}: {decision.event_type} {decision.event_id} from {decision.sender.value}, "
        f"sensitivity {decision.sensitivity}"
    )
    out = [head]
    if decision.named:
        out.append(f"  addressed to: {', '.join(a.value for a in decision.named)}")
    if not decision.routed:
        out.append(f"  DLQ {decision.dlq_reason}: {decision.dlq_detail}")
        for w in decision.withheld:
            out.append(f"  withheld from {w.agency.value}: {w.reason}")
        for agency in decision.sealed:
            out.append(f"  sealed notice to {agency.value} (type, sender, time, case; no content)")
        if decision.dead:
            out.append(f"  the sender ({decision.sender.value}) is told in its inbox (routing_notice)")
        return out
    width = max(len(d.recipient.value) for d in decision.deliveries)
    for d in decision.deliveries:
        redacted = ", ".join(d.redacted) if d.redacted else "nothing"
        who = f"{d.recipient.value:<{width}}"
        out.append(f"  -> {who}  rule {d.rule_id} (plan {d.plan_section}); redacted: {redacted}")
    for w in decision.withheld:
        out.append(f"  withheld from {w.agency.value}: {w.reason}")
    for agency in decision.sealed:
        out.append(f"  sealed notice to {agency.value} (type, sender, time, case; no content)")
    return out


def _json(line: int, decision: Decision) -> str:
    return json.dumps({"line": line, **decision.to_json()}, ensure_ascii=False)


@routes.command("explain")
@click.argument("file", metavar="FILE")
@click.option("--as", "agency", required=True, metavar="AGENCY", help="The agency that would publish FILE.")
@click.option(
    "--type",
    "event_type",
    default=None,
    metavar="EVENT_TYPE",
    help="The events' type [default: the file name's stem, e.g. suspect_seller.jsonl].",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "jsonl", "csv"], case_sensitive=False),
    default=None,
    help="The file's format (default: from the extension).",
)
@click.option(
    "--original",
    "originals",
    multiple=True,
    metavar="EVENT_ID=AGENCY",
    help="Pretend the router routed EVENT_ID from AGENCY (for replies: meta.in_reply_to). Repeatable.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event instead of text.")
@_POLICY_OPTION
@pass_settings
def explain(
    settings: Settings,
    file: str,
    agency: str,
    event_type: str | None,
    fmt: str | None,
    originals: tuple[str, ...],
    as_json: bool,
    policy_path: Path | None,
) -> None:
    """Show, without Kafka, who would receive each event of FILE published by AGENCY, and why.

    FILE is in the format `bus389 publish` reads. For each event: every recipient with the rule and
    plan section that deliver it and the personal-data fields redacted in its copy; every agency a
    rule named that is held back, and why (sensitivity, own event); or the DLQ reason. Replies
    (meta.in_reply_to) go to the original sender, which only the router's audit trail knows: give it
    with --original. Exits 1 if a record is invalid.

    \b
    Example:
      bus389 routes explain examples/suspect_seller.jsonl --as police
      bus389 routes explain alerts.csv --type tax_discrepancy --as tax --json
      bus389 routes explain examples/domain_block_result.jsonl --as ict --original 3f0c...=customs
    """
    from pydantic import ValidationError

    from bus389.errors import BusError
    from bus389.events import build_event, validation_problems
    from bus389.producers.readers import read_records, source_name
    from bus389.routing.decision import decide
    from bus389.schemas.catalog import load_catalog

    policy = _load(settings, policy_path)
    sender = Agency.parse(agency)
    catalog = load_catalog()
    kind = _event_type_for(file, event_type, catalog.event_types())
    known = _parse_originals(originals, sender)
    records = read_records(file, fmt=fmt, stdin=sys.stdin, schema=catalog.latest(kind).schema_json)
    name = source_name(file)
    invalid = 0
    for source_record in records:
        try:
            event = build_event(kind, sender, source_record.data)
        except ValidationError as exc:
            invalid += 1
            for problem in validation_problems(exc):
                click.echo(f"{name}:{source_record.line}: {problem}", err=True)
            continue
        except BusError as exc:
            invalid += 1
            click.echo(f"{name}:{source_record.line}: {exc}", err=True)
            continue
        decision = decide(sender, event.to_avro(), policy, known.get)
        if as_json:
            click.echo(_json(source_record.line, decision))
        else:
            click.echo("\n".join(_text(source_record.line, decision)))
    if invalid:
        click.echo(f"{invalid} of {len(records)} record(s) invalid", err=True)
        click.get_current_context().exit(1)


@routes.command("check")
@_POLICY_OPTION
@pass_settings
def check(settings: Settings, policy_path: Path | None) -> None:
    """Validate the routing policy against the schemas; list who may publish and who receives each type.

    Every rule's event type, field paths and values are checked; every problem is named with its
    rule and field. Exits 2 on an invalid policy, 1 when an event type has no rule at all, else 0.
    Types reached only by a catch-all rule are listed as a warning.

    \b
    Example:
      bus389 routes check
      bus389 routes check --policy my-policy.yaml
    """
    from bus389.schemas.catalog import load_catalog

    policy = _load(settings, policy_path)
    event_types = load_catalog().event_types()
    missing, catch_all_only = policy.unrouted(event_types)
    click.echo(f"policy {policy.source}: {len(policy.rules)} rules, {len(policy.rights)} rights, valid")
    click.echo("who may publish:")
    for event_type in event_types:
        right = policy.right_for(event_type)
        who = ", ".join(a.value for a in right.publishers) if right and right.publishers else "the bus only"
        click.echo(f"  {event_type}: {who} ({right.plan_section if right else '-'})")
    click.echo("who receives:")
    written_by_the_bus = {
        t for t in event_types if (r := policy.right_for(t)) is not None and not r.publishers
    }
    for event_type in event_types:
        if event_type in written_by_the_bus:
            continue
        rules = [r for r in policy.rules if r.event_type == event_type]
        sections = ", ".join(f"{r.id} ({r.plan_section})" for r in rules) or "-"
        click.echo(f"  {event_type}: {sections}")
    wildcard = [r for r in policy.rules if r.event_type == "*"]
    for rule in wildcard:
        click.echo(f"  every event type: {rule.id} ({rule.plan_section})")
    for event_type in catch_all_only:
        click.echo(f"warning: {event_type} is routed only by a catch-all rule", err=True)
    if missing:
        click.echo(f"error: no rule routes: {', '.join(missing)}", err=True)
        click.get_current_context().exit(1)
