"""What the routing policy file says should happen to an event: the checker's own, independent reading.

The checker must not trust the code it checks, so this module reads ``bus389/routing/routing-policy.yaml`` as
plain YAML and applies the rules its header comment states, in a few lines, without importing the
router's policy models, decision or redaction code:

- an event goes to the recipients of every rule whose ``event_type`` (or ``*``) and ``when``
  conditions match; a recipient reached by several rules gets one copy, under the first rule (file
  order) that may deliver it; the sender is not sent its own event unless the rule says ``include_sender``;
- an agency the ``rights`` section does not list for the event type may not publish it (``not_permitted``);
- ``original_sender`` is the agency that published the event ``meta.in_reply_to`` names (the checker
  knows it from the history); a reply whose original the history does not hold is dead-lettered
  (``unknown_original``), and one from an agency that did not receive the original (``not_asked``);
- sensitivity (TLP 2.0, unknown = RED): ``clear_only`` agencies get CLEAR only; a RED or AMBER_STRICT
  event that names recipients (``meta.recipients``) goes to the named ones only; otherwise RED only
  through ``allow_red`` rules and AMBER_STRICT not through ``cc`` rules unless ``allow_amber_strict``;
  the sender's own copy (``include_sender``) is never held back by sensitivity;
- the standing office gets a sealed notice of every event it gets no copy of (unless it sent it), when
  the event is routed or dead-lettered as ``no_route``;
- personal-data fields without a grant for the recipient are nulled in its copy when they hold a value;
- an event whose ``meta.source`` is not the outbox owner is a spoof (``spoofed_source``); an event with
  no recipient left goes to the DLQ as ``no_route``.

A unit test runs this model and the router's decision side by side on many generated events: two
readings of one policy that agree are the evidence that the policy means what the checker assumes.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bus389.errors import ConfigError

__all__ = ["Expected", "ExpectedCopy", "PolicyModel", "values_at"]

_TLP = ("CLEAR", "GREEN", "AMBER", "AMBER_STRICT", "RED")
_ORIGINAL_SENDER = "original_sender"


@dataclass(frozen=True)
class ExpectedCopy:
    """One copy an agency's inbox must hold: the rule that delivers it and the fields nulled in it."""

    rule_id: str
    redacted: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Expected:
    """Where an event must end up: copies by recipient, or one dead letter with this reason."""

    copies: Mapping[str, ExpectedCopy] = field(default_factory=dict)
    dlq_reason: str | None = None
    sealed: frozenset[str] = frozenset()
    """Agencies that receive a sealed notice of the event (no content)."""

    @property
    def routed(self) -> bool:
        return self.dlq_reason is None


def values_at(record: Any, path: str) -> list[Any]:
    """Every value at a dotted ``path`` (``accounts[].platform`` looks into each item of ``accounts``)."""
    found = [record]
    for step in path.split("."):
        each = step.endswith("[]")
        name = step[:-2] if each else step
        nxt: list[Any] = []
        for node in found:
            if isinstance(node, Mapping) and name in node:
                value = node[name]
                if each:
                    nxt.extend(value if isinstance(value, list | tuple) else [])
                else:
                    nxt.append(value)
        found = nxt
    return found


def _holds(condition: Mapping[str, Any], record: Mapping[str, Any]) -> bool:
    if "any" in condition:
        return any(_holds(inner, record) for inner in condition["any"])
    values = values_at(record, str(condition["field"]))
    if "equals" in condition:
        wanted = condition["equals"]
        return any(v == wanted and isinstance(v, bool) == isinstance(wanted, bool) for v in values)
    if "in" in condition:
        options = condition["in"]
        return any(v == o and isinstance(v, bool) == isinstance(o, bool) for v in values for o in options)
    if "not_empty" in condition:
        present = any(v is not None and v != "" and v != [] and v != {} for v in values)
        return present if condition["not_empty"] else not present
    if "gte" in condition:
        bound = condition["gte"]
        return any(isinstance(v, int | float) and not isinstance(v, bool) and v >= bound for v in values)
    raise ConfigError(f"routing policy: a condition the checker does not know: {dict(condition)!r}")


class PolicyModel:
    """The routing policy as data, and :meth:`expect` applying it to one event (JSON or Avro form)."""

    def __init__(self, doc: Mapping[str, Any], *, source: str = "<policy>") -> None:
        try:
            self.rules: list[Mapping[str, Any]] = list(doc["rules"])
            self.publishers: dict[str, frozenset[str]] = {
                str(entry["event_type"]): frozenset(str(a) for a in entry.get("publishers") or ())
                for entry in doc["rights"]
            }
            self.clear_only = frozenset(doc.get("sensitivity", {}).get("clear_only", ["media"]))
            personal = doc["personal_data"]
            self.personal_fields: list[str] = list(personal["fields"])
            self.grants: dict[str, list[str]] = {
                str(k): list(v) for k, v in personal.get("grants", {}).items()
            }
        except (KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"{source}: not a routing policy the checker can read: {exc!r}") from exc
        self.source = source

    @classmethod
    def load(cls, path: Path | str) -> PolicyModel:
        try:
            doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read the routing policy {path}: {exc}") from exc
        if not isinstance(doc, Mapping):
            raise ConfigError(f"{path}: the routing policy is not a mapping")
        return cls(doc, source=str(path))

    def withheld_fields(self, agency: str) -> list[str]:
        """The personal fields ``agency`` has no grant for (what must never reach it with a value)."""
        patterns = self.grants.get(agency, [])
        return [f for f in self.personal_fields if not any(fnmatch.fnmatchcase(f, p) for p in patterns)]

    def _blocked(self, rule: Mapping[str, Any], agency: str, level: str, named: frozenset[str]) -> bool:
        if agency in self.clear_only and level != "CLEAR":
            return True
        if level in ("RED", "AMBER_STRICT") and named:
            return agency not in named
        if level == "RED" and not rule.get("allow_red", False):
            return True
        strict_ok = rule.get("allow_amber_strict")
        if strict_ok is None:
            strict_ok = not rule.get("cc", False)
        return level == "AMBER_STRICT" and not strict_ok

    def expect(
        self,
        record: Mapping[str, Any],
        sender: str,
        original_sender: Callable[[str], str | None],
        received: Callable[[str], frozenset[str]] | None = None,
    ) -> Expected:
        """Where ``record`` from ``sender``'s outbox must go (``original_sender``: event id → agency;
        ``received``: event id → the agencies that received it, when the history knows)."""
        meta = record.get("meta") or {}
        event_type = meta.get("event_type")
        if meta.get("source") != sender:
            return Expected(dlq_reason="spoofed_source")
        if sender not in self.publishers.get(str(event_type), frozenset()):
            return Expected(dlq_reason="not_permitted")
        named = frozenset(str(a) for a in meta.get("recipients") or ())
        level = meta.get("sensitivity")
        level = level if level in _TLP else "RED"
        matching = [
            rule
            for rule in self.rules
            if rule.get("event_type") in ("*", event_type)
            and all(_holds(condition, record) for condition in rule.get("when", []) or [])
        ]
        target: str | None = None
        if any(_ORIGINAL_SENDER in rule["recipients"] for rule in matching):
            reply_to = meta.get("in_reply_to")
            target = original_sender(str(reply_to)) if reply_to else None
            if target is None:
                return Expected(dlq_reason="unknown_original")
            if received is not None and sender != target and sender not in received(str(reply_to)):
                return Expected(dlq_reason="not_asked")
        copies: dict[str, ExpectedCopy] = {}
        for rule in matching:
            for ref in rule["recipients"]:
                agency = target if ref == _ORIGINAL_SENDER else str(ref)
                if agency is None or agency in copies:
                    continue
                if agency == sender and not rule.get("include_sender", False):
                    continue
                if agency != sender and self._blocked(rule, agency, level, named):
                    continue
                redacted = frozenset(
                    path
                    for path in self.withheld_fields(agency)
                    if any(v is not None for v in values_at(record, path))
                )
                copies[agency] = ExpectedCopy(str(rule["id"]), redacted)
        standing_office = "market_surveillance"
        sealed = frozenset() if standing_office in copies or sender == standing_office else {standing_office}
        if not copies:
            return Expected(dlq_reason="no_route", sealed=frozenset(sealed))
        return Expected(copies=copies, sealed=frozenset(sealed))
