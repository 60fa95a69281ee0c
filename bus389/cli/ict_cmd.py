"""``bus389 ict``: the ICT operator's commands on domain-block requests and leads.

The operator's commands only read and write the ICT store (``BUS389_STORE__ICT_URL``): they need no
broker. A decision is durable when the command returns; ``bus389 serve ict`` then rewrites the
blocklist files and publishes the ``domain_block_result`` answering the request. ``approve`` and
``reject`` say whether that service is running (this host's instances, else the ICT group's members).
"""

from __future__ import annotations

import json
import os
import pwd
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from bus389.agencies import Agency
from bus389.cli._context import pass_settings
from bus389.safe_text import for_terminal, json_for_terminal
from bus389.settings import Settings

if TYPE_CHECKING:
    from bus389.consumers.ict.decisions import Decider
    from bus389.consumers.ict.store import LeadRow

__all__ = ["ict"]


def _service_hint(settings: Settings) -> str:
    """Who writes the blocklist and publishes the result, and whether it is running."""
    from bus389.cli.status_cmd import service_state
    from bus389.consumers.ict.service import SERVICE_NAME, group_id

    return f"the blocklist and the result: {service_state(settings, SERVICE_NAME, group_id(settings))}"


_NEVER_BLOCKED = (
    "a lead is never blocked automatically: blocking needs a domain_block_request with a legal basis"
)


def _operator_name() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return f"uid{os.getuid()}"


def _iso(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@contextmanager
def _decider(settings: Settings) -> Iterator[Decider]:
    from bus389.consumers.ict import decisions
    from bus389.consumers.ict.store import open_store

    store = open_store(settings.store.ict_url)
    try:
        yield decisions.Decider(store, settings)
    finally:
        store.close()


def _echo(text: str = "", *, err: bool = False) -> None:
    """One line for the operator: names, reasons and notes come from other agencies, so every control
    character and bidi override in them is shown (``\\x1b``, ``<U+202E>``), never executed."""
    click.echo(for_terminal(text), err=err)


def _json(value: object) -> str:
    """One JSON line, Vietnamese as is; C1 and bidi controls escaped (``json`` escapes C0 itself)."""
    return json_for_terminal(json.dumps(value, ensure_ascii=False))


@click.group("ict")
def ict() -> None:
    """The ICT department's domain-block requests and leads: review, decide, and print the blocklist.

    Requests (domain_block_request), leads (suspect_seller with a domain, website or social account,
    plan II.6) and replies to ICT's own events arrive through `bus389 serve ict`; decisions are written
    to the ICT store (BUS389_STORE__ICT_URL) and applied by that service. A lead is never blocked
    automatically.

    \b
    Example:
      bus389 ict pending
      bus389 ict approve 3f2a9c1e --note "Công văn 123/STTTT-BCVT"
      bus389 ict leads
      bus389 ict blocklist --format rpz
    """


@ict.command("pending")
@click.option("--all", "show_all", is_flag=True, help="List every request, not only the pending ones.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line instead of a table.")
@pass_settings
def pending(settings: Settings, show_all: bool, as_json: bool) -> None:
    """List the requests waiting for a decision, oldest first (with what screening refused).

    \b
    Example:
      bus389 ict pending
      bus389 ict pending --all --json
    """
    from bus389.consumers.ict.store import LeadState, RequestState, open_store

    with open_store(settings.store.ict_url) as store:
        rows = store.requests(None if show_all else RequestState.PENDING)
        new_leads = store.count_leads(LeadState.NEW)
        leads_line = (
            f"{new_leads} new lead(s) to inspect (suspect_seller, plan II.6): see `bus389 ict leads`"
            if new_leads
            else ""
        )
        if as_json:
            if leads_line:  # stdout stays one request per line
                _echo(leads_line, err=True)
            for row in rows:
                targets = store.targets(row.key)
                _echo(
                    _json(
                        {
                            "id": row.event_id,
                            "state": row.state,
                            "requester": row.requester,
                            "action": row.action,
                            "urgency": row.urgency,
                            "received_at": _iso(row.received_at),
                            "expires_at": _iso(row.expires_at) if row.expires_at else None,
                            "legal_basis": row.legal_basis,
                            "reason": row.reason,
                            "case_ref": row.case_ref,
                            "targets": [
                                {"kind": t.kind, "value": t.value, "state": t.state} for t in targets
                            ],
                            "refused": [
                                {"item": item, "reason": reason} for item, reason in store.refusals(row.key)
                            ],
                        },
                    )
                )
            return
        if not rows:
            _echo("no pending request" if not show_all else "no request")
            if leads_line:
                _echo(leads_line)
            return
        for row in rows:
            targets = store.targets(row.key)
            state = "" if row.state == RequestState.PENDING else f"  [{row.state}]"
            _echo(
                f"{row.event_id}  {row.action}  from {row.requester}  {row.urgency}  "
                f"received {_iso(row.received_at)}{state}"
            )
            _echo(f"    legal basis: {row.legal_basis}")
            _echo(f"    reason: {row.reason}")
            if row.case_ref:
                _echo(f"    case: {row.case_ref}")
            if row.expires_at is not None:
                _echo(f"    expires: {_iso(row.expires_at)}")
            for t in targets:
                _echo(f"    {t.kind:6} {t.value}" + ("" if t.state == "accepted" else f"  ({t.state})"))
            for item, reason in store.refusals(row.key):
                _echo(f"    refused {item}: {reason}")
        _echo(f"{len(rows)} request(s)")
        if leads_line:
            _echo(leads_line)


_FROM_HELP = "The agency that sent it, when several sent one under this id (see `bus389 ict pending`)."


@ict.command("approve")
@click.argument("request_id")
@click.option("--note", default=None, help="Sent to the requester with the result.")
@click.option("--operator", default=None, help="Who decides [default: your login name].")
@click.option("--from", "requester", default=None, metavar="AGENCY", help=_FROM_HELP)
@pass_settings
def approve(
    settings: Settings, request_id: str, note: str | None, operator: str | None, requester: str | None
) -> None:
    """Approve a pending request: its screened items are blocked (an UNBLOCK request: lifted).

    REQUEST_ID is the request's event id or its first characters (see `bus389 ict pending`). A request
    is its id and its sender: if two agencies sent one under the same id, say which with --from.

    \b
    Example:
      bus389 ict approve 3f2a9c1e
      bus389 ict approve 3f2a9c1e-0b7d-4c1e-9a55-2b1f0d6e7a10 --note "QĐ 45/QĐ-STTTT"
    """
    with _decider(settings) as decider:
        row, outcome = decider.approve(
            request_id, actor=operator or _operator_name(), note=note, requester=requester
        )
        targets = decider.store.targets(row.key)
        refusals = decider.store.refusals(row.key)
    _echo(f"request {row.event_id} from {row.requester}: {outcome}")
    for t in targets:
        _echo(f"    {t.kind:6} {t.value}  ({t.state})")
    for item, reason in refusals:
        _echo(f"    not blocked {item}: {reason}")
    _echo(f"decision stored; {_service_hint(settings)}", err=True)


@ict.command("reject")
@click.argument("request_id")
@click.option("--reason", required=True, help="Why: sent to the requester with the result.")
@click.option("--operator", default=None, help="Who decides [default: your login name].")
@click.option("--from", "requester", default=None, metavar="AGENCY", help=_FROM_HELP)
@pass_settings
def reject(
    settings: Settings, request_id: str, reason: str, operator: str | None, requester: str | None
) -> None:
    """Reject a pending request; the requester receives REJECTED with the reason.

    REQUEST_ID is the request's event id or its first characters (see `bus389 ict pending`); --from
    names its sender when two agencies sent one under the same id.

    \b
    Example:
      bus389 ict reject 3f2a9c1e --reason "Thiếu căn cứ pháp lý: cần quyết định của cơ quan có thẩm quyền"
    """
    with _decider(settings) as decider:
        row = decider.reject(
            request_id, actor=operator or _operator_name(), reason=reason, requester=requester
        )
    _echo(f"request {row.event_id} from {row.requester}: REJECTED")
    _echo(f"decision stored; {_service_hint(settings)}", err=True)


@ict.command("leads")
@click.option("--all", "show_all", is_flag=True, help="List every lead, not only the new ones.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line instead of a table.")
@pass_settings
def leads(settings: Settings, show_all: bool, as_json: bool) -> None:
    """List the leads to inspect: sellers other agencies suspect, with their domains and accounts.

    A lead is a suspect_seller the routing policy sent ICT because the seller has a domain, a website
    or a social-network account (rule suspect_seller.ict, plan II.6: ICT inspects websites, social
    networks and .VN domains), kept once by event id with its sender and when it was received.
    A lead is never blocked automatically, whatever BUS389_ICT__AUTO_APPROVE_SENDERS says: blocking
    needs a domain_block_request with a legal basis. Mark a lead done with `bus389 ict inspected`.

    \b
    Example:
      bus389 ict leads
      bus389 ict leads --all --json
    """
    from bus389.consumers.ict.store import LeadState, open_store

    with open_store(settings.store.ict_url) as store:
        rows = store.leads(None if show_all else LeadState.NEW)
    if as_json:
        for row in rows:
            _echo(
                _json(
                    {
                        "id": row.event_id,
                        "state": row.state,
                        "sender": row.sender,
                        "received_at": _iso(row.received_at),
                        "published_at": _iso(row.published_at),
                        "seller": {"name": row.seller_name, "tax_code": row.seller_tax_code},
                        "domains": list(row.domains),
                        "accounts": list(row.accounts),
                        "evidence_urls": list(row.evidence_urls),
                        "goods": row.goods,
                        "violation_kinds": list(row.violation_kinds),
                        "summary": row.summary,
                        "case_ref": row.case_ref,
                        "urgency": row.urgency,
                        "rule": row.rule,
                        "inspected_at": _iso(row.inspected_at) if row.inspected_at else None,
                        "inspected_by": row.inspected_by,
                        "note": row.note,
                    },
                )
            )
        return
    if not rows:
        _echo("no new lead" if not show_all else "no lead")
        return
    for row in rows:
        state = "" if row.state == LeadState.NEW else f"  [{row.state} by {row.inspected_by}]"
        _echo(f"{row.event_id}  from {row.sender}  {row.urgency}  received {_iso(row.received_at)}{state}")
        tax = f" (tax code {row.seller_tax_code})" if row.seller_tax_code else ""
        _echo(f"    seller: {row.seller_name}{tax}")
        _echo(f"    goods: {row.goods}; {', '.join(row.violation_kinds) or 'no violation kind'}")
        if row.case_ref:
            _echo(f"    case: {row.case_ref}")
        for domain in row.domains:
            _echo(f"    domain   {domain}")
        for account in row.accounts:
            url = f"  {account['url']}" if account.get("url") else ""
            _echo(f"    account  {account['platform']} {account['account']}{url}")
        for url in row.evidence_urls:
            _echo(f"    evidence {url}")
        if row.summary:
            _echo(f"    summary: {row.summary}")
        if row.note:
            _echo(f"    note: {row.note}")
    _echo(f"{len(rows)} lead(s); {_NEVER_BLOCKED}")


@ict.command("inspected")
@click.argument("lead_id")
@click.option("--note", default=None, help="What the inspection found (kept with the lead).")
@click.option("--operator", default=None, help="Who inspected [default: your login name].")
@click.option(
    "--finding",
    type=click.Choice(["VIOLATION_FOUND", "NO_VIOLATION", "INCONCLUSIVE"], case_sensitive=False),
    default=None,
    help="Publish an inspection_result with this finding to the lead's sender and the standing office.",
)
@click.option(
    "--signs-of-crime", is_flag=True, help="The inspection found signs of crime: the police get it too."
)
@click.option(
    "--from",
    "sender",
    default=None,
    metavar="AGENCY",
    help="The agency that sent the lead, when several sent one under this id (see `bus389 ict leads`).",
)
@pass_settings
def inspected(
    settings: Settings,
    lead_id: str,
    note: str | None,
    operator: str | None,
    finding: str | None,
    signs_of_crime: bool,
    sender: str | None,
) -> None:
    """Mark a lead inspected, so that it no longer counts as new. Blocks nothing.

    LEAD_ID is the lead's event id or its first characters (see `bus389 ict leads`). With --finding,
    ICT first publishes an inspection_result answering the lead (plan II.6): the agency that sent the
    lead, the standing office, and with --signs-of-crime the police receive it; the lead is marked
    only once it is published. To block what the inspection found, a domain_block_request with a legal
    basis must be published (it then shows in `bus389 ict pending`).

    \b
    Example:
      bus389 ict inspected 9b1e4c2a --note "Website không có giấy phép, đề nghị QLTT xử lý"
      bus389 ict inspected 9b1e4c2a --finding VIOLATION_FOUND --note "Bán hàng giả"
    """
    import time

    from bus389.consumers.ict.store import LeadState, open_store
    from bus389.errors import InputError

    with open_store(settings.store.ict_url) as store:
        found = [r for r in store.find_leads(lead_id) if sender is None or r.sender == sender]
        exact = [r for r in found if r.event_id == lead_id.strip().lower()]
        found = exact or found
        if not found:
            by = f" from {sender}" if sender is not None else ""
            raise InputError(f"no lead{by} {lead_id!r} (see `bus389 ict leads --all`)")
        if len({r.event_id for r in found}) > 1:
            ids = ", ".join(dict.fromkeys(r.event_id for r in found))
            raise InputError(f"{lead_id!r} names several leads ({ids}): type more of the id")
        if len(found) > 1:
            senders = ", ".join(r.sender for r in found)
            raise InputError(
                f"lead {found[0].event_id} was sent by several agencies ({senders}): "
                "say which with --from AGENCY"
            )
        row = found[0]
        if row.state == LeadState.INSPECTED:
            _echo(f"lead {row.event_id} was inspected already by {row.inspected_by}")
            return
        inspected_at = time.time_ns() // 1_000_000
        who = operator or _operator_name()
        if finding is not None:
            _publish_inspection(settings, row, finding.upper(), signs_of_crime, inspected_at, who, note)
        with store.transaction():
            store.set_lead_inspected(
                row.event_id, row.sender, inspected_at=inspected_at, inspected_by=who, note=note
            )
    _echo(f"lead {row.event_id} ({row.seller_name}, from {row.sender}): inspected")


def _publish_inspection(
    settings: Settings,
    row: LeadRow,
    finding: str,
    signs_of_crime: bool,
    inspected_at: int,
    who: str,
    note: str | None,
) -> None:
    from bus389.codec import encode_event
    from bus389.consumers.ict.leads import inspection_result_for
    from bus389.producers.publisher import OutgoingEvent, Publisher

    event = inspection_result_for(
        row,
        finding=finding,
        signs_of_crime=signs_of_crime,
        inspected_at=datetime.fromtimestamp(inspected_at / 1000, tz=UTC),
        inspected_by=who,
        summary=note,
    )
    with Publisher(settings, Agency.ICT) as publisher:
        publisher.publish([OutgoingEvent(0, event, encode_event(event))])
    click.echo(f"inspection_result {event.event_id} ({finding}) published in answer to lead {row.event_id}")


@ict.command("replies")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line (the whole event).")
@pass_settings
def replies(settings: Settings, as_json: bool) -> None:
    """List the events other agencies sent in answer to ICT's own (meta.in_reply_to).

    The routing policy returns any answer to the agency that sent the original event (rule
    reply.original_sender, plan I.2): e.g. a case_outcome answering a suspect_seller ICT published.
    The ICT service keeps them as they came, once by event id.

    \b
    Example:
      bus389 ict replies
      bus389 ict replies --json | jq .record.summary
    """
    from bus389.consumers.ict.store import open_store

    with open_store(settings.store.ict_url) as store:
        rows = store.replies()
    if as_json:
        for row in rows:
            _echo(
                _json(
                    {
                        "id": row.event_id,
                        "event_type": row.event_type,
                        "sender": row.sender,
                        "in_reply_to": row.in_reply_to,
                        "case_ref": row.case_ref,
                        "received_at": _iso(row.received_at),
                        "rule": row.rule,
                        "record": row.record,
                    },
                )
            )
        return
    if not rows:
        _echo("no reply")
        return
    for row in rows:
        case = f"  case {row.case_ref}" if row.case_ref else ""
        _echo(
            f"{row.event_id}  {row.event_type}  from {row.sender}  answering {row.in_reply_to}  "
            f"received {_iso(row.received_at)}{case}"
        )
    _echo(f"{len(rows)} reply(ies)")


@ict.command("blocklist")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["rpz", "txt", "csv"]),
    default="rpz",
    show_default=True,
    help="rpz: the Response Policy Zone; txt: one domain per line; csv: every block with its request.",
)
@pass_settings
def blocklist(settings: Settings, fmt: str) -> None:
    """Print the current blocklist (every approved block not yet lifted or expired).

    \b
    Example:
      bus389 ict blocklist
      bus389 ict blocklist --format csv > blocklist.csv
    """
    from bus389.consumers.ict.blocklist import (
        active_entries,
        content_hash,
        next_serial,
        render_csv,
        render_rpz,
        render_txt,
    )
    from bus389.consumers.ict.store import open_store

    with open_store(settings.store.ict_url) as store:
        entries = active_entries(store)
        serial = store.counter("serial")
        behind = content_hash(entries) != store.text("written_hash") or serial == 0
    if behind:
        serial = next_serial(serial)
        click.echo(f"note: the service has not written this list yet (it will, as serial {serial})", err=True)
    if fmt == "rpz":
        text = render_rpz(entries, zone=settings.ict.rpz_zone, serial=serial)
    elif fmt == "txt":
        text = render_txt(entries)
    else:
        text = render_csv(entries)
    # Redirected to a file it is the providers' export, byte for byte; on a terminal it prints inert.
    if sys.stdout.isatty():
        text = for_terminal(text.replace("\r\n", "\n"), keep_newlines=True)
    click.echo(text, nl=False)
