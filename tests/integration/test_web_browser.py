"""The web console in a real browser (Debian's headless Chromium through Selenium and Debian's
chromedriver), with the real router, ICT service and standing-office service on a real broker.

A tax clerk uploads the example workbook, sees the preview and publishes; the police inbox shows the
alerts the routing policy sends it; an ICT operator approves a request and the blocklist page and the
RPZ file change; a standing-office user opens the report. With ``BUS389_SCREENSHOTS_DIR`` set, each
page's screenshot is written there (``docs/screenshots`` for the README).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _web_support import console_env, read_topic, router_env, running_console, running_process, wait_for

from bus389.agencies import Agency
from bus389.producers.publisher import publish_file
from bus389.producers.readers import SourceRecord
from bus389.routing.decision import decide
from bus389.routing.policy import load_policy
from bus389.settings import IctSettings, Settings, StoreSettings

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKBOOK = REPO_ROOT / "examples" / "tax_undeclared_sellers.xlsx"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
DOMAIN = "my-pham-gia-trinh-duyet.example.vn"


def _driver(profile: Path):  # type: ignore[no-untyped-def]
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail(
            "Debian's chromium and chromium-driver are needed: bash deploy/install-system-packages.sh"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1280,1400",
        "--lang=vi",
    ):
        options.add_argument(flag)
    # Debian's driver, never one Selenium Manager would download.
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    driver = _driver(tmp_path / f"chromium-{uuid.uuid4().hex[:8]}")
    try:
        yield driver
    finally:
        driver.quit()


class Shots:
    """Screenshots into ``BUS389_SCREENSHOTS_DIR`` when set, else into the test's folder."""

    def __init__(self, tmp_path: Path) -> None:
        given = os.environ.get("BUS389_SCREENSHOTS_DIR")
        self.folder = Path(given) if given else tmp_path / "screenshots"
        self.folder.mkdir(parents=True, exist_ok=True)

    def take(self, driver: object, name: str) -> None:
        path = self.folder / f"{name}.png"
        assert driver.save_screenshot(str(path)), path  # type: ignore[attr-defined]
        assert path.stat().st_size > 1000


@pytest.fixture
def web_settings(make_settings: Callable[..., Settings], tmp_path: Path) -> Settings:
    return make_settings(
        store=StoreSettings(
            ict_url=f"sqlite:///{tmp_path / 'ict.sqlite3'}",
            standing_office_url=f"sqlite:///{tmp_path / 'so.sqlite3'}",
        ),
        ict=IctSettings(output_dir=tmp_path / "blocklist", rpz_zone="rpz.test"),
    )


def _sign_in(driver: object, url: str, name: str, password: str) -> None:
    from selenium.webdriver.common.by import By

    d: Any = driver
    d.get(url + "/login")
    d.find_element(By.ID, "username").send_keys(name)
    d.find_element(By.ID, "password").send_keys(password)
    d.find_element(By.ID, "login").click()
    wait_for(f"{name} signed in", lambda: any(name in e.text for e in d.find_elements(By.ID, "who")), 30)


def _sign_out(driver: object) -> None:
    from selenium.webdriver.common.by import By

    d: Any = driver
    d.find_element(By.CSS_SELECTOR, "form.who button").click()
    wait_for("signed out", lambda: bool(d.find_elements(By.ID, "login")), 30)


def _rows(driver: object, table_id: str) -> list[str]:
    from selenium.webdriver.common.by import By

    d: Any = driver
    return [r.text for r in d.find_elements(By.CSS_SELECTOR, f"#{table_id} tbody tr")]


def test_the_console_in_a_browser(browser: object, web_settings: Settings, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    driver: Any = browser
    shots = Shots(tmp_path)
    settings = web_settings
    so_group = f"{settings.topic_prefix}.market_surveillance.store.{uuid.uuid4().hex[:6]}"
    ict_group = f"{settings.topic_prefix}.ict.blocklist.{uuid.uuid4().hex[:6]}"
    env = console_env(settings, tmp_path, BUS389_REPORT__GROUP_ID=so_group, BUS389_ICT__GROUP_ID=ict_group)
    users = [
        ("thu.tax", "tax", "clerk"),
        ("trinh.congan", "police", "viewer"),
        ("op.ict", "ict", "operator"),
        ("vp.bcd389", "market_surveillance", "viewer,admin"),
    ]
    with (
        running_console(env, tmp_path, users) as console,
        running_process(["route", "--metrics-port", "0"], {**env, **router_env(settings.topic_prefix)}),
        running_process(["serve", "ict", "--metrics-port", "0"], env),
        running_process(["serve", "standing-office", "--metrics-port", "0"], env),
    ):
        url = console.url
        driver.get(url + "/login")
        shots.take(driver, "login")

        # The tax clerk: upload, preview, publish, receipt.
        _sign_in(driver, url, "thu.tax", console.passwords["thu.tax"])
        driver.get(url + "/tax")
        driver.find_element(By.ID, "file").send_keys(str(WORKBOOK))
        driver.find_element(By.ID, "upload").click()
        wait_for("the preview", lambda: bool(driver.find_elements(By.ID, "preview")), 60)
        preview = _rows(driver, "preview")
        assert len(preview) == 12
        assert sum("gửi được" in r for r in preview) == 11
        assert sum("bỏ qua" in r for r in preview) == 1
        assert "rows read: 12" in driver.find_element(By.ID, "summary").text
        shots.take(driver, "tax-preview")
        driver.find_element(By.ID, "publish").click()
        wait_for("the receipt", lambda: bool(driver.find_elements(By.ID, "published")), 120)
        published = [li.text for li in driver.find_elements(By.CSS_SELECTOR, "#published li")]
        assert len(published) == 11
        shots.take(driver, "tax-receipt")

        def outbox_routed() -> bool:
            driver.get(url + "/outbox")
            rows = _rows(driver, "outbox")
            return len(rows) == 11 and all("→" in r for r in rows)

        wait_for("every alert's delivery in the outbox", outbox_routed, 120)
        shots.take(driver, "tax-outbox")
        _sign_out(driver)

        # The police inbox: the alerts the policy sends the police (those over its threshold).
        policy = load_policy(settings.router.policy_path)
        alerts = read_topic(settings, settings.topics.outbox("tax"))
        assert sorted(str(a.record["meta"]["event_id"]) for a in alerts) == sorted(published)
        for_police = {
            str(a.record["meta"]["event_id"])
            for a in alerts
            if Agency.POLICE in decide(Agency.TAX, a.record, policy, lambda _id: None).recipients
        }
        assert 0 < len(for_police) < len(alerts)
        _sign_in(driver, url, "trinh.congan", console.passwords["trinh.congan"])

        def police_inbox() -> set[str]:
            driver.get(url + "/inbox")
            links = driver.find_elements(By.CSS_SELECTOR, "#inbox tbody tr td a")
            return {a.get_attribute("href").rsplit("/", 1)[1] for a in links}

        wait_for("the alerts in the police inbox", lambda: police_inbox() == for_police, 120)
        shots.take(driver, "police-inbox")
        first = sorted(for_police)[0]
        driver.get(f"{url}/inbox/{first}")
        assert "Trường bị lược bỏ cho cơ quan bạn" in driver.page_source
        shots.take(driver, "police-event")
        _sign_out(driver)

        # The ICT operator: a domain-block request from the market surveillance, approved.
        request = {
            "meta": {"sensitivity": "AMBER", "urgency": "IMMEDIATE"},
            "domains": [DOMAIN],
            "action": "BLOCK",
            "reason": "Website bán mỹ phẩm giả mạo nhãn hiệu",
            "legal_basis": "Công văn 45/QLTT-NV",
            "violation_kinds": ["COUNTERFEIT"],
        }
        sent = publish_file(
            settings, "domain_block_request", Agency.MARKET_SURVEILLANCE, [SourceRecord(1, request)]
        )
        request_id = sent.committed[0].event_ids[0]
        _sign_in(driver, url, "op.ict", console.passwords["op.ict"])

        def pending_shown() -> bool:
            driver.get(url + "/ict")
            return bool(driver.find_elements(By.ID, f"request-{request_id}"))

        wait_for("the request on the ICT page", pending_shown, 120)
        driver.get(url + "/ict/blocklist")
        assert DOMAIN not in driver.find_element(By.ID, "blocklist").text
        driver.get(url + "/ict")
        shots.take(driver, "ict-pending")
        section = driver.find_element(By.ID, f"request-{request_id}")
        section.find_element(By.NAME, "note").send_keys("QĐ 45/QĐ-STTTT")
        section.find_element(By.CSS_SELECTOR, "button.approve").click()
        wait_for("the approval", lambda: "Đã duyệt yêu cầu" in driver.find_element(By.ID, "message").text, 30)
        rpz = settings.ict.output_dir / "rpz.test.zone"
        wait_for("the RPZ file", lambda: rpz.is_file() and f"{DOMAIN} CNAME ." in rpz.read_text(), 120)
        driver.get(url + "/ict/blocklist")
        assert DOMAIN in driver.find_element(By.ID, "blocklist").text
        shots.take(driver, "ict-blocklist")
        _sign_out(driver)

        # The standing office: the report page, and the full report it links to.
        _sign_in(driver, url, "vp.bcd389", console.passwords["vp.bcd389"])

        def report_counts() -> bool:
            driver.get(url + "/report")
            return int(driver.find_element(By.ID, "events-total").text) > 0

        wait_for("the report to count the events", report_counts, 120)
        assert driver.find_elements(By.CSS_SELECTOR, "#chart-members rect")
        assert driver.find_elements(By.ID, "correlations")
        shots.take(driver, "report")
        driver.find_element(By.ID, "full-report").click()
        wait_for("the full report", lambda: "/report/view" in driver.current_url, 30)
        shots.take(driver, "report-full")
        driver.get(url + "/admin")
        assert "Chính sách định tuyến" in driver.page_source
        shots.take(driver, "admin")
    if os.environ.get("BUS389_SCREENSHOTS_DIR") is None:
        shutil.rmtree(shots.folder, ignore_errors=True)
