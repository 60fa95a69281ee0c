"""The independent checker: what was acknowledged, against what the bus holds afterwards.

It reads, with its own ``read_committed`` consumer (no group, every partition from the beginning to
the end offsets), every inbox, the audit topic, the DLQ and the ict outbox; and the standing office's
and the ICT department's stores. It computes where each event must be from the policy file by its own
reading (:mod:`bus389.chaos.expectation`), never by the router's code, and counts:

- **lost**: an acknowledged event missing from an inbox that must hold it, without its audit record,
  not in the DLQ when it must be dead-lettered, absent from the standing office's store, or a
  ``domain_block_request`` the ICT service never answered (or never stored);
- **duplicated**: a second copy of one event in one inbox, a second audit record or dead letter, a
  second ICT result for one request;
- **misrouted**: a copy in an inbox that must not hold it, a copy under the wrong rule or with the wrong
  redaction, personal data reaching an agency without a grant for it, an audit record naming other
  recipients, a valid event in the DLQ, an event on the bus that nobody published;
- **phantom**: an event the producer was told had failed (an aborted transaction) found on the bus.

Events whose commit was not confirmed (``info``) may be absent; if any trace of one is there, it must
be complete, like an acknowledged one. The comparison (:func:`compare`) is pure, so it is unit-tested on
hand-made histories; :func:`observe` is the part that reads Kafka and the stores.
"""

from __future__ import annotations

import sqlite3
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bus389.agencies import Agency
from bus389.chaos.expectation import Expected, PolicyModel, values_at
from bus389.chaos.history import ACKNOWLEDGED, FAILED, INDETERMINATE, History
from bus389.errors import BrokerError, BusError, CodecError, StoreError
from bus389.settings import Settings
from bus389.store_url import parse_store_url
from bus389.topic_scan import scan_topic

__all__ = [
    "CheckReport",
    "Copy",
    "Observed",
    "Result",
    "check",
    "check_until_settled",
    "compare",
    "ict_request_ids",
    "json_form",
    "observe",
    "read_topic",
    "sqlite_file",
    "standing_office_ids",
]

_DETAIL_LIMIT = 50


@dataclass(frozen=True)
class Copy:
    """One inbox copy as found: where, under which rule, what its header says was redacted, and
    which personal fields it carries with a value (from the decoded copy)."""

    agency: str
    rule_id: str
    redacted: frozenset[str]
    personal_present: frozenset[str]
    position: str = ""


@dataclass(frozen=True)
class Result:
    """One ``domain_block_result`` found in the ict outbox."""

    event_id: str
    in_reply_to: str
    record: Mapping[str, Any]


@dataclass
class Observed:
    """Everything the checker found on the bus and in the stores, by event id."""

    copies: dict[str, list[Copy]] = field(default_factory=lambda: defaultdict(list))
    audits: dict[str, list[frozenset[str]]] = field(default_factory=lambda: defaultdict(list))
    dead_letters: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    results: list[Result] = field(default_factory=list)
    notices: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))
    """The router's notices, by the id of the event they are about: (inbox owner, SEALED|UNDELIVERABLE)."""
    undecodable: list[str] = field(default_factory=list)
    """Positions of records the checker could not attribute to an event (inboxes, audit)."""
    standing_office: set[str] | None = None
    """Event ids in the standing office's store (None: not checked)."""
    ict_requests: set[str] | None = None
    """Request ids in the ICT department's store (None: not checked)."""


@dataclass
class CheckReport:
    """The checker's verdict: counts, and a readable line for each anomaly (the first ones)."""

    published: int = 0
    acknowledged: int = 0
    failed: int = 0
    indeterminate: int = 0
    indeterminate_present: int = 0
    results: int = 0
    lost: int = 0
    duplicated: int = 0
    misrouted: int = 0
    phantom: int = 0
    copies_checked: int = 0
    details: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and self.misrouted == 0 and self.phantom == 0

    def note(self, kind: str, text: str, count: int = 1) -> None:
        setattr(self, kind, getattr(self, kind) + count)
        if len(self.details[kind]) < _DETAIL_LIMIT:
            self.details[kind].append(text)

    def describe(self) -> str:
        lines = [
            f"checked {self.acknowledged} acknowledged event(s) and {self.results} ICT result(s): "
            f"{self.copies_checked} inbox copies; {self.indeterminate} unconfirmed publish(es), "
            f"{self.indeterminate_present} of them on the bus; {self.failed} failed publish(es)"
        ]
        for kind in ("lost", "duplicated", "misrouted", "phantom"):
            for text in self.details.get(kind, []):
                lines.append(f"  {kind}: {text}")
            more = getattr(self, kind) - len(self.details.get(kind, []))
            if more > 0:
                lines.append(f"  {kind}: ... and {more} more")
        return "\n".join(lines)


def json_form(value: Any) -> Any:
    """A decoded Avro record in the JSON form the policy conditions read (times as text)."""
    if isinstance(value, Mapping):
        return {str(k): json_form(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_form(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


# --- the comparison (pure) -----------------------------------------------------------------------------


class _Comparison:
    def __init__(self, history: History, observed: Observed, policy: PolicyModel) -> None:
        self.history = history
        self.observed = observed
        self.policy = policy
        self.report = CheckReport()
        self.senders: dict[str, str] = {e.event_id: e.source for e in history.events if e.status != FAILED}
        self.results_by_request: dict[str, list[Result]] = defaultdict(list)
        for result in observed.results:
            self.results_by_request[result.in_reply_to].append(result)
        self.accounted: set[str] = set()

    def original_sender(self, event_id: str) -> str | None:
        return self.senders.get(event_id)

    def run(self) -> CheckReport:
        report = self.report
        report.published = len(self.history.events)
        report.acknowledged = len(self.history.acknowledged)
        report.failed = len(self.history.by_status(FAILED))
        report.indeterminate = len(self.history.by_status(INDETERMINATE))
        for entry in self.history.events:
            self.accounted.add(entry.event_id)
            if entry.status == ACKNOWLEDGED:
                self.check_event(entry.event_id, entry.event_type, entry.source, entry.record)
            elif entry.status == INDETERMINATE:
                if self.traces(entry.event_id):
                    report.indeterminate_present += 1
                    self.check_event(entry.event_id, entry.event_type, entry.source, entry.record)
            elif self.traces(entry.event_id):
                report.note(
                    "phantom", f"{entry.event_id} ({entry.event_type}): publish failed, yet on the bus"
                )
        known_requests = {e.event_id for e in self.history.events if e.event_type == "domain_block_request"}
        seen_results: set[str] = set()
        for result in self.observed.results:
            report.results += 1
            if result.event_id in seen_results:
                continue  # the same result event twice in the outbox is counted with its request
            seen_results.add(result.event_id)
            self.accounted.add(result.event_id)
            if result.in_reply_to not in known_requests:
                report.note(
                    "misrouted", f"ICT result {result.event_id} answers unknown request {result.in_reply_to}"
                )
            self.check_event(result.event_id, "domain_block_result", Agency.ICT.value, result.record)
        self.check_unknown()
        return report

    def traces(self, event_id: str) -> bool:
        o = self.observed
        return bool(o.copies.get(event_id) or o.audits.get(event_id) or o.dead_letters.get(event_id))

    def check_event(self, event_id: str, event_type: str, sender: str, record: Mapping[str, Any]) -> None:
        expected = self.policy.expect(record, sender, self.original_sender)
        label = f"{event_id} ({event_type} from {sender})"
        copies = self.observed.copies.get(event_id, [])
        audits = self.observed.audits.get(event_id, [])
        letters = self.observed.dead_letters.get(event_id, [])
        self.report.copies_checked += len(copies)
        self.check_notices(label, event_id, sender, expected)
        if not expected.routed:
            self.check_dead_letter(label, expected, copies, audits, letters)
            return
        self.check_copies(label, expected, copies)
        if not audits:
            self.report.note("lost", f"{label}: no audit record")
        elif len(audits) > 1:
            self.report.note("duplicated", f"{label}: {len(audits)} audit records", len(audits) - 1)
        if audits and audits[0] != frozenset(expected.copies):
            self.report.note(
                "misrouted", f"{label}: audit names {sorted(audits[0])}, expected {sorted(expected.copies)}"
            )
        for reason in letters:
            self.report.note("misrouted", f"{label}: a valid event in the DLQ ({reason})")
        self.check_stores(label, event_id, event_type, expected)

    def check_notices(self, label: str, event_id: str, sender: str, expected: Expected) -> None:
        """The standing office's sealed notices and the sender's undeliverable notice, each exactly once."""
        want = {(agency, "SEALED") for agency in expected.sealed}
        if not expected.routed:
            want.add((sender, "UNDELIVERABLE"))
        got = self.observed.notices.get(event_id, [])
        for notice in sorted(want):
            n = got.count(notice)
            if n == 0:
                self.report.note("lost", f"{label}: no {notice[1]} notice in {notice[0]}'s inbox")
            elif n > 1:
                self.report.note("duplicated", f"{label}: {n} {notice[1]} notices to {notice[0]}", n - 1)
        for notice in sorted(set(got) - want):
            self.report.note("misrouted", f"{label}: a {notice[1]} notice in {notice[0]}'s inbox")

    def check_dead_letter(
        self, label: str, expected: Expected, copies: list[Copy], audits: list[Any], letters: list[str]
    ) -> None:
        if not letters:
            self.report.note(
                "lost", f"{label}: must be dead-lettered ({expected.dlq_reason}), not in the DLQ"
            )
        elif len(letters) > 1:
            self.report.note("duplicated", f"{label}: {len(letters)} dead letters", len(letters) - 1)
        if letters and letters[0] != expected.dlq_reason:
            self.report.note("misrouted", f"{label}: DLQ reason {letters[0]}, expected {expected.dlq_reason}")
        for copy in copies:
            self.report.note("misrouted", f"{label}: must be dead-lettered, yet in {copy.agency}'s inbox")
        if audits:
            self.report.note("misrouted", f"{label}: must be dead-lettered, yet audited as routed")

    def check_copies(self, label: str, expected: Expected, copies: list[Copy]) -> None:
        by_agency: dict[str, list[Copy]] = defaultdict(list)
        for copy in copies:
            by_agency[copy.agency].append(copy)
        for agency, want in expected.copies.items():
            got = by_agency.get(agency, [])
            if not got:
                self.report.note("lost", f"{label}: missing from {agency}'s inbox")
                continue
            if len(got) > 1:
                self.report.note(
                    "duplicated", f"{label}: {len(got)} copies in {agency}'s inbox", len(got) - 1
                )
            copy = got[0]
            if copy.rule_id != want.rule_id:
                self.report.note(
                    "misrouted", f"{label}: {agency} got it under {copy.rule_id}, not {want.rule_id}"
                )
            if copy.redacted != want.redacted:
                self.report.note(
                    "misrouted",
                    f"{label}: {agency}'s copy says redacted {sorted(copy.redacted)}, "
                    f"expected {sorted(want.redacted)}",
                )
            leaked = copy.personal_present & frozenset(self.policy.withheld_fields(agency))
            if leaked:
                self.report.note("misrouted", f"{label}: {agency}'s copy carries {sorted(leaked)} (no grant)")
        for agency in sorted(set(by_agency) - set(expected.copies)):
            self.report.note("misrouted", f"{label}: in {agency}'s inbox, where it must not be")

    def check_stores(self, label: str, event_id: str, event_type: str, expected: Expected) -> None:
        stored = self.observed.standing_office
        if (
            stored is not None
            and Agency.MARKET_SURVEILLANCE.value in expected.copies
            and event_id not in stored
        ):
            self.report.note("lost", f"{label}: not in the standing office's store")
        if event_type != "domain_block_request" or Agency.ICT.value not in expected.copies:
            return
        answers = {r.event_id for r in self.results_by_request.get(event_id, [])}
        if not answers:
            self.report.note("lost", f"{label}: the ICT service never answered it")
        elif len(answers) > 1:
            self.report.note("duplicated", f"{label}: {len(answers)} ICT results", len(answers) - 1)
        copies = len(self.results_by_request.get(event_id, []))
        if copies > len(answers):
            self.report.note(
                "duplicated", f"{label}: its ICT result twice in the ict outbox", copies - len(answers)
            )
        requests = self.observed.ict_requests
        if requests is not None and event_id not in requests:
            self.report.note("lost", f"{label}: not in the ICT department's store")

    def check_unknown(self) -> None:
        o = self.observed
        for event_id in sorted(set(o.copies) | set(o.audits) | set(o.dead_letters) | set(o.notices)):
            if event_id not in self.accounted:
                self.report.note("misrouted", f"{event_id}: on the bus, but nobody published it")
        for position in o.undecodable:
            self.report.note("misrouted", f"{position}: a record the checker cannot read")


def compare(history: History, observed: Observed, policy: PolicyModel) -> CheckReport:
    """Compare the history with what was observed; pure (no I/O)."""
    return _Comparison(history, observed, policy).run()


# --- reading the bus and the stores --------------------------------------------------------------------


def read_topic(settings: Settings, topic: str, *, timeout_s: float = 60.0) -> list[Any]:
    """Every committed record of ``topic``: assign all partitions, read from the beginning to the end
    offsets taken at the start (the last stable offsets: ``read_committed``). No consumer group.

    A retriable broker error (a broker just restarted, a leader moving) starts the read again with a
    new consumer until ``timeout_s`` is spent.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return _read_topic_once(settings, topic, deadline)
        except BrokerError as exc:
            if not exc.retriable or time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def _read_topic_once(settings: Settings, topic: str, deadline: float) -> list[Any]:
    return list(
        scan_topic(settings, topic, timeout_s=max(0.0, deadline - time.monotonic()), max_poll_records=2000)
    )


def _header(record: Any, name: str) -> str | None:
    for key, value in record.headers or []:
        if key == name and value is not None:
            return bytes(value).decode("utf-8", errors="replace")
    return None


def _position(record: Any) -> str:
    return f"{record.topic}/{record.partition}/{record.offset}"


def sqlite_file(url: str, *, setting: str) -> Path:
    """The file of a SQLite store URL (:mod:`bus389.store_url`); the checker reads SQLite stores only."""
    return Path(parse_store_url(url, setting=setting, kinds=("sqlite",)).path)


def _query_ids(url: str, setting: str, sql: str) -> set[str]:
    path = sqlite_file(url, setting=setting)
    if not path.exists():
        return set()
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            return {str(row[0]) for row in connection.execute(sql)}
        finally:
            connection.close()
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read {path}: {exc}") from exc


def standing_office_ids(url: str) -> set[str]:
    """Event ids in the standing office's store (its ``so_events`` table)."""
    return _query_ids(url, "BUS389_STORE__STANDING_OFFICE_URL", "SELECT event_id FROM so_events")


def ict_request_ids(url: str) -> set[str]:
    """Request ids in the ICT department's store (its ``requests`` table)."""
    return _query_ids(url, "BUS389_STORE__ICT_URL", "SELECT event_id FROM requests")


def observe(
    settings: Settings,
    policy: PolicyModel,
    *,
    standing_office_url: str | None = None,
    ict_url: str | None = None,
    timeout_s: float = 60.0,
) -> Observed:
    """Read every inbox, the audit topic, the DLQ and the ict outbox, and the stores given."""
    from bus389.codec import decode_event, decode_value

    topics = settings.topics
    found = Observed()
    for agency in Agency:
        for record in read_topic(settings, topics.inbox(agency), timeout_s=timeout_s):
            try:
                decoded = decode_event(record.value, record.headers or [])
            except CodecError:
                found.undecodable.append(_position(record))
                continue
            if decoded.event_type == "routing_notice":
                about = decoded.record.get("about_event_id")
                kind = str(decoded.record.get("notice"))
                found.notices[str(about) if about else f"<undecodable at {_position(record)}>"].append(
                    (agency.value, kind)
                )
                continue
            redacted = _header(record, "bus389_redacted") or ""
            present = frozenset(
                path
                for path in policy.personal_fields
                if any(v is not None for v in values_at(decoded.record, path))
            )
            found.copies[decoded.event_id].append(
                Copy(
                    agency=agency.value,
                    rule_id=_header(record, "bus389_rule") or "",
                    redacted=frozenset(p for p in redacted.split(",") if p),
                    personal_present=present,
                    position=_position(record),
                )
            )
    for record in read_topic(settings, topics.audit, timeout_s=timeout_s):
        try:
            audit = decode_value(record.value).record
            recipients = frozenset(str(d["recipient"]) for d in audit["deliveries"])
            found.audits[str(audit["event_id"])].append(recipients)
        except (CodecError, KeyError, TypeError):
            found.undecodable.append(_position(record))
    for record in read_topic(settings, topics.dlq, timeout_s=timeout_s):
        event_id = _header(record, "ce_id") or f"<no ce_id at {_position(record)}>"
        found.dead_letters[event_id].append(_header(record, "bus389_dlq_reason") or "")
    for record in read_topic(settings, topics.outbox(Agency.ICT), timeout_s=timeout_s):
        try:
            decoded = decode_event(record.value, record.headers or [])
        except CodecError:
            found.undecodable.append(_position(record))
            continue
        if decoded.event_type == "domain_block_result":
            reply = decoded.meta.get("in_reply_to")
            found.results.append(Result(decoded.event_id, str(reply or ""), json_form(decoded.record)))
    if standing_office_url:
        found.standing_office = standing_office_ids(standing_office_url)
    if ict_url:
        found.ict_requests = ict_request_ids(ict_url)
    return found


def check(
    settings: Settings,
    history: History,
    policy: PolicyModel,
    *,
    standing_office_url: str | None = None,
    ict_url: str | None = None,
) -> CheckReport:
    """:func:`observe`, then :func:`compare`."""
    observed = observe(settings, policy, standing_office_url=standing_office_url, ict_url=ict_url)
    return compare(history, observed, policy)


def check_until_settled(
    settings: Settings,
    history: History,
    policy: PolicyModel,
    *,
    timeout_s: float,
    standing_office_url: str | None = None,
    ict_url: str | None = None,
    interval_s: float = 3.0,
    progress: Callable[..., None] | None = None,
) -> CheckReport:
    """Check again and again until nothing is missing (only losses can heal: events still in flight),
    or ``timeout_s`` passed; return the last report. A broker error only postpones the next try."""
    deadline = time.monotonic() + timeout_s
    last: CheckReport | None = None
    while True:
        try:
            last = check(settings, history, policy, standing_office_url=standing_office_url, ict_url=ict_url)
            if progress is not None:
                progress(last)
            if last.lost == 0:
                return last
        except BusError as exc:
            if not exc.retriable or time.monotonic() > deadline:
                raise
            if progress is not None:
                progress(None, exc)
        if time.monotonic() > deadline:
            if last is None:
                raise BrokerError(
                    f"the checker could not read the bus within {timeout_s:.0f}s", retriable=True
                )
            return last
        time.sleep(interval_s)
