//! The versioned JSON messages between device and server (`/api/v1`).
//!
//! Plain serde types shared by the sync client and the server so the two cannot drift.
//! Requests from devices deny unknown fields where a typo would silently drop data.
//! No I/O here; the HTTP routes are documented in `docs/api.md`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::{RecordStatus, Revision};

/// Path prefix of this protocol version.
pub const API_PREFIX: &str = "/api/v1";

/// Largest push body the server accepts, in bytes. Clients batch below this.
pub const MAX_PUSH_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Most items in one push batch.
pub const MAX_PUSH_ITEMS: usize = 500;

/// `POST /api/v1/devices/enroll`. Its `Debug` leaves out the one-time code.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// The one-time code printed by `epr-server enroll-device`.
    pub code: String,
    /// The device's Ed25519 public key, base64 (32 bytes).
    pub public_key: String,
    /// Proof of possession: the device's Ed25519 signature (base64) over
    /// [`enrolment_proof_message`] for this code and key.
    pub proof: String,
}

/// Answer to [`EnrollRequest`]. The token is shown once; the server keeps only its hash.
/// Its `Debug` leaves out the token.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrollResponse {
    pub device_id: Uuid,
    pub device_token: String,
    /// The name the administrator gave this device with `enroll-device --name`.
    pub device_name: String,
    /// The server's log key (`NAME+KEYID+KEY`): the device pins it and accepts checkpoints
    /// signed by it only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_key: Option<String>,
}

impl EnrollRequest {
    /// The request enrolling `key` with `code`, with its proof of possession.
    pub fn signed(code: &str, key: &crate::crypto::DeviceSigningKey) -> Self {
        let public_key = key.public_key_base64();
        let proof = key.sign_base64(&enrolment_proof_message(code, &public_key));
        Self {
            code: code.trim().to_owned(),
            public_key,
            proof,
        }
    }
}

/// The form an enrolment code is hashed and signed in: upper case, no separators or spaces.
pub fn normalise_enrolment_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// What a device signs to prove, at enrolment, that it holds the private half of the key it
/// enrols: domain-separated, and bound to the one-time code so a proof cannot be replayed
/// with another code.
pub fn enrolment_proof_message(code: &str, public_key_b64: &str) -> Vec<u8> {
    format!(
        "ambulance-epr/enrolment-proof/v1\n{}\n{}",
        normalise_enrolment_code(code),
        public_key_b64.trim()
    )
    .into_bytes()
}

/// One record version pushed by a device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushItem {
    pub record_id: Uuid,
    /// Rises with every save on the device.
    pub revision: Revision,
    pub status: RecordStatus,
    /// The full [`crate::model::Encounter`] document.
    pub document: serde_json::Value,
    /// Hex SHA-256 of the document's canonical JSON.
    pub content_sha256: String,
    /// Base64 Ed25519 signature; required for signed statuses, absent for drafts. With
    /// `signer_user_id` it is format 2, by that user's registered key over
    /// [`crate::crypto::VersionSignedFields`]; without, format 1, by the device's key over
    /// [`crate::crypto::signing_payload`].
    #[serde(default)]
    pub signature: Option<String>,
    /// The user (registered through this device) whose own key signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer_user_id: Option<Uuid>,
    pub saved_at_utc: DateTime<Utc>,
}

/// Most signer registrations in one push.
pub const MAX_PUSH_SIGNERS: usize = 64;

/// A user's own signing key, registered with the server through their tablet (a log leaf).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignerRegistration {
    pub user_id: Uuid,
    /// The user's name on the tablet (staff, never patient data).
    pub user_name: String,
    /// Base64 Ed25519 public key.
    pub public_key: String,
    /// The tablet's own id, as format-2 signatures name it.
    pub tablet_id: Uuid,
    /// Base64 signature by the user's key over
    /// [`crate::crypto::SignerIdentity::registration_message`] (proof of possession).
    pub proof: String,
    /// Base64 signature by the device's enrolled key over
    /// [`crate::crypto::SignerIdentity::endorsement_message`] for the device's server id: the
    /// tablet vouches for its user.
    pub device_endorsement: String,
}

impl SignerRegistration {
    /// The registration of `identity` with its proof and the device's endorsement.
    pub fn new(
        identity: &crate::crypto::SignerIdentity,
        proof: &str,
        device_endorsement: &str,
    ) -> Self {
        Self {
            user_id: identity.user_id,
            user_name: identity.user_name.clone(),
            public_key: identity.public_key.clone(),
            tablet_id: identity.tablet_id,
            proof: proof.to_owned(),
            device_endorsement: device_endorsement.to_owned(),
        }
    }

    /// The identity it registers.
    pub fn identity(&self) -> crate::crypto::SignerIdentity {
        crate::crypto::SignerIdentity {
            user_id: self.user_id,
            user_name: self.user_name.clone(),
            public_key: self.public_key.clone(),
            tablet_id: self.tablet_id,
        }
    }
}

/// `POST /api/v1/sync/push`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushRequest {
    pub items: Vec<PushItem>,
    /// The latest checkpoint this device verified: the server checks it against its own log,
    /// so every tablet is a witness of the log it was shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_checkpoint: Option<LogState>,
    /// The newest entry of the device's own audit chain; the server logs it, so a device
    /// audit cut short afterwards is detectable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_audit_head: Option<AuditHead>,
    /// Users' signing keys not yet acknowledged, each with its proof and the device's
    /// endorsement: the tablet sends them in a push of their own (no items) before any record,
    /// and the server registers (logs) them before it checks any item.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signers: Vec<SignerRegistration>,
}

/// A device audit chain's newest entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditHead {
    pub seq: i64,
    /// Hex, 64 digits.
    pub hash: String,
}

impl AuditHead {
    /// A sequence number from 1 and a 64-digit lower-case hex hash: anything else is not
    /// logged.
    pub fn is_well_formed(&self) -> bool {
        self.seq >= 1
            && self.hash.len() == 64
            && self
                .hash
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }
}

/// A log size and root, as a device reports the checkpoint it verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogState {
    pub size: u64,
    /// Base64 root hash.
    pub root: String,
}

/// `GET /api/v1/log/checkpoint`: the log's current signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointResponse {
    /// The C2SP signed note (see `docs/integrity.md`).
    pub checkpoint: String,
    /// The verifier key (`NAME+KEYID+KEY`) that signed it.
    pub log_key: String,
}

/// `GET /api/v1/recovery?verified_size=M` (no credentials; 404 from a server that was not
/// rebuilt): what a tablet checks before it takes its place in a log rebuilt from the tablets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryInfo {
    /// The rebuilt log's checkpoint (signed note).
    pub checkpoint: String,
    /// The rebuilt log's first leaf (its exact text): a `recovery` leaf.
    pub recovery_leaf: String,
    /// Its inclusion proof (index 0) in `checkpoint`, base64 hashes.
    pub recovery_leaf_proof: Vec<String>,
    /// The lost log's last checkpoint the trust kept (signed note), which the leaf names.
    pub previous_checkpoint: String,
    /// Inside the lost log: the consistency proof from `verified_size` entries to
    /// `previous_checkpoint` (empty when they are the same size, or none was asked).
    pub previous_consistency: Vec<String>,
}

/// `POST /api/v1/devices/recover`: a tablet enrolled in the lost log takes its place in the
/// rebuilt one, proving it holds the key the lost log enrolled (see
/// [`crate::transparency::recovery_statement`]). Answered with an [`EnrollResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoverRequest {
    pub device_id: Uuid,
    /// Base64 Ed25519 public key: the one its `device_enrolled` leaf names.
    pub public_key: String,
    /// Base64 signature over the recovery statement.
    pub signature: String,
    /// The name it was enrolled under, for the device list.
    #[serde(default)]
    pub device_name: Option<String>,
}

/// `POST /api/v1/recovery/decisions` (device token, on a rebuilt server): supervisor
/// decisions the tablet received from the lost server, oldest first, at most
/// [`MAX_RESTORED_DECISIONS`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreDecisionsRequest {
    pub decisions: Vec<DecisionRecord>,
}

/// Most decisions in one [`RestoreDecisionsRequest`].
pub const MAX_RESTORED_DECISIONS: usize = 500;

/// What became of one restored decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionRestore {
    Restored,
    /// Already restored (by an earlier answer that was lost).
    Duplicate,
    /// The lost log has no such decision: refused.
    NotInLostLog,
    /// The signed version it decides on is not back (or not this tablet's).
    RecordNotFound,
}

/// Answer to [`RestoreDecisionsRequest`], one result per decision in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreDecisionsResponse {
    pub results: Vec<DecisionRestore>,
}

/// `GET /api/v1/log/key-rotations`: every rotation statement, oldest first (signed notes,
/// each by the key it replaces).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRotationsResponse {
    pub rotations: Vec<String>,
}

/// `GET /api/v1/reference?have=N`: the trust's reference data. `version` is the latest the
/// server holds (`None`: none imported yet); `set` is that version, sent only when it is
/// newer than the `have` the tablet gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferenceResponse {
    pub version: Option<u64>,
    pub set: Option<SignedReference>,
}

/// One version of the reference data as a tablet receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedReference {
    pub version: u64,
    /// The document's canonical JSON, whose SHA-256 the statement names.
    pub document: String,
    /// The statement signed by the log key (`transparency::open_reference` opens it).
    pub signed_note: String,
}

/// `GET /api/v1/log/consistency?old_size=M&size=N`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyResponse {
    pub old_size: u64,
    pub size: u64,
    /// Base64 hashes, RFC 6962 order.
    pub proof: Vec<String>,
}

/// `POST /api/v1/log/inclusion`: proofs for up to 1,000 leaves in the tree of `size`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionRequest {
    pub size: u64,
    pub indexes: Vec<u64>,
}

/// Answer to [`InclusionRequest`]: one proof per index, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionResponse {
    pub size: u64,
    pub proofs: Vec<Vec<String>>,
}

/// `GET /api/v1/log/leaves?start=S&end=E`: leaves `S..E` (at most 1,000), each its exact
/// canonical JSON text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeavesResponse {
    pub start: u64,
    pub leaves: Vec<String>,
}

/// What the server did with one pushed item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PushOutcome {
    /// Newly committed.
    Stored,
    /// Already held, byte-identical: acknowledged again.
    Duplicate,
    /// A draft older than what the server holds: not stored, nothing to retry.
    Stale,
    /// Refused; see `reason`. The device quarantines the record.
    Rejected,
}

/// Why an item was rejected, for the device to show and for ops to count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// Same record id and revision already stored with different content.
    Conflict,
    /// The content hash does not match the document.
    BadHash,
    /// The signature is missing, malformed or does not verify against the device's key.
    BadSignature,
    /// The document is not a valid encounter, or disagrees with the item's id or status.
    Schema,
    /// The record belongs to another device.
    NotOwner,
    /// Signed by a user whose key is not registered through this device: the tablet
    /// registers it again and keeps the version queued.
    UnknownSigner,
}

/// The server's answer for one item, in the order of the request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushItemResult {
    pub record_id: Uuid,
    pub revision: Revision,
    pub outcome: PushOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject_reason: Option<RejectReason>,
    /// Human-readable detail; never contains patient data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// For a stored or duplicate version: its leaf in the server's log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf_index: Option<u64>,
}

/// Answer to [`PushRequest`]: HTTP 200 with one result per item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushResponse {
    pub results: Vec<PushItemResult>,
    /// The log's signed checkpoint once this push committed (a signed note).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
}

/// A supervisor's decision; owned by `model` (the clinical record), sent as its snake-case name.
pub use crate::model::Decision;

/// One decision as delivered to the device (`GET /api/v1/sync/feedback?since=CURSOR`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedbackItem {
    /// Monotonic server cursor; pass the largest seen as `since` next time.
    pub cursor: i64,
    pub record_id: Uuid,
    /// The version the decision is about.
    pub revision: Revision,
    pub decision: Decision,
    pub comment: String,
    pub decided_by: String,
    pub decided_at_utc: DateTime<Utc>,
}

/// Answer to a feedback pull.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedbackResponse {
    pub items: Vec<FeedbackItem>,
    /// The cursor to send next time (the last item's, or the `since` sent if none).
    pub next_cursor: i64,
}

/// `POST /api/v1/auth/login`. Its `Debug` leaves out the password.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

/// Answer to [`LoginRequest`]. Its `Debug` leaves out the token.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct LoginResponse {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

// Credentials never reach a log line or a panic message through `Debug`.
impl std::fmt::Debug for EnrollRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollRequest")
            .field("public_key", &self.public_key)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for EnrollResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollResponse")
            .field("device_id", &self.device_id)
            .field("device_name", &self.device_name)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for LoginResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginResponse")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Filter on the latest decision of a record, for the review queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionFilter {
    /// No decision yet on the latest signed version.
    Pending,
    Approved,
    Returned,
    Flagged,
}

/// Query string of `GET /api/v1/review/encounters`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReviewQuery {
    /// Completed on or after (UTC).
    #[serde(default)]
    pub from: Option<DateTime<Utc>>,
    /// Completed before (UTC).
    #[serde(default)]
    pub to: Option<DateTime<Utc>>,
    #[serde(default)]
    pub decision: Option<DecisionFilter>,
    /// Latest NEWS2 total at or above this.
    #[serde(default)]
    pub min_news2: Option<u8>,
    /// Free text matched against incident number and patient name.
    #[serde(default)]
    pub q: Option<String>,
    /// Only records taken to the destination with this ODS code.
    #[serde(default)]
    pub destination: Option<String>,
    /// Page number from 1.
    #[serde(default)]
    pub page: Option<u32>,
    #[serde(default)]
    pub page_size: Option<u32>,
}

/// One row of the review queue: the latest signed version of a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewSummary {
    pub record_id: Uuid,
    pub revision: Revision,
    pub status: RecordStatus,
    pub incident_number: String,
    pub patient_name: String,
    pub latest_news2: Option<u8>,
    pub saved_at_utc: DateTime<Utc>,
    pub device_name: String,
    /// The latest decision on this revision, if any (None = pending).
    pub decision: Option<Decision>,
}

/// How many records in the filtered set have each latest decision.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DecisionCounts {
    pub pending: u64,
    pub approved: u64,
    pub returned: u64,
    pub flagged: u64,
}

/// Answer to the review list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewList {
    pub items: Vec<ReviewSummary>,
    /// Records matching the filter (all pages).
    pub total: u64,
    pub page: u32,
    pub page_size: u32,
    pub counts: DecisionCounts,
    /// Every destination (picked from the trust's list) signed records were taken to: what
    /// the `destination` filter can choose from.
    #[serde(default)]
    pub destinations: Vec<DestinationChoice>,
}

/// A destination as the review queue's filter offers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestinationChoice {
    pub ods_code: String,
    pub name: String,
}

/// One stored version in the review detail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewVersion {
    pub revision: Revision,
    pub status: RecordStatus,
    pub document: serde_json::Value,
    pub content_sha256: String,
    pub signature: Option<String>,
    /// The server's own check of hash and signature, made when this answer was built.
    pub signature_valid: bool,
    pub saved_at_utc: DateTime<Utc>,
    pub received_at_utc: DateTime<Utc>,
    /// The clinician whose own key signed (format 2); their registration is in
    /// [`ReviewProof::signers`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer_user_id: Option<Uuid>,
}

/// A stored decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    pub record_id: Uuid,
    pub revision: Revision,
    pub decision: Decision,
    pub comment: String,
    pub decided_by: String,
    pub decided_at_utc: DateTime<Utc>,
}

/// `GET /api/v1/review/encounters/{id}`: every signed version and every decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewDetail {
    pub record_id: Uuid,
    pub device_id: Uuid,
    pub device_name: String,
    pub versions: Vec<ReviewVersion>,
    pub decisions: Vec<DecisionRecord>,
    /// What the reviewer's app needs to check every signature itself against the key logged
    /// at the device's enrolment, and that each version is in the server's log. `None` when
    /// the server cannot prove it (the app then says so; it never falls back to trusting
    /// `signature_valid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<ReviewProof>,
}

/// Log proofs for a review detail (see `docs/integrity.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewProof {
    /// The signed checkpoint the proofs are against.
    pub checkpoint: String,
    /// The log's verifier key (`NAME+KEYID+KEY`): the app pins the first it sees per server.
    pub log_key: String,
    /// The device's enrolment leaf (its exact JSON text), and its inclusion proof.
    pub enrolment_leaf: String,
    pub enrolment_index: u64,
    pub enrolment_proof: Vec<String>,
    /// One per version, in the same order as `versions`.
    pub versions: Vec<VersionProof>,
    /// The registration leaf of each clinician key that signed a version (format 2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signers: Vec<LeafProof>,
}

/// A leaf of the log (its exact JSON text), its index and its inclusion proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeafProof {
    pub leaf: String,
    pub leaf_index: u64,
    pub proof: Vec<String>,
}

/// One version's place in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionProof {
    pub revision: Revision,
    pub leaf_index: u64,
    pub proof: Vec<String>,
}

/// `POST /api/v1/review/encounters/{id}/decision`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    pub decision: Decision,
    /// Required for returned and flagged.
    #[serde(default)]
    pub comment: String,
    /// The version the supervisor looked at; refused if a later version exists.
    pub revision: Revision,
}

/// Every 4xx/5xx body: a stable machine code and a sentence for people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    pub message: String,
}

/// `POST /api/v1/sync/report`: what the tablet still holds, sent after every sync's push so
/// the trust can see, per tablet, what has not reached the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceReport {
    /// Outbox entries not yet acknowledged (quarantined ones included).
    pub pending: u64,
    /// When the oldest of them was saved.
    #[serde(default)]
    pub oldest_pending_utc: Option<DateTime<Utc>>,
    /// Signed versions on the tablet, acknowledged or not.
    pub held_versions: u64,
    /// The app's version, at most [`MAX_APP_VERSION_CHARS`] printable ASCII characters.
    pub app_version: String,
    /// Size of the latest server checkpoint the tablet verified.
    #[serde(default)]
    pub verified_tree_size: Option<u64>,
}

/// Longest app version a report may carry.
pub const MAX_APP_VERSION_CHARS: usize = 64;

/// Where a tablet is in its working life, as the server tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceState {
    /// In service.
    Active,
    /// `retire-device` was run: send everything held, take no new records.
    Retiring,
    /// Retired: everything it held reached the server; the server refuses it from now on.
    Retired,
}

/// Answer to [`DeviceReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceReportResponse {
    pub state: DeviceState,
    /// The trust's retention window: how many days a record the server has acknowledged and
    /// proved stays on the tablet.
    pub retention_days: u32,
}

/// One tablet as supervisors see it (`GET /api/v1/review/tablets`) and `list-devices --json`
/// shows it: what it last reported still holding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TabletStatus {
    pub device_id: Uuid,
    pub name: String,
    /// `active`, `retiring`, `retired` or `revoked`.
    pub state: String,
    pub enrolled_at_utc: DateTime<Utc>,
    pub last_seen_utc: Option<DateTime<Utc>>,
    /// When it last reported; the counts below are as of then (`None`: never reported).
    pub reported_at_utc: Option<DateTime<Utc>>,
    pub pending: Option<u64>,
    pub oldest_pending_utc: Option<DateTime<Utc>>,
    pub held_versions: Option<u64>,
    pub app_version: Option<String>,
    pub verified_tree_size: Option<u64>,
    /// A record has waited on it for more than 24 hours.
    pub unsent_over_24h: bool,
}

/// Answer to `GET /api/v1/review/tablets`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TabletsResponse {
    pub tablets: Vec<TabletStatus>,
    pub at_utc: DateTime<Utc>,
}

/// `GET /api/v1/health`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
    pub version: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_password_token_or_enrolment_code() {
        let shown = [
            format!(
                "{:?}",
                LoginRequest {
                    username: "sup".into(),
                    password: "walnut harbour".into()
                }
            ),
            format!(
                "{:?}",
                LoginResponse {
                    token: "tok-secret".into(),
                    expires_at: Utc::now()
                }
            ),
            format!(
                "{:?}",
                EnrollResponse {
                    device_id: Uuid::nil(),
                    device_token: "tok-secret".into(),
                    device_name: "Tablet 7".into(),
                    log_key: None,
                }
            ),
            format!(
                "{:?}",
                EnrollRequest {
                    code: "K7QM-4XWD".into(),
                    public_key: "pk".into(),
                    proof: "sig".into()
                }
            ),
        ];
        for text in shown {
            for secret in ["walnut", "tok-secret", "K7QM"] {
                assert!(!text.contains(secret), "{text}");
            }
        }
    }

    #[test]
    fn push_request_refuses_unknown_fields() {
        let bad = r#"{"items": [], "extra": 1}"#;
        assert!(serde_json::from_str::<PushRequest>(bad).is_err());
    }

    #[test]
    fn outcome_wire_names() {
        assert_eq!(
            serde_json::to_string(&PushOutcome::Duplicate).unwrap(),
            "\"duplicate\""
        );
        assert_eq!(
            serde_json::to_string(&RejectReason::BadSignature).unwrap(),
            "\"bad_signature\""
        );
    }
}
