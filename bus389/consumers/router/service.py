"""The router service: every outbox in, one transaction per batch out (inbox copies, audit, DLQ, offsets).

Delivery guarantee: exactly-once from outbox to inboxes. Per batch the router begins a transaction,
writes for each event one copy per recipient and one audit record (or one DLQ record), then adds the
batch's consumer offsets to the same transaction with the consumer's group metadata (KIP-447, so a
stale instance is fenced) and commits. Readers are ``read_committed``: a crash before the commit
leaves nothing visible and the batch is read again from the committed offsets; after it, the offsets
moved with the copies. Keys are kept (``meta.case_ref`` or the event id), so a case stays in order in
every inbox.

:class:`~bus389.consumers.router.records.RecordRouter` turns one outbox record into the records to write,
without Kafka; :class:`RouterService` is the loop around it. kafka-python does not
implement KIP-890, and its commit and abort wait without a bound: every transaction call is bounded
by ``settings.router.transaction_timeout_s``; after a timeout or a fencing error the producer is
closed and a new one built (``init_transactions`` fences the old epoch and aborts what it left open),
and the consumer is put back to its committed offsets so that the batch is read again.

A broker failure anywhere (poll, send, flush, the offsets, the commit, the committed offsets, the
metadata, building a client) is waited out, never an exit: abort or rebuild the producer, put the
consumer back to its committed offsets (or rejoin with a new one), back off, go on. kafka-python's own
``retriable`` flag is not the test: a leader change also raises errors it calls final, such as
``UnknownBrokerIdError``; :func:`bus389.recovery.classify` decides. Only an authorization,
authentication or configuration error stops the router, with a message saying what to fix.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from kafka import ConsumerRebalanceListener

from bus389.agencies import Agency, Topics
from bus389.assignment_watch import AssignmentWatch
from bus389.consumers.router.audit import Origin
from bus389.consumers.router.records import RecordRouter, Routed, dlq_record
from bus389.consumers.router.replies import ReplyIndex, rebuild_from_audit
from bus389.errors import BrokerError, BusError, CallTimeoutError
from bus389.kafka import BoundedCaller
from bus389.recovery import Backoff, FailureKind, classify, fatal_error
from bus389.routing.decision import SPOOFED_SOURCE
from bus389.routing.policy import Policy, load_policy
from bus389.runtime import StopFlag

__all__ = ["ROUTER_ERROR", "RecordRouter", "RouterService", "RouterStats"]

log = logging.getLogger(__name__)

ROUTER_ERROR = "router_error"
_STRIKES = 3
"""A batch that fails for a non-retriable reason is retried one event at a time; an event that fails
alone this many times goes to the DLQ as ``router_error``, so one event never stalls the router."""

_IDLE_POLL_MS = 2_000
"""The longest a poll waits for the first record of a batch (SIGTERM is seen within this)."""
_REJOIN_AFTER = 3
"""A consumer whose poll, or whose committed offsets, failed this many times in a row is replaced."""
_T = TypeVar("_T")


@dataclass
class RouterStats:
    """What a router run did (for logs and tests)."""

    batches: int = 0
    events: int = 0
    routed: int = 0
    copies: int = 0
    dead_letters: dict[str, int] = field(default_factory=dict)
    aborted: int = 0
    producers_built: int = 0
    rejoins: int = 0


class _Rebalanced(BusError):
    retriable = True


def _poisonous(exc: BaseException) -> bool:
    """May the batch itself cause ``exc`` (not the broker, a leader change, a rebalance or a fencing)?"""
    return classify(exc) is FailureKind.REQUEST


def _fencing(exc: BaseException) -> bool:
    """Is the producer unusable (fenced, or stuck in a call): abort is pointless, rebuild it."""
    import kafka.errors as errors

    fenced = (
        errors.ProducerFencedError,
        errors.InvalidProducerEpochError,
        errors.FencedInstanceIdError,
    )
    return isinstance(exc, fenced) or isinstance(exc, CallTimeoutError)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Rebalance listener: notes that the assignment changed, so that the batch in hand is dropped.

    kafka-python runs listeners on its IO loop, where a blocking producer call must not run: the loop
    itself aborts the open transaction (if any) when it sees the flag, before sending offsets.
    """

    def __init__(self, service: RouterService) -> None:
        self._service = service

    def on_partitions_revoked(self, revoked: Any) -> None:
        self._service.note_rebalance("revoked", revoked)

    def on_partitions_assigned(self, assigned: Any) -> None:
        self._service.note_rebalance("assigned", assigned)

    def on_partitions_lost(self, lost: Any) -> None:
        self._service.note_rebalance("lost", lost)


class RouterService:
    """The router's loop: poll a bounded batch, route it in one transaction, commit with its offsets."""

    def __init__(
        self,
        settings: Any,
        *,
        policy: Policy | None = None,
        stop: StopFlag | None = None,
        count_metrics: bool = True,
    ) -> None:
        self.settings = settings
        self.config = settings.router
        self.topics: Topics = settings.topics
        self.policy = policy if policy is not None else load_policy(self.config.policy_path)
        self.stop = stop or StopFlag()
        self.replies = ReplyIndex()
        self.router = RecordRouter(self.topics, self.policy, self.replies)
        self.stats = RouterStats()
        self._metrics = count_metrics
        self._producer: Any = None
        self._consumer: Any = None
        self._rebalanced = threading.Event()
        self._in_transaction = False
        self._strikes: dict[tuple[str, int, int], int] = {}
        self._assignment_watch = AssignmentWatch(settings, self.config.group_id)
        self._single_left = 0
        self._failures = Backoff()
        """Between batches that failed for a transient reason, reset by a committed batch."""
        self._call = BoundedCaller("router-txn")
        """Runs the producer's flush, offsets, commit and abort, each with a bound on its wait."""

    # -- lifecycle -----------------------------------------------------------------------------------

    def run(self, *, max_idle_polls: int | None = None) -> RouterStats:
        """Route until SIGTERM/SIGINT (``stop``) or ``max_idle_polls`` empty polls in a row.

        Raises a non-retriable :class:`~bus389.errors.BrokerError` only for an authorization,
        authentication or configuration error; every other broker failure is waited out.
        """
        try:
            self._producer = self._build_producer()
            if self._producer is None:
                return self.stats
            if not self._until_done("read the audit trail", self._read_audit):
                return self.stats
            if not self._until_done("join the group", self._subscribe):
                return self.stats
            self._loop(max_idle_polls)
        finally:
            self._close()
        return self.stats

    def _read_audit(self) -> None:
        self.replies = ReplyIndex()
        self.router = RecordRouter(self.topics, self.policy, self.replies)
        rebuild_from_audit(self.settings, self.replies)

    def _until_done(self, what: str, call: Callable[[], object]) -> bool:
        """Run ``call`` until it succeeds, backing off on transient failures; False when stopped first."""
        backoff = Backoff()
        while not self.stop.is_set:
            try:
                call()
            except Exception as exc:  # noqa: BLE001 - sorted by classify: fatal ones are raised
                kind = classify(exc)
                if kind is FailureKind.FATAL:
                    raise fatal_error("router", what, exc) from exc
                if kind is FailureKind.REQUEST:
                    raise
                log.warning(
                    "router: cannot %s yet (%s: %s); retrying in %.1fs",
                    what,
                    type(exc).__name__,
                    exc,
                    backoff.upcoming,
                )
                backoff.wait(self._stopped)
                continue
            return True
        return False

    def _stopped(self) -> bool:
        return self.stop.is_set

    def _loop(self, max_idle_polls: int | None) -> None:
        log.info(
            "router: routing %d outboxes under %s as group %s (transactional id %s, policy %s, %d rules)",
            len(self.topics.all_outboxes()),
            self.topics.prefix,
            self.config.group_id,
            self.config.transactional_id if self.config.transactions else "-",
            self.policy.source,
            len(self.policy.rules),
        )
        idle = 0
        poll_failures = Backoff()
        while not self.stop.is_set:
            try:
                batch = self._poll_batch()
            except Exception as exc:  # noqa: BLE001 - sorted by classify: fatal ones are raised
                self._poll_failed(exc, poll_failures)
                continue
            poll_failures.reset()
            if self._rebalanced.is_set():
                self._rebalanced.clear()
                if batch:
                    log.info("router: assignment changed while polling: %d event(s) read again", len(batch))
                    self._give_back(batch)
                continue
            if not batch:
                idle += 1
                if max_idle_polls is not None and idle >= max_idle_polls:
                    break
                self._unstick()
                continue
            idle = 0
            self._process(batch)

    def _poll_failed(self, exc: BaseException, backoff: Backoff) -> None:
        """A poll failed (the part of the batch in hand was given back): back off, maybe rejoin."""
        kind = classify(exc)
        if kind is FailureKind.FATAL:
            raise fatal_error("router", "the poll", exc) from exc
        if kind is FailureKind.REQUEST and not isinstance(exc, BusError):
            raise exc  # a bug, not the broker: let the supervisor restart us
        log.warning(
            "router: poll failed (%s: %s); retrying in %.1fs", type(exc).__name__, exc, backoff.upcoming
        )
        backoff.wait(self._stopped)
        if backoff.failures >= _REJOIN_AFTER and not self.stop.is_set:
            self._rejoin(f"the poll failed {backoff.failures} times in a row")
            backoff.reset()

    def _await_outboxes(self, timeout_s: float = 30.0) -> None:
        """Wait until the metadata shows every outbox, so the first assignment covers them all.

        A group member that joins before a topic shows in its metadata is assigned nothing for it
        until its next metadata refresh; topics just created take a moment to show.
        """
        from bus389.kafka import kafka_errors

        missing = self.topics.all_outboxes()
        deadline = time.monotonic() + timeout_s
        while missing and not self.stop.is_set:
            with kafka_errors(bootstrap=self.settings.bootstrap):
                missing = [t for t in missing if not self._consumer.partitions_for_topic(t)]
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if missing:
            log.warning(
                "router: no metadata for %s yet (run `bus389 topics apply`); they are picked up within %ds",
                ", ".join(missing),
                self.settings.kafka.metadata_max_age_ms // 1000,
            )

    def note_rebalance(self, what: str, partitions: Any) -> None:
        """Called by the rebalance listener (kafka-python's IO loop): the batch in hand must be dropped."""
        names = sorted(f"{tp.topic}/{tp.partition}" for tp in partitions)
        log.info("router: %d partition(s) %s", len(names), what)
        log.debug("router: partitions %s: %s", what, names)
        self._rebalanced.set()

    def _close(self) -> None:
        if self._in_transaction and self._producer is not None:
            self._abort_quietly("shutting down")
        if self._consumer is not None:
            try:
                self._consumer.close(autocommit=False)
            except Exception as exc:  # noqa: BLE001 - closing must not hide why the loop ended
                log.warning("router: consumer close failed: %s", exc)
        if self._producer is not None:
            self._close_producer(timeout=5.0)
        self._call.close()
        log.info(
            "router: stopped after %d batch(es), %d event(s), %d routed, %d dead letter(s)",
            self.stats.batches,
            self.stats.events,
            self.stats.routed,
            sum(self.stats.dead_letters.values()),
        )

    # -- the producer --------------------------------------------------------------------------------

    def _build_producer(self) -> Any:
        """A new producer; transactional ones call ``init_transactions`` (fencing any older epoch).

        Retries every transient failure (a coordinator away, ``UnknownBrokerIdError``, a timeout) with
        backoff until it succeeds; returns None when stopped first; raises a fatal one.
        """
        from bus389.kafka import kafka_errors, make_producer, open_transactional_producer

        backoff = Backoff()
        for attempt in itertools.count():
            producer: Any = None
            try:
                with kafka_errors(bootstrap=self.settings.bootstrap):
                    if not self.config.transactions:
                        producer = make_producer(self.settings)
                    else:
                        producer = open_transactional_producer(
                            self.settings,
                            self.config.transactional_id,
                            attempt=attempt,
                            init_timeout=self.config.transaction_timeout_s * 2,
                        )
                self.stats.producers_built += 1
                return producer
            except BusError as exc:
                if producer is not None:
                    _close_quietly(producer)
                kind = classify(exc)
                if kind is FailureKind.FATAL:
                    raise fatal_error("router", "the transactional producer", exc) from exc
                if kind is FailureKind.REQUEST or self.stop.is_set:
                    if self.stop.is_set:
                        return None
                    raise
                log.warning("router: producer not ready (%s); retrying in %.1fs", exc, backoff.upcoming)
                backoff.wait(self._stopped)
        raise AssertionError("unreachable")  # pragma: no cover - itertools.count() never ends

    def _close_producer(self, timeout: float = 0.0) -> None:
        producer, self._producer = self._producer, None
        if producer is None:
            return
        try:
            producer.close(timeout=timeout)
        except Exception as exc:  # noqa: BLE001 - a broken producer is being thrown away
            log.warning("router: producer close failed: %s", exc)

    def _abort_quietly(self, why: str) -> bool:
        """Abort the open transaction; False when the producer cannot (then it must be rebuilt)."""
        self._in_transaction = False
        if not self.config.transactions:
            return True
        try:
            self._call(self._producer.abort_transaction, self.config.transaction_timeout_s, "abort")
        except Exception as exc:  # noqa: BLE001 - any failure means: rebuild the producer
            log.warning("router: abort after %s failed (%s): rebuilding the producer", why, exc)
            return False
        self.stats.aborted += 1
        return True

    # -- the consumer --------------------------------------------------------------------------------

    def _poll_batch(self) -> list[Any]:
        """At most ``batch_max_events`` records, gathered for at most ``batch_max_ms`` after the first.

        The first poll may wait up to ``_IDLE_POLL_MS`` (it returns as soon as records arrive): a
        long poll lets a rebalance complete inside one call, which kafka-python 3.0 needs (below).
        """
        from bus389.kafka import kafka_errors

        limit = 1 if self._single_left else self.config.batch_max_events
        deadline: float | None = None
        records: list[Any] = []
        while len(records) < limit and not self.stop.is_set:
            if deadline is None:
                timeout_ms = _IDLE_POLL_MS
            else:
                timeout_ms = int((deadline - time.monotonic()) * 1000)
                if timeout_ms <= 0:
                    break
            try:
                with kafka_errors(bootstrap=self.settings.bootstrap):
                    got = self._consumer.poll(timeout_ms=timeout_ms, max_records=limit - len(records))
            except BrokerError:
                if records:  # the part of the batch in hand goes back, to be read again
                    self._give_back(records)
                raise
            for tp_records in got.values():
                records.extend(tp_records)
            if not records:
                break
            if deadline is None:
                deadline = time.monotonic() + self.config.batch_max_ms / 1000
        return records

    def _subscribe(self) -> None:
        """A new consumer subscribed to every outbox; on failure none is left behind (retry-safe)."""
        from bus389.kafka import kafka_errors, make_consumer

        with kafka_errors(bootstrap=self.settings.bootstrap):
            self._consumer = make_consumer(
                self.settings,
                group_id=self.config.group_id,
                max_poll_records=self.config.batch_max_events,
                session_timeout_ms=self.config.session_timeout_ms,
                heartbeat_interval_ms=max(1000, self.config.session_timeout_ms // 4),
            )
        try:
            self._await_outboxes()
            self._assignment_watch.reset()
            with kafka_errors(bootstrap=self.settings.bootstrap):
                self._consumer.subscribe(topics=self.topics.all_outboxes(), listener=_Listener(self))
        except BaseException:
            consumer, self._consumer = self._consumer, None
            try:
                consumer.close(autocommit=False)
            except Exception as exc:  # noqa: BLE001 - the failure being raised matters more
                log.warning("router: consumer close failed: %s", exc)
            raise

    def _unstick(self) -> None:
        """Rejoin with a new consumer when the group left this router without partitions
        (:mod:`bus389.assignment_watch`). Between batches no transaction is open, so a new consumer
        (a new member) is safe."""
        why = self._assignment_watch.check(self._consumer)
        if why is not None:
            self._rejoin(why)

    def _rejoin(self, why: str) -> None:
        """Replace the consumer by a new group member, which starts from the committed offsets.

        Only between batches (no transaction open). Retries until it succeeds or the router stops.
        """
        log.warning("router: %s: rejoining the group with a new consumer", why)
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            try:
                consumer.close(autocommit=False)
            except Exception as exc:  # noqa: BLE001 - the old member is being thrown away
                log.warning("router: consumer close failed: %s", exc)
        self.stats.rejoins += 1
        self._rebalanced.clear()
        self._until_done("rejoin the group", self._subscribe)

    def _give_back(self, batch: list[Any]) -> None:
        """Drop a batch polled across a rebalance: each partition still ours goes back to its first event.

        Partitions newly assigned already start at their committed offset; a partition we kept was
        committed by us alone, up to the batch's first event of it. No broker call is needed (and none
        is made while the group may still be settling).
        """
        from kafka import TopicPartition

        from bus389.kafka import kafka_errors

        first: dict[Any, int] = {}
        for raw in batch:
            tp = TopicPartition(raw.topic, raw.partition)
            first[tp] = min(first.get(tp, raw.offset), raw.offset)
        try:
            with kafka_errors(bootstrap=self.settings.bootstrap):
                assigned = self._consumer.assignment()
                for tp, offset in first.items():
                    if tp in assigned:
                        self._consumer.seek(tp, offset)
        except BrokerError as exc:
            # The assignment moved under us: the committed offsets are the truth.
            log.warning("router: cannot give the batch back (%s): reading from the committed offsets", exc)
            self._resync()

    def _rewind(self) -> None:
        """Put every assigned partition back to its committed offset (or the beginning).

        After a failed transaction the committed offset is the truth: a commit that timed out may
        still have gone through, and then the batch must not be read again.
        """
        from kafka import TopicPartition

        from bus389.kafka import kafka_errors

        timeout_ms = int(self.config.transaction_timeout_s * 1000)
        with kafka_errors(bootstrap=self.settings.bootstrap):
            for tp in sorted(self._consumer.assignment(), key=lambda t: (t.topic, t.partition)):
                committed = self._consumer.committed(
                    TopicPartition(tp.topic, tp.partition), timeout_ms=timeout_ms
                )
                if committed is None:
                    self._consumer.seek_to_beginning(tp)
                else:
                    self._consumer.seek(tp, committed)

    def _resync(self) -> None:
        """Put the consumer back to its committed offsets, retrying; rejoin when that keeps failing."""
        backoff = Backoff()
        while not self.stop.is_set:
            try:
                self._rewind()
                return
            except BrokerError as exc:
                if classify(exc) is FailureKind.FATAL:
                    raise fatal_error("router", "reading the committed offsets", exc) from exc
                if backoff.failures + 1 >= _REJOIN_AFTER:
                    self._rejoin(f"cannot read the committed offsets ({exc})")
                    return
                log.warning(
                    "router: cannot read the committed offsets (%s); retrying in %.1fs", exc, backoff.upcoming
                )
                backoff.wait(self._stopped)

    # -- one batch -------------------------------------------------------------------------------------

    def _process(self, batch: list[Any]) -> None:
        started = time.monotonic()
        try:
            results, commit_started = self._transact(batch)
        except Exception as exc:  # noqa: BLE001 - every failure ends in abort + re-read, never a lost batch
            self._recover(exc, len(batch))
            if _poisonous(exc):
                self._strike(batch, exc)
            else:
                self._failures.wait(self._stopped)  # the cluster is unwell: do not hammer it
            return
        self._failures.reset()
        self._single_left = max(0, self._single_left - 1)
        self._committed(results, started, commit_started)

    def _strike(self, batch: list[Any], exc: BaseException) -> None:
        """A non-retriable failure: retry one event at a time, and dead-letter an event that keeps failing."""
        if len(batch) > 1:
            log.warning("router: batch failed (%s): retrying one event at a time", exc)
            self._single_left = self.config.batch_max_events
            return
        (raw,) = batch
        key = (raw.topic, raw.partition, raw.offset)
        self._strikes[key] = self._strikes.get(key, 0) + 1
        if self._strikes[key] < _STRIKES:
            return
        if self._producer is None or self._consumer is None:  # stopped while rebuilding a client
            return
        del self._strikes[key]
        detail = f"the router failed on this event {_STRIKES} times: {type(exc).__name__}: {exc}"
        log.error("router: %s/%d/%d to the DLQ: %s", raw.topic, raw.partition, raw.offset, detail)
        origin = Origin(raw.topic, raw.partition, raw.offset)
        dead = Routed(
            origin=origin,
            outgoing=(dlq_record(self.topics.dlq, raw, ROUTER_ERROR, detail),),
            dlq_reason=ROUTER_ERROR,
            dlq_detail=detail,
        )
        started = time.monotonic()
        try:
            results, commit_started = self._transact([raw], routed=[dead])
        except Exception as again:  # noqa: BLE001 - re-read as any failed batch; the next strike retries
            self._recover(again, 1)
            return
        from kafka import TopicPartition

        from bus389.kafka import kafka_errors

        # The failed attempts rewound the consumer to this event: step past it, now committed.
        try:
            with kafka_errors(bootstrap=self.settings.bootstrap):
                self._consumer.seek(TopicPartition(raw.topic, raw.partition), raw.offset + 1)
        except BrokerError as exc:  # no longer ours: its next owner starts past it (committed)
            log.info("router: %s/%d no longer assigned (%s)", raw.topic, raw.partition, exc)
        self._single_left = max(0, self._single_left - 1)
        self._committed(results, started, commit_started)

    def _transact(self, batch: list[Any], routed: list[Routed] | None = None) -> tuple[list[Routed], float]:
        """Route ``batch`` (or write ``routed`` for it) in one transaction with its offsets.

        Raises on anything that was not committed.
        """
        from kafka import OffsetAndMetadata, TopicPartition

        received_at = datetime.now(UTC)
        offsets: dict[Any, Any] = {}
        for raw in batch:
            tp = TopicPartition(raw.topic, raw.partition)
            offsets[tp] = OffsetAndMetadata(raw.offset + 1, "", getattr(raw, "leader_epoch", -1) or -1)
        if self.config.transactions:
            self._producer.begin_transaction()
            self._in_transaction = True
        results = (
            routed
            if routed is not None
            else [self.router.route(raw, received_at=received_at) for raw in batch]
        )
        futures = [
            self._producer.send(out.topic, key=out.key, value=out.value, headers=out.headers)
            for routed in results
            for out in routed.outgoing
        ]
        self._call(lambda: self._producer.flush(), self.config.transaction_timeout_s, "flush")
        for future in futures:
            if future.failed():
                raise future.exception
        if self._rebalanced.is_set():
            raise _Rebalanced("the group rebalanced during the batch")
        commit_started = time.monotonic()
        if self.config.transactions:
            group = self._consumer.group_metadata()
            self._call(
                lambda: self._producer.send_offsets_to_transaction(offsets, group),
                self.config.transaction_timeout_s,
                "send_offsets",
            )
            self._call(self._producer.commit_transaction, self.config.transaction_timeout_s, "commit")
            self._in_transaction = False
        else:
            self._consumer.commit(offsets)
        return results, commit_started

    def _recover(self, exc: BaseException, size: int) -> None:
        """After a failed batch: abort (or rebuild the producer), back to the committed offsets.

        Raises only for an authorization, authentication or configuration error.
        """
        if classify(exc) is FailureKind.FATAL:
            self._abort_quietly(type(exc).__name__)
            raise fatal_error("router", "the batch's transaction", exc) from exc
        log.warning(
            "router: batch of %d event(s) not committed (%s: %s); reading it again",
            size,
            type(exc).__name__,
            exc,
        )
        self._rebalanced.clear()
        aborted = False if _fencing(exc) else self._abort_quietly(type(exc).__name__)
        self._in_transaction = False
        if self._metrics:
            from bus389 import metrics

            metrics.ROUTER_TRANSACTIONS.labels("aborted").inc()
        if not aborted:
            self._close_producer()
            self._producer = self._build_producer()
            if self._producer is None:  # stopped meanwhile: nothing is committed, nothing to undo
                return
        self._resync()

    def _committed(self, results: list[Routed], started: float, commit_started: float) -> None:
        self.stats.batches += 1
        self.stats.events += len(results)
        for routed in results:
            if routed.routed:
                self.stats.routed += 1
                self.stats.copies += len(routed.outgoing) - 1
            else:
                reason = routed.dlq_reason or "unknown"
                self.stats.dead_letters[reason] = self.stats.dead_letters.get(reason, 0) + 1
                log.warning(
                    "router: %s/%d/%d to the DLQ: %s: %s",
                    routed.origin.topic,
                    routed.origin.partition,
                    routed.origin.offset,
                    reason,
                    routed.dlq_detail,
                )
        if self._metrics:
            self._count(results, started, commit_started)

    def _count(self, results: list[Routed], started: float, commit_started: float) -> None:
        from bus389 import metrics

        now = time.monotonic()
        wall = datetime.now(UTC)
        metrics.ROUTER_TRANSACTIONS.labels("committed").inc()
        metrics.ROUTER_BATCH_EVENTS.observe(len(results))
        metrics.ROUTER_BATCH_SECONDS.observe(now - started)
        metrics.ROUTER_COMMIT_SECONDS.observe(now - commit_started)
        for routed in results:
            decision = routed.decision
            if not routed.routed:
                metrics.EVENTS_REJECTED.labels(routed.dlq_reason or "unknown").inc()
                if routed.dlq_reason == SPOOFED_SOURCE:
                    sender = self.topics.sender_of(routed.origin.topic)
                    metrics.SPOOF_ATTEMPTS.labels(
                        _label(routed.claimed_source), sender.value if sender else "unknown"
                    ).inc()
                continue
            if decision is None:
                continue
            for delivery in decision.deliveries:
                metrics.EVENTS_ROUTED.labels(
                    decision.sender.value, delivery.recipient.value, decision.event_type
                ).inc()
            for withheld in decision.withheld:
                code = withheld.reason.split(":", 1)[0].strip().replace(" ", "_").lower()
                if code != "sender":
                    metrics.EVENTS_WITHHELD.labels(withheld.agency.value, code).inc()
            if routed.published_at is not None:
                metrics.PUBLISH_TO_ROUTED.labels(decision.event_type).observe(
                    max(0.0, (wall - routed.published_at).total_seconds())
                )


def _close_quietly(producer: Any) -> None:
    try:
        producer.close(timeout=0)
    except Exception as exc:  # noqa: BLE001 - a producer that failed to start is being thrown away
        log.warning("router: producer close failed: %s", exc)


def _label(value: str) -> str:
    """A metric label from an untrusted field: agency codes only, anything else ``other``."""
    try:
        return Agency(value).value
    except ValueError:
        return "other"
