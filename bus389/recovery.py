"""What a long-running service does with a failed Kafka call: wait it out, blame the request, or stop.

kafka-python's ``retriable`` flag answers "may this very request succeed if sent again?", which is
narrower than what a service needs to know. During a leader change or a broker kill, calls fail with
errors the flag calls final (``UnknownBrokerIdError`` for a coordinator that left the metadata,
``CommitFailedError`` after a rebalance, ``IllegalStateError`` from a consumer closed underneath, a
transactional producer's "unknown reasons") although a rebuilt client succeeds a moment later. So a
service sorts every failure into one of three kinds (:func:`classify`):

- :attr:`FailureKind.TRANSIENT`: the cluster, not the service: back off, rebuild the client if
  needed, read again from the committed offsets. Every Kafka error not listed below is this kind.
- :attr:`FailureKind.FATAL`: authorization, authentication or configuration: retrying cannot help,
  the service ends (non-zero) with a message saying what to fix (:func:`fatal_error`).
- :attr:`FailureKind.REQUEST`: the request itself (a record too large or invalid, or a bug met on
  this input): the same input fails the same way, so the caller isolates and sets it aside.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from typing import cast

import kafka.errors as kerrors

from bus389.errors import BrokerError, BusError, ConfigError

__all__ = ["Backoff", "FailureKind", "classify", "fatal_error", "is_fatal", "is_fenced", "kafka_cause"]

_sleep: Callable[[float], None] = time.sleep
"""How :class:`Backoff` sleeps (tests replace it)."""

_FATAL: tuple[type[BaseException], ...] = (
    kerrors.AuthorizationError,  # topic, group, cluster, transactional id, delegation token ACLs
    kerrors.SaslAuthenticationFailedError,
    kerrors.UnsupportedSaslMechanismError,
    kerrors.IllegalSaslStateError,
    kerrors.DelegationTokenAuthDisabledError,
    kerrors.InvalidPrincipalTypeError,
    kerrors.KafkaConfigurationError,
    kerrors.IllegalArgumentError,
    kerrors.UnsupportedVersionError,  # with IncompatibleBrokerVersion
    kerrors.UnrecognizedBrokerVersion,
    kerrors.InvalidConfigurationError,
    kerrors.InvalidRequiredAcksError,
    kerrors.InvalidSessionTimeoutError,
    kerrors.InvalidTransactionTimeoutError,
    kerrors.InvalidGroupIdError,
    kerrors.InvalidTopicError,
)
"""Kafka errors no retry can cure: an ACL, a credential or a setting must change first."""

_REQUEST: tuple[type[BaseException], ...] = (
    kerrors.MessageSizeTooLargeError,
    kerrors.RecordListTooLargeError,
    kerrors.InvalidRecordError,
    kerrors.InvalidTimestampError,
    kerrors.CorruptRecordError,
)
"""Kafka errors caused by what was sent: the same records fail the same way."""


class FailureKind(enum.Enum):
    """What a failed call means for the service that made it (see the module docstring)."""

    TRANSIENT = "transient"
    FATAL = "fatal"
    REQUEST = "request"


def kafka_cause(exc: BaseException) -> BaseException | None:
    """The kafka-python error behind ``exc`` (itself, or along its ``__cause__`` chain), if any."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 8:
        if isinstance(current, kerrors.KafkaError):
            return cast(BaseException, current)
        current = current.__cause__
        seen += 1
    return None


def classify(exc: BaseException) -> FailureKind:
    """Sort a failure into :class:`FailureKind`.

    A kafka-python error (raised directly, or as the cause of a :class:`BrokerError`) is FATAL when it
    is an authorization, authentication or configuration error, REQUEST when the records themselves
    were refused, and TRANSIENT otherwise, whatever its own ``retriable`` flag says. A
    :class:`BrokerError` raised by bus389 itself follows its ``retriable`` flag (a non-retriable one
    is FATAL: the code that raised it said so). Another :class:`BusError`: retriable is TRANSIENT, a
    :class:`ConfigError` is FATAL, the rest is REQUEST. Any other exception is REQUEST.
    """
    cause = kafka_cause(exc)
    if cause is not None:
        if isinstance(cause, _FATAL):
            return FailureKind.FATAL
        if isinstance(cause, _REQUEST):
            return FailureKind.REQUEST
        return FailureKind.TRANSIENT
    if isinstance(exc, BusError):
        if exc.retriable:
            return FailureKind.TRANSIENT
        if isinstance(exc, BrokerError | ConfigError):
            return FailureKind.FATAL
        return FailureKind.REQUEST
    return FailureKind.REQUEST


def is_fatal(exc: BaseException) -> bool:
    """True for an authorization, authentication or configuration failure (see :func:`classify`)."""
    return classify(exc) is FailureKind.FATAL


_FENCED: tuple[type[BaseException], ...] = (
    kerrors.ProducerFencedError,
    kerrors.InvalidProducerEpochError,
    kerrors.FencedInstanceIdError,
)
"""A newer instance took over the transactional id (or the static member id): this one is finished."""


def is_fenced(exc: BaseException) -> bool:
    """Was the transactional producer fenced (``exc`` itself, or the cause of a :class:`BrokerError`)?

    A fenced producer cannot even abort: the caller closes it and builds a new one, whose
    ``init_transactions`` takes the id back (and aborts what the old epoch left open). Fencing is
    TRANSIENT for :func:`classify`: the service goes on with the new producer.
    """
    return isinstance(kafka_cause(exc), _FENCED)


def fatal_error(service: str, what: str, exc: BaseException) -> BrokerError:
    """The error that ends ``service``: says which call Kafka refused, why, and that it will not retry.

    Raise it ``from exc``; the CLI prints it and exits with :attr:`BrokerError.exit_code`.
    """
    cause = kafka_cause(exc) or exc
    return BrokerError(
        f"{service}: Kafka refused {what} for good ({type(cause).__name__}: {cause}); "
        "check the ACLs, the credentials and the BUS389_KAFKA__* settings, then restart",
        retriable=False,
    )


class Backoff:
    """Exponential backoff between retries: ``initial`` doubled up to ``cap`` seconds, reset on success."""

    def __init__(self, initial: float = 0.5, cap: float = 10.0) -> None:
        self.initial = initial
        self.cap = cap
        self._next = initial
        self.failures = 0

    def reset(self) -> None:
        self._next = self.initial
        self.failures = 0

    @property
    def upcoming(self) -> float:
        """The delay the next :meth:`wait` will sleep."""
        return self._next

    def next_delay(self) -> float:
        """The delay before the next attempt (and count a failure)."""
        delay = self._next
        self._next = min(self._next * 2, self.cap)
        self.failures += 1
        return delay

    def wait(self, stopped: Callable[[], bool] = lambda: False) -> float:
        """Sleep the next delay in short steps, returning early once ``stopped()`` is true; the delay."""
        delay = self.next_delay()
        left = delay
        while left > 0 and not stopped():
            step = min(left, 0.2)
            _sleep(step)
            left -= step
        return delay
