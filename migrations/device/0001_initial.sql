-- Device store, first schema. Applied by store::migrate; never edit a shipped migration.

-- Current state of each encounter: the latest document plus indexed columns for lists
-- and search, so listing never parses documents.
CREATE TABLE encounters (
    id                    TEXT PRIMARY KEY,
    revision              INTEGER NOT NULL,
    status                TEXT NOT NULL CHECK (status IN ('draft', 'completed', 'amended')),
    incident_number       TEXT NOT NULL DEFAULT '',
    incident_number_lower TEXT NOT NULL DEFAULT '',
    patient_name          TEXT NOT NULL DEFAULT '',
    patient_name_lower    TEXT NOT NULL DEFAULT '',
    nhs_number            TEXT,
    latest_news2          INTEGER,
    latest_news2_text     TEXT NOT NULL DEFAULT '',
    created_at_utc        TEXT NOT NULL,
    updated_at_utc        TEXT NOT NULL,
    document              TEXT NOT NULL
) STRICT;

CREATE INDEX encounters_by_updated ON encounters (updated_at_utc DESC);
CREATE INDEX encounters_by_incident ON encounters (incident_number_lower);
CREATE INDEX encounters_by_name ON encounters (patient_name_lower);
CREATE INDEX encounters_by_nhs ON encounters (nhs_number);
CREATE INDEX encounters_by_status ON encounters (status);

-- Every saved version. Signed versions (completed, amended) are immutable: the triggers
-- below refuse updates and deletes of them.
CREATE TABLE encounter_versions (
    encounter_id     TEXT NOT NULL REFERENCES encounters (id),
    revision         INTEGER NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('draft', 'completed', 'amended')),
    document         TEXT NOT NULL,
    content_sha256   TEXT NOT NULL,
    signature        TEXT,
    amendment_reason TEXT,
    saved_at_utc     TEXT NOT NULL,
    saved_by         TEXT NOT NULL,
    PRIMARY KEY (encounter_id, revision)
) STRICT;

CREATE TRIGGER signed_versions_are_immutable
BEFORE UPDATE ON encounter_versions
WHEN OLD.status != 'draft'
BEGIN
    SELECT RAISE(ABORT, 'signed versions are immutable');
END;

CREATE TRIGGER signed_versions_are_kept
BEFORE DELETE ON encounter_versions
WHEN OLD.status != 'draft'
BEGIN
    SELECT RAISE(ABORT, 'signed versions are kept');
END;

-- "Record X needs pushing at revision R or later". Drafts are coalesced to one row per
-- record; every signed version keeps its own row.
CREATE TABLE outbox (
    encounter_id    TEXT NOT NULL,
    revision        INTEGER NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('draft', 'signed')),
    enqueued_at_utc TEXT NOT NULL,
    PRIMARY KEY (encounter_id, revision)
) STRICT;

-- Who did what to which record, when. Hash-chained: each entry's hash covers the previous
-- entry's hash, so a removed or edited entry breaks the chain. No clinical content.
CREATE TABLE audit_log (
    seq          INTEGER PRIMARY KEY,
    at_utc       TEXT NOT NULL,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    encounter_id TEXT,
    revision     INTEGER,
    prev_hash    TEXT NOT NULL,
    entry_hash   TEXT NOT NULL
) STRICT;

-- Device identity and configuration (signing key, enrolment), inside the encrypted file.
CREATE TABLE device_settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
