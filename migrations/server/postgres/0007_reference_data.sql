-- The trust's reference data (formulary, destinations, staff, pick lists): every imported
-- version, whole, with the statement the log key signed for it. Tablets receive the latest
-- at their next sync. Versions only grow; none is ever changed or removed.
CREATE TABLE reference_versions (
    version          BIGINT PRIMARY KEY,
    document         TEXT NOT NULL,
    document_sha256  TEXT NOT NULL,
    signed_note      TEXT NOT NULL,
    imported_at_utc  TIMESTAMPTZ NOT NULL
);
