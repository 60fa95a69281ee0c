"""The one exception hierarchy of bus389, rooted in :class:`BusError`.

Every error carries ``retriable`` (may the same call succeed later?) and ``exit_code`` (what the CLI
exits with when the error reaches it). Only the Kafka and codec boundaries catch third-party
exceptions, and they re-raise one of these ``from exc``.
"""

from __future__ import annotations

__all__ = [
    "BadMagicByteError",
    "BrokerError",
    "BusError",
    "CodecError",
    "ConfigError",
    "CorruptBodyError",
    "InputError",
    "LocalKafkaError",
    "PolicyError",
    "PublishError",
    "RecordError",
    "SchemaCatalogError",
    "SchemaMismatchError",
    "StoreError",
    "TruncatedFrameError",
    "UnknownSchemaIdError",
]


class BusError(Exception):
    """Root of every error bus389 raises on purpose."""

    retriable: bool = False
    exit_code: int = 1


class ConfigError(BusError):
    """Settings, a config file or a policy file is invalid."""

    exit_code = 2


class InputError(BusError):
    """A user's input (a file, an argument) is wrong; names what and where."""

    exit_code = 1


class RecordError(InputError):
    """One input record is invalid: carries its line (or row) and the failing fields."""

    def __init__(self, line: int, problems: list[str], *, source: str = "") -> None:
        self.line = line
        self.problems = problems
        self.source = source
        where = f"{source}:{line}" if source else f"line {line}"
        super().__init__(f"{where}: " + "; ".join(problems))


class SchemaCatalogError(BusError):
    """The schema catalog is inconsistent: a duplicate id, a missing file, an incompatible version."""

    exit_code = 2


class CodecError(BusError):
    """A value cannot be encoded or decoded. ``reason`` is the DLQ reason code."""

    reason: str = "decode_error"


class BadMagicByteError(CodecError):
    reason = "bad_magic_byte"


class TruncatedFrameError(CodecError):
    reason = "truncated_frame"


class UnknownSchemaIdError(CodecError):
    reason = "unknown_schema_id"


class CorruptBodyError(CodecError):
    reason = "corrupt_body"


class SchemaMismatchError(CodecError):
    """The bytes decode, but not as the event type the headers or the caller expect."""

    reason = "schema_mismatch"


class PolicyError(ConfigError):
    """The routing policy is invalid: names the rule and field."""


class BrokerError(BusError):
    """Kafka refused or failed a request; ``retriable`` follows kafka-python's own flag."""

    exit_code = 3

    def __init__(self, message: str, *, retriable: bool = False) -> None:
        super().__init__(message)
        self.retriable = retriable


class PublishError(BrokerError):
    """Some events were not acknowledged; says which were."""


class LocalKafkaError(BusError):
    """The local Kafka could not be fetched, started, stopped or reached."""

    exit_code = 4


class StoreError(BusError):
    """A service's store (SQLite or PostgreSQL) failed."""

    retriable = True
