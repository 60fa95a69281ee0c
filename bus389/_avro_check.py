"""The canonical-encoding check of an Avro body: what fastavro's reader lets through and must not.

fastavro's reader indexes a union's branches and an enum's symbols with Python semantics, so a
negative index reads as a branch or symbol counted from the end, where Apache Avro's reader refuses
it ("Can't access branch index -1"). It also reads any non-zero byte as ``true`` (Java reads only 1
as true) and takes encodings no writer produces: overlong varints, an array in several blocks or
with a byte size. bus389's writer is ``fastavro.schemaless_writer``, so the rule is simple: a body
must be the canonical encoding of the record it decodes to, i.e. re-encode to the very same bytes.

Re-encoding every body costs more than decoding it, so :func:`canonical_checker` instead compiles
each writer schema, once, into a function that walks the bytes without building any value and
checks every place where a body that decodes can differ from its re-encoding: each varint is minimal
(at most 10 bytes, no trailing zero groups), union and enum indexes are in range, booleans are 0 or
1, arrays and maps are one block of items ended by 0, lengths are not negative. Strings need no
check here (the decoder refuses invalid UTF-8, and valid UTF-8 re-encodes to itself); float and
double bit patterns are taken as written (no bus389 schema has either).

The function is generated as Python source (one function per named record, everything else inline)
because a tree of closures costs a function call per value; the source embeds nothing from the
schema but integers (counts, sizes) and generated names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

__all__ = ["Checker", "NonCanonicalError", "canonical_checker"]

Checker = Callable[[bytes, int], int]
"""``checker(data, offset)``: check the record encoded at ``offset``; return the offset after it."""


class NonCanonicalError(ValueError):
    """The bytes decode, but are not the canonical encoding of what they decode to."""


def _varint(data: bytes, i: int) -> tuple[int, int]:
    """The zigzag long at ``i`` and the offset after it; refuses what no writer produces."""
    low = data[i]
    if low < 0x80:
        return (low >> 1) ^ -(low & 1), i + 1
    high = data[i + 1]
    if 0 < high < 0x80:  # two bytes (a string of 64 to 8191 bytes)
        result = (low & 0x7F) | (high << 7)
        return (result >> 1) ^ -(result & 1), i + 2
    start = i
    result = 0
    shift = 0
    while True:
        byte = data[i]
        i += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
        shift += 7
        if shift > 63:
            raise NonCanonicalError(f"varint at offset {start} is longer than 10 bytes")
    if byte == 0 and i - start > 1:
        raise NonCanonicalError(f"overlong varint at offset {start}")
    if result >> 64:
        raise NonCanonicalError(f"varint at offset {start} is beyond 64 bits")
    return (result >> 1) ^ -(result & 1), i


def _skip_long(data: bytes, i: int) -> int:
    """The offset after the varint at ``i`` that is longer than one byte (a timestamp: six)."""
    start = i
    i += 1
    while data[i] >= 0x80:
        i += 1
    if not data[i] or i - start >= 9:
        _varint(data, start)  # overlong, or ten bytes that may exceed 64 bits: raises if so
    return i + 1


_SHORT = tuple(1 + (byte >> 1) if byte < 0x80 and not byte & 1 else 0 for byte in range(256))
"""For the first byte of a string's length: the bytes to skip when it is a length under 64, else 0."""


def _skip_bytes(data: bytes, i: int) -> int:
    """The offset after the string or bytes at ``i`` whose length is not one byte (or is negative)."""
    length, i = _varint(data, i)
    if length < 0:
        raise NonCanonicalError(f"negative length {length} before offset {i}")
    return i + length


def _enum_index(data: bytes, i: int, count: int) -> int:
    """The offset after the enum index at ``i`` that is not one byte in range; raises unless in range."""
    index, end = _varint(data, i)
    if not 0 <= index < count:
        raise NonCanonicalError(f"enum index {index} at offset {i} is out of range 0..{count - 1}")
    return end


def _bad_branch(data: bytes, i: int, count: int) -> None:
    """Raise for the union index at ``i``: not one of the bytes 0, 2, 4, ... of the branches."""
    index, _ = _varint(data, i)
    raise NonCanonicalError(f"union branch index {index} at offset {i} is out of range 0..{count - 1}")


def _bad_boolean(byte: int, i: int) -> None:
    raise NonCanonicalError(f"boolean byte 0x{byte:02x} at offset {i} (only 0x00 and 0x01 are booleans)")


def _bad_block(what: str, i: int) -> None:
    raise NonCanonicalError(f"{what} at offset {i} (the writer puts all items in one block, then 0)")


_HELPERS: dict[str, Any] = {
    "_varint": _varint,
    "_skip_long": _skip_long,
    "_enum_index": _enum_index,
    "_bad_branch": _bad_branch,
    "_bad_boolean": _bad_boolean,
    "_SHORT": _SHORT,
    "_skip_bytes": _skip_bytes,
    "_bad_block": _bad_block,
}


class _Generator:
    """Python source for one schema: a function per named record, the other types inline."""

    def __init__(self) -> None:
        self.functions: list[list[str]] = []
        self.records: dict[str, str] = {}  # full name -> generated function name
        self.named: dict[str, Mapping[str, Any]] = {}  # enums and fixed, by full name
        self.counter = 0

    def _var(self) -> str:
        self.counter += 1
        return f"v{self.counter}"

    def _read_long(self, var: str, out: list[str], pad: str) -> None:
        out.append(f"{pad}{var} = b[i]")
        out.append(f"{pad}if {var} < 0x80:")
        out.append(f"{pad}    i += 1")
        out.append(f"{pad}    {var} = ({var} >> 1) ^ -({var} & 1)")
        out.append(f"{pad}else:")
        out.append(f"{pad}    {var}, i = _varint(b, i)")

    # A union or enum index in range 0..63 is canonical only as the one byte 2 * index (zigzag), so
    # the common case is a byte comparison; anything else goes to a helper that names the problem.

    def emit(self, schema: Any, out: list[str], indent: int) -> None:
        """Append the code that checks one value of ``schema`` at ``b[i]`` and advances ``i``."""
        pad = " " * indent
        if isinstance(schema, list):
            self._union(schema, out, indent)
            return
        if isinstance(schema, Mapping):
            kind = schema["type"]
            if kind in ("record", "error"):
                out.append(f"{pad}i = {self._record(schema)}(b, i)")
                return
            if kind in ("enum", "fixed"):
                self.named[str(schema["name"])] = schema
                self._named(schema, out, pad)
                return
            if kind in ("array", "map"):
                self._blocks(schema, out, indent)
                return
            self.emit(kind, out, indent)  # a primitive with a logical type: same bytes
            return
        if schema == "null":
            return
        if schema in ("int", "long"):
            out.append(f"{pad}if b[i] < 0x80:")
            out.append(f"{pad}    i += 1")
            out.append(f"{pad}else:")
            out.append(f"{pad}    i = _skip_long(b, i)")
        elif schema in ("string", "bytes"):
            var = self._var()
            out.append(f"{pad}{var} = _SHORT[b[i]]")
            out.append(f"{pad}if {var}:")
            out.append(f"{pad}    i += {var}")
            out.append(f"{pad}else:")
            out.append(f"{pad}    i = _skip_bytes(b, i)")
        elif schema == "boolean":
            out.append(f"{pad}if b[i] > 1:")
            out.append(f"{pad}    _bad_boolean(b[i], i)")
            out.append(f"{pad}i += 1")
        elif schema == "float":
            out.append(f"{pad}i += 4")
        elif schema == "double":
            out.append(f"{pad}i += 8")
        elif schema in self.records:
            out.append(f"{pad}i = {self.records[schema]}(b, i)")
        elif schema in self.named:
            self._named(self.named[schema], out, pad)
        else:
            raise ValueError(f"unknown Avro type {schema!r}")

    def _named(self, schema: Mapping[str, Any], out: list[str], pad: str) -> None:
        if schema["type"] == "fixed":
            out.append(f"{pad}i += {int(schema['size'])}")
            return
        count = len(schema["symbols"])
        var = self._var()
        out.append(f"{pad}{var} = b[i]")
        out.append(f"{pad}if {var} < {min(2 * count, 0x80)} and not {var} & 1:")
        out.append(f"{pad}    i += 1")
        out.append(f"{pad}else:")
        out.append(f"{pad}    i = _enum_index(b, i, {count})")

    def _union(self, branches: list[Any], out: list[str], indent: int) -> None:
        if len(branches) > 64:
            raise ValueError(f"a union of {len(branches)} branches (at most 64 are supported)")
        pad = " " * indent
        var = self._var()
        out.append(f"{pad}{var} = b[i]")
        for index, branch in enumerate(branches):
            out.append(f"{pad}{'if' if index == 0 else 'elif'} {var} == {2 * index}:")
            out.append(f"{pad}    i += 1")
            self.emit(branch, out, indent + 4)
        out.append(f"{pad}else:")
        out.append(f"{pad}    _bad_branch(b, i, {len(branches)})")

    def _blocks(self, schema: Mapping[str, Any], out: list[str], indent: int) -> None:
        pad = " " * indent
        count = self._var()
        self._read_long(count, out, pad)
        out.append(f"{pad}if {count}:")
        out.append(f"{pad}    if {count} < 0:")
        out.append(f"{pad}        _bad_block('a block with a byte size', i)")
        out.append(f"{pad}    for _ in range({count}):")
        body: list[str] = []
        if schema["type"] == "map":
            self.emit("string", body, indent + 8)
        self.emit(schema["items" if schema["type"] == "array" else "values"], body, indent + 8)
        out.extend(body or [f"{pad}        pass"])
        out.append(f"{pad}    if b[i] != 0:")
        out.append(f"{pad}        _bad_block('a second block', i)")
        out.append(f"{pad}    i += 1")

    def _record(self, schema: Mapping[str, Any]) -> str:
        name = f"_record{len(self.records)}"
        self.records[str(schema["name"])] = name  # before the fields: a record may refer to itself
        lines = [f"def {name}(b, i):"]
        for field in schema["fields"]:
            self.emit(field["type"], lines, 4)
        lines.append("    return i")
        self.functions.append(lines)
        return name


def canonical_checker(schema: Mapping[str, Any]) -> Checker:
    """The check of bodies written with ``schema`` (a record schema as ``fastavro.parse_schema`` gives it).

    The checker raises :class:`NonCanonicalError` for bytes that decode but are not canonical, and may
    raise ``IndexError`` for bytes that do not decode at all (run it after the decoder accepted them).
    """
    generator = _Generator()
    top = generator._record(schema)
    source = "\n\n".join("\n".join(lines) for lines in generator.functions) + "\n"
    namespace = dict(_HELPERS)
    # Generated from the schema catalog (never from a message), embedding only ints and our own names.
    exec(compile(source, f"<avro canonical check of {schema['name']}>", "exec"), namespace)  # noqa: S102
    return cast(Checker, namespace[top])
