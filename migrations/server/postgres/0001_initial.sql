-- Server schema, PostgreSQL flavour. Append-only: a shipped migration never changes.
-- Documents are TEXT (canonical JSON), not jsonb: jsonb reorders keys and normalises numbers,
-- which would break the content hashes that device signatures cover. Audit times are TEXT for
-- the same reason: the chain hashes the exact string.

CREATE TABLE devices (
    device_id       UUID PRIMARY KEY,
    name            TEXT NOT NULL,
    public_key      TEXT NOT NULL,
    token_hash      TEXT NOT NULL UNIQUE,
    enrolled_at_utc TIMESTAMPTZ NOT NULL,
    revoked_at_utc  TIMESTAMPTZ
);

CREATE TABLE enrolment_codes (
    code_hash      TEXT PRIMARY KEY,
    device_name    TEXT NOT NULL,
    created_at_utc TIMESTAMPTZ NOT NULL,
    expires_at_utc TIMESTAMPTZ NOT NULL,
    used_at_utc    TIMESTAMPTZ,
    device_id      UUID
);

CREATE TABLE users (
    username       TEXT PRIMARY KEY,
    role           TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    created_at_utc TIMESTAMPTZ NOT NULL
);

CREATE TABLE sessions (
    token_hash     TEXT PRIMARY KEY,
    username       TEXT NOT NULL REFERENCES users (username),
    role           TEXT NOT NULL,
    created_at_utc TIMESTAMPTZ NOT NULL,
    expires_at_utc TIMESTAMPTZ NOT NULL
);

CREATE TABLE login_failures (
    username            TEXT PRIMARY KEY,
    failures            INTEGER NOT NULL,
    last_failure_at_utc TIMESTAMPTZ NOT NULL
);

CREATE TABLE records (
    record_id           UUID PRIMARY KEY,
    device_id           UUID NOT NULL REFERENCES devices (device_id),
    latest_revision     BIGINT NOT NULL,
    signed_revision     BIGINT,
    signed_status       TEXT,
    signed_saved_at_utc TIMESTAMPTZ,
    incident_number     TEXT,
    patient_name        TEXT,
    search_text         TEXT,
    latest_news2        INTEGER,
    latest_decision     TEXT
);
CREATE INDEX records_review ON records (signed_saved_at_utc DESC, record_id DESC)
    WHERE signed_revision IS NOT NULL;

CREATE TABLE versions (
    seq             BIGSERIAL PRIMARY KEY,
    record_id       UUID NOT NULL REFERENCES records (record_id),
    revision        BIGINT NOT NULL,
    status          TEXT NOT NULL,
    document        TEXT NOT NULL,
    content_sha256  TEXT NOT NULL,
    signature       TEXT,
    device_id       UUID NOT NULL REFERENCES devices (device_id),
    saved_at_utc    TIMESTAMPTZ NOT NULL,
    received_at_utc TIMESTAMPTZ NOT NULL,
    UNIQUE (record_id, revision)
);

CREATE TABLE decisions (
    cursor         BIGSERIAL PRIMARY KEY,
    record_id      UUID NOT NULL REFERENCES records (record_id),
    revision       BIGINT NOT NULL,
    device_id      UUID NOT NULL REFERENCES devices (device_id),
    decision       TEXT NOT NULL,
    comment        TEXT NOT NULL,
    decided_by     TEXT NOT NULL,
    decided_at_utc TIMESTAMPTZ NOT NULL
);
CREATE INDEX decisions_by_device ON decisions (device_id, cursor);
CREATE INDEX decisions_by_record ON decisions (record_id, cursor);

CREATE TABLE audit (
    seq       BIGINT PRIMARY KEY,
    at_utc    TEXT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    record_id UUID,
    revision  BIGINT,
    detail    TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
