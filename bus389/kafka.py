"""Kafka client factories, and the one boundary where kafka-python's errors become bus389's.

Every producer, consumer and admin client in bus389 is made here, so that the delivery guarantees
(idempotent ``acks=all`` producers, ``read_committed`` consumers that never auto-commit) and the
security settings are set in one place. Each client is a context manager that flushes and closes.
Wrap calls on them in :func:`kafka_errors` so that a :class:`~bus389.errors.BrokerError` (with
kafka-python's ``retriable`` flag kept) is what the rest of the code sees.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import kafka.errors as kafka_errors_module
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from bus389.errors import BrokerError, CallTimeoutError, NoBrokerError

if TYPE_CHECKING:
    from bus389.settings import Settings

__all__ = [
    "DEFAULT_CLIENT_ID",
    "BoundedCaller",
    "bounded_call",
    "broker_count",
    "client_config",
    "describe_cluster",
    "init_timeout_s",
    "kafka_errors",
    "make_admin",
    "make_consumer",
    "make_producer",
    "missing_topic_message",
    "open_transactional_producer",
    "retry_until",
    "translate_error",
]

_T = TypeVar("_T")
log = logging.getLogger(__name__)

DEFAULT_CLIENT_ID = "bus389"

_LINGER_MS = 5
"""Small: a publish command waits for every acknowledgement anyway, batching a few ms costs nothing."""


def client_config(settings: Settings) -> dict[str, Any]:
    """The settings every client shares: where the brokers are and how to authenticate to them."""
    k = settings.kafka
    config: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap.split(","),
        "client_id": k.client_id or DEFAULT_CLIENT_ID,
        "security_protocol": k.security_protocol,
        "request_timeout_ms": k.request_timeout_ms,
        "bootstrap_timeout_ms": k.request_timeout_ms,
        "metadata_max_age_ms": k.metadata_max_age_ms,
    }
    if k.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        config["sasl_mechanism"] = k.sasl_mechanism or "SCRAM-SHA-512"
        config["sasl_plain_username"] = k.username
        config["sasl_plain_password"] = k.password.get_secret_value() if k.password else None
    if k.security_protocol in ("SSL", "SASL_SSL") and k.ssl_cafile is not None:
        config["ssl_cafile"] = str(k.ssl_cafile)
    return config


def make_producer(settings: Settings, *, transactional_id: str | None = None, **overrides: Any) -> Any:
    """An idempotent producer with ``acks=all``: an acknowledged event is on every in-sync replica.

    With ``transactional_id`` the producer is transactional (call ``init_transactions()`` once, then
    ``begin_transaction()`` / ``commit_transaction()``); a second producer with the same id fences
    the first. Keys and values are bytes (no serializers): the codec frames them. Never creates topics.
    """
    config = client_config(settings)
    config.update(
        acks="all",
        enable_idempotence=True,
        delivery_timeout_ms=settings.kafka.delivery_timeout_ms,
        linger_ms=_LINGER_MS,
        max_request_size=settings.kafka.max_message_bytes,
        allow_auto_create_topics=False,
    )
    if transactional_id is not None:
        config["transactional_id"] = transactional_id
    config.update(overrides)
    with kafka_errors(settings=settings):
        return KafkaProducer(**config)


class BoundedCaller:
    """Runs blocking client calls on one long-lived worker thread and waits for each at most a bound.

    kafka-python's transactional calls (flush, send offsets, commit, abort, init) wait without bound on a
    coordinator that died. A call that does not return in time raises :class:`CallTimeoutError` and
    leaves its worker behind (a daemon thread that ends if the call ever returns); the next call gets a
    new worker. One thread serves all calls, not a thread per call: starting and joining a thread costs
    ≈ 0.2 ms on a loaded machine, three times per router batch.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._requests: queue.SimpleQueue[tuple[Callable[[], Any], dict[str, Any], threading.Event] | None]
        self._requests = queue.SimpleQueue()
        self._worker: threading.Thread | None = None

    def _serve(self, requests: queue.SimpleQueue[Any]) -> None:
        while (request := requests.get()) is not None:
            call, box, done = request
            try:
                box["result"] = call()
            except BaseException as exc:  # noqa: BLE001 - handed back to the caller's thread
                box["error"] = exc
            done.set()

    def __call__(self, call: Callable[[], _T], timeout_s: float, what: str) -> _T:
        if self._worker is None:
            self._worker = threading.Thread(
                target=self._serve, args=(self._requests,), name=f"bus389-{self.name}", daemon=True
            )
            self._worker.start()
        box: dict[str, Any] = {}
        done = threading.Event()
        self._requests.put((call, box, done))
        if not done.wait(timeout_s):
            self.close()  # the stuck worker stops after its call, if it ever returns
            raise CallTimeoutError(f"Kafka: {what} gave no answer within {timeout_s:.0f} s")
        if "error" in box:
            raise box["error"]
        result: _T = box["result"]
        return result

    def close(self) -> None:
        """Let the worker end (after the call in hand, if any); a later call starts a new one."""
        if self._worker is not None:
            self._requests.put(None)
            self._requests = queue.SimpleQueue()
            self._worker = None


def bounded_call(call: Callable[[], _T], timeout_s: float, what: str) -> _T:
    """``call()`` waited for at most ``timeout_s`` (see :class:`BoundedCaller`), on a thread of its own."""
    caller = BoundedCaller(what)
    try:
        return caller(call, timeout_s, what)
    finally:
        caller.close()


def init_timeout_s(settings: Settings) -> float:
    """How long one ``init_transactions`` may take: a request timeout, but at most a quarter of the
    delivery timeout, so that a coordinator that moved off a dead broker is asked again in time."""
    k = settings.kafka
    return max(2.0, min(k.request_timeout_ms, k.delivery_timeout_ms / 4) / 1000)


def open_transactional_producer(
    settings: Settings, transactional_id: str, *, attempt: int = 0, init_timeout: float | None = None
) -> Any:
    """A transactional producer whose ``init_transactions`` succeeded (fencing any older holder of the
    id and aborting what it left open), or a :class:`BrokerError`.

    kafka-python keeps asking a coordinator that died until ``max_block_ms`` has passed, so the wait is
    bounded (:func:`init_timeout_s`) and attempt ``n`` starts from the ``n``-th bootstrap broker: retry
    with :func:`retry_until` and a growing ``attempt``. A failed producer is closed without waiting.
    """
    servers = settings.bootstrap.split(",")
    first = attempt % len(servers)
    producer = make_producer(
        settings, transactional_id=transactional_id, bootstrap_servers=servers[first:] + servers[:first]
    )
    try:
        with kafka_errors(settings=settings):
            bounded_call(
                producer.init_transactions, init_timeout or init_timeout_s(settings), "init_transactions"
            )
    except BaseException:
        producer.close(timeout=0)
        raise
    return producer


_RETRY_BACKOFF_S = (0.1, 0.25, 0.5, 1.0, 2.0)
"""Pauses between attempts of :func:`retry_until` (the last one repeats)."""


def retry_until(deadline: float, what: str, attempt: Callable[[int], _T]) -> _T:
    """``attempt(0)``, ``attempt(1)``, ... until one returns, raises a non-retriable error, or
    ``deadline`` (``time.monotonic()``) passes. One broker of several down is retried around; no broker
    answering at all (:class:`NoBrokerError`) is not.
    """
    started = time.monotonic()
    for number in itertools.count():
        try:
            return attempt(number)
        except NoBrokerError:
            raise
        except BrokerError as exc:
            pause = _RETRY_BACKOFF_S[min(number, len(_RETRY_BACKOFF_S) - 1)]
            if not exc.retriable or time.monotonic() + pause >= deadline:
                if number == 0:
                    raise
                raise BrokerError(
                    f"{exc} (still failing after {number + 1} attempts in {time.monotonic() - started:.0f} s "
                    f"at {what}; settings kafka.delivery_timeout_ms bounds the retries)",
                    retriable=exc.retriable,
                ) from exc
            log.warning("%s failed (%s); trying again in %.2f s", what, exc, pause)
        time.sleep(pause)
    raise AssertionError("unreachable")  # pragma: no cover - itertools.count() never ends


def make_consumer(
    settings: Settings,
    *,
    group_id: str | None,
    topics: list[str] | None = None,
    **overrides: Any,
) -> Any:
    """A consumer that sees only committed events and commits offsets only when told to.

    ``isolation_level=read_committed`` hides aborted and open transactions; ``enable_auto_commit``
    is off so the caller commits after its side effect is durable (at-least-once); a new group starts
    from the earliest offset so nothing published before it joined is missed. With ``topics`` the
    consumer subscribes to them (group management); without, assign partitions yourself.
    """
    config = client_config(settings)
    config.update(
        group_id=group_id,
        isolation_level="read_committed",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        allow_auto_create_topics=False,
        fetch_max_wait_ms=settings.kafka.fetch_max_wait_ms,
        max_partition_fetch_bytes=settings.kafka.max_partition_fetch_bytes,
    )
    config.update(overrides)
    with kafka_errors(settings=settings):
        return KafkaConsumer(*(topics or ()), **config)


def make_admin(settings: Settings, **overrides: Any) -> Any:
    """An admin client (topics, cluster metadata); close it, or use it as a context manager."""
    config = client_config(settings)
    config.update(overrides)
    with kafka_errors(settings=settings):
        return KafkaAdminClient(**config)


def _is_bootstrap_failure(exc: BaseException) -> bool:
    no_brokers = getattr(kafka_errors_module, "NoBrokersAvailable", None)
    if no_brokers is not None and isinstance(exc, no_brokers):
        return True
    # kafka-python 3.0 reports "nobody answered" as a timeout with this message.
    return isinstance(exc, kafka_errors_module.KafkaTimeoutError) and "Unable to bootstrap" in str(exc)


_SECURED_QUESTION = {
    "SSL": "is Kafka running, and is the CA right?",
    "SASL_PLAINTEXT": "is Kafka running, and are the credentials right?",
    "SASL_SSL": "is Kafka running, and are the credentials and CA right?",
}
"""What to check when nobody answered over a secured protocol: a wrong password, a wrong CA or a client
speaking plaintext to a TLS port all look, to kafka-python, like no broker at all."""


def translate_error(
    exc: BaseException, *, bootstrap: str | None = None, security_protocol: str = "PLAINTEXT"
) -> BrokerError:
    """The :class:`BrokerError` for a kafka-python exception (``retriable`` kept from its class).

    A failed bootstrap says where; with a secured ``security_protocol`` it also asks about the
    credentials and the CA (naming neither: messages carry no secret).
    """
    if _is_bootstrap_failure(exc):
        where = bootstrap or "the bootstrap address"
        question = _SECURED_QUESTION.get(security_protocol)
        if question is not None:
            return NoBrokerError(
                f"no broker answered at {where} ({security_protocol}) — {question}", retriable=True
            )
        return NoBrokerError(
            f"no broker at {where} (is Kafka running? try `bus389 kafka up`)", retriable=True
        )
    retriable = bool(getattr(exc, "retriable", False))
    return BrokerError(f"Kafka: {exc}", retriable=retriable)


@contextmanager
def kafka_errors(*, bootstrap: str | None = None, settings: Settings | None = None) -> Iterator[None]:
    """Turn any kafka-python ``KafkaError`` raised inside into a :class:`BrokerError` ``from`` it.

    Pass ``settings`` (preferred) or ``bootstrap``: with ``settings`` the message of a failed
    bootstrap also fits the security protocol (see :func:`translate_error`).
    """
    protocol = settings.kafka.security_protocol if settings is not None else "PLAINTEXT"
    where = settings.bootstrap if settings is not None and bootstrap is None else bootstrap
    try:
        yield
    except kafka_errors_module.KafkaError as exc:
        raise translate_error(exc, bootstrap=where, security_protocol=protocol) from exc


def missing_topic_message(settings: Settings, topic: str) -> str:
    """What to say when ``topic`` is not in the metadata a client sees.

    With SASL the cluster has ACLs, and a topic the principal may not describe is left out of the
    metadata exactly as a missing one is: say both, and who can fix either.
    """
    if settings.kafka.security_protocol.startswith("SASL"):
        return (
            f"topic {topic} does not exist or is not visible to you (an administrator creates it with "
            "`bus389 topics apply` and grants access with `bus389 security apply`)"
        )
    return f"topic {topic} does not exist (create it with `bus389 topics apply`)"


def describe_cluster(admin: Any) -> dict[str, Any]:
    """The cluster id, controller and brokers (each with ``is_fenced``), as kafka-python returns it."""
    with kafka_errors():
        result: dict[str, Any] = admin.describe_cluster()
    return result


def broker_count(admin: Any) -> int:
    """How many brokers are live (registered and not fenced): the ceiling for a replication factor."""
    brokers = describe_cluster(admin).get("brokers", [])
    return sum(1 for b in brokers if not b.get("is_fenced", False))
