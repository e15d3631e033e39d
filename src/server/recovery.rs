//! A server rebuilt from its tablets after its database was lost.
//!
//! The trust starts an empty database with the same log key, the lost log's last checkpoint it
//! kept and that log's entries (`epr-server checkpoint --out FILE --leaves-out FILE`, or the
//! `leaves.jsonl` of an evidence pack): `epr-server serve --recover`. The entries are checked
//! against the checkpoint (its signature by this server's key, and the root they hash to), kept
//! in the database, and a `recovery` leaf naming the checkpoint starts the new log.
//!
//! Owns [`PreviousLog`] (the checked lost log: who was enrolled with which key, consistency
//! proofs inside it for returning tablets) and [`RecoveryReport`] (what has come back). The
//! routes tablets use are in [`super::api`]; the tablet's side is in `crate::sync::engine`.
//!
//! A tablet comes back by signing [`crate::transparency::recovery_statement`] with the key it
//! enrolled with: the lost log's `device_enrolled` leaf names that key, so no enrolment code is
//! needed and no one else can take its place. A tablet revoked in the lost log stays refused.
//! It then sends every signed version it still holds, and the supervisor decisions it received
//! (each taken only if the lost log holds its leaf); the leaves they make are the leaves the
//! lost log had (same fields, same bytes), which is how the report counts them back.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::storage::{DeviceSummary, RecoveryRecord, Storage, StorageError};
use crate::transparency::{
    Checkpoint, HashMapReader, Leaf, LogHash, LogPublicKey, RootBuilder, TreeError, hash_b64,
    leaf_hash, leaf_time, open_checkpoint, prove_consistency,
};

/// Why the lost log cannot be taken as given.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error(
        "the expected checkpoint does not open with this server's log key ({0}): give the key file the lost server used, and a checkpoint it signed"
    )]
    Checkpoint(crate::transparency::IntegrityError),
    #[error("the expected checkpoint covers no entries: there is nothing to recover")]
    Empty,
    #[error(
        "the log entries file holds {have} entries but the checkpoint covers {need}: give the entries saved with that checkpoint, or a later copy"
    )]
    TooFewLeaves { have: u64, need: u64 },
    #[error("line {line} of the log entries file is not a log entry")]
    BadLeaf { line: u64 },
    #[error(
        "the log entries do not hash to the expected checkpoint's root: they are not the log that checkpoint signed (the wrong checkpoint, or the wrong entries file)"
    )]
    RootMismatch,
    #[error("the lost log's tree could not be rebuilt: {0}")]
    Tree(String),
}

impl From<TreeError> for RecoveryError {
    fn from(e: TreeError) -> Self {
        RecoveryError::Tree(format!("{e:?}"))
    }
}

/// A tablet as the lost log had it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousDevice {
    pub public_key: String,
    /// As its `device_enrolled` leaf had it.
    pub enrolled_at_utc: String,
    /// Revoked (or retired) in the lost log: never taken back.
    pub revoked: bool,
}

/// The lost log, checked against its checkpoint.
#[derive(Debug)]
pub struct PreviousLog {
    record: RecoveryRecord,
    checkpoint: Checkpoint,
    leaf_hashes: Vec<LogHash>,
    /// Every stored subtree hash of the lost tree, for consistency proofs.
    hashes: HashMapReader,
    leaf_set: HashSet<[u8; 32]>,
    devices: HashMap<Uuid, PreviousDevice>,
}

impl PreviousLog {
    /// Checks `leaves_text` (one leaf per line; lines past the checkpoint's size are left
    /// out) against the signed checkpoint `note`, opened with `key`.
    pub fn check(
        note: &str,
        leaves_text: &str,
        key: &LogPublicKey,
        now: DateTime<Utc>,
    ) -> Result<Self, RecoveryError> {
        let checkpoint = open_checkpoint(note, key).map_err(RecoveryError::Checkpoint)?;
        let need = checkpoint.size;
        let leaves: Vec<String> = leaves_text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .take(usize::try_from(need).unwrap_or(usize::MAX))
            .map(str::to_owned)
            .collect();
        let record = RecoveryRecord {
            expected_checkpoint: note.to_owned(),
            leaves,
            recovered_at_utc: now,
        };
        Self::build(record, checkpoint)
    }

    /// The lost log a rebuilt server keeps (its checkpoint was checked when recovery began;
    /// the entries are checked against it again).
    pub fn from_record(record: RecoveryRecord) -> Result<Self, RecoveryError> {
        let note = &record.expected_checkpoint;
        let body_end = note.rfind("\n\n").map_or(note.len(), |i| i + 1);
        let checkpoint = Checkpoint::parse_body(&note[..body_end.min(note.len())])
            .map_err(RecoveryError::Checkpoint)?;
        Self::build(record, checkpoint)
    }

    fn build(record: RecoveryRecord, checkpoint: Checkpoint) -> Result<Self, RecoveryError> {
        let need = checkpoint.size;
        if need == 0 {
            return Err(RecoveryError::Empty);
        }
        let have = record.leaves.len() as u64;
        if have < need {
            return Err(RecoveryError::TooFewLeaves { have, need });
        }
        let mut root = RootBuilder::default();
        let mut leaf_hashes = Vec::with_capacity(record.leaves.len());
        let mut devices: HashMap<Uuid, PreviousDevice> = HashMap::new();
        for (line, text) in (1u64..).zip(&record.leaves) {
            let leaf =
                Leaf::decode(text.as_bytes()).map_err(|_| RecoveryError::BadLeaf { line })?;
            // The bytes hashed are the bytes given: a re-encoded leaf would hide an edit.
            let hash = leaf_hash(text.as_bytes());
            root.push(hash);
            leaf_hashes.push(hash);
            match leaf {
                Leaf::DeviceEnrolled {
                    device_id,
                    public_key,
                    enrolled_at_utc,
                } => {
                    devices.insert(
                        device_id,
                        PreviousDevice {
                            public_key,
                            enrolled_at_utc,
                            revoked: false,
                        },
                    );
                }
                Leaf::DeviceRevoked { device_id, .. } => {
                    if let Some(d) = devices.get_mut(&device_id) {
                        d.revoked = true;
                    }
                }
                _ => {}
            }
        }
        if root.root() != checkpoint.root {
            return Err(RecoveryError::RootMismatch);
        }
        let mut hashes = HashMapReader(HashMap::new());
        crate::transparency::append(0, &leaf_hashes, &mut hashes)?;
        let leaf_set = leaf_hashes.iter().map(|h| h.0).collect();
        Ok(Self {
            record,
            checkpoint,
            leaf_hashes,
            hashes,
            leaf_set,
            devices,
        })
    }

    /// What the database keeps.
    pub fn record(&self) -> &RecoveryRecord {
        &self.record
    }

    /// The lost log's last checkpoint the trust kept.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// The signed note of [`PreviousLog::checkpoint`].
    pub fn checkpoint_note(&self) -> &str {
        &self.record.expected_checkpoint
    }

    /// The first leaf of the rebuilt log.
    pub fn recovery_leaf(&self, now: DateTime<Utc>) -> Leaf {
        Leaf::Recovery {
            previous_size: self.checkpoint.size,
            previous_root: hash_b64(&self.checkpoint.root),
            previous_checkpoint_sha256: crate::crypto::sha256_hex(
                self.record.expected_checkpoint.as_bytes(),
            ),
            recovered_at_utc: leaf_time(now),
        }
    }

    /// Whether the lost log holds this leaf (by its hash).
    pub fn holds(&self, leaf: &LogHash) -> bool {
        self.leaf_set.contains(&leaf.0)
    }

    /// The tablet as the lost log had it.
    pub fn device(&self, device_id: Uuid) -> Option<&PreviousDevice> {
        self.devices.get(&device_id)
    }

    /// The root of the lost log's first `size` entries (`None` beyond the expected
    /// checkpoint): so `verify --expect-checkpoint` holds an earlier checkpoint of the lost log
    /// to the entries kept at recovery.
    pub fn root_at(&self, size: u64) -> Option<LogHash> {
        if size > self.checkpoint.size {
            return None;
        }
        let mut root = RootBuilder::default();
        for h in self.leaf_hashes.iter().take(usize::try_from(size).ok()?) {
            root.push(*h);
        }
        Some(root.root())
    }

    /// The consistency proof, inside the lost log, from a checkpoint of `old_size` entries
    /// (one a tablet verified) to the expected checkpoint. `None` when `old_size` is 0 or
    /// beyond the expected checkpoint.
    pub fn consistency_from(&self, old_size: u64) -> Option<Vec<LogHash>> {
        if old_size == 0 || old_size > self.checkpoint.size {
            return None;
        }
        if old_size == self.checkpoint.size {
            return Some(Vec::new());
        }
        prove_consistency(self.checkpoint.size, old_size, &self.hashes).ok()
    }
}

/// How many of one kind of entry the lost log had, and how many are back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub expected: u64,
    pub back: u64,
}

/// A tablet the lost log had enrolled (and not revoked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportDevice {
    pub device_id: Uuid,
    /// The name it came back with; `None` for a tablet not back.
    pub name: Option<String>,
    /// Versions the lost log held from it, and how many of those are back.
    pub versions: Counts,
}

/// What `epr-server recovery-report` prints: how much of the lost log is back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecoveryReport {
    pub recovered_at_utc: DateTime<Utc>,
    /// The expected checkpoint's size: every entry of the lost log.
    pub expected_entries: u64,
    /// Entries of the lost log the rebuilt log holds again, byte for byte.
    pub entries_back: u64,
    pub versions: Counts,
    pub enrolments: Counts,
    pub decisions: Counts,
    /// Entries tablets cannot bring back (clinicians' key registrations are made again by
    /// their tablets; audit heads, revocations and key rotations stay in the recovery record).
    pub other_entries: u64,
    /// Tablets back, and the lost log's tablets that have not come back.
    pub devices_reported: Vec<ReportDevice>,
    pub devices_missing: Vec<ReportDevice>,
    /// Every version and decision is back and every enrolled tablet has come back.
    pub complete: bool,
}

/// Counts the lost log's entries the rebuilt log (`current_leaves`, leaf texts) holds again.
pub fn report(
    previous: &PreviousLog,
    current_leaves: &[String],
    devices: &[DeviceSummary],
) -> RecoveryReport {
    let back: HashSet<[u8; 32]> = current_leaves
        .iter()
        .map(|l| leaf_hash(l.as_bytes()).0)
        .collect();
    let mut versions = Counts::default();
    let mut enrolments = Counts::default();
    let mut decisions = Counts::default();
    let mut other_entries = 0u64;
    let mut entries_back = 0u64;
    let mut per_device: HashMap<Uuid, Counts> = HashMap::new();
    for (text, hash) in previous.record.leaves.iter().zip(&previous.leaf_hashes) {
        let is_back = back.contains(&hash.0);
        entries_back += u64::from(is_back);
        let counts = match Leaf::decode(text.as_bytes()) {
            Ok(Leaf::Version { device_id, .. }) => {
                let d = per_device.entry(device_id).or_default();
                d.expected += 1;
                d.back += u64::from(is_back);
                &mut versions
            }
            Ok(Leaf::DeviceEnrolled { .. }) => &mut enrolments,
            Ok(Leaf::Decision { .. }) => &mut decisions,
            _ => {
                other_entries += 1;
                continue;
            }
        };
        counts.expected += 1;
        counts.back += u64::from(is_back);
    }
    let names: HashMap<Uuid, &str> = devices
        .iter()
        .map(|d| (d.device_id, d.name.as_str()))
        .collect();
    let mut devices_reported = Vec::new();
    let mut devices_missing = Vec::new();
    let mut ids: Vec<(&Uuid, &PreviousDevice)> = previous.devices.iter().collect();
    ids.sort_by_key(|(id, _)| **id);
    for (id, d) in ids {
        let line = ReportDevice {
            device_id: *id,
            name: names.get(id).map(|n| (*n).to_owned()),
            versions: per_device.get(id).copied().unwrap_or_default(),
        };
        if line.name.is_some() {
            devices_reported.push(line);
        } else if !d.revoked {
            devices_missing.push(line);
        }
    }
    let complete = versions.back == versions.expected
        && decisions.back == decisions.expected
        && devices_missing.is_empty();
    RecoveryReport {
        recovered_at_utc: previous.record.recovered_at_utc,
        expected_entries: previous.checkpoint.size,
        entries_back,
        versions,
        enrolments,
        decisions,
        other_entries,
        devices_reported,
        devices_missing,
        complete,
    }
}

/// The report for the server behind `storage`; `None` if it was not rebuilt.
pub async fn report_for(storage: &dyn Storage) -> Result<Option<RecoveryReport>, ReportError> {
    let Some(record) = storage.recovery().await? else {
        return Ok(None);
    };
    let previous = PreviousLog::from_record(record)?;
    let size = storage.log_head().await?.size;
    let leaves = leaf_texts(storage, size).await?;
    let devices = storage.list_devices().await?;
    Ok(Some(report(&previous, &leaves, &devices)))
}

/// The log's leaf texts `0..size`, read a page at a time.
pub async fn leaf_texts(storage: &dyn Storage, size: u64) -> Result<Vec<String>, StorageError> {
    let mut leaves = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    let page = crate::transparency::MAX_LEAVES_PER_ANSWER;
    let mut start = 0;
    while start < size {
        let end = (start + page).min(size);
        leaves.extend(
            storage
                .log_leaves(start, end)
                .await?
                .into_iter()
                .map(|l| l.data),
        );
        start = end;
    }
    Ok(leaves)
}

/// Why the report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("the recovery record is damaged: {0}")]
    Record(#[from] RecoveryError),
}
