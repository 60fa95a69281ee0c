"""Rows → tax_discrepancy alerts: platforms, periods, tax owed, keyed deterministic ids and their key,
bad rows named by row and column, the rejected-rows file, and the CLI without a broker."""

from __future__ import annotations

import csv
import hashlib
import hmac
import os
import stat
import uuid
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bus389.cli.main import cli
from bus389.errors import ConfigError
from bus389.events._rules import check_uuid
from bus389.producers.tax import id_key
from bus389.producers.tax.alerts import (
    Alert,
    Rejected,
    Skipped,
    TaxRates,
    alert_event_id,
    estimated_tax,
    normalize_period,
    parse_account,
    parse_platform,
    row_to_alert,
)
from bus389.producers.tax.id_key import AlertIdKey, load_alert_id_key
from bus389.producers.tax.publish import REASON_HEADER, prepare_alerts, publish_alerts, rejected_path
from bus389.producers.tax.spreadsheet import CellError, read_table
from bus389.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The checkout this test runs from (examples, deploy files)."""

EXAMPLES = REPO_ROOT / "examples"
NO_BROKER = {"BUS389_BOOTSTRAP": "127.0.0.1:1", "BUS389_TOPIC_PREFIX": "unit_no_broker"}
HEADERS = [
    "STT",
    "Mã số thuế",
    "Tên người bán",
    "Nền tảng",
    "Tài khoản/URL",
    "Doanh thu ước tính",
    "Doanh thu đã kê khai",
    "Kỳ tính thuế",
    "Số điện thoại",
    "Ghi chú",
]
GOOD = ["1", "4300812345", "Nguyễn Thị Hồng Nhung", "Shopee", "https://shopee.vn/banhtrang", "1.845.600.000",
        "420.000.000", "6 tháng đầu năm 2021", "0905 123 456", "Bánh tráng"]  # fmt: skip


KEY = b"unit-test alert-id key, 32+ chars long"
ID_KEY = AlertIdKey(KEY)
PUBLIC_NAMESPACE = uuid.UUID("5b6f0c1e-3d38-5c1a-9a57-38902021a389")
"""The namespace of the ids before they were keyed: public, so anyone could work them out."""


@pytest.fixture(autouse=True)
def default_key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The default key file of this test: in its own folder, never the user's state directory."""
    path = tmp_path / "state" / "tax-alert-id.key"
    monkeypatch.setattr(id_key, "DEFAULT_KEY_FILE", path)
    yield path


def _csv(tmp_path: Path, rows: list[list[str]], headers: list[str] = HEADERS, name: str = "ds.csv") -> Path:
    path = tmp_path / name
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(headers)
        writer.writerows(rows)
    return path


def _with(**changes: str) -> list[str]:
    row = list(GOOD)
    for header, value in changes.items():
        row[HEADERS.index(header.replace("_", " "))] = value
    return row


# --- platforms ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "platform"),
    [
        ("Shopee", "SHOPEE"),
        ("SHOPEE", "SHOPEE"),
        ("Shopee Mall", "SHOPEE"),
        ("Lazada", "LAZADA"),
        ("Tiki", "TIKI"),
        ("Sendo", "SENDO"),
        ("TikTok Shop", "TIKTOK_SHOP"),
        ("Tiktok", "TIKTOK_SHOP"),
        ("Facebook", "FACEBOOK"),
        ("FB", "FACEBOOK"),
        ("Zalo", "ZALO"),
        ("YouTube", "YOUTUBE"),
        ("Website riêng", "WEBSITE"),
        ("website rieng", "WEBSITE"),
        ("Trang web", "WEBSITE"),
        ("Khác", "OTHER"),
        ("Sàn TMĐT Lazada", "LAZADA"),
        ("https://shopee.vn/abc", "SHOPEE"),
        ("www.tiktok.com/@abc", "TIKTOK_SHOP"),
    ],
)
def test_platform_names(cell: str, platform: str) -> None:
    assert parse_platform(cell) == platform


@pytest.mark.parametrize("cell", ["Amazon", "Shopee và Lazada", "abc"])
def test_unknown_platform_lists_the_accepted_names(cell: str) -> None:
    with pytest.raises(CellError, match="unknown platform .*Website riêng, Khác"):
        parse_platform(cell)


def test_accounts_and_links() -> None:
    assert parse_account("@tranduc").account == "@tranduc"
    assert parse_account("@tranduc").url is None
    ref = parse_account("https://www.lazada.vn/shop/phukien/")
    assert (ref.account, ref.url) == ("phukien", "https://www.lazada.vn/shop/phukien/")
    assert parse_account("https://facebook.com/profile.php?id=1000123").account == (
        "facebook.com/profile.php?id=1000123"
    )
    assert parse_account("https://myphamkhanh.vn").account == "myphamkhanh.vn"


# --- periods -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "period"),
    [
        ("6 tháng đầu năm 2021", "2021-H1"),
        ("6 THÁNG CUỐI NĂM 2021", "2021-H2"),
        ("Sáu tháng đầu năm 2022", "2022-H1"),
        ("2021-H1", "2021-H1"),
        ("2021h2", "2021-H2"),
        ("H1/2021", "2021-H1"),
        ("Quý 3/2021", "2021-Q3"),
        ("Quý III/2021", "2021-Q3"),
        ("quý IV năm 2021", "2021-Q4"),
        ("Q1-2022", "2022-Q1"),
        ("2021-Q3", "2021-Q3"),
        ("07/2021", "2021-07"),
        ("7/2021", "2021-07"),
        ("Tháng 12/2021", "2021-12"),
        ("tháng 07 năm 2021", "2021-07"),
        ("2021-07", "2021-07"),
        ("2021", "2021"),
        ("Năm 2021", "2021"),
        (2021, "2021"),
        (2021.0, "2021"),
        (datetime(2021, 7, 1), "2021-07"),
        (date(2021, 8, 15), "2021-08"),
        ("2021-08-01", "2021-08"),  # a date cell written out to the rejected-rows file
        ("15/08/2021", "2021-08"),
    ],
)
def test_periods(cell: object, period: str) -> None:
    assert normalize_period(cell) == period  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "cell", ["13/2021", "Quý 5/2021", "đầu năm", "21", "2021-H3", "01/13/2021", None, " "]
)
def test_bad_periods(cell: object) -> None:
    with pytest.raises(CellError):
        normalize_period(cell)  # type: ignore[arg-type]


# --- tax ---------------------------------------------------------------------------------------------


def test_tax_is_vat_1_percent_plus_pit_half_percent() -> None:
    assert estimated_tax(1_000_000_000) == 15_000_000
    assert estimated_tax(1_425_600_000) == 21_384_000
    # each tax rounded half up on its own: VAT 100 → 1, PIT 50 → 0.5 → 1
    assert estimated_tax(100) == 2
    assert estimated_tax(149) == 1 + 1  # 1.49 → 1, 0.745 → 1
    assert estimated_tax(99) == 1 + 0  # 0.99 → 1, 0.495 → 0
    assert estimated_tax(0) == 0


def test_tax_rates_are_settings() -> None:
    services = TaxRates(vat_bp=500, pit_bp=200)  # services: 5 % + 2 %
    assert estimated_tax(1_000_000, services) == 70_000
    settings = Settings(tax={"vat_rate_bp": 500, "pit_rate_bp": 200})
    assert (settings.tax.vat_rate_bp, settings.tax.pit_rate_bp) == (500, 200)


def test_negative_undeclared_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        estimated_tax(-1)


# --- ids ---------------------------------------------------------------------------------------------


def test_event_id_is_keyed_and_depends_on_seller_platform_period() -> None:
    event_id = alert_event_id(KEY, "4300812345", "banhtrang", "SHOPEE", "2021-H1")
    digest = bytearray(hmac.new(KEY, b"tax_discrepancy|4300812345|SHOPEE|2021-H1", hashlib.sha256).digest())
    digest[6], digest[8] = (digest[6] & 0x0F) | 0x80, (digest[8] & 0x3F) | 0x80
    assert event_id == str(uuid.UUID(bytes=bytes(digest[:16])))
    assert event_id == "a1efe12b-fd70-8b70-afe8-ab3f5a87aa0e"  # pinned: a change re-publishes every file
    assert uuid.UUID(event_id).version == 8
    assert check_uuid(event_id) == event_id  # the contract's uuid, unchanged
    assert alert_event_id(KEY, "4300812345", "another shop", "SHOPEE", "2021-H1") == event_id
    assert alert_event_id(KEY, "4300812345", "banhtrang", "LAZADA", "2021-H1") != event_id
    assert alert_event_id(KEY, "4300812345", "banhtrang", "SHOPEE", "2021-H2") != event_id


def test_without_the_key_the_id_cannot_be_worked_out() -> None:
    event_id = alert_event_id(KEY, "4300812345", "banhtrang", "SHOPEE", "2021-H1")
    public = str(uuid.uuid5(PUBLIC_NAMESPACE, "tax_discrepancy|4300812345|SHOPEE|2021-H1"))
    assert event_id != public
    guess = b"another agency's guess at the key"
    assert alert_event_id(guess, "4300812345", "banhtrang", "SHOPEE", "2021-H1") != event_id
    with pytest.raises(ValueError, match="empty"):
        alert_event_id(b"", "4300812345", "banhtrang", "SHOPEE", "2021-H1")


def test_without_tax_code_the_account_is_the_identity() -> None:
    one = alert_event_id(KEY, None, "HaiLocMoDuc", "FACEBOOK", "2021-Q3")
    assert one == alert_event_id(KEY, "", "hailocmoduc", "FACEBOOK", "2021-Q3")
    assert one != alert_event_id(KEY, None, "other", "FACEBOOK", "2021-Q3")


def test_the_same_file_gives_the_same_ids_every_run(default_key_file: Path) -> None:
    settings = Settings()
    path = EXAMPLES / "tax_undeclared_sellers.xlsx"
    key = load_alert_id_key(settings.tax)
    first = [r.event_id for r in prepare_alerts(settings, path, id_key=key)[1]]
    second = [r.event_id for r in prepare_alerts(settings, path, id_key=load_alert_id_key(settings.tax))[1]]
    assert first == second
    assert len(set(first)) == len(first) == 11
    csv_ids = prepare_alerts(settings, EXAMPLES / "tax_undeclared_sellers.csv", id_key=key)[1]
    assert first == [r.event_id for r in csv_ids]
    other_key = AlertIdKey(b"another office's key, 32+ characters")
    assert not set(first) & {r.event_id for r in prepare_alerts(settings, path, id_key=other_key)[1]}


# --- the key -----------------------------------------------------------------------------------------


def test_the_default_key_is_created_once_0600_and_then_read(default_key_file: Path) -> None:
    first = load_alert_id_key(Settings().tax)
    assert first.created and first.path == default_key_file
    assert stat.S_IMODE(default_key_file.stat().st_mode) == 0o600
    assert len(first.secret) >= 32
    assert first.secret.decode() not in repr(first)
    again = load_alert_id_key(Settings().tax)
    assert not again.created
    assert again.secret == first.secret


def test_a_named_key_file_must_exist_and_is_never_created(tmp_path: Path) -> None:
    named = tmp_path / "etc" / "tax-alert-id.key"
    with pytest.raises(ConfigError, match="does not exist: restore the tax office's key"):
        load_alert_id_key(Settings(tax={"alert_id_key_file": named}).tax)
    assert not named.exists()


def test_a_key_file_others_can_read_is_refused_without_showing_the_key(tmp_path: Path) -> None:
    named = tmp_path / "tax-alert-id.key"
    secret = "s3cret-" + "x" * 40
    named.write_text(secret + "\n", encoding="utf-8")
    os.chmod(named, 0o644)
    with pytest.raises(ConfigError, match="readable by others") as caught:
        load_alert_id_key(Settings(tax={"alert_id_key_file": named}).tax)
    assert secret not in str(caught.value)
    os.chmod(named, 0o600)
    assert load_alert_id_key(Settings(tax={"alert_id_key_file": named}).tax).secret == secret.encode()
    named.write_text("short\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="too short"):
        load_alert_id_key(Settings(tax={"alert_id_key_file": named}).tax)


# --- rows --------------------------------------------------------------------------------------------


def test_a_good_row_becomes_an_alert(tmp_path: Path) -> None:
    table = read_table(_csv(tmp_path, [GOOD]))
    result = row_to_alert(table, table.rows[0], id_key=KEY)
    assert isinstance(result, Alert)
    assert result.fields["undeclared_revenue_vnd"] == 1_425_600_000
    assert result.fields["estimated_tax_owed_vnd"] == 21_384_000
    assert result.fields["accounts"] == [
        {"platform": "SHOPEE", "account": "banhtrang", "url": "https://shopee.vn/banhtrang"}
    ]
    assert result.fields["seller"]["name"] == "Nguyễn Thị Hồng Nhung"
    assert result.urgency == "ROUTINE"


def test_tax_owed_over_the_crime_threshold_is_priority(tmp_path: Path) -> None:
    table = read_table(_csv(tmp_path, [_with(Doanh_thu_ước_tính="8.540.000.000")]))
    result = row_to_alert(table, table.rows[0], id_key=KEY)
    assert isinstance(result, Alert)
    assert result.fields["estimated_tax_owed_vnd"] == 121_800_000  # 1.5 % of 8 120 000 000
    assert result.urgency == "PRIORITY"


@pytest.mark.parametrize("declared", ["1.845.600.000", "2.000.000.000"])
def test_no_discrepancy_is_skipped_not_rejected(tmp_path: Path, declared: str) -> None:
    table = read_table(_csv(tmp_path, [_with(Doanh_thu_đã_kê_khai=declared)]))
    result = row_to_alert(table, table.rows[0], id_key=KEY)
    assert isinstance(result, Skipped)
    assert result.reason.startswith("row 2: nothing undeclared")


def test_bad_cells_are_named_by_row_and_file_column(tmp_path: Path) -> None:
    headers = [h if h != "Doanh thu ước tính" else "Doanh thu theo sàn (đồng)" for h in HEADERS]
    bad = [_with(Nền_tảng="Amazon", Kỳ_tính_thuế="quý 7"), list(GOOD), _with(Tên_người_bán=" ")]
    bad[1][HEADERS.index("Doanh thu ước tính")] = "một tỷ"
    table = read_table(_csv(tmp_path, bad, headers))
    results = [row_to_alert(table, row, id_key=KEY) for row in table.rows]
    assert all(isinstance(r, Rejected) for r in results)
    first, second, third = (r.problems for r in results if isinstance(r, Rejected))
    assert first[0].startswith("row 2, column \"Nền tảng\": unknown platform 'Amazon'")
    assert first[1].startswith("row 2, column \"Kỳ tính thuế\": not a tax period: 'quý 7'")
    assert second == ["row 3, column \"Doanh thu theo sàn (đồng)\": not an amount of đồng: 'một tỷ'"]
    assert third == ['row 4, column "Tên người bán": required: the cell is empty']


def test_model_rules_are_named_by_column_too(tmp_path: Path) -> None:
    rows = [_with(Mã_số_thuế="43008123"), _with(Số_điện_thoại="12345", Mã_số_thuế="4300812346")]
    _, ready, _, rejected = prepare_alerts(Settings(), _csv(tmp_path, rows), id_key=ID_KEY)
    assert ready == []
    tax_code_problem = rejected[0].problems[0]
    assert tax_code_problem.startswith("row 2, column \"Mã số thuế\": '43008123' is not a Vietnamese tax")
    assert rejected[1].problems[0].startswith("row 3, column \"Số điện thoại\": '12345' is not")


def test_two_rows_for_one_alert_are_refused(tmp_path: Path) -> None:
    second = _with(**{"Tài khoản/URL": "https://shopee.vn/other"}, Doanh_thu_ước_tính="2.000.000.000")
    _, ready, _, rejected = prepare_alerts(Settings(), _csv(tmp_path, [GOOD, second]), id_key=ID_KEY)
    assert len(ready) == 1
    assert rejected[0].problems == [
        "row 3: same seller, platform and period as row 2 (one alert per seller, platform and period: "
        "merge the two rows)"
    ]


def test_events_carry_the_derived_id_source_and_marks(tmp_path: Path) -> None:
    _, ready, _, _ = prepare_alerts(Settings(), _csv(tmp_path, [GOOD]), id_key=ID_KEY)
    event = ready[0].outgoing.event
    assert event.meta.event_id == alert_event_id(KEY, "4300812345", "", "SHOPEE", "2021-H1")
    assert event.meta.source == "tax"
    assert event.meta.sensitivity == "AMBER"
    headers = dict(ready[0].outgoing.encoded.headers)
    assert headers["ce_id"] == event.meta.event_id.encode()
    assert ready[0].outgoing.encoded.key == event.meta.event_id.encode()
    assert ready[0].outgoing.line == 2


def test_excel_number_cells_keep_their_leading_zeros(tmp_path: Path) -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.append([*HEADERS[1:8], "Số CCCD", "Số điện thoại", "Địa chỉ"])
    address = "Thôn Thạnh Đức, xã Lý Hải, huyện Lý Sơn, tỉnh Quảng Ngãi"
    sheet.append([4300812345, "Lê Thị Thu Hà", "Facebook", "toilyson", 712e6, 96e6, "Quý 3/2021",
                  51192007890, 935345678, address])  # fmt: skip
    path = tmp_path / "ds.xlsx"
    workbook.save(path)
    _, ready, _, rejected = prepare_alerts(Settings(), path, id_key=ID_KEY)
    assert rejected == []
    seller = ready[0].outgoing.event.to_avro()["seller"]
    assert seller["tax_code"] == "4300812345"
    assert seller["national_id"] == "051192007890"
    assert seller["phone"] == "+84935345678"
    assert seller["province"] == "Quảng Ngãi"


# --- publishing without a broker ---------------------------------------------------------------------


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=NO_BROKER, catch_exceptions=False)


def test_cli_dry_run_of_the_shipped_example(default_key_file: Path) -> None:
    result = _run("tax", "publish-alerts", str(EXAMPLES / "tax_undeclared_sellers.xlsx"), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "rows read: 12" in result.output
    assert "events published: 0 (dry run: 11 valid alerts would be published)" in result.output
    assert "skipped (no discrepancy): 1" in result.output
    assert "rejected: 0" in result.output
    # The first run makes the key, and says where (never what): the ids it shows are the ones sent later.
    assert f"alert-id key created: {default_key_file} (0600; back it up" in result.output
    assert default_key_file.read_text().strip() not in result.output
    again = _run("tax", "publish-alerts", str(EXAMPLES / "tax_undeclared_sellers.xlsx"), "--dry-run")
    assert "alert-id key created" not in again.output


def test_cli_a_missing_named_key_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "tax-alert-id.key"
    env = {**NO_BROKER, "BUS389_TAX__ALERT_ID_KEY_FILE": str(missing)}
    args = ["tax", "publish-alerts", str(EXAMPLES / "tax_undeclared_sellers.xlsx"), "--dry-run"]
    result = CliRunner().invoke(cli, args, env=env, catch_exceptions=False)
    assert result.exit_code == 2, result.output
    assert f"BUS389_TAX__ALERT_ID_KEY_FILE names {missing}, which does not exist" in result.stderr
    assert "Traceback" not in result.output


def test_cli_bad_rows_publish_nothing_and_exit_1(tmp_path: Path) -> None:
    path = _csv(tmp_path, [GOOD, _with(Nền_tảng="Amazon", Mã_số_thuế="4300812346")])
    # The bootstrap address does not answer: exit 1 (not 3) proves no broker was contacted.
    result = _run("tax", "publish-alerts", str(path))
    assert result.exit_code == 1, result.output
    assert 'row 3, column "Nền tảng": unknown platform' in result.stderr
    assert "rejected: 1" in result.stdout
    assert "events published: 0 (rows were rejected" in result.stdout
    assert not rejected_path(path).exists()


def test_cli_missing_column_exits_1_naming_it(tmp_path: Path) -> None:
    headers = [h for h in HEADERS if h != "Nền tảng"]
    path = _csv(tmp_path, [[c for h, c in zip(HEADERS, GOOD, strict=True) if h != "Nền tảng"]], headers)
    result = _run("tax", "publish-alerts", str(path))
    assert result.exit_code == 1
    assert 'missing column "Nền tảng" (accepted: "Nền tảng", "Sàn TMĐT"' in result.stderr


def test_cli_help_has_an_example() -> None:
    result = _run("tax", "publish-alerts", "--help")
    assert result.exit_code == 0
    assert "Example:" in result.output
    assert "--skip-invalid" in result.output


def test_rejected_file_has_the_original_cells_and_a_reason(tmp_path: Path) -> None:
    bad = _with(Nền_tảng="Amazon", Mã_số_thuế="4300812346")
    bad[HEADERS.index("Doanh thu ước tính")] = "1,845,600,000"
    path = _csv(tmp_path, [bad], name="ban ke 6T.csv")
    # Every row rejected: nothing is left to publish, so no broker is needed.
    report = publish_alerts(Settings(**NO_BROKER_SETTINGS), path, skip_invalid=True)
    assert report.published == []
    target = tmp_path / "ban ke 6T.rejected.csv"
    assert report.rejected_file == target
    raw = target.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert rows[0] == [*HEADERS, REASON_HEADER]
    assert rows[1][:-1] == bad  # the original cells, as written
    assert rows[1][-1].startswith("row 2, column \"Nền tảng\": unknown platform 'Amazon'")


NO_BROKER_SETTINGS = {"bootstrap": "127.0.0.1:1", "topic_prefix": "unit_no_broker"}
