//! The backend-neutral core of server storage: every rule, written once.
//!
//! Owns what the database must decide, whichever database it is: push outcomes (owner, stale,
//! duplicate, conflict) including several versions of one record in one batch, decision
//! preconditions, decision counts, the audit events each operation appends, how audit entries
//! chain, the migration step, and the conversions between the API's types and stored columns.
//!
//! A backend implements [`Tx`]: one database transaction, as a set of small operations that
//! each hold only SQL text and row mapping. The functions here run an operation on a `Tx`; the
//! backend begins the transaction, calls one of them, and commits if it returned `Ok`
//! (dropping the transaction on `Err` rolls it back). The core never sees SQL.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::*;
use crate::model::{RecordStatus, Revision};
use crate::protocol::{Decision, DecisionCounts, DecisionRecord, FeedbackItem, ReviewSummary};
use crate::transparency::{
    HashMapReader, Leaf, LogHash, frontier_indexes, hash_from_hex, hash_hex, leaf_hash, leaf_time,
};

/// Whether a transaction writes. Writers are serialised (SQLite: `BEGIN IMMEDIATE`;
/// PostgreSQL: the advisory lock taken by [`Tx::lock_for_ordering`]); readers are not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TxKind {
    Read,
    Write,
}

/// An enrolment code as stored.
#[derive(Debug, Clone)]
pub(crate) struct EnrolmentCodeRow {
    /// The name the administrator gave the device.
    pub device_name: String,
    pub expires_at_utc: DateTime<Utc>,
    pub used: bool,
}

/// A record's owner and highest revision held, as push needs them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordHead {
    pub record_id: Uuid,
    pub device_id: Uuid,
    pub latest_revision: Revision,
}

/// One database transaction, as the core needs it. Implementations hold SQL and row mapping
/// only: every decision about what to write is made by the functions in this module.
///
/// Batch operations take slices so a backend can send each as one statement
/// (PostgreSQL: `unnest` arrays); SQLite, being in-process, loops over a cached statement.
#[allow(async_fn_in_trait)]
pub(crate) trait Tx {
    /// Serialises this transaction's remaining steps with every other writer's. Called before
    /// the first step whose result depends on commit order (audit chain, decision cursors,
    /// enrolment codes); a no-op where the transaction already holds the write lock.
    async fn lock_for_ordering(&mut self) -> Result<(), StorageError>;

    async fn migration_applied(&mut self, version: u32) -> Result<bool, StorageError>;
    /// Runs a migration's SQL and records it as applied.
    async fn apply_migration(
        &mut self,
        version: u32,
        name: &str,
        sql: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError>;

    async fn insert_enrolment_code(
        &mut self,
        code_hash: &str,
        device_name: &str,
        now: DateTime<Utc>,
        expires_at_utc: DateTime<Utc>,
    ) -> Result<(), StorageError>;
    async fn enrolment_code(
        &mut self,
        code_hash: &str,
    ) -> Result<Option<EnrolmentCodeRow>, StorageError>;
    /// Marks an unused code used by `device_id`; false if it was already used.
    async fn claim_enrolment_code(
        &mut self,
        code_hash: &str,
        device_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError>;
    async fn insert_device(
        &mut self,
        d: &NewDevice,
        device_name: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError>;
    /// True if an unrevoked device holds this public key.
    async fn active_device_has_key(&mut self, public_key_b64: &str) -> Result<bool, StorageError>;
    async fn touch_device(
        &mut self,
        device_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError>;
    async fn list_devices(&mut self) -> Result<Vec<DeviceSummary>, StorageError>;
    async fn device_by_token_hash(
        &mut self,
        token_hash: &str,
    ) -> Result<Option<DeviceIdentity>, StorageError>;
    /// Keeps a tablet's latest report of what it holds.
    async fn record_device_report(
        &mut self,
        device_id: Uuid,
        report: &crate::protocol::DeviceReport,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError>;
    /// A device's retirement and revocation, or `None` if there is no such device.
    async fn device_lifecycle(
        &mut self,
        device_id: Uuid,
    ) -> Result<Option<DeviceLifecycle>, StorageError>;
    async fn mark_device_retiring(
        &mut self,
        device_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError>;
    /// Sets the retirement time and the revocation time (unless one is set).
    async fn mark_device_retired(
        &mut self,
        device_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError>;
    /// Replaces a device's token (a tablet back at a rebuilt server).
    async fn set_device_token(
        &mut self,
        device_id: Uuid,
        token_hash: &str,
    ) -> Result<(), StorageError>;
    /// Keeps the lost log a rebuilt server started from.
    async fn insert_recovery(&mut self, record: &RecoveryRecord) -> Result<(), StorageError>;
    async fn recovery(&mut self) -> Result<Option<RecoveryRecord>, StorageError>;
    /// Sets the revocation time unless one is set; false if there is no such device.
    async fn mark_device_revoked(
        &mut self,
        device_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError>;

    /// False if the username is taken.
    async fn insert_user(
        &mut self,
        username: &str,
        role: Role,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError>;
    async fn user_by_name(&mut self, username: &str) -> Result<Option<UserRecord>, StorageError>;
    async fn login_failures(
        &mut self,
        username: &str,
        client: &str,
    ) -> Result<Option<LoginFailures>, StorageError>;
    /// Adds one failure and returns the new count.
    async fn increment_login_failures(
        &mut self,
        username: &str,
        client: &str,
        now: DateTime<Utc>,
    ) -> Result<i64, StorageError>;
    /// Clears one client's failures for `username`, or every client's when `client` is `None`.
    async fn clear_login_failures(
        &mut self,
        username: &str,
        client: Option<&str>,
    ) -> Result<(), StorageError>;
    /// Sets or clears the disabled time; false if there is no such account.
    async fn set_user_disabled(
        &mut self,
        username: &str,
        disabled_at_utc: Option<DateTime<Utc>>,
    ) -> Result<bool, StorageError>;
    /// False if there is no such account.
    async fn set_user_password(
        &mut self,
        username: &str,
        password_hash: &str,
    ) -> Result<bool, StorageError>;
    async fn list_users(&mut self, now: DateTime<Utc>) -> Result<Vec<UserSummary>, StorageError>;
    /// Deletes the session with this token hash; returns how many were deleted (0 or 1).
    async fn delete_session(&mut self, token_hash: &str) -> Result<u64, StorageError>;
    /// Deletes every session of `username`; returns how many.
    async fn delete_user_sessions(&mut self, username: &str) -> Result<u64, StorageError>;
    async fn touch_session(
        &mut self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError>;
    async fn delete_expired_sessions(&mut self, now: DateTime<Utc>) -> Result<(), StorageError>;
    async fn insert_session(
        &mut self,
        token_hash: &str,
        user: &UserRecord,
        role: Role,
        now: DateTime<Utc>,
        expires_at_utc: DateTime<Utc>,
    ) -> Result<(), StorageError>;
    async fn session_by_token_hash(
        &mut self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionIdentity>, StorageError>;

    /// Creates a `records` row owned by `device_id` for each id not yet held, with that
    /// revision as its latest. Ids are distinct.
    async fn claim_records(
        &mut self,
        device_id: Uuid,
        new: &[(Uuid, Revision)],
    ) -> Result<(), StorageError>;
    async fn record_heads(&mut self, ids: &[Uuid]) -> Result<Vec<RecordHead>, StorageError>;
    /// The content hash of each `(record, revision)` already stored.
    async fn version_hashes(
        &mut self,
        keys: &[(Uuid, Revision)],
    ) -> Result<Vec<((Uuid, Revision), String)>, StorageError>;
    /// Inserts versions, in order. The core has checked none is held already.
    async fn insert_versions(
        &mut self,
        device_id: Uuid,
        versions: &[&NewVersion],
        received_at_utc: DateTime<Utc>,
    ) -> Result<(), StorageError>;
    /// Raises each record's latest revision to at least the given one. Ids are distinct.
    async fn raise_latest_revisions(
        &mut self,
        heads: &[(Uuid, Revision)],
    ) -> Result<(), StorageError>;
    /// Makes each version the record's signed head (review columns, decision cleared) unless a
    /// later signed revision is held. Record ids are distinct.
    async fn set_signed_heads(&mut self, versions: &[&NewVersion]) -> Result<(), StorageError>;

    async fn feedback_after(
        &mut self,
        device_id: Uuid,
        since_cursor: i64,
        limit: u32,
    ) -> Result<Vec<FeedbackItem>, StorageError>;

    async fn review_items(
        &mut self,
        filter: &ReviewFilter,
    ) -> Result<Vec<ReviewSummary>, StorageError>;
    /// Records per stored decision text (`"pending"` for none), ignoring the decision filter.
    async fn review_counts(
        &mut self,
        filter: &ReviewFilter,
    ) -> Result<Vec<(String, i64)>, StorageError>;
    /// Every destination (ODS code, name) a signed record was taken to, by name.
    async fn review_destinations(
        &mut self,
    ) -> Result<Vec<crate::protocol::DestinationChoice>, StorageError>;
    /// The owner and owner's name of a record that has a signed version.
    async fn signed_record_owner(
        &mut self,
        record_id: Uuid,
    ) -> Result<Option<(Uuid, String)>, StorageError>;
    async fn signed_versions(
        &mut self,
        record_id: Uuid,
    ) -> Result<Vec<StoredVersion>, StorageError>;
    async fn decisions_on(&mut self, record_id: Uuid) -> Result<Vec<DecisionRecord>, StorageError>;

    /// A record's owner and signed head revision, if the record is held, locking the
    /// record's row until the transaction ends where the database has row locks.
    async fn decision_head(
        &mut self,
        record_id: Uuid,
    ) -> Result<Option<(Uuid, Option<Revision>)>, StorageError>;
    async fn is_signed_version(
        &mut self,
        record_id: Uuid,
        revision: Revision,
    ) -> Result<bool, StorageError>;
    /// Appends the decision (its cursor is the next in commit order) and makes it the
    /// record's latest.
    async fn insert_decision(
        &mut self,
        d: &NewDecision,
        device_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError>;

    async fn versions_after(
        &mut self,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<StoredVersion>, StorageError>;
    async fn stats(&mut self) -> Result<Stats, StorageError>;

    /// Every decision, in cursor order (for logging those made before the log existed).
    async fn all_decisions(&mut self) -> Result<Vec<DecisionRecord>, StorageError>;

    /// Leaves held (the next leaf's index).
    async fn log_size(&mut self) -> Result<u64, StorageError>;
    /// The stored subtree hashes (hex) at these indexes that exist.
    async fn log_hashes(&mut self, indexes: &[u64]) -> Result<Vec<(u64, String)>, StorageError>;
    /// Inserts leaves and the subtree hashes they complete (one statement where the database
    /// allows: this runs under the ordering lock).
    async fn insert_log(
        &mut self,
        leaves: &[LogLeafRow],
        hashes: &[(u64, String)],
    ) -> Result<(), StorageError>;
    /// The leaf index of each `(record, revision)` version that has one.
    async fn version_leaf_indexes(
        &mut self,
        keys: &[(Uuid, Revision)],
    ) -> Result<Vec<((Uuid, Revision), u64)>, StorageError>;
    /// The leaf logging this device's enrolment.
    async fn device_enrolment_leaf(
        &mut self,
        device_id: Uuid,
    ) -> Result<Option<LogLeafRow>, StorageError>;
    /// Leaves with `start <= idx < end`, in order.
    async fn log_leaves(&mut self, start: u64, end: u64) -> Result<Vec<LogLeafRow>, StorageError>;
    /// Signing keys registered through `device_id`, or through every device.
    async fn signers(&mut self, device_id: Option<Uuid>) -> Result<Vec<SignerRow>, StorageError>;
    async fn insert_signer(&mut self, row: &SignerRow) -> Result<(), StorageError>;
    /// Keeps a signed checkpoint (a second one of the same size is ignored).
    async fn insert_checkpoint(
        &mut self,
        size: u64,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError>;
    /// The largest signed checkpoint kept: `(size, note)`.
    async fn latest_checkpoint(&mut self) -> Result<Option<(u64, String)>, StorageError>;
    async fn insert_key_rotation(
        &mut self,
        statement: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError>;
    /// Every rotation statement, oldest first.
    async fn key_rotations(&mut self) -> Result<Vec<String>, StorageError>;
    async fn insert_reference(&mut self, v: &ReferenceVersion) -> Result<(), StorageError>;
    async fn update_reference_note(&mut self, version: u64, note: &str)
    -> Result<(), StorageError>;
    /// The highest reference data version held.
    async fn latest_reference(&mut self) -> Result<Option<ReferenceVersion>, StorageError>;

    async fn audit_head(&mut self) -> Result<Option<(i64, String)>, StorageError>;
    async fn insert_audit(&mut self, entries: &[AuditEntry]) -> Result<(), StorageError>;
    async fn audit_entries_after(
        &mut self,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StorageError>;
}

/// A stored log position back to `u64`; a negative one is a corrupt row.
pub(crate) fn log_index_col(v: i64) -> Result<u64, StorageError> {
    u64::try_from(v).map_err(|_| StorageError::Corrupt("log index".into()))
}

/// A log position as a column value.
pub(crate) fn log_index_value(v: u64) -> Result<i64, StorageError> {
    i64::try_from(v).map_err(|_| StorageError::Corrupt("log index out of range".into()))
}

/// Reads the stored hashes at `indexes` into a reader for the tree arithmetic.
async fn hash_reader<T: Tx>(tx: &mut T, indexes: &[u64]) -> Result<HashMapReader, StorageError> {
    let mut reader = HashMapReader::default();
    for (i, text) in tx.log_hashes(indexes).await? {
        let h = hash_from_hex(&text).ok_or_else(|| StorageError::Corrupt("log hash".into()))?;
        reader.0.insert(i, h);
    }
    Ok(reader)
}

fn tree_fault(e: crate::transparency::TreeError) -> StorageError {
    StorageError::Corrupt(e.to_string())
}

/// The log's size and root now.
pub(crate) async fn log_head<T: Tx>(tx: &mut T) -> Result<LogHead, StorageError> {
    let size = tx.log_size().await?;
    let reader = hash_reader(tx, &frontier_indexes(size)).await?;
    let root = crate::transparency::tree_root(size, &reader).map_err(tree_fault)?;
    Ok(LogHead { size, root })
}

/// Appends leaves to the log: their rows and the subtree hashes they complete. Takes the
/// ordering lock first, so leaves are numbered in commit order. Returns the first new leaf's
/// index and the log's new head.
pub(crate) async fn append_log<T: Tx>(
    tx: &mut T,
    leaves: &[Leaf],
) -> Result<(u64, LogHead), StorageError> {
    tx.lock_for_ordering().await?;
    let size = tx.log_size().await?;
    let mut reader = hash_reader(tx, &frontier_indexes(size)).await?;
    let mut rows = Vec::with_capacity(leaves.len());
    let mut hashes = Vec::with_capacity(leaves.len());
    for (idx, leaf) in (size..).zip(leaves) {
        let data = leaf.encode();
        hashes.push(leaf_hash(&data));
        let (record_id, revision) = match leaf {
            Leaf::Version {
                record_id,
                revision,
                ..
            } => (
                Some(*record_id),
                Some(
                    Revision::new(*revision)
                        .map_err(|_| StorageError::Corrupt("revision".into()))?,
                ),
            ),
            _ => (None, None),
        };
        rows.push(LogLeafRow {
            idx,
            kind: leaf.kind().to_owned(),
            record_id,
            revision,
            data: String::from_utf8(data)
                .map_err(|_| StorageError::Corrupt("leaf encoding".into()))?,
        });
    }
    let (stored, root) =
        crate::transparency::append(size, &hashes, &mut reader).map_err(tree_fault)?;
    if !rows.is_empty() {
        let stored: Vec<(u64, String)> = stored.iter().map(|(i, h)| (*i, hash_hex(h))).collect();
        tx.insert_log(&rows, &stored).await?;
    }
    Ok((
        size,
        LogHead {
            size: size + leaves.len() as u64,
            root,
        },
    ))
}

/// The leaf a stored version is logged as.
pub(crate) fn version_leaf(device_id: Uuid, v: &NewVersion) -> Leaf {
    Leaf::Version {
        record_id: v.record_id,
        revision: v.revision.get(),
        status: v.status.as_str().to_owned(),
        content_sha256: v.content_sha256.clone(),
        signature: v.signature.clone(),
        device_id,
        saved_at_utc: leaf_time(v.saved_at_utc),
        signer_user_id: v.signer_user_id,
    }
}

/// The leaf a decision is logged as (its comment by hash only).
pub(crate) fn decision_leaf(d: &DecisionRecord) -> Leaf {
    Leaf::Decision {
        record_id: d.record_id,
        revision: d.revision.get(),
        decision: d.decision.as_str().to_owned(),
        comment_sha256: crate::crypto::sha256_hex(d.comment.as_bytes()),
        decided_by: d.decided_by.clone(),
        decided_at_utc: leaf_time(d.decided_at_utc),
    }
}

/// Logs, once, everything a database held before it had a log: each device's enrolment (and
/// revocation), each version in the order received, each decision. Does nothing once the log
/// has any leaf. Returns how many leaves it wrote.
pub(crate) async fn backfill_log<T: Tx>(tx: &mut T) -> Result<u64, StorageError> {
    tx.lock_for_ordering().await?;
    if tx.log_size().await? > 0 {
        return Ok(0);
    }
    let mut leaves = Vec::new();
    let devices = tx.list_devices().await?;
    for d in &devices {
        leaves.push(Leaf::DeviceEnrolled {
            device_id: d.device_id,
            public_key: d.public_key.clone(),
            enrolled_at_utc: leaf_time(d.enrolled_at_utc),
        });
    }
    let mut after = 0i64;
    loop {
        let page = tx.versions_after(after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        leaves.extend(page.iter().map(StoredVersion::leaf));
    }
    leaves.extend(tx.all_decisions().await?.iter().map(decision_leaf));
    for d in &devices {
        if let Some(at) = d.revoked_at_utc {
            leaves.push(Leaf::DeviceRevoked {
                device_id: d.device_id,
                revoked_at_utc: leaf_time(at),
            });
        }
    }
    if leaves.is_empty() {
        return Ok(0);
    }
    append_log(tx, &leaves).await?;
    Ok(leaves.len() as u64)
}

/// Keeps a key rotation statement and logs it.
pub(crate) async fn add_key_rotation<T: Tx>(
    tx: &mut T,
    statement: &str,
    new_key: &str,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let now = to_micros(now);
    tx.insert_key_rotation(statement, now).await?;
    append_log(
        tx,
        &[Leaf::KeyRotated {
            new_key: new_key.to_owned(),
            statement_sha256: crate::crypto::sha256_hex(statement.as_bytes()),
            rotated_at_utc: leaf_time(now),
        }],
    )
    .await?;
    Ok(())
}

/// Stores a reference data version unless one as high is held, with its leaf and audit
/// entry. See [`Storage::add_reference_version`].
pub(crate) async fn add_reference_version<T: Tx>(
    tx: &mut T,
    v: &ReferenceVersion,
) -> Result<bool, StorageError> {
    tx.lock_for_ordering().await?;
    if let Some(held) = tx.latest_reference().await?
        && held.version >= v.version
    {
        return Ok(false);
    }
    let v = ReferenceVersion {
        imported_at_utc: to_micros(v.imported_at_utc),
        ..v.clone()
    };
    tx.insert_reference(&v).await?;
    append_log(
        tx,
        &[Leaf::ReferenceData {
            version: v.version,
            document_sha256: v.document_sha256.clone(),
            imported_at_utc: leaf_time(v.imported_at_utc),
        }],
    )
    .await?;
    append_audit(
        tx,
        &[AuditEvent::new(
            &Actor::Admin,
            AuditAction::ReferenceImported,
            format!("version {} sha256 {}", v.version, v.document_sha256),
        )],
        v.imported_at_utc,
    )
    .await?;
    Ok(true)
}

/// Registers users' signing keys through `device` (proofs checked by the handler), each as a
/// log leaf in this transaction. See [`Storage::register_signers`].
pub(crate) async fn register_signers<T: Tx>(
    tx: &mut T,
    device: &DeviceIdentity,
    signers: &[crate::protocol::SignerRegistration],
    now: DateTime<Utc>,
) -> Result<Vec<SignerRow>, StorageError> {
    tx.lock_for_ordering().await?;
    let held: HashMap<Uuid, SignerRow> = tx
        .signers(Some(device.device_id))
        .await?
        .into_iter()
        .map(|r| (r.identity.user_id, r))
        .collect();
    // One device is one tablet: every user registered through it names the same tablet id.
    let mut tablet = held.values().next().map(|r| r.identity.tablet_id);
    let mut out = Vec::with_capacity(signers.len());
    let mut new_rows: Vec<SignerRow> = Vec::new();
    for s in signers {
        let identity = s.identity();
        if *tablet.get_or_insert(identity.tablet_id) != identity.tablet_id {
            return Err(StorageError::SignerConflict);
        }
        if let Some(row) = held
            .get(&s.user_id)
            .or_else(|| new_rows.iter().find(|r| r.identity.user_id == s.user_id))
        {
            if row.identity.public_key != identity.public_key
                || row.identity.tablet_id != identity.tablet_id
            {
                return Err(StorageError::SignerConflict);
            }
            out.push(row.clone());
            continue;
        }
        let row = SignerRow {
            device_id: device.device_id,
            identity,
            proof: s.proof.clone(),
            device_endorsement: s.device_endorsement.clone(),
            leaf_idx: 0,
            registered_at_utc: to_micros(now),
        };
        new_rows.push(row);
    }
    if !new_rows.is_empty() {
        let leaves: Vec<Leaf> = new_rows.iter().map(SignerRow::leaf).collect();
        let (first, _) = append_log(tx, &leaves).await?;
        for (row, idx) in new_rows.iter_mut().zip(first..) {
            row.leaf_idx = idx;
            tx.insert_signer(row).await?;
        }
        out.extend(new_rows);
    }
    Ok(out)
}

/// What a reviewer needs to check a record's signatures without trusting the server: the
/// log's head, the device's enrolment leaf, each version's leaf index, each signing user's
/// registration leaf, and inclusion proofs for all of them in the tree at that head. `None`
/// if some piece is not logged.
pub(crate) async fn review_proof<T: Tx>(
    tx: &mut T,
    device_id: Uuid,
    versions: &[(Uuid, Revision)],
    signer_ids: &[Uuid],
) -> Result<Option<ReviewProofParts>, StorageError> {
    let head = log_head(tx).await?;
    let Some(enrolment) = tx.device_enrolment_leaf(device_id).await? else {
        return Ok(None);
    };
    let found: HashMap<(Uuid, Revision), u64> = tx
        .version_leaf_indexes(versions)
        .await?
        .into_iter()
        .collect();
    let mut version_leaves = Vec::with_capacity(versions.len());
    for key in versions {
        let Some(&idx) = found.get(key) else {
            return Ok(None);
        };
        version_leaves.push((key.1, idx));
    }
    let registered: HashMap<Uuid, u64> = tx
        .signers(Some(device_id))
        .await?
        .into_iter()
        .map(|r| (r.identity.user_id, r.leaf_idx))
        .collect();
    let mut signer_leaves = Vec::with_capacity(signer_ids.len());
    for id in signer_ids {
        let Some(&idx) = registered.get(id) else {
            return Ok(None);
        };
        let Some(leaf) = tx.log_leaves(idx, idx + 1).await?.into_iter().next() else {
            return Ok(None);
        };
        signer_leaves.push(leaf);
    }
    let mut indexes = vec![enrolment.idx];
    indexes.extend(version_leaves.iter().map(|(_, i)| *i));
    indexes.extend(signer_leaves.iter().map(|l| l.idx));
    if indexes.iter().any(|&i| i >= head.size) {
        return Ok(None);
    }
    let mut proofs = inclusion_proofs(tx, head.size, &indexes).await?.into_iter();
    let enrolment_proof = proofs.next().unwrap_or_default();
    let versions = version_leaves
        .into_iter()
        .zip(proofs.by_ref())
        .map(|((revision, idx), proof)| (revision, idx, proof))
        .collect();
    let signers = signer_leaves.into_iter().zip(proofs).collect();
    Ok(Some(ReviewProofParts {
        head,
        enrolment,
        enrolment_proof,
        versions,
        signers,
    }))
}

/// Inclusion proofs for leaves `indexes` in the tree of `size` leaves (each index below
/// `size`, and `size` at most the log's size: the handler checks both).
pub(crate) async fn inclusion_proofs<T: Tx>(
    tx: &mut T,
    size: u64,
    indexes: &[u64],
) -> Result<Vec<Vec<LogHash>>, StorageError> {
    let mut needed = Vec::new();
    for &i in indexes {
        needed.extend(crate::transparency::inclusion_indexes(size, i).map_err(tree_fault)?);
    }
    needed.sort_unstable();
    needed.dedup();
    let reader = hash_reader(tx, &needed).await?;
    indexes
        .iter()
        .map(|&i| crate::transparency::prove_inclusion(size, i, &reader).map_err(tree_fault))
        .collect()
}

/// The consistency proof from `old_size` to `size` (`1 <= old_size <= size <= log size`).
pub(crate) async fn consistency_proof<T: Tx>(
    tx: &mut T,
    old_size: u64,
    size: u64,
) -> Result<Vec<LogHash>, StorageError> {
    let needed = crate::transparency::consistency_indexes(size, old_size).map_err(tree_fault)?;
    let reader = hash_reader(tx, &needed).await?;
    crate::transparency::prove_consistency(size, old_size, &reader).map_err(tree_fault)
}

/// A stored revision column back to a [`Revision`]; a negative one is a corrupt row.
/// (Going in, [`Revision::to_i64`] cannot fail: the type holds only storable values.)
pub(crate) fn rev_col(v: i64) -> Result<Revision, StorageError> {
    Revision::from_i64(v).map_err(|_| StorageError::Corrupt("revision".into()))
}

/// A stored count back to `u64`.
pub(crate) fn count_col(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

pub(crate) fn decision_col(text: &str) -> Result<Decision, StorageError> {
    Decision::parse(text).ok_or_else(|| StorageError::Corrupt("decision".into()))
}

pub(crate) fn status_col(text: &str) -> Result<RecordStatus, StorageError> {
    RecordStatus::parse(text).ok_or_else(|| StorageError::Corrupt("status".into()))
}

/// Appends audit entries chained from the current head. Takes the ordering lock first, so
/// the chain stays linear whoever else is writing.
pub(crate) async fn append_audit<T: Tx>(
    tx: &mut T,
    events: &[AuditEvent],
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    if events.is_empty() {
        return Ok(());
    }
    tx.lock_for_ordering().await?;
    let head = tx.audit_head().await?;
    let entries = chain_events(head, &utc_text(now), events);
    tx.insert_audit(&entries).await
}

/// Applies one migration unless it is recorded as applied; true if it ran.
pub(crate) async fn migrate_one<T: Tx>(
    tx: &mut T,
    (version, name, sql): (u32, &str, &str),
    now: DateTime<Utc>,
) -> Result<bool, StorageError> {
    if tx.migration_applied(version).await? {
        return Ok(false);
    }
    tx.apply_migration(version, name, sql, now)
        .await
        .map_err(|e| StorageError::Migration {
            version,
            source: Box::new(e),
        })?;
    Ok(true)
}

pub(crate) async fn create_enrolment_code<T: Tx>(
    tx: &mut T,
    code_hash: &str,
    device_name: &str,
    now: DateTime<Utc>,
    expires_at_utc: DateTime<Utc>,
) -> Result<(), StorageError> {
    tx.insert_enrolment_code(code_hash, device_name, now, expires_at_utc)
        .await?;
    let event = AuditEvent::new(&Actor::Admin, AuditAction::EnrolmentCodeCreated, "");
    append_audit(tx, &[event], now).await
}

pub(crate) async fn enroll_device<T: Tx>(
    tx: &mut T,
    d: &NewDevice,
    now: DateTime<Utc>,
) -> Result<EnrolOutcome, StorageError> {
    // An unknown, used or expired code is refused before the ordering lock is taken.
    let Some(code) = tx.enrolment_code(&d.code_hash).await? else {
        return Ok(EnrolOutcome::UnknownCode);
    };
    if code.used {
        return Ok(EnrolOutcome::CodeUsed);
    }
    if code.expires_at_utc <= now {
        return Ok(EnrolOutcome::CodeExpired);
    }
    tx.lock_for_ordering().await?;
    if tx.active_device_has_key(&d.public_key_b64).await? {
        return Ok(EnrolOutcome::KeyInUse);
    }
    if !tx
        .claim_enrolment_code(&d.code_hash, d.device_id, now)
        .await?
    {
        return Ok(EnrolOutcome::CodeUsed);
    }
    tx.insert_device(d, &code.device_name, now).await?;
    append_log(
        tx,
        &[Leaf::DeviceEnrolled {
            device_id: d.device_id,
            public_key: d.public_key_b64.clone(),
            enrolled_at_utc: leaf_time(to_micros(now)),
        }],
    )
    .await?;
    let event = AuditEvent::new(&Actor::Device(d.device_id), AuditAction::DeviceEnrolled, "");
    append_audit(tx, &[event], now).await?;
    Ok(EnrolOutcome::Enrolled {
        device_name: code.device_name,
    })
}

pub(crate) async fn revoke_device<T: Tx>(
    tx: &mut T,
    device_id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, StorageError> {
    if !tx.mark_device_revoked(device_id, now).await? {
        return Ok(false);
    }
    let event = AuditEvent::new(
        &Actor::Admin,
        AuditAction::DeviceRevoked,
        format!("device={device_id}"),
    );
    log_revocation(tx, device_id, event, now).await?;
    Ok(true)
}

/// Logs a device's revocation (a `device_revoked` leaf) and audits why, in the caller's
/// transaction.
async fn log_revocation<T: Tx>(
    tx: &mut T,
    device_id: Uuid,
    event: AuditEvent,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    append_log(
        tx,
        &[Leaf::DeviceRevoked {
            device_id,
            revoked_at_utc: leaf_time(to_micros(now)),
        }],
    )
    .await?;
    append_audit(tx, &[event], now).await?;
    Ok(())
}

/// Where a device is in its working life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DeviceLifecycle {
    pub retiring: bool,
    pub retired: bool,
    pub revoked: bool,
}

/// Keeps a tablet's report; retires a retiring tablet that reports nothing left to send
/// (logged as a revocation, so the log shows it is refused from then on).
pub(crate) async fn device_report<T: Tx>(
    tx: &mut T,
    device_id: Uuid,
    report: &crate::protocol::DeviceReport,
    now: DateTime<Utc>,
) -> Result<crate::protocol::DeviceState, StorageError> {
    use crate::protocol::DeviceState;
    tx.record_device_report(device_id, report, now).await?;
    let Some(life) = tx.device_lifecycle(device_id).await? else {
        return Err(StorageError::Corrupt(
            "a reporting device is missing".into(),
        ));
    };
    if life.retired {
        return Ok(DeviceState::Retired);
    }
    if !life.retiring {
        return Ok(DeviceState::Active);
    }
    if report.pending > 0 || life.revoked {
        return Ok(DeviceState::Retiring);
    }
    tx.mark_device_retired(device_id, now).await?;
    let event = AuditEvent::new(
        &Actor::Device(device_id),
        AuditAction::DeviceRetired,
        format!("device={device_id} held_versions={}", report.held_versions),
    );
    log_revocation(tx, device_id, event, now).await?;
    Ok(DeviceState::Retired)
}

/// Starts a log rebuilt from the tablets (see [`Storage::begin_recovery`]).
pub(crate) async fn begin_recovery<T: Tx>(
    tx: &mut T,
    record: &RecoveryRecord,
    first_leaf: &Leaf,
) -> Result<bool, StorageError> {
    tx.lock_for_ordering().await?;
    if tx.log_size().await? > 0 || !tx.list_devices().await?.is_empty() {
        return Ok(false);
    }
    tx.insert_recovery(record).await?;
    append_log(tx, std::slice::from_ref(first_leaf)).await?;
    let event = AuditEvent::new(
        &Actor::Admin,
        AuditAction::RecoveryStarted,
        format!("expected_entries={}", record.leaves.len()),
    );
    append_audit(tx, &[event], record.recovered_at_utc).await?;
    Ok(true)
}

/// Takes back a tablet (see [`Storage::restore_device`]).
pub(crate) async fn restore_device<T: Tx>(
    tx: &mut T,
    d: &RestoredDevice,
    now: DateTime<Utc>,
) -> Result<RestoreOutcome, StorageError> {
    tx.lock_for_ordering().await?;
    match tx.device_lifecycle(d.device_id).await? {
        Some(life) if life.revoked || life.retired => return Ok(RestoreOutcome::NotActive),
        Some(_) => tx.set_device_token(d.device_id, &d.token_hash).await?,
        None => {
            let device = NewDevice {
                code_hash: String::new(),
                device_id: d.device_id,
                public_key_b64: d.public_key_b64.clone(),
                token_hash: d.token_hash.clone(),
            };
            tx.insert_device(&device, &d.name, now).await?;
            append_log(
                tx,
                &[Leaf::DeviceEnrolled {
                    device_id: d.device_id,
                    public_key: d.public_key_b64.clone(),
                    enrolled_at_utc: d.enrolled_at_utc.clone(),
                }],
            )
            .await?;
        }
    }
    let event = AuditEvent::new(&Actor::Device(d.device_id), AuditAction::DeviceRestored, "");
    append_audit(tx, &[event], now).await?;
    Ok(RestoreOutcome::Restored)
}

/// Takes back decisions (see [`Storage::restore_decisions`]), in the order given.
pub(crate) async fn restore_decisions<T: Tx>(
    tx: &mut T,
    device_id: Uuid,
    decisions: &[DecisionRecord],
    now: DateTime<Utc>,
) -> Result<Vec<crate::protocol::DecisionRestore>, StorageError> {
    use crate::protocol::DecisionRestore;
    let mut out = Vec::with_capacity(decisions.len());
    for d in decisions {
        let owner = tx.decision_head(d.record_id).await?;
        if !matches!(owner, Some((owner, Some(_))) if owner == device_id)
            || !tx.is_signed_version(d.record_id, d.revision).await?
        {
            out.push(DecisionRestore::RecordNotFound);
            continue;
        }
        let record = DecisionRecord {
            decided_at_utc: to_micros(d.decided_at_utc),
            ..d.clone()
        };
        if tx.decisions_on(d.record_id).await?.contains(&record) {
            out.push(DecisionRestore::Duplicate);
            continue;
        }
        tx.lock_for_ordering().await?;
        let new = NewDecision {
            record_id: record.record_id,
            revision: record.revision,
            decision: record.decision,
            comment: record.comment.clone(),
            decided_by: record.decided_by.clone(),
        };
        tx.insert_decision(&new, device_id, record.decided_at_utc)
            .await?;
        append_log(tx, &[decision_leaf(&record)]).await?;
        let event = AuditEvent::on_record(
            &Actor::Device(device_id),
            AuditAction::DecisionRestored,
            record.record_id,
            Some(record.revision),
            format!("decision={}", record.decision.as_str()),
        );
        append_audit(tx, &[event], now).await?;
        out.push(DecisionRestore::Restored);
    }
    Ok(out)
}

/// Starts a tablet's retirement: it keeps syncing until it reports nothing left to send.
pub(crate) async fn retire_device<T: Tx>(
    tx: &mut T,
    device_id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, StorageError> {
    let Some(life) = tx.device_lifecycle(device_id).await? else {
        return Ok(false);
    };
    if life.revoked || life.retired {
        return Err(StorageError::DeviceNotActive);
    }
    if !life.retiring {
        tx.mark_device_retiring(device_id, now).await?;
        let event = AuditEvent::new(
            &Actor::Admin,
            AuditAction::DeviceRetiring,
            format!("device={device_id}"),
        );
        append_audit(tx, &[event], now).await?;
    }
    Ok(true)
}

pub(crate) async fn add_user<T: Tx>(
    tx: &mut T,
    username: &str,
    role: Role,
    password_hash: &str,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    if !tx.insert_user(username, role, password_hash, now).await? {
        return Err(StorageError::UserExists);
    }
    let event = AuditEvent::new(
        &Actor::Admin,
        AuditAction::UserAdded,
        format!("user={username} role={}", role.as_str()),
    );
    append_audit(tx, &[event], now).await
}

pub(crate) async fn reserve_login_attempt<T: Tx>(
    tx: &mut T,
    username: &str,
    client: &str,
    policy: LockoutPolicy,
    now: DateTime<Utc>,
) -> Result<LoginReservation, StorageError> {
    // Serialised with every other writer, so the check and the count are one step: N
    // concurrent attempts see N different counts.
    tx.lock_for_ordering().await?;
    if let Some(f) = tx.login_failures(username, client).await?
        && let Some(lock_secs) = policy.lockout_secs(f.failures)
    {
        let until = f.last_failure_at_utc
            + chrono::Duration::seconds(i64::try_from(lock_secs).unwrap_or(i64::MAX / 1000));
        if now < until {
            let retry_after_secs = u64::try_from((until - now).num_seconds())
                .unwrap_or(0)
                .max(1);
            return Ok(LoginReservation::Locked { retry_after_secs });
        }
    }
    tx.increment_login_failures(username, client, now).await?;
    Ok(LoginReservation::Reserved)
}

pub(crate) async fn create_session<T: Tx>(
    tx: &mut T,
    token_hash: &str,
    user: &UserRecord,
    client: &str,
    now: DateTime<Utc>,
    expires_at_utc: DateTime<Utc>,
) -> Result<(), StorageError> {
    // Only an account with a known role gets this far (the handler checks it); an unknown
    // one is refused here too rather than given a session without a role.
    let Some(role) = user.role else {
        return Err(StorageError::Corrupt("role".into()));
    };
    tx.clear_login_failures(&user.username, Some(client))
        .await?;
    tx.delete_expired_sessions(now).await?;
    tx.insert_session(token_hash, user, role, now, expires_at_utc)
        .await?;
    let event = AuditEvent::new(
        &Actor::Supervisor(user.username.clone()),
        AuditAction::LoggedIn,
        format!("client={client}"),
    );
    append_audit(tx, &[event], now).await
}

pub(crate) async fn end_sessions<T: Tx>(
    tx: &mut T,
    scope: &SessionScope,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<u64, StorageError> {
    let (n, event) = match scope {
        SessionScope::Token(hash) => {
            let n = tx.delete_session(hash).await?;
            (n, AuditEvent::new(actor, AuditAction::LoggedOut, ""))
        }
        SessionScope::User(username) => {
            let n = tx.delete_user_sessions(username).await?;
            let detail = format!("user={username} sessions={n}");
            (
                n,
                AuditEvent::new(actor, AuditAction::SessionsRevoked, detail),
            )
        }
    };
    if n > 0 {
        append_audit(tx, &[event], now).await?;
    }
    Ok(n)
}

pub(crate) async fn change_user<T: Tx>(
    tx: &mut T,
    username: &str,
    change: &UserChange,
    now: DateTime<Utc>,
) -> Result<bool, StorageError> {
    let (found, action) = match change {
        UserChange::Disable => (
            tx.set_user_disabled(username, Some(now)).await?,
            AuditAction::UserDisabled,
        ),
        UserChange::Enable => (
            tx.set_user_disabled(username, None).await?,
            AuditAction::UserEnabled,
        ),
        UserChange::Password(hash) => (
            tx.set_user_password(username, hash).await?,
            AuditAction::PasswordReset,
        ),
    };
    if !found {
        return Ok(false);
    }
    let mut detail = format!("user={username}");
    if matches!(change, UserChange::Disable | UserChange::Password(_)) {
        let n = tx.delete_user_sessions(username).await?;
        tx.clear_login_failures(username, None).await?;
        detail.push_str(&format!(" sessions_ended={n}"));
    }
    let event = AuditEvent::new(&Actor::Admin, action, detail);
    append_audit(tx, &[event], now).await?;
    Ok(true)
}

/// What the batch decides for each item, before anything is written.
struct PushPlan<'a> {
    outcomes: Vec<StoreOutcome>,
    stored: Vec<&'a NewVersion>,
}

/// Decides every item's outcome as if the items were stored one after another, so a batch
/// holding several versions of one record gets the same answers as one push per version.
///
/// `heads` are the records after claiming (every id is present unless the database lost it);
/// `held` are the content hashes of versions already stored.
fn plan_push<'a>(
    device_id: Uuid,
    items: &'a [NewVersion],
    heads: &[RecordHead],
    held: Vec<((Uuid, Revision), String)>,
) -> Result<PushPlan<'a>, StorageError> {
    let mut heads: HashMap<Uuid, RecordHead> = heads.iter().map(|h| (h.record_id, *h)).collect();
    let mut held: HashMap<(Uuid, Revision), String> = held.into_iter().collect();
    let mut plan = PushPlan {
        outcomes: Vec::with_capacity(items.len()),
        stored: Vec::new(),
    };
    for item in items {
        let revision = item.revision;
        let head = heads
            .get_mut(&item.record_id)
            .ok_or_else(|| StorageError::Corrupt("record row missing after insert".into()))?;
        let existing = held.get(&(item.record_id, revision));
        let outcome = if head.device_id != device_id {
            StoreOutcome::NotOwner
        } else if item.status == RecordStatus::Draft && revision < head.latest_revision {
            match existing {
                Some(h) if *h == item.content_sha256 => StoreOutcome::Duplicate,
                _ => StoreOutcome::Stale,
            }
        } else {
            match existing {
                Some(h) if *h == item.content_sha256 => StoreOutcome::Duplicate,
                Some(_) => StoreOutcome::Conflict,
                None => StoreOutcome::Stored,
            }
        };
        if outcome == StoreOutcome::Stored {
            head.latest_revision = head.latest_revision.max(revision);
            held.insert((item.record_id, revision), item.content_sha256.clone());
            plan.stored.push(item);
        }
        plan.outcomes.push(outcome);
    }
    Ok(plan)
}

/// Per record, the highest revision among `versions` (first seen order kept).
fn highest_per_record<'a>(versions: impl Iterator<Item = &'a NewVersion>) -> Vec<&'a NewVersion> {
    let mut out: Vec<&NewVersion> = Vec::new();
    let mut index: HashMap<Uuid, usize> = HashMap::new();
    for v in versions {
        match index.get(&v.record_id) {
            Some(&i) => {
                if out[i].revision < v.revision {
                    out[i] = v;
                }
            }
            None => {
                index.insert(v.record_id, out.len());
                out.push(v);
            }
        }
    }
    out
}

pub(crate) async fn push_versions<T: Tx>(
    tx: &mut T,
    device: &DeviceIdentity,
    items: &[NewVersion],
    audit_head: Option<(u64, String)>,
    now: DateTime<Utc>,
) -> Result<PushStored, StorageError> {
    let now = to_micros(now);
    // A record is owned by the device that first pushed any version of it.
    let mut first: Vec<(Uuid, Revision)> = Vec::new();
    for item in items {
        if !first.iter().any(|(id, _)| *id == item.record_id) {
            first.push((item.record_id, item.revision));
        }
    }
    tx.claim_records(device.device_id, &first).await?;
    let ids: Vec<Uuid> = first.iter().map(|(id, _)| *id).collect();
    let heads = tx.record_heads(&ids).await?;
    let keys: Vec<(Uuid, Revision)> = items.iter().map(|i| (i.record_id, i.revision)).collect();
    let held = tx.version_hashes(&keys).await?;
    let plan = plan_push(device.device_id, items, &heads, held)?;
    if !plan.stored.is_empty() {
        // No ordering lock yet: a concurrent push of the same version meets the UNIQUE
        // constraint (the batch fails and the device retries, then hears `duplicate`), and
        // only the audit append below needs commit order. Holding the lock for the audit
        // step alone is what lets PostgreSQL take pushes from many devices at once.
        tx.insert_versions(device.device_id, &plan.stored, now)
            .await?;
        let latest: Vec<(Uuid, Revision)> = highest_per_record(plan.stored.iter().copied())
            .iter()
            .map(|v| (v.record_id, v.revision))
            .collect();
        tx.raise_latest_revisions(&latest).await?;
        let signed =
            highest_per_record(plan.stored.iter().copied().filter(|v| v.status.is_signed()));
        if !signed.is_empty() {
            tx.set_signed_heads(&signed).await?;
        }
    }
    let audit: Vec<AuditEvent> = plan
        .stored
        .iter()
        .map(|v| {
            AuditEvent::on_record(
                &Actor::Device(device.device_id),
                AuditAction::VersionStored,
                v.record_id,
                Some(v.revision),
                format!("status={} sha256={}", v.status.as_str(), v.content_sha256),
            )
        })
        .collect();
    let mut leaves: Vec<Leaf> = plan
        .stored
        .iter()
        .map(|v| version_leaf(device.device_id, v))
        .collect();
    // After the versions, so their leaf indexes start at the first new leaf.
    if let Some((seq, hash)) = audit_head {
        leaves.push(Leaf::DeviceAuditHead {
            device_id: device.device_id,
            seq,
            hash,
        });
    }
    let (first, log) = append_log(tx, &leaves).await?;
    append_audit(tx, &audit, now).await?;
    // Each stored or duplicate version's leaf: new ones in the order appended, earlier ones
    // looked up (a resend whose first answer was lost still gets its proof).
    let mut new_index: HashMap<(Uuid, Revision), u64> = HashMap::new();
    for (i, v) in (first..).zip(&plan.stored) {
        new_index.insert((v.record_id, v.revision), i);
    }
    let duplicates: Vec<(Uuid, Revision)> = items
        .iter()
        .zip(&plan.outcomes)
        .filter(|(_, o)| **o == StoreOutcome::Duplicate)
        .map(|(v, _)| (v.record_id, v.revision))
        .filter(|k| !new_index.contains_key(k))
        .collect();
    if !duplicates.is_empty() {
        new_index.extend(tx.version_leaf_indexes(&duplicates).await?);
    }
    let leaf_indexes = items
        .iter()
        .zip(&plan.outcomes)
        .map(|(v, o)| match o {
            StoreOutcome::Stored | StoreOutcome::Duplicate => {
                new_index.get(&(v.record_id, v.revision)).copied()
            }
            _ => None,
        })
        .collect();
    Ok(PushStored {
        outcomes: plan.outcomes,
        leaf_indexes,
        log,
    })
}

pub(crate) async fn feedback_since<T: Tx>(
    tx: &mut T,
    device: &DeviceIdentity,
    since_cursor: i64,
    limit: u32,
    now: DateTime<Utc>,
) -> Result<Vec<FeedbackItem>, StorageError> {
    // Cursors must be read in commit order: a decision committing behind a page already read
    // would be skipped for ever.
    tx.lock_for_ordering().await?;
    let items = tx
        .feedback_after(device.device_id, since_cursor, limit)
        .await?;
    let audit: Vec<AuditEvent> = items
        .iter()
        .map(|item| {
            AuditEvent::on_record(
                &Actor::Device(device.device_id),
                AuditAction::FeedbackRead,
                item.record_id,
                Some(item.revision),
                format!("cursor={}", item.cursor),
            )
        })
        .collect();
    append_audit(tx, &audit, now).await?;
    Ok(items)
}

/// Folds stored decision texts into counts; an unknown text is a corrupt row.
fn decision_counts(rows: Vec<(String, i64)>) -> Result<DecisionCounts, StorageError> {
    let mut counts = DecisionCounts::default();
    for (k, n) in rows {
        let n = count_col(n);
        match k.as_str() {
            "pending" => counts.pending = n,
            other => match decision_col(other)? {
                Decision::Approved => counts.approved = n,
                Decision::Returned => counts.returned = n,
                Decision::Flagged => counts.flagged = n,
            },
        }
    }
    Ok(counts)
}

/// The number of records the filter matches, from the per-decision counts.
fn filtered_total(counts: &DecisionCounts, filter: Option<DecisionFilter>) -> u64 {
    match filter {
        None => counts.pending + counts.approved + counts.returned + counts.flagged,
        Some(DecisionFilter::Pending) => counts.pending,
        Some(DecisionFilter::Approved) => counts.approved,
        Some(DecisionFilter::Returned) => counts.returned,
        Some(DecisionFilter::Flagged) => counts.flagged,
    }
}

pub(crate) async fn review_list<T: Tx>(
    tx: &mut T,
    filter: &ReviewFilter,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<ReviewPage, StorageError> {
    let items = tx.review_items(filter).await?;
    let counts = decision_counts(tx.review_counts(filter).await?)?;
    let destinations = tx.review_destinations().await?;
    let total = filtered_total(&counts, filter.decision);
    let mut audit = vec![AuditEvent::new(
        actor,
        AuditAction::ReviewListRead,
        format!("items={} offset={}", items.len(), filter.offset),
    )];
    audit.extend(items.iter().map(|it| {
        AuditEvent::on_record(
            actor,
            AuditAction::ReviewSummaryRead,
            it.record_id,
            Some(it.revision),
            "",
        )
    }));
    append_audit(tx, &audit, now).await?;
    Ok(ReviewPage {
        items,
        total,
        counts,
        destinations,
    })
}

pub(crate) async fn review_detail<T: Tx>(
    tx: &mut T,
    record_id: Uuid,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Option<RecordDetail>, StorageError> {
    let Some((device_id, device_name)) = tx.signed_record_owner(record_id).await? else {
        return Ok(None);
    };
    let versions = tx.signed_versions(record_id).await?;
    let decisions = tx.decisions_on(record_id).await?;
    let audit: Vec<AuditEvent> = versions
        .iter()
        .map(|v| {
            AuditEvent::on_record(
                actor,
                AuditAction::VersionRead,
                record_id,
                Some(v.revision),
                "",
            )
        })
        .collect();
    append_audit(tx, &audit, now).await?;
    Ok(Some(RecordDetail {
        record_id,
        device_id,
        device_name,
        versions,
        decisions,
    }))
}

pub(crate) async fn decide<T: Tx>(
    tx: &mut T,
    d: &NewDecision,
    now: DateTime<Utc>,
) -> Result<DecideOutcome, StorageError> {
    let now = to_micros(now);
    // `decision_head` locks the record's row, so the precondition (this is the latest
    // signed revision) holds at commit: a push making a later version the signed head
    // must update that row, and waits. The row lock comes before the ordering lock, in the
    // same order a push takes them, so the two never wait on each other in a circle.
    let Some((device_id, Some(latest))) = tx.decision_head(d.record_id).await? else {
        return Ok(DecideOutcome::RecordNotFound);
    };
    let revision = d.revision;
    if !tx.is_signed_version(d.record_id, revision).await? {
        return Ok(DecideOutcome::UnknownRevision);
    }
    if revision < latest {
        return Ok(DecideOutcome::Superseded {
            latest_revision: latest,
        });
    }
    // Decision cursors must commit in the order they are numbered (see `feedback_since`).
    tx.lock_for_ordering().await?;
    tx.insert_decision(d, device_id, now).await?;
    let record = DecisionRecord {
        record_id: d.record_id,
        revision: d.revision,
        decision: d.decision,
        comment: d.comment.clone(),
        decided_by: d.decided_by.clone(),
        decided_at_utc: now,
    };
    append_log(tx, &[decision_leaf(&record)]).await?;
    let event = AuditEvent::on_record(
        &Actor::Supervisor(d.decided_by.clone()),
        AuditAction::DecisionRecorded,
        d.record_id,
        Some(d.revision),
        format!("decision={}", d.decision.as_str()),
    );
    append_audit(tx, &[event], now).await?;
    Ok(DecideOutcome::Recorded(record))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::revision::rev;

    fn version(record_id: Uuid, revision: u64, status: RecordStatus, sha: &str) -> NewVersion {
        NewVersion {
            record_id,
            revision: rev(revision),
            status,
            document_canonical: "{}".into(),
            content_sha256: sha.into(),
            signature: None,
            signer_user_id: None,
            saved_at_utc: Utc::now(),
            incident_number: String::new(),
            patient_name: String::new(),
            latest_news2: None,
            destination: None,
        }
    }

    fn head(record_id: Uuid, device_id: Uuid, latest_revision: u64) -> RecordHead {
        RecordHead {
            record_id,
            device_id,
            latest_revision: rev(latest_revision),
        }
    }

    #[test]
    fn one_batch_decides_as_one_push_per_version() {
        let device = Uuid::now_v7();
        let r = Uuid::now_v7();
        let items = vec![
            version(r, 1, RecordStatus::Draft, "a"),
            version(r, 3, RecordStatus::Draft, "c"),
            // Older draft than one stored earlier in the same batch.
            version(r, 2, RecordStatus::Draft, "b"),
            // The same version again: a resend.
            version(r, 3, RecordStatus::Draft, "c"),
            // Same key, other content: not stale (it is the latest), but not the same.
            version(r, 3, RecordStatus::Draft, "x"),
            version(r, 4, RecordStatus::Completed, "d"),
        ];
        let plan = plan_push(device, &items, &[head(r, device, 1)], vec![]).unwrap();
        assert_eq!(
            plan.outcomes,
            vec![
                StoreOutcome::Stored,
                StoreOutcome::Stored,
                StoreOutcome::Stale,
                StoreOutcome::Duplicate,
                StoreOutcome::Conflict,
                StoreOutcome::Stored,
            ]
        );
        let stored: Vec<u64> = plan.stored.iter().map(|v| v.revision.get()).collect();
        assert_eq!(stored, vec![1, 3, 4]);
    }

    #[test]
    fn held_versions_and_other_owners() {
        let device = Uuid::now_v7();
        let other = Uuid::now_v7();
        let (mine, theirs) = (Uuid::now_v7(), Uuid::now_v7());
        let items = vec![
            version(mine, 2, RecordStatus::Completed, "same"),
            version(mine, 3, RecordStatus::Completed, "new"),
            version(mine, 2, RecordStatus::Completed, "changed"),
            version(theirs, 1, RecordStatus::Completed, "t"),
        ];
        let plan = plan_push(
            device,
            &items,
            &[head(mine, device, 2), head(theirs, other, 1)],
            vec![((mine, rev(2)), "same".into())],
        )
        .unwrap();
        assert_eq!(
            plan.outcomes,
            vec![
                StoreOutcome::Duplicate,
                StoreOutcome::Stored,
                StoreOutcome::Conflict,
                StoreOutcome::NotOwner,
            ]
        );
    }

    #[test]
    fn a_missing_record_row_is_an_error_not_a_panic() {
        let items = vec![version(Uuid::now_v7(), 1, RecordStatus::Draft, "a")];
        assert!(plan_push(Uuid::now_v7(), &items, &[], vec![]).is_err());
    }

    #[test]
    fn highest_revision_per_record_keeps_first_seen_order() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let vs = [
            version(a, 1, RecordStatus::Completed, ""),
            version(b, 5, RecordStatus::Completed, ""),
            version(a, 3, RecordStatus::Amended, ""),
            version(b, 4, RecordStatus::Amended, ""),
        ];
        let got: Vec<(Uuid, u64)> = highest_per_record(vs.iter())
            .iter()
            .map(|v| (v.record_id, v.revision.get()))
            .collect();
        assert_eq!(got, vec![(a, 3), (b, 5)]);
    }

    #[test]
    fn counts_and_totals_follow_the_filter() {
        let counts = decision_counts(vec![
            ("pending".into(), 4),
            ("approved".into(), 3),
            ("returned".into(), 2),
            ("flagged".into(), 1),
        ])
        .unwrap();
        assert_eq!(filtered_total(&counts, None), 10);
        assert_eq!(filtered_total(&counts, Some(DecisionFilter::Pending)), 4);
        assert_eq!(filtered_total(&counts, Some(DecisionFilter::Approved)), 3);
        assert_eq!(filtered_total(&counts, Some(DecisionFilter::Returned)), 2);
        assert_eq!(filtered_total(&counts, Some(DecisionFilter::Flagged)), 1);
        assert!(decision_counts(vec![("maybe".into(), 1)]).is_err());
    }
}
