//! The device audit log: who did what to which record, when. Hash-chained, no clinical text.
//!
//! Each entry's hash covers the previous entry's hash and this entry's fields, so deleting,
//! reordering or editing an entry breaks [`verify_chain`]. Entries are written in format 2:
//! HMAC-SHA256 over the entry as canonical JSON, under a key derived from the store's database
//! key, so no one without the store key can rebuild a chain after editing it. (Format 1,
//! unkeyed SHA-256 over `|`-joined fields, is how stores made earlier began their chains; it
//! still verifies, and never follows a format 2 entry.) The chain's head is reported to the
//! server with each sync and logged there, so a device audit cut short afterwards no longer
//! holds the head the server logged ([`super::Store::audit_holds`]).

use crate::model::Revision;
use chrono::Utc;
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use crate::crypto::{DatabaseKey, canonical_json, sha256_hex};

/// The device schema version that records each entry's hash format.
const KEYED_AUDIT_SCHEMA: i64 = 3;

/// How entries are hashed: keyed (format 2) when the store has a database key.
#[derive(Clone)]
pub enum AuditMac {
    /// Format 1 in a schema from before formats were recorded (a store still at an earlier
    /// version, as tests of upgrades make).
    Legacy,
    /// Format 1, for a store without a key (the plain benchmark store).
    Unkeyed,
    Keyed(ring::hmac::Key),
}

impl AuditMac {
    /// The MAC for a store opened with `key`: HMAC-SHA256 under HMAC-SHA256(store key,
    /// "ambulance-epr/device-audit/v2"), so the audit key is never the database key itself.
    pub fn for_store(key: Option<&DatabaseKey>) -> Self {
        match key {
            None => AuditMac::Unkeyed,
            Some(k) => {
                let root = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, k.as_bytes());
                let derived = ring::hmac::sign(&root, b"ambulance-epr/device-audit/v2");
                AuditMac::Keyed(ring::hmac::Key::new(
                    ring::hmac::HMAC_SHA256,
                    derived.as_ref(),
                ))
            }
        }
    }

    fn format(&self) -> i64 {
        match self {
            AuditMac::Legacy | AuditMac::Unkeyed => 1,
            AuditMac::Keyed(_) => 2,
        }
    }
}

/// The fields an entry's hash covers.
struct Chained<'a> {
    prev: &'a str,
    seq: i64,
    at: &'a str,
    actor: &'a str,
    action: &'a str,
    encounter_id: Option<&'a str>,
    revision: Option<i64>,
}

impl Chained<'_> {
    /// Format 1 (`key` absent): SHA-256 over the `|`-joined fields. Format 2: HMAC-SHA256
    /// under `key` over the entry's canonical JSON.
    fn digest(&self, key: Option<&ring::hmac::Key>) -> String {
        match key {
            None => {
                let line = format!(
                    "{}|{}|{}|{}|{}|{}|{}",
                    self.prev,
                    self.seq,
                    self.at,
                    self.actor,
                    self.action,
                    self.encounter_id.unwrap_or(""),
                    self.revision.map(|r| r.to_string()).unwrap_or_default()
                );
                sha256_hex(line.as_bytes())
            }
            Some(key) => {
                let v = serde_json::json!({
                    "prev": self.prev,
                    "seq": self.seq,
                    "at": self.at,
                    "actor": self.actor,
                    "action": self.action,
                    "encounter_id": self.encounter_id,
                    "revision": self.revision,
                });
                hex::encode(ring::hmac::sign(key, &canonical_json(&v)).as_ref())
            }
        }
    }
}

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
    /// A record the server had acknowledged and proved left the tablet at the end of the
    /// trust's retention window.
    Purged,
    /// A crew member signed on to the shift with their own secret (the actor is them).
    CrewSignedIn,
    /// The crew on shift was cleared.
    ShiftEnded,
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
            Action::Purged => "purged",
            Action::CrewSignedIn => "crew_signed_in",
            Action::ShiftEnded => "shift_ended",
        }
    }
}

/// Appends an entry inside the caller's transaction.
pub fn append(
    conn: &Connection,
    mac: &AuditMac,
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
    let key = match mac {
        AuditMac::Legacy | AuditMac::Unkeyed => None,
        AuditMac::Keyed(k) => Some(k),
    };
    let hash = Chained {
        prev: &prev,
        seq,
        at: &at,
        actor,
        action: action.as_str(),
        encounter_id: id.as_deref(),
        revision: rev,
    }
    .digest(key);
    if matches!(mac, AuditMac::Legacy) {
        conn.prepare_cached(
            "INSERT INTO audit_log (seq, at_utc, actor, action, encounter_id, revision, prev_hash, entry_hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![seq, at, actor, action.as_str(), id, rev, prev, hash])?;
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT INTO audit_log (seq, at_utc, actor, action, encounter_id, revision, prev_hash,
             entry_hash, hash_format)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        seq,
        at,
        actor,
        action.as_str(),
        id,
        rev,
        prev,
        hash,
        mac.format()
    ])?;
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
/// A keyed entry without the key to check it, or an unkeyed entry after a keyed one, is a
/// break.
pub fn verify_chain(conn: &Connection, mac: &AuditMac) -> rusqlite::Result<Option<i64>> {
    let mut stmt = conn.prepare(if matches!(mac, AuditMac::Legacy) {
        "SELECT seq, at_utc, actor, action, encounter_id, revision, prev_hash, entry_hash, 1
         FROM audit_log ORDER BY seq"
    } else {
        "SELECT seq, at_utc, actor, action, encounter_id, revision, prev_hash, entry_hash,
             hash_format
         FROM audit_log ORDER BY seq"
    })?;
    let mut highest_format = 1i64;
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
        let format: i64 = r.get(8)?;
        let entry = Chained {
            prev: &prev,
            seq,
            at: &at,
            actor: &actor,
            action: &action,
            encounter_id: id.as_deref(),
            revision: rev,
        };
        // Format 1 only before any keyed entry; format 2 only with the store's key.
        let hash = match (format, mac) {
            (1, _) if highest_format == 1 => Some(entry.digest(None)),
            (2, AuditMac::Keyed(k)) => {
                highest_format = 2;
                Some(entry.digest(Some(k)))
            }
            _ => None,
        };
        if seq != expected_seq || stored_prev != prev || hash.as_deref() != Some(&stored_hash) {
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
        Ok(verify_chain(&self.conn, &self.audit_mac())?)
    }

    /// The audit chain's newest entry: `(seq, hash)`, as reported to the server with each sync.
    pub fn audit_head(&self) -> super::Result<Option<(i64, String)>> {
        Ok(self
            .conn
            .query_row(
                "SELECT seq, entry_hash FROM audit_log ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// Whether the audit chain still holds the entry `seq` with `hash` (a head this store
    /// reported to the server): false when the log was cut short or rewritten since.
    pub fn audit_holds(&self, seq: i64, hash: &str) -> super::Result<bool> {
        let stored: Option<String> = self
            .conn
            .query_row(
                "SELECT entry_hash FROM audit_log WHERE seq = ?1",
                params![seq],
                |r| r.get(0),
            )
            .optional()?;
        Ok(stored.as_deref() == Some(hash) && self.audit_chain_break()?.is_none())
    }

    /// The MAC new audit entries are written with (format 1 in a schema from before
    /// formats were recorded).
    pub(crate) fn audit_mac(&self) -> AuditMac {
        match super::migrate::current_version(&self.conn) {
            Ok(v) if v >= KEYED_AUDIT_SCHEMA => AuditMac::for_store(self.key.as_ref()),
            _ => AuditMac::Legacy,
        }
    }

    /// Records that a record was viewed or exported (reads are audited too).
    pub fn record_access(&mut self, action: Action, encounter_id: Uuid) -> super::Result<()> {
        self.audit(action, Some(encounter_id), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::migrate::migrate_to(&mut conn, super::super::migrate::latest_version())
            .unwrap();
        conn
    }

    fn keyed(byte: u8) -> AuditMac {
        AuditMac::for_store(Some(&DatabaseKey::from_bytes([byte; 32])))
    }

    #[test]
    fn a_keyed_chain_holds_only_under_its_key_and_breaks_when_edited() {
        let conn = db();
        // Entries from before the keyed format, then keyed ones.
        append(
            &conn,
            &AuditMac::Unkeyed,
            "crew",
            Action::StoreCreated,
            None,
            None,
        )
        .unwrap();
        for _ in 0..3 {
            append(&conn, &keyed(7), "crew", Action::Unlocked, None, None).unwrap();
        }
        assert_eq!(verify_chain(&conn, &keyed(7)).unwrap(), None);
        // Without the store's key the keyed entries cannot be checked (or rebuilt).
        assert_eq!(verify_chain(&conn, &keyed(8)).unwrap(), Some(2));
        assert_eq!(verify_chain(&conn, &AuditMac::Unkeyed).unwrap(), Some(2));

        conn.execute("UPDATE audit_log SET actor = 'someone' WHERE seq = 3", [])
            .unwrap();
        assert_eq!(verify_chain(&conn, &keyed(7)).unwrap(), Some(3));
    }

    #[test]
    fn an_unkeyed_entry_after_a_keyed_one_is_a_break() {
        let conn = db();
        append(&conn, &keyed(7), "crew", Action::StoreCreated, None, None).unwrap();
        // Someone without the key appends an entry they can compute: format 1.
        append(
            &conn,
            &AuditMac::Unkeyed,
            "crew",
            Action::Viewed,
            None,
            None,
        )
        .unwrap();
        assert_eq!(verify_chain(&conn, &keyed(7)).unwrap(), Some(2));
    }
}
