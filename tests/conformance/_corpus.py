"""The evolution cases of the conformance suite: each a pair of versions of one real bus389 schema.

A case file ``cases/<name>.yaml`` says::

    why: one line — what the case proves and why it is here
    schema: complaint            # the real schema bus389/schemas/<schema>/v1.avsc both versions start from
    old: [<edit>, ...]           # optional: the old version is v1 with these edits (default: v1 itself)
    new: [<edit>, ...]           # the new version: v1 with these edits
    avro: {backward: false}      # Apache Avro's answer, where it refuses (old_valid, new_valid,
                                 # backward = the new version reads old data, forward = the old reads new)
    project:                     # only where the project is stricter than Avro:
      rule: logical-type-stable  #   the bus389 rule (bus389/schemas/rules.py) that refuses
      refuses: [backward]        #   what it refuses that Avro accepts
    cli: true                    # optional: also run the real `bus389 schemas check` on it

An edit is one of ``{set: PATH, value: V}``, ``{remove: PATH}``, ``{append: PATH, value: V}`` or
``{insert: PATH, value: V}`` (before the element PATH names). A PATH is ``/``-separated: a key of an
object, an index of a list, or — in a list of fields or symbols — a field's name or a symbol.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bus389.schemas import SCHEMAS_DIR
from bus389.schemas.rules import PROJECT_RULES

CASES_DIR = Path(__file__).resolve().parent / "cases"
COMPONENTS = ("old_valid", "new_valid", "backward", "forward")
_KEYS = {"why", "schema", "old", "new", "avro", "project", "cli"}


class CaseError(ValueError):
    """A case file that does not say what the suite needs."""


@dataclass(frozen=True)
class Case:
    """One evolution case, with both versions materialised."""

    name: str
    why: str
    schema: str
    old: dict[str, Any] = field(repr=False)
    new: dict[str, Any] = field(repr=False)
    avro: dict[str, bool]
    """Apache Avro's expected answer for each component (True: valid / compatible)."""
    project_rule: str | None
    project_refuses: tuple[str, ...]
    cli: bool

    def project_accepts(self, component: str) -> bool:
        """The project's expected answer: Avro's, unless the case names a stricter project rule for it."""
        return self.avro[component] and component not in self.project_refuses


def _step(node: Any, segment: str, where: str) -> tuple[Any, Any]:
    """The container and key ``segment`` names inside ``node``."""
    if isinstance(node, dict):
        return node, segment
    if isinstance(node, list):
        if segment.lstrip("-").isdigit():
            return node, int(segment)
        for i, item in enumerate(node):
            if (isinstance(item, dict) and item.get("name") == segment) or item == segment:
                return node, i
        raise CaseError(f"{where}: no element named {segment!r}")
    raise CaseError(f"{where}: cannot step into {type(node).__name__} with {segment!r}")


def _resolve(schema: Any, path: str) -> tuple[Any, Any]:
    segments = [s for s in path.split("/") if s]
    if not segments:
        raise CaseError(f"{path}: an edit needs a path below the schema")
    node = schema
    for segment in segments[:-1]:
        container, key = _step(node, segment, path)
        try:
            node = container[key]
        except (KeyError, IndexError):
            raise CaseError(f"{path}: no {segment!r}") from None
    return _step(node, segments[-1], path)


def apply_edits(schema: dict[str, Any], edits: list[dict[str, Any]], where: str) -> dict[str, Any]:
    """``schema`` with ``edits`` applied, in order (the original is not touched)."""
    out = copy.deepcopy(schema)
    for edit in edits:
        ops = [op for op in ("set", "remove", "append", "insert") if op in edit]
        if len(ops) != 1 or set(edit) - {ops[0], "value"}:
            raise CaseError(f"{where}: an edit is one of set/remove/append/insert (+ value): {edit}")
        op = ops[0]
        container, key = _resolve(out, str(edit[op]))
        value = copy.deepcopy(edit.get("value"))
        try:
            if op == "set":
                container[key] = value
            elif op == "remove":
                del container[key]
            elif op == "append":
                container[key].append(value)
            else:
                container.insert(key, value)
        except (KeyError, IndexError, AttributeError, TypeError) as exc:
            raise CaseError(f"{where}: cannot {op} at {edit[op]}: {exc}") from None
    return out


def load_case(path: Path) -> Case:
    """One case file, checked and materialised."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    where = path.name
    if not isinstance(data, dict) or set(data) - _KEYS or not {"why", "schema", "new"} <= set(data):
        raise CaseError(f"{where}: needs why, schema and new (and only {sorted(_KEYS)})")
    base_path = SCHEMAS_DIR / str(data["schema"]) / "v1.avsc"
    if not base_path.is_file():
        raise CaseError(f"{where}: no real schema {data['schema']!r}")
    base = json.loads(base_path.read_text(encoding="utf-8"))
    avro = {c: True for c in COMPONENTS}
    for key, value in (data.get("avro") or {}).items():
        if key not in avro or not isinstance(value, bool):
            raise CaseError(f"{where}: avro.{key} is not one of {COMPONENTS} with a boolean")
        avro[key] = value
    project = data.get("project") or {}
    rule = project.get("rule")
    refuses = tuple(project.get("refuses") or ())
    if project and (
        rule not in {r.name for r in PROJECT_RULES} or not refuses or set(refuses) - set(COMPONENTS)
    ):
        raise CaseError(f"{where}: project needs a bus389 rule and what it refuses ({COMPONENTS})")
    return Case(
        name=path.stem,
        why=str(data["why"]),
        schema=str(data["schema"]),
        old=apply_edits(base, data.get("old") or [], f"{where} old"),
        new=apply_edits(base, data["new"], f"{where} new"),
        avro=avro,
        project_rule=rule,
        project_refuses=refuses,
        cli=bool(data.get("cli", False)),
    )


def load_cases() -> list[Case]:
    """Every case of ``cases/``, by name."""
    return [load_case(path) for path in sorted(CASES_DIR.glob("*.yaml"))]
