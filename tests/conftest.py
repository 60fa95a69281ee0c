"""Shared by every test: marks what lives under tests/integration as ``integration`` (nothing heavy here)."""

from __future__ import annotations

from pathlib import Path

import pytest

INTEGRATION_DIR = Path(__file__).resolve().parent / "integration"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test under tests/integration needs a real broker: mark it so `-m "not integration"` skips it."""
    marker = pytest.mark.integration
    for item in items:
        if INTEGRATION_DIR in Path(item.path).resolve().parents:
            item.add_marker(marker)
