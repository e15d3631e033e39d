//! Encounters: saving drafts, completing and signing, amending, reading and listing.
//!
//! Each save is one `BEGIN IMMEDIATE` transaction that writes the record's current state, its
//! new version, its outbox entry and an audit entry, or none of them. Signed versions are
//! immutable (the schema's triggers refuse changes); later changes are amendments.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use serde::Serialize;
use uuid::Uuid;

use super::audit::{self, Action};
use super::{Result, Store, StoreError, revision_from_sql};
use crate::crypto::{UserSigner, content_sha256_hex};
use crate::model::{
    Decision, Encounter, News2, RecordStatus, Revision, SignOff, VersionMeta, missing_items,
};

/// What a save committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SaveReceipt {
    pub record_id: Uuid,
    pub revision: Revision,
    pub status: RecordStatus,
}

/// A record's sync badge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncState {
    /// Saved locally, waiting to be pushed.
    Queued,
    /// In a push that has not been answered yet.
    Sending,
    /// The server holds the latest version.
    Synced,
    /// The server refused a version; the crew must look at it.
    NeedsAttention,
}

impl SyncState {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncState::Queued => "queued",
            SyncState::Sending => "sending",
            SyncState::Synced => "synced",
            SyncState::NeedsAttention => "needs_attention",
        }
    }

    /// Parses [`SyncState::as_str`]; unknown text reads as queued (the safe assumption).
    pub fn parse(s: &str) -> Self {
        match s {
            "sending" => SyncState::Sending,
            "synced" => SyncState::Synced,
            "needs_attention" => SyncState::NeedsAttention,
            _ => SyncState::Queued,
        }
    }

    /// The badge text.
    pub fn label(self) -> &'static str {
        match self {
            SyncState::Queued => "queued",
            SyncState::Sending => "sending",
            SyncState::Synced => "synced",
            SyncState::NeedsAttention => "needs attention",
        }
    }
}

/// One row of the encounter list, read from indexed columns without parsing documents.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EncounterSummary {
    pub id: Uuid,
    pub revision: Revision,
    pub incident_number: String,
    pub patient_name: String,
    /// The NHS number's ten digits, when recorded: lets the list search it in memory.
    pub nhs_number: Option<String>,
    pub status: RecordStatus,
    pub created_at_utc: DateTime<Utc>,
    pub updated_at_utc: DateTime<Utc>,
    /// The latest observation set's NEWS2 total, when complete.
    pub latest_news2: Option<u8>,
    /// "NEWS2 5 (medium)", "NEWS2 incomplete (4/7)", ... or empty when no observations.
    pub latest_news2_text: String,
    pub sync_state: SyncState,
    /// The latest supervisor decision (approved, returned, flagged), if any.
    pub review_decision: Option<Decision>,
}

/// Filters for [`Store::list`]. Empty filter: everything, newest first.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Matches patient name, NHS number (spaces ignored) or incident number, case-insensitively.
    pub text: Option<String>,
    pub status: Option<RecordStatus>,
    /// Updated at or after this time.
    pub updated_since: Option<DateTime<Utc>>,
    pub limit: Option<u32>,
    pub offset: Option<u32>,
}

/// Counts for `epr status` and the status bar.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StatusCounts {
    pub encounters: u64,
    pub drafts: u64,
    /// Completed or amended (signed).
    pub completed: u64,
    /// Outbox entries waiting to be pushed (not quarantined).
    pub pending_sync: u64,
    pub quarantined: u64,
    /// Records whose latest decision is [`Decision::Returned`].
    pub returned: u64,
}

/// One stored version, for the history view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionInfo {
    pub revision: Revision,
    pub status: RecordStatus,
    pub content_sha256: String,
    pub signature: Option<String>,
    pub amendment_reason: Option<String>,
    pub saved_at_utc: DateTime<Utc>,
    pub saved_by: String,
    /// The user whose own key signed this version (signature format 2); `None` for drafts and
    /// for versions signed with the tablet's key (format 1).
    pub signer_user_id: Option<Uuid>,
}

pub(crate) fn parse_time(text: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| StoreError::malformed("a stored time is malformed"))
}

fn parse_status(text: &str) -> Result<RecordStatus> {
    RecordStatus::parse(text).ok_or_else(|| StoreError::malformed("a stored status is unknown"))
}

/// Parses a stored supervisor decision; unknown text means the row is damaged.
pub(crate) fn parse_decision(text: &str) -> Result<Decision> {
    Decision::parse(text)
        .ok_or_else(|| StoreError::malformed("a stored review decision is unknown"))
}

fn parse_id(text: &str) -> Result<Uuid> {
    Uuid::parse_str(text).map_err(|_| StoreError::malformed("a stored id is malformed"))
}

impl Store {
    /// Saves the crew's latest edits as a draft. Never runs validation beyond what the model
    /// types enforce: a half-written record is always saveable. Refused for signed records.
    pub fn save_draft(&mut self, encounter: &Encounter) -> Result<SaveReceipt> {
        let mut doc = encounter.clone();
        doc.status = RecordStatus::Draft;
        doc.sign_off = None;
        self.write_version(&doc, None)
    }

    /// Runs the completion check, stamps the sign-off and commits a signed, immutable
    /// version. Fails with [`StoreError::Incomplete`] naming every missing item.
    ///
    /// One transaction: the signed version, its outbox and audit entries and the clearing of
    /// any amendment in progress commit together or not at all.
    pub fn complete_and_sign(
        &mut self,
        encounter: &Encounter,
        clinician_name: &str,
        registration: &str,
    ) -> Result<SaveReceipt> {
        let mac = self.audit_mac();
        let tx = Transaction::new(&mut self.conn, TransactionBehavior::Immediate)?;
        let writer = VersionWriter {
            user: &self.user,
            signer: self.signer.as_ref(),
            mac,
        };
        let receipt = complete_in(&tx, &writer, encounter, clinician_name, registration)?;
        tx.commit()?;
        Ok(receipt)
    }

    /// Signs a change to a completed record as an amendment with `reason`. The earlier
    /// signed versions stay as they were. One transaction, as [`Store::complete_and_sign`].
    pub fn amend(
        &mut self,
        encounter: &Encounter,
        reason: &str,
        clinician_name: &str,
        registration: &str,
    ) -> Result<SaveReceipt> {
        if reason.trim().is_empty() {
            return Err(StoreError::AmendmentNeedsReason);
        }
        let mac = self.audit_mac();
        let tx = Transaction::new(&mut self.conn, TransactionBehavior::Immediate)?;
        let writer = VersionWriter {
            user: &self.user,
            signer: self.signer.as_ref(),
            mac,
        };
        let receipt = match current_status(&tx, encounter.id)? {
            Some(s) if s.is_signed() => {
                let mut doc = encounter.clone();
                doc.status = RecordStatus::Amended;
                doc.amendment_reason = Some(reason.trim().to_owned());
                doc.sign_off = Some(SignOff {
                    clinician_name: clinician_name.trim().to_owned(),
                    registration: registration.trim().to_owned(),
                    signed_at_utc: Utc::now(),
                });
                check_complete(&doc)?;
                let receipt = writer.write(&tx, &doc, Some(reason.trim()))?;
                clear_amendment_draft(&tx, doc.id)?;
                receipt
            }
            Some(_) => complete_in(&tx, &writer, encounter, clinician_name, registration)?,
            None => return Err(StoreError::NotFound),
        };
        tx.commit()?;
        Ok(receipt)
    }

    /// Keeps unsigned edits to a signed record safe (autosave while amending). Stored locally
    /// only, never pushed, cleared when the amendment is signed.
    pub fn save_amendment_draft(&mut self, encounter: &Encounter) -> Result<()> {
        let json = serde_json::to_string(encounter)?;
        let n = self.conn.execute(
            "UPDATE encounters SET amendment_draft = ?2 WHERE id = ?1",
            params![encounter.id.to_string(), json],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// The unsigned amendment in progress for a record, if any.
    pub fn amendment_draft(&self, id: Uuid) -> Result<Option<Encounter>> {
        let text: Option<Option<String>> = self
            .conn
            .query_row(
                "SELECT amendment_draft FROM encounters WHERE id = ?1",
                params![id.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        match text.flatten() {
            Some(t) => Ok(Some(serde_json::from_str(&t)?)),
            None => Ok(None),
        }
    }

    /// Throws away an unsigned amendment in progress; the signed versions are untouched.
    /// Clearing it and its audit entry are one transaction.
    pub fn discard_amendment_draft(&mut self, id: Uuid) -> Result<()> {
        let mac = self.audit_mac();
        let tx = Transaction::new(&mut self.conn, TransactionBehavior::Immediate)?;
        let present: Option<bool> = tx
            .query_row(
                "SELECT amendment_draft IS NOT NULL FROM encounters WHERE id = ?1",
                params![id.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        if present != Some(true) {
            return Ok(());
        }
        clear_amendment_draft(&tx, id)?;
        audit::append(
            &tx,
            &mac,
            &self.user,
            Action::AmendmentDiscarded,
            Some(id),
            None,
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Saves one version in its own transaction (drafts).
    fn write_version(
        &mut self,
        doc: &Encounter,
        amendment_reason: Option<&str>,
    ) -> Result<SaveReceipt> {
        let mac = self.audit_mac();
        let tx = Transaction::new(&mut self.conn, TransactionBehavior::Immediate)?;
        let receipt = VersionWriter {
            user: &self.user,
            signer: self.signer.as_ref(),
            mac,
        }
        .write(&tx, doc, amendment_reason)?;
        tx.commit()?;
        Ok(receipt)
    }

    /// The current state of one record.
    pub fn get(&self, id: Uuid) -> Result<Encounter> {
        let text: String = self
            .conn
            .query_row(
                "SELECT document FROM encounters WHERE id = ?1",
                params![id.to_string()],
                |r| r.get(0),
            )
            .optional()?
            .ok_or(StoreError::NotFound)?;
        serde_json::from_str(&text).map_err(StoreError::from)
    }

    /// The summary row of one record.
    pub fn summary(&self, id: Uuid) -> Result<EncounterSummary> {
        let mut rows = self.query_summaries(
            "WHERE id = :id",
            &[(":id", &id.to_string() as &dyn rusqlite::ToSql)],
            1,
            0,
        )?;
        rows.pop().ok_or(StoreError::NotFound)
    }

    /// One stored version's document.
    pub fn version(&self, id: Uuid, revision: Revision) -> Result<Encounter> {
        let text: String = self
            .conn
            .query_row(
                "SELECT document FROM encounter_versions WHERE encounter_id = ?1 AND revision = ?2",
                params![id.to_string(), revision],
                |r| r.get(0),
            )
            .optional()?
            .ok_or(StoreError::NotFound)?;
        serde_json::from_str(&text).map_err(StoreError::from)
    }

    /// Every version of a record, oldest first (metadata only).
    pub fn versions(&self, id: Uuid) -> Result<Vec<VersionInfo>> {
        let mut stmt = self.conn.prepare(
            "SELECT revision, status, content_sha256, signature, amendment_reason, saved_at_utc, saved_by,
                    signer_user_id
             FROM encounter_versions WHERE encounter_id = ?1 ORDER BY revision",
        )?;
        let rows = stmt.query_map(params![id.to_string()], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, Option<String>>(7)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (rev, status, hash, sig, reason, at, by, signer) = row?;
            out.push(VersionInfo {
                revision: revision_from_sql(rev)?,
                status: parse_status(&status)?,
                content_sha256: hash,
                signature: sig,
                amendment_reason: reason,
                saved_at_utc: parse_time(&at)?,
                saved_by: by,
                signer_user_id: signer
                    .map(|s| {
                        Uuid::parse_str(&s)
                            .map_err(|_| StoreError::malformed("a stored signer id is malformed"))
                    })
                    .transpose()?,
            });
        }
        Ok(out)
    }

    /// One version with the metadata an export or a reviewer needs (latest when `revision`
    /// is `None`).
    pub fn version_for_export(
        &self,
        id: Uuid,
        revision: Option<Revision>,
    ) -> Result<(Encounter, VersionMeta)> {
        let versions = self.versions(id)?;
        let info = match revision {
            Some(r) => versions.into_iter().find(|v| v.revision == r),
            None => versions.into_iter().last(),
        }
        .ok_or(StoreError::NotFound)?;
        let doc = self.version(id, info.revision)?;
        let signer = match info.signer_user_id {
            Some(user_id) => self.signer_identity(user_id)?,
            None => None,
        };
        let meta = VersionMeta {
            revision: info.revision,
            status: info.status,
            content_sha256: info.content_sha256,
            signature: info.signature,
            device_public_key: self.signing_key().ok().map(|k| k.public_key_base64()),
            saved_at_utc: info.saved_at_utc,
            signer,
        };
        Ok((doc, meta))
    }

    /// Every record with a signed version, and its latest signed revision, by record id.
    pub fn latest_signed_revisions(&self) -> Result<Vec<(Uuid, Revision)>> {
        let mut stmt = self.conn.prepare(
            "SELECT encounter_id, max(revision) FROM encounter_versions
             WHERE status != 'draft' GROUP BY encounter_id ORDER BY encounter_id",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, revision) = row?;
            out.push((
                Uuid::parse_str(&id)
                    .map_err(|_| StoreError::malformed("a stored id is malformed"))?,
                revision_from_sql(revision)?,
            ));
        }
        Ok(out)
    }

    /// A signer's public identity as registered on this tablet.
    pub fn signer_identity(&self, user_id: Uuid) -> Result<Option<crate::crypto::SignerIdentity>> {
        let row: Option<(String, String, String)> = self
            .conn
            .query_row(
                "SELECT user_name, public_key, tablet_id FROM signers WHERE user_id = ?1",
                params![user_id.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        row.map(|(user_name, public_key, tablet)| {
            Ok(crate::crypto::SignerIdentity {
                user_id,
                user_name,
                public_key,
                tablet_id: Uuid::parse_str(&tablet)
                    .map_err(|_| StoreError::malformed("a stored tablet id is malformed"))?,
            })
        })
        .transpose()
    }

    /// Lists records newest first, filtered on indexed columns only.
    pub fn list(&self, filter: &ListFilter) -> Result<Vec<EncounterSummary>> {
        let mut clauses = Vec::new();
        let text_pattern;
        let nhs_pattern;
        let status_text;
        let since_text;
        let mut args: Vec<(&str, &dyn rusqlite::ToSql)> = Vec::new();
        if let Some(text) = filter
            .text
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            text_pattern = format!("%{}%", escape_like(&text.to_lowercase()));
            let digits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
            nhs_pattern = format!("%{}%", escape_like(&digits));
            clauses.push(
                "(patient_name_lower LIKE :text ESCAPE '\\' OR incident_number_lower LIKE :text ESCAPE '\\'
                  OR nhs_number LIKE :nhs ESCAPE '\\')",
            );
            args.push((":text", &text_pattern));
            args.push((":nhs", &nhs_pattern));
        }
        if let Some(status) = filter.status {
            status_text = status.as_str();
            clauses.push("status = :status");
            args.push((":status", &status_text));
        }
        if let Some(since) = filter.updated_since {
            since_text = since.to_rfc3339();
            clauses.push("updated_at_utc >= :since");
            args.push((":since", &since_text));
        }
        let where_sql = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        self.query_summaries(
            &where_sql,
            &args,
            filter.limit.unwrap_or(u32::MAX),
            filter.offset.unwrap_or(0),
        )
    }

    fn query_summaries(
        &self,
        where_sql: &str,
        args: &[(&str, &dyn rusqlite::ToSql)],
        limit: u32,
        offset: u32,
    ) -> Result<Vec<EncounterSummary>> {
        let sql = format!(
            "SELECT id, revision, incident_number, patient_name, status, created_at_utc, updated_at_utc,
                    latest_news2, latest_news2_text, sync_state, review_decision, nhs_number
             FROM encounters {where_sql}
             ORDER BY updated_at_utc DESC, id DESC LIMIT {limit} OFFSET {offset}"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(args, |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, Option<i64>>(7)?,
                r.get::<_, String>(8)?,
                r.get::<_, String>(9)?,
                r.get::<_, Option<String>>(10)?,
                r.get::<_, Option<String>>(11)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, rev, inc, name, status, created, updated, news, news_text, sync, review, nhs) =
                row?;
            out.push(EncounterSummary {
                id: parse_id(&id)?,
                revision: revision_from_sql(rev)?,
                incident_number: inc,
                patient_name: name,
                nhs_number: nhs,
                status: parse_status(&status)?,
                created_at_utc: parse_time(&created)?,
                updated_at_utc: parse_time(&updated)?,
                latest_news2: news.and_then(|n| u8::try_from(n).ok()),
                latest_news2_text: news_text,
                sync_state: SyncState::parse(&sync),
                review_decision: review.as_deref().map(parse_decision).transpose()?,
            });
        }
        Ok(out)
    }

    /// Counts for the status bar and `epr status`.
    pub fn status_counts(&self) -> Result<StatusCounts> {
        let (encounters, drafts, completed, returned): (i64, i64, i64, i64) = self.conn.query_row(
            "SELECT count(*),
                    coalesce(sum(status = 'draft'), 0),
                    coalesce(sum(status != 'draft'), 0),
                    coalesce(sum(review_decision = 'returned'), 0)
             FROM encounters",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?;
        let (pending, quarantined): (i64, i64) = self.conn.query_row(
            "SELECT coalesce(sum(quarantined_reason IS NULL), 0),
                    coalesce(sum(quarantined_reason IS NOT NULL), 0)
             FROM outbox",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(StatusCounts {
            encounters: count(encounters),
            drafts: count(drafts),
            completed: count(completed),
            pending_sync: count(pending),
            quarantined: count(quarantined),
            returned: count(returned),
        })
    }
}

/// What a version write needs from the store besides the transaction: who saves and their key
/// that signs. Split from [`Store`] so an operation can hold the transaction and this at once.
struct VersionWriter<'a> {
    user: &'a str,
    signer: Option<&'a UserSigner>,
    mac: audit::AuditMac,
}

impl VersionWriter<'_> {
    /// Writes the record's current state, its new version, its outbox entry and an audit
    /// entry inside the caller's transaction. Every save goes through here.
    fn write(
        &self,
        tx: &Transaction<'_>,
        doc: &Encounter,
        amendment_reason: Option<&str>,
    ) -> Result<SaveReceipt> {
        let value = serde_json::to_value(doc)?;
        let document = serde_json::to_string(&value)?;
        let content_sha256 = content_sha256_hex(&value);
        // Microseconds: the precision the server keeps and a format-2 signature covers.
        let now = chrono::SubsecRound::trunc_subsecs(Utc::now(), 6);
        let now_text = now.to_rfc3339();
        let id_text = doc.id.to_string();
        let latest = doc.latest_news2();
        let latest_total = latest.and_then(|n| n.total()).map(i64::from);
        let latest_text = latest.as_ref().map(News2::display).unwrap_or_default();
        let patient_name = doc.patient.display_name();
        let nhs = doc
            .patient
            .nhs_number
            .as_ref()
            .map(|n| n.as_str().to_owned());
        let user = self.user;

        let previous: Option<(i64, String)> = tx
            .query_row(
                "SELECT revision, status FROM encounters WHERE id = ?1",
                params![id_text],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if previous.is_none() && super::retention::tablet_state_in(tx)?.refuses_new_records() {
            return Err(StoreError::TabletRetiring);
        }
        if let Some((_, status)) = &previous
            && parse_status(status)?.is_signed()
            && !doc.status.is_signed()
        {
            return Err(StoreError::Immutable);
        }
        let revision = match &previous {
            Some((r, _)) => revision_from_sql(*r)?
                .next()
                .ok_or_else(|| StoreError::malformed("a stored revision is out of range"))?,
            None => Revision::FIRST,
        };
        // Signed by the clinician's own key (signature format 2), never the tablet's.
        let (signature, signer_user_id) = if doc.status.is_signed() {
            let signer = self.signer.ok_or(StoreError::SignerUnavailable)?;
            let signature =
                signer.sign_version(doc.id, revision, doc.status.as_str(), &content_sha256, now)?;
            (Some(signature), Some(signer.user_id().to_string()))
        } else {
            (None, None)
        };
        tx.execute(
            "INSERT INTO encounters (id, revision, status, incident_number, incident_number_lower,
                 patient_name, patient_name_lower, nhs_number, latest_news2, latest_news2_text,
                 created_at_utc, updated_at_utc, document, sync_state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 'queued')
             ON CONFLICT (id) DO UPDATE SET
                 revision = excluded.revision, status = excluded.status,
                 incident_number = excluded.incident_number,
                 incident_number_lower = excluded.incident_number_lower,
                 patient_name = excluded.patient_name,
                 patient_name_lower = excluded.patient_name_lower,
                 nhs_number = excluded.nhs_number, latest_news2 = excluded.latest_news2,
                 latest_news2_text = excluded.latest_news2_text,
                 updated_at_utc = excluded.updated_at_utc, document = excluded.document,
                 sync_state = CASE WHEN encounters.sync_state = 'needs_attention'
                                   THEN 'needs_attention' ELSE 'queued' END,
                 -- A returned record that the crew has signed again is no longer waiting for
                 -- them: it waits for the supervisor. The decision stays in `feedback`.
                 review_decision = CASE WHEN excluded.status != 'draft'
                                         AND encounters.review_decision = 'returned'
                                        THEN NULL ELSE encounters.review_decision END,
                 review_comment = CASE WHEN excluded.status != 'draft'
                                        AND encounters.review_decision = 'returned'
                                       THEN NULL ELSE encounters.review_comment END",
            params![
                id_text,
                revision,
                doc.status.as_str(),
                doc.incident.incident_number.trim(),
                doc.incident.incident_number.trim().to_lowercase(),
                patient_name,
                patient_name.to_lowercase(),
                nhs,
                latest_total,
                latest_text,
                doc.created_at_utc.to_rfc3339(),
                now_text,
                document,
            ],
        )?;
        tx.execute(
            "INSERT INTO encounter_versions (encounter_id, revision, status, document, content_sha256,
                 signature, amendment_reason, saved_at_utc, saved_by, signer_user_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                id_text,
                revision,
                doc.status.as_str(),
                document,
                content_sha256,
                signature,
                amendment_reason,
                now_text,
                user,
                signer_user_id
            ],
        )?;
        // Coalesce: any unsent draft entry is superseded by this save. Signed entries stay.
        tx.execute(
            "DELETE FROM outbox WHERE encounter_id = ?1 AND kind = 'draft'",
            params![id_text],
        )?;
        tx.execute(
            "INSERT INTO outbox (encounter_id, revision, kind, enqueued_at_utc) VALUES (?1, ?2, ?3, ?4)",
            params![
                id_text,
                revision,
                if doc.status.is_signed() { "signed" } else { "draft" },
                now_text
            ],
        )?;
        let action = match doc.status {
            RecordStatus::Draft => Action::DraftSaved,
            RecordStatus::Completed => Action::Completed,
            RecordStatus::Amended => Action::Amended,
        };
        audit::append(tx, &self.mac, user, action, Some(doc.id), Some(revision))?;
        Ok(SaveReceipt {
            record_id: doc.id,
            revision,
            status: doc.status,
        })
    }
}

/// Completion and signing inside the caller's transaction (see [`Store::complete_and_sign`]).
fn complete_in(
    tx: &Transaction<'_>,
    writer: &VersionWriter<'_>,
    encounter: &Encounter,
    clinician_name: &str,
    registration: &str,
) -> Result<SaveReceipt> {
    let mut doc = encounter.clone();
    doc.sign_off = Some(SignOff {
        clinician_name: clinician_name.trim().to_owned(),
        registration: registration.trim().to_owned(),
        signed_at_utc: Utc::now(),
    });
    if current_status(tx, doc.id)?.is_some_and(RecordStatus::is_signed) {
        return Err(StoreError::Immutable);
    }
    doc.status = RecordStatus::Completed;
    doc.amendment_reason = None;
    check_complete(&doc)?;
    let receipt = writer.write(tx, &doc, None)?;
    clear_amendment_draft(tx, doc.id)?;
    Ok(receipt)
}

fn clear_amendment_draft(conn: &Connection, id: Uuid) -> Result<()> {
    conn.execute(
        "UPDATE encounters SET amendment_draft = NULL WHERE id = ?1",
        params![id.to_string()],
    )?;
    Ok(())
}

fn check_complete(doc: &Encounter) -> Result<()> {
    let missing = missing_items(doc);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(StoreError::Incomplete(
            missing.iter().map(|m| m.label.to_owned()).collect(),
        ))
    }
}

fn current_status(conn: &Connection, id: Uuid) -> Result<Option<RecordStatus>> {
    let s: Option<String> = conn
        .query_row(
            "SELECT status FROM encounters WHERE id = ?1",
            params![id.to_string()],
            |r| r.get(0),
        )
        .optional()?;
    s.map(|s| parse_status(&s)).transpose()
}

/// A row count from SQLite (never negative).
fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

#[cfg(test)]
mod tests {
    //! Each public operation is one transaction: a failure injected at its last step (a TEMP
    //! trigger that aborts, living only on this connection) must leave no half behind.

    use super::*;
    use crate::crypto::KdfParams;
    use crate::demo::complete_encounter;
    use crate::model::revision::rev;

    /// Everything an operation could change about one record.
    #[derive(Debug, PartialEq)]
    struct Snapshot {
        status: String,
        revision: i64,
        versions: i64,
        outbox: Vec<(i64, String)>,
        audit_entries: i64,
        amendment_draft: bool,
    }

    fn snapshot(store: &Store, id: Uuid) -> Snapshot {
        let id = id.to_string();
        let (status, revision, amendment_draft) = store
            .conn
            .query_row(
                "SELECT status, revision, amendment_draft IS NOT NULL FROM encounters WHERE id = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        let count = |sql: &str| -> i64 { store.conn.query_row(sql, [], |r| r.get(0)).unwrap() };
        let mut stmt = store
            .conn
            .prepare("SELECT revision, kind FROM outbox WHERE encounter_id = ?1 ORDER BY revision")
            .unwrap();
        let outbox = stmt
            .query_map(params![id], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<Vec<_>>>()
            .unwrap();
        Snapshot {
            status,
            revision,
            versions: count("SELECT count(*) FROM encounter_versions"),
            outbox,
            audit_entries: count("SELECT count(*) FROM audit_log"),
            amendment_draft,
        }
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create_with(
            dir.path(),
            "crew",
            "test passphrase",
            KdfParams::FAST_FOR_TESTS,
            super::super::migrate::latest_version(),
        )
        .unwrap();
        (dir, store)
    }

    /// Makes the next write matching `when` on `table` fail, as a full disk or a bug would.
    fn fail_on(store: &Store, event: &str, table: &str, when: &str) {
        store
            .conn
            .execute_batch(&format!(
                "CREATE TEMP TRIGGER injected_failure BEFORE {event} ON main.{table}
                 WHEN {when} BEGIN SELECT RAISE(ABORT, 'injected failure'); END;"
            ))
            .unwrap();
    }

    fn heal(store: &Store) {
        store
            .conn
            .execute_batch("DROP TRIGGER temp.injected_failure")
            .unwrap();
    }

    const CLEARING_THE_AMENDMENT: &str =
        "OLD.amendment_draft IS NOT NULL AND NEW.amendment_draft IS NULL";

    #[test]
    fn signing_that_fails_at_clearing_the_amendment_leaves_the_draft_as_it_was() {
        let (_dir, mut store) = store();
        let e = complete_encounter();
        store.save_draft(&e).unwrap();
        store.save_amendment_draft(&e).unwrap();
        let before = snapshot(&store, e.id);

        fail_on(
            &store,
            "UPDATE OF amendment_draft",
            "encounters",
            CLEARING_THE_AMENDMENT,
        );
        assert!(store.complete_and_sign(&e, "A Medic", "PA12345").is_err());
        assert_eq!(snapshot(&store, e.id), before);

        heal(&store);
        let receipt = store.complete_and_sign(&e, "A Medic", "PA12345").unwrap();
        assert_eq!(receipt.status, RecordStatus::Completed);
        assert!(!snapshot(&store, e.id).amendment_draft);
    }

    #[test]
    fn signing_whose_audit_entry_fails_commits_no_signed_version() {
        let (_dir, mut store) = store();
        let e = complete_encounter();
        store.save_draft(&e).unwrap();
        let before = snapshot(&store, e.id);

        fail_on(&store, "INSERT", "audit_log", "NEW.action = 'completed'");
        assert!(store.complete_and_sign(&e, "A Medic", "PA12345").is_err());
        assert_eq!(snapshot(&store, e.id), before);
        assert_eq!(store.audit_chain_break().unwrap(), None);
    }

    #[test]
    fn an_amendment_that_fails_at_clearing_its_draft_leaves_no_new_version() {
        let (_dir, mut store) = store();
        let e = complete_encounter();
        store.complete_and_sign(&e, "A Medic", "PA12345").unwrap();
        let mut changed = e.clone();
        changed.notes.push_str(" Pain reassessed.");
        store.save_amendment_draft(&changed).unwrap();
        let before = snapshot(&store, e.id);

        fail_on(
            &store,
            "UPDATE OF amendment_draft",
            "encounters",
            CLEARING_THE_AMENDMENT,
        );
        assert!(
            store
                .amend(&changed, "Pain score added", "A Medic", "PA12345")
                .is_err()
        );
        assert_eq!(snapshot(&store, e.id), before);
        assert_eq!(store.versions(e.id).unwrap().len(), 1);

        heal(&store);
        let receipt = store
            .amend(&changed, "Pain score added", "A Medic", "PA12345")
            .unwrap();
        assert_eq!(receipt.status, RecordStatus::Amended);
        assert!(!snapshot(&store, e.id).amendment_draft);
    }

    #[test]
    fn an_amendment_whose_audit_entry_fails_leaves_no_new_version() {
        let (_dir, mut store) = store();
        let e = complete_encounter();
        store.complete_and_sign(&e, "A Medic", "PA12345").unwrap();
        let before = snapshot(&store, e.id);

        fail_on(&store, "INSERT", "audit_log", "NEW.action = 'amended'");
        assert!(store.amend(&e, "Typo", "A Medic", "PA12345").is_err());
        assert_eq!(snapshot(&store, e.id), before);
    }

    #[test]
    fn discarding_an_amendment_whose_audit_entry_fails_keeps_the_amendment() {
        let (_dir, mut store) = store();
        let e = complete_encounter();
        store.complete_and_sign(&e, "A Medic", "PA12345").unwrap();
        store.save_amendment_draft(&e).unwrap();
        let before = snapshot(&store, e.id);

        fail_on(
            &store,
            "INSERT",
            "audit_log",
            "NEW.action = 'amendment_discarded'",
        );
        assert!(store.discard_amendment_draft(e.id).is_err());
        assert_eq!(snapshot(&store, e.id), before);
        assert!(store.amendment_draft(e.id).unwrap().is_some());

        heal(&store);
        store.discard_amendment_draft(e.id).unwrap();
        let after = snapshot(&store, e.id);
        assert!(!after.amendment_draft);
        assert_eq!(after.audit_entries, before.audit_entries + 1);
    }

    #[test]
    fn a_damaged_stored_revision_is_refused_not_wrapped() {
        use super::super::revision_from_sql;
        assert_eq!(revision_from_sql(7).unwrap(), rev(7));
        assert!(revision_from_sql(-1).is_err());

        let (_dir, mut store) = store();
        let e = complete_encounter();
        store.save_draft(&e).unwrap();
        store
            .conn
            .execute("UPDATE encounter_versions SET revision = -1", [])
            .unwrap();
        assert!(matches!(store.versions(e.id), Err(StoreError::Document(_))));
    }
}
