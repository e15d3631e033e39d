-- The audit chain's entries are keyed from here on (format 2: HMAC-SHA256 over canonical JSON
-- under a key derived from the store key); entries written before keep format 1.
ALTER TABLE audit_log ADD COLUMN hash_format INTEGER NOT NULL DEFAULT 1;
