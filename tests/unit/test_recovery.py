"""How a long-running service sorts a failure: wait it out, blame the request, or stop."""

from __future__ import annotations

import kafka.errors as kerrors
import pytest

from bus389 import recovery
from bus389.errors import BrokerError, ConfigError, EncodeError, NoBrokerError, StoreError
from bus389.kafka import translate_error
from bus389.recovery import Backoff, FailureKind, classify, fatal_error


def wrapped(exc: Exception) -> BrokerError:
    """As the code sees it: kafka_errors() turns it into a BrokerError raised from it."""
    try:
        raise translate_error(exc) from exc
    except BrokerError as error:
        return error


@pytest.mark.parametrize(
    "exc",
    [
        kerrors.UnknownBrokerIdError(3),  # kafka-python: not retriable; a coordinator left the metadata
        kerrors.NotLeaderForPartitionError(),
        kerrors.KafkaConnectionError("111 ECONNREFUSED"),
        kerrors.KafkaTimeoutError("Timeout after 10000 ms"),
        kerrors.NodeNotReadyError(3),
        kerrors.CommitFailedError(),  # a rebalance
        kerrors.IllegalStateError("KafkaConsumer is closed"),
        kerrors.KafkaError("Could not execute transactional request for unknown reasons"),
        kerrors.ProducerFencedError(),
    ],
    ids=lambda e: type(e).__name__,
)
def test_what_a_leader_change_or_a_broker_kill_raises_is_transient(exc: Exception) -> None:
    assert classify(exc) is FailureKind.TRANSIENT
    assert classify(wrapped(exc)) is FailureKind.TRANSIENT


@pytest.mark.parametrize(
    "exc",
    [
        kerrors.TopicAuthorizationFailedError(),
        kerrors.GroupAuthorizationFailedError(),
        kerrors.TransactionalIdAuthorizationFailedError(),
        kerrors.ClusterAuthorizationFailedError(),
        kerrors.SaslAuthenticationFailedError(),
        kerrors.KafkaConfigurationError("Must set delivery_timeout_ms higher than linger_ms"),
        kerrors.UnsupportedVersionError(),
    ],
    ids=lambda e: type(e).__name__,
)
def test_authorization_and_configuration_errors_are_fatal(exc: Exception) -> None:
    assert classify(wrapped(exc)) is FailureKind.FATAL


def test_refused_records_are_the_request_s_fault() -> None:
    assert classify(wrapped(kerrors.MessageSizeTooLargeError())) is FailureKind.REQUEST
    assert classify(ValueError("a bug met on this input")) is FailureKind.REQUEST
    assert classify(EncodeError("does not fit its schema")) is FailureKind.REQUEST


def test_bus389_s_own_errors_follow_their_flag() -> None:
    assert classify(NoBrokerError("no broker", retriable=True)) is FailureKind.TRANSIENT
    assert classify(BrokerError("topic not found", retriable=True)) is FailureKind.TRANSIENT
    assert classify(BrokerError("the cluster refused the ACLs")) is FailureKind.FATAL
    assert classify(StoreError("database is locked")) is FailureKind.TRANSIENT
    assert classify(ConfigError("bad policy")) is FailureKind.FATAL


def test_the_fatal_message_says_what_was_refused_and_what_to_check() -> None:
    error = fatal_error("router", "the poll", wrapped(kerrors.GroupAuthorizationFailedError("bus389.router")))
    assert not error.retriable and error.exit_code == 3
    assert str(error).startswith("router: Kafka refused the poll for good (GroupAuthorizationFailedError")
    assert "check the ACLs, the credentials and the BUS389_KAFKA__* settings, then restart" in str(error)


def test_backoff_doubles_up_to_its_cap_and_stops_waiting_when_told(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(recovery, "_sleep", slept.append)
    backoff = Backoff(0.5, 2.0)
    assert [backoff.wait() for _ in range(4)] == [0.5, 1.0, 2.0, 2.0]
    assert round(sum(slept), 6) == 5.5 and max(slept) <= 0.2
    assert backoff.failures == 4
    slept.clear()
    backoff.wait(lambda: True)  # stopped: returns at once
    assert slept == []
    backoff.reset()
    assert backoff.upcoming == 0.5 and backoff.failures == 0


@pytest.mark.parametrize(
    "exc",
    [kerrors.ProducerFencedError(), kerrors.InvalidProducerEpochError(), kerrors.FencedInstanceIdError()],
)
def test_a_fenced_producer_is_recognised_directly_or_behind_a_broker_error(exc: Exception) -> None:
    assert recovery.is_fenced(exc)
    assert recovery.is_fenced(wrapped(exc))
    assert classify(exc) is FailureKind.TRANSIENT  # the service goes on with a new producer


@pytest.mark.parametrize(
    "exc", [kerrors.NotLeaderForPartitionError(), BrokerError("fenced", retriable=True), RuntimeError()]
)
def test_other_failures_are_not_fencing(exc: Exception) -> None:
    assert not recovery.is_fenced(exc)
