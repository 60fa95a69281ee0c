"""The action log: one JSON line per thing a user or a token did, naming who (never a secret)."""

from __future__ import annotations

import json
import logging
from typing import Any

__all__ = ["log_action"]

log = logging.getLogger("bus389.web.actions")


def log_action(actor: str, agency: str, action: str, outcome: str = "ok", **details: Any) -> None:
    """Log ``action`` by ``actor`` of ``agency``; ``details`` are ids and counts, never a secret."""
    line = {"actor": actor, "agency": agency, "action": action, "outcome": outcome, **details}
    log.info("%s", json.dumps(line, ensure_ascii=False, sort_keys=True, default=str))
