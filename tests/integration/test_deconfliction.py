"""Deconfliction (plan I.2) and directives followed up (II.9): real broker, router and standing office.

A claim by the police and a second claim by customs on the same seller (the same tax code) go through the
router; the standing office's service, which receives every claim, publishes at once a DECONFLICT
directive through its own outbox; the router delivers it to both claimants (and back to the standing
office's store). The police answer it (meta.in_reply_to): the standing office's view shows the police
answered and customs not yet, and the directive overdue once its due date passed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from _router_support import RouterThread, publish, read_topic, router_settings, wait_until

from bus389 import metrics
from bus389.agencies import Agency
from bus389.codec import decode_value
from bus389.consumers.standing_office.directives import statuses_in
from bus389.consumers.standing_office.service import run_standing_office
from bus389.consumers.standing_office.store import StandingOfficeStore
from bus389.events import build_event
from bus389.runtime.stop import StopFlag
from bus389.settings import ReportSettings, Settings, StoreSettings

pytestmark = pytest.mark.integration

SELLER = {"name": "Cửa hàng Mỹ phẩm Thu Trang", "tax_code": "4300123456"}


def _claim(source: Agency, account: str, **fields: Any) -> Any:
    data = {
        "meta": {"sensitivity": "AMBER", "case_ref": f"QNG-{source.value}"},
        "seller": dict(SELLER),
        "accounts": [{"platform": "SHOPEE", "account": account}],
        "basis": "Kế hoạch 141/KH-UBND",
        **fields,
    }
    return build_event("case_claim", source, data)


def _directives_in(settings: Settings, agency: Agency) -> list[dict[str, Any]]:
    found = []
    for record in read_topic(settings, settings.topics.inbox(agency)):
        data = dict(decode_value(record.value).record)
        if data["meta"]["event_type"] == "directive":
            found.append(data)
    return found


def _conflicts_counted() -> float:
    return sum(
        s.value
        for family in metrics.REGISTRY.collect()
        if family.name == "bus389_claim_conflicts"
        for s in family.samples
        if s.name.endswith("_total")
    )


def test_a_second_claim_is_flagged_to_both_claimants_and_the_answer_is_followed_up(
    make_settings: Callable[..., Settings], unique_group: Callable[..., str], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'so.sqlite3'}"
    settings = router_settings(
        lambda **kw: make_settings(
            store=StoreSettings(standing_office_url=url),
            report=ReportSettings(group_id=unique_group("market_surveillance", "store")),
            **kw,
        ),
        unique_group,
    )
    before = _conflicts_counted()
    stop = StopFlag()
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            run_standing_office(settings, stop=stop)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    service = threading.Thread(target=serve, name="standing-office", daemon=True)
    with RouterThread(settings):
        service.start()
        try:
            first = _claim(Agency.POLICE, "thutrang.cosmetics")
            publish(settings, [first])
            with StandingOfficeStore.open(url) as store:
                wait_until(lambda: store.get(first.event_id) is not None, 90, "the first claim stored")
            assert _directives_in(settings, Agency.POLICE) == []  # one claim alone is no conflict

            second = _claim(Agency.CUSTOMS, "thutrang.official", goods_imported=True)
            publish(settings, [second])
            wait_until(
                lambda: _directives_in(settings, Agency.POLICE) and _directives_in(settings, Agency.CUSTOMS),
                90,
                "the DECONFLICT directive in both claimants' inboxes",
            )
            (to_police,) = _directives_in(settings, Agency.POLICE)
            (to_customs,) = _directives_in(settings, Agency.CUSTOMS)
            assert to_police == to_customs
            assert to_police["kind"] == "DECONFLICT" and to_police["plan_section"] == "I.2"
            assert to_police["meta"]["source"] == "market_surveillance"
            assert sorted(to_police["meta"]["recipients"]) == ["customs", "police"]
            assert sorted(to_police["about_event_ids"]) == sorted([first.event_id, second.event_id])
            assert _conflicts_counted() - before == 1
            assert _directives_in(settings, Agency.TAX) == []  # tax received both claims, not the flag

            directive_id = str(to_police["meta"]["event_id"])
            answer = build_event(
                "periodic_report",
                Agency.POLICE,
                {
                    "meta": {"sensitivity": "AMBER", "in_reply_to": directive_id},
                    "report_kind": "AD_HOC",
                    "period": "2021-H1",
                    "title": "Công an tỉnh chủ trì",
                    "body": "Công an tỉnh chủ trì xác minh; Hải quan phối hợp.",
                },
            )
            publish(settings, [answer])
            with StandingOfficeStore.open(url) as store:
                wait_until(lambda: store.get(answer.event_id) is not None, 90, "the answer stored")
                wait_until(lambda: store.get(directive_id) is not None, 90, "the directive stored")
                (status,) = statuses_in(store, now=second.meta.published_at)
                assert status.answered_by == ("police",) and status.waiting_for == ("customs",)
                assert not status.overdue
                assert status.due_at is not None
                (late,) = statuses_in(store, now=status.due_at + timedelta(minutes=1))
                assert late.overdue
        finally:
            stop.set()
            service.join(60)
    assert not service.is_alive() and not errors, errors
