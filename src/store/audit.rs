//! The device audit log: who did what to which record, when. Hash-chained, no clinical text.
//!
//! Each entry's hash is SHA-256 over the previous entry's hash and this entry's fields, so
//! deleting, reordering or editing an entry breaks [`verify_chain`].

use crate::model::Revision;
use chrono::Utc;
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use crate::crypto::sha256_hex;

/// The hash the first entry chains from.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened. Stored as its snake-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    StoreCreated,
    Unlocked,
    /// Re-unlocked after an idle lock with the crew's in-memory quick PIN.
    UnlockedWithPin,
    UserAdded,
    PassphraseChanged,
    DraftSaved,
    Completed,
    Amended,
    Viewed,
    Exported,
    Enrolled,
    Pushed,
    FeedbackReceived,
    Quarantined,
    AmendmentDiscarded,
    /// An observation set, a drug or an intervention was removed from a record being edited
    /// (after the crew confirmed it); the next saved version no longer holds it.
    ObservationSetRemoved,
    DrugRemoved,
    InterventionRemoved,
    /// The server failed to prove its log (sync stopped; records kept on the tablet).
    ServerIntegrityFailed,
}

impl Action {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::StoreCreated => "store_created",
            Action::Unlocked => "unlocked",
            Action::UnlockedWithPin => "unlocked_with_pin",
            Action::UserAdded => "user_added",
            Action::PassphraseChanged => "passphrase_changed",
            Action::DraftSaved => "draft_saved",
            Action::Completed => "completed",
            Action::Amended => "amended",
            Action::Viewed => "viewed",
            Action::Exported => "exported",
            Action::Enrolled => "enrolled",
            Action::Pushed => "pushed",
            Action::FeedbackReceived => "feedback_received",
            Action::Quarantined => "quarantined",
            Action::AmendmentDiscarded => "amendment_discarded",
            Action::ObservationSetRemoved => "observation_set_removed",
            Action::DrugRemoved => "drug_removed",
            Action::InterventionRemoved => "intervention_removed",
            Action::ServerIntegrityFailed => "server_integrity_failed",
        }
    }
}

fn entry_hash(
    prev: &str,
    seq: i64,
    at: &str,
    actor: &str,
    action: &str,
    encounter_id: Option<&str>,
    revision: Option<i64>,
) -> String {
    let line = format!(
        "{prev}|{seq}|{at}|{actor}|{action}|{}|{}",
        encounter_id.unwrap_or(""),
        revision.map(|r| r.to_string()).unwrap_or_default()
    );
    sha256_hex(line.as_bytes())
}

/// Appends an entry inside the caller's transaction.
pub fn append(
    conn: &Connection,
    actor: &str,
    action: Action,
    encounter_id: Option<Uuid>,
    revision: Option<Revision>,
) -> rusqlite::Result<()> {
    let last: Option<(i64, String)> = conn
        .prepare_cached("SELECT seq, entry_hash FROM audit_log ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (seq, prev) = match last {
        Some((s, h)) => (s + 1, h),
        None => (1, GENESIS_HASH.to_owned()),
    };
    let at = Utc::now().to_rfc3339();
    let id = encounter_id.map(|u| u.to_string());
    let rev = revision.map(Revision::to_i64);
    let hash = entry_hash(&prev, seq, &at, actor, action.as_str(), id.as_deref(), rev);
    conn.prepare_cached(
        "INSERT INTO audit_log (seq, at_utc, actor, action, encounter_id, revision, prev_hash, entry_hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![seq, at, actor, action.as_str(), id, rev, prev, hash])?;
    Ok(())
}

/// One audit entry as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub seq: i64,
    pub at_utc: String,
    pub actor: String,
    pub action: String,
    pub encounter_id: Option<String>,
    pub revision: Option<Revision>,
}

/// Re-computes the chain; returns the sequence number of the first broken entry, if any.
pub fn verify_chain(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    let mut stmt = conn.prepare(
        "SELECT seq, at_utc, actor, action, encounter_id, revision, prev_hash, entry_hash
         FROM audit_log ORDER BY seq",
    )?;
    let mut rows = stmt.query([])?;
    let mut prev = GENESIS_HASH.to_owned();
    let mut expected_seq = 1i64;
    while let Some(r) = rows.next()? {
        let seq: i64 = r.get(0)?;
        let at: String = r.get(1)?;
        let actor: String = r.get(2)?;
        let action: String = r.get(3)?;
        let id: Option<String> = r.get(4)?;
        let rev: Option<i64> = r.get(5)?;
        let stored_prev: String = r.get(6)?;
        let stored_hash: String = r.get(7)?;
        let hash = entry_hash(&prev, seq, &at, &actor, &action, id.as_deref(), rev);
        if seq != expected_seq || stored_prev != prev || stored_hash != hash {
            return Ok(Some(seq));
        }
        prev = stored_hash;
        expected_seq += 1;
    }
    Ok(None)
}

impl super::Store {
    /// The audit entries for one record, oldest first.
    pub fn audit_for(&self, encounter_id: Uuid) -> super::Result<Vec<AuditEntry>> {
        let mut stmt = self.conn.prepare(
            "SELECT seq, at_utc, actor, action, encounter_id, revision FROM audit_log
             WHERE encounter_id = ?1 ORDER BY seq",
        )?;
        let rows = stmt.query_map(params![encounter_id.to_string()], |r| {
            Ok(AuditEntry {
                seq: r.get(0)?,
                at_utc: r.get(1)?,
                actor: r.get(2)?,
                action: r.get(3)?,
                encounter_id: r.get(4)?,
                revision: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Checks the whole audit chain; `None` when intact.
    pub fn audit_chain_break(&self) -> super::Result<Option<i64>> {
        Ok(verify_chain(&self.conn)?)
    }

    /// Records that a record was viewed or exported (reads are audited too).
    pub fn record_access(&mut self, action: Action, encounter_id: Uuid) -> super::Result<()> {
        self.audit(action, Some(encounter_id), None)
    }
}
