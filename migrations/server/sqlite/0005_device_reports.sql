-- What each tablet still holds, as it last reported (every sync), and its retirement.
ALTER TABLE devices ADD COLUMN pending INTEGER;
ALTER TABLE devices ADD COLUMN oldest_pending_utc TEXT;
ALTER TABLE devices ADD COLUMN held_versions INTEGER;
ALTER TABLE devices ADD COLUMN app_version TEXT;
ALTER TABLE devices ADD COLUMN verified_tree_size INTEGER;
ALTER TABLE devices ADD COLUMN reported_at_utc TEXT;
-- `retire-device`: the tablet sends what it holds, takes no new records, and is refused once
-- it reports nothing left to send (retired_at_utc, with revoked_at_utc).
ALTER TABLE devices ADD COLUMN retiring_at_utc TEXT;
ALTER TABLE devices ADD COLUMN retired_at_utc TEXT;
