"""The console's users, tokens, rate limits, upload checks, cursors and search: pure parts, no broker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bus389.agencies import Agency
from bus389.errors import InputError
from bus389.web.errors import Refused
from bus389.web.mirror import decode_cursor, encode_cursor
from bus389.web.pages.inbox import matches
from bus389.web.pages.tax import check_upload
from bus389.web.ratelimit import RateLimiter
from bus389.web.store import WebStore
from bus389.web.tokens import Scope, TokenRegistry, parse_scopes
from bus389.web.users import Role, UserDirectory, parse_roles

PASSWORD = "một mật khẩu đủ dài 2026"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[WebStore]:
    with WebStore(tmp_path / "web.sqlite3") as opened:
        yield opened


def test_the_store_file_is_private(store: WebStore) -> None:
    assert store.path.stat().st_mode & 0o777 == 0o600


def test_a_password_is_stored_as_an_argon2id_hash(store: WebStore) -> None:
    UserDirectory(store).add("thu.tax", Agency.TAX, (Role.CLERK,), PASSWORD)
    [row] = store.query("SELECT password_hash FROM users")
    assert row["password_hash"].startswith("$argon2id$")
    assert PASSWORD not in row["password_hash"]


def test_sign_in_right_and_wrong(store: WebStore) -> None:
    users = UserDirectory(store)
    users.add("thu.tax", Agency.TAX, (Role.CLERK,), PASSWORD)
    ok = users.authenticate("thu.tax", PASSWORD)
    assert ok.outcome == "ok"
    assert ok.user is not None
    assert (ok.user.agency, ok.user.roles) == (Agency.TAX, (Role.CLERK,))
    assert users.authenticate("thu.tax", PASSWORD + "x").outcome == "bad_password"
    # An unknown user gets the same answer as a wrong password.
    unknown = users.authenticate("ai.do", PASSWORD)
    assert (unknown.outcome, unknown.message) == ("bad_password", "Sai tên đăng nhập hoặc mật khẩu.")


def test_repeated_failures_lock_the_account_until_the_lockout_ends(store: WebStore) -> None:
    clock = Clock()
    users = UserDirectory(store, max_failed=3, lockout_s=600, clock=clock)
    users.add("thu.tax", Agency.TAX, (Role.CLERK,), PASSWORD)
    outcomes = [users.authenticate("thu.tax", "sai-mat-khau-roi").outcome for _ in range(3)]
    assert outcomes == ["bad_password", "bad_password", "locked"]
    # Locked: even the right password is refused.
    assert users.authenticate("thu.tax", PASSWORD).outcome == "locked"
    clock.now += 601
    assert users.authenticate("thu.tax", PASSWORD).outcome == "ok"


def test_a_success_resets_the_count_and_a_disabled_user_is_refused(store: WebStore) -> None:
    users = UserDirectory(store, max_failed=2)
    users.add("thu.tax", Agency.TAX, (Role.CLERK,), PASSWORD)
    assert users.authenticate("thu.tax", "sai-mat-khau-roi").outcome == "bad_password"
    assert users.authenticate("thu.tax", PASSWORD).outcome == "ok"
    assert users.authenticate("thu.tax", "sai-mat-khau-roi").outcome == "bad_password"
    users.set_disabled("thu.tax")
    assert users.authenticate("thu.tax", PASSWORD).outcome == "disabled"


def test_bad_users_roles_and_passwords_are_named(store: WebStore) -> None:
    users = UserDirectory(store)
    with pytest.raises(InputError, match="too short"):
        users.add("thu.tax", Agency.TAX, (Role.CLERK,), "ngan")
    with pytest.raises(InputError, match="user name"):
        users.add("Thu Tax", Agency.TAX, (Role.CLERK,), PASSWORD)
    users.add("thu.tax", Agency.TAX, (Role.CLERK,), PASSWORD)
    with pytest.raises(InputError, match="already exists"):
        users.add("thu.tax", Agency.TAX, (Role.CLERK,), PASSWORD)
    with pytest.raises(InputError, match="unknown role 'boss'"):
        parse_roles("clerk,boss")
    assert parse_roles("viewer, clerk,viewer") == (Role.VIEWER, Role.CLERK)


def test_tokens_are_stored_hashed_and_revocable(store: WebStore) -> None:
    registry = TokenRegistry(store)
    issued, text = registry.issue(Agency.POLICE, "ho-so", (Scope.PUBLISH,))
    [row] = store.query("SELECT * FROM tokens")
    secret = text.rsplit("_", 1)[1]
    assert secret not in row["secret_hash"]
    found = registry.verify(text)
    assert found is not None
    assert (found.agency, found.scopes, found.revoked) == (Agency.POLICE, (Scope.PUBLISH,), False)
    assert registry.verify(text[:-1] + ("A" if text[-1] != "A" else "B")) is None
    assert registry.verify("b389_nothing") is None
    registry.revoke(issued.token_id)
    revoked = registry.verify(text)
    assert revoked is not None
    assert revoked.revoked
    with pytest.raises(InputError, match="no active token"):
        registry.revoke(issued.token_id)
    with pytest.raises(InputError, match="unknown scope"):
        parse_scopes("publish,admin")


def test_the_rate_limit_allows_a_burst_then_says_how_long_to_wait() -> None:
    clock = Clock()
    limiter = RateLimiter(0.5, 2, clock=clock)
    assert [limiter.take("police") for _ in range(3)] == [0, 0, 2]
    assert limiter.take("customs") == 0  # each agency its own bucket
    clock.now += 2
    assert limiter.take("police") == 0


@pytest.mark.parametrize(
    ("name", "head", "message"),
    [
        ("bang-ke.exe", b"MZ", "chỉ nhận bảng tính"),
        ("bang-ke.xls", b"\xd0\xcf\x11\xe0", "chỉ nhận bảng tính"),
        ("bang-ke.xlsx", b"<html>", "không phải bảng tính .xlsx"),
        ("bang-ke.csv", b"a,b\x00c", "không phải tệp CSV"),
    ],
)
def test_an_upload_of_the_wrong_type_is_refused(name: str, head: bytes, message: str) -> None:
    with pytest.raises(Refused, match=message) as caught:
        check_upload(name, head)
    assert caught.value.status == 415


def test_an_upload_name_is_made_safe() -> None:
    assert check_upload("../../etc/bảng kê;rm.csv", b"a,b") == "bảng_kê_rm.csv"
    assert check_upload("C:\\Users\\thu\\BANG.XLSX", b"PK\x03\x04") == "BANG.xlsx"


def test_a_cursor_round_trips_and_a_forged_one_is_refused() -> None:
    cursor = {0: 12, 2: 7}
    assert decode_cursor(encode_cursor(cursor)) == cursor
    assert decode_cursor(None) == {}
    with pytest.raises(InputError, match="cursor"):
        decode_cursor("not-a-cursor!")


def test_the_inbox_search_looks_at_case_tax_code_domain_and_seller() -> None:
    record = {
        "meta": {"case_ref": "VV-2021-017"},
        "seller": {"name": "Cửa hàng Thu Trang", "tax_code": "4300123456"},
        "domains": ["myphamxachtay-qn.vn"],
        "summary": "không tìm trong phần này",
    }
    for query in ("vv-2021", "4300123456", "xachtay", "THU TRANG", ""):
        assert matches(record, query), query
    assert not matches(record, "không tìm")
