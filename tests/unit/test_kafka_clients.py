"""The Kafka boundary without a broker: client settings, and kafka-python errors becoming ours."""

from __future__ import annotations

from pathlib import Path

import kafka.errors as kerr
import pytest
from pydantic import SecretStr

from bus389.errors import BrokerError, NoBrokerError
from bus389.kafka import client_config, kafka_errors, translate_error
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
