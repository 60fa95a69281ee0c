"""The schema catalog: pinned ids, lookups, the shape of the .avsc files, and what check_catalog finds."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bus389.errors import SchemaCatalogError, UnknownEventTypeError, UnknownSchemaIdError
from bus389.schemas import SCHEMAS_DIR
from bus389.schemas.catalog import AUDIT, SchemaEntry, check_catalog, load_catalog, record_name_for

EVENT_TYPES = [
    "suspect_seller",
    "domain_block_request",
    "tax_discrepancy",
    "domain_block_result",
    "complaint",
    "case_referral",
    "case_outcome",
    "periodic_report",
    "law_gap_proposal",
    "routing_notice",
    "directive",
    "case_claim",
    "inspection_result",
    "compiled_report",
]
PINNED_IDS = {
    1: "suspect_seller/v1",
    2: "domain_block_request/v1",
    3: "tax_discrepancy/v1",
    4: "domain_block_result/v1",
    5: "complaint/v1",
    6: "case_referral/v1",
    7: "case_outcome/v1",
    8: "periodic_report/v1",
    9: "law_gap_proposal/v1",
    10: "audit/v1",
    # v2: the committee joins the Agency enum, meta.recipients names a RED/AMBER_STRICT event's addressees
    11: "suspect_seller/v2",
    12: "domain_block_request/v2",
    13: "tax_discrepancy/v2",
    14: "domain_block_result/v2",
    15: "complaint/v2",
    16: "case_referral/v2",
    17: "case_outcome/v2",
    18: "periodic_report/v2",
    19: "law_gap_proposal/v2",
    20: "audit/v2",
    21: "routing_notice/v1",
    # coordination (issue 20): directions, claims, inspection results, the compiled report
    22: "directive/v1",
    23: "case_claim/v1",
    24: "inspection_result/v1",
    25: "compiled_report/v1",
}
NEXT_ID = max(PINNED_IDS) + 1
SHARED_TYPES = [
    "EventMeta",
    "Agency",
    "Tlp",
    "Urgency",
    "Seller",
    "Person",
    "SellerAccount",
    "Platform",
    "ViolationKind",
]
ENUM_DEFAULTS = {
    "Agency": "other_members",
    "Tlp": "RED",
    "Urgency": "ROUTINE",
    "Platform": "OTHER",
    "ViolationKind": "OTHER",
    "BlockAction": "UNKNOWN",
    "BlockOutcome": "UNKNOWN",
    "ComplaintKind": "COMPLAINT",
    "ComplaintChannel": "OTHER",
    "CaseOutcomeKind": "OTHER",
    "ReportKind": "AD_HOC",
    "NoticeKind": "SEALED",
    "DirectiveKind": "OTHER",
    "InspectionFinding": "INCONCLUSIVE",
}


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every dict in a schema (records, enums, fields, arrays, logical types)."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _named_definitions(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        str(node["name"]): node
        for node in _walk(schema)
        if node.get("type") in ("record", "enum", "fixed") and "name" in node
    }


def _fields(schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for node in _walk(schema):
        if node.get("type") == "record":
            for field in node["fields"]:
                yield f"{node['name']}.{field['name']}", field


@pytest.fixture(scope="module")
def catalog_entries() -> list[SchemaEntry]:
    return list(load_catalog())


def test_ids_are_pinned_as_the_contract_says() -> None:
    catalog = load_catalog()
    assert {e.schema_id: e.ref for e in catalog} == PINNED_IDS
    assert sorted(catalog.event_types()) == sorted(EVENT_TYPES)


def test_lookups_by_id_type_version_and_ce_type() -> None:
    catalog = load_catalog()
    entry = catalog.latest("tax_discrepancy")
    assert (entry.schema_id, entry.version, entry.event_type) == (13, 2, "tax_discrepancy")
    assert catalog.by_id(13) is entry
    assert catalog.get("tax_discrepancy", 2) is entry
    assert catalog.get("tax_discrepancy", 1) is catalog.by_id(3)
    assert catalog.by_ce_type("vn.bcd389.tax_discrepancy.v2") is entry
    assert catalog.by_ce_type("vn.bcd389.tax_discrepancy.v9") is None
    assert entry.full_name == "vn.bcd389.TaxDiscrepancy"
    assert entry.ce_type == "vn.bcd389.tax_discrepancy.v2"
    assert entry.path == SCHEMAS_DIR / "tax_discrepancy" / "v2.avsc"
    assert catalog.audit.full_name == "vn.bcd389.AuditRecord"
    assert not catalog.audit.is_event
    assert AUDIT not in catalog.event_types()


def test_unknown_lookups_raise_typed_errors() -> None:
    catalog = load_catalog()
    with pytest.raises(UnknownSchemaIdError, match="999"):
        catalog.by_id(999)
    with pytest.raises(UnknownEventTypeError, match="no_such_event"):
        catalog.latest("no_such_event")
    with pytest.raises(UnknownEventTypeError, match="suspect_seller/v7"):
        catalog.get("suspect_seller", 7)


def test_catalog_is_loaded_once() -> None:
    assert load_catalog() is load_catalog()
    assert load_catalog(SCHEMAS_DIR) is load_catalog()


def test_entries_are_parsed_for_fastavro_and_readable_without_uuid_conversion(
    catalog_entries: list[SchemaEntry],
) -> None:
    for entry in catalog_entries:
        assert entry.parsed_schema.get("__fastavro_parsed") is True
        assert entry.reader_schema.get("__fastavro_parsed") is True
        uuids = [n for n in _walk(entry.reader_schema) if n.get("logicalType") == "uuid"]
        assert uuids == [], entry.ref


def test_record_names_follow_event_types(catalog_entries: list[SchemaEntry]) -> None:
    assert record_name_for("suspect_seller") == "SuspectSeller"
    assert record_name_for("audit") == "AuditRecord"
    for entry in catalog_entries:
        assert entry.schema_json["namespace"] == "vn.bcd389"
        assert entry.schema_json["name"] == record_name_for(entry.event_type)


def test_every_record_field_and_enum_has_a_doc(catalog_entries: list[SchemaEntry]) -> None:
    missing = []
    for entry in catalog_entries:
        for node in _walk(entry.schema_json):
            if node.get("type") in ("record", "enum") and not str(node.get("doc", "")).strip():
                missing.append(f"{entry.ref}: {node.get('name')}")
        for path, field in _fields(entry.schema_json):
            if not str(field.get("doc", "")).strip():
                missing.append(f"{entry.ref}: {path}")
    assert missing == []


def test_every_enum_has_the_specified_default(catalog_entries: list[SchemaEntry]) -> None:
    seen = {}
    for entry in catalog_entries:
        for name, node in _named_definitions(entry.schema_json).items():
            if node["type"] == "enum":
                assert node["default"] in node["symbols"], name
                seen[name] = node["default"]
    assert seen == ENUM_DEFAULTS


def test_event_records_start_with_meta_and_meta_is_the_contract(catalog_entries: list[SchemaEntry]) -> None:
    for entry in catalog_entries:
        if not entry.is_event:
            continue
        first = entry.schema_json["fields"][0]
        assert first["name"] == "meta"
    meta = _named_definitions(load_catalog().latest("complaint").schema_json)["EventMeta"]
    assert [f["name"] for f in meta["fields"]] == [
        "event_id",
        "event_type",
        "source",
        "occurred_at",
        "published_at",
        "case_ref",
        "in_reply_to",
        "sensitivity",
        "urgency",
        "recipients",
    ]
    types = {f["name"]: f["type"] for f in meta["fields"]}
    assert types["recipients"] == {"type": "array", "items": "Agency"}
    assert types["event_id"] == {"type": "string", "logicalType": "uuid"}
    assert types["occurred_at"] == {"type": "long", "logicalType": "timestamp-millis"}
    assert types["in_reply_to"] == ["null", {"type": "string", "logicalType": "uuid"}]
    assert types["source"]["symbols"] == [
        "police",
        "border_guard",
        "customs",
        "tax",
        "industry_trade",
        "ict",
        "media",
        "other_members",
        "market_surveillance",
        "committee",
    ]
    assert types["sensitivity"]["symbols"] == ["CLEAR", "GREEN", "AMBER", "AMBER_STRICT", "RED"]


def test_money_is_long_dong_and_there_are_no_floats(catalog_entries: list[SchemaEntry]) -> None:
    money = 0
    for entry in catalog_entries:
        for node in _walk(entry.schema_json):
            assert node.get("type") not in ("float", "double"), entry.ref
        for path, field in _fields(entry.schema_json):
            if path.endswith("_vnd"):
                money += 1
                assert field["type"] in ("long", ["null", "long"]), f"{entry.ref}: {path}"
    # per version: 1 suspect_seller, 4 tax_discrepancy, 1 case_referral, 2 case_outcome, 3 report;
    # and the 3 of compiled_report/v1
    assert money == 11 * 2 + 3


def test_dates_and_instants_use_logical_types() -> None:
    catalog = load_catalog()
    fields = {f["name"]: f["type"] for f in catalog.latest("case_outcome").schema_json["fields"]}
    assert fields["decided_on"] == {"type": "int", "logicalType": "date"}
    fields = {f["name"]: f["type"] for f in catalog.latest("domain_block_request").schema_json["fields"]}
    assert fields["expires_at"] == ["null", {"type": "long", "logicalType": "timestamp-millis"}]


def test_optional_fields_default_to_null_and_arrays_to_empty(catalog_entries: list[SchemaEntry]) -> None:
    for entry in catalog_entries:
        for path, field in _fields(entry.schema_json):
            kind = field["type"]
            if isinstance(kind, list):
                assert kind[0] == "null" and field.get("default", "absent") is None, f"{entry.ref}: {path}"
            if isinstance(kind, dict) and kind.get("type") == "array":
                assert field.get("default") == [], f"{entry.ref}: {path}"


def test_shared_types_are_identical_in_every_file() -> None:
    """One source of truth: each inlined copy of a shared type is the same, doc for doc."""
    catalog = load_catalog()
    copies: dict[str, dict[str, str]] = {}
    for entry in (catalog.latest(t) for t in [*catalog.event_types(), AUDIT]):
        for name, definition in _named_definitions(entry.schema_json).items():
            copies.setdefault(name, {})[entry.ref] = json.dumps(definition, sort_keys=True)
    for name in SHARED_TYPES:
        assert len(copies[name]) >= 2 or name == "Person", name
        assert len(set(copies[name].values())) == 1, f"{name} differs between {sorted(copies[name])}"
    assert len(copies["EventMeta"]) == 14
    assert len(copies["Agency"]) == 15  # the audit record's too
    assert len(copies["ViolationKind"]) == 5


def test_each_file_is_self_contained() -> None:
    """Other agencies parse single files: every file parses on its own with no named types given."""
    import fastavro

    for path in sorted(SCHEMAS_DIR.glob("*/v*.avsc")):
        fastavro.parse_schema(json.loads(path.read_text(encoding="utf-8")), named_schemas={})


def test_shipped_catalog_has_no_problems() -> None:
    assert check_catalog() == []


# ---------------------------------------------------------------- check_catalog on broken copies


@pytest.fixture
def copy_dir(tmp_path: Path) -> Path:
    target = tmp_path / "schemas"
    shutil.copytree(SCHEMAS_DIR, target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return target


def _edit_ids(directory: Path, old: str, new: str) -> None:
    ids = directory / "ids.yaml"
    text = ids.read_text(encoding="utf-8")
    assert old in text
    ids.write_text(text.replace(old, new), encoding="utf-8")


def test_a_duplicate_id_is_found(copy_dir: Path) -> None:
    _edit_ids(copy_dir, "  25: compiled_report/v1\n", "  25: compiled_report/v1\n  9: complaint/v3\n")
    shutil.copy(copy_dir / "complaint" / "v2.avsc", copy_dir / "complaint" / "v3.avsc")
    problems = check_catalog(copy_dir)
    assert any("duplicate id 9" in p for p in problems), problems
    with pytest.raises(SchemaCatalogError, match="duplicate id 9"):
        load_catalog(copy_dir)


def test_an_id_without_a_file_and_a_file_without_an_id_are_found(copy_dir: Path) -> None:
    _edit_ids(copy_dir, "  25: compiled_report/v1\n", "  25: compiled_report/v1\n  26: complaint/v3\n")
    shutil.copy(copy_dir / "suspect_seller" / "v2.avsc", copy_dir / "suspect_seller" / "v3.avsc")
    problems = check_catalog(copy_dir)
    assert any(p.startswith("complaint/v3: id 26") and "has no file" in p for p in problems), problems
    assert any(p.startswith("suspect_seller/v3:") and "has no id" in p for p in problems), problems


def test_a_record_name_that_does_not_match_its_event_type_is_found(copy_dir: Path) -> None:
    path = copy_dir / "law_gap_proposal" / "v2.avsc"
    path.write_text(path.read_text(encoding="utf-8").replace('"LawGapProposal"', '"LawProposal"'), "utf-8")
    problems = check_catalog(copy_dir)
    # The rename also breaks compatibility with v1; the name rule is the first problem named.
    assert problems[0] == (
        "law_gap_proposal/v2: record name vn.bcd389.LawProposal does not match event type "
        "(expected vn.bcd389.LawGapProposal)"
    )


def test_a_retired_id_must_not_be_reused(copy_dir: Path) -> None:
    _edit_ids(copy_dir, "retired: {}", "retired:\n  21: old_thing/v1")
    problems = check_catalog(copy_dir)
    assert any("id 21 is retired" in p for p in problems), problems


def test_next_id_must_stay_above_every_id(copy_dir: Path) -> None:
    _edit_ids(copy_dir, "next_id: 26", "next_id: 25")
    assert any("next_id 25" in p for p in check_catalog(copy_dir))


def test_an_invalid_schema_file_is_a_problem_not_a_crash(copy_dir: Path) -> None:
    (copy_dir / "complaint" / "v2.avsc").write_text(
        '{"type": "record", "name": "Complaint", "fields": [', "utf-8"
    )
    problems = check_catalog(copy_dir)
    assert len(problems) == 1 and problems[0].startswith("complaint/v2: invalid schema file"), problems


def test_a_gap_in_versions_is_found(copy_dir: Path) -> None:
    _edit_ids(copy_dir, "  25: compiled_report/v1\n", "  25: compiled_report/v1\n  26: complaint/v4\n")
    _edit_ids(copy_dir, "next_id: 26", "next_id: 27")
    shutil.copy(copy_dir / "complaint" / "v2.avsc", copy_dir / "complaint" / "v4.avsc")
    assert check_catalog(copy_dir) == ["complaint: versions [1, 2, 4] are not 1..3 without gaps"]


# ---------------------------------------------------------------- the CLI


def test_cli_schemas_check_and_list(copy_dir: Path) -> None:
    from bus389.cli.main import cli

    runner = CliRunner()
    result = runner.invoke(cli, ["schemas", "check"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"ok: {len(PINNED_IDS)} schemas")
    listing = runner.invoke(cli, ["schemas", "list", "--dir", str(copy_dir)])
    assert listing.exit_code == 0, listing.output
    lines = listing.output.splitlines()
    assert len(lines) == len(PINNED_IDS)
    assert lines[0].split() == [
        "1",
        "suspect_seller/v1",
        "vn.bcd389.suspect_seller.v1",
        "suspect_seller/v1.avsc",
    ]

    _edit_ids(copy_dir, "  25: compiled_report/v1\n", "  25: compiled_report/v1\n  26: complaint/v3\n")
    broken = runner.invoke(cli, ["schemas", "check", "--dir", str(copy_dir)])
    assert broken.exit_code == 2, broken.output
    assert "problem: complaint/v3: id 26 in ids.yaml has no file" in broken.output


def test_cli_help_has_an_example() -> None:
    from bus389.cli.main import cli

    for args in (["schemas", "--help"], ["schemas", "check", "--help"], ["schemas", "list", "--help"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0 and "Example:" in result.output, args
