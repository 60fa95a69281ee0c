"""Reading a publisher's input file (JSON, JSON Lines or CSV) into records that remember their line.

The reader only parses: it turns bytes into ``dict`` records and keeps text exactly as written
(no Unicode normalisation, no newline translation inside values). Validation is the event models'
job. Every problem it reports names where it is: ``FILE:LINE`` (and the column for malformed JSON).

CSV is what a clerk exports from a spreadsheet: UTF-8 with or without the byte order mark Excel
writes, a header row, nested fields as dotted headers (``seller.name``), an empty cell meaning "not
given". When the event type is known its Avro schema says which columns hold arrays (cells split on
``;``), which hold numbers and which hold booleans; an array of records (``accounts``) is given as
one column per sub-field (``accounts.platform``, ``accounts.account``) whose ``;``-separated items
are taken pairwise.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, TypeAlias, cast

from bus389.errors import InputError, RecordError
from bus389.settings import InputSettings

__all__ = [
    "ARRAY_SEPARATOR",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_ROWS",
    "MAX_DEPTH",
    "STDIN",
    "CsvColumn",
    "Format",
    "SourceRecord",
    "csv_shape",
    "detect_format",
    "read_records",
    "sniff_format",
    "source_name",
]

Format: TypeAlias = Literal["json", "jsonl", "csv"]
STDIN = "-"
"""The source name that means standard input."""
ARRAY_SEPARATOR = ";"
"""Separates the items of an array in one CSV cell."""

_EXTENSIONS: dict[str, Format] = {
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
}
DEFAULT_MAX_BYTES = InputSettings().max_bytes
"""``settings.input.max_bytes``'s default: the largest input read."""
DEFAULT_MAX_ROWS = InputSettings().max_rows
"""``settings.input.max_rows``'s default: the most records one input may hold."""
_CHUNK = 1024 * 1024

_BOM = b"\xef\xbb\xbf"
_INT = re.compile(r"^[+-]?\d+$")
_TRUE = frozenset({"true", "1", "yes", "y", "có", "x"})
_FALSE = frozenset({"false", "0", "no", "n", "không"})


@dataclass(frozen=True)
class SourceRecord:
    """One input record and the line it starts on (1-based; for CSV the header is line 1)."""

    line: int
    data: dict[str, Any]


def source_name(source: Path | str) -> str:
    """How messages name the source: the path as given, or ``<stdin>``."""
    return "<stdin>" if str(source) == STDIN else str(source)


def detect_format(source: Path | str, fmt: str | None = None) -> Format | None:
    """The format asked for, else the one the file extension says; None for standard input without
    one (its first bytes tell: :func:`sniff_format`)."""
    if fmt is not None:
        wanted = fmt.lower()
        if wanted not in ("json", "jsonl", "csv"):
            raise InputError(f"unknown format {fmt!r}: use one of json, jsonl, csv")
        return cast(Format, wanted)
    if str(source) == STDIN:
        return None
    suffix = Path(source).suffix.lower()
    try:
        return _EXTENSIONS[suffix]
    except KeyError:
        known = ", ".join(sorted(_EXTENSIONS))
        raise InputError(
            f"{source}: cannot tell the format from the extension {suffix or '(none)'!r} "
            f"(known: {known}); pass --format json|jsonl|csv"
        ) from None


def read_records(
    source: Path | str,
    *,
    fmt: str | None = None,
    stdin: IO[bytes] | IO[str] | None = None,
    schema: Mapping[str, Any] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> list[SourceRecord]:
    """Read every record of ``source`` (a path, or ``"-"`` for ``stdin``) in file order.

    At most ``max_bytes`` are read (in chunks: an endless source such as ``/dev/zero`` stops there) and
    at most ``max_rows`` records kept; past either, :class:`~bus389.errors.InputError` naming the file.

    ``schema`` is the event's Avro record schema (parsed or as written); CSV uses it to know which
    columns are arrays, numbers and booleans. Raises :class:`~bus389.errors.RecordError` (an
    :class:`~bus389.errors.InputError`) naming the line for malformed input, invalid UTF-8 or a
    record nested more than :data:`MAX_DEPTH` levels deep.
    """
    form = detect_format(source, fmt)
    name = source_name(source)
    raw = _read_bytes(source, stdin, max_bytes)
    text = _decode(raw, name)
    del raw
    rows = _RowLimit(max_rows, name)
    if form is None:
        form = sniff_format(text, name)
    if form == "json":
        records = _read_json(text, name, rows)
    elif form == "jsonl":
        records = _read_jsonl(text, name, rows)
    else:
        records = _read_csv(text, name, csv_shape(schema) if schema is not None else None, rows)
    return _check_depth(records, name)


def sniff_format(text: str, name: str = "<stdin>") -> Format:
    """What a text without a name to go by is: ``[`` starts JSON; ``{`` starts JSON Lines when its first
    non-blank line is a whole JSON object, else one (pretty-printed) JSON object; anything else is CSV
    (a header row). Empty input is an error: there is nothing to publish."""
    body = text.lstrip("\ufeff \t\r\n")
    if not body:
        raise InputError(f"{name}: empty: nothing to read")
    if body.startswith("["):
        return "json"
    if body.startswith("{"):
        first = body.split("\n", 1)[0].strip()
        try:
            return "jsonl" if isinstance(json.loads(first), dict) else "json"
        except ValueError:
            return "json"
    return "csv"


@dataclass
class _RowLimit:
    """Counts records as they are parsed and stops at the limit (``settings.input.max_rows``)."""

    limit: int
    name: str
    count: int = 0

    def add(self, line: int) -> None:
        self.count += 1
        if self.count > self.limit:
            raise RecordError(
                line,
                [f"more than {self.limit:,} records (BUS389_INPUT__MAX_ROWS): split the file"],
                source=self.name,
            )


def _read_limited(stream: Any, name: str, max_bytes: int) -> bytes:
    """Read ``stream`` in chunks, stopping with an error as soon as it passes ``max_bytes``."""
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            break
        data = chunk.encode("utf-8") if isinstance(chunk, str) else bytes(chunk)
        total += len(data)
        if total > max_bytes:
            raise InputError(
                f"{name}: larger than {max_bytes:,} bytes (BUS389_INPUT__MAX_BYTES): "
                "not read; split the file or raise the limit"
            )
        chunks.append(data)
    return b"".join(chunks)


def _read_bytes(source: Path | str, stdin: IO[bytes] | IO[str] | None, max_bytes: int) -> bytes:
    if str(source) == STDIN:
        if stdin is None:
            raise InputError("no standard input to read")
        stream: Any = getattr(stdin, "buffer", stdin)
        try:
            return _read_limited(stream, "<stdin>", max_bytes)
        except OSError as exc:
            raise InputError(f"<stdin>: cannot read: {exc.strerror or exc}") from None
    path = Path(source)
    try:
        with path.open("rb") as handle:
            return _read_limited(handle, str(path), max_bytes)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def _decode(raw: bytes, name: str) -> str:
    if raw.startswith(_BOM):
        raw = raw[len(_BOM) :]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        bad = raw[exc.start : exc.end].hex(" ")
        raise RecordError(
            line,
            [f"not valid UTF-8 (byte {bad} at byte column {column}); save the file as UTF-8"],
            source=name,
        ) from None


def _reject_constant(value: str) -> Any:
    raise ValueError(f"{value} is not a JSON number")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _json_error(exc: json.JSONDecodeError, name: str, line_offset: int = 0) -> RecordError:
    return RecordError(
        exc.lineno + line_offset, [f"invalid JSON at column {exc.colno}: {exc.msg}"], source=name
    )


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


MAX_DEPTH = 64
"""How deeply a record may nest objects and arrays. An event nests four levels at most
(``accounts`` → item → field); the checks downstream (NFC normalisation, validation) recurse once or
twice per level, so a record nested hundreds of levels deep would end in a RecursionError there."""


def _too_deep(line: int, name: str) -> RecordError:
    return RecordError(
        line,
        [f"nested too deeply: more than {MAX_DEPTH} levels of objects and arrays (an event has a few)"],
        source=name,
    )


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether ``value`` nests dicts and lists more than ``limit`` levels deep (no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth >= limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _check_depth(records: list[SourceRecord], name: str) -> list[SourceRecord]:
    for record in records:
        # The record is level 1 (depth 0 in the walk): {"a": [[]]} is three levels deep.
        if _depth_exceeds(record.data, MAX_DEPTH):
            raise _too_deep(record.line, name)
    return records


def _decode_at(text: str, pos: int, name: str) -> tuple[Any, int]:
    try:
        return _DECODER.raw_decode(text, pos)
    except json.JSONDecodeError as exc:
        raise _json_error(exc, name) from None
    except ValueError as exc:  # NaN / Infinity
        raise RecordError(_line_of(text, pos), [f"invalid JSON: {exc}"], source=name) from None
    except RecursionError:
        raise _too_deep(_line_of(text, pos), name) from None


def _as_object(value: Any, line: int, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RecordError(
            line, [f"expected a JSON object (one event), got {type(value).__name__}"], source=name
        )
    return value


def _read_json(text: str, name: str, rows: _RowLimit) -> list[SourceRecord]:
    pos = _skip_ws(text, 0)
    if pos == len(text):
        raise RecordError(1, ["empty file: expected a JSON object or a list of objects"], source=name)
    records: list[SourceRecord] = []
    if text[pos] != "[":
        value, end = _decode_at(text, pos, name)
        records.append(SourceRecord(_line_of(text, pos), _as_object(value, _line_of(text, pos), name)))
    else:
        pos = _skip_ws(text, pos + 1)
        if pos < len(text) and text[pos] == "]":
            end = pos + 1
        else:
            # Lines counted from the previous record on, not from the top each time (quadratic).
            seen_pos, line = 0, 1
            while True:
                line += text.count("\n", seen_pos, pos)
                seen_pos = pos
                rows.add(line)
                value, pos = _decode_at(text, pos, name)
                records.append(SourceRecord(line, _as_object(value, line, name)))
                pos = _skip_ws(text, pos)
                if pos < len(text) and text[pos] == ",":
                    pos = _skip_ws(text, pos + 1)
                    continue
                if pos < len(text) and text[pos] == "]":
                    end = pos + 1
                    break
                # Let the decoder word the error exactly as it would for the whole document.
                try:
                    _DECODER.decode(text)
                except json.JSONDecodeError as exc:
                    raise _json_error(exc, name) from None
                except RecursionError:  # one level deeper than the records: word it as below
                    pass
                raise RecordError(_line_of(text, pos), ["invalid JSON: expected ',' or ']'"], source=name)
    rest = _skip_ws(text, end)
    if rest != len(text):
        line = _line_of(text, rest)
        column = rest - (text.rfind("\n", 0, rest) + 1) + 1
        raise RecordError(
            line, [f"invalid JSON at column {column}: extra data after the document"], source=name
        )
    return records


def _read_jsonl(text: str, name: str, rows: _RowLimit) -> list[SourceRecord]:
    records: list[SourceRecord] = []
    # Split on "\n" only: str.splitlines() would also split inside values at U+2028 and friends.
    for index, physical in enumerate(text.split("\n")):
        line = index + 1
        content = physical.removesuffix("\r")
        if not content.strip():
            continue
        rows.add(line)
        try:
            value = _DECODER.decode(content)
        except json.JSONDecodeError as exc:
            raise RecordError(line, [f"invalid JSON at column {exc.colno}: {exc.msg}"], source=name) from None
        except ValueError as exc:
            raise RecordError(line, [f"invalid JSON: {exc}"], source=name) from None
        except RecursionError:
            raise _too_deep(line, name) from None
        records.append(SourceRecord(line, _as_object(value, line, name)))
    return records


# --- CSV ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CsvColumn:
    """What a schema says about one dotted CSV column."""

    kind: Literal["string", "int", "bool", "other"]
    in_array: str | None = None
    """The dotted path of the array of records this column's items belong to, if any."""
    array: bool = False
    """The column is itself an array of scalars (its cell is split on ``;``)."""


@dataclass
class _Shape:
    leaves: dict[str, CsvColumn] = field(default_factory=dict)
    record_arrays: set[str] = field(default_factory=set)


def csv_shape(schema: Mapping[str, Any]) -> dict[str, CsvColumn]:
    """Map each dotted path of an Avro record schema to what a CSV cell for it holds."""
    shape = _Shape()
    named: dict[str, Any] = {}
    _walk(schema, "", shape, named, in_array=None)
    return shape.leaves


def _resolve(avro_type: Any, named: dict[str, Any]) -> Any:
    if isinstance(avro_type, str):
        # A named type used a second time is referenced by its (full or short) name.
        for key in (avro_type, avro_type.rsplit(".", 1)[-1]):
            if key in named:
                return named[key]
        return avro_type
    if isinstance(avro_type, list):
        branches = [b for b in avro_type if b != "null"]
        if len(branches) == 1:
            return _resolve(branches[0], named)
        return {"type": "union"}
    if isinstance(avro_type, Mapping):
        name = avro_type.get("name")
        if isinstance(name, str) and avro_type.get("type") in ("record", "enum", "fixed"):
            named.setdefault(name, avro_type)
            named.setdefault(name.rsplit(".", 1)[-1], avro_type)
    return avro_type


def _scalar_kind(avro_type: Any) -> Literal["string", "int", "bool", "other"]:
    if isinstance(avro_type, Mapping):
        if avro_type.get("logicalType") in (
            "date",
            "timestamp-millis",
            "timestamp-micros",
            "time-millis",
            "time-micros",
            "uuid",
        ):
            return "string"
        if avro_type.get("type") == "enum":
            return "string"
        avro_type = avro_type.get("type")
    if avro_type in ("int", "long"):
        return "int"
    if avro_type == "boolean":
        return "bool"
    if avro_type == "string":
        return "string"
    return "other"


def _walk(avro_type: Any, path: str, shape: _Shape, named: dict[str, Any], in_array: str | None) -> None:
    resolved = _resolve(avro_type, named)
    if isinstance(resolved, Mapping) and resolved.get("type") == "record":
        for fld in resolved.get("fields", []):
            child = f"{path}.{fld['name']}" if path else str(fld["name"])
            _walk(fld["type"], child, shape, named, in_array)
        return
    if isinstance(resolved, Mapping) and resolved.get("type") == "array":
        items = _resolve(resolved.get("items"), named)
        if isinstance(items, Mapping) and items.get("type") == "record" and in_array is None:
            shape.record_arrays.add(path)
            _walk(items, path, shape, named, in_array=path)
        else:
            shape.leaves[path] = CsvColumn(_scalar_kind(items), in_array=in_array, array=True)
        return
    shape.leaves[path] = CsvColumn(_scalar_kind(resolved), in_array=in_array)


def _convert(cell: str, leaf: CsvColumn | None) -> Any:
    if leaf is None:
        return cell
    if leaf.kind == "int" and _INT.match(cell.strip()):
        return int(cell.strip())
    if leaf.kind == "bool":
        folded = cell.strip().lower()
        if folded in _TRUE:
            return True
        if folded in _FALSE:
            return False
    # Anything else goes through as written, so that validation names the field and the value.
    return cell


def _split(cell: str) -> list[str]:
    return [item.strip() for item in cell.split(ARRAY_SEPARATOR) if item.strip()]


def _set_path(target: dict[str, Any], parts: list[str], value: Any) -> None:
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = value


def _check_headers(headers: list[str], name: str) -> None:
    problems: list[str] = []
    seen: set[str] = set()
    for index, header in enumerate(headers, start=1):
        if not header.strip():
            problems.append(f"column {index} has an empty header")
        elif header in seen:
            problems.append(f"{header}: header repeated")
        elif any(not part for part in header.split(".")):
            problems.append(f"{header}: malformed dotted header")
        seen.add(header)
    for header in seen:
        for other in seen:
            if other.startswith(header + "."):
                problems.append(f"{header}: both a value and a parent of {other}")
    if problems:
        raise RecordError(1, sorted(problems), source=name)


def _physical_lines(text: str) -> Iterator[str]:
    yield from io.StringIO(text, newline="")


def _read_csv(
    text: str, name: str, leaves: dict[str, CsvColumn] | None, rows: _RowLimit
) -> list[SourceRecord]:
    counter = _LineCounter(_physical_lines(text))
    reader = csv.reader(counter, strict=True)
    try:
        headers = next(reader)
    except StopIteration:
        raise RecordError(1, ["empty file: expected a header row"], source=name) from None
    except csv.Error as exc:
        raise RecordError(1, [f"invalid CSV: {exc}"], source=name) from None
    headers = [h.strip() for h in headers]
    _check_headers(headers, name)
    records: list[SourceRecord] = []
    while True:
        start = counter.lines + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise RecordError(start, [f"invalid CSV: {exc}"], source=name) from None
        if not any(cell.strip() for cell in row):
            continue
        rows.add(start)
        if len(row) > len(headers):
            raise RecordError(
                start, [f"{len(row)} cells but only {len(headers)} headers (a stray comma?)"], source=name
            )
        records.append(SourceRecord(start, _row_to_record(headers, row, leaves, start, name)))
    return records


class _LineCounter:
    """Counts the physical lines the csv module has pulled, to know where each row starts."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self.lines = 0

    def __iter__(self) -> _LineCounter:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.lines += 1
        return line


def _row_to_record(
    headers: list[str], row: list[str], leaves: dict[str, CsvColumn] | None, line: int, name: str
) -> dict[str, Any]:
    record: dict[str, Any] = {}
    grouped: dict[str, dict[str, list[Any]]] = {}
    for header, cell in zip(headers, row, strict=False):
        if cell == "" or not cell.strip():
            continue
        leaf = leaves.get(header) if leaves is not None else None
        if leaf is not None and leaf.in_array is not None:
            sub = header[len(leaf.in_array) + 1 :]
            # Positional: "a;;c" gives three items, the second without this sub-field.
            items = [item.strip() for item in cell.split(ARRAY_SEPARATOR)]
            grouped.setdefault(leaf.in_array, {})[sub] = [
                _convert(item, leaf) if item else None for item in items
            ]
        elif leaf is not None and leaf.array:
            _set_path(record, header.split("."), [_convert(item, leaf) for item in _split(cell)])
        else:
            _set_path(record, header.split("."), _convert(cell, leaf))
    for array_path, columns in grouped.items():
        lengths = {len(items) for items in columns.values()}
        if len(lengths) > 1:
            detail = ", ".join(f"{array_path}.{sub}={len(items)}" for sub, items in columns.items())
            raise RecordError(
                line,
                [f"{array_path}: the ';'-separated columns have different item counts ({detail})"],
                source=name,
            )
        count = lengths.pop()
        items_out: list[dict[str, Any]] = [{} for _ in range(count)]
        for sub, values in columns.items():
            for item, value in zip(items_out, values, strict=True):
                if value is not None:
                    _set_path(item, sub.split("."), value)
        _set_path(record, array_path.split("."), items_out)
    return record
