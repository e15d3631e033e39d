//! Administration from Rust: enrolment codes, accounts (add, disable, reset, sessions),
//! devices (list, revoke), counts and `verify`.
//!
//! The `epr-server` subcommands are thin wrappers over these, and the app's "try it on this
//! computer" mode and the sync tests call them directly against an in-process server.

use crate::model::Revision;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::ingest::{StoredProblem, recheck_stored};
use super::storage::{
    Actor, AuditAction, AuditChainBreak, AuditChainCheckError, AuditEvent, DeviceSummary,
    SessionScope, Stats, Storage, StorageError, UserChange, UserSummary, check_audit_chain,
};
use crate::crypto::{KdfParams, WeakSecret, check_secret, token_hash_hex};

/// How long an enrolment code works.
pub const ENROLMENT_CODE_TTL_HOURS: i64 = 24;

/// Why an administrative action failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("could not make a random code: {0}")]
    Random(String),
    #[error("usernames are 1 to 64 characters: letters, digits, '.', '_' or '-'")]
    InvalidUsername,
    #[error("that password is not strong enough: {0}")]
    WeakPassword(WeakSecret),
    #[error("there is no account called {0}")]
    NoSuchUser(String),
    #[error("device names are 1 to 100 characters")]
    InvalidDeviceName,
    #[error("password hashing failed: {0}")]
    Hashing(String),
    #[error("cannot write the evidence pack or export: {0}")]
    Pack(String),
    #[error("cannot rebuild from that checkpoint: {0}")]
    Recovery(#[from] super::recovery::RecoveryError),
    #[error(
        "--recover needs an empty database (this one already holds devices or log entries): give a new database, keeping the key file"
    )]
    RecoveryNeedsEmptyDatabase,
    #[error(
        "this database was already rebuilt from another checkpoint; it cannot be rebuilt again from a different one"
    )]
    RecoveredFromAnother,
}

pub use super::storage::Role;

/// A one-time enrolment code, shown once to the administrator; only its hash is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolmentCode {
    /// Grouped for reading aloud, e.g. `K7QM-4XWD-9PHT-2RBN-C6FJ`.
    pub code: String,
    pub expires_at_utc: DateTime<Utc>,
}

/// Crockford-style alphabet: no I, L, O or U, so codes survive being read over a radio.
const CODE_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

pub use crate::protocol::normalise_enrolment_code;

/// Creates an enrolment code for a device called `device_name`, valid for 24 hours.
pub async fn create_enrolment_code(
    storage: &dyn Storage,
    device_name: &str,
) -> Result<EnrolmentCode, AdminError> {
    create_enrolment_code_expiring(
        storage,
        device_name,
        Utc::now() + Duration::hours(ENROLMENT_CODE_TTL_HOURS),
    )
    .await
}

/// As [`create_enrolment_code`] with an explicit expiry (tests use one in the past).
pub async fn create_enrolment_code_expiring(
    storage: &dyn Storage,
    device_name: &str,
    expires_at_utc: DateTime<Utc>,
) -> Result<EnrolmentCode, AdminError> {
    let name = device_name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AdminError::InvalidDeviceName);
    }
    let bytes: [u8; 20] =
        crate::crypto::random_bytes().map_err(|e| AdminError::Random(e.to_string()))?;
    let chars: Vec<char> = bytes
        .iter()
        .map(|b| char::from(CODE_ALPHABET[usize::from(b % 32)]))
        .collect();
    let code = chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-");
    storage
        .create_enrolment_code(
            &token_hash_hex(&normalise_enrolment_code(&code)),
            name,
            Utc::now(),
            expires_at_utc,
        )
        .await?;
    Ok(EnrolmentCode {
        code,
        expires_at_utc,
    })
}

/// Checks a username's shape.
pub fn valid_username(username: &str) -> bool {
    !username.is_empty()
        && username.len() <= 64
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Adds an account with an Argon2id password hash. The binary passes
/// [`KdfParams::INTERACTIVE`]; tests may pass cheaper parameters.
pub async fn add_user(
    storage: &dyn Storage,
    username: &str,
    role: Role,
    password: &str,
    kdf: KdfParams,
) -> Result<(), AdminError> {
    if !valid_username(username) {
        return Err(AdminError::InvalidUsername);
    }
    let hash = strong_password_hash(username, password, kdf).await?;
    storage.add_user(username, role, &hash, Utc::now()).await?;
    Ok(())
}

/// Checks a new password's strength (the username counts against it) and hashes it.
async fn strong_password_hash(
    username: &str,
    password: &str,
    kdf: KdfParams,
) -> Result<String, AdminError> {
    check_secret(password, &[username]).map_err(AdminError::WeakPassword)?;
    let password = zeroize::Zeroizing::new(password.to_owned());
    tokio::task::spawn_blocking(move || crate::crypto::hash_password(&password, kdf))
        .await
        .map_err(|e| AdminError::Hashing(e.to_string()))?
        .map_err(|e| AdminError::Hashing(e.to_string()))
}

/// Sets a new password: every session of the account ends and its failed-login counts clear.
pub async fn reset_password(
    storage: &dyn Storage,
    username: &str,
    password: &str,
    kdf: KdfParams,
) -> Result<(), AdminError> {
    let hash = strong_password_hash(username, password, kdf).await?;
    change_user(storage, username, UserChange::Password(hash)).await
}

/// Disables an account (a leaver): its sessions end at once and logins are refused.
pub async fn disable_user(storage: &dyn Storage, username: &str) -> Result<(), AdminError> {
    change_user(storage, username, UserChange::Disable).await
}

/// Lets a disabled account log in again.
pub async fn enable_user(storage: &dyn Storage, username: &str) -> Result<(), AdminError> {
    change_user(storage, username, UserChange::Enable).await
}

async fn change_user(
    storage: &dyn Storage,
    username: &str,
    change: UserChange,
) -> Result<(), AdminError> {
    if storage.change_user(username, &change, Utc::now()).await? {
        Ok(())
    } else {
        Err(AdminError::NoSuchUser(username.to_owned()))
    }
}

/// Ends every session of an account (a lost laptop); returns how many ended.
pub async fn revoke_sessions(storage: &dyn Storage, username: &str) -> Result<u64, AdminError> {
    if storage.user_by_name(username).await?.is_none() {
        return Err(AdminError::NoSuchUser(username.to_owned()));
    }
    Ok(storage
        .end_sessions(
            &SessionScope::User(username.to_owned()),
            &Actor::Admin,
            Utc::now(),
        )
        .await?)
}

/// Every account, without password hashes.
pub async fn list_users(storage: &dyn Storage) -> Result<Vec<UserSummary>, AdminError> {
    Ok(storage.list_users(Utc::now()).await?)
}

/// Every enrolled device, revoked or not.
pub async fn list_devices(storage: &dyn Storage) -> Result<Vec<DeviceSummary>, AdminError> {
    Ok(storage.list_devices().await?)
}

/// A device as `list-devices --json` shows it: the stored row, its state and whether a
/// record has waited on it for more than a day.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceListing {
    #[serde(flatten)]
    pub device: DeviceSummary,
    pub state: &'static str,
    pub unsent_over_24h: bool,
}

/// Every device with its state at `now`.
pub async fn device_listing(
    storage: &dyn Storage,
    now: chrono::DateTime<Utc>,
) -> Result<Vec<DeviceListing>, AdminError> {
    Ok(storage
        .list_devices()
        .await?
        .into_iter()
        .map(|device| DeviceListing {
            state: device.state(),
            unsent_over_24h: device.unsent_too_long(now),
            device,
        })
        .collect())
}

/// Starts a tablet's retirement: it sends everything it holds, takes no new records, and is
/// refused once it reports nothing left to send. False if unknown; a revoked or retired
/// device is refused.
pub async fn retire_device(storage: &dyn Storage, device_id: Uuid) -> Result<bool, AdminError> {
    Ok(storage.retire_device(device_id, Utc::now()).await?)
}

/// Revokes a device: its token stops working at once; its records stay. False if unknown.
pub async fn revoke_device(storage: &dyn Storage, device_id: Uuid) -> Result<bool, AdminError> {
    Ok(storage.revoke_device(device_id, Utc::now()).await?)
}

/// Whole-database counts.
pub async fn stats(storage: &dyn Storage) -> Result<Stats, AdminError> {
    Ok(storage.stats().await?)
}

/// One stored version that failed its re-check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadVersion {
    pub record_id: Uuid,
    pub revision: Revision,
    pub problem: &'static str,
}

/// A checkpoint published earlier (kept outside the server) that `verify` must find the log
/// consistent with: its signed note and where it came from, for messages.
#[derive(Debug, Clone)]
pub struct ExpectedCheckpoint {
    pub label: String,
    pub note: String,
}

/// The result of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub versions_checked: u64,
    pub bad_versions: Vec<BadVersion>,
    pub audit_entries_checked: u64,
    /// Where the audit chain breaks, if it does.
    pub audit_chain_break: Option<String>,
    /// Leaves in the log.
    pub log_size: u64,
    /// The recomputed root of the whole log (base64).
    pub log_root: String,
    /// Checkpoints the log was proved consistent with (the latest this server signed, and
    /// each expected one).
    pub checkpoints_checked: u64,
    /// Every problem with the log, in plain words: leaves without rows, rows without leaves,
    /// keys that differ from their logged enrolment, checkpoints the log does not extend.
    pub log_findings: Vec<String>,
}

impl VerifyReport {
    /// True when every version, the log and the audit chain hold.
    pub fn is_clean(&self) -> bool {
        self.bad_versions.is_empty()
            && self.audit_chain_break.is_none()
            && self.log_findings.is_empty()
    }
}

/// The evidence pack `verify --report DIR` writes for an independent verifier (see
/// `docs/integrity.md`, "Evidence pack"): files created fresh in an empty directory.
struct Pack {
    dir: std::path::PathBuf,
    leaves: std::io::BufWriter<std::fs::File>,
    versions: std::io::BufWriter<std::fs::File>,
}

impl Pack {
    fn create(dir: &std::path::Path) -> Result<Self, AdminError> {
        let fail = |e: std::io::Error| AdminError::Pack(format!("{}: {e}", dir.display()));
        crate::fs_atomic::create_private_dir_all(dir).map_err(fail)?;
        if std::fs::read_dir(dir).map_err(fail)?.next().is_some() {
            return Err(AdminError::Pack(format!(
                "{} is not empty; give a new or empty directory",
                dir.display()
            )));
        }
        let open = |name: &str| -> Result<std::io::BufWriter<std::fs::File>, AdminError> {
            let f = std::fs::File::create_new(dir.join(name)).map_err(fail)?;
            Ok(std::io::BufWriter::new(f))
        };
        Ok(Self {
            dir: dir.to_owned(),
            leaves: open("leaves.jsonl")?,
            versions: open("versions.jsonl")?,
        })
    }

    fn line(w: &mut std::io::BufWriter<std::fs::File>, text: &str) -> Result<(), AdminError> {
        use std::io::Write;
        w.write_all(text.as_bytes())
            .and_then(|()| w.write_all(b"\n"))
            .map_err(|e| AdminError::Pack(e.to_string()))
    }

    fn file(&self, name: &str, text: &str) -> Result<(), AdminError> {
        std::fs::write(self.dir.join(name), text)
            .map_err(|e| AdminError::Pack(format!("{name}: {e}")))
    }

    fn finish(mut self) -> Result<(), AdminError> {
        use std::io::Write;
        for w in [&mut self.leaves, &mut self.versions] {
            w.flush()
                .and_then(|()| w.get_ref().sync_all())
                .map_err(|e| AdminError::Pack(e.to_string()))?;
        }
        Ok(())
    }
}

/// What the walk over the leaves found.
#[derive(Default)]
struct LeafWalk {
    size: u64,
    root: crate::transparency::LogHash,
    /// Recomputed roots at the sizes asked for.
    roots_at: std::collections::HashMap<u64, crate::transparency::LogHash>,
    /// Version leaves by (record, revision): (leaf index, leaf).
    versions: std::collections::HashMap<(Uuid, u64), (u64, crate::transparency::Leaf)>,
    /// Logged enrolment key by device.
    device_keys: std::collections::HashMap<Uuid, String>,
    /// Logged user signing keys by (device, user), with their leaf index.
    signer_keys: LoggedSigners,
}

/// Users' signing keys as logged, by (device, user): the key, its leaf index and the leaf's
/// bytes.
type LoggedSigners =
    std::collections::HashMap<(Uuid, Uuid), (super::storage::SignerKey, u64, String)>;

/// Reads every leaf, recomputing the tree from the leaf bytes alone (no stored interior hash
/// is trusted) and noting the root at each size in `sizes`.
async fn walk_leaves(
    storage: &dyn Storage,
    sizes: &[u64],
    findings: &mut Vec<String>,
    mut pack: Option<&mut Pack>,
) -> Result<LeafWalk, AdminError> {
    use crate::transparency::{Leaf, RootBuilder, leaf_hash};
    let mut walk = LeafWalk::default();
    let mut builder = RootBuilder::default();
    let wanted: std::collections::HashSet<u64> = sizes.iter().copied().collect();
    if wanted.contains(&0) {
        walk.roots_at.insert(0, builder.root());
    }
    let page_size = crate::transparency::MAX_LEAVES_PER_ANSWER;
    let mut start = 0u64;
    loop {
        let page = storage.log_leaves(start, start + page_size).await?;
        if page.is_empty() {
            break;
        }
        for row in &page {
            if row.idx != builder.size() {
                findings.push(format!(
                    "log: leaf {} is missing (the next stored leaf is {})",
                    builder.size(),
                    row.idx
                ));
                // The tree cannot be recomputed past a hole; what follows is still listed.
                break;
            }
            builder.push(leaf_hash(row.data.as_bytes()));
            if let Some(p) = pack.as_deref_mut() {
                Pack::line(&mut p.leaves, &row.data)?;
            }
            if wanted.contains(&builder.size()) {
                walk.roots_at.insert(builder.size(), builder.root());
            }
            match Leaf::decode(row.data.as_bytes()) {
                Ok(leaf @ Leaf::Version { .. }) => {
                    if let Leaf::Version {
                        record_id,
                        revision,
                        ..
                    } = &leaf
                    {
                        walk.versions
                            .insert((*record_id, *revision), (row.idx, leaf.clone()));
                    }
                }
                Ok(Leaf::DeviceEnrolled {
                    device_id,
                    public_key,
                    ..
                }) => {
                    walk.device_keys.entry(device_id).or_insert(public_key);
                }
                Ok(Leaf::SignerRegistered {
                    device_id,
                    tablet_id,
                    user_id,
                    user_name,
                    public_key,
                    proof,
                    device_endorsement,
                    ..
                }) => {
                    let identity = crate::crypto::SignerIdentity {
                        user_id,
                        user_name,
                        public_key,
                        tablet_id,
                    };
                    if !identity.check_proof(&proof) {
                        findings.push(format!(
                            "log: leaf {} registers a signing key for user {user_id} whose proof of possession does not verify",
                            row.idx
                        ));
                    }
                    // Vouched for by the device's key as logged at its (earlier) enrolment.
                    let endorsed = walk.device_keys.get(&device_id).is_some_and(|k| {
                        identity.check_endorsement(device_id, k, &device_endorsement)
                    });
                    if !endorsed {
                        findings.push(format!(
                            "log: leaf {} registers a signing key for user {user_id} that device {device_id} did not endorse with its enrolled key",
                            row.idx
                        ));
                    }
                    let key = super::storage::SignerKey {
                        public_key_b64: identity.public_key,
                        tablet_id,
                        user_name: identity.user_name,
                    };
                    if let Some((first, _, _)) = walk.signer_keys.get(&(device_id, user_id))
                        && *first != key
                    {
                        findings.push(format!(
                            "log: leaf {} registers user {user_id} on device {device_id} again with a different key",
                            row.idx
                        ));
                    } else {
                        walk.signer_keys.entry((device_id, user_id)).or_insert((
                            key,
                            row.idx,
                            row.data.clone(),
                        ));
                    }
                }
                Ok(_) => {}
                Err(_) => findings.push(format!("log: leaf {} cannot be read", row.idx)),
            }
        }
        let last = page.last().map_or(start, |r| r.idx);
        if builder.size() != last + 1 {
            break;
        }
        start = last + 1;
    }
    walk.size = builder.size();
    walk.root = builder.root();
    Ok(walk)
}

/// Re-checks the whole server against its log: the tree recomputed from the leaves must
/// match the latest checkpoint this server signed and every `expected` checkpoint; every
/// version row must have its leaf (and every version leaf its row), agree with it, and verify
/// against the device key **as logged at enrolment**; every device's current key must be the
/// one logged; and the audit chain must hold. Reads every document, so the run is audited.
///
/// With `pack`, also writes the evidence pack for an independent verifier into that (new or
/// empty) directory: the log key, the checkpoints, every leaf, every version's hash,
/// signature and logged key, and a summary in plain words.
pub async fn verify(
    storage: &dyn Storage,
    log_key: &crate::transparency::LogPublicKey,
    expected: &[ExpectedCheckpoint],
    pack_dir: Option<&std::path::Path>,
) -> Result<VerifyReport, AdminError> {
    use crate::transparency::{Checkpoint, hash_b64, leaf_time, open_checkpoint};
    let mut findings = Vec::new();
    let mut pack = pack_dir.map(Pack::create).transpose()?;
    let mut checkpoint_notes = Vec::new();

    // The checkpoints to hold the log to.
    let mut checkpoints: Vec<(String, Checkpoint)> = Vec::new();
    if let Some((_, note)) = storage.latest_checkpoint().await? {
        checkpoint_notes.push(("latest.checkpoint".to_owned(), note.clone()));
        match open_checkpoint(&note, log_key) {
            Ok(c) => checkpoints.push(("the latest checkpoint this server signed".into(), c)),
            Err(e) => findings.push(format!(
                "log: the latest checkpoint kept in the database does not verify with the log key: {e}"
            )),
        }
    }
    for (i, e) in expected.iter().enumerate() {
        checkpoint_notes.push((format!("expected-{}.checkpoint", i + 1), e.note.clone()));
        match open_checkpoint(&e.note, log_key) {
            Ok(c) => checkpoints.push((format!("expected checkpoint {}", e.label), c)),
            Err(err) => findings.push(format!(
                "log: expected checkpoint {} does not verify with the log key: {err}",
                e.label
            )),
        }
    }
    let sizes: Vec<u64> = checkpoints.iter().map(|(_, c)| c.size).collect();
    let walk = walk_leaves(storage, &sizes, &mut findings, pack.as_mut()).await?;
    // A server rebuilt from its tablets holds the lost log's entries as kept at recovery: a
    // checkpoint of the lost log is held to those, and the rebuilt log's first leaf must name
    // the checkpoint they were checked against.
    let previous = match storage.recovery().await? {
        None => None,
        Some(record) => match super::recovery::PreviousLog::from_record(record) {
            Ok(p) => Some(p),
            Err(e) => {
                findings.push(format!("log: the recovery record is damaged: {e}"));
                None
            }
        },
    };
    if let Some(p) = &previous {
        let first = storage.log_leaves(0, 1).await?;
        let names_it = first.first().is_some_and(|l| {
            matches!(
                crate::transparency::Leaf::decode(l.data.as_bytes()),
                Ok(crate::transparency::Leaf::Recovery { previous_size, previous_root, previous_checkpoint_sha256, .. })
                    if previous_size == p.checkpoint().size
                        && previous_root == hash_b64(&p.checkpoint().root)
                        && previous_checkpoint_sha256 == crate::crypto::sha256_hex(p.checkpoint_note().as_bytes())
            )
        });
        if !names_it {
            findings.push(
                "log: the first entry does not name the checkpoint this server was rebuilt from"
                    .to_owned(),
            );
        }
    }
    for (label, c) in &checkpoints {
        let in_lost_log = previous
            .as_ref()
            .and_then(|p| p.root_at(c.size))
            .is_some_and(|root| root == c.root);
        if in_lost_log && walk.roots_at.get(&c.size) != Some(&c.root) {
            continue;
        }
        match walk.roots_at.get(&c.size) {
            None => findings.push(format!(
                "log: {label} covers {} entries but the log now holds {}: entries were removed",
                c.size, walk.size
            )),
            Some(root) if *root != c.root => findings.push(format!(
                "log: {label} (size {}) does not match the stored entries: history was rewritten",
                c.size
            )),
            Some(_) => {}
        }
    }

    // Devices: the key in the table must be the key logged at enrolment.
    for d in storage.list_devices().await? {
        match walk.device_keys.get(&d.device_id) {
            None => findings.push(format!(
                "device {}: enrolled in the database but its enrolment is not in the log",
                d.device_id
            )),
            Some(k) if *k != d.public_key => findings.push(format!(
                "device {}: its public key in the database differs from the key logged at enrolment",
                d.device_id
            )),
            Some(_) => {}
        }
    }

    // Users' signing keys: each row must be the registration logged.
    for s in storage.all_signers().await? {
        match walk.signer_keys.get(&(s.device_id, s.identity.user_id)) {
            None => findings.push(format!(
                "signer {} on device {}: registered in the database but not in the log",
                s.identity.user_id, s.device_id
            )),
            Some((k, _, _)) if *k != s.key() => findings.push(format!(
                "signer {} on device {}: its key in the database differs from the key logged at registration",
                s.identity.user_id, s.device_id
            )),
            Some((_, idx, data)) if *idx != s.leaf_idx || s.leaf().encode() != data.as_bytes() => {
                findings.push(format!(
                    "signer {} on device {}: its row in the database differs from its logged registration (leaf {idx})",
                    s.identity.user_id, s.device_id
                ))
            }
            Some(_) => {}
        }
    }

    // Versions: each row against its leaf and the logged key.
    let mut after = 0i64;
    let mut checked = 0u64;
    let mut bad = Vec::new();
    let mut seen: std::collections::HashSet<(Uuid, u64)> = std::collections::HashSet::new();
    let logged_keys = std::sync::Arc::new((walk.device_keys.clone(), walk.signer_keys.clone()));
    let mut checking: Option<tokio::task::JoinHandle<Vec<BadVersion>>> = None;
    loop {
        let page = storage.versions_after(after, 500).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        checked += page.len() as u64;
        for v in &page {
            let key = (v.record_id, v.revision.get());
            seen.insert(key);
            if let Some(p) = pack.as_mut() {
                let line = serde_json::json!({
                    "record_id": v.record_id,
                    "revision": v.revision.get(),
                    "status": v.status_text,
                    "content_sha256": v.content_sha256,
                    "signature": v.signature,
                    "device_id": v.device_id,
                    "saved_at_utc": leaf_time(v.saved_at_utc),
                    "logged_device_key": walk.device_keys.get(&v.device_id),
                    "leaf_index": walk.versions.get(&key).map(|(i, _)| *i),
                    "signature_format": if v.signer_user_id.is_some() { 2 } else { 1 },
                    "signer_user_id": v.signer_user_id,
                    "logged_signer_key": v.signer_user_id
                        .and_then(|u| walk.signer_keys.get(&(v.device_id, u)))
                        .map(|(k, _, _)| &k.public_key_b64),
                    "signer_tablet_id": v.signer_user_id
                        .and_then(|u| walk.signer_keys.get(&(v.device_id, u)))
                        .map(|(k, _, _)| k.tablet_id),
                });
                Pack::line(&mut p.versions, &line.to_string())?;
            }
            match walk.versions.get(&key) {
                None => findings.push(format!(
                    "record {} revision {}: stored but not in the log",
                    v.record_id, v.revision
                )),
                Some((idx, leaf)) => {
                    if *leaf != v.leaf() {
                        findings.push(format!(
                            "record {} revision {}: the stored row differs from its logged entry (leaf {idx})",
                            v.record_id, v.revision
                        ));
                    }
                }
            }
        }
        // Re-check this page on the blocking pool while the next page is read.
        let keys = std::sync::Arc::clone(&logged_keys);
        let task = tokio::task::spawn_blocking(move || recheck_page(page, &keys.0, &keys.1));
        if let Some(previous) = checking.replace(task) {
            bad.extend(
                previous
                    .await
                    .map_err(|e| AdminError::Hashing(e.to_string()))?,
            );
        }
    }
    if let Some(last) = checking.take() {
        bad.extend(last.await.map_err(|e| AdminError::Hashing(e.to_string()))?);
    }
    let mut missing: Vec<(u64, Uuid, u64)> = walk
        .versions
        .iter()
        .filter(|(k, _)| !seen.contains(*k))
        .map(|(k, (idx, _))| (*idx, k.0, k.1))
        .collect();
    missing.sort_unstable();
    for (idx, record_id, revision) in missing {
        findings.push(format!(
            "record {record_id} revision {revision}: in the log (leaf {idx}) but missing from the database"
        ));
    }

    let versions_checked = checked;
    let (audit_entries_checked, audit_chain_break) = match check_audit_chain(storage).await {
        Ok(n) => (n, None),
        Err(AuditChainCheckError::Broken(AuditChainBreak { seq, problem })) => {
            (0, Some(format!("entry {seq}: {problem}")))
        }
        Err(AuditChainCheckError::Storage(e)) => return Err(e.into()),
    };
    storage
        .append_audit(
            &[AuditEvent::new(
                &Actor::Admin,
                AuditAction::Verified,
                format!(
                    "versions={versions_checked} bad={} log_size={} findings={}",
                    bad.len(),
                    walk.size,
                    findings.len()
                ),
            )],
            Utc::now(),
        )
        .await?;
    let report = VerifyReport {
        versions_checked,
        bad_versions: bad,
        audit_entries_checked,
        audit_chain_break,
        log_size: walk.size,
        log_root: hash_b64(&walk.root),
        checkpoints_checked: checkpoints.len() as u64,
        log_findings: findings,
    };
    if let Some(p) = pack {
        p.file("log-key.txt", &format!("{}\n", log_key.to_vkey()))?;
        for (name, note) in &checkpoint_notes {
            p.file(name, note)?;
        }
        let rotations = storage.key_rotations().await?;
        p.file("key-rotations.txt", &rotations.concat())?;
        p.file("summary.txt", &pack_summary(&report, log_key))?;
        p.finish()?;
    }
    Ok(report)
}

/// The evidence pack's summary, in plain words.
fn pack_summary(r: &VerifyReport, key: &crate::transparency::LogPublicKey) -> String {
    let mut out = format!(
        "Integrity report for log {} (key fingerprint {}), written {}.\n\n\
         The log holds {} entries; recomputed from the entries alone its root is {}.\n\
         It was checked against {} signed checkpoint(s). {} record version(s) were checked \
         against their logged entries and the keys as logged (the device's at enrolment for \
         format-1 signatures, the signing clinician's at registration for format 2); the audit \
         chain holds {} entries.\n\n",
        key.name,
        key.fingerprint(),
        Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        r.log_size,
        r.log_root,
        r.checkpoints_checked,
        r.versions_checked,
        r.audit_entries_checked,
    );
    if r.is_clean() {
        out.push_str("Result: no problem found.\n");
    } else {
        out.push_str("Result: PROBLEMS FOUND:\n");
        for f in &r.log_findings {
            out.push_str(&format!("- {f}\n"));
        }
        for b in &r.bad_versions {
            out.push_str(&format!(
                "- record {} revision {}: {}\n",
                b.record_id, b.revision, b.problem
            ));
        }
        if let Some(b) = &r.audit_chain_break {
            out.push_str(&format!("- audit chain: {b}\n"));
        }
    }
    out.push_str(
        "\nFiles: log-key.txt (the verifier key), *.checkpoint (signed checkpoints), \
         leaves.jsonl (every log entry, one per line, exactly the bytes hashed), versions.jsonl \
         (every stored version's hash, signature and logged key), key-rotations.txt. \
         docs/integrity.md says how to check them.\n",
    );
    out
}

/// Re-checks a page of versions (hash, schema, signature against the key logged for each
/// device) on every core: the signature and document checks are the bulk of `verify`.
fn recheck_page(
    mut page: Vec<super::storage::StoredVersion>,
    logged_keys: &std::collections::HashMap<Uuid, String>,
    logged_signers: &LoggedSigners,
) -> Vec<BadVersion> {
    for v in &mut page {
        // The keys that count are the ones logged at enrolment and registration, not the
        // tables'.
        v.public_key_b64 = logged_keys.get(&v.device_id).cloned().unwrap_or_default();
        v.signer = v
            .signer_user_id
            .and_then(|u| logged_signers.get(&(v.device_id, u)))
            .map(|(k, _, _)| k.clone());
    }
    let check = |v: &super::storage::StoredVersion| {
        recheck_stored(v).err().map(|p: StoredProblem| BadVersion {
            record_id: v.record_id,
            revision: v.revision,
            problem: p.describe(),
        })
    };
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8);
    let chunk = page.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = page
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().filter_map(check).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                // A check that died is a finding, never a silent pass.
                h.join().unwrap_or_else(|_| {
                    vec![BadVersion {
                        record_id: Uuid::nil(),
                        revision: Revision::FIRST,
                        problem: "a check stopped unexpectedly; run verify again",
                    }]
                })
            })
            .collect()
    })
}

/// What `export` wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportSummary {
    pub bundles: u64,
    pub log_size: u64,
}

/// Writes every record's latest signed version (saved at or after `since`, when given) as a
/// FHIR document Bundle, one per line, into the new or empty directory `dir`, with a manifest
/// naming the log's checkpoint `checkpoint` (see [`crate::bulk_export`]). Two passes over the
/// versions: the first finds each record's latest signed revision, the second writes those,
/// so memory holds ids, never documents. Audited.
pub async fn export_ndjson(
    storage: &dyn Storage,
    dir: &std::path::Path,
    since: Option<DateTime<Utc>>,
    checkpoint: Option<&str>,
) -> Result<ExportSummary, AdminError> {
    use crate::bulk_export::BulkExport;
    let fail = |e: crate::bulk_export::BulkExportError| AdminError::Pack(e.to_string());
    let mut export = BulkExport::create(dir).map_err(fail)?;
    let log_size = storage.log_head().await?.size;
    let signed = |v: &super::storage::StoredVersion| v.status.is_some_and(|s| s.is_signed());

    let mut latest: std::collections::HashMap<Uuid, Revision> = std::collections::HashMap::new();
    let mut after = 0i64;
    loop {
        let page = storage.versions_after(after, 500).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for v in page.iter().filter(|v| signed(v)) {
            let entry = latest.entry(v.record_id).or_insert(v.revision);
            *entry = (*entry).max(v.revision);
        }
    }

    let now = Utc::now();
    let mut after = 0i64;
    loop {
        let page = storage.versions_after(after, 500).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for v in &page {
            let wanted = signed(v)
                && latest.get(&v.record_id) == Some(&v.revision)
                && since.is_none_or(|t| v.saved_at_utc >= t);
            if !wanted {
                continue;
            }
            let encounter: crate::model::Encounter =
                serde_json::from_str(&v.document).map_err(|_| {
                    AdminError::Pack(format!(
                        "record {} revision {} cannot be read; run verify",
                        v.record_id, v.revision
                    ))
                })?;
            export
                .add(&encounter, &v.version_meta(), now)
                .map_err(fail)?;
        }
    }
    let bundles = export.finish(now, checkpoint).map_err(fail)?;
    storage
        .append_audit(
            &[AuditEvent::new(
                &Actor::Admin,
                AuditAction::Exported,
                format!("bundles={bundles} log_size={log_size}"),
            )],
            Utc::now(),
        )
        .await?;
    Ok(ExportSummary { bundles, log_size })
}

/// The log's current checkpoint, signed and kept (for `epr-server checkpoint --out`).
/// Starts a log rebuilt from the tablets (`serve --recover`) on an empty database: checks the
/// lost log's entries against its checkpoint (signed by `signer`'s key), keeps both, and logs
/// the `recovery` leaf. Run again with the same checkpoint on a database it already rebuilt,
/// it changes nothing (a restarted server). Returns the number of entries the lost log had.
pub async fn begin_recovery(
    storage: &dyn Storage,
    signer: &super::log_key::LogSigner,
    checkpoint_note: &str,
    leaves_text: &str,
) -> Result<u64, AdminError> {
    if let Some(existing) = storage.recovery().await? {
        return if existing.expected_checkpoint == checkpoint_note {
            Ok(existing.leaves.len() as u64)
        } else {
            Err(AdminError::RecoveredFromAnother)
        };
    }
    let now = Utc::now();
    let previous =
        super::recovery::PreviousLog::check(checkpoint_note, leaves_text, &signer.public(), now)?;
    let leaf = previous.recovery_leaf(now);
    if !storage.begin_recovery(previous.record(), &leaf).await? {
        return Err(AdminError::RecoveryNeedsEmptyDatabase);
    }
    Ok(previous.checkpoint().size)
}

/// The log's entries `0..size`, one leaf text per line: what the trust keeps beside a
/// checkpoint of that size, so a lost server can be rebuilt (`serve --recover`).
pub async fn log_leaves_text(storage: &dyn Storage, size: u64) -> Result<String, AdminError> {
    let mut out = String::new();
    for leaf in super::recovery::leaf_texts(storage, size).await? {
        out.push_str(&leaf);
        out.push('\n');
    }
    Ok(out)
}

pub async fn current_checkpoint(
    storage: &dyn Storage,
    signer: &super::log_key::LogSigner,
) -> Result<String, AdminError> {
    let head = storage.log_head().await?;
    let note = signer.sign(&head);
    storage
        .save_checkpoint(head.size, &note, Utc::now())
        .await?;
    Ok(note)
}
