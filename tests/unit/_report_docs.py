"""Shared by the document and mail tests: a store with the six-monthly scenario, the signer's settings."""

from __future__ import annotations

from pathlib import Path

from test_report import NOW, Scenario

from bus389.consumers.standing_office.store import StandingOfficeStore

__all__ = ["NOW", "SIGNER_ENV", "scenario_store"]

SIGNER_ENV = {
    "BUS389_REPORT__SIGNER_NAME": "Nguyễn Văn An",
    "BUS389_REPORT__SIGNER_TITLE": "Phó Trưởng ban",
    "BUS389_REPORT__SIGNER_AUTHORITY": "KT. Trưởng ban",
    "BUS389_REPORT__RECIPIENTS": '["Ban Chỉ đạo 389 quốc gia", "UBND tỉnh Quảng Ngãi", "Lưu: VT"]',
}


def scenario_store(path: Path) -> tuple[str, Scenario]:
    """A SQLite store at ``path`` with the scenario of test_report; its URL and the scenario."""
    url = f"sqlite:///{path}"
    with StandingOfficeStore.open(url) as store:
        scenario = Scenario(store)
    return url, scenario
