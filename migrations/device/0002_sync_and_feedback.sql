-- Sync state, quarantine, supervisor feedback and amendment drafts.

-- Per-record sync state shown as a badge: queued, sending, synced, needs_attention.
ALTER TABLE encounters ADD COLUMN sync_state TEXT NOT NULL DEFAULT 'queued';
-- The latest supervisor decision on this record (approved, returned, flagged) and its comment.
ALTER TABLE encounters ADD COLUMN review_decision TEXT;
ALTER TABLE encounters ADD COLUMN review_comment TEXT;
ALTER TABLE encounters ADD COLUMN review_revision INTEGER;
-- Edits to a signed record not yet signed as an amendment: kept locally, never pushed.
ALTER TABLE encounters ADD COLUMN amendment_draft TEXT;

-- Why the server refused a version; the record is held back until the crew acts.
ALTER TABLE outbox ADD COLUMN quarantined_reason TEXT;
ALTER TABLE outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;

CREATE INDEX encounters_by_sync_state ON encounters (sync_state);

-- Supervisor decisions pulled from the server, kept for the record's history.
CREATE TABLE feedback (
    cursor         INTEGER PRIMARY KEY,
    encounter_id   TEXT NOT NULL,
    revision       INTEGER NOT NULL,
    decision       TEXT NOT NULL,
    comment        TEXT NOT NULL,
    decided_by     TEXT NOT NULL,
    decided_at_utc TEXT NOT NULL
) STRICT;
