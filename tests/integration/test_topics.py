"""`bus389 topics apply|list` and the client factories, on the session broker with a prefix per test."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from click.testing import CliRunner
from kafka.admin import ConfigResource, ConfigResourceType

from bus389.agencies import Agency
from bus389.cli.main import cli
from bus389.errors import BrokerError, NoBrokerError
from bus389.kafka import broker_count, kafka_errors, make_admin, make_consumer, make_producer
from bus389.settings import KafkaClientSettings, Settings
from bus389.topics import AUDIT_RETENTION_MS, DLQ_RETENTION_MS, apply_topics, list_topics

MakeSettings = Callable[..., Settings]


def topic_configs(settings: Settings, topic: str) -> dict[str, str]:
    with make_admin(settings) as admin, kafka_errors():
        described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    return {name: entry["value"] for name, entry in described["topic"][topic].items()}


def test_apply_creates_every_topic_once_then_reports_them_existing(make_settings: MakeSettings) -> None:
    settings = make_settings(apply=False, kafka=KafkaClientSettings(partitions=2, min_insync_replicas=2))
    expected = settings.topics.all()
    # an outbox and an inbox per member, the DLQ, the audit trail and the key registry
    assert len(expected) == 2 * len(Agency) + 3

    first = apply_topics(settings)
    assert first.created == expected
    assert first.existing == []
    assert first.partitions == 2

    second = apply_topics(settings)
    assert second.created == []
    assert second.existing == expected

    listed = {t.name: t for t in list_topics(settings)}
    assert sorted(listed) == sorted(expected)
    assert {t.partitions for t in listed.values()} == {2}
    assert {t.replication_factor for t in listed.values()} == {first.replication_factor}

    outbox = topic_configs(settings, settings.topics.outbox("tax"))
    assert outbox["unclean.leader.election.enable"] == "false"
    # min.insync.replicas is never above the replication factor, or acks=all could never succeed.
    assert outbox["min.insync.replicas"] == str(min(2, first.replication_factor))
    assert topic_configs(settings, settings.topics.dlq)["retention.ms"] == str(DLQ_RETENTION_MS)
    assert topic_configs(settings, settings.topics.audit)["retention.ms"] == str(AUDIT_RETENTION_MS)
    assert topic_configs(settings, settings.topics.keys)["cleanup.policy"] == "compact"


def test_replication_factor_is_clamped_to_the_live_brokers(make_settings: MakeSettings) -> None:
    settings = make_settings(apply=False)
    with make_admin(settings) as admin:
        live = broker_count(admin)
    report = apply_topics(settings, partitions=1, replication_factor=live + 1)
    assert report.clamped
    assert report.requested_replication_factor == live + 1
    assert report.replication_factor == live
    assert {t.replication_factor for t in list_topics(settings)} == {live}


def test_cli_apply_says_what_it_did_and_list_shows_it(kafka_bootstrap: str, topic_prefix: str) -> None:
    env = {"BUS389_BOOTSTRAP": kafka_bootstrap, "BUS389_TOPIC_PREFIX": topic_prefix}
    runner = CliRunner()
    try:
        first = runner.invoke(
            cli, ["topics", "apply", "--partitions", "1", "--replication-factor", "9"], env=env
        )
        assert first.exit_code == 0, first.output
        assert f"created  {topic_prefix}.audit" in first.output
        total = 2 * len(Agency) + 3
        assert f"{total} created, 0 already existed (1 partitions" in first.output
        assert "replication factor 9 lowered to" in first.output

        second = runner.invoke(cli, ["topics", "apply"], env=env)
        assert second.exit_code == 0, second.output
        assert f"0 created, {total} already existed" in second.output

        listed = runner.invoke(cli, ["topics", "list"], env=env)
        assert listed.exit_code == 0, listed.output
        assert f"{topic_prefix}.inbox.ict" in listed.output
        assert "partitions=1" in listed.output
    finally:
        with make_admin(Settings(bootstrap=kafka_bootstrap, topic_prefix=topic_prefix)) as admin:
            admin.delete_topics([t for t in admin.list_topics() if t.startswith(topic_prefix + ".")])


def test_cli_without_a_broker_says_so_and_exits_3() -> None:
    env = {"BUS389_BOOTSTRAP": "127.0.0.1:19999", "BUS389_KAFKA__REQUEST_TIMEOUT_MS": "1000"}
    result = CliRunner().invoke(cli, ["topics", "list"], env=env)
    assert result.exit_code == 3
    assert "no broker at 127.0.0.1:19999" in result.output
    # A clear one-line error, never a traceback.
    assert "Traceback" not in result.output
    assert [line for line in result.output.splitlines() if line.strip()] == [result.output.strip()]


def test_no_broker_is_a_retriable_broker_error() -> None:
    settings = Settings(bootstrap="127.0.0.1:19999", kafka=KafkaClientSettings(request_timeout_ms=1000))
    with pytest.raises(NoBrokerError) as caught:
        make_admin(settings)
    assert caught.value.retriable
    assert isinstance(caught.value, BrokerError)
    assert "127.0.0.1:19999" in str(caught.value)


def test_transactional_producer_and_read_committed_consumer(
    settings: Settings, unique_group: Callable[..., str]
) -> None:
    topic = settings.topics.outbox("police")
    tx_id = unique_group("police", "tx")
    with make_producer(settings, transactional_id=tx_id) as producer, kafka_errors():
        producer.init_transactions()
        producer.begin_transaction()
        producer.send(topic, key=b"case-1", value=b"aborted")
        producer.flush()
        producer.abort_transaction()
        producer.begin_transaction()
        producer.send(topic, key=b"case-1", value=b"committed")
        producer.commit_transaction()

    group = unique_group("police")
    with make_consumer(settings, group_id=group, topics=[topic]) as consumer, kafka_errors():
        assert consumer.config["enable_auto_commit"] is False
        seen: list[bytes] = []
        deadline = time.monotonic() + 30
        while not seen and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                seen.extend(r.value for r in records)
        assert seen == [b"committed"]  # read_committed hides the aborted event
        assert consumer.group_metadata().group_id == group
        consumer.commit()
        partitions = consumer.assignment()
        committed = {tp: consumer.committed(tp) for tp in partitions}
        positions = {tp: consumer.position(tp) for tp in partitions}
    assert any(offset for offset in committed.values())
    # What was committed is exactly where the consumer stands: past both transactions' records and markers.
    assert committed == positions
