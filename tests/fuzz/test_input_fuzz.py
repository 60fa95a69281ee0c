"""Fuzzing what a clerk can hand ``bus389 publish``: any file ends in events or an InputError, nothing else.

The reader (JSON, JSON Lines, CSV) and the validation in front of the publisher must turn every input
into either valid events or a :class:`~bus389.errors.BusError` naming the line; a raw exception would
reach the user as a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _fuzz_inputs import EVENT_TYPES, SAMPLES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bus389.errors import BusError
from bus389.producers.publisher import prepare_events
from bus389.producers.readers import read_records
from bus389.schemas.catalog import load_catalog

pytestmark = pytest.mark.timeout(180)

_json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20))
_json = st.recursive(
    _json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


def _attempt(path: Path, event_type: str) -> None:
    schema = load_catalog().latest(event_type).schema_json
    try:
        records = read_records(path, schema=schema)
        prepare_events(event_type, SAMPLES[event_type][0], records, source=path.name)
    except BusError as exc:
        assert str(exc)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=400), st.sampled_from(["json", "jsonl", "csv"]), st.sampled_from(EVENT_TYPES))
def test_random_bytes_as_an_input_file(tmp_path: Path, data: bytes, ext: str, event_type: str) -> None:
    path = tmp_path / f"input.{ext}"
    path.write_bytes(data)
    _attempt(path, event_type)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_json_of_any_shape_around_a_sample(tmp_path: Path, data: st.DataObject) -> None:
    event_type = data.draw(st.sampled_from(EVENT_TYPES))
    record: dict[str, Any] = json.loads(json.dumps(SAMPLES[event_type][1]))
    for _ in range(data.draw(st.integers(1, 3))):
        key = data.draw(st.sampled_from([*record, "meta", "unknown"]))
        record[key] = data.draw(_json)
    path = tmp_path / "input.jsonl"
    path.write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    _attempt(path, event_type)


# 500: json parses it, but the NFC pass of the event models recursed twice a level (RecursionError);
# 5 000 and 200 000: json's own parser raised RecursionError. All three were tracebacks.
@pytest.mark.parametrize("depth", [50, 500, 5_000, 200_000])
@pytest.mark.parametrize("ext", ["json", "jsonl"])
def test_deeply_nested_json_is_an_input_error(tmp_path: Path, depth: int, ext: str) -> None:
    path = tmp_path / f"deep.{ext}"
    path.write_text('{"summary": ' + "[" * depth + "]" * depth + "}\n", encoding="utf-8")
    with pytest.raises(BusError) as raised:
        _attempt_raising(path)
    if depth > 64:
        assert f"deep.{ext}:1: nested too deeply" in str(raised.value)


def test_a_deeply_dotted_csv_header_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.csv"
    path.write_text("regulation,problem,proposal," + ".".join(["a"] * 600) + "\nr,p,q,1\n", encoding="utf-8")
    with pytest.raises(BusError, match=r"deep\.csv:2: nested too deeply"):
        _attempt_raising(path)


def _attempt_raising(path: Path) -> None:
    schema = load_catalog().latest("law_gap_proposal").schema_json
    records = read_records(path, schema=schema)
    prepare_events("law_gap_proposal", "ict", records, source=path.name)
