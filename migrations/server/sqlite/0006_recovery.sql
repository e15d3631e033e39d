-- A server rebuilt from its tablets (`epr-server serve --recover`): the earlier log's last
-- checkpoint the trust kept, and that log's entries from the trust's copy. Returning tablets
-- prove who they are against its enrolments; `recovery-report` counts what came back.
CREATE TABLE recovery (
    id                  INTEGER PRIMARY KEY CHECK (id = 1),
    expected_checkpoint TEXT NOT NULL,
    recovered_at_utc    TEXT NOT NULL
);

CREATE TABLE recovery_leaves (
    leaf_index BIGINT PRIMARY KEY,
    data       TEXT NOT NULL
);
