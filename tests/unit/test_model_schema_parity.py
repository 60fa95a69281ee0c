"""Each pydantic model matches the latest .avsc of its type field for field.

Both sides are reduced to one shape: named types expanded in place, docs and namespaces dropped,
field order, optionality (``["null", T]``), defaults, logical types, enum symbols and enum defaults kept.
"""

from __future__ import annotations

import types
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Union, get_args, get_origin

import pytest
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from bus389.events import ENUM_DEFAULTS, EVENT_MODELS, AuditRecord, AvroType, Event
from bus389.schemas.catalog import AUDIT, load_catalog, record_name_for

PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
_DROPPED = {"doc", "namespace", "aliases"}


def _short(name: str) -> str:
    return name.rpartition(".")[2]


def _expand(node: Any, named: dict[str, Any]) -> Any:
    """The .avsc node with every named reference replaced by its definition, docs dropped."""
    if isinstance(node, str):
        if node in PRIMITIVES:
            return node
        return _expand(named[_short(node)], named)
    if isinstance(node, list):
        return [_expand(branch, named) for branch in node]
    out = {k: v for k, v in node.items() if k not in _DROPPED}
    kind = out["type"]
    if kind in ("record", "enum", "fixed"):
        out["name"] = _short(out["name"])
        named.setdefault(out["name"], node)
    if kind == "record":
        out["fields"] = [
            {k: (_expand(v, named) if k == "type" else v) for k, v in f.items() if k not in _DROPPED}
            for f in node["fields"]
        ]
    elif kind == "array":
        out["items"] = _expand(node["items"], named)
    elif kind == "map":
        out["values"] = _expand(node["values"], named)
    elif isinstance(kind, dict | list) or kind not in PRIMITIVES | {"enum", "fixed"}:
        return _expand(kind, named)
    return out


def _collect(node: Any, named: dict[str, Any]) -> None:
    if isinstance(node, list):
        for branch in node:
            _collect(branch, named)
    elif isinstance(node, dict):
        if node.get("type") in ("record", "enum", "fixed"):
            named.setdefault(_short(node["name"]), node)
        for value in node.values():
            if isinstance(value, dict | list):
                _collect(value, named)


def avsc_shape(schema: dict[str, Any]) -> Any:
    named: dict[str, Any] = {}
    _collect(schema, named)
    return _expand(schema, named)


def _marker(metadata: list[Any]) -> str | None:
    found = [m.name for m in metadata if isinstance(m, AvroType)]
    return found[0] if found else None


def _annotation_shape(annotation: Any, metadata: list[Any], where: str) -> Any:
    if get_origin(annotation) is Annotated:
        inner, *extra = get_args(annotation)
        return _annotation_shape(inner, [*metadata, *extra], where)
    if get_origin(annotation) in (Union, types.UnionType):
        args = get_args(annotation)
        if len(args) != 2 or type(None) not in args:
            raise AssertionError(f"{where}: only Optional unions map to Avro here, got {annotation}")
        inner = next(a for a in args if a is not type(None))
        return ["null", _annotation_shape(inner, metadata, where)]
    if get_origin(annotation) is list:
        (item,) = get_args(annotation)
        return {"type": "array", "items": _annotation_shape(item, [], f"{where}[]")}
    marker = _marker(metadata)
    if annotation is bool:
        return "boolean"
    if annotation is str:
        return {"type": "string", "logicalType": "uuid"} if marker == "uuid" else "string"
    if annotation is int:
        assert marker in ("int", "long"), f"{where}: an int field needs AvroType('int') or AvroType('long')"
        return marker
    if annotation is datetime:
        assert marker == "timestamp-millis", f"{where}: a datetime needs AvroType('timestamp-millis')"
        return {"type": "long", "logicalType": "timestamp-millis"}
    if annotation is date:
        return {"type": "int", "logicalType": "date"}
    if isinstance(annotation, type) and issubclass(annotation, StrEnum):
        assert annotation in ENUM_DEFAULTS, f"{where}: enum {annotation.__name__} has no Avro default"
        return {
            "type": "enum",
            "name": annotation.__name__,
            "symbols": [member.value for member in annotation],
            "default": ENUM_DEFAULTS[annotation].value,
        }
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return model_shape(annotation)
    raise AssertionError(f"{where}: no Avro mapping for {annotation!r}")


def _default(value: Any) -> Any:
    if isinstance(value, StrEnum):
        return value.value
    return value


def model_shape(model: type[BaseModel]) -> dict[str, Any]:
    fields = []
    for name, info in model.model_fields.items():
        field: dict[str, Any] = {
            "name": name,
            "type": _annotation_shape(info.annotation, list(info.metadata), f"{model.__name__}.{name}"),
        }
        if info.default is not PydanticUndefined:
            field["default"] = _default(info.default)
        elif info.default_factory is not None:
            raise AssertionError(f"{model.__name__}.{name}: use a plain default (Avro defaults are values)")
        fields.append(field)
    return {"type": "record", "name": model.__name__, "fields": fields}


def _diff(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Where two shapes differ, as readable paths (the assert below shows them)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        if expected.get("type") == "record" and actual.get("type") == "record":
            out = []
            e_fields = {f["name"]: f for f in expected["fields"]}
            a_fields = {f["name"]: f for f in actual["fields"]}
            if list(e_fields) != list(a_fields):
                out.append(f"{path or '(record)'}: fields {list(a_fields)} != .avsc {list(e_fields)}")
            for name in e_fields.keys() & a_fields.keys():
                out += _diff(e_fields[name], a_fields[name], f"{path}.{name}".lstrip("."))
            if expected.get("name") != actual.get("name"):
                out.append(f"{path}: record name {actual.get('name')} != .avsc {expected.get('name')}")
            return out
        out = []
        for key in expected.keys() | actual.keys():
            out += _diff(expected.get(key, "<absent>"), actual.get(key, "<absent>"), f"{path}/{key}")
        return out
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [
            p
            for i, (e, a) in enumerate(zip(expected, actual, strict=True))
            for p in _diff(e, a, f"{path}[{i}]")
        ]
    return [] if expected == actual else [f"{path}: model {actual!r} != .avsc {expected!r}"]


@pytest.mark.parametrize("event_type", sorted(EVENT_MODELS))
def test_model_matches_latest_avsc(event_type: str) -> None:
    model = EVENT_MODELS[event_type]
    entry = load_catalog().latest(event_type)
    assert model.__name__ == record_name_for(event_type)
    assert model.EVENT_TYPE == event_type
    assert _diff(avsc_shape(entry.schema_json), model_shape(model)) == []
    assert model_shape(model) == avsc_shape(entry.schema_json)


def test_audit_model_matches_its_avsc() -> None:
    entry = load_catalog().latest(AUDIT)
    assert model_shape(AuditRecord) == {**avsc_shape(entry.schema_json), "name": "AuditRecord"}


def test_every_event_type_of_the_catalog_has_a_model_and_back() -> None:
    assert sorted(EVENT_MODELS) == load_catalog().event_types()
    assert all(issubclass(m, Event) for m in EVENT_MODELS.values())


def test_the_parity_check_can_fail() -> None:
    """A drifted schema (an extra field, a changed default, a missing symbol) is caught."""
    model = EVENT_MODELS["periodic_report"]
    schema = load_catalog().latest("periodic_report").schema_json
    shape = avsc_shape(schema)
    drifted = {**shape, "fields": [*shape["fields"], {"name": "extra", "type": "string"}]}
    assert _diff(drifted, model_shape(model)) != []
    changed = {
        **shape,
        "fields": [{**f, "default": 1} if f["name"] == "cases_detected" else f for f in shape["fields"]],
    }
    assert _diff(changed, model_shape(model)) == ["cases_detected/default: model 0 != .avsc 1"]
    kind = next(f for f in shape["fields"] if f["name"] == "report_kind")
    fewer = {**kind, "type": {**kind["type"], "symbols": ["SIX_MONTHLY", "RAPID"]}}
    swapped = {**shape, "fields": [fewer if f["name"] == "report_kind" else f for f in shape["fields"]]}
    assert _diff(swapped, model_shape(model)) == [
        "report_kind/type/symbols: model ['SIX_MONTHLY', 'RAPID', 'AD_HOC'] != .avsc ['SIX_MONTHLY', 'RAPID']"
    ]
