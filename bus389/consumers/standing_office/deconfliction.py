"""Deconfliction (plan I.2, "tránh hiện tượng chồng chéo"): a second claim on one seller, flagged at once.

The standing office receives every ``case_claim`` (rule ``case_claim.market_surveillance``). When a
claim shares a tax code, a domain, a seller account or a phone (the correlation's keys, normalised by
:mod:`bus389.consumers.standing_office.correlation`) with an earlier claim by another agency, the
standing office publishes, through its own outbox, a ``directive`` of kind ``DECONFLICT`` addressed to
both claimants, citing I.2, so that they agree on who leads now, not six months later.

The directive's event id is derived from the two claims' ids, so a replay (the inbox loop retrying
after a crash) publishes the same id again: the router delivers it once (a duplicate, not a dead
letter). A seller's name alone is not enough (two shops may share a name); a national id is personal
data the directive must not repeat and is covered by the phone and tax code in practice.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bus389.agencies import STANDING_OFFICE, Agency
from bus389.consumers.standing_office.correlation import CorrelationKey
from bus389.events import Event, build_event

__all__ = [
    "CLAIM_TYPE",
    "CONFLICT_KINDS",
    "DECONFLICT_ANSWER_WITHIN",
    "Conflict",
    "deconflict_directive",
    "find_conflicts",
]

CLAIM_TYPE = "case_claim"
CONFLICT_KINDS: tuple[str, ...] = ("tax_code", "domain", "account", "phone")
"""The identifiers that make two claims one seller (the issue: tax code, domain, account, phone)."""

DECONFLICT_ANSWER_WITHIN = timedelta(days=3)
"""The plan sets no deadline; three days: the claimants agree on a lead before either acts twice."""

_NAMESPACE = uuid.UUID("6f1c1f0e-3c1b-4a53-9f1e-389000000001")
_LEVELS = ("CLEAR", "GREEN", "AMBER", "AMBER_STRICT", "RED")


@dataclass(frozen=True)
class Conflict:
    """An earlier claim by another agency that shares ``shared`` keys with the new claim."""

    earlier_id: str
    earlier_source: str
    earlier_sensitivity: str
    earlier_case_ref: str | None
    shared: tuple[CorrelationKey, ...]


def _conflict_keys(keys: Iterable[CorrelationKey]) -> set[tuple[str, str]]:
    return {(k.kind, k.value) for k in keys if k.kind in CONFLICT_KINDS}


def find_conflicts(
    new_source: str,
    new_keys: Sequence[CorrelationKey],
    earlier: Iterable[tuple[Any, Sequence[CorrelationKey]]],
) -> list[Conflict]:
    """The earlier claims (stored event, its keys) by another agency sharing a conflict key with the new one.

    ``earlier`` items are the standing office's stored events (anything with ``event_id``, ``source``,
    ``sensitivity`` and ``case_ref``); a claim of the same agency again is not a conflict.
    """
    wanted = _conflict_keys(new_keys)
    found: list[Conflict] = []
    for event, keys in earlier:
        if event.source == new_source:
            continue
        shared = tuple(sorted(k for k in keys if (k.kind, k.value) in wanted))
        if shared:
            found.append(
                Conflict(
                    earlier_id=str(event.event_id),
                    earlier_source=str(event.source),
                    earlier_sensitivity=str(event.sensitivity),
                    earlier_case_ref=event.case_ref,
                    shared=shared,
                )
            )
    return found


def _describe(key: CorrelationKey) -> str:
    # The phone is personal data: say that it matches, never what it is.
    names = {"tax_code": "mã số thuế", "domain": "tên miền", "account": "tài khoản", "phone": "số điện thoại"}
    return names[key.kind] if key.kind == "phone" else f"{names[key.kind]} {key.label}"


def _stricter(a: str, b: str) -> str:
    rank = {level: i for i, level in enumerate(_LEVELS)}
    level = max(a, b, "AMBER", key=lambda x: rank.get(x, len(_LEVELS)))
    return level if level in rank else "RED"


def deconflict_directive(claim: Mapping[str, Any], conflict: Conflict, *, now: datetime) -> Event:
    """The ``DECONFLICT`` directive from the standing office to both claimants of one seller."""
    meta = claim["meta"]
    new_id, new_source = str(meta["event_id"]), str(meta["source"])
    first, second = sorted((conflict.earlier_id, new_id))
    claimants = sorted({Agency(conflict.earlier_source), Agency(new_source)}, key=lambda a: a.value)
    shared = ", ".join(_describe(k) for k in conflict.shared)
    data = {
        "meta": {
            "sensitivity": _stricter(str(meta.get("sensitivity") or "RED"), conflict.earlier_sensitivity),
            "urgency": "PRIORITY",
            "case_ref": meta.get("case_ref") or conflict.earlier_case_ref,
            "recipients": [a.value for a in claimants],
        },
        "kind": "DECONFLICT",
        "subject": (
            f"{conflict.earlier_source} và {new_source} cùng nhận chủ trì một đối tượng ({shared}): "
            "thống nhất đơn vị chủ trì, tránh chồng chéo."
        ),
        "plan_section": "I.2",
        "due_at": now + DECONFLICT_ANSWER_WITHIN,
        "about_event_ids": [first, second],
    }
    event_id = str(uuid.uuid5(_NAMESPACE, f"deconflict:{first}:{second}"))
    return build_event("directive", STANDING_OFFICE, data, now=now, event_id=event_id)
