"""A standing office store as bus389 wrote it before events were keyed by sender (schema version 1).

The tables are written out here as they shipped, not taken from the code under test, so that a
migration test opens a database the old code could have left behind (SQLite or PostgreSQL).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

V1_DDL = (
    """CREATE TABLE so_events (
        event_id TEXT PRIMARY KEY,
        event_type TEXT NOT NULL,
        source TEXT NOT NULL,
        occurred_at BIGINT NOT NULL,
        published_at BIGINT NOT NULL,
        case_ref TEXT,
        in_reply_to TEXT,
        sensitivity TEXT NOT NULL,
        urgency TEXT NOT NULL,
        schema_id INTEGER,
        src_topic TEXT,
        src_partition INTEGER,
        src_offset BIGINT,
        redacted TEXT NOT NULL,
        headers TEXT NOT NULL,
        stored_at BIGINT NOT NULL,
        record TEXT NOT NULL
    )""",
    "CREATE INDEX so_events_occurred ON so_events (occurred_at)",
    "CREATE INDEX so_events_type ON so_events (event_type, occurred_at)",
    "CREATE INDEX so_events_reply ON so_events (in_reply_to)",
    "CREATE INDEX so_events_case ON so_events (case_ref)",
    """CREATE TABLE so_event_keys (
        event_id TEXT NOT NULL REFERENCES so_events (event_id),
        kind TEXT NOT NULL,
        value TEXT NOT NULL,
        label TEXT NOT NULL,
        PRIMARY KEY (event_id, kind, value)
    )""",
    "CREATE INDEX so_event_keys_value ON so_event_keys (kind, value)",
    """CREATE TABLE so_rejected (
        src_topic TEXT NOT NULL,
        src_partition INTEGER NOT NULL,
        src_offset BIGINT NOT NULL,
        event_id TEXT,
        reason TEXT NOT NULL,
        detail TEXT NOT NULL,
        rejected_at BIGINT NOT NULL,
        PRIMARY KEY (src_topic, src_partition, src_offset)
    )""",
    "CREATE TABLE so_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
)

REQUEST_ID = "6f1d2a7e-3b4c-4d5e-8f90-a1b2c3d4e5f6"
RESULT_ID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
SELLER_NAME = "Nguyễn Thị Ánh Tuyết"


def _record(event_id: str, event_type: str, source: str, in_reply_to: str | None, **fields: Any) -> str:
    meta = {
        "event_id": event_id,
        "event_type": event_type,
        "source": source,
        "occurred_at": "2021-03-01T02:00:00.000Z",
        "published_at": "2021-03-01T02:01:00.000Z",
        "case_ref": "QLTT-2021-007",
        "in_reply_to": in_reply_to,
        "sensitivity": "AMBER",
        "urgency": "ROUTINE",
    }
    return json.dumps({"meta": meta, **fields}, ensure_ascii=False, separators=(",", ":"))


ROWS: tuple[tuple[Any, ...], ...] = (
    # event_id, event_type, source, occurred_at, published_at, case_ref, in_reply_to, sensitivity,
    # urgency, schema_id, src_topic, src_partition, src_offset, redacted, headers, stored_at, record
    (REQUEST_ID, "domain_block_request", "police", 1614564000000, 1614564060000, "QLTT-2021-007", None,
     "AMBER", "ROUTINE", 3, "t.inbox.market_surveillance", 1, 41, "", '{"bus389_rule":"dbr"}',
     1614564061000,
     _record(REQUEST_ID, "domain_block_request", "police", None, domains=["hangxachtay.vn"],
             seller={"name": SELLER_NAME})),
    (RESULT_ID, "domain_block_result", "ict", 1614650400000, 1614650460000, "QLTT-2021-007", REQUEST_ID,
     "AMBER", "ROUTINE", 4, "t.inbox.market_surveillance", 1, 42, "", "{}", 1614650461000,
     _record(RESULT_ID, "domain_block_result", "ict", REQUEST_ID, outcome="BLOCKED",
             decided_at="2021-03-02T02:00:00.000Z")),
)  # fmt: skip
KEYS = (
    (REQUEST_ID, "domain", "hangxachtay.vn", "hangxachtay.vn"),
    (REQUEST_ID, "seller", "nguyen thi anh tuyet", SELLER_NAME),
)
REJECTED = ("t.inbox.market_surveillance", 0, 7, None, "corrupt_body", "not Avro", 1614564000000)
MAILED = ("report_sent:2020-H2", "2021-01-15T08:00:00+07:00")


def write_v1_store(execute: Callable[[str, Sequence[Any]], Any], placeholder: str = "?") -> None:
    """Create the version 1 tables and their rows through ``execute(sql, params)`` (the caller commits)."""

    def marks(n: int) -> str:
        return ", ".join(placeholder for _ in range(n))

    for ddl in V1_DDL:
        execute(ddl, ())
    for row in ROWS:
        execute(f"INSERT INTO so_events VALUES ({marks(len(row))})", row)  # noqa: S608 (placeholders only)
    for key in KEYS:
        execute(f"INSERT INTO so_event_keys VALUES ({marks(4)})", key)  # noqa: S608
    execute(f"INSERT INTO so_rejected VALUES ({marks(7)})", REJECTED)  # noqa: S608
    execute(f"INSERT INTO so_meta VALUES ({marks(2)})", ("schema_version", "1"))  # noqa: S608
    execute(f"INSERT INTO so_meta VALUES ({marks(2)})", MAILED)  # noqa: S608
