"""Attacks on the web console and its API, each against the real `bus389 serve web` on a real port with
a real broker: each is refused with a clear message and changes nothing."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from _router_support import domain_block_request
from _web_support import Console, console_env, read_topic, running_console, wait_for

from bus389.agencies import Agency
from bus389.consumers.ict.decisions import BlockRequest, Decider
from bus389.consumers.ict.store import RequestState, open_store
from bus389.settings import IctSettings, Settings, StoreSettings

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKBOOK = REPO_ROOT / "examples" / "tax_undeclared_sellers.xlsx"
USERS = [
    ("thu.tax", "tax", "clerk"),
    ("xem.tax", "tax", "viewer"),
    ("op.ict", "ict", "operator,viewer"),
    ("xem.ict", "ict", "viewer"),
    ("op.police", "police", "operator,clerk"),
]


@pytest.fixture
def web_settings(make_settings: Callable[..., Settings], tmp_path: Path) -> Settings:
    return make_settings(
        store=StoreSettings(
            ict_url=f"sqlite:///{tmp_path / 'ict.sqlite3'}",
            standing_office_url=f"sqlite:///{tmp_path / 'so.sqlite3'}",
        ),
        ict=IctSettings(output_dir=tmp_path / "blocklist", rpz_zone="rpz.test"),
    )


@pytest.fixture
def console(web_settings: Settings, tmp_path: Path) -> Iterator[Console]:
    env = console_env(web_settings, tmp_path, BUS389_WEB__API_RATE_PER_S="0.2", BUS389_WEB__API_BURST="3")
    with running_console(env, tmp_path, USERS) as running:
        yield running


def _outbox(settings: Settings, agency: str) -> list[str]:
    return [str(e.record["meta"]["event_id"]) for e in read_topic(settings, settings.topics.outbox(agency))]


def _upload(client: httpx.Client, csrf: str, name: str, data: bytes) -> httpx.Response:
    return client.post("/tax/upload", data={"csrf_token": csrf}, files={"file": (name, data)})


def _pending_request(settings: Settings) -> str:
    """A domain-block request pending in the ICT store, taken in as `bus389 serve ict` does."""
    event = domain_block_request(Agency.MARKET_SURVEILLANCE, domains=["hang-gia-tan-cong.example.vn"])
    with open_store(settings.store.ict_url) as store:
        Decider(store, settings).ingest(BlockRequest.from_record(event.model_dump()), origin="test")
    return str(event.meta.event_id)


def _state(settings: Settings, request_id: str) -> str:
    with open_store(settings.store.ict_url) as store:
        [row] = store.requests_with_id(request_id) or [None]
    assert row is not None
    return row.state


def test_an_upload_of_the_wrong_type_or_over_the_limit_is_refused(
    console: Console, web_settings: Settings
) -> None:
    clerk = console.login("thu.tax")
    csrf = console.csrf(clerk, "/tax")
    exe = _upload(clerk, csrf, "bang-ke.exe", b"MZ\x90\x00" + b"\x00" * 100)
    assert exe.status_code == 415
    assert "chỉ nhận bảng tính .xlsx hoặc .csv" in exe.text
    fake = _upload(clerk, csrf, "bang-ke.xlsx", b"<html>not a workbook</html>")
    assert fake.status_code == 415
    assert "không phải bảng tính .xlsx hợp lệ" in fake.text
    big = _upload(clerk, csrf, "bang-ke.csv", b"a" * 5_000_001)
    assert big.status_code == 413
    assert "Tệp quá lớn" in big.text
    assert "Chưa có tệp nào." in clerk.get("/tax").text
    assert (
        not list((console.tmp_path / "uploads").glob("*"))
        if (console.tmp_path / "uploads").exists()
        else True
    )
    assert _outbox(web_settings, "tax") == []


def test_a_form_without_or_with_a_wrong_csrf_token_is_refused(
    console: Console, web_settings: Settings
) -> None:
    clerk = console.login("thu.tax")
    csrf = console.csrf(clerk, "/tax")
    uploaded = _upload(clerk, csrf, "bang-ke.xlsx", WORKBOOK.read_bytes())
    assert uploaded.status_code == 303
    publish = uploaded.headers["location"] + "/publish"
    missing = clerk.post(publish, data={})
    assert missing.status_code == 403
    assert "Thiếu mã chống giả mạo (CSRF)" in missing.text
    wrong = clerk.post(publish, data={"csrf_token": "x" * 43})
    assert wrong.status_code == 403
    assert "Mã chống giả mạo (CSRF) không đúng" in wrong.text
    # A token of another session is just as wrong.
    other = console.login("thu.tax")
    stolen = clerk.post(publish, data={"csrf_token": console.csrf(other, "/tax")})
    assert stolen.status_code == 403
    assert _outbox(web_settings, "tax") == []
    # The same form with the session's own token goes through: the refusals were about the token.
    done = clerk.post(publish, data={"csrf_token": csrf})
    assert done.status_code == 200, done.text
    assert len(_outbox(web_settings, "tax")) == 11
    # Each action is one JSON log line naming the user; the refusals too; never a password.
    logged = '"action": "tax.publish"'
    wait_for("the action log", lambda: any(logged in line for line in console.log_lines), 10)
    published = [line for line in console.log_lines if logged in line]
    assert '"actor": "thu.tax"' in published[0]
    assert any('"reason": "csrf"' in line for line in console.log_lines)
    assert not any(console.passwords["thu.tax"] in line for line in console.log_lines)


def test_an_expired_session_is_refused(web_settings: Settings, tmp_path: Path) -> None:
    env = console_env(web_settings, tmp_path, BUS389_WEB__SESSION_TTL_S="2")
    with running_console(env, tmp_path, [("thu.tax", "tax", "clerk")]) as console:
        clerk = console.login("thu.tax")
        csrf = console.csrf(clerk, "/tax")
        uploaded = _upload(clerk, csrf, "bang-ke.xlsx", WORKBOOK.read_bytes())
        assert uploaded.status_code == 303
        expiry = time.monotonic() + 2.5  # the TTL, plus the second of the cookie's timestamp
        wait_for("the session TTL to pass", lambda: time.monotonic() >= expiry, 10)
        late = clerk.post(uploaded.headers["location"] + "/publish", data={"csrf_token": csrf})
        assert late.status_code == 401
        assert "Phiên làm việc đã hết hạn" in late.text or "Vui lòng đăng nhập" in late.text
        assert clerk.get("/tax").status_code == 401
    assert _outbox(web_settings, "tax") == []


def test_another_agencys_ids_in_urls_and_forms_are_refused(console: Console, web_settings: Settings) -> None:
    clerk = console.login("thu.tax")
    uploaded = _upload(clerk, console.csrf(clerk, "/tax"), "bang-ke.xlsx", WORKBOOK.read_bytes())
    upload_url = uploaded.headers["location"]
    request_id = _pending_request(web_settings)

    police = console.login("op.police")
    csrf = console.csrf(police, "/inbox")
    # The tax office's upload, from the police: refused, not published.
    assert police.get(upload_url).status_code == 403
    refused = police.post(upload_url + "/publish", data={"csrf_token": csrf})
    assert refused.status_code == 403
    assert "dành cho Cục Thuế tỉnh" in refused.text
    # ICT's request, decided by a police operator: refused, still pending.
    approve = police.post(f"/ict/requests/{request_id}/approve", data={"csrf_token": csrf, "note": "x"})
    assert approve.status_code == 403
    assert _state(web_settings, request_id) == RequestState.PENDING
    # An event id from another agency's inbox: no such event in the police inbox.
    foreign = police.get(f"/inbox/{request_id}")
    assert foreign.status_code == 404
    assert "trong hộp thư của cơ quan bạn" in foreign.text
    # An id the ICT operator did not see (a made-up one) in the approve form.
    operator = console.login("op.ict")
    made_up = operator.post(
        "/ict/requests/00000000-0000-4000-8000-000000000000/approve",
        data={"csrf_token": console.csrf(operator, "/ict")},
    )
    assert made_up.status_code == 404
    assert _outbox(web_settings, "tax") == []
    assert _state(web_settings, request_id) == RequestState.PENDING


def test_a_viewer_cannot_take_an_operators_or_clerks_action(console: Console, web_settings: Settings) -> None:
    request_id = _pending_request(web_settings)
    viewer = console.login("xem.ict")
    page = viewer.get("/ict")
    assert request_id in page.text
    assert "Duyệt chặn" not in page.text  # no button to press
    answer = viewer.post(
        f"/ict/requests/{request_id}/approve", data={"csrf_token": console.csrf(viewer, "/ict"), "note": "x"}
    )
    assert answer.status_code == 403
    assert "không có quyền cán bộ vận hành" in answer.text
    assert _state(web_settings, request_id) == RequestState.PENDING
    tax_viewer = console.login("xem.tax")
    upload = _upload(tax_viewer, console.csrf(tax_viewer, "/tax"), "bang-ke.xlsx", WORKBOOK.read_bytes())
    assert upload.status_code == 403
    assert "không có quyền cán bộ nghiệp vụ" in upload.text
    assert "Chưa có tệp nào." in tax_viewer.get("/tax").text


def _suspect_seller() -> dict[str, object]:
    return {
        "meta": {"sensitivity": "AMBER"},
        "seller": {"name": "Cửa hàng Thu Trang", "tax_code": "4300123456"},
        "accounts": [{"platform": "SHOPEE", "account": "thutrang.cosmetics"}],
        "goods": "Mỹ phẩm nhập lậu",
        "violation_kinds": ["SMUGGLING"],
        "summary": "Bán mỹ phẩm không rõ nguồn gốc",
    }


def test_a_revoked_token_is_refused(console: Console, web_settings: Settings) -> None:
    token_id, token = console.add_token("police")
    headers = {"Authorization": f"Bearer {token}"}
    with console.client() as api:
        first = api.post("/api/v1/events/suspect_seller", json=_suspect_seller(), headers=headers)
        assert first.status_code == 201, first.text
        revoked = console.cli("web", "token", "revoke", token_id)
        assert revoked.returncode == 0, revoked.stderr
        again = api.post("/api/v1/events/suspect_seller", json=_suspect_seller(), headers=headers)
        assert again.status_code == 401
        assert again.json() == {"error": f"API token {token_id} was revoked"}
        forged = api.post(
            "/api/v1/events/suspect_seller",
            json=_suspect_seller(),
            headers={"Authorization": "Bearer b389_x_y"},
        )
        assert forged.status_code == 401
    assert _outbox(web_settings, "police") == first.json()["event_ids"]


def test_a_flood_past_the_rate_limit_gets_429_and_retry_after(
    console: Console, web_settings: Settings
) -> None:
    _, token = console.add_token("police")
    _, customs = console.add_token("customs")
    headers = {"Authorization": f"Bearer {token}"}
    answers = []
    with console.client() as api:
        for _ in range(8):
            answers.append(api.post("/api/v1/events/suspect_seller", json=_suspect_seller(), headers=headers))
        # Another agency's budget is its own.
        other = api.get("/api/v1/inbox", headers={"Authorization": f"Bearer {customs}"})
    statuses = [a.status_code for a in answers]
    assert statuses[:3] == [201, 201, 201]
    assert set(statuses[3:]) == {429}, statuses
    limited = answers[-1]
    assert int(limited.headers["Retry-After"]) >= 1
    assert "rate limit of police exceeded" in limited.json()["error"]
    assert other.status_code == 200
    published = [i for a in answers if a.status_code == 201 for i in a.json()["event_ids"]]
    assert sorted(_outbox(web_settings, "police")) == sorted(published)
