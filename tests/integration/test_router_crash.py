"""Exactly-once under crashes: thousands of events published while the router is SIGKILLed and restarted;
an independent read_committed reader then finds every (event, recipient) pair once and one audit each."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _router_support import (
    case_outcome,
    domain_block_request,
    headers,
    publish,
    read_topic,
    router_settings,
    suspect_seller,
    tax_discrepancy,
)
from kafka.structs import TopicPartition

from bus389.agencies import Agency
from bus389.codec import decode_value
from bus389.events import Event
from bus389.kafka import make_consumer
from bus389.routing.decision import decide
from bus389.routing.policy import load_policy
from bus389.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EVENTS = 3000
KILLS = 5
CHUNK = 100
BUS389 = str(Path(sys.executable).with_name("bus389"))


def _mix(rng: random.Random) -> list[tuple[Event, Agency]]:
    """EVENTS events of the main types, with every routing flag, and about 1 % spoofs."""
    agencies = [Agency.POLICE, Agency.CUSTOMS, Agency.TAX, Agency.MARKET_SURVEILLANCE, Agency.BORDER_GUARD]
    out: list[tuple[Event, Agency]] = []
    for i in range(EVENTS):
        kind = i % 5
        source = agencies[rng.randrange(len(agencies))]
        case = {"case_ref": f"QNG-389-2021-{i % 97:04d}"} if i % 3 == 0 else {}
        if kind == 0:
            event = suspect_seller(
                source,
                sensitivity=rng.choice(["AMBER", "GREEN", "AMBER_STRICT"]),
                domains=["hang-gia-qn.vn"] if rng.random() < 0.5 else [],
                goods_imported=rng.random() < 0.5,
                border_area=rng.random() < 0.3,
                meta=case,
            )
        elif kind == 1:
            event = tax_discrepancy(rng.choice([5_000_000, 100_000_000, 450_000_000]))
        elif kind == 2:
            event = domain_block_request(source, sensitivity=rng.choice(["AMBER", "AMBER_STRICT"]))
        elif kind == 3:
            event = case_outcome(
                source, public=rng.random() < 0.5, sensitivity=rng.choice(["CLEAR", "GREEN"])
            )
        else:
            event = suspect_seller(
                source, sensitivity="RED", accounts=[{"platform": "FACEBOOK", "account": "x"}]
            )
        outbox = Agency(event.meta.source)
        if i % 100 == 7:
            outbox = Agency.POLICE if outbox != Agency.POLICE else Agency.MEDIA  # a spoof
        out.append((event, outbox))
    return out


def _audit_progress(settings: Settings) -> int:
    consumer = make_consumer(settings, group_id=None)
    try:
        topic = settings.topics.audit
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(consumer.end_offsets(tps).values())
    finally:
        consumer.close()


class _Router:
    """``bus389 route`` as a subprocess that the test kills and restarts."""

    def __init__(self, settings: Settings, log_dir: Path) -> None:
        self.env = {
            **os.environ,
            "BUS389_BOOTSTRAP": settings.bootstrap,
            "BUS389_TOPIC_PREFIX": settings.topic_prefix,
            "BUS389_ROUTER__GROUP_ID": settings.router.group_id,
            "BUS389_ROUTER__TRANSACTIONAL_ID": settings.router.transactional_id,
            "BUS389_ROUTER__SESSION_TIMEOUT_MS": str(settings.router.session_timeout_ms),
            "BUS389_ROUTER__BATCH_MAX_EVENTS": str(settings.router.batch_max_events),
        }
        self.log_dir = log_dir
        self.starts = 0
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.starts += 1
        log = (self.log_dir / f"router-{self.starts}.log").open("wb")
        self.process = subprocess.Popen(
            [BUS389, "route", "--metrics-port", "0"], env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def terminate(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)

    def assigned(self) -> bool:
        """Has the running instance joined the group and been given the outboxes?"""
        current = self.log_dir / f"router-{self.starts}.log"
        text = current.read_text(errors="replace") if current.exists() else ""
        return re.search(r"router: [1-9][0-9]* partition\(s\) assigned", text) is not None

    def log(self) -> str:
        return "\n".join(
            p.read_text(errors="replace")[-3000:] for p in sorted(self.log_dir.glob("router-*.log"))
        )


@pytest.mark.timeout(300)
def test_no_event_lost_or_duplicated_when_the_router_is_killed(
    make_settings: Callable[..., Settings], unique_group: Callable[..., str], tmp_path: Path
) -> None:
    started = time.monotonic()
    settings = router_settings(make_settings, unique_group, batch_max_events=100)
    policy = load_policy(settings.router.policy_path)
    rng = random.Random(389)
    mix = _mix(rng)

    expected_pairs: Counter[tuple[str, str]] = Counter()
    expected_audit: set[str] = set()
    expected_dlq: Counter[tuple[str, str]] = Counter()
    for event, outbox in mix:
        decision = decide(outbox, event.to_avro(), policy, lambda _event_id: None)
        if decision.routed:
            expected_audit.add(decision.event_id)
            expected_pairs.update((decision.event_id, r.value) for r in decision.recipients)
        else:
            expected_dlq[(decision.event_id, decision.dlq_reason or "")] += 1
    assert expected_dlq and expected_pairs

    published: list[Any] = []
    failure: list[BaseException] = []

    def publisher() -> None:
        try:
            for i in range(0, len(mix), CHUNK):
                chunk = mix[i : i + CHUNK]
                for outbox in {o for _, o in chunk}:
                    published.extend(publish(settings, [e for e, o in chunk if o == outbox], outbox=outbox))
                time.sleep(0.4)
        except BaseException as exc:
            failure.append(exc)

    router = _Router(settings, tmp_path)
    router.start()
    feeder = threading.Thread(target=publisher, name="publisher", daemon=True)
    feeder.start()
    kills = 0
    try:
        while kills < KILLS:
            # Kill only once this instance routes (it was assigned the outboxes and committed a batch):
            # the kill then lands between or inside its transactions.
            deadline = time.monotonic() + 60
            while not router.assigned() and time.monotonic() < deadline:
                time.sleep(0.1)
            before = _audit_progress(settings)
            while _audit_progress(settings) == before and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(rng.uniform(0.05, 0.8))
            router.kill()
            kills += 1
            router.start()
        feeder.join(timeout=120)
        assert not failure, failure
        assert len(published) == EVENTS
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            audit_n = len(read_topic(settings, settings.topics.audit))
            dlq_n = len(read_topic(settings, settings.topics.dlq))
            if audit_n >= len(expected_audit) and dlq_n >= sum(expected_dlq.values()):
                break
            time.sleep(1.0)
        time.sleep(1.0)  # anything extra (a duplicate) would show up now
        code = router.terminate()
    except BaseException:
        if router.process is not None and router.process.poll() is None:
            router.process.kill()
        print(router.log())
        raise
    assert code == 0, router.log()

    seen_pairs: Counter[tuple[str, str]] = Counter()
    for agency in Agency:
        for record in read_topic(settings, settings.topics.inbox(agency)):
            seen_pairs[(headers(record)["ce_id"], agency.value)] += 1
    seen_audit = Counter(
        str(decode_value(r.value).record["event_id"]) for r in read_topic(settings, settings.topics.audit)
    )
    seen_dlq = Counter(
        (headers(r)["ce_id"], headers(r)["bus389_dlq_reason"])
        for r in read_topic(settings, settings.topics.dlq)
    )

    lost = sum((expected_pairs - seen_pairs).values())
    duplicated = sum((seen_pairs - expected_pairs).values())
    audit_lost = len(expected_audit - set(seen_audit))
    audit_duplicated = sum(n - 1 for n in seen_audit.values() if n > 1) + len(
        set(seen_audit) - expected_audit
    )
    dlq_lost = sum((expected_dlq - seen_dlq).values())
    dlq_duplicated = sum((seen_dlq - expected_dlq).values())
    print(
        f"\ncrash test: events={EVENTS} kills={kills} router starts={router.starts} "
        f"deliveries={sum(expected_pairs.values())} lost={lost} duplicated={duplicated} "
        f"audit records={sum(seen_audit.values())} (lost={audit_lost} duplicated={audit_duplicated}) "
        f"dead letters={sum(seen_dlq.values())} (lost={dlq_lost} duplicated={dlq_duplicated}) "
        f"in {time.monotonic() - started:.0f}s"
    )
    assert kills >= 4
    assert (lost, duplicated) == (0, 0)
    assert (audit_lost, audit_duplicated) == (0, 0)
    assert (dlq_lost, dlq_duplicated) == (0, 0)
