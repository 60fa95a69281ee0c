"""The routing policy: its pydantic model, and the loader that validates a YAML file against the schemas.

The policy is data (``bus389/routing/routing-policy.yaml``): each rule names an event type (or ``*``), the
plan section it comes from, optional conditions on the event's fields, and the recipients. Around
the rules, the policy says which agencies receive only CLEAR events and which agencies may see which
personal-data fields. :func:`load_policy` checks the structure with pydantic and then the meaning
against the Avro schemas (every event type and field path a rule names must exist, a condition's
value must fit the field), and raises one :class:`~bus389.errors.PolicyError` listing every problem,
each naming the rule id and the field.

How the router reads TLP 2.0 (``meta.sensitivity``), enforced in :mod:`bus389.routing.decision`:

- CLEAR: no limit beyond the routes. GREEN and AMBER: the routes (every route is need-to-know).
  Agencies listed under ``sensitivity.clear_only`` (the media, who publish) receive CLEAR only.
- AMBER_STRICT ("restricted to the organisation only"): it goes only to the agencies a matching rule
  names as the event's direct recipients; copies for information (rules with ``cc: true``, such as the
  standing office's catch-all) do not carry it unless the rule sets ``allow_amber_strict: true``.
- RED ("for the eyes and ears of individual recipients only"): only to recipients of a matching rule
  with ``allow_red: true``: the agency the event is addressed to and that must act on it (the police
  on signs of crime, the standing office for complaints and reports), or the agency that asked.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal, TypeAlias

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from bus389.agencies import Agency
from bus389.errors import PolicyError
from bus389.routing._paths import FieldInfo, schema_paths, split_path, values_at

__all__ = [
    "ANY_EVENT",
    "ORIGINAL_SENDER",
    "AnyCondition",
    "Condition",
    "FieldCondition",
    "PersonalData",
    "Policy",
    "RecipientRef",
    "Right",
    "Rule",
    "SchemaFields",
    "SensitivityPolicy",
    "catalog_fields",
    "load_policy",
    "parse_policy",
]

ANY_EVENT = "*"
"""A rule's ``event_type`` that matches every event type."""
ORIGINAL_SENDER = "original_sender"
"""A recipient that stands for the agency that sent the event ``meta.in_reply_to`` names."""

RecipientRef: TypeAlias = Agency | Literal["original_sender"]
Scalar: TypeAlias = StrictBool | StrictInt | StrictFloat | StrictStr | None
SchemaFields: TypeAlias = Mapping[str, Mapping[str, FieldInfo]]
"""Event type → field path → what the path holds (from the Avro schemas)."""

_OPERATORS = ("equals", "in_", "not_empty", "gte")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class FieldCondition(_Model):
    """One test on the values at ``field``; it holds when any value found there passes it.

    Exactly one of: ``equals`` (a value), ``in`` (a list of values), ``not_empty`` (true: some value is
    present and not an empty list or string; false: none is), ``gte`` (a number: some value is ≥ it).
    """

    field: str
    equals: Scalar = None
    in_: list[Scalar] | None = Field(None, alias="in", min_length=1)
    not_empty: StrictBool | None = None
    gte: StrictInt | StrictFloat | None = None

    @field_validator("field")
    @classmethod
    def _path(cls, path: str) -> str:
        split_path(path)
        return path

    @model_validator(mode="after")
    def _one_operator(self) -> FieldCondition:
        given = [name for name in _OPERATORS if name in self.model_fields_set]
        if len(given) != 1:
            shown = ", ".join(g.rstrip("_") for g in given) or "none"
            raise ValueError(f"give exactly one of equals, in, not_empty, gte (got {shown})")
        return self

    @property
    def operator(self) -> str:
        return next(name for name in _OPERATORS if name in self.model_fields_set).rstrip("_")

    def holds(self, record: Mapping[str, Any]) -> bool:
        found = values_at(record, self.field)
        op = self.operator
        if op == "equals":
            return any(_same(value, self.equals) for value in found)
        if op == "in":
            return any(_same(value, wanted) for value in found for wanted in self.in_ or ())
        if op == "not_empty":
            present = any(_present(value) for value in found)
            return present if self.not_empty else not present
        threshold = self.gte if self.gte is not None else 0
        return any(_number(value) and value >= threshold for value in found)

    def describe(self) -> str:
        op = self.operator
        value = self.in_ if op == "in" else getattr(self, op)
        return f"{self.field} {op} {value!r}"


class AnyCondition(_Model):
    """Holds when at least one of its conditions holds."""

    any: list[Condition] = Field(min_length=1)

    def holds(self, record: Mapping[str, Any]) -> bool:
        return any(condition.holds(record) for condition in self.any)

    def describe(self) -> str:
        return "any of (" + "; ".join(c.describe() for c in self.any) + ")"


def _condition_tag(value: Any) -> str:
    if isinstance(value, Mapping):
        return "any" if "any" in value else "field"
    return "any" if isinstance(value, AnyCondition) else "field"


Condition: TypeAlias = Annotated[
    Annotated[FieldCondition, Tag("field")] | Annotated[AnyCondition, Tag("any")],
    Discriminator(_condition_tag),
]
AnyCondition.model_rebuild()


def _same(value: Any, wanted: Any) -> bool:
    # True == 1 in Python; a policy asking for true must not match the number 1.
    return bool(value == wanted) and isinstance(value, bool) == isinstance(wanted, bool)


def _present(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str | list | tuple | dict):
        return len(value) > 0
    return True


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class Rule(_Model):
    """One route: events of ``event_type`` meeting every ``when`` condition go to ``recipients``."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.\-]*$", max_length=100)
    event_type: str = Field(pattern=r"^(\*|[a-z][a-z0-9_]*)$")
    plan_section: str = Field(pattern=r"^(I|II|III)(\.\d+)+$")
    """The section of Kế hoạch 141/KH-UBND this route comes from (e.g. ``II.6``)."""
    recipients: list[RecipientRef] = Field(min_length=1)
    when: list[Condition] = []
    """Every condition must hold (use an ``any`` group for alternatives)."""
    allow_red: bool = False
    """Recipients of this rule may receive RED events."""
    cc: bool = False
    """A copy for information (cc, catch-all), not a named recipient: no AMBER_STRICT by default."""
    allow_amber_strict: bool | None = None
    """Override: may this rule carry AMBER_STRICT? Default: yes unless ``cc``."""
    include_sender: bool = False
    """Deliver to a recipient even when it is the event's sender (otherwise never echoed back)."""
    description: str = ""

    @field_validator("recipients")
    @classmethod
    def _distinct(cls, recipients: list[RecipientRef]) -> list[RecipientRef]:
        if len(set(recipients)) != len(recipients):
            raise ValueError("a recipient is listed twice")
        return recipients

    @property
    def carries_amber_strict(self) -> bool:
        return self.allow_amber_strict if self.allow_amber_strict is not None else not self.cc

    @property
    def replies(self) -> bool:
        return ORIGINAL_SENDER in self.recipients

    def matches(self, event_type: str, record: Mapping[str, Any]) -> bool:
        if self.event_type not in (ANY_EVENT, event_type):
            return False
        return all(condition.holds(record) for condition in self.when)


class Right(_Model):
    """Who may publish one event type, and the duty of the plan that gives them the right to say it."""

    event_type: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    publishers: list[Agency]
    """May be empty: an event type only the bus itself writes (the router's notices)."""
    plan_section: str = Field(pattern=r"^(I|II|III)(\.\d+)+$")
    description: str = ""

    @field_validator("publishers")
    @classmethod
    def _distinct(cls, publishers: list[Agency]) -> list[Agency]:
        if len(set(publishers)) != len(publishers):
            raise ValueError("a publisher is listed twice")
        return publishers


class SensitivityPolicy(_Model):
    clear_only: list[Agency] = [Agency.MEDIA]
    """Agencies that receive CLEAR events only (the media publish what they receive)."""


class PersonalData(_Model):
    """Personal-data fields, and which agencies' duties need which of them (``seller.*`` patterns)."""

    fields: list[str] = Field(min_length=1)
    grants: dict[Agency, list[str]] = {}

    @field_validator("fields")
    @classmethod
    def _paths(cls, fields: list[str]) -> list[str]:
        for path in fields:
            split_path(path)
        return fields

    _withheld: dict[Agency, tuple[str, ...]] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        # Matched once here, not with fnmatch per field, recipient and event on the router's hot path.
        for agency in Agency:
            granted = self.granted(agency)
            self._withheld[agency] = tuple(f for f in self.fields if f not in granted)

    def granted(self, agency: Agency) -> frozenset[str]:
        """The personal fields ``agency`` may see."""
        patterns = self.grants.get(agency, [])
        return frozenset(f for f in self.fields if any(fnmatch.fnmatchcase(f, p) for p in patterns))

    def withheld_from(self, agency: Agency) -> tuple[str, ...]:
        """The personal fields to null for ``agency``, in policy order."""
        return self._withheld[agency]


class Policy(_Model):
    """The whole routing policy (``bus389/routing/routing-policy.yaml``)."""

    version: Literal[1] = 1
    sensitivity: SensitivityPolicy = SensitivityPolicy()
    personal_data: PersonalData
    rights: list[Right] = Field(min_length=1)
    """Who may publish each event type (every event type of the catalog has exactly one entry)."""
    rules: list[Rule] = Field(min_length=1)
    source: str = Field("", exclude=True)
    """Where the policy was read from (for messages)."""

    _rules_by_type: dict[str, tuple[Rule, ...]] = PrivateAttr(default_factory=dict)
    _wildcard_rules: tuple[Rule, ...] = PrivateAttr(default=())
    _rights: dict[str, Right] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        self._rights = {right.event_type: right for right in self.rights}
        # Worked out once (the policy is frozen), not filtered again for every event the router sees.
        self._wildcard_rules = tuple(rule for rule in self.rules if rule.event_type == ANY_EVENT)
        for named in {rule.event_type for rule in self.rules}:
            self._rules_by_type[named] = tuple(r for r in self.rules if r.event_type in (ANY_EVENT, named))

    def rules_for(self, event_type: str) -> tuple[Rule, ...]:
        """The rules that may match ``event_type``, in policy order (a type no rule names: the wildcards)."""
        return self._rules_by_type.get(event_type, self._wildcard_rules)

    def right_for(self, event_type: str) -> Right | None:
        """Who may publish ``event_type`` (None: a type the policy gives no one)."""
        return self._rights.get(event_type)

    def may_publish(self, agency: Agency, event_type: str) -> bool:
        right = self._rights.get(event_type)
        return right is not None and agency in right.publishers

    def unrouted(self, event_types: list[str]) -> tuple[list[str], list[str]]:
        """(types no rule routes, types only wildcard rules route); types no agency may publish (the
        router's own notices) are routed by the router itself and left out."""
        event_types = [t for t in event_types if (r := self._rights.get(t)) is None or r.publishers]
        wildcard = any(rule.event_type == ANY_EVENT and not rule.when for rule in self.rules)
        specific = {rule.event_type for rule in self.rules if rule.event_type != ANY_EVENT}
        missing = [t for t in event_types if t not in specific]
        return ([] if wildcard else missing), (missing if wildcard else [])


# -- loading -------------------------------------------------------------------------------------


def _where(data: Any, loc: tuple[int | str, ...]) -> str:
    """``rule 'suspect_seller.ict': when[0].field`` for a pydantic error location."""
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        rule_id = f"#{loc[1] + 1}"
        rules = data.get("rules") if isinstance(data, Mapping) else None
        if isinstance(rules, list) and loc[1] < len(rules) and isinstance(rules[loc[1]], Mapping):
            given = rules[loc[1]].get("id")
            rule_id = repr(str(given)) if given is not None else rule_id
        rest = _dotted(loc[2:])
        return f"rule {rule_id}" + (f": {rest}" if rest else "")
    return _dotted(loc) or "policy"


def _dotted(loc: tuple[int | str, ...]) -> str:
    out = ""
    after_index = False
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            after_index = True
            continue
        if after_index and part in ("field", "any") and _in_when(out):
            # pydantic's discriminator tag right after a condition's index, not a field name
            after_index = False
            continue
        after_index = False
        out += ("." if out else "") + str(part).rstrip("_")
    return out


def _in_when(out: str) -> bool:
    tail = out.rsplit(".", 1)[-1]
    return tail.startswith(("when[", "any["))


def _structure_problems(exc: ValidationError, data: Any) -> list[str]:
    return [f"{_where(data, tuple(err['loc']))}: {err['msg']}" for err in exc.errors()]


def _check_condition(
    rule: Rule, where: str, condition: FieldCondition | AnyCondition, fields: SchemaFields
) -> list[str]:
    if isinstance(condition, AnyCondition):
        problems: list[str] = []
        for i, inner in enumerate(condition.any):
            problems += _check_condition(rule, f"{where}.any[{i}]", inner, fields)
        return problems
    types = [rule.event_type] if rule.event_type != ANY_EVENT else sorted(fields)
    infos = [fields[t][condition.field] for t in types if condition.field in fields.get(t, {})]
    label = f"rule {rule.id!r}: {where}.field"
    if not infos:
        scope = rule.event_type if rule.event_type != ANY_EVENT else "any event type"
        return [f"{label}: unknown field path {condition.field!r} for {scope}"]
    return [f"{label} ({condition.field}): {p}" for p in _value_problems(condition, infos[0])]


def _value_problems(condition: FieldCondition, info: FieldInfo) -> list[str]:
    op = condition.operator
    if op == "gte":
        return [] if info.numeric else [f"gte needs a number field, this one holds {info.kind}"]
    if op == "not_empty":
        if info.kind in ("boolean", "int", "long", "float", "double") and not info.nullable:
            return [f"not_empty on a required {info.kind} always holds; use equals or gte"]
        return []
    wanted = [condition.equals] if op == "equals" else list(condition.in_ or [])
    problems = []
    for value in wanted:
        problem = _fits(value, info)
        if problem:
            problems.append(f"{op}: {problem}")
    return problems


def _fits(value: Any, info: FieldInfo) -> str | None:
    if value is None:
        return None if info.nullable else "null, but the field is never null"
    if info.kind == "enum":
        if value not in info.symbols:
            return f"{value!r} is not one of {', '.join(info.symbols)}"
        return None
    expected: dict[str, tuple[type, ...]] = {
        "boolean": (bool,),
        "string": (str,),
        "int": (int,),
        "long": (int,),
        "float": (int, float),
        "double": (int, float),
    }
    types = expected.get(info.kind)
    if types is None:
        return f"cannot compare a {info.kind} field with {value!r}"
    if not isinstance(value, types) or (info.kind != "boolean" and isinstance(value, bool)):
        return f"{value!r} does not fit a {info.kind} field"
    return None


def _meaning_problems(policy: Policy, fields: SchemaFields) -> list[str]:
    problems: list[str] = []
    seen: set[str] = set()
    for rule in policy.rules:
        if rule.id in seen:
            problems.append(f"rule {rule.id!r}: id: used by more than one rule")
        seen.add(rule.id)
        if rule.event_type != ANY_EVENT and rule.event_type not in fields:
            known = ", ".join(sorted(fields))
            problems.append(f"rule {rule.id!r}: event_type: unknown event type {rule.event_type!r} ({known})")
            continue
        for i, condition in enumerate(rule.when):
            problems += _check_condition(rule, f"when[{i}]", condition, fields)
    given: dict[str, int] = {}
    for right in policy.rights:
        given[right.event_type] = given.get(right.event_type, 0) + 1
        if right.event_type not in fields:
            problems.append(f"rights: unknown event type {right.event_type!r}")
    problems += [f"rights: {t!r} is listed {n} times" for t, n in given.items() if n > 1]
    problems += [
        f"rights: no entry for {t!r} (say who may publish it, citing the plan)"
        for t in sorted(fields)
        if t not in given
    ]
    all_paths = {path for paths in fields.values() for path in paths}
    for path in policy.personal_data.fields:
        if path not in all_paths:
            problems.append(f"personal_data.fields: no event type has the field {path!r}")
    for agency, patterns in policy.personal_data.grants.items():
        for pattern in patterns:
            if not any(fnmatch.fnmatchcase(f, pattern) for f in policy.personal_data.fields):
                problems.append(
                    f"personal_data.grants.{agency.value}: {pattern!r} matches no personal_data field"
                )
    return problems


@cache
def catalog_fields() -> dict[str, dict[str, FieldInfo]]:
    """Every event type's field paths, from the latest schema of each in the catalog."""
    from bus389.schemas.catalog import load_catalog

    catalog = load_catalog()
    return {t: schema_paths(catalog.latest(t).parsed_schema) for t in catalog.event_types()}


def parse_policy(data: Any, *, source: str = "<policy>", fields: SchemaFields | None = None) -> Policy:
    """Validate policy data (as parsed from YAML); ``fields`` defaults to the schema catalog's."""
    if not isinstance(data, Mapping):
        raise PolicyError(f"{source}: the policy must be a mapping with 'rules' and 'personal_data'")
    try:
        policy = Policy.model_validate({**data, "source": source})
    except ValidationError as exc:
        problems = _structure_problems(exc, data)
        raise PolicyError(f"{source}: invalid routing policy:\n  " + "\n  ".join(problems)) from exc
    problems = _meaning_problems(policy, catalog_fields() if fields is None else fields)
    if problems:
        raise PolicyError(f"{source}: invalid routing policy:\n  " + "\n  ".join(problems))
    return policy


def load_policy(path: Path | str, *, fields: SchemaFields | None = None) -> Policy:
    """Read and validate the policy YAML at ``path``; a :class:`PolicyError` names every problem."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read the routing policy {source}: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{source}: not valid YAML: {exc}") from exc
    return parse_policy(data, source=source, fields=fields)
