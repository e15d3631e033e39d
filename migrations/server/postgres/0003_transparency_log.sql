-- The append-only log (issue 12): every accepted version, enrolment, revocation and decision
-- is a leaf of an RFC 6962 Merkle tree, appended in the transaction that stores it.
-- docs/integrity.md specifies the leaf bytes and the hashing.

-- One row per leaf, in log order from 0. `data` is the leaf's canonical JSON, exactly the
-- bytes its leaf hash covers; `record_id`/`revision` find a version's leaf.
CREATE TABLE log_leaves (
    idx       BIGINT PRIMARY KEY,
    kind      TEXT NOT NULL,
    record_id UUID,
    revision  BIGINT,
    data      TEXT NOT NULL
);
CREATE UNIQUE INDEX log_leaves_by_version ON log_leaves (record_id, revision)
    WHERE kind = 'version';
-- The few leaves that are not versions (enrolments, revocations, decisions, rotations), found
-- by kind without reading every version leaf.
CREATE INDEX log_leaves_by_kind ON log_leaves (kind, idx) WHERE kind <> 'version';

-- Every complete subtree's hash (hex), by stored-hash index (Go's sumdb/tlog numbering): a
-- root, inclusion or consistency proof reads O(log n) rows. `verify` trusts none of these.
CREATE TABLE log_hashes (
    idx  BIGINT PRIMARY KEY,
    hash TEXT NOT NULL
);

-- Checkpoints this server signed and handed out (signed notes), newest by size.
CREATE TABLE log_checkpoints (
    size          BIGINT PRIMARY KEY,
    note          TEXT NOT NULL,
    signed_at_utc TIMESTAMPTZ NOT NULL
);

-- Key rotation statements (signed notes by the old key naming the new), oldest first: tablets
-- follow them from the key they pinned.
CREATE TABLE log_key_rotations (
    seq            BIGSERIAL PRIMARY KEY,
    statement      TEXT NOT NULL,
    rotated_at_utc TIMESTAMPTZ NOT NULL
);
