"""The ICT department's decisions on domain-block requests: screen, approve, reject, unblock, expire.

Every function here runs in one store transaction, and every decision it takes writes, in that same
transaction, exactly one ``domain_block_result`` into the store's outbox (:mod:`bus389.consumers.ict.service`
publishes it). A decision is identified by (request, kind), so taking it twice is a no-op and its
result event id (UUIDv5 of the pair) is the same however often it is sent.

The life of a request:

- **received** (:meth:`Decider.ingest`, idempotent by event id): its items are screened
  (:mod:`bus389.consumers.ict.screening`). A request whose action is ``UNKNOWN``, that names nothing, whose
  ``expires_at`` has already passed, or whose every item is refused is **rejected** at once (result
  ``REJECTED`` with the reasons). Otherwise it is **pending**, unless its sender is in
  ``settings.ict.auto_approve_senders`` (then approved at once).
- **approved** (:meth:`Decider.approve`): its accepted items are blocked; result ``BLOCKED``, or
  ``PARTIAL`` when screening refused some items (named with their reasons in ``not_blocked`` and the
  note). ``REVOKE_VN_DOMAIN`` and ``SUSPEND_LICENCE`` requests block their domains as well (the
  revocation and the suspension themselves follow the ICT department's own procedure; the block keeps
  the site unreachable meanwhile); a revocation can only name ``.vn`` domains.
- **rejected** (:meth:`Decider.reject`): result ``REJECTED`` with the operator's reason.
- **expired** (:meth:`Decider.expire_due`): when ``expires_at`` passes, the blocks are lifted and the
  request is answered ``EXPIRED`` (``blocked`` lists what was lifted). A request still pending at
  ``expires_at`` is answered ``EXPIRED`` with nothing blocked.
- **unblocked**: an ``UNBLOCK`` request lifts the active blocks of the items it names (exact names:
  unblocking ``a.example.vn`` does not lift a block of ``example.vn``). It applies at once when its
  sender is the requester of every block it would lift (an agency withdrawing its own request) or is
  auto-approved; otherwise it waits for the operator like any request. The ``UNBLOCK`` request is
  answered ``UNBLOCKED`` (``blocked`` lists what was lifted; ``REJECTED`` when nothing it names is
  blocked), and every request whose blocks it lifted is answered ``UNBLOCKED`` too, so the requester
  and the standing office see its block end.

In results, ``blocked`` lists the items the decision acted on (normalised, as the blocklist writes
them) and ``not_blocked`` the request's other items (as the requester wrote them).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bus389.consumers.ict._results import build_result
from bus389.consumers.ict.screening import ScreenResult, screen_targets
from bus389.consumers.ict.store import (
    IctStore,
    RequestFields,
    RequestKey,
    RequestRow,
    RequestState,
    TargetRow,
    TargetState,
)
from bus389.errors import InputError
from bus389.settings import Settings

__all__ = [
    "AUTO_ACTOR",
    "SCREENING_ACTOR",
    "BlockRequest",
    "Decider",
    "DecisionKind",
    "Ingested",
    "Outcome",
    "epoch_ms",
]

SCREENING_ACTOR = "screening"
AUTO_ACTOR = "auto-approve"
EXPIRY_ACTOR = "expiry"

_BLOCKING_ACTIONS = ("BLOCK", "REVOKE_VN_DOMAIN", "SUSPEND_LICENCE")
_ITEM_FIELDS = ("domains", "urls", "ip_addresses")
"""The request's item lists, in the order the store has always kept them in ``items``."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Outcome:
    """The ``BlockOutcome`` symbols a result carries."""

    BLOCKED = "BLOCKED"
    PARTIAL = "PARTIAL"
    REJECTED = "REJECTED"
    UNBLOCKED = "UNBLOCKED"
    EXPIRED = "EXPIRED"


class DecisionKind:
    """What a decision did; with the request (id and requester) it names the decision and its result's id."""

    BLOCKED = "blocked"
    REJECTED = "rejected"
    EXPIRED = "expired"
    UNBLOCKED = "unblocked"

    @staticmethod
    def lifted_by(unblock: RequestKey) -> str:
        """Lifted by the UNBLOCK request ``unblock``: its id and requester (two agencies' UNBLOCK
        requests under one id are two decisions)."""
        return f"unblocked:{unblock[0]}:{unblock[1]}"


def epoch_ms(value: datetime | int | None) -> int | None:
    """Epoch milliseconds of an Avro-decoded instant (an aware datetime, or already an int)."""
    if value is None:
        return None
    if isinstance(value, int):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // timedelta(milliseconds=1)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class BlockRequest(RequestFields):
    """A ``domain_block_request`` as the ICT service reads it (from the decoded Avro record).

    Its fields are the stored request's (:class:`RequestFields`): one list, declared with the store.
    """

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> BlockRequest:
        """From a decoded record (meta + fields); the codec has checked the types already."""
        meta = record["meta"]
        occurred_at = epoch_ms(meta["occurred_at"])
        published_at = epoch_ms(meta["published_at"])
        assert occurred_at is not None and published_at is not None  # noqa: S101 - required by the schema
        return cls(
            event_id=str(meta["event_id"]).lower(),
            requester=str(meta["source"]),
            action=str(record.get("action") or "UNKNOWN"),
            reason=str(record.get("reason") or ""),
            legal_basis=str(record.get("legal_basis") or ""),
            case_ref=meta.get("case_ref"),
            sensitivity=str(meta.get("sensitivity") or "RED"),
            urgency=str(meta.get("urgency") or "ROUTINE"),
            violation_kinds=tuple(str(v) for v in record.get("violation_kinds") or ()),
            items={name: [str(v) for v in record.get(name) or ()] for name in _ITEM_FIELDS},
            occurred_at=occurred_at,
            published_at=published_at,
            expires_at=epoch_ms(record.get("expires_at")),
        )


@dataclass(frozen=True)
class Ingested:
    """What :meth:`Decider.ingest` did with one request."""

    request_id: str
    duplicate: bool
    state: str
    """The request's state after ingest (for a duplicate: its stored state)."""
    outcome: str | None
    """The outcome of a decision taken at once (rejected by screening, auto-approved), else None."""


class Decider:
    """The decisions, bound to a store and the ICT settings; ``clock`` returns epoch milliseconds."""

    def __init__(
        self, store: IctStore, settings: Settings, *, clock: Callable[[], int] = _wall_clock_ms
    ) -> None:
        self.store = store
        self.never_block = tuple(settings.ict.never_block)
        self.auto_approve = frozenset(a.value for a in settings.ict.auto_approve_senders)
        self.providers = tuple(settings.ict.providers)
        self.clock = clock

    # --- finding requests ------------------------------------------------------------------------------

    def resolve(self, id_or_prefix: str, requester: str | None = None) -> RequestRow:
        """The request an operator means by a full event id or its first characters (at least 4).

        A request is its id and its requester: when two agencies sent requests under the ids it
        matches, ``requester`` says which (the CLI's ``--from``); without it, that is an error naming them.
        """
        wanted = id_or_prefix.strip().lower()
        found = self.store.requests_with_id(wanted)
        if not found:
            if len(wanted) < 4:
                raise InputError(
                    f"no request {id_or_prefix!r} (give at least the first 4 characters of its id)"
                )
            found = self.store.find_requests(wanted)
        if requester is not None:
            found = [r for r in found if r.requester == requester]
        if not found:
            sender = f" from {requester}" if requester is not None else ""
            raise InputError(
                f"no request{sender} with an id starting {id_or_prefix!r} (see `bus389 ict pending`)"
            )
        if len({r.event_id for r in found}) > 1:
            ids = ", ".join(dict.fromkeys(r.event_id for r in found))
            raise InputError(f"{id_or_prefix!r} matches several requests ({ids}): give more characters")
        if len(found) > 1:
            senders = ", ".join(r.requester for r in found)
            raise InputError(
                f"request {found[0].event_id} was sent by several agencies ({senders}): "
                "say which with --from AGENCY"
            )
        return found[0]

    # --- receiving --------------------------------------------------------------------------------------

    def ingest(self, request: BlockRequest, *, origin: str) -> Ingested:
        """Store one request and take the decisions due at once; a replayed event id changes nothing."""
        now = self.clock()
        with self.store.transaction():
            row = RequestRow.received(request, origin=origin, received_at=now)
            if not self.store.insert_request(row):
                stored = self.store.request(request.key)
                return Ingested(request.event_id, True, stored.state if stored else row.state, None)
            screened = screen_targets(
                domains=request.domains,
                urls=request.urls,
                ip_addresses=request.ip_addresses,
                never_block=self.never_block,
                vn_domains_only=request.action == "REVOKE_VN_DOMAIN",
            )
            for position, target in enumerate(screened.accepted):
                self.store.insert_target(
                    row.key, position, target.kind.value, target.value, TargetState.ACCEPTED, now
                )
            for position, refusal in enumerate(screened.refused):
                self.store.insert_refusal(row.key, position, refusal.item, refusal.reason)

            problem = self._request_problem(request, screened, now)
            if problem is not None:
                self._reject(row, actor=SCREENING_ACTOR, note=problem, now=now)
                return Ingested(row.event_id, False, RequestState.REJECTED, Outcome.REJECTED)
            if request.action == "UNBLOCK":
                if request.requester in self.auto_approve or self._withdraws_own(row):
                    outcome = self._apply_unblock(row, actor=AUTO_ACTOR, note=None, now=now)
                    return Ingested(row.event_id, False, self._state(row.key), outcome)
                return Ingested(row.event_id, False, RequestState.PENDING, None)
            if request.requester in self.auto_approve:
                note = f"approved automatically: {request.requester} is an auto-approved sender"
                outcome = self._approve_block(row, actor=AUTO_ACTOR, note=note, now=now)
                return Ingested(row.event_id, False, RequestState.APPROVED, outcome)
            return Ingested(row.event_id, False, RequestState.PENDING, None)

    def _state(self, request: RequestKey) -> str:
        stored = self.store.request(request)
        return stored.state if stored else RequestState.PENDING

    @staticmethod
    def _request_problem(request: BlockRequest, screened: ScreenResult, now: int) -> str | None:
        if request.action not in (*_BLOCKING_ACTIONS, "UNBLOCK"):
            return f"unknown action {request.action!r}: nothing can be done"
        if not (request.domains or request.urls or request.ip_addresses):
            return "the request names no domain, URL or IP address"
        if request.expires_at is not None and request.expires_at <= now:
            return f"expires_at ({_iso(request.expires_at)}) is already past"
        if not screened.accepted:
            reasons = "; ".join(str(r) for r in screened.refused)
            return f"nothing in the request can be acted on: {reasons}"
        return None

    # --- the operator ---------------------------------------------------------------------------------

    def approve(
        self, id_or_prefix: str, *, actor: str, note: str | None = None, requester: str | None = None
    ) -> tuple[RequestRow, str]:
        """Approve a pending request (block, or for an UNBLOCK request, lift); returns it and the outcome.

        ``requester`` picks the request when several agencies sent one under the id (see :meth:`resolve`).
        """
        now = self.clock()
        with self.store.transaction():
            row = self._pending(id_or_prefix, "approve", requester)
            if row.expires_at is not None and row.expires_at <= now:
                raise InputError(
                    f"request {row.event_id} expired at {_iso(row.expires_at)}; "
                    "the service answers it EXPIRED"
                )
            if row.action == "UNBLOCK":
                outcome = self._apply_unblock(row, actor=actor, note=note, now=now)
            else:
                outcome = self._approve_block(row, actor=actor, note=note, now=now)
            return self.store.request(row.key) or row, outcome

    def reject(
        self, id_or_prefix: str, *, actor: str, reason: str, requester: str | None = None
    ) -> RequestRow:
        """Reject a pending request with the operator's reason (sent to the requester)."""
        if not reason.strip():
            raise InputError("a rejection needs a reason (--reason): the requester is told it")
        now = self.clock()
        with self.store.transaction():
            row = self._pending(id_or_prefix, "reject", requester)
            self._reject(row, actor=actor, note=reason.strip(), now=now)
            return self.store.request(row.key) or row

    def _pending(self, id_or_prefix: str, verb: str, requester: str | None) -> RequestRow:
        row = self.resolve(id_or_prefix, requester)
        if row.state != RequestState.PENDING:
            raise InputError(
                f"cannot {verb} request {row.event_id}: it is {row.state}"
                + (f" (decided by {row.decided_by})" if row.decided_by else "")
            )
        return row

    # --- the service's idle pass ----------------------------------------------------------------------

    def expire_due(self) -> list[str]:
        """Lift the blocks whose ``expires_at`` passed (and expire pending requests); returns their ids."""
        now = self.clock()
        done: list[str] = []
        with self.store.transaction():
            for row in self.store.due_to_expire(now):
                targets = self.store.targets(row.key)
                lifted = [t.value for t in targets if t.state == TargetState.BLOCKED]
                was_pending = row.state == RequestState.PENDING
                self.store.set_targets_state(
                    row.key, (TargetState.BLOCKED, TargetState.ACCEPTED), TargetState.EXPIRED, now
                )
                seq = self.store.bump_blocklist_seq() if lifted else self.store.counter("blocklist_seq")
                assert row.expires_at is not None  # noqa: S101 - selected on it
                if was_pending:
                    note = f"expired at {_iso(row.expires_at)} before a decision: nothing was blocked"
                else:
                    note = f"block lapsed at {_iso(row.expires_at)} (expires_at) and was lifted"
                self.store.set_request_state(
                    row.key, RequestState.EXPIRED, decided_at=now, decided_by=EXPIRY_ACTOR, note=note
                )
                self._result(
                    row,
                    kind=DecisionKind.EXPIRED,
                    outcome=Outcome.EXPIRED,
                    blocked=lifted,
                    not_blocked=self._other_items(row, targets, lifted),
                    note=note,
                    actor=EXPIRY_ACTOR,
                    now=now,
                    needs_seq=seq,
                    notify=bool(lifted),
                )
                done.append(row.event_id)
        return done

    # --- the decisions themselves (inside a transaction) ----------------------------------------------

    def _approve_block(self, row: RequestRow, *, actor: str, note: str | None, now: int) -> str:
        self.store.set_targets_state(row.key, (TargetState.ACCEPTED,), TargetState.BLOCKED, now)
        targets = self.store.targets(row.key)
        blocked = [t.value for t in targets if t.state == TargetState.BLOCKED]
        refusals = self.store.refusals(row.key)
        seq = self.store.bump_blocklist_seq()
        outcome = Outcome.PARTIAL if refusals else Outcome.BLOCKED
        parts = []
        if refusals:
            parts.append("not blocked: " + "; ".join(f"{item} ({reason})" for item, reason in refusals))
        if row.expires_at is not None:
            parts.append(f"the block lapses at {_iso(row.expires_at)}")
        if note:
            parts.append(note)
        full_note = ". ".join(parts) or None
        self.store.set_request_state(
            row.key, RequestState.APPROVED, decided_at=now, decided_by=actor, note=note
        )
        self._result(
            row,
            kind=DecisionKind.BLOCKED,
            outcome=outcome,
            blocked=blocked,
            not_blocked=[item for item, _ in refusals],
            note=full_note,
            actor=actor,
            now=now,
            needs_seq=seq,
            notify=True,
        )
        return outcome

    def _reject(self, row: RequestRow, *, actor: str, note: str, now: int) -> None:
        self.store.set_targets_state(row.key, (TargetState.ACCEPTED,), TargetState.REJECTED, now)
        self.store.set_request_state(
            row.key, RequestState.REJECTED, decided_at=now, decided_by=actor, note=note
        )
        self._result(
            row,
            kind=DecisionKind.REJECTED,
            outcome=Outcome.REJECTED,
            blocked=[],
            not_blocked=row.all_items,
            note=note,
            actor=actor,
            now=now,
            needs_seq=self.store.counter("blocklist_seq"),
            notify=False,
        )

    def _withdraws_own(self, row: RequestRow) -> bool:
        """True when every block the UNBLOCK request would lift was asked for by its own sender."""
        for target in self.store.targets(row.key):
            for blocking in self.store.blocking_targets(target.kind, target.value):
                owner = self.store.request(blocking.request_key)
                if owner is None or owner.requester != row.requester:
                    return False
        return True

    def _apply_unblock(self, row: RequestRow, *, actor: str, note: str | None, now: int) -> str:
        targets = self.store.targets(row.key)
        lifted_by_request: dict[RequestKey, list[TargetRow]] = {}
        lifted_values: list[str] = []
        for target in targets:
            blocking = self.store.blocking_targets(target.kind, target.value)
            for b in blocking:
                self.store.set_target_state(
                    b.request_key, b.kind, b.value, TargetState.LIFTED, now, lifted_by=row.event_id
                )
                lifted_by_request.setdefault(b.request_key, []).append(b)
            if blocking:
                lifted_values.append(target.value)
        self.store.set_targets_state(row.key, (TargetState.ACCEPTED,), TargetState.DONE, now)
        seq = self.store.bump_blocklist_seq() if lifted_values else self.store.counter("blocklist_seq")
        source = f"unblock request {row.event_id} from {row.requester} ({row.legal_basis})"
        for blocked, lifted in sorted(lifted_by_request.items()):
            blocked_row = self.store.request(blocked)
            if blocked_row is None:  # pragma: no cover - targets reference requests
                continue
            remaining = [t for t in self.store.targets(blocked) if t.state == TargetState.BLOCKED]
            lifted_here = [t.value for t in lifted]
            lift_note = f"lifted by {source}" + (f": {note}" if note else "")
            if not remaining:
                self.store.set_request_state(
                    blocked, RequestState.UNBLOCKED, decided_at=now, decided_by=actor, note=lift_note
                )
            self._result(
                blocked_row,
                kind=DecisionKind.lifted_by(row.key),
                outcome=Outcome.UNBLOCKED,
                blocked=lifted_here,
                not_blocked=self._other_items(blocked_row, self.store.targets(blocked), lifted_here),
                note=lift_note,
                actor=actor,
                now=now,
                needs_seq=seq,
                notify=True,
            )
        not_lifted = [t.value for t in targets if t.value not in lifted_values]
        refused = [item for item, _ in self.store.refusals(row.key)]
        parts = []
        if not_lifted:
            parts.append("not blocked, nothing to lift: " + ", ".join(not_lifted))
        if refused:
            parts.append(
                "refused: " + "; ".join(f"{item} ({reason})" for item, reason in self.store.refusals(row.key))
            )
        if note:
            parts.append(note)
        full_note = ". ".join(parts) or None
        if lifted_values:
            self.store.set_request_state(
                row.key, RequestState.APPROVED, decided_at=now, decided_by=actor, note=note
            )
            self._result(
                row,
                kind=DecisionKind.UNBLOCKED,
                outcome=Outcome.UNBLOCKED,
                blocked=lifted_values,
                not_blocked=[*not_lifted, *refused],
                note=full_note,
                actor=actor,
                now=now,
                needs_seq=seq,
                notify=True,
            )
            return Outcome.UNBLOCKED
        self._reject(row, actor=actor, note=full_note or "nothing to unblock", now=now)
        return Outcome.REJECTED

    def _other_items(
        self, row: RequestRow, targets: Sequence[TargetRow], acted_on: Iterable[str]
    ) -> list[str]:
        acted = set(acted_on)
        others = [t.value for t in targets if t.value not in acted]
        return [*others, *(item for item, _ in self.store.refusals(row.key))]

    def _result(
        self,
        row: RequestRow,
        *,
        kind: str,
        outcome: str,
        blocked: Sequence[str],
        not_blocked: Sequence[str],
        note: str | None,
        actor: str,
        now: int,
        needs_seq: int,
        notify: bool,
    ) -> None:
        if not self.store.insert_decision(row.key, kind, outcome, now, actor, note):
            return
        built = build_result(
            row,
            decision_kind=kind,
            outcome=outcome,
            blocked=blocked,
            not_blocked=not_blocked,
            decided_at=now,
            providers=self.providers if notify else (),
            note=note,
        )
        self.store.insert_outbox(
            event_id=built.event_id,
            request=row,
            decision_kind=kind,
            outcome=outcome,
            needs_seq=needs_seq,
            created_at=now,
            key=built.key,
            value=built.value,
            headers=built.headers,
            record=built.record_json,
        )
