-- Each clinician's own signing key, registered through their tablet (signature format 2):
-- `proof` is the key's signature over its registration, `device_endorsement` the tablet's
-- (by its enrolled key) vouching for it.
-- The registration is a log leaf (`signer_registered`, at `leaf_idx`); this table finds it.
-- `verify` holds this table to the log, never the other way round.
CREATE TABLE signers (
    device_id         UUID NOT NULL REFERENCES devices (device_id),
    user_id           UUID NOT NULL,
    tablet_id         UUID NOT NULL,
    user_name         TEXT NOT NULL,
    public_key        TEXT NOT NULL,
    proof             TEXT NOT NULL,
    device_endorsement TEXT NOT NULL,
    leaf_idx          BIGINT NOT NULL,
    registered_at_utc TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (device_id, user_id)
);

-- The user whose own key signed a version (format 2); NULL for format 1 and drafts.
ALTER TABLE versions ADD COLUMN signer_user_id UUID;
