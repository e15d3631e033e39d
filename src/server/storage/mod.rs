//! Server storage: one async trait, [`Storage`], with a SQLite and a PostgreSQL implementation.
//!
//! Owns every SQL statement the server runs, the migrations under `migrations/server/`, and
//! the hash-chained audit table. The rules live once, in [`core`]: each backend file holds
//! only its SQL text, its row mapping and how it begins and commits a transaction. Handlers validate input (hashes, signatures, schema) before
//! calling in; storage decides what the database says: ownership, dedup through the UNIQUE
//! constraint on (record id, revision), staleness, decisions. Every multi-statement write is
//! one transaction, and every write of patient data appends its audit entry inside that same
//! transaction, so a record and its audit entry commit together or not at all.
//! Never used by the device: the device store is `crate::store`.

mod core;
pub mod pg_tls;
pub mod postgres;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::model::{RecordStatus, Revision};
use crate::protocol::{
    Decision, DecisionCounts, DecisionFilter, DecisionRecord, FeedbackItem, ReviewSummary,
};

/// Why a storage call failed. These are server-side faults: the API answers 503, never 4xx.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("postgres pool: {0}")]
    Pool(String),
    #[error("PostgreSQL TLS: {0}")]
    Tls(String),
    #[error("unsupported database URL (expected sqlite://PATH or postgres://...)")]
    UnsupportedUrl,
    #[error("the database holds a value this server cannot read: {0}")]
    Corrupt(String),
    #[error("a username with that name already exists")]
    UserExists,
    /// What this backend leaves to another tool, in words naming that tool.
    #[error("{0}")]
    NotSupported(&'static str),
    /// A device registered a user id already held with a different key.
    #[error(
        "this user id is already registered with a different key, or the tablet id differs from the one this device's users name"
    )]
    SignerConflict,
    #[error("the database file cannot be created: {0}")]
    File(String),
    /// Retiring a device already revoked or retired.
    #[error("this device is already revoked or retired")]
    DeviceNotActive,
    #[error("background task failed: {0}")]
    Task(String),
    #[error("migration {version} failed: {source}")]
    Migration {
        version: u32,
        #[source]
        source: Box<StorageError>,
    },
}

/// The leaf a decision is logged as (its comment by hash only).
pub fn decision_leaf_of(d: &crate::protocol::DecisionRecord) -> crate::transparency::Leaf {
    core::decision_leaf(&crate::protocol::DecisionRecord {
        decided_at_utc: to_micros(d.decided_at_utc),
        ..d.clone()
    })
}

/// Opens the database named by `url` (`sqlite://PATH`, `sqlite::memory:` or `postgres://...`)
/// and applies pending migrations. One call per process; the result is shared by all requests.
pub async fn open_storage(url: &str) -> Result<Arc<dyn Storage>, StorageError> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        let s = sqlite::SqliteStorage::open(std::path::Path::new(path)).await?;
        Ok(Arc::new(s))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let s = postgres::PostgresStorage::open(url).await?;
        Ok(Arc::new(s))
    } else {
        Err(StorageError::UnsupportedUrl)
    }
}

/// An enrolled device as seen by the auth layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceIdentity {
    pub device_id: Uuid,
    pub device_name: String,
    /// Ed25519 public key, base64, given at enrolment.
    pub public_key_b64: String,
    /// Revoked devices are refused (401) but their records stay.
    pub revoked: bool,
    /// When it last called the API (kept to the minute), if ever.
    pub last_seen_utc: Option<DateTime<Utc>>,
}

/// How often a device's or session's "last used" time is written: at most once per this
/// many seconds, so reads do not each take the write lock.
pub const LAST_USED_RESOLUTION_SECS: i64 = 60;

/// An enrolled device as `list-devices` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceSummary {
    pub device_id: Uuid,
    pub name: String,
    /// Its Ed25519 public key (base64) as the devices table holds it now; `verify` compares
    /// it with the key logged at enrolment.
    pub public_key: String,
    pub enrolled_at_utc: DateTime<Utc>,
    pub last_seen_utc: Option<DateTime<Utc>>,
    pub revoked: bool,
    pub revoked_at_utc: Option<DateTime<Utc>>,
    /// What the tablet last reported (each sync): versions not yet acknowledged, when the
    /// oldest of them was saved, signed versions it holds, its app version and the size of
    /// the checkpoint it verified. `None` until it first reports.
    pub pending: Option<u64>,
    pub oldest_pending_utc: Option<DateTime<Utc>>,
    pub held_versions: Option<u64>,
    pub app_version: Option<String>,
    pub verified_tree_size: Option<u64>,
    pub reported_at_utc: Option<DateTime<Utc>>,
    /// `retire-device` was run at this time.
    pub retiring_at_utc: Option<DateTime<Utc>>,
    /// The retiring tablet reported nothing left to send and was retired.
    pub retired_at_utc: Option<DateTime<Utc>>,
}

/// How long a record may wait on a tablet before `list-devices` and the supervisors' Tablets
/// view mark it.
pub const UNSENT_WARNING_HOURS: i64 = 24;

impl DeviceSummary {
    /// `active`, `retiring`, `retired` or `revoked`.
    pub fn state(&self) -> &'static str {
        match (self.retired_at_utc, self.revoked, self.retiring_at_utc) {
            (Some(_), _, _) => "retired",
            (None, true, _) => "revoked",
            (None, false, Some(_)) => "retiring",
            (None, false, None) => "active",
        }
    }

    /// As supervisors and `list-devices --json` see it at `now`.
    pub fn tablet_status(&self, now: DateTime<Utc>) -> crate::protocol::TabletStatus {
        crate::protocol::TabletStatus {
            device_id: self.device_id,
            name: self.name.clone(),
            state: self.state().to_owned(),
            enrolled_at_utc: self.enrolled_at_utc,
            last_seen_utc: self.last_seen_utc,
            reported_at_utc: self.reported_at_utc,
            pending: self.pending,
            oldest_pending_utc: self.oldest_pending_utc,
            held_versions: self.held_versions,
            app_version: self.app_version.clone(),
            verified_tree_size: self.verified_tree_size,
            unsent_over_24h: self.unsent_too_long(now),
        }
    }

    /// True when the tablet last reported a record unsent for more than
    /// [`UNSENT_WARNING_HOURS`] at `now`.
    pub fn unsent_too_long(&self, now: DateTime<Utc>) -> bool {
        self.pending.unwrap_or(0) > 0
            && self
                .oldest_pending_utc
                .is_some_and(|t| now - t > chrono::Duration::hours(UNSENT_WARNING_HOURS))
    }
}

/// An account as `list-users` shows it (never its password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserSummary {
    pub username: String,
    /// The stored role text (unknown roles are shown as stored).
    pub role: String,
    pub created_at_utc: DateTime<Utc>,
    pub disabled: bool,
    pub disabled_at_utc: Option<DateTime<Utc>>,
    /// Sessions that have not expired.
    pub live_sessions: u64,
}

/// A change to an account by an administrator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserChange {
    /// Refuses logins and ends every session at once.
    Disable,
    Enable,
    /// A new password hash; ends every session and clears failed-login counts.
    Password(String),
}

/// Which sessions to end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionScope {
    /// One session (logout), by token hash.
    Token(String),
    /// Every session of one user.
    User(String),
}

/// When failed logins lock a (username, client address) pair, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Attempts allowed before the pair is locked.
    pub failures_before_lockout: u32,
    /// First lockout; doubles with each further failure.
    pub base_secs: u64,
    pub max_secs: u64,
}

impl LockoutPolicy {
    /// How long the pair is locked after `failures` failed (or in-flight) attempts, if at all.
    pub fn lockout_secs(&self, failures: u32) -> Option<u64> {
        let over = failures.checked_sub(self.failures_before_lockout)?;
        let factor = 1u64.checked_shl(over.min(20)).unwrap_or(u64::MAX);
        Some(self.base_secs.saturating_mul(factor).min(self.max_secs))
    }
}

/// Whether a login attempt may go on to the password check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginReservation {
    /// Counted as a failure until a success clears it: concurrent attempts cannot all slip
    /// in under the limit.
    Reserved,
    Locked {
        retry_after_secs: u64,
    },
}

/// Roles an account can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Reviews completed records and decides on them.
    Supervisor,
}

impl Role {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Supervisor => "supervisor",
        }
    }

    /// Parses [`Role::as_str`]; `None` for a role this server does not know.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "supervisor" => Some(Role::Supervisor),
            _ => None,
        }
    }
}

/// A supervisor's valid session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionIdentity {
    pub username: String,
    /// `None` if the stored role is one this server does not know: such a session may do
    /// nothing.
    pub role: Option<Role>,
    /// Last request made with it (kept to the minute); the idle timeout counts from here.
    pub last_used_at_utc: DateTime<Utc>,
}

/// A stored account.
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub username: String,
    /// `None` if the stored role is one this server does not know: such an account cannot
    /// sign in.
    pub role: Option<Role>,
    pub password_hash: String,
    /// Disabled accounts cannot log in.
    pub disabled: bool,
}

/// Failed (or in-flight) logins so far for one username from one client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginFailures {
    pub failures: u32,
    pub last_failure_at_utc: DateTime<Utc>,
}

/// What a device asks for at enrolment, after the handler has checked the key's shape.
#[derive(Debug, Clone)]
pub struct NewDevice {
    pub code_hash: String,
    pub device_id: Uuid,
    pub public_key_b64: String,
    pub token_hash: String,
}

/// A tablet taking its place again in a log rebuilt from the tablets: the id, key and
/// enrolment time its `device_enrolled` leaf had in the lost log, and a new token.
#[derive(Debug, Clone)]
pub struct RestoredDevice {
    pub device_id: Uuid,
    pub public_key_b64: String,
    /// As the lost log's leaf had it (leaf time text), so the new leaf is the same leaf.
    pub enrolled_at_utc: String,
    pub token_hash: String,
    pub name: String,
}

/// What became of a tablet's return to a rebuilt server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreOutcome {
    /// Back (again, after a lost answer: a new token replaces the last).
    Restored,
    /// Revoked or retired since the rebuild: refused.
    NotActive,
}

/// What a rebuilt server keeps of the lost log: its last checkpoint the trust kept (a signed
/// note) and its entries, one leaf text each.
#[derive(Debug, Clone)]
pub struct RecoveryRecord {
    pub expected_checkpoint: String,
    pub leaves: Vec<String>,
    pub recovered_at_utc: DateTime<Utc>,
}

/// Result of consuming an enrolment code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrolOutcome {
    /// Under the name the administrator gave the code.
    Enrolled {
        device_name: String,
    },
    UnknownCode,
    CodeUsed,
    CodeExpired,
    /// The key already belongs to an active device: one key, one device.
    KeyInUse,
}

/// A pushed version that passed the handler's hash, signature and schema checks.
#[derive(Debug, Clone)]
pub struct NewVersion {
    pub record_id: Uuid,
    /// Fits in `i64` (checked by the handler).
    pub revision: Revision,
    pub status: RecordStatus,
    /// Canonical JSON of the document: what the content hash covers.
    pub document_canonical: String,
    pub content_sha256: String,
    pub signature: Option<String>,
    /// The user whose registered key made the signature (format 2).
    pub signer_user_id: Option<Uuid>,
    pub saved_at_utc: DateTime<Utc>,
    /// Review columns, derived from the document.
    pub incident_number: String,
    pub patient_name: String,
    pub latest_news2: Option<u8>,
    /// Where the patient was taken, when picked from the trust's list: (ODS code, name).
    pub destination: Option<(String, String)>,
}

impl NewVersion {
    /// Lower-case text matched by the review list's free-text filter.
    pub fn search_text(&self) -> String {
        format!("{}\n{}", self.incident_number, self.patient_name).to_lowercase()
    }
}

/// The log's state: the tree of its first `size` leaves has root `root`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogHead {
    pub size: u64,
    pub root: crate::transparency::LogHash,
}

/// What a push stored: one outcome per item, each stored or duplicate item's leaf index,
/// and the log's head after the push committed.
#[derive(Debug, Clone, PartialEq)]
pub struct PushStored {
    pub outcomes: Vec<StoreOutcome>,
    pub leaf_indexes: Vec<Option<u64>>,
    pub log: LogHead,
}

/// One imported version of the trust's reference data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceVersion {
    /// The version the document carries; each import must be higher than the last.
    pub version: u64,
    /// Canonical JSON of the document: what the hash and the signed statement cover.
    pub document: String,
    pub document_sha256: String,
    /// The statement the log key signed for it (`transparency::sign_reference`).
    pub signed_note: String,
    pub imported_at_utc: DateTime<Utc>,
}

/// One leaf of the log as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLeafRow {
    pub idx: u64,
    pub kind: String,
    /// For a version leaf: the version it logs.
    pub record_id: Option<Uuid>,
    pub revision: Option<Revision>,
    /// The leaf's canonical JSON: the bytes its hash covers.
    pub data: String,
}

/// The pieces of a review detail's log proof (see `core::review_proof`).
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewProofParts {
    pub head: LogHead,
    pub enrolment: LogLeafRow,
    pub enrolment_proof: Vec<crate::transparency::LogHash>,
    /// Per version: revision, leaf index, inclusion proof.
    pub versions: Vec<(Revision, u64, Vec<crate::transparency::LogHash>)>,
    /// Per signing user asked for: their registration leaf and its inclusion proof.
    pub signers: Vec<(LogLeafRow, Vec<crate::transparency::LogHash>)>,
}

/// What storage did with one [`NewVersion`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOutcome {
    Stored,
    Duplicate,
    Stale,
    Conflict,
    NotOwner,
}

/// One stored version, as read back for review and `verify`.
#[derive(Debug, Clone)]
pub struct StoredVersion {
    pub seq: i64,
    pub record_id: Uuid,
    pub revision: Revision,
    /// As stored; `None` if the column holds something unknown (itself a finding for `verify`).
    pub status: Option<RecordStatus>,
    pub status_text: String,
    pub document: String,
    pub content_sha256: String,
    pub signature: Option<String>,
    pub saved_at_utc: DateTime<Utc>,
    pub received_at_utc: DateTime<Utc>,
    pub device_id: Uuid,
    pub public_key_b64: String,
    /// Format 2: the user whose key signed, and that key's registration as this server holds
    /// it (`verify` replaces it with the registration as logged).
    pub signer_user_id: Option<Uuid>,
    pub signer: Option<SignerKey>,
}

// SQL text both backends share (the same schema, the same column order).

/// A stored version's columns, with its device's key and its signer's registration.
pub(crate) const VERSION_COLUMNS: &str = "v.seq, v.record_id, v.revision, v.status, v.document, \
     v.content_sha256, v.signature, v.saved_at_utc, v.received_at_utc, v.device_id, d.public_key, \
     v.signer_user_id, s.public_key, s.tablet_id, s.user_name";

/// The signer registration a version names, joined beside its device.
pub(crate) const SIGNER_JOIN: &str =
    "LEFT JOIN signers s ON s.device_id = v.device_id AND s.user_id = v.signer_user_id";

/// A signer registration's columns, in [`SignerRow`] order.
pub(crate) const SIGNER_COLUMNS: &str = "device_id, user_id, tablet_id, user_name, public_key, \
     proof, device_endorsement, leaf_idx, registered_at_utc";

/// A user's registered signing key: what checks a format-2 signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerKey {
    pub public_key_b64: String,
    /// The tablet's own id, which format-2 signatures name.
    pub tablet_id: Uuid,
    pub user_name: String,
}

impl SignerKey {
    /// The joined `s.public_key, s.tablet_id, s.user_name` columns of a version row: a key
    /// only when the version names a registered signer.
    pub(crate) fn from_join(
        public_key_b64: Option<String>,
        tablet_id: Option<Uuid>,
        user_name: Option<String>,
    ) -> Option<Self> {
        Some(Self {
            public_key_b64: public_key_b64?,
            tablet_id: tablet_id?,
            user_name: user_name?,
        })
    }
}

/// A user's signing key registered through a device, and its log leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerRow {
    pub device_id: Uuid,
    pub identity: crate::crypto::SignerIdentity,
    /// Base64 proof of possession (checked before it is stored).
    pub proof: String,
    /// Base64 endorsement by the device's enrolled key (checked before it is stored).
    pub device_endorsement: String,
    pub leaf_idx: u64,
    pub registered_at_utc: DateTime<Utc>,
}

impl SignerRow {
    /// The log leaf this registration is (or must be) logged as.
    pub fn leaf(&self) -> crate::transparency::Leaf {
        crate::transparency::Leaf::SignerRegistered {
            device_id: self.device_id,
            tablet_id: self.identity.tablet_id,
            user_id: self.identity.user_id,
            user_name: self.identity.user_name.clone(),
            public_key: self.identity.public_key.clone(),
            proof: self.proof.clone(),
            device_endorsement: self.device_endorsement.clone(),
            registered_at_utc: crate::transparency::leaf_time(self.registered_at_utc),
        }
    }

    /// The key that checks this user's format-2 signatures.
    pub fn key(&self) -> SignerKey {
        SignerKey {
            public_key_b64: self.identity.public_key.clone(),
            tablet_id: self.identity.tablet_id,
            user_name: self.identity.user_name.clone(),
        }
    }
}

impl StoredVersion {
    /// What an export of this version carries besides the document: its hash, signature and
    /// the key that checks it (the clinician's registration for format 2).
    pub fn version_meta(&self) -> crate::model::VersionMeta {
        crate::model::VersionMeta {
            revision: self.revision,
            status: self.status.unwrap_or(crate::model::RecordStatus::Completed),
            content_sha256: self.content_sha256.clone(),
            signature: self.signature.clone(),
            device_public_key: Some(self.public_key_b64.clone()),
            saved_at_utc: self.saved_at_utc,
            signer: match (self.signer_user_id, &self.signer) {
                (Some(user_id), Some(k)) => Some(crate::crypto::SignerIdentity {
                    user_id,
                    user_name: k.user_name.clone(),
                    public_key: k.public_key_b64.clone(),
                    tablet_id: k.tablet_id,
                }),
                _ => None,
            },
        }
    }

    /// The log leaf this version must have (as `push` appended it).
    pub fn leaf(&self) -> crate::transparency::Leaf {
        crate::transparency::Leaf::Version {
            record_id: self.record_id,
            revision: self.revision.get(),
            status: self.status_text.clone(),
            content_sha256: self.content_sha256.clone(),
            signature: self.signature.clone(),
            device_id: self.device_id,
            saved_at_utc: crate::transparency::leaf_time(self.saved_at_utc),
            signer_user_id: self.signer_user_id,
        }
    }
}

/// Review list filter, already checked by the handler.
#[derive(Debug, Clone, Default)]
pub struct ReviewFilter {
    pub from_utc: Option<DateTime<Utc>>,
    pub to_utc: Option<DateTime<Utc>>,
    pub decision: Option<DecisionFilter>,
    pub min_news2: Option<u8>,
    /// Lower-case text; matched as a substring of incident number or patient name.
    pub text: Option<String>,
    /// Only records taken to the destination with this ODS code (upper case).
    pub destination: Option<String>,
    pub limit: u32,
    pub offset: u64,
}

impl ReviewFilter {
    /// The `LIKE` pattern for [`ReviewFilter::text`], with `\` escaping `%` and `_`.
    pub fn like_pattern(&self) -> Option<String> {
        self.text.as_ref().map(|t| {
            let mut p = String::from("%");
            for c in t.to_lowercase().chars() {
                if matches!(c, '%' | '_' | '\\') {
                    p.push('\\');
                }
                p.push(c);
            }
            p.push('%');
            p
        })
    }

    /// The decision filter as the stored text (`None` = any, `"pending"` = no decision).
    pub fn decision_text(&self) -> Option<&'static str> {
        self.decision.map(|d| match d {
            DecisionFilter::Pending => "pending",
            DecisionFilter::Approved => "approved",
            DecisionFilter::Returned => "returned",
            DecisionFilter::Flagged => "flagged",
        })
    }
}

/// One page of the review queue.
#[derive(Debug, Clone)]
pub struct ReviewPage {
    pub items: Vec<ReviewSummary>,
    pub total: u64,
    /// Over the filtered set ignoring the decision filter, so a UI can show every tab's count.
    pub counts: DecisionCounts,
    /// Every destination signed records were taken to, for the destination filter.
    pub destinations: Vec<crate::protocol::DestinationChoice>,
}

/// A record's signed history for the review detail.
#[derive(Debug, Clone)]
pub struct RecordDetail {
    pub record_id: Uuid,
    pub device_id: Uuid,
    pub device_name: String,
    pub versions: Vec<StoredVersion>,
    pub decisions: Vec<DecisionRecord>,
}

/// A decision the handler has checked (comment present where required).
#[derive(Debug, Clone)]
pub struct NewDecision {
    pub record_id: Uuid,
    pub revision: Revision,
    pub decision: Decision,
    pub comment: String,
    pub decided_by: String,
}

/// Result of recording a decision.
#[derive(Debug, Clone, PartialEq)]
pub enum DecideOutcome {
    Recorded(DecisionRecord),
    /// No signed version of this record is held.
    RecordNotFound,
    /// The named revision is not a signed version of this record.
    UnknownRevision,
    /// A later signed version exists; the supervisor must look at it first.
    Superseded {
        latest_revision: Revision,
    },
}

/// Whole-database counts for `epr-server stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Distinct records.
    pub encounters: u64,
    pub versions: u64,
    pub devices: u64,
    pub revoked_devices: u64,
    /// Records with at least one signed (completed or amended) version.
    pub completed: u64,
    pub decisions: u64,
    pub users: u64,
    pub audit_entries: u64,
}

/// Who did something, as written to the audit table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    Device(Uuid),
    Supervisor(String),
    /// The `epr-server` command line.
    Admin,
    /// Someone not (yet) identified, by client address: a refused login or token.
    Anonymous(String),
}

impl Actor {
    /// The stored form: `device:ID`, `user:NAME` or `admin`.
    pub fn as_text(&self) -> String {
        match self {
            Actor::Device(id) => format!("device:{id}"),
            Actor::Supervisor(name) => format!("user:{name}"),
            Actor::Admin => "admin".to_owned(),
            Actor::Anonymous(client) => format!("client:{client}"),
        }
    }
}

/// What an audit entry records. The stored text ([`AuditAction::as_str`]) is part of the
/// chained hash, so a variant's text never changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    EnrolmentCodeCreated,
    DeviceEnrolled,
    DeviceRevoked,
    UserAdded,
    LoggedIn,
    VersionStored,
    FeedbackRead,
    ReviewListRead,
    ReviewSummaryRead,
    VersionRead,
    DecisionRecorded,
    /// `epr-server verify` ran (it reads every document).
    Verified,
    LoginFailed,
    TokenRefused,
    LoggedOut,
    SessionsRevoked,
    UserDisabled,
    UserEnabled,
    PasswordReset,
    /// `epr-server export` wrote every record's latest signed version out.
    Exported,
    /// `epr-server retire-device` started a tablet's retirement.
    DeviceRetiring,
    /// A retiring tablet reported nothing left to send and was retired (refused from then).
    DeviceRetired,
    /// `serve --recover` started a log rebuilt from the tablets.
    RecoveryStarted,
    /// A tablet proved, with its enrolled key, that it was enrolled in the lost log.
    DeviceRestored,
    /// A tablet sent back a supervisor decision the lost log held.
    DecisionRestored,
    /// `epr-server reference import` stored a new version of the trust's reference data.
    ReferenceImported,
}

impl AuditAction {
    /// As stored in the audit table.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::EnrolmentCodeCreated => "enrolment_code_created",
            AuditAction::DeviceEnrolled => "device_enrolled",
            AuditAction::DeviceRevoked => "device_revoked",
            AuditAction::UserAdded => "user_added",
            AuditAction::LoggedIn => "logged_in",
            AuditAction::VersionStored => "version_stored",
            AuditAction::FeedbackRead => "feedback_read",
            AuditAction::ReviewListRead => "review_list_read",
            AuditAction::ReviewSummaryRead => "review_summary_read",
            AuditAction::VersionRead => "version_read",
            AuditAction::DecisionRecorded => "decision_recorded",
            AuditAction::Verified => "verified",
            AuditAction::LoginFailed => "login_failed",
            AuditAction::TokenRefused => "token_refused",
            AuditAction::LoggedOut => "logged_out",
            AuditAction::SessionsRevoked => "sessions_revoked",
            AuditAction::UserDisabled => "user_disabled",
            AuditAction::UserEnabled => "user_enabled",
            AuditAction::PasswordReset => "password_reset",
            AuditAction::Exported => "exported",
            AuditAction::DeviceRetiring => "device_retiring",
            AuditAction::DeviceRetired => "device_retired",
            AuditAction::RecoveryStarted => "recovery_started",
            AuditAction::DeviceRestored => "device_restored",
            AuditAction::DecisionRestored => "decision_restored",
            AuditAction::ReferenceImported => "reference_imported",
        }
    }
}

/// One audit entry to append. `detail` never holds clinical text.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub actor: String,
    pub action: AuditAction,
    pub record_id: Option<Uuid>,
    pub revision: Option<Revision>,
    pub detail: String,
}

impl AuditEvent {
    /// An event about the whole system or a list (no single record).
    pub fn new(actor: &Actor, action: AuditAction, detail: impl Into<String>) -> Self {
        Self {
            actor: actor.as_text(),
            action,
            record_id: None,
            revision: None,
            detail: detail.into(),
        }
    }

    /// An event about one record (and optionally one version).
    pub fn on_record(
        actor: &Actor,
        action: AuditAction,
        record_id: Uuid,
        revision: Option<Revision>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            actor: actor.as_text(),
            action,
            record_id: Some(record_id),
            revision,
            detail: detail.into(),
        }
    }
}

/// A stored audit entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub seq: i64,
    pub at_utc: String,
    pub actor: String,
    pub action: String,
    pub record_id: Option<Uuid>,
    pub revision: Option<Revision>,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The hash the first audit entry chains from.
pub const AUDIT_GENESIS_HASH: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// SHA-256 over the previous hash and every field of an entry except `hash` itself, in
/// canonical JSON so no two different entries can hash the same input.
pub fn audit_entry_hash(e: &AuditEntry) -> String {
    let v = serde_json::json!({
        "prev": e.prev_hash,
        "seq": e.seq,
        "at": e.at_utc,
        "actor": e.actor,
        "action": e.action,
        "record_id": e.record_id.map(|r| r.to_string()),
        "revision": e.revision,
        "detail": e.detail,
    });
    crate::crypto::sha256_hex(&crate::crypto::canonical_json(&v))
}

/// Builds the entries to append after `(head_seq, head_hash)`, all stamped `at_utc`.
pub(crate) fn chain_events(
    head: Option<(i64, String)>,
    at_utc: &str,
    events: &[AuditEvent],
) -> Vec<AuditEntry> {
    let (mut seq, mut prev) = head.unwrap_or((0, AUDIT_GENESIS_HASH.to_owned()));
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        seq += 1;
        let mut entry = AuditEntry {
            seq,
            at_utc: at_utc.to_owned(),
            actor: e.actor.clone(),
            action: e.action.as_str().to_owned(),
            record_id: e.record_id,
            revision: e.revision,
            detail: e.detail.clone(),
            prev_hash: prev,
            hash: String::new(),
        };
        entry.hash = audit_entry_hash(&entry);
        prev = entry.hash.clone();
        out.push(entry);
    }
    out
}

/// Where the audit chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at entry {seq}: {problem}")]
pub struct AuditChainBreak {
    pub seq: i64,
    pub problem: &'static str,
}

/// Checks a run of entries (in `seq` order) continuing from `prev`: returns the last
/// `(seq, hash)` so pages can be checked one after another.
pub fn check_audit_page(
    mut prev: (i64, String),
    entries: &[AuditEntry],
) -> Result<(i64, String), AuditChainBreak> {
    for e in entries {
        if e.seq != prev.0 + 1 {
            return Err(AuditChainBreak {
                seq: e.seq,
                problem: "an entry is missing before this one",
            });
        }
        if e.prev_hash != prev.1 {
            return Err(AuditChainBreak {
                seq: e.seq,
                problem: "it does not chain from the entry before it",
            });
        }
        if audit_entry_hash(e) != e.hash {
            return Err(AuditChainBreak {
                seq: e.seq,
                problem: "its contents do not match its hash",
            });
        }
        prev = (e.seq, e.hash.clone());
    }
    Ok(prev)
}

/// Checks the whole audit chain page by page; returns how many entries hold.
pub async fn check_audit_chain(storage: &dyn Storage) -> Result<u64, AuditChainCheckError> {
    let mut prev = (0i64, AUDIT_GENESIS_HASH.to_owned());
    let mut count = 0u64;
    loop {
        let page = storage.audit_entries_after(prev.0, 1000).await?;
        if page.is_empty() {
            return Ok(count);
        }
        count += page.len() as u64;
        prev = check_audit_page(prev, &page)?;
    }
}

/// The audit chain could not be read, or does not hold.
#[derive(Debug, thiserror::Error)]
pub enum AuditChainCheckError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Broken(#[from] AuditChainBreak),
}

/// Formats a UTC time the way storage keeps text timestamps (RFC 3339, microseconds, `Z`),
/// so text order is time order and a round trip is exact.
pub fn utc_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Truncates to microseconds, the precision both backends keep.
pub fn to_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// Parses [`utc_text`] output.
pub(crate) fn parse_utc(text: &str) -> Result<DateTime<Utc>, StorageError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| StorageError::Corrupt("timestamp".into()))
}

/// Parses an optional [`utc_text`] column.
pub(crate) fn opt_utc(text: Option<String>) -> Result<Option<DateTime<Utc>>, StorageError> {
    text.as_deref().map(parse_utc).transpose()
}

/// The storage operations the server needs, implemented once per database.
///
/// Every method that reads or writes patient data takes the actor and appends audit entries
/// in the same transaction as the data it touches.
#[async_trait]
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// `"sqlite"` or `"postgres"`, for logs and benchmarks.
    fn backend(&self) -> &'static str;

    /// Stores the hash of a new one-time enrolment code.
    async fn create_enrolment_code(
        &self,
        code_hash: &str,
        device_name: &str,
        now: DateTime<Utc>,
        expires_at_utc: DateTime<Utc>,
    ) -> Result<(), StorageError>;

    /// Consumes an enrolment code and registers the device, atomically: a code works once.
    async fn enroll_device(
        &self,
        device: &NewDevice,
        now: DateTime<Utc>,
    ) -> Result<EnrolOutcome, StorageError>;

    /// The device holding this token, revoked or not.
    async fn device_by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<DeviceIdentity>, StorageError>;

    /// Revokes a device; false if no such device.
    async fn revoke_device(
        &self,
        device_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError>;

    /// Adds an account; [`StorageError::UserExists`] if the name is taken.
    async fn add_user(
        &self,
        username: &str,
        role: Role,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError>;

    async fn user_by_name(&self, username: &str) -> Result<Option<UserRecord>, StorageError>;

    /// Atomically checks the (username, client) lockout and, unless locked, counts this
    /// attempt as a failure before the password is checked (a success clears it). Called only
    /// for existing accounts: unknown usernames leave no rows.
    async fn reserve_login_attempt(
        &self,
        username: &str,
        client: &str,
        policy: LockoutPolicy,
        now: DateTime<Utc>,
    ) -> Result<LoginReservation, StorageError>;

    /// Stores the hash of a new session token and clears the (username, client) failures.
    async fn create_session(
        &self,
        token_hash: &str,
        user: &UserRecord,
        client: &str,
        now: DateTime<Utc>,
        expires_at_utc: DateTime<Utc>,
    ) -> Result<(), StorageError>;

    /// The session for this token if it has not expired at `now` (the caller applies the idle
    /// timeout to `last_used_at_utc`).
    async fn session_by_token_hash(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionIdentity>, StorageError>;

    /// Marks a session used at `now`.
    async fn touch_session(&self, token_hash: &str, now: DateTime<Utc>)
    -> Result<(), StorageError>;

    /// Ends sessions (logout, revoke-sessions); returns how many ended. Audited.
    async fn end_sessions(
        &self,
        scope: &SessionScope,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<u64, StorageError>;

    /// Disables, enables or sets the password of an account; false if there is no such
    /// account. Audited; disabling and a new password end every session in the same
    /// transaction.
    async fn change_user(
        &self,
        username: &str,
        change: &UserChange,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError>;

    async fn list_users(&self, now: DateTime<Utc>) -> Result<Vec<UserSummary>, StorageError>;

    async fn list_devices(&self) -> Result<Vec<DeviceSummary>, StorageError>;

    /// Marks a device seen at `now`.
    async fn touch_device(&self, device_id: Uuid, now: DateTime<Utc>) -> Result<(), StorageError>;

    /// Keeps what a tablet reported holding; a retiring tablet that holds nothing unsent is
    /// retired (and refused from then on) in the same transaction. Returns its state.
    async fn device_report(
        &self,
        device_id: Uuid,
        report: &crate::protocol::DeviceReport,
        now: DateTime<Utc>,
    ) -> Result<crate::protocol::DeviceState, StorageError>;

    /// Starts a tablet's retirement; false if there is no such device. A revoked or retired
    /// device is refused with [`StorageError::DeviceNotActive`].
    async fn retire_device(
        &self,
        device_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError>;

    /// Stores a batch in one transaction, its stored versions (and the device's audit head,
    /// when it sent one) appended to the log in the same transaction; one outcome per item, in
    /// order.
    /// Starts a log rebuilt from the tablets on an empty database: keeps the lost log's
    /// checkpoint and entries and logs `recovery` as the first leaf. False (nothing written)
    /// if the database holds any device or log entry.
    async fn begin_recovery(
        &self,
        record: &RecoveryRecord,
        first_leaf: &crate::transparency::Leaf,
    ) -> Result<bool, StorageError>;

    /// The lost log this server was rebuilt from, if it was.
    async fn recovery(&self) -> Result<Option<RecoveryRecord>, StorageError>;

    /// Takes back a tablet that proved its enrolment in the lost log: its device row with a
    /// new token, and (the first time) its enrolment leaf as the lost log had it.
    async fn restore_device(
        &self,
        device: &RestoredDevice,
        now: DateTime<Utc>,
    ) -> Result<RestoreOutcome, StorageError>;

    /// Takes back decisions a returning tablet received from the lost server (each already
    /// found in the lost log by the caller): stored with their original time and author, and
    /// logged as the lost log logged them.
    async fn restore_decisions(
        &self,
        device_id: Uuid,
        decisions: &[crate::protocol::DecisionRecord],
        now: DateTime<Utc>,
    ) -> Result<Vec<crate::protocol::DecisionRestore>, StorageError>;

    async fn push_versions(
        &self,
        device: &DeviceIdentity,
        items: &[NewVersion],
        audit_head: Option<(u64, String)>,
        now: DateTime<Utc>,
    ) -> Result<PushStored, StorageError>;

    /// Writes a consistent copy of the whole database, taken while it serves, to the new file
    /// `out` (never replacing one; owner-only; whole or not at all). SQLite only: a PostgreSQL
    /// database is backed up with `pg_dump` (README, "Backups").
    async fn backup_to(&self, out: &std::path::Path) -> Result<(), StorageError>;

    /// The signing keys users registered through `device_id`.
    async fn device_signers(&self, device_id: Uuid) -> Result<Vec<SignerRow>, StorageError>;

    /// Every registered signing key (for `verify`).
    async fn all_signers(&self) -> Result<Vec<SignerRow>, StorageError>;

    /// Registers users' signing keys (proofs and endorsements already checked) through
    /// `device`, each logged in the same transaction; one already registered with the same key
    /// is left as it is. Returns every one's row. A user id registered with a different key,
    /// or a tablet id other than the one this device's users already name, is refused
    /// ([`StorageError::SignerConflict`]) and nothing is stored.
    async fn register_signers(
        &self,
        device: &DeviceIdentity,
        signers: &[crate::protocol::SignerRegistration],
        now: DateTime<Utc>,
    ) -> Result<Vec<SignerRow>, StorageError>;

    /// The log's size and root now.
    async fn log_head(&self) -> Result<LogHead, StorageError>;

    /// Leaves `start..end` (the caller bounds the range).
    async fn log_leaves(&self, start: u64, end: u64) -> Result<Vec<LogLeafRow>, StorageError>;

    /// Inclusion proofs of leaves in the tree of `size` leaves (`size` at most the log's size,
    /// every index below `size`: the caller checks).
    async fn inclusion_proofs(
        &self,
        size: u64,
        indexes: &[u64],
    ) -> Result<Vec<Vec<crate::transparency::LogHash>>, StorageError>;

    /// The consistency proof from the tree of `old_size` leaves to that of `size`
    /// (`1 <= old_size <= size <=` the log's size: the caller checks).
    async fn consistency_proof(
        &self,
        old_size: u64,
        size: u64,
    ) -> Result<Vec<crate::transparency::LogHash>, StorageError>;

    /// The log proof for a record's versions (`None` if any piece is not logged).
    async fn review_proof(
        &self,
        device_id: Uuid,
        versions: &[(Uuid, Revision)],
        signers: &[Uuid],
    ) -> Result<Option<ReviewProofParts>, StorageError>;

    /// Keeps a checkpoint this server signed.
    async fn save_checkpoint(
        &self,
        size: u64,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError>;

    /// The largest checkpoint kept: `(size, signed note)`.
    async fn latest_checkpoint(&self) -> Result<Option<(u64, String)>, StorageError>;

    /// Keeps a key rotation statement (signed by the old key) and logs it.
    async fn add_key_rotation(
        &self,
        statement: &str,
        new_key: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError>;

    /// Every key rotation statement, oldest first.
    async fn key_rotations(&self) -> Result<Vec<String>, StorageError>;

    /// Stores a new version of the reference data, logged and audited in the same
    /// transaction. False (nothing written) when a version as high or higher is held.
    async fn add_reference_version(&self, v: &ReferenceVersion) -> Result<bool, StorageError>;

    /// The highest version of the reference data held, if any.
    async fn latest_reference(&self) -> Result<Option<ReferenceVersion>, StorageError>;

    /// Replaces a version's signed statement (after a key rotation: the same statement,
    /// signed by the new key). The document and its hash never change.
    async fn set_reference_note(&self, version: u64, note: &str) -> Result<(), StorageError>;

    /// Decisions on this device's records after `since_cursor`, oldest first.
    async fn feedback_since(
        &self,
        device: &DeviceIdentity,
        since_cursor: i64,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<FeedbackItem>, StorageError>;

    /// One page of the review queue (records with a signed version), newest first.
    async fn review_list(
        &self,
        filter: &ReviewFilter,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<ReviewPage, StorageError>;

    /// A record's signed versions and decisions; `None` if it has no signed version.
    async fn review_detail(
        &self,
        record_id: Uuid,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Option<RecordDetail>, StorageError>;

    /// Records a decision on the latest signed revision, and queues it as feedback.
    async fn decide(
        &self,
        decision: &NewDecision,
        now: DateTime<Utc>,
    ) -> Result<DecideOutcome, StorageError>;

    /// Stored versions with `seq > after_seq`, in `seq` order, for `verify`.
    async fn versions_after(
        &self,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<StoredVersion>, StorageError>;

    async fn stats(&self) -> Result<Stats, StorageError>;

    /// Appends audit entries on their own (admin actions such as `verify`).
    async fn append_audit(
        &self,
        events: &[AuditEvent],
        now: DateTime<Utc>,
    ) -> Result<(), StorageError>;

    /// Audit entries with `seq > after_seq`, in order.
    async fn audit_entries_after(
        &self,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StorageError>;
}
