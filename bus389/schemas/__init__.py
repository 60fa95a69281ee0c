"""The Avro contract of bus389: one folder per event type, one ``vN.avsc`` per version, pinned ids.

The ``.avsc`` files are the contract other agencies parse; :mod:`bus389.schemas.catalog` loads them once and
:mod:`bus389.schemas.compat` proves every new version FULL_TRANSITIVE compatible with the earlier ones, by
Apache Avro's rules and the project's stricter ones (:mod:`bus389.schemas.rules`), defaults included
(:mod:`bus389.schemas.defaults`).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["SCHEMAS_DIR"]

SCHEMAS_DIR = Path(__file__).resolve().parent
"""The folder holding the shipped ``.avsc`` files and ``ids.yaml``."""
