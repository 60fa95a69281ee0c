"""The named rules a schema and a schema change are judged by: Apache Avro's, and the project's stricter ones.

Every problem ``bus389 schemas check`` reports carries the rule that refused it, so an agency reading the
message knows whether Avro itself forbids the change (any Avro reader would fail or misread) or the
bus389 contract does (Avro would accept it, the project does not, for the reason the rule gives).
The project's rules are also written in ``ids.yaml``'s header and in the README's contract section.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "AVRO_AMBIGUOUS_FIELD_ALIAS",
    "AVRO_FIXED_SIZE_MISMATCH",
    "AVRO_INVALID_DEFAULT",
    "AVRO_INVALID_SCHEMA",
    "AVRO_MISSING_ENUM_SYMBOLS",
    "AVRO_MISSING_UNION_BRANCH",
    "AVRO_NAME_MISMATCH",
    "AVRO_READER_FIELD_MISSING_DEFAULT_VALUE",
    "AVRO_RULES",
    "AVRO_TYPE_MISMATCH",
    "PROJECT_DECIMAL",
    "PROJECT_DEFAULT_FITS",
    "PROJECT_ENUM_DEFAULT",
    "PROJECT_FULL_NAME",
    "PROJECT_LOGICAL_TYPE",
    "PROJECT_RULES",
    "PROJECT_UNAMBIGUOUS_ALIASES",
    "PROJECT_UNION_DEFAULT",
    "Problem",
    "Rule",
]

Authority = Literal["Avro", "bus389"]


@dataclass(frozen=True)
class Rule:
    """One rule: whose it is (``Avro`` or ``bus389``), its name, and why it exists."""

    authority: Authority
    name: str
    summary: str

    def __str__(self) -> str:
        return f"{self.authority} rule {self.name}"

    @property
    def is_project(self) -> bool:
        """True for the project's own (stricter than Avro) rules."""
        return self.authority == "bus389"


@dataclass(frozen=True)
class Problem:
    """One refusal: the rule, and a one-line message naming the field or type."""

    rule: Rule
    message: str

    def __str__(self) -> str:
        return f"{self.message} [{self.rule}]"


# Apache Avro's rules: the names are SchemaCompatibility's incompatibility types (Java and the Python port)
# and the Java parser's refusals.
AVRO_NAME_MISMATCH = Rule("Avro", "name_mismatch", "a named type reads only its own name or a reader alias")
AVRO_FIXED_SIZE_MISMATCH = Rule("Avro", "fixed_size_mismatch", "a fixed keeps its size")
AVRO_MISSING_ENUM_SYMBOLS = Rule(
    "Avro", "missing_enum_symbols", "an enum reads every writer symbol, unless it has a default"
)
AVRO_READER_FIELD_MISSING_DEFAULT_VALUE = Rule(
    "Avro", "reader_field_missing_default_value", "a reader field the writer lacks needs a default"
)
AVRO_TYPE_MISMATCH = Rule("Avro", "type_mismatch", "a type reads only itself or what the spec promotes")
AVRO_MISSING_UNION_BRANCH = Rule(
    "Avro", "missing_union_branch", "some branch of a reader union reads each writer type"
)
AVRO_AMBIGUOUS_FIELD_ALIAS = Rule(
    "Avro", "ambiguous_field_alias", "a reader field (name and aliases) matches at most one writer field"
)
AVRO_INVALID_DEFAULT = Rule(
    "Avro", "invalid_default", "a field's default is a value of its type (Java parser, defaults validated)"
)
AVRO_INVALID_SCHEMA = Rule("Avro", "invalid_schema", "the schema parses (names, types, symbols)")

AVRO_RULES = (
    AVRO_NAME_MISMATCH,
    AVRO_FIXED_SIZE_MISMATCH,
    AVRO_MISSING_ENUM_SYMBOLS,
    AVRO_READER_FIELD_MISSING_DEFAULT_VALUE,
    AVRO_TYPE_MISMATCH,
    AVRO_MISSING_UNION_BRANCH,
    AVRO_AMBIGUOUS_FIELD_ALIAS,
    AVRO_INVALID_DEFAULT,
    AVRO_INVALID_SCHEMA,
)

# The project's own rules, each stricter than Avro 1.12 and each with its reason.
PROJECT_FULL_NAME = Rule(
    "bus389",
    "full-name-stable",
    "a named type keeps its full name (namespace included), or the reader names the old full name "
    "as an alias: Avro matches records by their short name alone, but agencies' generated code and "
    "the .avsc files are addressed by full name",
)
PROJECT_LOGICAL_TYPE = Rule(
    "bus389",
    "logical-type-stable",
    "a value keeps its logical type (no millis <-> micros, no date -> timestamp): Avro ignores logical "
    "types when resolving, so the number would be read with another meaning",
)
PROJECT_DECIMAL = Rule(
    "bus389",
    "decimal-scale-precision-stable",
    "a decimal keeps its scale and precision: the same bytes would be read as another amount",
)
PROJECT_UNION_DEFAULT = Rule(
    "bus389",
    "union-default-first-branch",
    "a union's default is a value of its first branch (the Avro specification up to 1.11; 1.12 and its "
    "Java parser accept any branch, but older and other-language readers take the first)",
)
PROJECT_DEFAULT_FITS = Rule(
    "bus389",
    "default-fits-type",
    "an enum default is one of its symbols, a fixed default has exactly its size, a bytes or fixed "
    "default uses code points 0-255 only: the Java parser checks only that they are strings",
)
PROJECT_UNAMBIGUOUS_ALIASES = Rule(
    "bus389",
    "unambiguous-aliases",
    "an alias names one thing only: no two fields of a record, and no two named types of a schema, "
    "share a name or alias, and no two reader fields read the same writer field",
)
PROJECT_ENUM_DEFAULT = Rule(
    "bus389",
    "enum-has-default",
    "every enum has a default, so an old reader survives a symbol added later",
)

PROJECT_RULES = (
    PROJECT_FULL_NAME,
    PROJECT_LOGICAL_TYPE,
    PROJECT_DECIMAL,
    PROJECT_UNION_DEFAULT,
    PROJECT_DEFAULT_FITS,
    PROJECT_UNAMBIGUOUS_ALIASES,
    PROJECT_ENUM_DEFAULT,
)
