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
    "SignatureError",
    "CorruptBodyError",
    "DocumentError",
    "EncodeError",
    "InputError",
    "InvalidRecordsError",
    "LocalKafkaError",
    "MailError",
    "NoBrokerError",
    "PolicyError",
    "PublishError",
    "RecordError",
    "SchemaCatalogError",
    "SchemaMismatchError",
    "StoreError",
    "ZoneCheckError",
    "TruncatedFrameError",
    "UnknownEventTypeError",
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


class InvalidRecordsError(InputError):
    """Several input records are invalid; every one is listed, one ``SOURCE:LINE: problem`` a line."""

    def __init__(self, records: list[RecordError], *, source: str = "", note: str = "") -> None:
        self.records = records
        self.source = source
        lines: list[str] = []
        for record in records:
            where = record.source or source
            at = f"{where}:{record.line}" if where else f"line {record.line}"
            lines.extend(f"{at}: {problem}" for problem in record.problems)
        head = f"{len(records)} invalid record{'s' if len(records) != 1 else ''}"
        head += f" in {source}" if source else ""
        head += f" ({note})" if note else ""
        super().__init__(head + ":\n" + "\n".join(lines))

    @property
    def problem_lines(self) -> list[str]:
        """Every problem as ``SOURCE:LINE: field: message``."""
        return str(self).split("\n")[1:]


class UnknownEventTypeError(InputError):
    """An event type (or a version of one) that the schema catalog does not have."""


class SchemaCatalogError(BusError):
    """The schema catalog is inconsistent: a duplicate id, a missing file, an incompatible version."""

    exit_code = 2


class CodecError(BusError):
    """A value cannot be encoded or decoded. ``reason`` is the DLQ reason code."""

    reason: str = "decode_error"


class SignatureError(BusError):
    """An event whose sender's signature does not verify (``reason``: a :mod:`bus389.signing` outcome)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


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


class EncodeError(CodecError):
    """A record does not fit its schema (a programming error upstream of the codec)."""

    reason = "encode_error"


class PolicyError(ConfigError):
    """The routing policy is invalid: names the rule and field."""


class BrokerError(BusError):
    """Kafka refused or failed a request; ``retriable`` follows kafka-python's own flag."""

    exit_code = 3

    def __init__(self, message: str, *, retriable: bool = False) -> None:
        super().__init__(message)
        self.retriable = retriable


class CallTimeoutError(BrokerError):
    """A Kafka client call gave no answer within its bound (kafka-python's transactional calls have none).

    The client may be stuck in the call: close it without waiting and build a new one.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, retriable=True)


class NoBrokerError(BrokerError):
    """No broker answered at the bootstrap address (nothing listening, or not up yet)."""


class PublishError(BrokerError):
    """Some events were not acknowledged; says which were.

    ``committed_event_ids`` are on the topic, ``uncommitted_event_ids`` are not (their transaction was
    aborted or never sent), ``unconfirmed_event_ids`` may or may not be (a commit was sent but its
    outcome is unknown: check the topic before publishing them again).
    """

    def __init__(
        self,
        message: str,
        *,
        retriable: bool = False,
        committed_event_ids: tuple[str, ...] = (),
        uncommitted_event_ids: tuple[str, ...] = (),
        unconfirmed_event_ids: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message, retriable=retriable)
        self.committed_event_ids = committed_event_ids
        self.uncommitted_event_ids = uncommitted_event_ids
        self.unconfirmed_event_ids = unconfirmed_event_ids


class LocalKafkaError(BusError):
    """The local Kafka could not be fetched, started, stopped or reached."""

    exit_code = 4


class StoreError(BusError):
    """A service's store (SQLite or PostgreSQL) failed."""

    retriable = True


class ZoneCheckError(StoreError):
    """A new RPZ zone failed ``named-checkzone``: it was not installed, the old zone stays in force."""


class DocumentError(BusError):
    """A report document could not be made (the PDF converter is missing or failed)."""

    exit_code = 5


class MailError(BusError):
    """A report could not be mailed: the SMTP server refused or could not be reached; nothing was sent."""

    exit_code = 6

    def __init__(self, message: str, *, retriable: bool = False) -> None:
        super().__init__(message)
        self.retriable = retriable
