"""The HTTP API against the real `bus389 serve web`, `bus389 route` and a real broker: a batch is all or
nothing, an Idempotency-Key publishes once, the inbox pages with a cursor and long-polls."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _web_support import console_env, read_topic, router_env, running_console, running_process

from bus389.agencies import Agency
from bus389.events import build_event
from bus389.routing.decision import decide
from bus389.routing.policy import load_policy
from bus389.settings import Settings

pytestmark = pytest.mark.integration


def _seller(name: str) -> dict[str, Any]:
    return {
        "meta": {"sensitivity": "AMBER", "case_ref": "VV-2021-017"},
        "seller": {"name": name, "tax_code": "4300123456", "phone": "0905123456"},
        "accounts": [{"platform": "SHOPEE", "account": "thutrang.cosmetics"}],
        "goods": "Mỹ phẩm nhập lậu",
        "violation_kinds": ["SMUGGLING"],
        "summary": "Bán mỹ phẩm không rõ nguồn gốc",
    }


def test_publish_once_all_or_nothing_and_read_the_inbox(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings()
    policy = load_policy(settings.router.policy_path)
    decision = decide(
        Agency.POLICE,
        build_event("suspect_seller", Agency.POLICE, _seller("x")).model_dump(mode="json"),
        policy,
        lambda _id: None,
    )
    recipient = decision.deliveries[0].recipient
    env = console_env(settings, tmp_path)
    with running_console(env, tmp_path, []) as console:
        _, police = console.add_token("police", "publish")
        _, reader = console.add_token(recipient.value, "read")
        publish = {"Authorization": f"Bearer {police}", "Idempotency-Key": "lo-2021-017-a"}
        batch = [_seller("Cửa hàng Thu Trang"), _seller("Cửa hàng Mỹ phẩm Hà")]
        with console.client() as api:
            first = api.post("/api/v1/events/suspect_seller", json=batch, headers=publish)
            assert first.status_code == 201, first.text
            ids = first.json()["event_ids"]
            assert len(ids) == 2
            retried = api.post("/api/v1/events/suspect_seller", json=batch, headers=publish)
            assert (retried.status_code, retried.json()) == (201, first.json())
            assert retried.headers["Idempotent-Replayed"] == "true"
            reused = api.post("/api/v1/events/suspect_seller", json=batch[:1], headers=publish)
            assert reused.status_code == 422
            assert "Idempotency-Key already used" in reused.json()["error"]
            bad = [_seller("Cửa hàng A"), {**_seller("Cửa hàng B"), "seller": {"name": ""}}]
            refused = api.post(
                "/api/v1/events/suspect_seller", json=bad, headers={"Authorization": f"Bearer {police}"}
            )
            assert refused.status_code == 422
            # Named as `bus389 publish` names a record of a file: the body's line, the field, the rule.
            assert refused.json()["problems"] == ["request body:1: seller.name: must not be empty"]
            no_scope = api.get("/api/v1/inbox", headers={"Authorization": f"Bearer {police}"})
            assert no_scope.status_code == 403
            assert sorted(
                str(e.record["meta"]["event_id"])
                for e in read_topic(settings, settings.topics.outbox("police"))
            ) == sorted(ids)

            openapi = api.get("/api/v1/openapi.json").json()
            assert {"/api/v1/events/{event_type}", "/api/v1/inbox"} <= set(openapi["paths"])

            with running_process(
                ["route", "--metrics-port", "0"], {**env, **router_env(settings.topic_prefix)}
            ):
                got: list[dict[str, Any]] = []
                cursor = ""
                for _ in range(6):
                    page = api.get(
                        "/api/v1/inbox",
                        params={"cursor": cursor, "wait": 20} if cursor else {"wait": 20},
                        headers={"Authorization": f"Bearer {reader}"},
                    )
                    assert page.status_code == 200, page.text
                    got.extend(page.json()["events"])
                    cursor = page.json()["next_cursor"]
                    if len(got) >= 2:
                        break
        assert sorted(e["event"]["meta"]["event_id"] for e in got) == sorted(ids)
        delivery = decision.delivery_to(recipient)
        assert delivery is not None
        assert {e["rule"] for e in got} == {delivery.rule_id}
        assert all(e["redacted"] == list(delivery.redacted) for e in got)
        # Nothing after the cursor: a long poll that ends empty, with the same cursor.
        with console.client() as api:
            empty = api.get(
                "/api/v1/inbox",
                params={"cursor": cursor, "wait": 1},
                headers={"Authorization": f"Bearer {reader}"},
            )
        assert empty.json() == {"events": [], "next_cursor": cursor}
