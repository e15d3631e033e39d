-- Retention: a signed version may leave the tablet only after the server acknowledged it and
-- proved it is in its log (inside a checkpoint this tablet verified), and then only once the
-- trust's retention window has passed since. The triggers below hold that line whatever code
-- runs: nothing unacknowledged is ever deleted.

-- When the server acknowledged this version (RFC 3339 UTC, microseconds, `Z`), and the size
-- of the verified checkpoint that proved its inclusion. Both NULL while it is queued; signed
-- versions only.
ALTER TABLE encounter_versions ADD COLUMN acknowledged_at_utc TEXT;
ALTER TABLE encounter_versions ADD COLUMN proved_in_tree_size INTEGER;

-- A signed version's content never changes. The one update allowed is recording, once, its
-- acknowledgement and the checkpoint that proved it. (A later migration adding a column to
-- encounter_versions must add it here.)
DROP TRIGGER signed_versions_are_immutable;
CREATE TRIGGER signed_versions_are_immutable
BEFORE UPDATE ON encounter_versions
WHEN OLD.status != 'draft' AND NOT (
        NEW.encounter_id IS OLD.encounter_id
    AND NEW.revision IS OLD.revision
    AND NEW.status IS OLD.status
    AND NEW.document IS OLD.document
    AND NEW.content_sha256 IS OLD.content_sha256
    AND NEW.signature IS OLD.signature
    AND NEW.amendment_reason IS OLD.amendment_reason
    AND NEW.saved_at_utc IS OLD.saved_at_utc
    AND NEW.saved_by IS OLD.saved_by
    AND NEW.signer_user_id IS OLD.signer_user_id
    AND (OLD.acknowledged_at_utc IS NULL OR NEW.acknowledged_at_utc IS OLD.acknowledged_at_utc)
    AND (OLD.proved_in_tree_size IS NULL OR NEW.proved_in_tree_size IS OLD.proved_in_tree_size)
)
BEGIN
    SELECT RAISE(ABORT, 'signed versions are immutable');
END;

-- A signed version is deleted only once acknowledged, proved and out of the outbox.
DROP TRIGGER signed_versions_are_kept;
CREATE TRIGGER signed_versions_are_kept
BEFORE DELETE ON encounter_versions
WHEN OLD.status != 'draft' AND (
       OLD.acknowledged_at_utc IS NULL
    OR OLD.proved_in_tree_size IS NULL
    OR EXISTS (
        SELECT 1 FROM outbox o
        WHERE o.encounter_id = OLD.encounter_id AND o.revision = OLD.revision
    )
)
BEGIN
    SELECT RAISE(ABORT, 'signed versions are kept until the server has proved it holds them');
END;

-- Versions acknowledged before this migration were never proved to be in a log this tablet
-- verified: they count as acknowledged (not pending) but are never purged. (After the triggers:
-- the new one allows this one write.)
UPDATE encounter_versions
SET acknowledged_at_utc = strftime('%Y-%m-%dT%H:%M:%S.000000Z', 'now')
WHERE status != 'draft'
  AND NOT EXISTS (
      SELECT 1 FROM outbox o
      WHERE o.encounter_id = encounter_versions.encounter_id
        AND o.revision = encounter_versions.revision
  );
