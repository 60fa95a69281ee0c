"""Avro schema-resolution compatibility and the FULL_TRANSITIVE check, proven with fixture v2 schemas.

Each verdict of our checker is cross-checked against fastavro actually resolving data between the
two schemas, so the checker cannot drift from what a real reader does.
"""

from __future__ import annotations

import io
import json
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro
import pytest
from click.testing import CliRunner
from fastavro.read import SchemaResolutionError

from bus389.codec import decode_value, encode_value
from bus389.schemas import SCHEMAS_DIR
from bus389.schemas.catalog import check_catalog, load_catalog
from bus389.schemas.compat import apache_problems, full_compatibility_problems, reader_problems

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "schemas"
NOW = datetime(2021, 7, 1, 1, 30, tzinfo=UTC)


def _fixture(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / "complaint" / name).read_text(encoding="utf-8")))


FIXTURE_ID = 26
"""The ids.yaml ``next_id`` of the shipped catalog: the id a new complaint version would take."""


def _catalog_with_v2(tmp_path: Path, fixture: str) -> Path:
    target = tmp_path / "schemas"
    shutil.copytree(SCHEMAS_DIR, target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    # The fixture stands in for the shipped complaint/v2, under an id of its own (as a new version would).
    shutil.copy(FIXTURES / "complaint" / fixture, target / "complaint" / "v2.avsc")
    ids = target / "ids.yaml"
    text = ids.read_text(encoding="utf-8")
    text = text.replace("  15: complaint/v2\n", "").replace(
        "  25: compiled_report/v1\n", f"  25: compiled_report/v1\n  {FIXTURE_ID}: complaint/v2\n"
    )
    text = text.replace(f"next_id: {FIXTURE_ID}", f"next_id: {FIXTURE_ID + 1}")
    ids.write_text(text, encoding="utf-8")
    return target


def _complaint_v1_record() -> dict[str, Any]:
    return {
        "meta": {
            "event_id": str(uuid.uuid4()),
            "event_type": "complaint",
            "source": "industry_trade",
            "occurred_at": NOW,
            "published_at": NOW,
            "case_ref": None,
            "in_reply_to": None,
            "sensitivity": "AMBER",
            "urgency": "ROUTINE",
        },
        "kind": "PETITION",
        "channel": "HOTLINE",
        "received_at": NOW,
        "complainant": None,
        "seller": None,
        "accounts": [],
        "summary": "Khách hàng phản ánh mua phải mỹ phẩm giả",
        "signs_of_crime": False,
    }


def _fastavro_can_read(reader: dict[str, Any], writer: dict[str, Any], record: dict[str, Any]) -> bool:
    """Does fastavro resolve ``record`` written with ``writer`` into ``reader``?"""
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(writer), record)
    buffer.seek(0)
    try:
        fastavro.schemaless_reader(buffer, fastavro.parse_schema(writer), fastavro.parse_schema(reader))
    except SchemaResolutionError:
        return False
    return True


# ---------------------------------------------------------------- the fixture v2 schemas


def test_a_compatible_v2_passes_and_data_resolves_both_ways(tmp_path: Path) -> None:
    v1 = load_catalog().latest("complaint").schema_json
    v2 = _fixture("v2_compatible.avsc")
    assert full_compatibility_problems(v1, v2) == []

    directory = _catalog_with_v2(tmp_path, "v2_compatible.avsc")
    assert check_catalog(directory) == []
    catalog = load_catalog(directory)
    assert catalog.latest("complaint").schema_id == FIXTURE_ID

    # v1 data read as v2 gets the new field's default; v2 data with a new symbol read by v1 gets OTHER
    old = decode_value(encode_value(_complaint_v1_record(), catalog.by_id(5)), catalog=catalog, latest=True)
    assert old.schema.schema_id == 5
    assert old.record["ticket_no"] is None
    new_record = {**_complaint_v1_record(), "channel": "SOCIAL_MEDIA", "ticket_no": "HL-2021-0042"}
    new_bytes = encode_value(new_record, catalog.by_id(FIXTURE_ID))
    buffer = io.BytesIO(new_bytes[5:])
    as_v1 = fastavro.schemaless_reader(
        buffer, catalog.by_id(FIXTURE_ID).reader_schema, catalog.by_id(5).reader_schema
    )
    assert as_v1["channel"] == "OTHER"
    assert "ticket_no" not in as_v1


@pytest.mark.parametrize(
    ("fixture", "direction", "field"),
    [
        ("v2_removes_field.avsc", "the old version cannot read new data", "field 'summary'"),
        ("v2_adds_required_field.avsc", "the new version cannot read old data", "field 'handled_by'"),
        ("v2_changes_type.avsc", "the new version cannot read old data", "field 'signs_of_crime'"),
        ("v2_changes_type.avsc", "the old version cannot read new data", "field 'signs_of_crime'"),
        ("v2_removes_enum_symbol.avsc", "the new version cannot read old data", "field 'kind'"),
    ],
)
def test_an_incompatible_v2_fails_naming_the_field(
    tmp_path: Path, fixture: str, direction: str, field: str
) -> None:
    problems = check_catalog(_catalog_with_v2(tmp_path, fixture))
    compat = [p for p in problems if p.startswith("complaint/v2 vs complaint/v1: ")]
    assert any(direction in p and field in p for p in compat), problems
    if fixture == "v2_removes_enum_symbol.avsc":
        assert (
            "complaint/v2: enum ComplaintKind has no default (an old reader could not survive a new symbol) "
            "[bus389 rule enum-has-default]" in problems
        )


def test_incompatible_messages_say_what_is_wrong() -> None:
    v1 = load_catalog().latest("complaint").schema_json
    assert full_compatibility_problems(v1, _fixture("v2_removes_field.avsc")) == [
        "the old version cannot read new data: field 'summary' is missing from the writer's schema "
        "and has no default in the reader's [Avro rule reader_field_missing_default_value]"
    ]
    assert full_compatibility_problems(v1, _fixture("v2_removes_enum_symbol.avsc")) == [
        "the new version cannot read old data: field 'kind': enum ComplaintKind lacks the writer's "
        "symbols PETITION and has no default [Avro rule missing_enum_symbols]"
    ]
    assert full_compatibility_problems(v1, _fixture("v2_changes_type.avsc")) == [
        "the new version cannot read old data: field 'signs_of_crime': type changed from boolean to string, "
        "which Avro cannot promote [Avro rule type_mismatch]",
        "the old version cannot read new data: field 'signs_of_crime': type changed from string to boolean, "
        "which Avro cannot promote [Avro rule type_mismatch]",
    ]


@pytest.mark.parametrize(
    "fixture",
    [
        "v2_compatible.avsc",
        "v2_removes_field.avsc",
        "v2_adds_required_field.avsc",
        "v2_changes_type.avsc",
        "v2_removes_enum_symbol.avsc",
    ],
)
def test_the_checker_agrees_with_fastavro_resolution(fixture: str) -> None:
    v1 = load_catalog().latest("complaint").schema_json
    v2 = _fixture(fixture)
    v1_record = _complaint_v1_record()
    v2_record = dict(v1_record)
    v2_record.update({"handled_by": "Trần Văn Bình", "ticket_no": None, "kind": "DENUNCIATION"})
    if fixture == "v2_changes_type.avsc":
        v2_record["signs_of_crime"] = "yes"
    v2_record = {k: v for k, v in v2_record.items() if k in {f["name"] for f in v2["fields"]}}
    backward = _fastavro_can_read(v2, v1, v1_record)
    forward = _fastavro_can_read(v1, v2, v2_record)
    assert (reader_problems(v2, v1) == []) == backward, fixture
    assert (reader_problems(v1, v2) == []) == forward, fixture


def test_cli_check_passes_a_compatible_v2_and_fails_an_incompatible_one(tmp_path: Path) -> None:
    from bus389.cli.main import cli

    runner = CliRunner()
    good = runner.invoke(
        cli, ["schemas", "check", "--dir", str(_catalog_with_v2(tmp_path / "a", "v2_compatible.avsc"))]
    )
    assert good.exit_code == 0, good.output
    assert good.output.startswith("ok: 25 schemas")  # the shipped 25, the fixture in place of complaint/v2
    bad_dir = _catalog_with_v2(tmp_path / "b", "v2_adds_required_field.avsc")
    bad = runner.invoke(cli, ["schemas", "check", "--dir", str(bad_dir)])
    assert bad.exit_code == 2, bad.output
    assert "field 'handled_by' is missing from the writer's schema" in bad.output


# ---------------------------------------------------------------- the resolution rules, one by one


@pytest.mark.parametrize(
    ("writer", "reader"),
    [
        ("int", "long"),
        ("int", "float"),
        ("int", "double"),
        ("long", "float"),
        ("long", "double"),
        ("float", "double"),
        ("string", "bytes"),
        ("bytes", "string"),
        ("null", "null"),
        ("boolean", "boolean"),
    ],
)
def test_promotions_are_readable(writer: str, reader: str) -> None:
    assert reader_problems(reader, writer) == []


@pytest.mark.parametrize(
    ("writer", "reader"),
    [
        ("long", "int"),
        ("double", "float"),
        ("float", "long"),
        ("string", "int"),
        ("boolean", "int"),
        ("null", "string"),
    ],
)
def test_narrowing_and_unrelated_types_are_not(writer: str, reader: str) -> None:
    assert reader_problems(reader, writer) == [
        f"the top-level record: type changed from {writer} to {reader}, which Avro cannot promote "
        "[Avro rule type_mismatch]"
    ]


def _record(name: str, *fields: dict[str, Any], namespace: str = "vn.bcd389", **extra: Any) -> dict[str, Any]:
    return {"type": "record", "name": name, "namespace": namespace, "fields": list(fields), **extra}


def test_records_match_fields_by_name_and_need_defaults_for_missing_ones() -> None:
    writer = _record("R", {"name": "a", "type": "int"}, {"name": "b", "type": "string"})
    assert (
        reader_problems(_record("R", {"name": "b", "type": "bytes"}, {"name": "a", "type": "long"}), writer)
        == []
    )
    with_default = _record("R", {"name": "a", "type": "int"}, {"name": "c", "type": "int", "default": 0})
    assert reader_problems(with_default, writer) == []
    without = _record("R", {"name": "a", "type": "int"}, {"name": "c", "type": "int"})
    assert reader_problems(without, writer) == [
        "field 'c' is missing from the writer's schema and has no default in the reader's "
        "[Avro rule reader_field_missing_default_value]"
    ]


def test_field_aliases_and_record_aliases_match() -> None:
    writer = _record("Old", {"name": "before", "type": "int"})
    reader = _record("New", {"name": "after", "type": "int", "aliases": ["before"]}, aliases=["Old"])
    assert reader_problems(reader, writer) == []
    assert reader_problems(_record("New", {"name": "before", "type": "int"}), writer) == [
        "the top-level record: record vn.bcd389.New cannot read record vn.bcd389.Old (names differ, and no "
        "alias of the reader names vn.bcd389.Old) [Avro rule name_mismatch]"
    ]


def test_records_match_by_unqualified_name_for_avro_but_not_for_the_project() -> None:
    """Avro matches a record by its short name; the project's full-name-stable rule refuses a move."""
    writer = _record("R", {"name": "a", "type": "int"}, namespace="old.ns")
    moved = _record("R", {"name": "a", "type": "int"}, namespace="new.ns")
    assert apache_problems(moved, writer) == []
    assert reader_problems(moved, writer) == [
        "the top-level record: record new.ns.R reads old.ns.R by its short name only (keep the full name, "
        "or add the alias old.ns.R) [bus389 rule full-name-stable]"
    ]
    assert reader_problems({**moved, "aliases": ["old.ns.R"]}, writer) == []


def test_enums_need_every_writer_symbol_unless_the_reader_has_a_default() -> None:
    writer = {"type": "enum", "name": "E", "symbols": ["A", "B", "C"]}
    assert reader_problems({"type": "enum", "name": "E", "symbols": ["C", "B", "A", "D"]}, writer) == []
    assert reader_problems({"type": "enum", "name": "E", "symbols": ["A", "B"], "default": "A"}, writer) == []
    assert reader_problems({"type": "enum", "name": "E", "symbols": ["A"]}, writer) == [
        "the top-level record: enum E lacks the writer's symbols B, C and has no default "
        "[Avro rule missing_enum_symbols]"
    ]
    assert reader_problems({"type": "enum", "name": "F", "symbols": ["A", "B", "C"]}, writer) == [
        "the top-level record: enum F cannot read enum E (names differ, and no alias of the reader names E) "
        "[Avro rule name_mismatch]"
    ]


def test_unions() -> None:
    assert reader_problems(["null", "string"], "string") == []
    assert reader_problems(["null", "long"], "int") == []
    assert reader_problems("string", ["null", "string"]) == [
        "the top-level record: type changed from null to string, which Avro cannot promote "
        "[Avro rule type_mismatch]"
    ]
    assert reader_problems(["null", "string", "long"], ["null", "string"]) == []
    assert reader_problems(["null", "string"], ["null", "string", "long"]) == [
        "the top-level record: no branch of the reader's union [null, string] reads the writer's long "
        "[Avro rule missing_union_branch]"
    ]


def test_arrays_maps_and_fixed() -> None:
    assert reader_problems({"type": "array", "items": "long"}, {"type": "array", "items": "int"}) == []
    assert reader_problems(
        _record("R", {"name": "xs", "type": {"type": "array", "items": "int"}}),
        _record("R", {"name": "xs", "type": {"type": "array", "items": "string"}}),
    ) == [
        "field 'xs[]': type changed from string to int, which Avro cannot promote [Avro rule type_mismatch]"
    ]
    assert reader_problems({"type": "map", "values": "double"}, {"type": "map", "values": "float"}) == []
    assert reader_problems({"type": "map", "values": "int"}, {"type": "array", "items": "int"}) == [
        "the top-level record: type changed from array<int> to map<int> [Avro rule type_mismatch]"
    ]
    fixed4 = {"type": "fixed", "name": "F", "size": 4}
    assert reader_problems(fixed4, fixed4) == []
    assert reader_problems(fixed4, {"type": "fixed", "name": "F", "size": 8}) == [
        "the top-level record: fixed F size changed from 8 to 4 [Avro rule fixed_size_mismatch]"
    ]


def test_logical_types() -> None:
    millis = {"type": "long", "logicalType": "timestamp-millis"}
    micros = {"type": "long", "logicalType": "timestamp-micros"}
    assert reader_problems("long", millis) == []
    assert reader_problems(millis, millis) == []
    assert reader_problems(micros, millis) == [
        "the top-level record: logical type changed from timestamp-millis to timestamp-micros "
        "[bus389 rule logical-type-stable]"
    ]
    dec = {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}
    assert reader_problems({**dec, "scale": 3}, dec) == [
        "the top-level record: decimal scale changed from 2 to 3 [bus389 rule decimal-scale-precision-stable]"
    ]


def test_named_references_resolve_within_each_schema() -> None:
    seller = {"type": "record", "name": "Seller", "fields": [{"name": "name", "type": "string"}]}
    writer = _record(
        "R", {"name": "a", "type": seller}, {"name": "b", "type": ["null", "Seller"], "default": None}
    )
    reader = _record(
        "R",
        {"name": "a", "type": {**seller, "fields": [{"name": "name", "type": "bytes"}]}},
        {"name": "b", "type": ["null", "vn.bcd389.Seller"], "default": None},
    )
    assert reader_problems(reader, writer) == []
    broken = _record("R", {"name": "b", "type": ["null", "Nowhere"], "default": None})
    assert reader_problems(broken, writer) == [
        "field 'b': the reader's schema names an undefined type 'Nowhere' [Avro rule invalid_schema]"
    ]


def test_recursive_types_terminate() -> None:
    node = _record(
        "Node", {"name": "v", "type": "int"}, {"name": "next", "type": ["null", "Node"], "default": None}
    )
    assert reader_problems(node, node) == []
    wider = _record(
        "Node", {"name": "v", "type": "long"}, {"name": "next", "type": ["null", "Node"], "default": None}
    )
    assert reader_problems(wider, node) == []
    assert reader_problems(node, wider) == [
        "field 'v': type changed from long to int, which Avro cannot promote [Avro rule type_mismatch]"
    ]


def test_nested_field_paths_are_named() -> None:
    v1 = load_catalog().latest("suspect_seller").schema_json
    v2 = json.loads(json.dumps(v1))
    seller = next(f for f in v2["fields"] if f["name"] == "seller")["type"]
    seller["fields"].append({"name": "email", "type": "string", "doc": "no default"})
    assert full_compatibility_problems(v1, v2) == [
        "the new version cannot read old data: field 'seller.email' is missing from the writer's schema "
        "and has no default in the reader's [Avro rule reader_field_missing_default_value]"
    ]


def test_every_shipped_schema_is_fully_compatible_with_itself() -> None:
    for entry in load_catalog():
        assert full_compatibility_problems(entry.schema_json, entry.schema_json) == [], entry.ref


def test_compatibility_is_transitive_over_every_earlier_version(tmp_path: Path) -> None:
    """v3 is FULL compatible with v2 but not with v1: only a transitive check catches it."""
    directory = _catalog_with_v2(tmp_path, "v2_compatible.avsc")
    v3 = _fixture("v2_compatible.avsc")
    ticket = next(f for f in v3["fields"] if f["name"] == "ticket_no")
    del ticket["default"]
    (directory / "complaint" / "v3.avsc").write_text(json.dumps(v3, ensure_ascii=False), encoding="utf-8")
    ids = directory / "ids.yaml"
    ids.write_text(
        ids.read_text(encoding="utf-8")
        .replace(
            f"  {FIXTURE_ID}: complaint/v2\n",
            f"  {FIXTURE_ID}: complaint/v2\n  {FIXTURE_ID + 1}: complaint/v3\n",
        )
        .replace(f"next_id: {FIXTURE_ID + 1}", f"next_id: {FIXTURE_ID + 2}"),
        encoding="utf-8",
    )
    assert full_compatibility_problems(_fixture("v2_compatible.avsc"), v3) == []
    assert check_catalog(directory) == [
        "complaint/v3 vs complaint/v1: the new version cannot read old data: field 'ticket_no' is missing "
        "from the writer's schema and has no default in the reader's "
        "[Avro rule reader_field_missing_default_value]"
    ]


def test_every_project_rule_is_written_down() -> None:
    """The project's stricter rules are the contract: each is in ids.yaml's header and the README."""
    from bus389.schemas.rules import PROJECT_RULES

    header = (SCHEMAS_DIR / "ids.yaml").read_text(encoding="utf-8").split("\nnext_id:")[0]
    readme = (SCHEMAS_DIR.parents[1] / "README.md").read_text(encoding="utf-8")
    for rule in PROJECT_RULES:
        assert f"* {rule.name}:" in header, rule.name
    assert "What `bus389 schemas check` guarantees" in readme
    assert "[bus389 rule" in readme and "[Avro rule" in readme


# ---------------------------------------------------------------- defaults, aliases, hostile files


def _complaint_v2_with(tmp_path: Path, edit: Any) -> Path:
    """A catalog whose complaint/v2 is complaint/v1 changed by ``edit`` (a function of the JSON)."""
    directory = _catalog_with_v2(tmp_path, "v2_compatible.avsc")
    v2 = json.loads((SCHEMAS_DIR / "complaint" / "v1.avsc").read_text(encoding="utf-8"))
    edit(v2)
    (directory / "complaint" / "v2.avsc").write_text(json.dumps(v2, ensure_ascii=False), encoding="utf-8")
    return directory


@pytest.mark.parametrize(
    ("field", "rule"),
    [
        (
            {"name": "tags", "type": {"type": "array", "items": "string"}, "default": [1]},
            "Avro rule invalid_default",
        ),
        (
            {
                "name": "inspector",
                "type": {
                    "type": "record",
                    "name": "Inspector",
                    "fields": [{"name": "name", "type": "string"}],
                },
                "default": {},
            },
            "Avro rule invalid_default",
        ),
        ({"name": "inspections", "type": "int", "default": 3_000_000_000}, "Avro rule invalid_default"),
        (
            {"name": "note", "type": ["null", "string"], "default": "x"},
            "bus389 rule union-default-first-branch",
        ),
        ({"name": "raw", "type": "bytes", "default": "đ"}, "bus389 rule default-fits-type"),
    ],
)
def test_the_issues_invalid_defaults_fail_the_check(tmp_path: Path, field: dict[str, Any], rule: str) -> None:
    directory = _complaint_v2_with(tmp_path, lambda v2: v2["fields"].append(field))
    problems = check_catalog(directory)
    assert [p for p in problems if p.startswith("complaint/v2: record vn.bcd389.Complaint, field")] == [
        p for p in problems if rule in p
    ], problems
    assert any(f"field '{field['name']}': default" in p and p.endswith(f"[{rule}]") for p in problems), (
        problems
    )


def test_aliases_in_another_namespace_do_not_name_our_types() -> None:
    """The issue's alias case: the old check matched ``vn.other.Seller`` to ``vn.bcd389.Seller``."""
    writer = _record("Top", {"name": "s", "type": _record("Seller", {"name": "n", "type": "string"})})
    renamed = _record("Vendor", {"name": "n", "type": "string"}, aliases=["vn.other.Seller"])
    reader = _record("Top", {"name": "s", "type": renamed})
    assert reader_problems(reader, writer) == [
        "field 's': record vn.bcd389.Vendor cannot read record vn.bcd389.Seller (names differ, and no "
        "alias of the reader names vn.bcd389.Seller) [Avro rule name_mismatch]"
    ]
    relative = _record("Top", {"name": "s", "type": {**renamed, "aliases": ["Seller"]}})
    assert reader_problems(relative, writer) == []


def test_a_field_alias_matching_two_writer_fields_is_refused() -> None:
    writer = _record("R", {"name": "a", "type": "int"}, {"name": "b", "type": "int"})
    reader = _record("R", {"name": "a", "type": "int", "aliases": ["b"]})
    assert reader_problems(reader, writer) == [
        "field 'a' (name and aliases) matches several writer fields: a, b [Avro rule ambiguous_field_alias]"
    ]


def test_a_hostile_schema_file_is_shown_as_data(tmp_path: Path) -> None:
    """Names and defaults of a checked file reach the terminal escaped: no control sequence, no traceback."""
    from bus389.cli.main import cli

    hostile = {"name": "x\x1b]0;owned\x07\x1b[2J", "type": "string", "aliases": ["\x1b[31mred"]}
    directory = _complaint_v2_with(tmp_path, lambda v2: v2["fields"].append(hostile))
    result = CliRunner().invoke(cli, ["schemas", "check", "--dir", str(directory)])
    assert result.exit_code == 2, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "\\x1b[2J" in result.output
    assert all(line.startswith(("problem: ", "error: ")) for line in result.output.splitlines()), (
        result.output
    )
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_deeply_nested_schema_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    directory = _catalog_with_v2(tmp_path, "v2_compatible.avsc")
    v2 = json.loads((SCHEMAS_DIR / "complaint" / "v1.avsc").read_text(encoding="utf-8"))
    v2["fields"].append({"name": "deep", "type": "DEEP", "default": []})
    for depth, expected in ((300, None), (5000, "complaint/v2: invalid schema file v2.avsc")):
        deep = '{"type": "array", "items": ' * depth + '"string"' + "}" * depth
        text = json.dumps(v2, ensure_ascii=False).replace('"DEEP"', deep)
        (directory / "complaint" / "v2.avsc").write_text(text, encoding="utf-8")
        problems = check_catalog(directory)
        if expected is None:
            assert problems == [], problems
        else:
            assert len(problems) == 1 and problems[0].startswith(expected), problems
