//! The sync outbox and the supervisor feedback that comes back.
//!
//! An outbox row means "record X must reach the server at revision R or later". An entry is
//! removed only by [`Store::acknowledge`], after the server has said it committed exactly that
//! revision; a save made while a push is in flight has a higher revision and a row of its own,
//! so a late acknowledgement can never hide it.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde::Serialize;
use uuid::Uuid;

use super::audit::{self, Action};
use super::encounters::{parse_decision, parse_time};
use super::{Result, Store, StoreError, revision_from_sql};
use crate::model::{Decision, RecordStatus, Revision};

/// One version waiting to be pushed, with everything the push needs.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    pub record_id: Uuid,
    pub revision: Revision,
    pub status: RecordStatus,
    /// The document JSON exactly as stored and hashed.
    pub document: String,
    pub content_sha256: String,
    pub signature: Option<String>,
    /// The user whose own key signed (signature format 2).
    pub signer_user_id: Option<Uuid>,
    pub saved_at_utc: DateTime<Utc>,
    /// Where this entry sits in the queue, for reading the entries after it.
    pub position: OutboxPosition,
}

/// A position in the outbox's order (enqueue time, record, revision).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxPosition {
    enqueued_at_utc: String,
    record_id: String,
    revision: i64,
}

/// A supervisor decision received from the server.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeedbackEntry {
    pub cursor: i64,
    pub record_id: Uuid,
    pub revision: Revision,
    pub decision: Decision,
    pub comment: String,
    pub decided_by: String,
    pub decided_at_utc: DateTime<Utc>,
}

/// Setting key of the feedback cursor.
pub(super) const FEEDBACK_CURSOR: &str = "feedback_cursor";
/// Setting key of the last successful sync.
const LAST_SYNC: &str = "last_sync_utc";

/// A user's signing key registration, as sent to the server until it has logged it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSigner {
    pub identity: crate::crypto::SignerIdentity,
    /// Base64 signature by the user's key over its registration statement.
    pub proof: String,
}

impl Store {
    /// Users' signing keys the server has not yet acknowledged, oldest first.
    pub fn unregistered_signers(&self) -> Result<Vec<PendingSigner>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT user_id, user_name, public_key, tablet_id, proof FROM signers
             WHERE registered_at_utc IS NULL ORDER BY created_at_utc, user_id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (user_id, user_name, public_key, tablet_id, proof) = row?;
            let parse = |text: &str| {
                Uuid::parse_str(text)
                    .map_err(|_| StoreError::malformed("a stored signer is malformed"))
            };
            out.push(PendingSigner {
                identity: crate::crypto::SignerIdentity {
                    user_id: parse(&user_id)?,
                    user_name,
                    public_key,
                    tablet_id: parse(&tablet_id)?,
                },
                proof,
            });
        }
        Ok(out)
    }

    /// Marks every signer unregistered, so each is registered again through a new enrolment.
    pub fn forget_signer_registrations(&self) -> Result<()> {
        self.conn.execute(
            "UPDATE signers SET registered_at_utc = NULL WHERE registered_at_utc IS NOT NULL",
            [],
        )?;
        Ok(())
    }

    /// Notes that the server logged these signers' registrations.
    pub fn mark_signers_registered(&mut self, user_ids: &[Uuid]) -> Result<()> {
        let now = Utc::now().to_rfc3339();
        let tx = self.conn.transaction()?;
        for id in user_ids {
            tx.prepare_cached(
                "UPDATE signers SET registered_at_utc = ?2 WHERE user_id = ?1 AND registered_at_utc IS NULL",
            )?
            .execute(params![id.to_string(), now])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The oldest pending (not quarantined) outbox entries, at most `max_items` and, after the
    /// first, at most `max_bytes` of documents.
    pub fn outbox_batch(&self, max_items: usize, max_bytes: usize) -> Result<Vec<OutboxItem>> {
        self.outbox_batch_after(None, max_items, max_bytes)
    }

    /// As [`Store::outbox_batch`], but only entries after `after` in queue order: lets the
    /// sync engine read the next batch while the previous one is still in flight.
    pub fn outbox_batch_after(
        &self,
        after: Option<&OutboxPosition>,
        max_items: usize,
        max_bytes: usize,
    ) -> Result<Vec<OutboxItem>> {
        let (at, id, rev) = match after {
            Some(p) => (p.enqueued_at_utc.as_str(), p.record_id.as_str(), p.revision),
            None => ("", "", -1),
        };
        let mut stmt = self.conn.prepare_cached(
            "SELECT o.encounter_id, o.revision, v.status, v.document, v.content_sha256, v.signature,
                    v.saved_at_utc, o.enqueued_at_utc, v.signer_user_id
             FROM outbox o
             JOIN encounter_versions v ON v.encounter_id = o.encounter_id AND v.revision = o.revision
             WHERE o.quarantined_reason IS NULL
               AND (o.enqueued_at_utc, o.encounter_id, o.revision) > (?2, ?3, ?4)
             ORDER BY o.enqueued_at_utc, o.encounter_id, o.revision
             LIMIT ?1",
        )?;
        let limit = i64::try_from(max_items).unwrap_or(i64::MAX);
        let mut rows = stmt.query(params![limit, at, id, rev])?;
        let mut out = Vec::new();
        let mut bytes = 0usize;
        while let Some(r) = rows.next()? {
            let document: String = r.get(3)?;
            if !out.is_empty() && bytes + document.len() > max_bytes {
                break;
            }
            bytes += document.len();
            let id: String = r.get(0)?;
            let revision: i64 = r.get(1)?;
            let status: String = r.get(2)?;
            let at: String = r.get(6)?;
            out.push(OutboxItem {
                record_id: Uuid::parse_str(&id)
                    .map_err(|_| StoreError::malformed("a stored id is malformed"))?,
                revision: revision_from_sql(revision)?,
                status: RecordStatus::parse(&status)
                    .ok_or_else(|| StoreError::malformed("a stored status is unknown"))?,
                document,
                content_sha256: r.get(4)?,
                signature: r.get(5)?,
                signer_user_id: r
                    .get::<_, Option<String>>(8)?
                    .map(|s| {
                        Uuid::parse_str(&s)
                            .map_err(|_| StoreError::malformed("a stored signer id is malformed"))
                    })
                    .transpose()?,
                saved_at_utc: parse_time(&at)?,
                position: OutboxPosition {
                    enqueued_at_utc: r.get(7)?,
                    record_id: id,
                    revision,
                },
            });
        }
        Ok(out)
    }

    /// Marks records as being sent (for the badge). Cleared by acknowledge or
    /// [`Store::release_sending`].
    pub fn mark_sending(&mut self, ids: &[Uuid]) -> Result<()> {
        let tx = self.conn.transaction()?;
        for id in ids {
            tx.prepare_cached("UPDATE encounters SET sync_state = 'sending' WHERE id = ?1 AND sync_state = 'queued'")?
                .execute(params![id.to_string()])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Puts records left "sending" by a failed or interrupted push back to "queued".
    pub fn release_sending(&mut self) -> Result<()> {
        self.conn.execute(
            "UPDATE encounters SET sync_state = 'queued' WHERE sync_state = 'sending'",
            [],
        )?;
        Ok(())
    }

    /// The server committed `revision` of `record_id` (stored, duplicate or stale): remove
    /// exactly that outbox entry. The record shows "synced" only when nothing else is queued.
    pub fn acknowledge(&mut self, record_id: Uuid, revision: Revision) -> Result<()> {
        self.acknowledge_many(&[(record_id, revision)])
    }

    /// [`Store::acknowledge`] for a whole batch in one transaction. The versions count as
    /// acknowledged but not proved: retention keeps them for good (see
    /// [`Store::acknowledge_proved`]).
    pub fn acknowledge_many(&mut self, acks: &[(Uuid, Revision)]) -> Result<()> {
        self.acknowledge_in(acks, None)
    }

    /// Acknowledges versions whose inclusion the tablet has checked against a checkpoint it
    /// verified, of `tree_size` leaves: from now on retention may purge them once the trust's
    /// window has passed.
    pub fn acknowledge_proved(&mut self, acks: &[(Uuid, Revision)], tree_size: u64) -> Result<()> {
        self.acknowledge_in(acks, Some(tree_size))
    }

    fn acknowledge_in(&mut self, acks: &[(Uuid, Revision)], proved_in: Option<u64>) -> Result<()> {
        let user = self.user.clone();
        let mac = self.audit_mac();
        let now = super::retention::time_text(Utc::now());
        let proved_in = proved_in.and_then(|n| i64::try_from(n).ok());
        let tx = rusqlite::Transaction::new(&mut self.conn, TransactionBehavior::Immediate)?;
        for (record_id, revision) in acks {
            let id = record_id.to_string();
            let removed = tx
                .prepare_cached("DELETE FROM outbox WHERE encounter_id = ?1 AND revision = ?2")?
                .execute(params![id, *revision])?;
            tx.prepare_cached(
                "UPDATE encounter_versions
                 SET acknowledged_at_utc = coalesce(acknowledged_at_utc, ?3),
                     proved_in_tree_size = coalesce(proved_in_tree_size, ?4)
                 WHERE encounter_id = ?1 AND revision = ?2 AND status != 'draft'
                   AND (acknowledged_at_utc IS NULL OR (proved_in_tree_size IS NULL AND ?4 IS NOT NULL))",
            )?
            .execute(params![id, *revision, now, proved_in])?;
            let (remaining, quarantined): (i64, i64) = tx
                .prepare_cached("SELECT count(*), count(quarantined_reason) FROM outbox WHERE encounter_id = ?1")?
                .query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            let state = if quarantined > 0 {
                "needs_attention"
            } else if remaining == 0 {
                "synced"
            } else {
                "queued"
            };
            // Only a change of state rewrites the row (it carries the whole document).
            tx.prepare_cached(
                "UPDATE encounters SET sync_state = ?2 WHERE id = ?1 AND sync_state IS NOT ?2",
            )?
            .execute(params![id, state])?;
            if removed > 0 {
                audit::append(
                    &tx,
                    &mac,
                    &user,
                    Action::Pushed,
                    Some(*record_id),
                    Some(*revision),
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The server refused this version: hold it back with the server's reason and show the
    /// record as needing attention. Other records keep draining.
    pub fn quarantine(&mut self, record_id: Uuid, revision: Revision, reason: &str) -> Result<()> {
        let user = self.user.clone();
        let mac = self.audit_mac();
        let tx = self.conn.transaction()?;
        tx.execute(
            "UPDATE outbox SET quarantined_reason = ?3 WHERE encounter_id = ?1 AND revision = ?2",
            params![record_id.to_string(), revision, reason],
        )?;
        tx.execute(
            "UPDATE encounters SET sync_state = 'needs_attention' WHERE id = ?1",
            params![record_id.to_string()],
        )?;
        audit::append(
            &tx,
            &mac,
            &user,
            Action::Quarantined,
            Some(record_id),
            Some(revision),
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Quarantined entries with their reasons, for the "needs attention" list.
    pub fn quarantined(&self) -> Result<Vec<(Uuid, Revision, String)>> {
        let mut stmt = self.conn.prepare(
            "SELECT encounter_id, revision, quarantined_reason FROM outbox
             WHERE quarantined_reason IS NOT NULL ORDER BY enqueued_at_utc",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, rev, reason) = row?;
            if let Ok(id) = Uuid::parse_str(&id) {
                out.push((id, revision_from_sql(rev)?, reason));
            }
        }
        Ok(out)
    }

    /// Puts quarantined entries back in the queue (after the crew or ops fixed the cause).
    pub fn retry_quarantined(&mut self) -> Result<u64> {
        let tx = self.conn.transaction()?;
        let n = tx.execute(
            "UPDATE outbox SET quarantined_reason = NULL WHERE quarantined_reason IS NOT NULL",
            [],
        )?;
        tx.execute(
            "UPDATE encounters SET sync_state = 'queued'
             WHERE sync_state = 'needs_attention'
               AND id IN (SELECT encounter_id FROM outbox)",
            [],
        )?;
        tx.commit()?;
        Ok(n as u64)
    }

    /// Stores supervisor decisions and moves the feedback cursor, in one transaction.
    /// Decisions for records this device does not hold are kept in the history only.
    pub fn apply_feedback(&mut self, items: &[FeedbackEntry], next_cursor: i64) -> Result<usize> {
        let user = self.user.clone();
        let mac = self.audit_mac();
        let tx = rusqlite::Transaction::new(&mut self.conn, TransactionBehavior::Immediate)?;
        let mut applied = 0;
        for f in items {
            // A decision already held (from a server since rebuilt, which sends it again under
            // a new cursor) is not taken twice.
            let inserted = tx.execute(
                "INSERT OR IGNORE INTO feedback (cursor, encounter_id, revision, decision, comment, decided_by, decided_at_utc)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7
                 WHERE NOT EXISTS (SELECT 1 FROM feedback
                                   WHERE encounter_id = ?2 AND revision = ?3 AND decision = ?4
                                     AND comment = ?5 AND decided_by = ?6 AND decided_at_utc = ?7)",
                params![
                    f.cursor,
                    f.record_id.to_string(),
                    f.revision,
                    f.decision.as_str(),
                    f.comment,
                    f.decided_by,
                    f.decided_at_utc.to_rfc3339()
                ],
            )?;
            if inserted == 0 {
                continue;
            }
            applied += 1;
            tx.execute(
                "UPDATE encounters SET review_decision = ?2, review_comment = ?3, review_revision = ?4
                 WHERE id = ?1 AND (review_revision IS NULL OR review_revision <= ?4)",
                params![
                    f.record_id.to_string(),
                    f.decision.as_str(),
                    f.comment,
                    f.revision
                ],
            )?;
            audit::append(
                &tx,
                &mac,
                &user,
                Action::FeedbackReceived,
                Some(f.record_id),
                Some(f.revision),
            )?;
        }
        tx.execute(
            "INSERT INTO device_settings (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![FEEDBACK_CURSOR, next_cursor.to_string()],
        )?;
        tx.commit()?;
        Ok(applied)
    }

    /// The feedback cursor to send next (0 at first).
    pub fn feedback_cursor(&self) -> Result<i64> {
        Ok(self
            .setting(FEEDBACK_CURSOR)?
            .and_then(|s| s.parse().ok())
            .unwrap_or(0))
    }

    /// Every decision received, in the order received.
    pub fn all_feedback(&self) -> Result<Vec<FeedbackEntry>> {
        let mut stmt = self
            .conn
            .prepare("SELECT DISTINCT encounter_id FROM feedback ORDER BY encounter_id")?;
        let ids = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        let mut out = Vec::new();
        for id in ids {
            let id = Uuid::parse_str(&id)
                .map_err(|_| StoreError::malformed("a stored id is malformed"))?;
            out.extend(self.feedback_for(id)?);
        }
        out.sort_by_key(|f| f.cursor);
        Ok(out)
    }

    /// Every decision received for a record, oldest first.
    pub fn feedback_for(&self, record_id: Uuid) -> Result<Vec<FeedbackEntry>> {
        let mut stmt = self.conn.prepare(
            "SELECT cursor, revision, decision, comment, decided_by, decided_at_utc FROM feedback
             WHERE encounter_id = ?1 ORDER BY cursor",
        )?;
        let rows = stmt.query_map(params![record_id.to_string()], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (cursor, rev, decision, comment, by, at) = row?;
            out.push(FeedbackEntry {
                cursor,
                record_id,
                revision: revision_from_sql(rev)?,
                decision: parse_decision(&decision)?,
                comment,
                decided_by: by,
                decided_at_utc: parse_time(&at)?,
            });
        }
        Ok(out)
    }

    /// The latest decision and comment on a record, if any.
    pub fn review_of(&self, record_id: Uuid) -> Result<Option<(Decision, String)>> {
        let row: Option<(Option<String>, Option<String>)> = self
            .conn
            .query_row(
                "SELECT review_decision, review_comment FROM encounters WHERE id = ?1",
                params![record_id.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(match row {
            Some((Some(d), c)) => Some((parse_decision(&d)?, c.unwrap_or_default())),
            _ => None,
        })
    }

    /// Records the time of a successful sync cycle.
    pub fn set_last_sync(&self, at: DateTime<Utc>) -> Result<()> {
        self.set_setting(LAST_SYNC, &at.to_rfc3339())
    }

    /// The time of the last successful sync cycle.
    pub fn last_sync(&self) -> Result<Option<DateTime<Utc>>> {
        match self.setting(LAST_SYNC)? {
            Some(t) => Ok(Some(parse_time(&t)?)),
            None => Ok(None),
        }
    }
}
