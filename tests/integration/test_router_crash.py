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
from _wait import wait_for
from kafka.structs import TopicPartition

from bus389.agencies import Agency
from bus389.codec import decode_value
from bus389.events import Event
from bus389.kafka import make_consumer
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


def _expected(event: Event, outbox: Agency) -> tuple[set[Agency], str | None]:
    """Who must receive ``event`` read from ``outbox`` (or the dead-letter reason), written out by hand
    from the routing policy's text (bus389/routing/routing-policy.yaml) and DOMAIN.md, for the five
    kinds of :func:`_mix`; never from the router's own ``decide``.

    - The outbox is the sender: a claimed source that is not the outbox is ``spoofed_source``.
    - An agency never gets its own event back, except through the standing office's catch-all
      (``standing_office.all``: every event, the sender's own included, as a copy for information).
    - AMBER_STRICT is not carried by copies for information (``cc``); RED (naming no one) only by
      ``allow_red`` rules; the media only receive CLEAR; the sender's own copy is never held back by
      sensitivity. No recipient left: ``no_route``.
    """
    data = event.to_avro()
    source = Agency(data["meta"]["source"])
    if outbox != source:
        return set(), "spoofed_source"
    level = data["meta"]["sensitivity"]
    ms, kind = Agency.MARKET_SURVEILLANCE, data["meta"]["event_type"]
    named: set[Agency] = set()  # rules naming the recipient directly
    copies: set[Agency] = set()  # copies for information (cc), besides the catch-all
    if kind == "suspect_seller" and level == "RED":
        named = {Agency.POLICE}  # II.1: the only suspect_seller rule that allows RED
    elif kind == "suspect_seller":
        named = {Agency.POLICE, ms, Agency.TAX}  # II.1, II.9, II.4
        platforms = {a["platform"] for a in data["accounts"]}
        if data["domains"] or platforms & {"WEBSITE", "FACEBOOK", "ZALO", "YOUTUBE", "TIKTOK_SHOP"}:
            named.add(Agency.ICT)  # II.6: a domain, a website or a social-network account
        if data["goods_imported"]:
            named.add(Agency.CUSTOMS)  # II.3
        if data["border_area"]:
            named.add(Agency.BORDER_GUARD)  # II.2
    elif kind == "tax_discrepancy":
        named = {ms}  # II.9 (II.5 gives Industry and Trade no duty on tax alerts)
        if data["estimated_tax_owed_vnd"] >= 100_000_000:  # Penal Code art. 200: signs of tax evasion
            named.add(Agency.POLICE)
    elif kind == "domain_block_request":
        named, copies = {Agency.ICT}, {ms}  # II.6, and a copy to the standing office (II.9)
    elif kind == "case_outcome":
        named = {ms, Agency.TAX}  # II.9; II.4: back-taxes
        if data["public"]:
            named.add(Agency.INDUSTRY_TRADE)  # II.5: publicises the handled cases
            if level == "CLEAR":
                named.add(Agency.MEDIA)  # II.7: public cases; the media receive CLEAR only
    else:
        raise AssertionError(f"no expectation written for {kind}")
    if level == "AMBER_STRICT":
        copies = set()
    recipients = (named | copies) - {source}
    if level not in ("RED", "AMBER_STRICT") or source == ms:
        recipients.add(ms)  # standing_office.all, its own events included whatever their sensitivity
    return (recipients, None) if recipients else (set(), "no_route")


class _Transactions:
    """Whether a transaction is open on the router's output: records of the audit topic or the DLQ past
    their last stable offset (what a read_uncommitted reader sees beyond a read_committed one)."""

    def __init__(self, settings: Settings) -> None:
        self.committed = make_consumer(settings, group_id=None)
        self.uncommitted = make_consumer(settings, group_id=None, isolation_level="read_uncommitted")
        self.tps = [
            TopicPartition(topic, p)
            for topic in (settings.topics.audit, settings.topics.dlq)
            for p in sorted(self.committed.partitions_for_topic(topic) or ())
        ]

    def committed_records(self) -> int:
        """The last stable offsets, summed (records and transaction markers that are committed)."""
        return sum(self.committed.end_offsets(self.tps).values())

    def open(self) -> bool:
        stable = self.committed.end_offsets(self.tps)
        written = self.uncommitted.end_offsets(self.tps)
        return any(written[tp] > stable[tp] for tp in self.tps)

    def close(self) -> None:
        self.committed.close()
        self.uncommitted.close()


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

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

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


@pytest.mark.timeout(600)
def test_no_event_lost_or_duplicated_when_the_router_is_killed(
    make_settings: Callable[..., Settings], unique_group: Callable[..., str], tmp_path: Path
) -> None:
    """Each kill lands while the router holds an open transaction (records written, not committed):
    the test freezes the router (SIGSTOP) when it sees one, checks it is still open, then SIGKILLs it."""
    started = time.monotonic()
    settings = router_settings(make_settings, unique_group, batch_max_events=100)
    rng = random.Random(389)
    mix = _mix(rng)

    expected_pairs: Counter[tuple[str, str]] = Counter()
    expected_audit: set[str] = set()
    expected_dlq: Counter[tuple[str, str]] = Counter()
    expected_notices = 0
    for event, outbox in mix:
        recipients, dlq_reason = _expected(event, outbox)
        event_id = str(event.meta.event_id)
        expected_notices += dlq_reason is not None  # the sender is told in its own inbox
        if dlq_reason != "spoofed_source" and Agency.MARKET_SURVEILLANCE not in recipients:
            expected_notices += outbox != Agency.MARKET_SURVEILLANCE  # a sealed notice
        if dlq_reason is None:
            expected_audit.add(event_id)
            expected_pairs.update((event_id, r.value) for r in recipients)
        else:
            expected_dlq[(event_id, dlq_reason)] += 1
    assert {reason for _, reason in expected_dlq} == {"spoofed_source", "no_route"} and expected_pairs

    published: list[Any] = []
    failure: list[BaseException] = []
    transactions = _Transactions(settings)

    def publisher() -> None:
        """Publish chunk after chunk, keeping at most two chunks ahead of what the router committed
        (so that there is work to route after every restart, and a kill always finds some)."""
        try:
            for i in range(0, len(mix), CHUNK):
                wait_for(
                    lambda: len(published) - transactions_fed.committed_records() < 2 * CHUNK,
                    120,
                    "the router to catch up with the publisher",
                    interval_s=0.1,
                )
                chunk = mix[i : i + CHUNK]
                for outbox in {o for _, o in chunk}:
                    published.extend(publish(settings, [e for e, o in chunk if o == outbox], outbox=outbox))
        except BaseException as exc:
            failure.append(exc)

    transactions_fed = _Transactions(settings)  # the publisher thread's own clients
    router = _Router(settings, tmp_path)
    router.start()
    feeder = threading.Thread(target=publisher, name="publisher", daemon=True)
    feeder.start()
    kills_in_open_transaction = 0

    def frozen_in_an_open_transaction() -> bool:
        """Freeze the router when a transaction is open; keep it frozen if it still is (the router,
        stopped, cannot have committed it since), else let it go on."""
        if not transactions.open():
            return False
        router.pause()
        if transactions.open():
            return True
        router.resume()
        return False

    try:
        while kills_in_open_transaction < KILLS:
            instance = router.starts
            wait_for(router.assigned, 60, f"router instance {instance} to be assigned the outboxes")
            wait_for(
                frozen_in_an_open_transaction,
                120,
                f"router instance {instance} to hold an open transaction",
                interval_s=0.02,
            )
            router.kill()
            # The scenario reached: the dead router's transaction is still open (no one else writes).
            assert transactions.open(), "the kill did not land inside an open transaction"
            kills_in_open_transaction += 1
            router.start()
        feeder.join(timeout=300)
        assert not feeder.is_alive(), "the publisher did not finish"
        assert not failure, failure
        assert len(published) == EVENTS
        wait_for(
            lambda: (
                len(read_topic(settings, settings.topics.audit)) >= len(expected_audit)
                and len(read_topic(settings, settings.topics.dlq)) >= sum(expected_dlq.values())
            ),
            180,
            f"{len(expected_audit)} audit records and {sum(expected_dlq.values())} dead letters",
            interval_s=1.0,
        )
        # Stopped, the router writes nothing more: what is read below is final (a duplicate included).
        code = router.terminate()
        assert not transactions.open(), "a transaction was left open: the killed ones were never aborted"
    except BaseException:
        if router.process is not None and router.process.poll() is None:
            router.resume()
            router.process.kill()
        print(router.log())
        raise
    finally:
        transactions.close()
        transactions_fed.close()
    assert code == 0, router.log()

    seen_pairs: Counter[tuple[str, str]] = Counter()
    notices: Counter[str] = Counter()  # the router's notices, by their (derived, per-origin) ids
    for agency in Agency:
        for record in read_topic(settings, settings.topics.inbox(agency)):
            if headers(record)["ce_type"].startswith("vn.bcd389.routing_notice."):
                notices[headers(record)["ce_id"]] += 1
                continue
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
        f"\ncrash test: events={EVENTS} kills in an open transaction={kills_in_open_transaction} "
        f"router starts={router.starts} "
        f"deliveries={sum(expected_pairs.values())} lost={lost} duplicated={duplicated} "
        f"audit records={sum(seen_audit.values())} (lost={audit_lost} duplicated={audit_duplicated}) "
        f"dead letters={sum(seen_dlq.values())} (lost={dlq_lost} duplicated={dlq_duplicated}) "
        f"in {time.monotonic() - started:.0f}s"
    )
    assert router.starts == KILLS + 1 == kills_in_open_transaction + 1
    assert (lost, duplicated) == (0, 0)
    assert (audit_lost, audit_duplicated) == (0, 0)
    assert (dlq_lost, dlq_duplicated) == (0, 0)
    # One notice per dead letter (its sender told) and per event the standing office got no copy of
    # (sealed), each written once however often the router was killed.
    assert sum(notices.values()) == len(notices) == expected_notices
