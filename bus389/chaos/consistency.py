"""Restarts lose no state: the services' stores and files against what their inboxes hold.

``bus389 chaos consistency`` reads the ``market_surveillance`` and ``ict`` inboxes and the ict outbox
(``read_committed``, from the beginning) and compares them with:

- the standing office's store: every event of its inbox stored (or recorded as rejected), and nothing
  stored that its inbox never held;
- the ICT department's store: every ``domain_block_request`` of its inbox stored (or rejected), nothing
  else; every result the store marks as sent is on the ict outbox, every result on the outbox is one the
  store decided;
- the RPZ zone file: exactly the domains and IP addresses the store holds as blocked, each traced to
  the requests that asked for it, and every domain a ``BLOCKED``/``PARTIAL`` result announced (for a
  request still approved) in the zone — a result is only ever published once the files show it.

It reads the stores read-only and knows their tables, not their code. A service still catching up is
not an inconsistency: ``--wait`` checks again until the two agree or the time is up.
"""

from __future__ import annotations

import ipaddress
import re
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bus389.agencies import Agency
from bus389.chaos.checker import read_topic, sqlite_file
from bus389.errors import BusError, StoreError
from bus389.settings import Settings

__all__ = ["ConsistencyReport", "check_consistency", "parse_rpz", "rpz_ip_owner"]

_SHOWN = 20


@dataclass
class ConsistencyReport:
    """Facts (counts) and problems (each one readable line)."""

    facts: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def differ(self, what: str, ids: Iterable[str]) -> None:
        found = sorted(ids)
        if found:
            shown = ", ".join(found[:_SHOWN]) + (
                f" and {len(found) - _SHOWN} more" if len(found) > _SHOWN else ""
            )
            self.problems.append(f"{what}: {len(found)}: {shown}")

    def describe(self) -> str:
        lines = [" ".join(f"{k}={v}" for k, v in self.facts.items())]
        lines += [f"  inconsistent: {p}" for p in self.problems]
        lines += [f"  note: {w}" for w in self.warnings]
        return "\n".join(lines)


@dataclass(frozen=True)
class Zone:
    """What an RPZ zone file blocks: domains, Response-IP owners, and the request ids in its comments."""

    domains: frozenset[str]
    ip_owners: frozenset[str]
    request_ids: frozenset[str]


_EVENT_COMMENT = re.compile(r"^;\s*event\s+([0-9a-fA-F-]{36})\s")


def parse_rpz(text: str, zone: str) -> Zone:
    """Read the owner names of ``CNAME .`` records (relative to ``$ORIGIN``) and the event comments."""
    domains: set[str] = set()
    owners: set[str] = set()
    requests: set[str] = set()
    suffix = "." + zone.rstrip(".") + "."
    for raw in text.splitlines():
        line = raw.strip()
        comment = _EVENT_COMMENT.match(line)
        if comment:
            requests.add(comment.group(1).lower())
            continue
        parts = line.split()
        if len(parts) != 3 or parts[1:] != ["CNAME", "."]:
            continue
        owner = parts[0]
        if owner.endswith(suffix):
            owner = owner[: -len(suffix)]
        owner = owner.rstrip(".")
        if owner.endswith(".rpz-ip"):
            owners.add(owner)
        elif not owner.startswith("*."):
            domains.add(owner.lower())
    return Zone(frozenset(domains), frozenset(owners), frozenset(requests))


def rpz_ip_owner(target: str) -> str:
    """The RPZ Response-IP owner of an address or network: ``1.2.3.4`` → ``32.4.3.2.1.rpz-ip``."""
    net = ipaddress.ip_network(target, strict=False)
    if net.version == 4:
        words = str(net.network_address).split(".")
    else:
        compressed = net.network_address.compressed
        if "::" in compressed:
            head, tail = compressed.split("::")
            words = [*(head.split(":") if head else []), "zz", *(tail.split(":") if tail else [])]
        else:
            words = compressed.split(":")
    return ".".join([str(net.prefixlen), *reversed(words), "rpz-ip"])


def _connect(url: str, setting: str) -> sqlite3.Connection | None:
    path = sqlite_file(url, setting=setting)
    if not path.exists():
        return None
    try:
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open {path}: {exc}") from exc


def _rows(connection: sqlite3.Connection | None, sql: str) -> list[tuple[Any, ...]]:
    if connection is None:
        return []
    try:
        return list(connection.execute(sql))
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the store: {exc}") from exc


def _ids(records: Iterable[Any], wanted_type: str | None = None) -> set[str]:
    from bus389.codec import decode_event
    from bus389.errors import CodecError

    ids: set[str] = set()
    for record in records:
        try:
            decoded = decode_event(record.value, record.headers or [])
        except CodecError:
            continue
        if wanted_type is None or decoded.event_type == wanted_type:
            ids.add(decoded.event_id.lower())
    return ids


def _once(settings: Settings) -> ConsistencyReport:
    report = ConsistencyReport()
    topics = settings.topics
    so_inbox = _ids(read_topic(settings, topics.inbox(Agency.MARKET_SURVEILLANCE)))
    ict_inbox = read_topic(settings, topics.inbox(Agency.ICT))
    requests_in = _ids(ict_inbox, "domain_block_request")
    others_in = _ids(ict_inbox) - requests_in
    results = read_topic(settings, topics.outbox(Agency.ICT))
    results_out = _ids(results, "domain_block_result")

    so = _connect(settings.store.standing_office_url, "BUS389_STORE__STANDING_OFFICE_URL")
    try:
        stored = {str(r[0]).lower() for r in _rows(so, "SELECT event_id FROM so_events")}
        so_rejected = {str(r[0]).lower() for r in _rows(so, "SELECT event_id FROM so_rejected") if r[0]}
    finally:
        if so is not None:
            so.close()
    report.facts.update(so_inbox=len(so_inbox), so_store=len(stored), so_rejected=len(so_rejected))
    report.differ("in the standing office's inbox, not in its store", so_inbox - stored - so_rejected)
    report.differ("in the standing office's store, never in its inbox", stored - so_inbox)

    ict = _connect(settings.store.ict_url, "BUS389_STORE__ICT_URL")
    try:
        requests = {str(r[0]).lower(): str(r[1]) for r in _rows(ict, "SELECT event_id, state FROM requests")}
        ict_rejected = {str(r[0]).lower() for r in _rows(ict, "SELECT event_id FROM rejected_events") if r[0]}
        # Leads (suspect_seller) and replies are stored in their own tables (`bus389 ict leads --all`).
        kept = {
            str(r[0]).lower()
            for r in _rows(ict, "SELECT event_id FROM leads UNION SELECT event_id FROM replies")
        }
        outbox = {
            str(r[0]).lower(): (str(r[1]).lower(), r[2], str(r[3]))
            for r in _rows(ict, "SELECT event_id, request_id, sent_at, outcome FROM outbox")
        }
        blocked = _rows(ict, "SELECT request_id, kind, value FROM targets WHERE state = 'blocked'")
        seq = {str(r[0]): str(r[1]) for r in _rows(ict, "SELECT name, value FROM kv")}
    finally:
        if ict is not None:
            ict.close()
    report.facts.update(
        ict_inbox_requests=len(requests_in),
        ict_store_requests=len(requests),
        ict_results_topic=len(results_out),
        ict_results_store=len(outbox),
        ict_blocked_targets=len(blocked),
    )
    report.differ(
        "requests in the ict inbox, not in the ICT store", requests_in - set(requests) - ict_rejected
    )
    report.differ("requests in the ICT store, never in the ict inbox", set(requests) - requests_in)
    unkept = others_in - ict_rejected - kept
    if unkept:
        report.warnings.append(
            f"{len(unkept)} non-request event(s) in the ict inbox neither kept (lead, reply) nor "
            "recorded as rejected"
        )
    sent = {i for i, (_, sent_at, _) in outbox.items() if sent_at is not None}
    report.differ("results the ICT store marks sent, not on the ict outbox", sent - results_out)
    report.differ("results on the ict outbox that the ICT store never decided", results_out - set(outbox))
    unmarked = (results_out & set(outbox)) - sent
    if unmarked:
        report.warnings.append(
            f"{len(unmarked)} result(s) published but not yet marked sent (repaired at start-up)"
        )
    if seq.get("blocklist_seq") != seq.get("written_seq"):
        report.problems.append(
            f"the blocklist files are behind the store (change {seq.get('written_seq')} written, "
            f"{seq.get('blocklist_seq')} decided)"
        )

    zone_path = Path(settings.ict.output_dir) / f"{settings.ict.rpz_zone}.zone"
    try:
        zone = parse_rpz(zone_path.read_text(encoding="utf-8"), settings.ict.rpz_zone)
    except FileNotFoundError:
        zone = Zone(frozenset(), frozenset(), frozenset())
        if blocked:
            report.problems.append(f"no RPZ zone at {zone_path}, yet {len(blocked)} target(s) blocked")
    domains = {str(v).lower() for _, kind, v in blocked if kind == "domain"}
    owners = set()
    for _, kind, value in blocked:
        if kind == "ip":
            try:
                owners.add(rpz_ip_owner(str(value)))
            except ValueError:
                report.problems.append(f"the ICT store blocks {value!r}, which is no IP address")
    asked = {str(r).lower() for r, kind, _ in blocked if kind in ("domain", "ip")}
    report.facts.update(rpz_domains=len(zone.domains), rpz_ips=len(zone.ip_owners))
    report.differ("domains blocked in the store, missing from the RPZ zone", domains - zone.domains)
    report.differ("domains in the RPZ zone the store does not block", zone.domains - domains)
    report.differ("IP owners blocked in the store, missing from the RPZ zone", owners - zone.ip_owners)
    report.differ("IP owners in the RPZ zone the store does not block", zone.ip_owners - owners)
    report.differ("requests with blocks, not traced in the RPZ zone", asked - zone.request_ids)
    report.differ("requests traced in the RPZ zone without a block", zone.request_ids - asked)
    announced = _announced_domains(results, requests)
    report.differ(
        "domains announced BLOCKED to a requester, missing from the RPZ zone", announced - zone.domains
    )
    return report


def _announced_domains(results: list[Any], requests: dict[str, str]) -> set[str]:
    """Domains a BLOCKED/PARTIAL result announced, for requests the store still holds approved."""
    from bus389.codec import decode_event
    from bus389.errors import CodecError

    announced: set[str] = set()
    for record in results:
        try:
            decoded = decode_event(record.value, record.headers or [])
        except CodecError:
            continue
        body = decoded.record
        request = str(decoded.meta.get("in_reply_to") or "").lower()
        if body.get("outcome") in ("BLOCKED", "PARTIAL") and requests.get(request) == "approved":
            announced |= {str(item).lower() for item in body.get("blocked", []) if _is_domain(str(item))}
    return announced


def _is_domain(item: str) -> bool:
    if "/" in item or ":" in item:
        return False
    try:
        ipaddress.ip_address(item)
    except ValueError:
        return True
    return False


def check_consistency(
    settings: Settings, *, wait_s: float = 0.0, progress: Callable[[ConsistencyReport], None] | None = None
) -> ConsistencyReport:
    """Compare the stores and the RPZ zone with the inboxes; with ``wait_s``, retry until they agree."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            report = _once(settings)
        except BusError as exc:
            if not exc.retriable or time.monotonic() > deadline:
                raise
            time.sleep(2.0)
            continue
        if report.ok or time.monotonic() > deadline:
            return report
        if progress is not None:
            progress(report)
        time.sleep(2.0)
