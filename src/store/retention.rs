//! What the tablet holds, and when a signed record may leave it.
//!
//! Owns the retention rule: a signed version stays on the tablet until the server has
//! acknowledged it **and** proved it is in a checkpoint this tablet verified, and then for the
//! trust's retention window (default [`DEFAULT_RETENTION_DAYS`]). Only whole records leave:
//! every version of the record must have passed that line, nothing of it may be queued, and no
//! amendment may be in progress or asked for (a record returned by a supervisor stays). The
//! device schema's triggers refuse the deletion of any signed version that is unacknowledged,
//! unproved or still queued, whatever code asks for it.

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde::Serialize;
use uuid::Uuid;

use super::audit::{self, Action};
use super::encounters::parse_time;
use super::{Result, Store, StoreError, revision_from_sql};

/// How long a proved record stays on the tablet when the trust has not said otherwise.
pub const DEFAULT_RETENTION_DAYS: u32 = 30;
/// The shortest and longest windows a trust may set: at least a day, so a misconfigured
/// server cannot empty its tablets as soon as they sync, and at most ten years.
pub const RETENTION_DAYS_RANGE: std::ops::RangeInclusive<u32> = 1..=3650;
/// Setting key of the trust's retention window, in days (sent by the server).
const RETENTION_DAYS: &str = "retention_days";

/// Setting key of the tablet's state as the server last gave it.
const TABLET_STATE: &str = "tablet_state";

/// Where the tablet is in its working life, as the server last said.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TabletState {
    #[default]
    Active,
    /// Sending what it holds; takes no new records.
    Retiring,
    /// Everything it held reached the server; the server refuses it now.
    Retired,
}

impl TabletState {
    fn as_str(self) -> &'static str {
        match self {
            TabletState::Active => "active",
            TabletState::Retiring => "retiring",
            TabletState::Retired => "retired",
        }
    }

    /// True when the tablet may not start new records.
    pub fn refuses_new_records(self) -> bool {
        self != TabletState::Active
    }
}

/// The tablet's state inside a transaction (the save path checks it before a new record).
pub(crate) fn tablet_state_in(conn: &rusqlite::Connection) -> Result<TabletState> {
    let text: Option<String> = conn
        .prepare_cached("SELECT value FROM device_settings WHERE key = ?1")?
        .query_row(params![TABLET_STATE], |r| r.get(0))
        .optional()?;
    Ok(match text.as_deref() {
        Some("retiring") => TabletState::Retiring,
        Some("retired") => TabletState::Retired,
        _ => TabletState::Active,
    })
}

/// Times this module writes: RFC 3339 UTC with microseconds and `Z`, so that text order is
/// time order.
pub(crate) fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// What the tablet holds, for `epr status --json` and the report each sync sends.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Holdings {
    /// Signed versions on this tablet, acknowledged or not.
    pub held_versions: u64,
    /// Outbox entries not yet acknowledged (quarantined ones included).
    pub pending: u64,
    /// When the oldest version still waiting for the server's acknowledgement was saved.
    pub oldest_unacknowledged_utc: Option<DateTime<Utc>>,
}

/// What one purge removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PurgeReport {
    pub records: u64,
    pub versions: u64,
}

impl Store {
    /// The trust's retention window in days, or the default.
    pub fn retention_days(&self) -> Result<u32> {
        Ok(self
            .setting(RETENTION_DAYS)?
            .and_then(|t| t.parse::<u32>().ok())
            .filter(|d| RETENTION_DAYS_RANGE.contains(d))
            .unwrap_or(DEFAULT_RETENTION_DAYS))
    }

    /// Keeps the trust's retention window. A value outside [`RETENTION_DAYS_RANGE`] is
    /// refused and the window stays as it was.
    pub fn set_retention_days(&self, days: u32) -> Result<()> {
        if !RETENTION_DAYS_RANGE.contains(&days) {
            return Err(StoreError::malformed(
                "a retention window outside 1 to 3650 days",
            ));
        }
        self.set_setting(RETENTION_DAYS, &days.to_string())
    }

    /// The tablet's state as the server last gave it.
    pub fn tablet_state(&self) -> Result<TabletState> {
        tablet_state_in(&self.conn)
    }

    /// Keeps the tablet's state from the server's answer.
    pub fn set_tablet_state(&self, state: TabletState) -> Result<()> {
        self.set_setting(TABLET_STATE, state.as_str())
    }

    /// Counts what the tablet holds and what still waits for the server.
    pub fn holdings(&self) -> Result<Holdings> {
        let held: i64 = self.conn.query_row(
            "SELECT count(*) FROM encounter_versions WHERE status != 'draft'",
            [],
            |r| r.get(0),
        )?;
        let pending: i64 = self
            .conn
            .query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))?;
        // Compared as times, not text: saved times are written with varying precision.
        let mut stmt = self.conn.prepare_cached(
            "SELECT v.saved_at_utc FROM outbox o
             JOIN encounter_versions v
               ON v.encounter_id = o.encounter_id AND v.revision = o.revision",
        )?;
        let mut rows = stmt.query([])?;
        let mut oldest_unacknowledged_utc: Option<DateTime<Utc>> = None;
        while let Some(row) = rows.next()? {
            let t = parse_time(&row.get::<_, String>(0)?)?;
            oldest_unacknowledged_utc = Some(oldest_unacknowledged_utc.map_or(t, |m| m.min(t)));
        }
        Ok(Holdings {
            held_versions: u64::try_from(held).unwrap_or(0),
            pending: u64::try_from(pending).unwrap_or(0),
            oldest_unacknowledged_utc,
        })
    }

    /// Removes whole records whose every signed version the server acknowledged and proved at
    /// least `window` before `now`, with nothing queued, no amendment in progress and no
    /// return by a supervisor waiting for the crew. One transaction; each record removed is
    /// audited (without content). Drafts are never purged.
    pub fn purge_expired(
        &mut self,
        now: DateTime<Utc>,
        window: chrono::Duration,
    ) -> Result<PurgeReport> {
        let cutoff = time_text(now - window);
        let user = self.user.clone();
        let mac = self.audit_mac();
        let tx = rusqlite::Transaction::new(&mut self.conn, TransactionBehavior::Immediate)?;
        let expired: Vec<(String, i64)> = {
            let mut stmt = tx.prepare(
                "SELECT e.id, e.revision FROM encounters e
                 WHERE e.status != 'draft'
                   AND e.amendment_draft IS NULL
                   AND coalesce(e.review_decision, '') != 'returned'
                   AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.encounter_id = e.id)
                   AND EXISTS (SELECT 1 FROM encounter_versions v
                               WHERE v.encounter_id = e.id AND v.status != 'draft')
                   AND NOT EXISTS (
                       SELECT 1 FROM encounter_versions v
                       WHERE v.encounter_id = e.id AND v.status != 'draft'
                         AND (v.acknowledged_at_utc IS NULL
                              OR v.proved_in_tree_size IS NULL
                              OR v.acknowledged_at_utc > ?1))",
            )?;
            let rows = stmt.query_map(params![cutoff], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let mut report = PurgeReport::default();
        for (id, revision) in expired {
            let versions = tx
                .prepare_cached("DELETE FROM encounter_versions WHERE encounter_id = ?1")?
                .execute(params![id])?;
            tx.prepare_cached("DELETE FROM feedback WHERE encounter_id = ?1")?
                .execute(params![id])?;
            tx.prepare_cached("DELETE FROM encounters WHERE id = ?1")?
                .execute(params![id])?;
            report.records += 1;
            report.versions += versions as u64;
            let record = Uuid::parse_str(&id).ok();
            audit::append(
                &tx,
                &mac,
                &user,
                Action::Purged,
                record,
                Some(revision_from_sql(revision)?),
            )?;
        }
        tx.commit()?;
        Ok(report)
    }

    /// The server was rebuilt from its tablets and took this tablet back: in one transaction,
    /// queues every signed version still held to be sent again (with its original signature
    /// and times; revisions in order), marks every clinician's key to be registered again, and
    /// keeps `settings` (the new token, the rebuilt log's checkpoint, which rebuilt log this
    /// is). Returns how many versions were queued.
    pub fn rejoin_rebuilt_log(&mut self, settings: &[(&str, &str)]) -> Result<u64> {
        let now = time_text(Utc::now());
        let tx = rusqlite::Transaction::new(&mut self.conn, TransactionBehavior::Immediate)?;
        let queued = tx.execute(
            "INSERT INTO outbox (encounter_id, revision, kind, enqueued_at_utc)
             SELECT v.encounter_id, v.revision, 'signed', ?1 FROM encounter_versions v
             WHERE v.status != 'draft'
               AND NOT EXISTS (SELECT 1 FROM outbox o
                               WHERE o.encounter_id = v.encounter_id AND o.revision = v.revision)
             ORDER BY v.encounter_id, v.revision",
            params![now],
        )?;
        tx.execute(
            "UPDATE encounters SET sync_state = 'queued'
             WHERE sync_state = 'synced'
               AND EXISTS (SELECT 1 FROM outbox o WHERE o.encounter_id = encounters.id)",
            [],
        )?;
        tx.execute(
            "UPDATE signers SET registered_at_utc = NULL WHERE registered_at_utc IS NOT NULL",
            [],
        )?;
        // The rebuilt server numbers its decisions afresh: the lost server's cursors move below
        // every cursor held (keeping their order), and feedback is read from the start again.
        let (lowest, highest): (i64, i64) = tx.query_row(
            "SELECT coalesce(min(cursor), 0), coalesce(max(cursor), 0) FROM feedback",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        tx.execute(
            "UPDATE feedback SET cursor = cursor + ?1 WHERE cursor > 0",
            params![lowest.min(0) - highest - 1],
        )?;
        tx.execute(
            "INSERT INTO device_settings (key, value) VALUES (?1, '0')
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![super::outbox::FEEDBACK_CURSOR],
        )?;
        for (key, value) in settings {
            tx.execute(
                "INSERT INTO device_settings (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )?;
        }
        tx.commit()?;
        Ok(queued as u64)
    }

    /// When the server acknowledged this version and the size of the checkpoint that proved
    /// it, as stored (`None` while it waits).
    pub fn acknowledgement_of(
        &self,
        record_id: Uuid,
        revision: crate::model::Revision,
    ) -> Result<Option<(DateTime<Utc>, Option<u64>)>> {
        let row: Option<(Option<String>, Option<i64>)> = self
            .conn
            .query_row(
                "SELECT acknowledged_at_utc, proved_in_tree_size FROM encounter_versions
                 WHERE encounter_id = ?1 AND revision = ?2",
                params![record_id.to_string(), revision],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        match row {
            Some((Some(at), size)) => Ok(Some((
                parse_time(&at)?,
                size.and_then(|s| u64::try_from(s).ok()),
            ))),
            _ => Ok(None),
        }
    }
}
