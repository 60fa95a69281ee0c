"""Whatever the default routing policy sends the ICT department or the standing office, their services keep.

Every example event (examples/*.jsonl), from every sender, as it is and as a reply to an event of ICT's
(``meta.in_reply_to``), goes through the real router (:class:`RecordRouter` with the
default routing policy);
each copy it writes into ``inbox.ict`` or ``inbox.market_surveillance`` is handed to the service of that
inbox, which must keep it (a request, a lead, a reply; the standing office's store) and never treat it
as poison.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from bus389.agencies import Agency, Topics
from bus389.codec import decode_value, encode_event
from bus389.consumers.ict.service import IctService
from bus389.consumers.ict.store import open_store
from bus389.consumers.router.records import Outgoing, RecordRouter
from bus389.consumers.router.replies import ReplyIndex
from bus389.consumers.standing_office.service import StandingOfficeService
from bus389.consumers.standing_office.store import StandingOfficeStore
from bus389.errors import BusError
from bus389.events import build_event
from bus389.routing.policy import load_policy
from bus389.runtime.inbox_loop import InboxMessage
from bus389.settings import IctSettings, Settings, StoreSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The checkout this test runs from (examples, deploy files)."""

PREFIX = "t_cov"
ICT_EVENT = str(uuid.UUID(int=0x389))
"""An event ICT sent earlier (the router's reply index says so): what the replies answer."""


@dataclass
class Raw:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


class NoProducer:
    def init_transactions(self) -> None:
        pass

    def close(self, timeout: float | None = None) -> None:
        pass


def examples() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted((REPO_ROOT / "examples").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                yield path.stem, json.loads(line)


def routed_copies() -> list[Outgoing]:
    """Every inbox copy the router writes for the examples, from every sender, replying or not."""
    topics = Topics(PREFIX)
    replies = ReplyIndex()
    replies.record(ICT_EVENT, Agency.ICT, list(Agency))  # sent to every member: any of them may answer
    replies.commit()
    router = RecordRouter(
        topics, load_policy(REPO_ROOT / "bus389" / "routing" / "routing-policy.yaml"), replies
    )
    copies: list[Outgoing] = []
    offset = 0
    for event_type, data in examples():
        for sender in Agency:
            for reply in (False, True):
                meta = {**data.get("meta", {}), "sensitivity": "AMBER"}
                if reply:
                    meta["in_reply_to"] = ICT_EVENT
                try:
                    event = build_event(event_type, sender, {**data, "meta": meta})
                except (ValidationError, BusError):
                    continue
                encoded = encode_event(event)
                offset += 1
                raw = Raw(topics.outbox(sender), 0, offset, encoded.key, encoded.value, encoded.headers)
                routed = router.route(raw, received_at=datetime.now(UTC))
                copies.extend(o for o in routed.outgoing if ".inbox." in o.topic)
    return copies


@pytest.fixture(scope="module")
def copies() -> list[Outgoing]:
    return routed_copies()


def message(out: Outgoing, offset: int) -> InboxMessage:
    assert out.value is not None
    decoded = decode_value(out.value)
    return InboxMessage(
        topic=out.topic,
        partition=0,
        offset=offset,
        key=out.key,
        value=out.value,
        headers=dict(out.headers),
        timestamp_ms=0,
        schema=decoded.schema,
        record=decoded.record,
    )


def test_the_examples_reach_both_inboxes_with_every_kind_ict_can_get(copies: list[Outgoing]) -> None:
    by_inbox = Counter(
        (o.topic.rsplit(".", 1)[1], decode_value(o.value or b"").record["meta"]["event_type"]) for o in copies
    )
    ict_types = {t for inbox, t in by_inbox if inbox == "ict"}
    # Requests, leads (rule suspect_seller.ict), and replies of other types to ICT's own events.
    assert {"domain_block_request", "suspect_seller", "case_outcome", "law_gap_proposal"} <= ict_types
    so_types = {t for inbox, t in by_inbox if inbox == "market_surveillance"}
    # Every example type, and the router's notices (sealed ones, and its own dead letters').
    assert so_types == {stem for stem, _ in examples()} | {"routing_notice"}
    assert ("ict", "routing_notice") in by_inbox  # what ICT may not publish comes back as a notice


def test_the_ict_service_keeps_everything_routed_to_it(copies: list[Outgoing], tmp_path: Path) -> None:
    settings = Settings(
        topic_prefix=PREFIX,
        store=StoreSettings(ict_url=f"sqlite:///{tmp_path / 'ict.sqlite3'}"),
        ict=IctSettings(output_dir=tmp_path / "blocklist", auto_approve_senders=tuple(Agency)),
    )
    mine = [o for o in copies if o.topic == f"{PREFIX}.inbox.ict"]
    with open_store(settings.store.ict_url) as store:
        service = IctService(settings, store, producer_factory=NoProducer)
        service.start()
        kept: Counter[str] = Counter()
        for offset, out in enumerate(mine):
            msg = message(out, offset)
            service.handle(msg)  # raises for poison: none may
            kept[msg.event_type] += 1
        requests = {r.event_id for r in store.requests()}
        leads = store.leads()
        replies = {r.event_id for r in store.replies()}
        assert store.rejected_events() == []
    assert kept["suspect_seller"] == len(leads) > 0
    assert kept["domain_block_request"] == len(requests) > 0
    assert sum(kept.values()) == len(requests) + len(leads) + len(replies)
    assert replies, "the replies to ICT's own events are kept"
    assert {lead.rule for lead in leads} == {"suspect_seller.ict", "reply.original_sender"}
    for lead in leads:
        if lead.rule == "suspect_seller.ict":  # ICT's: a domain, a website or a social-network account
            platforms = {a["platform"] for a in lead.accounts}
            assert lead.domains or platforms & {"WEBSITE", "FACEBOOK", "ZALO", "YOUTUBE", "TIKTOK_SHOP"}


def test_the_standing_office_keeps_everything_routed_to_it(copies: list[Outgoing], tmp_path: Path) -> None:
    mine = [o for o in copies if o.topic == f"{PREFIX}.inbox.market_surveillance"]
    with StandingOfficeStore.open(f"sqlite:///{tmp_path / 'so.sqlite3'}") as store:
        service = StandingOfficeService(store)
        ids = set()
        for offset, out in enumerate(mine):
            msg = message(out, offset)
            service.handle(msg)
            ids.add(msg.event_id)
        assert store.count_events() == len(ids) > 0
