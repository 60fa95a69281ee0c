"""The publishing workload of a fault-injection run: a steady stream of events, every outcome recorded.

Events of every type an agency publishes (``domain_block_result`` comes from the ICT service itself),
from the agencies that publish them, with the fields varied so that every route, every sensitivity
level and every redaction of the policy is exercised. The stream is a pure function of the seed (ids
included), so a run can be repeated.

Each event is its own Kafka transaction through :class:`bus389.producers.publisher.Publisher`, the code
``bus389 publish`` uses. What the producer was told goes to the history before the next event:
``ok`` once ``commit_transaction`` returned, ``fail`` when the transaction was aborted (or never
begun), ``info`` when the commit was not confirmed. An event is never retried under the same id: a
retry of an ``info`` event could put it on the bus twice, which the checker would rightly count.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bus389.agencies import Agency
from bus389.chaos.history import ACKNOWLEDGED, FAILED, INDETERMINATE, EventEntry, HistoryWriter
from bus389.codec import encode_event
from bus389.errors import BusError
from bus389.events import build_event

# The workload publishes through the code `bus389 publish` runs (the operator tools sit above the
# producers, see docs/architecture.md): a fault run tests that code, not a copy of it.
from bus389.producers.publisher import OutgoingEvent, Publisher
from bus389.settings import Settings

__all__ = ["PUBLISHERS", "EventFactory", "Workload", "WorkloadStats"]

log = logging.getLogger(__name__)

A = Agency
PUBLISHERS: dict[str, tuple[Agency, ...]] = {
    "suspect_seller": (A.POLICE, A.BORDER_GUARD, A.CUSTOMS, A.TAX, A.INDUSTRY_TRADE, A.MARKET_SURVEILLANCE),
    "domain_block_request": (A.POLICE, A.MARKET_SURVEILLANCE, A.INDUSTRY_TRADE, A.CUSTOMS, A.TAX),
    "tax_discrepancy": (A.TAX,),
    "complaint": (A.INDUSTRY_TRADE, A.MARKET_SURVEILLANCE),
    "case_referral": (A.BORDER_GUARD, A.CUSTOMS, A.TAX, A.INDUSTRY_TRADE, A.MARKET_SURVEILLANCE, A.ICT),
    "case_outcome": (A.POLICE, A.BORDER_GUARD, A.CUSTOMS, A.MARKET_SURVEILLANCE),
    "periodic_report": tuple(Agency),
    "law_gap_proposal": (A.POLICE, A.ICT, A.CUSTOMS, A.OTHER_MEMBERS),
}
"""Who publishes what in the workload (DOMAIN.md's "typical publisher")."""

_WEIGHTS = {
    "suspect_seller": 5,
    "domain_block_request": 3,
    "tax_discrepancy": 3,
    "complaint": 2,
    "case_referral": 2,
    "case_outcome": 2,
    "periodic_report": 1,
    "law_gap_proposal": 1,
}
_LEVELS = ("CLEAR", "GREEN", "AMBER", "AMBER_STRICT", "RED")
_LEVEL_WEIGHTS = (2, 3, 4, 1, 1)
_NAMES = ("Trần Văn Đức", "Nguyễn Thị Hồng Nhung", "Lê Minh Khôi", "Phạm Thị Thu Trang", "Võ Quốc Bảo")
_GOODS = ("Mỹ phẩm Hàn Quốc giả", "Đồng hồ Thụy Sĩ nhái", "Thuốc lá điện tử nhập lậu", "Rượu ngoại không tem")
_PLATFORMS = ("SHOPEE", "LAZADA", "TIKI", "FACEBOOK", "ZALO", "WEBSITE", "TIKTOK_SHOP")
_JULY = datetime(2021, 7, 1, tzinfo=UTC)
_KINDS = ("SMUGGLING", "COUNTERFEIT", "TRADE_FRAUD", "TAX_EVASION", "ORIGIN_FRAUD", "IP_INFRINGEMENT")


class EventFactory:
    """The workload's events: ``next()`` gives (event_type, publisher, data for ``build_event``, event id)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - reproducible from the seed, not secret
        self.count = 0
        self._types = list(_WEIGHTS)
        self._type_weights = list(_WEIGHTS.values())

    def _id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _seller(self) -> dict[str, Any]:
        r = self.rng
        personal = r.random() < 0.7
        return {
            "name": f"Hộ kinh doanh {r.choice(_NAMES)}",
            "tax_code": f"43{r.randrange(10**8):08d}" if r.random() < 0.6 else None,
            "national_id": f"0511{r.randrange(10**8):08d}" if personal else None,
            "phone": f"09{r.randrange(10**8):08d}" if personal and r.random() < 0.8 else None,
            "address": f"Thôn {r.randint(1, 9)}, xã Nghĩa Hà, TP. Quảng Ngãi" if personal else None,
            "province": "Quảng Ngãi",
        }

    def _accounts(self) -> list[dict[str, Any]]:
        r = self.rng
        return [
            {"platform": r.choice(_PLATFORMS), "account": f"shop{r.randrange(10**6)}", "url": None}
            for _ in range(r.randint(0, 2))
        ]

    def _domain(self) -> str:
        return f"hang-gia-{self.count}-{self.rng.randrange(16**6):06x}.vn"

    def _fields(self, event_type: str) -> dict[str, Any]:  # noqa: PLR0911 - one branch per type reads best
        r = self.rng
        if event_type == "suspect_seller":
            return {
                "seller": self._seller(),
                "accounts": self._accounts(),
                "goods": r.choice(_GOODS),
                "violation_kinds": r.sample(_KINDS, r.randint(1, 2)),
                "evidence_urls": [f"https://shopee.vn/p/{r.randrange(10**9)}"] if r.random() < 0.5 else [],
                "domains": [self._domain()] if r.random() < 0.4 else [],
                "goods_imported": r.random() < 0.4,
                "border_area": r.random() < 0.3,
                "estimated_value_vnd": r.randrange(10**6, 10**10) if r.random() < 0.7 else None,
                "summary": "Rao bán hàng có dấu hiệu vi phạm trên mạng.",
            }
        if event_type == "domain_block_request":
            return {
                "domains": [self._domain() for _ in range(r.randint(1, 2))],
                "urls": [],
                "ip_addresses": [],
                "action": "BLOCK",
                "reason": "Website kinh doanh hàng giả.",
                "legal_basis": f"Công văn {r.randint(1, 999)}/QLTT-NV",
                "violation_kinds": [r.choice(_KINDS)],
            }
        if event_type == "tax_discrepancy":
            declared = r.randrange(10**8, 10**9)
            undeclared = r.randrange(10**8, 2 * 10**10)
            return {
                "seller": self._seller(),
                "accounts": self._accounts(),
                "period": r.choice(("2021-H1", "2021-Q3", "2021-07", "2021")),
                "estimated_revenue_vnd": declared + undeclared,
                "declared_revenue_vnd": declared,
                "undeclared_revenue_vnd": undeclared,
                "estimated_tax_owed_vnd": r.choice((undeclared // 100, 100_000_000, 99_999_999)),
                "notes": None,
            }
        if event_type == "complaint":
            return {
                "kind": r.choice(("PETITION", "COMPLAINT", "DENUNCIATION")),
                "channel": r.choice(("HOTLINE", "EMAIL", "ONLINE_PORTAL")),
                "received_at": (_JULY + timedelta(minutes=r.randrange(60 * 24 * 30))).isoformat(),
                "complainant": {
                    "full_name": r.choice(_NAMES),
                    "national_id": f"0513{r.randrange(10**8):08d}" if r.random() < 0.5 else None,
                    "phone": f"09{r.randrange(10**8):08d}" if r.random() < 0.5 else None,
                    "address": None,
                }
                if r.random() < 0.8
                else None,
                "seller": self._seller() if r.random() < 0.7 else None,
                "accounts": self._accounts(),
                "summary": "Mua hàng qua mạng, nghi hàng giả.",
                "signs_of_crime": r.random() < 0.3,
            }
        if event_type == "case_referral":
            return {
                "seller": self._seller(),
                "accounts": self._accounts(),
                "violation_kinds": [r.choice(_KINDS)],
                "suspected_offences": ["Điều 192 BLHS 2015"],
                "summary": "Có dấu hiệu tội phạm, chuyển cơ quan công an.",
            }
        if event_type == "case_outcome":
            return {
                "seller": self._seller() if r.random() < 0.8 else None,
                "outcome": r.choice(("ADMINISTRATIVE_SANCTION", "WARNING", "NO_VIOLATION")),
                "violation_kinds": [r.choice(_KINDS)],
                "fine_vnd": r.randrange(0, 10**8),
                "decided_on": "2021-07-20",
                "public": r.random() < 0.5,
                "summary": "Đã xử lý vụ việc.",
            }
        if event_type == "periodic_report":
            return {
                "report_kind": r.choice(("SIX_MONTHLY", "RAPID", "AD_HOC")),
                "period": "2021-H1",
                "title": "Báo cáo kết quả đấu tranh chống buôn lậu trên thương mại điện tử",
                "body": "Số vụ phát hiện và xử lý trong kỳ.",
                "cases_detected": r.randint(0, 50),
            }
        return {
            "regulation": "Nghị định 52/2013/NĐ-CP",
            "article": None,
            "problem": "Chưa quy định trách nhiệm của sàn.",
            "proposal": "Bổ sung quy định.",
        }

    def next(self) -> tuple[str, Agency, dict[str, Any], str]:
        """The next event: its type, its publisher, its fields (``meta`` partial) and its id."""
        r = self.rng
        self.count += 1
        event_type = r.choices(self._types, self._type_weights)[0]
        source = r.choice(PUBLISHERS[event_type])
        data = self._fields(event_type)
        data["meta"] = {
            "sensitivity": r.choices(_LEVELS, _LEVEL_WEIGHTS)[0],
            "urgency": r.choice(("ROUTINE", "PRIORITY", "IMMEDIATE")),
            "case_ref": f"QNG-389-2021-{r.randrange(10**4):04d}" if r.random() < 0.3 else None,
        }
        return event_type, source, data, self._id()


@dataclass
class WorkloadStats:
    """What the workload did: attempts by outcome."""

    attempted: int = 0
    by_status: dict[str, int] = field(default_factory=dict)

    @property
    def acknowledged(self) -> int:
        return self.by_status.get(ACKNOWLEDGED, 0)


class Workload:
    """Publish at ``rate`` events a second until ``stop`` is set or ``max_events`` were attempted.

    ``workers`` threads share the rate, each with its own producers and its own seeded stream of events
    (worker ``k`` uses the seed ``seed * 1000 + k``): a publish stalled by a fault (a commit waits up to
    the delivery timeout) holds up one worker, not the whole stream.
    """

    def __init__(
        self,
        settings: Settings,
        history: HistoryWriter,
        *,
        rate: float,
        seed: int,
        workers: int = 3,
        max_events: int | None = None,
        stop: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.history = history
        self.workers = max(1, workers)
        self.interval = self.workers / rate if rate > 0 else 0.0
        self.seed = seed
        self.max_events = max_events
        self.stop = stop or threading.Event()
        self.clock = clock
        self.stats = WorkloadStats()
        self._lock = threading.Lock()

    def run(self) -> WorkloadStats:
        threads = [
            threading.Thread(target=self._worker, args=(k,), name=f"chaos-workload-{k}", daemon=True)
            for k in range(self.workers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return self.stats

    def _ticket(self) -> bool:
        with self._lock:
            if self.max_events is not None and self.stats.attempted >= self.max_events:
                return False
            self.stats.attempted += 1
            return True

    def _worker(self, k: int) -> None:
        factory = EventFactory(self.seed * 1000 + k)
        publishers: dict[Agency, Any] = {}
        next_at = self.clock() + self.interval * k / self.workers
        try:
            while not self.stop.is_set():
                delay = next_at - self.clock()
                if delay > 0 and self.stop.wait(delay):
                    break
                # Never burst to catch up after a stall: a steady rate, not a backlog.
                next_at = max(next_at + self.interval, self.clock())
                if not self._ticket():
                    break
                self.publish_one(factory, publishers)
        finally:
            for publisher in publishers.values():
                _close(publisher)

    def publish_one(self, factory: EventFactory, publishers: dict[Agency, Any]) -> EventEntry:
        """Build, publish and record one event; never raises for a broker failure (it is recorded)."""
        event_type, source, data, event_id = factory.next()
        event = build_event(event_type, source, data, event_id=event_id)
        outgoing = OutgoingEvent(factory.count, event, encode_event(event))
        invoked = time.time()
        status, error = self._send(publishers, source, outgoing)
        entry = EventEntry(
            event_id=event_id,
            event_type=event_type,
            source=source.value,
            status=status,
            record=event.to_json_dict(),
            invoked_at=invoked,
            completed_at=time.time(),
            error=error,
        )
        self.history.event(entry)
        with self._lock:
            self.stats.by_status[status] = self.stats.by_status.get(status, 0) + 1
        return entry

    def _send(self, publishers: dict[Agency, Any], source: Agency, outgoing: Any) -> tuple[Any, str]:
        publisher = publishers.get(source)
        try:
            if publisher is None:
                publisher = Publisher(self.settings, source)
                publisher.open()
                publishers[source] = publisher
        except BusError as exc:
            log.warning("workload: cannot open a publisher for %s: %s", source.value, exc)
            return FAILED, f"not sent: {exc}"
        try:
            publisher.publish([outgoing])
        except BusError as exc:
            unknown = bool(getattr(publisher, "outcome_unknown", False))
            # Whatever failed, start the next event on a fresh producer (and transactional id).
            publishers.pop(source, None)
            _close(publisher)
            log.warning(
                "workload: event %s %s: %s", outgoing.event_id, "unconfirmed" if unknown else "failed", exc
            )
            return (INDETERMINATE if unknown else FAILED), str(exc).splitlines()[0]
        return ACKNOWLEDGED, ""


def _close(publisher: Any) -> None:
    try:
        publisher.close()
    except BusError as exc:
        log.warning("workload: closing a publisher: %s", exc)
