"""`bus389 schemas check` against Apache Avro's Java reference, on every case of tests/conformance/cases.

Once per session the Java harness (java/AvroVerdicts.java, Avro 1.12 fetched with Maven on first use)
parses both versions of every case with default validation on and runs ``SchemaCompatibility`` in both
directions. For every case and each of its four answers (old valid, new valid, the new version reads old
data, the old reads new) this asserts that Java gives the answer the case file records, that the Avro
part of the project's verdict (its problems under an Avro rule) is Java's, and that the project's final
verdict is Java's — or, where the case names a project rule, that rule's refusal and nothing else.
A few cases also run the real CLI on a temporary schemas folder, and fastavro — the project's own
decoder — proves on the alias cases that what the check accepts really reads across versions.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import fastavro
import pytest
from _avro_java import AvroJavaError, avro_version, ensure_jars, verdicts
from _corpus import COMPONENTS, Case, load_cases

from bus389.errors import LocalKafkaError
from bus389.schemas import SCHEMAS_DIR
from bus389.schemas.compat import apache_problems, read_problems, schema_problems
from bus389.schemas.rules import Problem
from bus389.settings import Settings

CASES = load_cases()
BUS389 = Path(sys.executable).parent / "bus389"


@pytest.fixture(scope="session")
def java(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Apache Avro's (Java) verdict on every case, by case name."""
    try:
        libs = ensure_jars(Settings().local.cache_dir)
    except AvroJavaError as exc:
        pytest.fail(f"cannot fetch Apache Avro {avro_version()} for the conformance suite: {exc}")
    root = tmp_path_factory.mktemp("avro-cases")
    for case in CASES:
        folder = root / case.name
        folder.mkdir()
        (folder / "old.avsc").write_text(json.dumps(case.old, ensure_ascii=False), encoding="utf-8")
        (folder / "new.avsc").write_text(json.dumps(case.new, ensure_ascii=False), encoding="utf-8")
    try:
        found = verdicts(root, libs)
    except (AvroJavaError, LocalKafkaError) as exc:
        pytest.fail(f"cannot run Apache Avro's Java harness: {exc}")
    assert sorted(found) == sorted(c.name for c in CASES), "the harness answered for other cases"
    return found


def _java_answers(verdict: dict[str, Any]) -> dict[str, bool]:
    """Java's four answers; a schema Java cannot parse even without default validation reads nothing."""
    unparseable = "unparseable" in verdict
    return {
        "old_valid": verdict["old_valid"]["valid"],
        "new_valid": verdict["new_valid"]["valid"],
        "backward": not unparseable and verdict["backward"]["verdict"] == "COMPATIBLE",
        "forward": not unparseable and verdict["forward"]["verdict"] == "COMPATIBLE",
    }


def _python_problems(case: Case) -> dict[str, list[Problem]]:
    return {
        "old_valid": schema_problems(case.old),
        "new_valid": schema_problems(case.new),
        "backward": read_problems(case.new, case.old),
        "forward": read_problems(case.old, case.new),
    }


def test_the_corpus_is_large_and_every_case_says_why() -> None:
    assert len(CASES) >= 50
    for case in CASES:
        assert len(case.why) > 20, case.name
    refused_by_avro = [c for c in CASES if not all(c.avro.values())]
    stricter = [c for c in CASES if c.project_rule]
    accepted = [c for c in CASES if all(c.project_accepts(k) for k in COMPONENTS)]
    assert refused_by_avro and stricter and accepted


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_schemas_check_agrees_with_apache_avro(case: Case, java: dict[str, dict[str, Any]]) -> None:
    verdict = java[case.name]
    assert verdict["avro_version"] == avro_version()
    answers = _java_answers(verdict)
    assert answers == case.avro, f"{case.name}: Java's answer is not what the case records: {verdict}"
    problems = _python_problems(case)
    for component in COMPONENTS:
        found = problems[component]
        avro_refusals = [p for p in found if not p.rule.is_project]
        project_refusals = [p for p in found if p.rule.is_project]
        assert (not avro_refusals) == answers[component], f"{case.name} {component}: {found} vs {verdict}"
        if component in case.project_refuses:
            assert answers[component], f"{case.name}: the project rule is not stricter where Avro refuses"
            assert {p.rule.name for p in project_refusals} == {case.project_rule}, (case.name, found)
        else:
            assert project_refusals == [], (
                f"{case.name} {component}: an unnamed project rule refused: {found}"
            )
        assert (not found) == case.project_accepts(component), (case.name, component, found)
        # A refusal names the field or type (the walk explains Avro's verdict rather than passing on
        # Apache's raw message), and its rule.
        for problem in found:
            assert not problem.message.startswith("Apache Avro at"), (case.name, problem)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_python_port_gives_javas_incompatibility_types(
    case: Case, java: dict[str, dict[str, Any]]
) -> None:
    """Apache's Python checker (aliases made full names) reports what Java's SchemaCompatibility does."""
    verdict = java[case.name]
    if "unparseable" in verdict:
        assert apache_problems(case.new, case.old) and apache_problems(case.old, case.new)
        return
    for component, (reader, writer) in {
        "backward": (case.new, case.old),
        "forward": (case.old, case.new),
    }.items():
        if verdict[component]["verdict"] == "ERROR":
            continue  # Java throws on an ambiguous field alias; the Python port has no such check
        java_types = {i["type"].lower() for i in verdict[component]["incompatibilities"]}
        python_types = {p.rule.name for p in apache_problems(reader, writer)}
        assert python_types == java_types, (case.name, component, verdict[component])


# ---------------------------------------------------------------- the real CLI on a few cases


def _catalog_with_case(tmp_path: Path, case: Case) -> Path:
    target = tmp_path / "schemas"
    shutil.copytree(SCHEMAS_DIR, target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    folder = target / case.schema
    (folder / "v1.avsc").write_text(json.dumps(case.old, ensure_ascii=False, indent=2), encoding="utf-8")
    (folder / "v2.avsc").write_text(json.dumps(case.new, ensure_ascii=False, indent=2), encoding="utf-8")
    # Every shipped type already has a pinned v2 (ids.yaml): the case's two versions take its v1 and v2.
    ids = (target / "ids.yaml").read_text(encoding="utf-8")
    assert f": {case.schema}/v1\n" in ids and f": {case.schema}/v2\n" in ids
    return target


def _shipped_count() -> int:
    """How many schemas the shipped catalog pins (the case's two replace its type's v1 and v2)."""
    return len(list(SCHEMAS_DIR.glob("*/v*.avsc")))


CLI_CASES = [c for c in CASES if c.cli]


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.name for c in CLI_CASES])
def test_the_cli_gives_the_same_verdict(case: Case, tmp_path: Path, java: dict[str, dict[str, Any]]) -> None:
    directory = _catalog_with_case(tmp_path, case)
    result = subprocess.run(
        [str(BUS389), "schemas", "check", "--dir", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    accepted = all(case.project_accepts(k) for k in COMPONENTS)
    if accepted:
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.startswith(f"ok: {_shipped_count()} schemas"), result.stdout
        return
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    problems = [line for line in result.stdout.splitlines() if line.startswith("problem: ")]
    assert problems, result.stdout
    rule = f"[bus389 rule {case.project_rule}]" if case.project_rule else "[Avro rule "
    assert any(rule in line for line in problems), result.stdout
    for line in problems:
        assert line.endswith("]") and ("[Avro rule " in line or "[bus389 rule " in line), line


def test_the_cli_covers_accepted_and_refused_cases() -> None:
    assert any(all(c.project_accepts(k) for k in COMPONENTS) for c in CLI_CASES)
    assert any(c.project_rule for c in CLI_CASES)
    assert any(not all(c.avro.values()) for c in CLI_CASES)


# ---------------------------------------------------------------- fastavro reads what the check accepts


def _sample(schema: Any, names: dict[str, Any], namespace: str = "") -> Any:
    """A value of ``schema`` that takes the non-null branch of unions and fills every array and map."""
    if isinstance(schema, list):
        branch = schema[1] if schema[0] == "null" and len(schema) > 1 else schema[0]
        return _sample(branch, names, namespace)
    if isinstance(schema, str):
        primitive = {"null": None, "boolean": True, "int": 7, "long": 7, "float": 1.5, "double": 1.5}
        if schema in primitive:
            return primitive[schema]
        if schema == "string":
            return "Hàng giả"
        if schema == "bytes":
            return b"\x00\xff"
        return _sample(names[schema if "." in schema else f"{namespace}.{schema}"], names, namespace)
    kind = schema["type"]
    logical = schema.get("logicalType")
    if logical == "uuid":
        return "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
    if isinstance(kind, list | dict):
        return _sample(kind, names, namespace)
    if kind in ("record", "enum", "fixed"):
        full = (
            schema["name"]
            if "." in schema["name"]
            else f"{schema.get('namespace', namespace)}.{schema['name']}"
        )
        names.setdefault(full, schema)
        namespace = full.rpartition(".")[0]
    if kind == "record":
        return {f["name"]: _sample(f["type"], names, namespace) for f in schema["fields"]}
    if kind == "enum":
        return schema["symbols"][0]
    if kind == "fixed":
        return b"\x01" * schema["size"]
    if kind == "array":
        return [_sample(schema["items"], names, namespace)]
    if kind == "map":
        return {"k": _sample(schema["values"], names, namespace)}
    return _sample(kind, names, namespace)


def _fastavro_reads(writer: dict[str, Any], reader: dict[str, Any]) -> bool:
    record = _sample(writer, {})
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(writer), record)
    buffer.seek(0)
    try:
        fastavro.schemaless_reader(buffer, fastavro.parse_schema(writer), fastavro.parse_schema(reader))
    except (fastavro.read.SchemaResolutionError, ValueError, KeyError, TypeError):
        return False
    return True


ALIAS_CASES = [c for c in CASES if "alias" in c.name]


@pytest.mark.parametrize("case", ALIAS_CASES, ids=[c.name for c in ALIAS_CASES])
def test_fastavro_reads_across_versions_what_the_check_accepts(case: Case) -> None:
    """Every direction the check accepts reads with fastavro; the issue's cross-namespace alias does not."""
    if case.project_accepts("backward") and case.avro["old_valid"] and case.avro["new_valid"]:
        assert _fastavro_reads(case.old, case.new), f"{case.name}: the new version cannot read old data"
    if case.project_accepts("forward") and case.avro["old_valid"] and case.avro["new_valid"]:
        assert _fastavro_reads(case.new, case.old), f"{case.name}: the old version cannot read new data"


def test_fastavro_reads_both_ways_on_several_alias_cases() -> None:
    """The check above is not vacuous: renames of fields, records, enums and fixed, and a namespace move."""
    both = [
        c.name
        for c in ALIAS_CASES
        if all(c.project_accepts(k) for k in COMPONENTS)
        and _fastavro_reads(c.old, c.new)
        and _fastavro_reads(c.new, c.old)
    ]
    assert {
        "field_renamed_alias_both_sides",
        "record_renamed_alias_both_sides",
        "record_moved_namespace_alias_both_sides",
        "enum_renamed_alias_both_sides",
        "fixed_renamed_alias_both_sides",
    } <= set(both), both


def test_the_alias_cases_include_one_fastavro_refuses_both_ways() -> None:
    """The issue's example: aliases in another namespace; the old check passed it, fastavro cannot read."""
    case = next(c for c in CASES if c.name == "record_renamed_alias_other_namespace_both_sides")
    assert not case.avro["backward"] and not case.avro["forward"]
    assert not _fastavro_reads(case.old, case.new)
    assert not _fastavro_reads(case.new, case.old)
