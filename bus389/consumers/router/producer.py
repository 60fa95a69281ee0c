"""The router's producer: built (transactional: ``init_transactions`` fences older epochs), aborted,
thrown away and built again.

kafka-python does not implement KIP-890, and its commit and abort wait without a bound: every
transaction call goes through :meth:`RouterProducer.call`, bounded by
``settings.router.transaction_timeout_s``. After a timeout or a fencing error the producer cannot
even abort (:func:`unusable`): it is closed and a new one built, whose ``init_transactions`` aborts
what the old epoch left open.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from bus389 import kafka as bus_kafka
from bus389.consumers.router.stats import RouterStats
from bus389.errors import BusError, CallTimeoutError
from bus389.recovery import Backoff, FailureKind, classify, fatal_error, is_fenced
from bus389.runtime.stop import StopFlag

__all__ = ["RouterProducer", "unusable"]

log = logging.getLogger(__name__)
_T = TypeVar("_T")


def unusable(exc: BaseException) -> bool:
    """Is the producer unusable (fenced, or stuck in a call): abort is pointless, rebuild it."""
    return is_fenced(exc) or isinstance(exc, CallTimeoutError)


class RouterProducer:
    """The one producer of a router instance, and whether a transaction of it is open."""

    def __init__(self, settings: Any, stop: StopFlag, stats: RouterStats) -> None:
        self.settings = settings
        self.config = settings.router
        self.stop = stop
        self.stats = stats
        self.producer: Any = None
        self.in_transaction = False
        self._call = bus_kafka.BoundedCaller("router-txn")
        """Runs the producer's flush, offsets, commit and abort, each with a bound on its wait."""

    def call(self, call: Callable[[], _T], what: str) -> _T:
        """``call`` on the producer, raising :class:`CallTimeoutError` after the transaction timeout."""
        return self._call(call, self.config.transaction_timeout_s, what)

    def build(self) -> bool:
        """A new producer; transactional ones call ``init_transactions`` (fencing any older epoch).

        Retries every transient failure (a coordinator away, ``UnknownBrokerIdError``, a timeout) with
        backoff until it succeeds; False when stopped first; raises a fatal one.
        """
        backoff = Backoff()
        for attempt in itertools.count():
            producer: Any = None
            try:
                with bus_kafka.kafka_errors(bootstrap=self.settings.bootstrap):
                    if not self.config.transactions:
                        producer = bus_kafka.make_producer(self.settings)
                    else:
                        producer = bus_kafka.open_transactional_producer(
                            self.settings,
                            self.config.transactional_id,
                            attempt=attempt,
                            init_timeout=self.config.transaction_timeout_s * 2,
                        )
                self.stats.producers_built += 1
                self.producer = producer
                return True
            except BusError as exc:
                if producer is not None:
                    _close_quietly(producer)
                kind = classify(exc)
                if kind is FailureKind.FATAL:
                    raise fatal_error("router", "the transactional producer", exc) from exc
                if kind is FailureKind.REQUEST or self.stop.is_set:
                    if self.stop.is_set:
                        return False
                    raise
                log.warning("router: producer not ready (%s); retrying in %.1fs", exc, backoff.upcoming)
                backoff.wait(lambda: self.stop.is_set)
        raise AssertionError("unreachable")  # pragma: no cover - itertools.count() never ends

    def begin(self) -> None:
        if self.config.transactions:
            self.producer.begin_transaction()
            self.in_transaction = True

    def commit(self, offsets: dict[Any, Any], group: Any) -> None:
        """Add the batch's offsets to the transaction and commit it, each call bounded."""
        self.call(lambda: self.producer.send_offsets_to_transaction(offsets, group), "send_offsets")
        self.call(self.producer.commit_transaction, "commit")
        self.in_transaction = False

    def abort_quietly(self, why: str) -> bool:
        """Abort the open transaction; False when the producer cannot (then it must be rebuilt)."""
        self.in_transaction = False
        if not self.config.transactions:
            return True
        try:
            self.call(self.producer.abort_transaction, "abort")
        except Exception as exc:  # noqa: BLE001 - any failure means: rebuild the producer
            log.warning("router: abort after %s failed (%s): rebuilding the producer", why, exc)
            return False
        self.stats.aborted += 1
        return True

    def close(self, timeout: float = 0.0) -> None:
        producer, self.producer = self.producer, None
        if producer is None:
            return
        try:
            producer.close(timeout=timeout)
        except Exception as exc:  # noqa: BLE001 - a broken producer is being thrown away
            log.warning("router: producer close failed: %s", exc)

    def shutdown(self) -> None:
        """Close the producer (waiting a little for what it holds) and the bounded caller."""
        if self.producer is not None:
            self.close(timeout=5.0)
        self._call.close()


def _close_quietly(producer: Any) -> None:
    try:
        producer.close(timeout=0)
    except Exception as exc:  # noqa: BLE001 - a producer that failed to start is being thrown away
        log.warning("router: producer close failed: %s", exc)
