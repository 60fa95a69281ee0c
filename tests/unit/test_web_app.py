"""The console's app in process (Starlette's TestClient, no broker): sign-in, sessions, CSRF, headers,
escaping. The same attacks against the real server and broker are in tests/integration/test_web_attacks.py."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bus389.agencies import Agency
from bus389.settings import Settings, WebSettings
from bus389.web import create_app
from bus389.web.store import WebStore
from bus389.web.users import Role, UserDirectory

PASSWORD = "một mật khẩu đủ dài 2026"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    web = WebSettings(
        users_db=tmp_path / "web.sqlite3",
        session_secret_file=tmp_path / "key",
        upload_dir=tmp_path / "uploads",
        max_failed_logins=3,
    )
    with WebStore(web.users_db) as store:
        users = UserDirectory(store)
        users.add("thu.tax", Agency.TAX, (Role.CLERK, Role.ADMIN), PASSWORD)
        users.add("vp.bcd389", Agency.MARKET_SURVEILLANCE, (Role.VIEWER,), PASSWORD)
    return Settings(web=web)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), follow_redirects=False) as test_client:
        yield test_client


def _csrf(client: TestClient, path: str = "/login") -> str:
    found = _CSRF.search(client.get(path).text)
    assert found is not None
    return found.group(1)


def _login(client: TestClient, name: str, password: str = PASSWORD) -> int:
    answer = client.post("/login", data={"username": name, "password": password, "csrf_token": _csrf(client)})
    return answer.status_code


def test_the_session_key_file_is_created_private(client: TestClient, settings: Settings) -> None:
    assert settings.web.session_secret_file.stat().st_mode & 0o777 == 0o600


def test_sign_in_sets_a_strict_httponly_cookie_and_security_headers(client: TestClient) -> None:
    answer = client.post(
        "/login", data={"username": "thu.tax", "password": PASSWORD, "csrf_token": _csrf(client)}
    )
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert PASSWORD.lower() not in cookie
    home = client.get("/")
    assert home.status_code == 200
    assert "Cục Thuế tỉnh" in home.text
    assert "script-src 'self'" in home.headers["content-security-policy"]
    assert home.headers["x-frame-options"] == "DENY"
    assert "<script" not in home.text


def test_sign_in_without_csrf_is_refused(client: TestClient) -> None:
    client.get("/login")
    answer = client.post("/login", data={"username": "thu.tax", "password": PASSWORD})
    assert answer.status_code == 403
    assert "CSRF" in answer.text
    assert client.get("/").status_code == 303  # still not signed in: sent to /login


def test_wrong_passwords_lock_the_account(client: TestClient) -> None:
    assert [_login(client, "thu.tax", "sai-mat-khau-roi") for _ in range(3)] == [401, 401, 401]
    answer = client.post(
        "/login", data={"username": "thu.tax", "password": PASSWORD, "csrf_token": _csrf(client)}
    )
    assert answer.status_code == 401
    assert "tạm khóa" in answer.text


def test_a_page_of_another_agency_or_role_is_refused(client: TestClient) -> None:
    assert _login(client, "vp.bcd389") == 303
    tax = client.get("/tax")
    assert tax.status_code == 403
    assert "dành cho Cục Thuế tỉnh" in tax.text
    assert client.get("/admin").status_code == 403
    assert client.get("/ict/blocklist.rpz").status_code == 403


def test_a_disabled_user_loses_the_open_session(client: TestClient, settings: Settings) -> None:
    assert _login(client, "thu.tax") == 303
    assert client.get("/admin").status_code == 200
    with WebStore(settings.web.users_db) as store:
        UserDirectory(store).set_disabled("thu.tax")
    answer = client.get("/admin")
    assert answer.status_code == 401
    assert "không còn hiệu lực" in answer.text


def test_the_admin_page_shows_the_policy_escaped(client: TestClient) -> None:
    assert _login(client, "thu.tax") == 303
    page = client.get("/admin")
    assert "tax_discrepancy.police" in page.text
    assert "Bộ luật Hình sự" in page.text  # Vietnamese as is, not escaped to entities
    # The rights on the bus: the tax office writes its outbox and reads its inbox, nothing of the police.
    rights = page.text.split('id="rights"', 1)[1].split("</table>", 1)[0]
    assert "<code>bus389.outbox.tax</code>" in rights


def test_what_a_user_typed_comes_back_as_text(client: TestClient) -> None:
    answer = client.post(
        "/login",
        data={"username": "<script>alert(1)</script>", "password": "x", "csrf_token": _csrf(client)},
    )
    assert answer.status_code == 401
    assert "<script>alert(1)</script>" not in answer.text


def test_the_api_without_a_token_is_refused_with_json(client: TestClient) -> None:
    answer = client.post("/api/v1/events/suspect_seller", json={})
    assert answer.status_code == 401
    assert answer.json() == {"error": "missing API token: send 'Authorization: Bearer <token>'"}
    assert answer.headers["www-authenticate"] == "Bearer"
    assert "/api/v1/inbox" in client.get("/api/v1/openapi.json").json()["paths"]


def test_the_preview_gives_the_commands_messages_for_a_bad_csv(
    client: TestClient, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The preview is `bus389 tax publish-alerts --dry-run` on the same file: the same row and column
    messages, word for word (nothing is sent, so no broker is needed)."""
    import html

    from click.testing import CliRunner

    from bus389.cli.main import cli
    from bus389.producers.tax import id_key

    # The alert-id key the preview makes on first use: in this test's folder, not the user's.
    monkeypatch.setattr(id_key, "DEFAULT_KEY_FILE", tmp_path / "state" / "tax-alert-id.key")

    source = (Path(__file__).resolve().parents[2] / "examples" / "tax_undeclared_sellers.csv").read_text(
        encoding="utf-8-sig"
    )
    lines = source.splitlines()
    lines[1] = lines[1].replace("4300812345", "43008X2345", 1)
    lines[2] = lines[2].replace("962.350.000", "chín trăm triệu", 1)
    bad = tmp_path / "bang_ke.csv"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    dry = CliRunner().invoke(cli, ["tax", "publish-alerts", str(bad), "--dry-run"])
    problems = [line for line in dry.output.splitlines() if line.startswith("row ")]
    assert len(problems) >= 2, dry.output

    assert _login(client, "thu.tax") == 303
    uploaded = client.post(
        "/tax/upload",
        data={"csrf_token": _csrf(client, "/tax")},
        files={"file": ("bang_ke.csv", bad.read_bytes(), "text/csv")},
    )
    assert uploaded.status_code == 303
    page = html.unescape(client.get(uploaded.headers["location"]).text)
    for problem in problems:
        assert problem in page
    assert "rejected: 2" in page
    assert 'id="publish"' not in page  # nothing to publish while rows are rejected
