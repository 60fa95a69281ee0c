"""The ICT store's schema: the SQL migrations, applied in order (``PRAGMA user_version`` counts them)."""

from __future__ import annotations

__all__ = ["MIGRATIONS", "statements"]

MIGRATIONS: tuple[str, ...] = (
    # 1: the first schema.
    """
    CREATE TABLE requests (
        event_id        TEXT PRIMARY KEY,
        requester       TEXT NOT NULL,
        action          TEXT NOT NULL,
        reason          TEXT NOT NULL,
        legal_basis     TEXT NOT NULL,
        case_ref        TEXT,
        sensitivity     TEXT NOT NULL,
        urgency         TEXT NOT NULL,
        violation_kinds TEXT NOT NULL,
        items           TEXT NOT NULL,
        occurred_at     INTEGER NOT NULL,
        published_at    INTEGER NOT NULL,
        expires_at      INTEGER,
        received_at     INTEGER NOT NULL,
        origin          TEXT NOT NULL,
        state           TEXT NOT NULL,
        decided_at      INTEGER,
        decided_by      TEXT,
        note            TEXT
    );
    CREATE INDEX requests_state ON requests (state, received_at);
    CREATE TABLE targets (
        request_id  TEXT NOT NULL REFERENCES requests (event_id),
        position    INTEGER NOT NULL,
        kind        TEXT NOT NULL,
        value       TEXT NOT NULL,
        state       TEXT NOT NULL,
        changed_at  INTEGER NOT NULL,
        lifted_by   TEXT,
        PRIMARY KEY (request_id, kind, value)
    );
    CREATE INDEX targets_value ON targets (kind, value, state);
    CREATE TABLE refusals (
        request_id  TEXT NOT NULL REFERENCES requests (event_id),
        position    INTEGER NOT NULL,
        item        TEXT NOT NULL,
        reason      TEXT NOT NULL,
        PRIMARY KEY (request_id, position)
    );
    CREATE TABLE decisions (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        request_id  TEXT NOT NULL REFERENCES requests (event_id),
        kind        TEXT NOT NULL,
        outcome     TEXT NOT NULL,
        decided_at  INTEGER NOT NULL,
        actor       TEXT NOT NULL,
        note        TEXT,
        UNIQUE (request_id, kind)
    );
    CREATE TABLE outbox (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id      TEXT NOT NULL UNIQUE,
        request_id    TEXT NOT NULL REFERENCES requests (event_id),
        decision_kind TEXT NOT NULL,
        outcome       TEXT NOT NULL,
        requester     TEXT NOT NULL,
        request_published_at INTEGER NOT NULL,
        needs_seq     INTEGER NOT NULL,
        created_at    INTEGER NOT NULL,
        key           BLOB NOT NULL,
        value         BLOB NOT NULL,
        headers       TEXT NOT NULL,
        record        TEXT NOT NULL,
        sent_at       INTEGER,
        sent_position TEXT
    );
    CREATE INDEX outbox_unsent ON outbox (sent_at, id);
    CREATE TABLE rejected_events (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        topic       TEXT NOT NULL,
        partition   INTEGER NOT NULL,
        "offset"    INTEGER NOT NULL,
        event_id    TEXT,
        event_type  TEXT,
        reason      TEXT NOT NULL,
        detail      TEXT NOT NULL,
        recorded_at INTEGER NOT NULL,
        UNIQUE (topic, partition, "offset")
    );
    CREATE TABLE kv (
        name  TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    INSERT INTO kv (name, value) VALUES
        ('blocklist_seq', '0'), ('written_seq', '0'), ('serial', '0'), ('written_hash', '');
    """,
    # 2: suspect_seller leads for inspection (plan II.6) and replies to ICT's own events.
    """
    CREATE TABLE leads (
        event_id        TEXT PRIMARY KEY,
        sender          TEXT NOT NULL,
        seller_name     TEXT NOT NULL,
        seller_tax_code TEXT,
        domains         TEXT NOT NULL,
        accounts        TEXT NOT NULL,
        evidence_urls   TEXT NOT NULL,
        goods           TEXT NOT NULL,
        violation_kinds TEXT NOT NULL,
        summary         TEXT NOT NULL,
        case_ref        TEXT,
        sensitivity     TEXT NOT NULL,
        urgency         TEXT NOT NULL,
        rule            TEXT NOT NULL,
        published_at    INTEGER NOT NULL,
        received_at     INTEGER NOT NULL,
        origin          TEXT NOT NULL,
        state           TEXT NOT NULL,
        inspected_at    INTEGER,
        inspected_by    TEXT,
        note            TEXT
    );
    CREATE INDEX leads_state ON leads (state, received_at);
    CREATE TABLE replies (
        event_id     TEXT PRIMARY KEY,
        event_type   TEXT NOT NULL,
        sender       TEXT NOT NULL,
        in_reply_to  TEXT,
        case_ref     TEXT,
        rule         TEXT NOT NULL,
        published_at INTEGER NOT NULL,
        received_at  INTEGER NOT NULL,
        origin       TEXT NOT NULL,
        record       TEXT NOT NULL
    );
    CREATE INDEX replies_received ON replies (received_at);
    """,
    # 3: events keyed by (event id, sender): a second sender's request, lead or reply under a taken id
    # is a row of its own, never over the first (the router keeps such copies out only within its
    # reply index). The tables are rebuilt (SQLite cannot change a primary key) and the old rows
    # copied; what refers to a request names its requester too.
    """
    CREATE TABLE requests_v3 (
        event_id        TEXT NOT NULL,
        requester       TEXT NOT NULL,
        action          TEXT NOT NULL,
        reason          TEXT NOT NULL,
        legal_basis     TEXT NOT NULL,
        case_ref        TEXT,
        sensitivity     TEXT NOT NULL,
        urgency         TEXT NOT NULL,
        violation_kinds TEXT NOT NULL,
        items           TEXT NOT NULL,
        occurred_at     INTEGER NOT NULL,
        published_at    INTEGER NOT NULL,
        expires_at      INTEGER,
        received_at     INTEGER NOT NULL,
        origin          TEXT NOT NULL,
        state           TEXT NOT NULL,
        decided_at      INTEGER,
        decided_by      TEXT,
        note            TEXT,
        PRIMARY KEY (event_id, requester)
    );
    INSERT INTO requests_v3 SELECT
        event_id, requester, action, reason, legal_basis, case_ref, sensitivity, urgency, violation_kinds,
        items, occurred_at, published_at, expires_at, received_at, origin, state, decided_at, decided_by, note
        FROM requests;
    CREATE TABLE targets_v3 (
        request_id  TEXT NOT NULL,
        requester   TEXT NOT NULL,
        position    INTEGER NOT NULL,
        kind        TEXT NOT NULL,
        value       TEXT NOT NULL,
        state       TEXT NOT NULL,
        changed_at  INTEGER NOT NULL,
        lifted_by   TEXT,
        PRIMARY KEY (request_id, requester, kind, value),
        FOREIGN KEY (request_id, requester) REFERENCES requests_v3 (event_id, requester)
    );
    INSERT INTO targets_v3 SELECT
        t.request_id, r.requester, t.position, t.kind, t.value, t.state, t.changed_at, t.lifted_by
        FROM targets AS t JOIN requests AS r ON r.event_id = t.request_id;
    CREATE TABLE refusals_v3 (
        request_id  TEXT NOT NULL,
        requester   TEXT NOT NULL,
        position    INTEGER NOT NULL,
        item        TEXT NOT NULL,
        reason      TEXT NOT NULL,
        PRIMARY KEY (request_id, requester, position),
        FOREIGN KEY (request_id, requester) REFERENCES requests_v3 (event_id, requester)
    );
    INSERT INTO refusals_v3 SELECT f.request_id, r.requester, f.position, f.item, f.reason
        FROM refusals AS f JOIN requests AS r ON r.event_id = f.request_id;
    CREATE TABLE decisions_v3 (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        request_id  TEXT NOT NULL,
        requester   TEXT NOT NULL,
        kind        TEXT NOT NULL,
        outcome     TEXT NOT NULL,
        decided_at  INTEGER NOT NULL,
        actor       TEXT NOT NULL,
        note        TEXT,
        UNIQUE (request_id, requester, kind),
        FOREIGN KEY (request_id, requester) REFERENCES requests_v3 (event_id, requester)
    );
    INSERT INTO decisions_v3 SELECT
        d.id, d.request_id, r.requester, d.kind, d.outcome, d.decided_at, d.actor, d.note
        FROM decisions AS d JOIN requests AS r ON r.event_id = d.request_id;
    CREATE TABLE outbox_v3 (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id      TEXT NOT NULL UNIQUE,
        request_id    TEXT NOT NULL,
        decision_kind TEXT NOT NULL,
        outcome       TEXT NOT NULL,
        requester     TEXT NOT NULL,
        request_published_at INTEGER NOT NULL,
        needs_seq     INTEGER NOT NULL,
        created_at    INTEGER NOT NULL,
        key           BLOB NOT NULL,
        value         BLOB NOT NULL,
        headers       TEXT NOT NULL,
        record        TEXT NOT NULL,
        sent_at       INTEGER,
        sent_position TEXT,
        FOREIGN KEY (request_id, requester) REFERENCES requests_v3 (event_id, requester)
    );
    INSERT INTO outbox_v3 SELECT
        id, event_id, request_id, decision_kind, outcome, requester, request_published_at, needs_seq,
        created_at, key, value, headers, record, sent_at, sent_position
        FROM outbox;
    CREATE TABLE leads_v3 (
        event_id        TEXT NOT NULL,
        sender          TEXT NOT NULL,
        seller_name     TEXT NOT NULL,
        seller_tax_code TEXT,
        domains         TEXT NOT NULL,
        accounts        TEXT NOT NULL,
        evidence_urls   TEXT NOT NULL,
        goods           TEXT NOT NULL,
        violation_kinds TEXT NOT NULL,
        summary         TEXT NOT NULL,
        case_ref        TEXT,
        sensitivity     TEXT NOT NULL,
        urgency         TEXT NOT NULL,
        rule            TEXT NOT NULL,
        published_at    INTEGER NOT NULL,
        received_at     INTEGER NOT NULL,
        origin          TEXT NOT NULL,
        state           TEXT NOT NULL,
        inspected_at    INTEGER,
        inspected_by    TEXT,
        note            TEXT,
        PRIMARY KEY (event_id, sender)
    );
    INSERT INTO leads_v3 SELECT
        event_id, sender, seller_name, seller_tax_code, domains, accounts, evidence_urls, goods,
        violation_kinds, summary, case_ref, sensitivity, urgency, rule, published_at, received_at, origin,
        state, inspected_at, inspected_by, note
        FROM leads;
    CREATE TABLE replies_v3 (
        event_id     TEXT NOT NULL,
        event_type   TEXT NOT NULL,
        sender       TEXT NOT NULL,
        in_reply_to  TEXT,
        case_ref     TEXT,
        rule         TEXT NOT NULL,
        published_at INTEGER NOT NULL,
        received_at  INTEGER NOT NULL,
        origin       TEXT NOT NULL,
        record       TEXT NOT NULL,
        PRIMARY KEY (event_id, sender)
    );
    INSERT INTO replies_v3 SELECT
        event_id, event_type, sender, in_reply_to, case_ref, rule, published_at, received_at, origin, record
        FROM replies;
    DROP TABLE outbox;
    DROP TABLE decisions;
    DROP TABLE refusals;
    DROP TABLE targets;
    DROP TABLE requests;
    DROP TABLE leads;
    DROP TABLE replies;
    ALTER TABLE requests_v3 RENAME TO requests;
    ALTER TABLE targets_v3 RENAME TO targets;
    ALTER TABLE refusals_v3 RENAME TO refusals;
    ALTER TABLE decisions_v3 RENAME TO decisions;
    ALTER TABLE outbox_v3 RENAME TO outbox;
    ALTER TABLE leads_v3 RENAME TO leads;
    ALTER TABLE replies_v3 RENAME TO replies;
    CREATE INDEX requests_state ON requests (state, received_at);
    CREATE INDEX targets_value ON targets (kind, value, state);
    CREATE INDEX outbox_unsent ON outbox (sent_at, id);
    CREATE INDEX leads_state ON leads (state, received_at);
    CREATE INDEX replies_received ON replies (received_at);
    """,
)
"""Schema migrations, applied in order; never edit one that has shipped, append a new one."""


def statements(script: str) -> list[str]:
    """The statements of one migration script, to run one by one inside the caller's transaction."""
    # Migrations hold no semicolons inside literals, so a split is exact (and keeps each in the
    # surrounding transaction, which executescript would commit).
    return [s.strip() for s in script.split(";") if s.strip()]
