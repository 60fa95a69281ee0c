"""The Kafka boundary without a broker: client settings, and kafka-python errors becoming ours."""

from __future__ import annotations

from pathlib import Path

import kafka.errors as kerr
import pytest
from pydantic import SecretStr

from bus389.errors import BrokerError, NoBrokerError
from bus389.kafka import client_config, kafka_errors, missing_topic_message, translate_error
from bus389.settings import KafkaClientSettings, Settings


def test_plaintext_config_carries_no_credentials() -> None:
    config = client_config(Settings(bootstrap="a:1,b:2"))
    assert config["bootstrap_servers"] == ["a:1", "b:2"]
    assert config["security_protocol"] == "PLAINTEXT"
    assert not any(key.startswith("sasl") for key in config)


def test_sasl_ssl_config_has_scram_credentials_and_ca() -> None:
    kafka = KafkaClientSettings(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        username="tax",
        password=SecretStr("s3cret"),
        ssl_cafile=Path("/etc/bus389/ca.pem"),
    )
    config = client_config(Settings(kafka=kafka))
    assert config["sasl_mechanism"] == "SCRAM-SHA-512"
    assert config["sasl_plain_username"] == "tax"
    assert config["sasl_plain_password"] == "s3cret"
    assert config["ssl_cafile"] == "/etc/bus389/ca.pem"


def test_a_failed_bootstrap_names_the_address_and_is_retriable() -> None:
    error = translate_error(kerr.KafkaTimeoutError("Unable to bootstrap from x"), bootstrap="10.0.0.1:9092")
    assert isinstance(error, NoBrokerError)
    assert error.retriable
    assert "no broker at 10.0.0.1:9092" in str(error)


@pytest.mark.parametrize(
    ("exc", "retriable"),
    [
        (kerr.NotEnoughReplicasError(), True),
        (kerr.RequestTimedOutError(), True),
        (kerr.TopicAuthorizationFailedError(), False),
        (kerr.MessageSizeTooLargeError(), False),
    ],
)
def test_retriable_follows_kafka_python(exc: kerr.KafkaError, retriable: bool) -> None:
    error = translate_error(exc)
    assert type(error) is BrokerError
    assert error.retriable is retriable
    assert type(exc).__name__ in str(error)


def test_kafka_errors_reraises_ours_from_theirs() -> None:
    original = kerr.NotLeaderForPartitionError("moved")
    with pytest.raises(BrokerError) as caught, kafka_errors():
        raise original
    assert caught.value.__cause__ is original
    assert caught.value.retriable


def test_kafka_errors_leaves_other_exceptions_alone() -> None:
    with pytest.raises(ValueError, match="not kafka"), kafka_errors():
        raise ValueError("not kafka")


_BOOTSTRAP_FAILURE = kerr.KafkaTimeoutError("Unable to bootstrap from [('10.0.0.1', 9093)]")


@pytest.mark.parametrize(
    ("protocol", "question"),
    [
        ("SASL_SSL", "is Kafka running, and are the credentials and CA right?"),
        ("SASL_PLAINTEXT", "is Kafka running, and are the credentials right?"),
        ("SSL", "is Kafka running, and is the CA right?"),
    ],
)
def test_a_failed_bootstrap_over_a_secured_protocol_asks_about_credentials_not_just_kafka(
    protocol: str, question: str
) -> None:
    """A wrong password or a plaintext client on a TLS port look like "no broker" to kafka-python."""
    settings = Settings(
        bootstrap="10.0.0.1:9093",
        kafka=KafkaClientSettings(security_protocol=protocol, username="tax", password=SecretStr("hunter2")),
    )
    with pytest.raises(NoBrokerError) as caught, kafka_errors(settings=settings):
        raise _BOOTSTRAP_FAILURE
    message = str(caught.value)
    assert message == f"no broker answered at 10.0.0.1:9093 ({protocol}) — {question}"
    assert "hunter2" not in message and "bus389 kafka up" not in message
    assert caught.value.retriable


def test_kafka_errors_with_plaintext_settings_keeps_the_plain_message() -> None:
    with (
        pytest.raises(NoBrokerError, match=r"^no broker at 10\.0\.0\.1:9092 \(is Kafka running\?"),
        kafka_errors(settings=Settings(bootstrap="10.0.0.1:9092")),
    ):
        raise _BOOTSTRAP_FAILURE


def test_a_missing_topic_under_sasl_may_be_one_the_acls_hide() -> None:
    plain = Settings(bootstrap="x:1")
    sasl = Settings(bootstrap="x:1", kafka=KafkaClientSettings(security_protocol="SASL_SSL", username="tax"))
    assert missing_topic_message(plain, "b.outbox.tax") == (
        "topic b.outbox.tax does not exist (create it with `bus389 topics apply`)"
    )
    message = missing_topic_message(sasl, "b.outbox.tax")
    assert message.startswith("topic b.outbox.tax does not exist or is not visible to you (")
    assert "bus389 security apply" in message


@pytest.mark.parametrize(
    ("protocol", "question"),
    [
        ("PLAINTEXT", "no broker at 10.0.0.1:9093 (is Kafka running? try `bus389 kafka up`)"),
        ("SASL_PLAINTEXT", "(SASL_PLAINTEXT) — is Kafka running, and are the credentials right?"),
        ("SASL_SSL", "(SASL_SSL) — is Kafka running, and are the credentials and CA right?"),
    ],
)
@pytest.mark.parametrize("factory", ["make_admin", "make_producer", "make_consumer"])
def test_the_client_factories_word_a_failed_bootstrap_for_their_protocol(
    monkeypatch: pytest.MonkeyPatch, factory: str, protocol: str, question: str
) -> None:
    """Each factory (admin, producer, consumer) says where nobody answered and, for a secured
    protocol, asks about the credentials (and the CA over TLS) without naming the secret."""
    import bus389.kafka as kafka_module

    def refuse(*_topics: object, **_config: object) -> None:
        raise _BOOTSTRAP_FAILURE

    for client in ("KafkaAdminClient", "KafkaProducer", "KafkaConsumer"):
        monkeypatch.setattr(kafka_module, client, refuse)
    secured = {"username": "tax", "password": SecretStr("hunter2")} if protocol != "PLAINTEXT" else {}
    settings = Settings(
        bootstrap="10.0.0.1:9093",
        kafka=KafkaClientSettings(security_protocol=protocol, **secured),  # type: ignore[arg-type]
    )
    make = getattr(kafka_module, factory)
    kwargs = {"group_id": None} if factory == "make_consumer" else {}
    with pytest.raises(NoBrokerError) as raised:
        make(settings, **kwargs)
    message = str(raised.value)
    assert question in message and "10.0.0.1:9093" in message, message
    assert "hunter2" not in message
