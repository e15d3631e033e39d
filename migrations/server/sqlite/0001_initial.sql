-- Server schema, SQLite flavour. Append-only: a shipped migration never changes.
-- Times are RFC 3339 UTC text with microseconds (sortable as text).

CREATE TABLE devices (
    device_id       TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    public_key      TEXT NOT NULL,
    token_hash      TEXT NOT NULL UNIQUE,
    enrolled_at_utc TEXT NOT NULL,
    revoked_at_utc  TEXT
);

CREATE TABLE enrolment_codes (
    code_hash      TEXT PRIMARY KEY,
    device_name    TEXT NOT NULL,
    created_at_utc TEXT NOT NULL,
    expires_at_utc TEXT NOT NULL,
    used_at_utc    TEXT,
    device_id      TEXT
);

CREATE TABLE users (
    username       TEXT PRIMARY KEY,
    role           TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    created_at_utc TEXT NOT NULL
);

CREATE TABLE sessions (
    token_hash     TEXT PRIMARY KEY,
    username       TEXT NOT NULL REFERENCES users (username),
    role           TEXT NOT NULL,
    created_at_utc TEXT NOT NULL,
    expires_at_utc TEXT NOT NULL
);

CREATE TABLE login_failures (
    username            TEXT PRIMARY KEY,
    failures            INTEGER NOT NULL,
    last_failure_at_utc TEXT NOT NULL
);

-- One row per record: its owner, the highest revision held, and the review columns of the
-- latest signed version.
CREATE TABLE records (
    record_id           TEXT PRIMARY KEY,
    device_id           TEXT NOT NULL REFERENCES devices (device_id),
    latest_revision     INTEGER NOT NULL,
    signed_revision     INTEGER,
    signed_status       TEXT,
    signed_saved_at_utc TEXT,
    incident_number     TEXT,
    patient_name        TEXT,
    search_text         TEXT,
    latest_news2        INTEGER,
    latest_decision     TEXT
);
CREATE INDEX records_review ON records (signed_saved_at_utc DESC, record_id DESC)
    WHERE signed_revision IS NOT NULL;

-- Every version received. Dedup is the UNIQUE constraint, not application code.
CREATE TABLE versions (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    record_id       TEXT NOT NULL REFERENCES records (record_id),
    revision        INTEGER NOT NULL,
    status          TEXT NOT NULL,
    document        TEXT NOT NULL,
    content_sha256  TEXT NOT NULL,
    signature       TEXT,
    device_id       TEXT NOT NULL REFERENCES devices (device_id),
    saved_at_utc    TEXT NOT NULL,
    received_at_utc TEXT NOT NULL,
    UNIQUE (record_id, revision)
);

-- Supervisor decisions; the cursor is what devices page feedback by.
CREATE TABLE decisions (
    cursor         INTEGER PRIMARY KEY AUTOINCREMENT,
    record_id      TEXT NOT NULL REFERENCES records (record_id),
    revision       INTEGER NOT NULL,
    device_id      TEXT NOT NULL REFERENCES devices (device_id),
    decision       TEXT NOT NULL,
    comment        TEXT NOT NULL,
    decided_by     TEXT NOT NULL,
    decided_at_utc TEXT NOT NULL
);
CREATE INDEX decisions_by_device ON decisions (device_id, cursor);
CREATE INDEX decisions_by_record ON decisions (record_id, cursor);

-- Hash-chained audit of every read and write of patient data. No clinical text.
CREATE TABLE audit (
    seq       INTEGER PRIMARY KEY,
    at_utc    TEXT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    record_id TEXT,
    revision  INTEGER,
    detail    TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
