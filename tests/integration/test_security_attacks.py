"""Least privilege, tried as an attacker would, on a real secure Kafka (SASL_SSL, SCRAM, ACLs).

The module starts its own broker with ``bus389 kafka up --secure`` on ports found free when it starts,
with a temporary data dir (never the shared plaintext broker on 9092), creates the topics, applies the ACLs
and issues every agency's and the router's credentials through the real CLI. Each attack of
:data:`ATTACKS` is then tried for real and must be refused or neutralised with nothing leaked and
nothing written: "nothing written" is the target topic's end offsets read by the admin before and
after (uncommitted end offsets, so that even an aborted write would show). Every row asserts
``observed == expected``; :func:`test_attack_table` prints the table the README quotes, and
:func:`test_no_secret_in_any_output` greps everything every command printed for every password.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from _ports import free_base_port
from _wait import wait_for
from kafka import TopicPartition
from pydantic import SecretStr

from bus389.agencies import Agency, Topics
from bus389.codec import decode_value, encode_event
from bus389.config_file import load_settings
from bus389.errors import BrokerError, BusError
from bus389.events import build_event
from bus389.kafka import kafka_errors, make_admin, make_consumer, make_producer
from bus389.security.acl import load_spec_file
from bus389.security.admin import read_acls
from bus389.settings import Settings
from bus389.signing.events import EventSigner

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The checkout this test runs from (examples, deploy files)."""

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

BUS389 = str(Path(sys.executable).with_name("bus389"))
PREFIX = "bus389"
TOPICS = Topics(PREFIX)
ROUTER_GROUP = f"{PREFIX}.router"
_UP_ATTEMPTS = 4
"""A port found free can be taken before the broker binds it: ``up`` is tried again on other ports."""


# --- the secure bus ----------------------------------------------------------------------------------


@dataclass
class SecureBus:
    """A running secure cluster, its admin, and a config file per principal."""

    data_dir: Path
    work: Path
    admin_config: Path
    base_port: int = 0
    """The broker's client port (its controller's is 100 above), chosen by ``_kafka_up``."""
    configs: dict[str, Path] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    """Everything every command and every refused client printed or raised, for the secret grep."""

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "BUS389_CONFIG"}
        # The shell may point at the shared broker: --config must win over it.
        env.update(BUS389_BOOTSTRAP="127.0.0.1:9092", BUS389_TOPIC_PREFIX=PREFIX, BUS389_LOCAL__HEAP="384m")
        return env

    def run(
        self, *args: str, config: Path | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        command = [BUS389, *(["--config", str(config)] if config else []), *args]
        result = subprocess.run(
            command, capture_output=True, text=True, env=self.env(), timeout=timeout, check=False
        )
        self.outputs += [result.stdout, result.stderr]
        return result

    def as_admin(self) -> Settings:
        return load_settings(self.admin_config)

    def as_(self, who: str) -> Settings:
        return load_settings(self.configs[who])

    def passwords(self) -> list[str]:
        found = []
        for path in [self.admin_config, *self.configs.values()]:
            found.append(load_settings(path).kafka.password.get_secret_value())  # type: ignore[union-attr]
        found.append((self.data_dir / "security" / "broker.password").read_text().strip())
        return found

    def end_offsets(self, topic: str) -> dict[int, int]:
        """The topic's end offsets as the admin sees them (uncommitted: any write at all moves them)."""
        from kafka.admin import OffsetSpec

        with make_admin(self.as_admin()) as admin, kafka_errors():
            specs = {TopicPartition(topic, p): OffsetSpec.LATEST for p in range(3)}
            offsets = admin.list_partition_offsets(specs)
        return {tp.partition: o.offset for tp, o in offsets.items()}

    def server_log(self) -> str:
        return (self.data_dir / "broker-1" / "logs" / "server.log").read_text(errors="replace")


def _kafka_up(bus: SecureBus) -> None:
    for attempt in range(_UP_ATTEMPTS):
        bus.base_port = free_base_port()
        result = bus.run(
            "kafka", "up", "--secure", "--data-dir", str(bus.data_dir), "--base-port", str(bus.base_port)
        )
        if result.returncode == 0:
            return
        taken = re.search(r"port 127\.0\.0\.1:(\d+) .*already taken", result.stderr)
        if taken is None or attempt == _UP_ATTEMPTS - 1:
            pytest.fail(f"kafka up --secure failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")


@pytest.fixture(scope="module")
def bus() -> Iterator[SecureBus]:
    data_dir = Path(tempfile.mkdtemp(prefix="bus389-secure-kafka-"))
    work = Path(tempfile.mkdtemp(prefix="bus389-secure-clients-"))
    sbus = SecureBus(data_dir, work, data_dir / "security" / "admin.env")
    try:
        _kafka_up(sbus)
        assert sbus.admin_config.stat().st_mode & 0o777 == 0o600
        for args in (("topics", "apply"), ("security", "apply")):
            result = sbus.run(*args, config=sbus.admin_config)
            assert result.returncode == 0, result.stderr
        for who in [*(a.value for a in Agency), "router"]:
            out = work / f"{who}.env"
            result = sbus.run("security", "issue", who, "--out", str(out), config=sbus.admin_config)
            assert result.returncode == 0, result.stderr
            assert out.stat().st_mode & 0o777 == 0o600
            sbus.configs[who] = out
        yield sbus
    finally:
        if (data_dir / "state.json").exists():
            sbus.run("kafka", "down", "--data-dir", str(data_dir), "--purge", timeout=200)
        shutil.rmtree(data_dir, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


# --- events -------------------------------------------------------------------------------------------


def _digits(n: int) -> str:
    return str(uuid.uuid4().int)[:n].rjust(n, "7")


@dataclass(frozen=True)
class Personal:
    """Personal data unique to this run, so that finding its bytes anywhere means it leaked."""

    national_id: str
    phone: str
    address: str

    def seller(self, name: str) -> dict[str, Any]:
        return {
            "name": name,
            "tax_code": "4300123456",
            "national_id": self.national_id,
            "phone": self.phone,
            "address": self.address,
            "province": "Quảng Ngãi",
        }

    def by_field(self) -> dict[str, str]:
        return {
            "seller.national_id": self.national_id,
            "seller.phone": self.phone,
            "seller.address": self.address,
        }


def _jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


@dataclass
class Routed:
    """What the routing scenario published and what the router did with it."""

    personal: Personal
    spoof_id: str
    media_ids: dict[str, str]
    redaction_ids: dict[str, str]
    dlq_before: dict[int, int]
    router_output: str
    metrics_text: str


def _run_router(bus: SecureBus, event_ids: set[str]) -> tuple[str, str]:
    """``bus389 --config router.env route`` at DEBUG level until every one of ``event_ids`` is audited or
    in the DLQ; its /metrics scraped then; SIGTERM, which must end it with 0."""
    env = {**bus.env(), "BUS389_METRICS__LOG_LEVEL": "DEBUG"}
    command = [BUS389, "--config", str(bus.configs["router"]), "route", "--metrics-port", "0"]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as proc:
        output, metrics_text = _watch_router(proc, lambda: _routed(bus, event_ids))
    bus.outputs += [output, metrics_text]
    assert proc.returncode == 0, output[-3000:]
    return output, metrics_text


def _routed(bus: SecureBus, event_ids: set[str]) -> bool:
    admin = bus.as_admin()
    # An audit record is keyed by the event it audits; a dead letter keeps the event's ce_id.
    audited = {(r.key or b"").decode() for r in _read_all(admin, TOPICS.audit)}
    return event_ids <= audited | {_ce_id(r) for r in _read_all(admin, TOPICS.dlq)}


def _watch_router(proc: subprocess.Popen[str], done: Callable[[], bool]) -> tuple[str, str]:
    lines: list[str] = []
    out: list[str] = []
    port_seen = threading.Event()

    def drain_err() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "metrics on http" in line:
                port_seen.set()

    def drain_out() -> None:
        assert proc.stdout is not None
        out.append(proc.stdout.read())

    threads = [threading.Thread(target=drain_err), threading.Thread(target=drain_out)]
    for t in threads:
        t.start()
    metrics_text = ""
    try:
        assert port_seen.wait(60), "the router never said where its metrics are:\n" + "".join(lines)

        def routed_everything() -> bool:
            assert proc.poll() is None, "the router ended early:\n" + "".join(lines)[-3000:]
            return done()

        try:
            wait_for(routed_everything, 180, "the router to route everything", interval_s=1.0)
        except AssertionError as exc:
            raise AssertionError(f"{exc}:\n" + "".join(lines)[-3000:]) from exc
        url = re.search(r"(http://\S+/metrics)", "".join(lines))
        assert url is not None
        with urllib.request.urlopen(url.group(1), timeout=10) as response:  # noqa: S310 — loopback
            metrics_text = response.read().decode()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        for t in threads:
            t.join(timeout=30)
    return "".join(lines) + "".join(out), metrics_text


@pytest.fixture(scope="module")
def routed(bus: SecureBus) -> Routed:
    """Publish, as the agencies (real CLI, their own credentials), the events the router attacks need,
    plus one spoof written straight into the police outbox; then run the router once as User:router."""
    personal = Personal(f"0511{_digits(8)}", f"09{_digits(8)}", f"{_digits(3)} Hẻm Bí Mật, P. Nghĩa Chánh")
    seller = personal.seller("Cửa hàng Thu Trang")
    domain = f"hang-lau-{uuid.uuid4().hex[:8]}.vn"
    ids = {name: str(uuid.uuid4()) for name in ("suspect", "tax", "outcome")}
    redaction = [
        (
            "police",
            "suspect_seller",
            {
                "meta": {"event_id": ids["suspect"], "sensitivity": "AMBER"},
                "seller": seller,
                "accounts": [{"platform": "WEBSITE", "account": domain, "url": f"https://{domain}"}],
                "goods": "Mỹ phẩm nhập lậu",
                "violation_kinds": ["SMUGGLING"],
                "domains": [domain],
                "goods_imported": True,
                "border_area": True,
                "summary": "Bán mỹ phẩm nhập lậu qua website",
            },
        ),
        (
            "tax",
            "tax_discrepancy",
            {
                "meta": {"event_id": ids["tax"], "sensitivity": "AMBER"},
                "seller": seller,
                "accounts": [{"platform": "LAZADA", "account": "thutrang"}],
                "period": "2021-H1",
                "estimated_revenue_vnd": 3_000_000_000,
                "declared_revenue_vnd": 200_000_000,
                "undeclared_revenue_vnd": 2_800_000_000,
                "estimated_tax_owed_vnd": 150_000_000,
            },
        ),
    ]
    outcome = {
        "seller": seller,
        "outcome": "ADMINISTRATIVE_SANCTION",
        "violation_kinds": ["COUNTERFEIT"],
        "fine_vnd": 45_000_000,
        "decided_on": "2021-04-27",
        "public": True,
        "summary": "Xử phạt vi phạm hành chính",
    }
    media_ids = {level: str(uuid.uuid4()) for level in ("CLEAR", "GREEN", "AMBER", "AMBER_STRICT", "RED")}
    # A RED outcome names its addressee (the standing office): RED reaches only those named.
    outcomes = [
        {
            **outcome,
            "meta": {"event_id": event_id, "sensitivity": level}
            | ({"recipients": ["market_surveillance"]} if level == "RED" else {}),
        }
        for level, event_id in media_ids.items()
    ]
    ids["outcome"] = media_ids["CLEAR"]
    for agency, event_type, record in redaction:
        path = _jsonl(bus.work / f"{event_type}.jsonl", [record])
        result = bus.run(
            "publish", event_type, "--as", agency, "--file", str(path), config=bus.configs[agency]
        )
        assert result.returncode == 0, result.stderr
    path = _jsonl(bus.work / "case_outcome.jsonl", outcomes)
    result = bus.run(
        "publish", "case_outcome", "--as", "police", "--file", str(path), config=bus.configs["police"]
    )
    assert result.returncode == 0, result.stderr

    # The spoof: a valid police identity writes into its own outbox an event claiming to be the tax's,
    # signed with the police's own key (what a real police sender holds; the secure mode refuses unsigned).
    spoof = build_event(
        "suspect_seller",
        Agency.TAX,
        {
            "meta": {"sensitivity": "AMBER"},
            "seller": {"name": "Đối thủ cạnh tranh bị vu khống"},
            "goods": "Không có",
            "summary": "Tin giả mạo danh Cục Thuế",
        },
    )
    encoded = encode_event(spoof)
    police_signer = EventSigner.from_settings(bus.as_("police"), Agency.POLICE.value)
    assert police_signer is not None, "security issue police wrote no signing key into the police config"
    spoof_headers = police_signer.headers(encoded.value, encoded.headers)
    dlq_before = bus.end_offsets(TOPICS.dlq)
    producer = make_producer(bus.as_("police"))
    try:
        with kafka_errors():
            producer.send(
                TOPICS.outbox(Agency.POLICE), key=encoded.key, value=encoded.value, headers=spoof_headers
            ).get(timeout=30)
    finally:
        producer.close()
    output, metrics_text = _run_router(bus, {*ids.values(), *media_ids.values(), str(spoof.meta.event_id)})
    return Routed(
        personal,
        str(spoof.meta.event_id),
        media_ids,
        {"suspect_seller": ids["suspect"], "tax_discrepancy": ids["tax"], "case_outcome": ids["outcome"]},
        dlq_before,
        output,
        metrics_text,
    )


def _read_all(settings: Settings, topic: str, timeout_s: float = 30.0) -> list[Any]:
    """Every record of ``topic`` up to its current end (read_committed, no group)."""
    consumer = make_consumer(settings, group_id=None)
    try:
        with kafka_errors():
            tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            ends = consumer.end_offsets(tps)
            records: list[Any] = []

            def at_the_end() -> bool:
                if all(consumer.position(tp) >= ends[tp] for tp in tps):
                    return True
                for batch in consumer.poll(timeout_ms=300).values():
                    records.extend(batch)
                return False

            wait_for(at_the_end, timeout_s, f"{topic} read to its end", interval_s=0)
        return records
    finally:
        consumer.close()


def _ce_id(record: Any) -> str:
    return dict(record.headers or []).get("ce_id", b"").decode()


def _raw(record: Any) -> bytes:
    """Every byte of a record a recipient gets: key, value, header names and values."""
    parts = [record.key or b"", record.value or b""]
    for name, value in record.headers or []:
        parts += [name.encode(), value or b""]
    return b"\x00".join(parts)


# --- the attacks -------------------------------------------------------------------------------------

NOTHING = "nothing written"


@dataclass(frozen=True)
class Attack:
    key: str
    attack: str
    expected: str
    run: Callable[[SecureBus, Routed | None], str]
    needs_routing: bool = False


_WRAPPERS = {"BrokerResponseError", "RuntimeError"}
"""Errors that carry per-partition or per-resource refusals in their message: name those instead."""


def _refusal(exc: BaseException) -> str:
    """The Kafka error class behind a refusal (``BrokerError`` keeps it as ``__cause__``)."""
    cause = exc.__cause__ if isinstance(exc, BusError) and exc.__cause__ is not None else exc
    name = type(cause).__name__
    if name in _WRAPPERS:
        inner = sorted(set(re.findall(r"\b(\w+Error)\b", str(cause))) - _WRAPPERS)
        return ", ".join(inner) or name
    return name


def _try(bus: SecureBus, action: Callable[[], Any]) -> str:
    """Run ``action``; return the refusal's error name, or ``ALLOWED`` (then the test fails)."""
    try:
        action()
    except Exception as exc:  # the refusal is what we look for
        bus.outputs.append(f"{exc!r} {exc} {exc.__cause__!r}")
        return _refusal(exc)
    return "ALLOWED"


def _written(bus: SecureBus, topics: list[str], action: Callable[[], str]) -> str:
    before = {t: bus.end_offsets(t) for t in topics}
    # Every action ends its client (producer closed, CLI exited) before returning: a write it made was
    # acknowledged by then, so the end offsets now show it.
    refusal = action()
    after = {t: bus.end_offsets(t) for t in topics}
    moved = sum(sum(after[t].values()) - sum(before[t].values()) for t in topics)
    return f"refused ({refusal}); " + (NOTHING if moved == 0 else f"{moved} record(s) written")


def _send(settings: Settings, topic: str, value: bytes, **overrides: Any) -> Callable[[], Any]:
    def action() -> Any:
        producer = make_producer(settings, max_block_ms=10_000, **overrides)
        try:
            with kafka_errors():
                return producer.send(topic, key=b"k", value=value).get(timeout=20)
        finally:
            producer.close(timeout=5)

    return action


def attack_read_other_inbox(bus: SecureBus, _: Routed | None) -> str:
    tax = bus.as_("tax")
    target = TOPICS.inbox(Agency.POLICE)
    assert sum(bus.end_offsets(target).values()) > 0, "the police inbox must hold something to steal"
    got: list[Any] = []

    def by_assignment() -> None:
        consumer = make_consumer(tax, group_id=None)
        try:
            tps = [TopicPartition(target, p) for p in range(3)]
            consumer.assign(tps)
            for tp in tps:
                consumer.seek(tp, 0)
            for _ in range(4):
                for batch in consumer.poll(timeout_ms=500).values():
                    got.extend(batch)
            with kafka_errors():
                consumer.end_offsets(tps)
        finally:
            consumer.close()

    def by_subscription() -> None:
        consumer = make_consumer(tax, group_id=f"{PREFIX}.tax.{uuid.uuid4().hex[:8]}", topics=[target])
        try:
            for _ in range(4):
                for batch in consumer.poll(timeout_ms=500).values():
                    got.extend(batch)
            with kafka_errors():
                consumer.end_offsets([TopicPartition(target, 0)])
        finally:
            consumer.close()

    refusals = {_try(bus, by_assignment), _try(bus, by_subscription)}
    cli = bus.run(
        "consume", "--as", "police", "--from-beginning", "--timeout", "3", config=bus.configs["tax"]
    )
    cli_ok = cli.returncode != 0 and not cli.stdout.strip()
    return f"refused ({', '.join(sorted(refusals))}); {len(got)} record(s) read; CLI refused: {cli_ok}"


def _write_attack(who: str, topic: str) -> Callable[[SecureBus, Routed | None], str]:
    def run(bus: SecureBus, _: Routed | None) -> str:
        return _written(bus, [topic], lambda: _try(bus, _send(bus.as_(who), topic, b"forged")))

    return run


def attack_publish_other_outbox_cli(bus: SecureBus, _: Routed | None) -> str:
    path = _jsonl(
        bus.work / "forged.jsonl",
        [{"meta": {"sensitivity": "AMBER"}, "seller": {"name": "X"}, "goods": "Y", "summary": "Z"}],
    )

    def action() -> str:
        result = bus.run(
            "publish", "suspect_seller", "--as", "police", "--file", str(path), config=bus.configs["tax"]
        )
        return f"CLI exit {result.returncode}"

    return _written(bus, [TOPICS.outbox(Agency.POLICE)], action)


def attack_join_router_group(bus: SecureBus, _: Routed | None) -> str:
    def offsets() -> Any:
        with make_admin(bus.as_admin()) as admin, kafka_errors():
            return {
                str(tp): om.offset
                for tp, om in admin.list_group_offsets([ROUTER_GROUP])[ROUTER_GROUP].items()
            }

    before = offsets()

    def join() -> None:
        consumer = make_consumer(bus.as_("tax"), group_id=ROUTER_GROUP, topics=[TOPICS.inbox(Agency.TAX)])
        try:
            with kafka_errors():
                consumer.poll(timeout_ms=5_000)
                consumer.commit(
                    {TopicPartition(TOPICS.outbox(Agency.POLICE), 0): _offset_and_metadata(10**6)}
                )
        finally:
            consumer.close()

    refusal = _try(bus, join)
    same = offsets() == before
    return f"refused ({refusal}); router group offsets unchanged: {same}"


def _offset_and_metadata(offset: int) -> Any:
    from kafka.structs import OffsetAndMetadata

    return OffsetAndMetadata(offset, "", -1)


def attack_router_transactional_id(bus: SecureBus, _: Routed | None) -> str:
    def epoch() -> Any:
        with make_admin(bus.as_admin()) as admin, kafka_errors():
            described = admin.describe_transactions([ROUTER_GROUP])[ROUTER_GROUP]
        return (described.producer_id, described.producer_epoch)

    before = epoch()

    def hijack() -> None:
        producer = make_producer(bus.as_("tax"), transactional_id=ROUTER_GROUP, max_block_ms=10_000)
        try:
            with kafka_errors():
                producer.init_transactions()
        finally:
            producer.close(timeout=5)

    refusal = _written(bus, [TOPICS.inbox(Agency.POLICE)], lambda: _try(bus, hijack))
    return f"{refusal}; router not fenced (epoch unchanged): {epoch() == before}"


def attack_create_topic(bus: SecureBus, _: Routed | None) -> str:
    from kafka.admin import NewTopic

    name = f"{PREFIX}.outbox.evil"

    def create() -> None:
        with make_admin(bus.as_("tax")) as admin, kafka_errors():
            admin.create_topics([NewTopic(name, 1, 1)])

    refusal = _try(bus, create)
    with make_admin(bus.as_admin()) as admin, kafka_errors():
        exists = name in admin.list_topics()
    return f"refused ({refusal}); topic created: {exists}"


def attack_delete_topics(bus: SecureBus, _: Routed | None) -> str:
    targets = [TOPICS.outbox(Agency.TAX), TOPICS.inbox(Agency.POLICE), TOPICS.audit]
    refusals = set()
    for topic in targets:

        def delete(topic: str = topic) -> None:
            with make_admin(bus.as_("tax")) as admin, kafka_errors():
                admin.delete_topics([topic])

        refusals.add(_try(bus, delete))
    with make_admin(bus.as_admin()) as admin, kafka_errors():
        present = set(admin.list_topics())
    kept = all(t in present for t in targets)
    return f"refused ({', '.join(sorted(refusals))}); topics still there: {kept}"


def attack_erase_own_outbox(bus: SecureBus, _: Routed | None) -> str:
    from kafka.admin import ConfigResource, ConfigResourceType

    topic = TOPICS.outbox(Agency.TAX)
    start_before = _starts(bus, topic)

    def delete_records() -> None:
        with make_admin(bus.as_("tax")) as admin, kafka_errors():
            admin.delete_records({TopicPartition(topic, p): 1 for p in range(3)})

    def shrink_retention() -> None:
        with make_admin(bus.as_("tax")) as admin, kafka_errors():
            result = admin.alter_configs(
                [ConfigResource(ConfigResourceType.TOPIC, topic, {"retention.ms": "1"})],
                raise_on_unknown=False,
            )
        answer = result.get("topic", {}).get(topic, "?")
        if answer != "OK":
            raise RuntimeError(answer)

    refusals = {_try(bus, delete_records), _try(bus, shrink_retention)}
    with make_admin(bus.as_admin()) as admin, kafka_errors():
        configs = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="all"
        )
    retention = configs["topic"][topic]["retention.ms"]["value"]
    return (
        f"refused ({', '.join(sorted(refusals))}); records kept: {_starts(bus, topic) == start_before}; "
        f"retention unchanged: {retention != '1'}"
    )


def _starts(bus: SecureBus, topic: str) -> dict[int, int]:
    from kafka.admin import OffsetSpec

    with make_admin(bus.as_admin()) as admin, kafka_errors():
        offsets = admin.list_partition_offsets(
            {TopicPartition(topic, p): OffsetSpec.EARLIEST for p in range(3)}
        )
    return {tp.partition: o.offset for tp, o in offsets.items()}


def attack_alter_acls(bus: SecureBus, _: Routed | None) -> str:
    from kafka.admin import (
        ACL,
        ACLFilter,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ResourcePattern,
        ResourcePatternFilter,
        ResourceType,
    )

    with make_admin(bus.as_admin()) as admin:
        before = read_acls(admin)
    grant = ACL(
        "User:tax",
        "*",
        ACLOperation.READ,
        ACLPermissionType.ALLOW,
        ResourcePattern(ResourceType.TOPIC, TOPICS.inbox(Agency.POLICE)),
    )
    every = ACLFilter(
        None,
        None,
        ACLOperation.ANY,
        ACLPermissionType.ANY,
        ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY),
    )
    with make_admin(bus.as_("tax")) as admin, kafka_errors():
        created = admin.create_acls([grant])
        deleted = admin.delete_acls([every])
    refusals = {e.__name__ for e in created["failed"]} | {err.__name__ for _f, _m, err in deleted}
    if created["succeeded"]:
        refusals.add("ALLOWED")
    with make_admin(bus.as_admin()) as admin:
        after = read_acls(admin)
    return f"refused ({', '.join(sorted(refusals))}); ACLs unchanged: {after == before}"


def attack_steal_credentials(bus: SecureBus, _: Routed | None) -> str:
    from kafka.admin import UserScramCredentialUpsertion

    stolen = "attacker-chosen-password-1234567890"
    with make_admin(bus.as_("tax")) as admin, kafka_errors():
        result = admin.alter_user_scram_credentials(
            [UserScramCredentialUpsertion("police", "SCRAM-SHA-512", stolen)]
        )
    refused = "needs ALTER permission" in str(result.get("police"))
    police = bus.as_("police")
    as_attacker = police.model_copy(
        update={"kafka": police.kafka.model_copy(update={"password": SecretStr(stolen)})}
    )
    attacker_in = _try(
        bus, lambda: make_admin(as_attacker, request_timeout_ms=4000, bootstrap_timeout_ms=4000).close()
    )
    police_in = _try(
        bus, lambda: make_admin(police, request_timeout_ms=8000, bootstrap_timeout_ms=8000).close()
    )
    return (
        f"refused (ALTER on cluster needed): {refused}; attacker password works: {attacker_in == 'ALLOWED'}; "
        f"police password still works: {police_in == 'ALLOWED'}"
    )


def _auth_failures(bus: SecureBus, marker: str) -> int:
    return sum(
        1 for line in bus.server_log().splitlines() if "Failed authentication" in line and marker in line
    )


def attack_no_tls(bus: SecureBus, _: Routed | None) -> str:
    before = _auth_failures(bus, "SSL handshake failed")
    tax = bus.as_("tax")
    refusals = set()
    for protocol in ("PLAINTEXT", "SASL_PLAINTEXT"):
        plain = tax.model_copy(update={"kafka": tax.kafka.model_copy(update={"security_protocol": protocol})})
        refusals.add(
            _try(
                bus, lambda s=plain: make_admin(s, request_timeout_ms=4000, bootstrap_timeout_ms=4000).close()
            )
        )
    # A raw Kafka ApiVersions request, in the clear: the TLS port must not answer it as Kafka.
    body = struct.pack(">hhih", 18, 0, 42, len(b"attacker")) + b"attacker"
    with socket.create_connection(("127.0.0.1", bus.base_port), timeout=5) as sock:
        sock.sendall(struct.pack(">i", len(body)) + body)
        try:
            answer = sock.recv(4096)
        except (TimeoutError, ConnectionResetError):
            answer = b""
    kafka_answer = len(answer) >= 8 and struct.unpack(">i", answer[4:8])[0] == 42
    handshakes = wait_for(
        lambda: _auth_failures(bus, "SSL handshake failed") - before,
        30,
        "the broker to log the failed TLS handshakes",
    )
    return (
        f"refused ({', '.join(sorted(refusals))}); raw request answered: {kafka_answer}; "
        f"broker logged failed TLS handshakes: {handshakes > 0}"
    )


def attack_wrong_password(bus: SecureBus, _: Routed | None) -> str:
    before = _auth_failures(bus, "invalid credentials")
    tax = bus.as_("tax")
    guess = "guessed-password-0123456789abcdef"
    wrong = tax.model_copy(update={"kafka": tax.kafka.model_copy(update={"password": SecretStr(guess)})})
    refusal = _try(bus, lambda: make_admin(wrong, request_timeout_ms=4000, bootstrap_timeout_ms=4000).close())
    logged = wait_for(
        lambda: _auth_failures(bus, "invalid credentials") - before,
        30,
        "the broker to log the invalid credentials",
    )
    echoed = any(guess in text for text in bus.outputs)
    return f"refused ({refusal}); broker logged invalid credentials: {logged > 0}; password echoed: {echoed}"


def attack_oversized(bus: SecureBus, _: Routed | None) -> str:
    topic = TOPICS.outbox(Agency.TAX)
    big = os.urandom(1_500_000)
    return _written(
        bus, [topic], lambda: _try(bus, _send(bus.as_("tax"), topic, big, max_request_size=4_000_000))
    )


def attack_spoof(bus: SecureBus, routed: Routed | None) -> str:
    assert routed is not None
    admin = bus.as_admin()
    letters = [r for r in _read_all(admin, TOPICS.dlq) if _ce_id(r) == routed.spoof_id]
    reasons = sorted(dict(r.headers).get("bus389_dlq_reason", b"").decode() for r in letters)
    copies = sum(
        1 for agency in Agency for r in _read_all(admin, TOPICS.inbox(agency)) if _ce_id(r) == routed.spoof_id
    )
    audited = sum(1 for r in _read_all(admin, TOPICS.audit) if routed.spoof_id.encode() in _raw(r))
    return f"DLQ {','.join(reasons) or 'none'}; {copies} inbox copies; {audited} audit records"


def attack_media_not_clear(bus: SecureBus, routed: Routed | None) -> str:
    assert routed is not None
    records = _read_all(bus.as_admin(), TOPICS.inbox(Agency.MEDIA))
    levels = [decode_value(r.value).record["meta"]["sensitivity"] for r in records]
    got = {_ce_id(r) for r in records}
    delivered = sorted(level for level, eid in routed.media_ids.items() if eid in got)
    not_clear = sum(1 for level in levels if level != "CLEAR")
    return f"media inbox: {not_clear} record(s) not CLEAR of {len(levels)}; of the 5 levels got {delivered}"


def _grants() -> dict[str, list[str]]:
    policy = yaml.safe_load(
        (REPO_ROOT / "bus389" / "routing" / "routing-policy.yaml").read_text(encoding="utf-8")
    )
    return {str(k): list(v) for k, v in policy["personal_data"]["grants"].items()}


def _granted(patterns: list[str], path: str) -> bool:
    return any(p == path or (p.endswith(".*") and path.startswith(p[:-1])) for p in patterns)


def attack_redaction(bus: SecureBus, routed: Routed | None) -> str:
    assert routed is not None
    grants = _grants()
    ours = set(routed.redaction_ids.values())
    leaks: list[str] = []
    scanned = reached = 0
    control = False
    must_reach = {"ict", "tax", "industry_trade", "media", "customs", "border_guard"}
    for agency in Agency:
        records = _read_all(bus.as_admin(), TOPICS.inbox(agency))
        scanned += len(records)
        if any(_ce_id(r) in ours for r in records) and agency.value in must_reach:
            reached += 1
        for record in records:
            raw = _raw(record)
            for path, value in routed.personal.by_field().items():
                if value.encode() in raw:
                    if _granted(grants.get(agency.value, []), path):
                        control = control or agency is Agency.POLICE
                    else:
                        leaks.append(f"{agency.value}:{path}")
    return (
        f"{len(leaks)} ungranted personal value(s) in {scanned} inbox records scanned; "
        f"{reached} of {len(must_reach)} ungranted recipients reached; police (granted) sees them: {control}"
    )


ATTACKS: list[Attack] = [
    Attack(
        "read_other_inbox",
        "tax reads the police inbox (assign, subscribe, CLI)",
        "refused (TopicAuthorizationFailedError); 0 record(s) read; CLI refused: True",
        attack_read_other_inbox,
        needs_routing=True,
    ),
    Attack(
        "write_other_outbox",
        "tax writes into the police outbox",
        f"refused (TopicAuthorizationFailedError); {NOTHING}",
        _write_attack("tax", TOPICS.outbox(Agency.POLICE)),
    ),
    Attack(
        "publish_other_outbox_cli",
        "tax runs `publish --as police`",
        f"refused (CLI exit 2); {NOTHING}",
        attack_publish_other_outbox_cli,
    ),
    Attack(
        "write_own_inbox",
        "tax writes straight into its own inbox",
        f"refused (TopicAuthorizationFailedError); {NOTHING}",
        _write_attack("tax", TOPICS.inbox(Agency.TAX)),
    ),
    Attack(
        "write_other_inbox",
        "tax writes straight into the police inbox",
        f"refused (TopicAuthorizationFailedError); {NOTHING}",
        _write_attack("tax", TOPICS.inbox(Agency.POLICE)),
    ),
    Attack(
        "write_dlq",
        "police writes into the DLQ",
        f"refused (TopicAuthorizationFailedError); {NOTHING}",
        _write_attack("police", TOPICS.dlq),
    ),
    Attack(
        "write_audit",
        "police writes into the audit log",
        f"refused (TopicAuthorizationFailedError); {NOTHING}",
        _write_attack("police", TOPICS.audit),
    ),
    Attack(
        "router_writes_outbox",
        "the router writes into an outbox",
        f"refused (TopicAuthorizationFailedError); {NOTHING}",
        _write_attack("router", TOPICS.outbox(Agency.POLICE)),
    ),
    Attack(
        "join_router_group",
        "tax joins the router's consumer group and commits its offsets",
        "refused (GroupAuthorizationFailedError); router group offsets unchanged: True",
        attack_join_router_group,
        needs_routing=True,
    ),
    Attack(
        "router_transactional_id",
        "tax uses the router's transactional id",
        f"refused (TransactionalIdAuthorizationFailedError); {NOTHING}; "
        "router not fenced (epoch unchanged): True",
        attack_router_transactional_id,
        needs_routing=True,
    ),
    Attack(
        "create_topic",
        "tax creates a topic",
        "refused (TopicAuthorizationFailedError); topic created: False",
        attack_create_topic,
    ),
    Attack(
        "delete_topics",
        "tax deletes its outbox, the police inbox, the audit log",
        "refused (TopicAuthorizationFailedError); topics still there: True",
        attack_delete_topics,
    ),
    Attack(
        "erase_own_outbox",
        "tax erases its own outbox (delete records, retention 1 ms)",
        "refused (TopicAuthorizationFailedError); records kept: True; retention unchanged: True",
        attack_erase_own_outbox,
    ),
    Attack(
        "alter_acls",
        "tax grants itself the police inbox; deletes every ACL",
        "refused (ClusterAuthorizationFailedError); ACLs unchanged: True",
        attack_alter_acls,
    ),
    Attack(
        "steal_credentials",
        "tax sets the police's SCRAM password",
        "refused (ALTER on cluster needed): True; attacker password works: False; "
        "police password still works: True",
        attack_steal_credentials,
    ),
    Attack(
        "no_tls",
        "a client without TLS (PLAINTEXT, SASL_PLAINTEXT, raw bytes) on the TLS port",
        "refused (KafkaTimeoutError); raw request answered: False; broker logged failed TLS handshakes: True",
        attack_no_tls,
    ),
    Attack(
        "wrong_password",
        "a client with a wrong password",
        "refused (KafkaTimeoutError); broker logged invalid credentials: True; password echoed: False",
        attack_wrong_password,
    ),
    Attack(
        "oversized",
        "tax sends a 1.5 MB message (topic limit 1 MiB)",
        f"refused (MessageSizeTooLargeError); {NOTHING}",
        attack_oversized,
    ),
    Attack(
        "spoof_source",
        "police writes meta.source=tax into its own outbox",
        "DLQ wrong_key; 0 inbox copies; 0 audit records",
        attack_spoof,
        needs_routing=True,
    ),
    Attack(
        "media_not_clear",
        "case outcomes (public) at every TLP level: what reaches the media",
        "media inbox: 0 record(s) not CLEAR of 1; of the 5 levels got ['CLEAR']",
        attack_media_not_clear,
        needs_routing=True,
    ),
    Attack(
        "redaction",
        "personal values (ID, phone, address) anywhere in an ungranted inbox (raw bytes)",
        "0 ungranted personal value(s) in {n} inbox records scanned; 6 of 6 ungranted recipients reached; "
        "police (granted) sees them: True",
        attack_redaction,
        needs_routing=True,
    ),
]

OBSERVED: dict[str, str] = {}


def _matches(expected: str, observed: str) -> bool:
    pattern = re.escape(expected).replace(re.escape("{n}"), r"\d+")
    return re.fullmatch(pattern, observed) is not None


def _observe(attack: Attack, bus: SecureBus, request: pytest.FixtureRequest) -> str:
    if attack.key not in OBSERVED:
        routed = request.getfixturevalue("routed") if attack.needs_routing else None
        OBSERVED[attack.key] = attack.run(bus, routed)
    return OBSERVED[attack.key]


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.key for a in ATTACKS])
def test_attack_is_refused(attack: Attack, bus: SecureBus, request: pytest.FixtureRequest) -> None:
    observed = _observe(attack, bus, request)
    assert _matches(attack.expected, observed), (
        f"{attack.attack}\n expected: {attack.expected}\n observed: {observed}"
    )


def test_attack_table(
    bus: SecureBus, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's table: every row observed (run here if deselected above) and as expected."""
    rows = [(a, _observe(a, bus, request)) for a in ATTACKS]
    lines = ["| # | attack | expected | observed |", "|---|---|---|---|"]
    for number, (attack, observed) in enumerate(rows, start=1):
        lines.append(f"| {number} | {attack.attack} | {attack.expected} | {observed} |")
    table = "\n".join(lines)
    with capsys.disabled():
        print("\n" + table)
    failed = [a.key for a, observed in rows if not _matches(a.expected, observed)]
    assert not failed, table


def test_router_output_and_metrics_carry_no_secret(bus: SecureBus, routed: Routed) -> None:
    """The router ran at DEBUG (kafka-python logs its whole configuration there) and was scraped."""
    assert "bus389_" in routed.metrics_text, "the router's /metrics was not scraped"
    assert "SASL" in routed.router_output or "sasl" in routed.router_output, "DEBUG logs did not run"
    for password in bus.passwords():
        assert password not in routed.router_output
        assert password not in routed.metrics_text


def test_no_secret_in_any_output(bus: SecureBus, routed: Routed, request: pytest.FixtureRequest) -> None:
    """Every command run here (kafka up, topics/security apply, issue, publish, consume, route) and
    every refused client's error: no password of any principal anywhere."""
    for attack in ATTACKS:
        _observe(attack, bus, request)  # run once per module: its output is in bus.outputs already
    bus.outputs.append(
        bus.run("kafka", "status", "--data-dir", str(bus.data_dir), config=bus.admin_config).stdout
    )
    bus.outputs.append(repr(bus.as_("tax")) + str(bus.as_("tax")) + repr(bus.as_admin()))
    text = "\n".join(bus.outputs)
    assert len(text) > 1000
    passwords = bus.passwords()
    # the admin, every principal (each agency and the router) and the brokers
    assert len(passwords) == len(bus.configs) + 2 and all(len(p) >= 32 for p in passwords)
    for password in passwords:
        assert password not in text
    # Kafka's own logs never hold them either (the JAAS config is a password-typed setting).
    logs = "".join(p.read_text(errors="replace") for p in (bus.data_dir / "broker-1" / "logs").glob("*.log"))
    for password in passwords:
        assert password not in logs


def test_secret_files_are_private(bus: SecureBus) -> None:
    security = bus.data_dir / "security"
    assert security.stat().st_mode & 0o777 == 0o700
    for path in [*security.iterdir(), bus.data_dir / "broker-1" / "server.properties", *bus.configs.values()]:
        assert path.stat().st_mode & 0o077 == 0, path
    assert not (bus.data_dir / "broker-1" / "format.args").exists()
    props = (bus.data_dir / "broker-1" / "server.properties").read_text()
    assert "PLAINTEXT://" not in props.split("listener.security.protocol.map")[0]
    assert "allow.everyone.if.no.acl.found=false" in props
    assert "StandardAuthorizer" in props


def test_agencies_work_within_their_rights(bus: SecureBus, routed: Routed) -> None:
    """Least privilege must not be no privilege: each agency reads its own inbox and its own outbox."""
    ict = bus.run("consume", "--as", "ict", "--from-beginning", "--timeout", "3", config=bus.configs["ict"])
    assert ict.returncode == 0, ict.stderr
    assert routed.redaction_ids["suspect_seller"] in ict.stdout
    tax = bus.run(
        "consume",
        "--as",
        "tax",
        "--topic",
        "outbox",
        "--from-beginning",
        "--timeout",
        "3",
        config=bus.configs["tax"],
    )
    assert tax.returncode == 0, tax.stderr
    assert routed.redaction_ids["tax_discrepancy"] in tax.stdout


def test_the_assignment_watch_may_ask_about_its_own_group_only(bus: SecureBus, routed: Routed) -> None:
    """The question :mod:`bus389.assignment_watch` asks the coordinator (how many members) needs no
    right beyond the group's own: the router and the ICT service get an answer, tax about ICT's does not."""
    from bus389.assignment_watch import group_member_count
    from bus389.consumers.ict.service import group_id as ict_group

    ict = bus.as_("ict")
    assert group_member_count(bus.as_("router"), ROUTER_GROUP) == 0  # the router ran and left
    assert group_member_count(ict, ict_group(ict)) == 0
    assert group_member_count(bus.as_("tax"), ict_group(ict)) is None


def test_apply_is_idempotent_and_removes_stale(bus: SecureBus) -> None:
    from kafka.admin import ACL, ACLOperation, ACLPermissionType, ResourcePattern, ResourceType

    stale = ACL(
        "User:tax",
        "*",
        ACLOperation.READ,
        ACLPermissionType.ALLOW,
        ResourcePattern(ResourceType.TOPIC, TOPICS.inbox(Agency.POLICE)),
    )
    with make_admin(bus.as_admin()) as admin, kafka_errors():
        assert not admin.create_acls([stale])["failed"]
    # The reviewed spec (deploy/security/acl-spec.yaml; tests/unit/test_security_acl.py proves the derived
    # one equal to it) says how many ACLs must be in place.
    prefix, spec = load_spec_file(REPO_ROOT / "deploy" / "security" / "acl-spec.yaml")
    assert prefix == PREFIX
    in_place = len(set(spec))
    result = bus.run("security", "apply", config=bus.admin_config)
    assert result.returncode == 0, result.stderr
    assert "deleted: ALLOW User:tax READ TOPIC bus389.inbox.police" in result.stdout
    assert f"0 created, 1 deleted, {in_place} already in place" in result.stdout
    again = bus.run("security", "apply", config=bus.admin_config)
    assert f"0 created, 0 deleted, {in_place} already in place" in again.stdout


def test_a_rotated_password_stops_working(bus: SecureBus) -> None:
    old = bus.as_("other_members")
    result = bus.run(
        "security",
        "issue",
        "other_members",
        "--out",
        str(bus.configs["other_members"]),
        config=bus.admin_config,
    )
    assert result.returncode == 0 and "rotated" in result.stdout, result.stderr
    new = bus.as_("other_members")
    assert new.kafka.password != old.kafka.password
    make_admin(new, request_timeout_ms=8000, bootstrap_timeout_ms=8000).close()
    with pytest.raises(BrokerError):
        make_admin(old, request_timeout_ms=4000, bootstrap_timeout_ms=4000).close()
