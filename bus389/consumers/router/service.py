"""The router service: every outbox in, one transaction per batch out (inbox copies, audit, DLQ, offsets).

Delivery guarantee: exactly-once from outbox to inboxes. Per batch the router begins a transaction,
writes for each event one copy per recipient and one audit record (or one DLQ record), then adds the
batch's consumer offsets to the same transaction with the consumer's group metadata (KIP-447, so a
stale instance is fenced) and commits. Readers are ``read_committed``: a crash before the commit
leaves nothing visible and the batch is read again from the committed offsets; after it, the offsets
moved with the copies. Keys are kept (``meta.case_ref`` or the event id), so a case stays in order in
every inbox.

:class:`~bus389.consumers.router.records.RecordRouter` turns one outbox record into the records to write,
without Kafka; :class:`RouterService` is the loop around it, and wires the parts, one module each:
the group member (:class:`bus389.runtime.member.GroupMember`), the rebalance handling
(:mod:`~bus389.consumers.router.rebalance`), the producer's lifecycle
(:mod:`~bus389.consumers.router.producer`: every transaction call bounded by
``settings.router.transaction_timeout_s``; after a timeout or a fencing error the producer is closed
and a new one built), the transaction and the strikes (:mod:`~bus389.consumers.router.transaction`)
and the counters and metrics (:mod:`~bus389.consumers.router.stats`). After a failed batch the
consumer is put back to its committed offsets so that the batch is read again.

A broker failure anywhere (poll, send, flush, the offsets, the commit, the committed offsets, the
metadata, building a client) is waited out, never an exit: abort or rebuild the producer, put the
consumer back to its committed offsets (or rejoin with a new one), back off, go on. kafka-python's own
``retriable`` flag is not the test: a leader change also raises errors it calls final, such as
``UnknownBrokerIdError``; :func:`bus389.recovery.classify` decides. Only an authorization,
authentication or configuration error stops the router, with a message saying what to fix.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from kafka import TopicPartition

from bus389 import kafka as bus_kafka
from bus389.agencies import Topics
from bus389.consumers.router.audit_chain import AuditChain, HeadTracker
from bus389.consumers.router.producer import RouterProducer, unusable
from bus389.consumers.router.rebalance import RebalanceListener, give_back, rewind
from bus389.consumers.router.records import RecordRouter, Routed
from bus389.consumers.router.replies import ReplyIndex, rebuild_from_audit
from bus389.consumers.router.stats import RouterStats, observe_aborted, observe_committed
from bus389.consumers.router.transaction import ROUTER_ERROR, Strikes, poisonous, struck_out, transact
from bus389.errors import BrokerError, BusError
from bus389.recovery import Backoff, FailureKind, classify, fatal_error
from bus389.routing.policy import Policy, load_policy
from bus389.runtime.member import GroupMember
from bus389.runtime.stop import StopFlag
from bus389.signing.events import RouterVerifier

__all__ = ["ROUTER_ERROR", "RecordRouter", "RouterService", "RouterStats"]

log = logging.getLogger(__name__)

_IDLE_POLL_MS = 2_000
"""The longest a poll waits for the first record of a batch (SIGTERM is seen within this)."""
_REJOIN_AFTER = 3
"""A consumer whose poll, or whose committed offsets, failed this many times in a row is replaced."""
_TOPICS_WAIT_S = 30.0
"""How long a join waits for every outbox to show in the metadata, so the assignment covers them all."""


class RouterService:
    """The router's loop: poll a bounded batch, route it in one transaction, commit with its offsets."""

    record_router: type[RecordRouter] = RecordRouter
    """What turns one record into the records to write (a test double replaces it to play a tampering
    router)."""

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
        self.router = self.record_router(self.topics, self.policy, self.replies)
        self.chain: AuditChain | None = None
        """The audit hash chain (built with the trail's read-back, :meth:`_read_audit`)."""
        self.stats = RouterStats()
        self._metrics = count_metrics
        self._out = RouterProducer(settings, self.stop, self.stats)
        self._rebalanced = threading.Event()
        self._member = GroupMember(
            settings,
            group_id=self.config.group_id,
            topics=self.topics.all_outboxes(),
            name="router",
            stop=self.stop,
            topics_wait_s=_TOPICS_WAIT_S,
            topics_wait_every_join=True,
            listener=RebalanceListener(self.note_rebalance),
            max_poll_records=self.config.batch_max_events,
            session_timeout_ms=self.config.session_timeout_ms,
            heartbeat_interval_ms=max(1000, self.config.session_timeout_ms // 4),
        )
        self._strikes = Strikes(self.config.batch_max_events)
        self._failures = Backoff()
        """Between batches that failed for a transient reason, reset by a committed batch."""

    @property
    def _consumer(self) -> Any:
        return self._member.consumer

    # -- lifecycle -----------------------------------------------------------------------------------

    def run(self, *, max_idle_polls: int | None = None) -> RouterStats:
        """Route until SIGTERM/SIGINT (``stop``) or ``max_idle_polls`` empty polls in a row.

        Raises a non-retriable :class:`~bus389.errors.BrokerError` only for an authorization,
        authentication or configuration error; every other broker failure is waited out.
        """
        try:
            if not self._out.build():
                return self.stats
            if not self._until_done("read the audit trail", self._read_audit):
                return self.stats
            if not self._until_done("join the group", self._member.open):
                return self.stats
            self._loop(max_idle_polls)
        finally:
            self._close()
        return self.stats

    def _read_audit(self) -> None:
        """Read what routing needs before the first batch: the key registry the signatures are checked
        with, and, in one pass over the audit trail, the reply index and every audit chain's head."""
        verifier = RouterVerifier.from_settings(self.settings)
        self.replies = ReplyIndex()
        heads = HeadTracker()
        rebuild_from_audit(self.settings, self.replies, also=heads.see)
        self.chain = AuditChain.from_settings(self.settings, heads=heads.heads)
        self.router = self.record_router(
            self.topics, self.policy, self.replies, verifier=verifier, chain=self.chain
        )

    def _forget_chains(self) -> None:
        """A partition this router gets (back) may have been advanced by another router: the chains'
        heads are read again from the committed audit trail before the next batch."""
        if self.chain is not None:
            self.chain.forget()

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
                self._forget_chains()
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

    def _close(self) -> None:
        if self._out.in_transaction and self._out.producer is not None:
            self._out.abort_quietly("shutting down")
        try:
            self._member.close()
        except Exception as exc:  # noqa: BLE001 - closing must not hide why the loop ended
            log.warning("router: consumer close failed: %s", exc)
        self._out.shutdown()
        log.info(
            "router: stopped after %d batch(es), %d event(s), %d routed, %d dead letter(s)",
            self.stats.batches,
            self.stats.events,
            self.stats.routed,
            sum(self.stats.dead_letters.values()),
        )

    def note_rebalance(self, what: str, partitions: Any) -> None:
        """Called by the rebalance listener (kafka-python's IO loop): the batch in hand must be dropped."""
        names = sorted(f"{tp.topic}/{tp.partition}" for tp in partitions)
        log.info("router: %d partition(s) %s", len(names), what)
        log.debug("router: partitions %s: %s", what, names)
        self._rebalanced.set()

    # -- the consumer --------------------------------------------------------------------------------

    def _poll_batch(self) -> list[Any]:
        """At most ``batch_max_events`` records, gathered for at most ``batch_max_ms`` after the first.

        The first poll may wait up to ``_IDLE_POLL_MS`` (it returns as soon as records arrive): a
        long poll lets a rebalance complete inside one call, which kafka-python 3.0 needs (below).
        """
        limit = self._strikes.batch_limit
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
                with bus_kafka.kafka_errors(bootstrap=self.settings.bootstrap):
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

    def _unstick(self) -> None:
        """Rejoin with a new consumer when the group left this router without partitions
        (:mod:`bus389.assignment_watch`). Between batches no transaction is open, so a new consumer
        (a new member) is safe."""
        why = self._member.stuck()
        if why is not None:
            self._rejoin(why)

    def _rejoin(self, why: str) -> None:
        """Replace the consumer by a new group member, which starts from the committed offsets.

        Only between batches (no transaction open). Retries until it succeeds or the router stops.
        """
        self.stats.rejoins += 1
        self._rebalanced.clear()
        self._forget_chains()
        self._member.replace(why)

    def _give_back(self, batch: list[Any]) -> None:
        """Drop a batch polled across a rebalance (:func:`~bus389.consumers.router.rebalance.give_back`)."""
        try:
            give_back(self._consumer, batch, bootstrap=self.settings.bootstrap)
        except BrokerError as exc:
            # The assignment moved under us: the committed offsets are the truth.
            log.warning("router: cannot give the batch back (%s): reading from the committed offsets", exc)
            self._resync()

    def _resync(self) -> None:
        """Put the consumer back to its committed offsets, retrying; rejoin when that keeps failing."""
        backoff = Backoff()
        while not self.stop.is_set:
            try:
                rewind(
                    self._consumer,
                    bootstrap=self.settings.bootstrap,
                    timeout_s=self.config.transaction_timeout_s,
                )
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

    def _transact(self, batch: list[Any], routed: list[Routed] | None = None) -> tuple[list[Routed], float]:
        # The reply index keeps what a batch routed only once its transaction committed: a batch that
        # failed is routed again, and its events must not then meet themselves as duplicates.
        self.replies.discard()
        done = transact(
            self._out,
            self._consumer,
            batch,
            route=self._route,
            rebalanced=self._rebalanced,
            routed=routed,
        )
        self.replies.commit()
        return done

    def _route(self, raw: Any, received_at: datetime) -> Routed:
        return self.router.route(raw, received_at=received_at)

    def _process(self, batch: list[Any]) -> None:
        chain = self.chain
        if chain is not None and not chain.loaded:
            # Read outside the batch: a broker failure here is waited out, never a strike on an event.
            if not self._until_done("read the audit chains' heads", chain.load):
                return  # stopping: the batch was not committed and is read again by the next owner
        started = time.monotonic()
        try:
            results, commit_started = self._transact(batch)
        except Exception as exc:  # noqa: BLE001 - every failure ends in abort + re-read, never a lost batch
            self._recover(exc, len(batch))
            if poisonous(exc):
                self._strike(batch, exc)
            else:
                self._failures.wait(self._stopped)  # the cluster is unwell: do not hammer it
            return
        self._failures.reset()
        self._strikes.committed()
        self._committed(results, started, commit_started)

    def _strike(self, batch: list[Any], exc: BaseException) -> None:
        """A non-retriable failure: retry one event at a time, and dead-letter an event that keeps failing."""
        if len(batch) > 1:
            log.warning("router: batch failed (%s): retrying one event at a time", exc)
            self._strikes.isolate()
            return
        (raw,) = batch
        if not self._strikes.strike(raw):
            return
        if self._out.producer is None or self._consumer is None:  # stopped while rebuilding a client
            return
        self._strikes.forget(raw)
        dead = struck_out(self.topics, raw, exc)
        log.error("router: %s/%d/%d to the DLQ: %s", raw.topic, raw.partition, raw.offset, dead.dlq_detail)
        started = time.monotonic()
        try:
            results, commit_started = self._transact([raw], routed=[dead])
        except Exception as again:  # noqa: BLE001 - re-read as any failed batch; the next strike retries
            self._recover(again, 1)
            return
        # The failed attempts rewound the consumer to this event: step past it, now committed.
        try:
            with bus_kafka.kafka_errors(bootstrap=self.settings.bootstrap):
                self._consumer.seek(TopicPartition(raw.topic, raw.partition), raw.offset + 1)
        except BrokerError as exc:  # no longer ours: its next owner starts past it (committed)
            log.info("router: %s/%d no longer assigned (%s)", raw.topic, raw.partition, exc)
        self._strikes.committed()
        self._committed(results, started, commit_started)

    def _recover(self, exc: BaseException, size: int) -> None:
        """After a failed batch: abort (or rebuild the producer), back to the committed offsets.

        Raises only for an authorization, authentication or configuration error.
        """
        if classify(exc) is FailureKind.FATAL:
            self._out.abort_quietly(type(exc).__name__)
            raise fatal_error("router", "the batch's transaction", exc) from exc
        log.warning(
            "router: batch of %d event(s) not committed (%s: %s); reading it again",
            size,
            type(exc).__name__,
            exc,
        )
        self._rebalanced.clear()
        self._forget_chains()  # a rebalance may have come with the failure (its flag just cleared)
        aborted = False if unusable(exc) else self._out.abort_quietly(type(exc).__name__)
        self._out.in_transaction = False
        if self._metrics:
            observe_aborted()
        if not aborted:
            self._out.close()
            if not self._out.build():  # stopped meanwhile: nothing is committed, nothing to undo
                return
        self._resync()

    def _committed(self, results: list[Routed], started: float, commit_started: float) -> None:
        self.stats.committed(results)
        if self._metrics:
            observe_committed(self.topics, results, started, commit_started)
