"""Field redaction: which personal-data fields a recipient must not see, and the copy without them.

Redaction sets a field to null (every personal field is optional in the schemas, so the copy still
encodes with the event's own schema). Only fields that held a value are listed as redacted: the
inbox copy's ``bus389_redacted`` header and the audit record say exactly what was taken out, and a
copy with nothing to take out keeps the original bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bus389.agencies import Agency
from bus389.routing._paths import split_path, values_at
from bus389.routing.policy import Policy

__all__ = ["redact", "redactions_for"]


def redactions_for(record: Mapping[str, Any], policy: Policy, recipient: Agency) -> tuple[str, ...]:
    """The personal fields of ``record`` holding a value that ``recipient`` has no grant to see."""
    return tuple(
        path
        for path in policy.personal_data.withheld_from(recipient)
        if any(value is not None for value in values_at(record, path))
    )


def _null_at(node: Any, steps: tuple[tuple[str, bool], ...]) -> Any:
    """``node`` with the field at ``steps`` nulled: containers on the path are copied, the rest shared."""
    if not steps or not isinstance(node, Mapping):
        return node
    (name, each), rest = steps[0], steps[1:]
    if name not in node:
        return node
    out = dict(node)
    value = node[name]
    if not rest:
        out[name] = [None for _ in value] if each and isinstance(value, list) else None
    elif each and isinstance(value, list):
        out[name] = [_null_at(item, rest) for item in value]
    else:
        out[name] = _null_at(value, rest)
    return out


def redact(record: Mapping[str, Any], paths: Iterable[str]) -> dict[str, Any]:
    """A copy of ``record`` with every field at ``paths`` set to null (the input is not changed).

    Only the records on the way to a redacted field are copied; everything else is shared with the
    input, which is fine because the copy is only encoded, never modified.
    """
    out: dict[str, Any] = dict(record)
    for path in paths:
        out = _null_at(out, split_path(path))
    return out
