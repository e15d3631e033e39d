-- Accounts, sessions and login limits (security review, issue 11).
-- Failed logins are counted per username AND client address, so one address cannot lock a
-- supervisor out for everyone else; the rows are transient, so the old table is replaced.
DROP TABLE login_failures;
CREATE TABLE login_failures (
    username            TEXT NOT NULL,
    client              TEXT NOT NULL,
    failures            INTEGER NOT NULL,
    last_failure_at_utc TEXT NOT NULL,
    PRIMARY KEY (username, client)
);

-- A disabled account cannot log in and has no sessions.
ALTER TABLE users ADD COLUMN disabled_at_utc TEXT;

-- The sliding idle timeout: a session unused for longer than the limit is refused.
ALTER TABLE sessions ADD COLUMN last_used_at_utc TEXT;
CREATE INDEX sessions_by_user ON sessions (username);

-- When the device last called the API (updated at most once a minute).
ALTER TABLE devices ADD COLUMN last_seen_utc TEXT;

-- One key, one active device (an administrator may enrol a revoked device's key again only
-- with a new code).
CREATE UNIQUE INDEX devices_by_public_key ON devices (public_key) WHERE revoked_at_utc IS NULL;
