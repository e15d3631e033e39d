-- Each user's own signing key (signature format 2): the public half and its registration
-- statement, kept in the store so a registration survives the user leaving the keyring, and
-- sent with each push until the server has logged it. The private half is sealed in the
-- keyring under the user's own unlock secret, never here.
CREATE TABLE signers (
    user_id            TEXT PRIMARY KEY,
    user_name          TEXT NOT NULL,
    public_key         TEXT NOT NULL,
    tablet_id          TEXT NOT NULL,
    proof              TEXT NOT NULL,
    created_at_utc     TEXT NOT NULL,
    registered_at_utc  TEXT
);

-- Which user's key signed a version (format 2); NULL for drafts and for versions signed with
-- the tablet's key (format 1).
ALTER TABLE encounter_versions ADD COLUMN signer_user_id TEXT;
