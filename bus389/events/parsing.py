"""Turning input into events: the registry of models, parsing, ``build_event`` and readable problems."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from bus389.agencies import Agency
from bus389.errors import UnknownEventTypeError
from bus389.events._rules import to_utc_millis
from bus389.events.blocking import DomainBlockRequest, DomainBlockResult
from bus389.events.cases import CaseOutcome, CaseReferral, Complaint
from bus389.events.coordination import CaseClaim, Directive
from bus389.events.inspections import InspectionResult
from bus389.events.meta import Event
from bus389.events.notices import RoutingNotice
from bus389.events.reports import CompiledReport, LawGapProposal, PeriodicReport
from bus389.events.sellers import SuspectSeller, TaxDiscrepancy

__all__ = [
    "EVENT_MODELS",
    "USER_META_FIELDS",
    "build_event",
    "event_from_avro",
    "model_for",
    "parse_event",
    "validation_problems",
]

EVENT_MODELS: dict[str, type[Event]] = {
    model.EVENT_TYPE: model
    for model in (
        SuspectSeller,
        DomainBlockRequest,
        TaxDiscrepancy,
        DomainBlockResult,
        Complaint,
        CaseReferral,
        CaseOutcome,
        PeriodicReport,
        LawGapProposal,
        RoutingNotice,
        Directive,
        CaseClaim,
        InspectionResult,
        CompiledReport,
    )
}
"""Every event type's model, by event type code."""

USER_META_FIELDS = ("occurred_at", "case_ref", "in_reply_to", "sensitivity", "urgency", "recipients")
"""The ``meta`` fields a publisher may set; the bus fills the rest."""
_CONSISTENT_META_FIELDS = ("event_id", "event_type", "source")


def model_for(event_type: str) -> type[Event]:
    """The model of ``event_type``; :class:`UnknownEventTypeError` names the known types otherwise."""
    try:
        return EVENT_MODELS[event_type]
    except (KeyError, TypeError):
        known = ", ".join(sorted(EVENT_MODELS))
        raise UnknownEventTypeError(f"unknown event type {event_type!r} (known: {known})") from None


def parse_event(event_type: str, data: Mapping[str, Any]) -> Event:
    """Validate a complete event (``meta`` included) of ``event_type``.

    Raises pydantic's ``ValidationError`` (see :func:`validation_problems`) or
    :class:`UnknownEventTypeError`.
    """
    return model_for(event_type).validate_nfc(data)


def event_from_avro(record: Mapping[str, Any]) -> Event:
    """The event model of a decoded record, chosen by its ``meta.event_type``."""
    meta = record.get("meta")
    event_type = meta.get("event_type") if isinstance(meta, Mapping) else None
    return model_for(str(event_type)).from_avro(record)


def _meta_error(loc: tuple[str | int, ...], kind: str, message: str, value: Any) -> InitErrorDetails:
    return {
        "type": PydanticCustomError(kind, message.replace("{", "{{").replace("}", "}}")),
        "loc": loc,
        "input": value,
    }


def build_event(
    event_type: str,
    source: Agency | str,
    data: Mapping[str, Any],
    *,
    now: datetime | None = None,
    event_id: str | None = None,
) -> Event:
    """The event a publisher means: ``data`` is the event's own fields plus an optional partial ``meta``.

    ``meta`` may set ``occurred_at`` (default: now), ``case_ref``, ``in_reply_to``, ``sensitivity``
    (default RED) and ``urgency`` (default ROUTINE). The bus fills ``event_id`` (a new uuid4 unless
    ``event_id`` or ``meta.event_id`` gives one), ``event_type``, ``source`` and ``published_at`` (now).
    A ``meta.source``, ``meta.event_type`` or ``meta.event_id`` that contradicts them, and any other
    ``meta`` field, is an error. Raises pydantic's ``ValidationError`` naming every problem at once, or
    :class:`UnknownEventTypeError` / :class:`InputError` for an unknown type or agency.
    """
    model = model_for(event_type)
    agency = Agency.parse(source)
    if not isinstance(data, Mapping):
        return model.model_validate(data)  # pydantic explains what it wanted
    fields = dict(data)
    given: Any = fields.pop("meta", None) or {}
    problems: list[InitErrorDetails] = []
    if not isinstance(given, Mapping):
        problems.append(_meta_error(("meta",), "meta_type", "meta must be an object", given))
        given = {}
    expected: dict[str, Any] = {"event_type": event_type, "source": agency.value}
    if event_id is not None:
        expected["event_id"] = event_id
    for name, value in given.items():
        if name in USER_META_FIELDS:
            continue
        if name in _CONSISTENT_META_FIELDS:
            if name in expected and str(getattr(value, "value", value)) != expected[name]:
                problems.append(
                    _meta_error(
                        ("meta", name),
                        "meta_contradiction",
                        f"{value!r} contradicts the publisher's {expected[name]!r}",
                        value,
                    )
                )
            continue
        problems.append(
            _meta_error(
                ("meta", str(name)),
                "meta_not_settable",
                f"set by the bus; a publisher may set only {', '.join(USER_META_FIELDS)}",
                value,
            )
        )
    published = to_utc_millis(now or datetime.now(UTC))
    meta: dict[str, Any] = {
        "event_id": event_id or given.get("event_id") or str(uuid.uuid4()),
        "event_type": event_type,
        "source": agency.value,
        "occurred_at": published,
        "published_at": published,
    }
    meta.update({k: v for k, v in given.items() if k in USER_META_FIELDS and v is not None})
    fields["meta"] = meta
    event: Event | None = None
    try:
        event = model.validate_nfc(fields)
    except ValidationError as exc:
        problems.extend(exc.errors())  # type: ignore[arg-type]  # ErrorDetails are valid InitErrorDetails
    if problems or event is None:
        raise ValidationError.from_exception_data(model.__name__, problems)
    return event


def validation_problems(exc: ValidationError) -> list[str]:
    """One ``"field.path: message"`` per problem (``"(event): message"`` for whole-record rules)."""
    problems: list[str] = []
    for error in exc.errors(include_url=False):
        path = ".".join(str(part) for part in error["loc"]) or "(event)"
        message = error["msg"]
        for prefix in ("Value error, ", "Assertion failed, "):
            if message.startswith(prefix):
                message = message[len(prefix) :]
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        problems.append(f"{path}: {message}")
    return problems
