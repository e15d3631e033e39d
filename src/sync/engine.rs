//! The sync engine: drains the outbox in bounded batches, pulls feedback, and decides when to
//! try again.
//!
//! Rules it keeps (DESIGN.md, Sync):
//! - An outbox entry leaves only after the server answered `stored`, `duplicate` or `stale`
//!   for exactly that (record, revision). A lost answer means a resend, which the server
//!   acknowledges as a duplicate: no loss, no duplication.
//! - Transient failures back off exponentially with full jitter (1 s doubling to 5 minutes);
//!   a 401 stops the engine until the user acts; a refused record is quarantined and the rest
//!   keep draining.
//! - While offline, a cheap health probe notices the server coming back, so the drain starts
//!   within seconds rather than at the end of a long backoff.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rand::Rng;
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use super::client::{ApiClient, RequestError};
use super::status::{ProblemKind, SyncCommand, SyncHandle, SyncProblem, SyncStatus};
use crate::model::{RecordStatus, Revision};
use crate::protocol::{
    DeviceReport, DeviceState, EnrollRequest, InclusionRequest, PushOutcome, RejectReason,
};
use crate::store::{FeedbackEntry, OutboxItem, OutboxPosition, Store, StoreError, TabletState};
use crate::transparency::{
    Checkpoint, IntegrityError, Leaf, LogHash, LogPublicKey, check_consistency, check_inclusion,
    follow_rotations, leaf_hash, leaf_time, open_checkpoint, parse_proof,
};

/// Setting keys inside the encrypted store.
pub const SERVER_URL: &str = "server_url";
/// The device id the server issued at enrolment.
pub const DEVICE_ID: &str = "device_id";
/// The bearer token the server issued at enrolment (kept only inside the encrypted store).
pub const DEVICE_TOKEN: &str = "device_token";
/// The name the administrator gave this tablet at enrolment (sent back to a rebuilt server).
pub const DEVICE_NAME: &str = "device_name";
/// The hash (hex) of the `recovery` leaf of the rebuilt log this tablet rejoined, if any.
pub const REJOINED_LOG: &str = "rejoined_rebuilt_log";
/// Set when this tablet rejoined a rebuilt server, until it has sent back the supervisor
/// decisions it holds.
const DECISIONS_TO_RESTORE: &str = "decisions_to_restore";

/// A [`crate::protocol::PushItem`] as sent: the stored document goes out as the exact JSON
/// text that was hashed and signed, without a parse and re-serialise per item.
#[derive(serde::Serialize)]
struct RawPushItem<'a> {
    record_id: Uuid,
    revision: Revision,
    status: RecordStatus,
    document: Box<serde_json::value::RawValue>,
    content_sha256: &'a str,
    signature: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signer_user_id: Option<Uuid>,
    saved_at_utc: chrono::DateTime<Utc>,
}

/// A [`crate::protocol::PushRequest`] of [`RawPushItem`]s.
#[derive(serde::Serialize)]
struct RawPushRequest<'a> {
    items: Vec<RawPushItem<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verified_checkpoint: Option<crate::protocol::LogState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    device_audit_head: Option<crate::protocol::AuditHead>,
}

/// Serialises a batch as a push request, sending each stored document as its exact text, and
/// the checkpoint this tablet last verified (the server checks it against its own log).
fn request_body(
    batch: &[OutboxItem],
    verified: Option<&Checkpoint>,
    device_audit_head: Option<crate::protocol::AuditHead>,
) -> Result<Vec<u8>, SyncError> {
    let mut items = Vec::with_capacity(batch.len());
    for entry in batch {
        let document = serde_json::value::RawValue::from_string(entry.document.clone())
            .map_err(StoreError::from)?;
        items.push(RawPushItem {
            record_id: entry.record_id,
            revision: entry.revision,
            status: entry.status,
            document,
            content_sha256: &entry.content_sha256,
            signature: entry.signature.as_deref(),
            signer_user_id: entry.signer_user_id,
            saved_at_utc: entry.saved_at_utc,
        });
    }
    let verified_checkpoint = verified.map(|c| crate::protocol::LogState {
        size: c.size,
        root: crate::transparency::hash_b64(&c.root),
    });
    serde_json::to_vec(&RawPushRequest {
        items,
        verified_checkpoint,
        device_audit_head,
    })
    .map_err(|e| SyncError::Store(StoreError::from(e)))
}

/// Tuning; the defaults are what the app uses.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    pub batch_max_items: usize,
    pub batch_max_bytes: usize,
    pub request_timeout: Duration,
    pub backoff_initial: Duration,
    pub backoff_cap: Duration,
    /// How often to sync when all is well.
    pub periodic: Duration,
    /// How often to probe reachability while offline.
    pub probe_interval: Duration,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            batch_max_items: 200,
            batch_max_bytes: 4 * 1024 * 1024,
            request_timeout: Duration::from_secs(20),
            backoff_initial: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(300),
            periodic: Duration::from_secs(60),
            probe_interval: Duration::from_secs(5),
        }
    }
}

/// Why a cycle ended early.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("this tablet is not enrolled with a server")]
    NotEnrolled,
    #[error(
        "this store was used for the demonstration and holds demo records, which must never reach a trust server; enrol a fresh store (a new data directory) instead"
    )]
    DemoStore,
    #[error(
        "this store is enrolled with a trust server, which would receive synthetic records; add demo records only to a store that is not enrolled"
    )]
    EnrolledStore,
    /// The server could not prove that it kept every record: sync stops until the tablet is
    /// enrolled again; every record stays queued here.
    #[error(
        "the server could not prove it kept every record ({0}); records stay on this tablet: tell control"
    )]
    Integrity(String),
    /// The trust retired this tablet once everything it held had reached the server.
    #[error(
        "this tablet has been retired: everything it held when it was retired reached the server; it no longer syncs"
    )]
    Retired,
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error("local store: {0}")]
    Store(#[from] StoreError),
    /// The operating system would not start the sync thread.
    #[error("cannot start the sync thread: {0}")]
    Thread(std::io::Error),
}

impl SyncError {
    /// Which kind of problem this is for the status bar.
    pub fn kind(&self) -> ProblemKind {
        match self {
            SyncError::Request(RequestError::Transient(_)) => ProblemKind::Transient,
            SyncError::Request(RequestError::Credentials(_) | RequestError::BadAddress(_)) => {
                ProblemKind::Credentials
            }
            SyncError::Request(RequestError::Refused { .. }) => ProblemKind::Record,
            SyncError::NotEnrolled
            | SyncError::DemoStore
            | SyncError::EnrolledStore
            | SyncError::Retired => ProblemKind::Credentials,
            SyncError::Integrity(_) => ProblemKind::Integrity,
            SyncError::Store(_) | SyncError::Thread(_) => ProblemKind::Local,
        }
    }
}

/// What one cycle did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CycleReport {
    /// Versions the server acknowledged (stored, duplicate or stale) in this cycle.
    pub pushed: u64,
    /// Versions quarantined in this cycle.
    pub newly_quarantined: u64,
    /// Supervisor decisions received.
    pub feedback: u64,
    /// Versions still waiting afterwards.
    pub pending: u64,
    /// Versions held back by the server's refusal (all time).
    pub quarantined: u64,
    /// Whether the server was reached.
    pub reachable: bool,
    /// Records that left the tablet at the end of the retention window.
    pub purged: u64,
}

/// Enrols this device: sends its public key, with proof that it holds the private key, and
/// the one-time code; keeps the server URL, device id and token inside the encrypted store.
/// The device's name is the one the administrator gave the code.
pub async fn enroll(store: &Store, server_url: &str, code: &str) -> Result<Uuid, SyncError> {
    let request = enrolment_request(store, code)?;
    let response = request_enrolment(server_url, &request).await?;
    remember_enrolment(store, server_url, &response)
}

/// Set in a store that "Try it on this computer" enrolled with the in-process demo server:
/// the port that server listens on.
pub const DEMO_PORT: &str = "demo_server_port";

/// Set in a store that `epr demo-data` added synthetic records to.
pub const DEMO_RECORDS: &str = "demo_records";

/// A store that has run the demonstration, or been given synthetic records, holds records
/// that are not patients' (and whatever was typed while trying the app): it must never be
/// enrolled with a trust server, which would receive them all. Checked before any connection.
fn refuse_a_demo_store(store: &Store) -> Result<(), SyncError> {
    if store.setting(DEMO_PORT)?.is_some() || store.setting(DEMO_RECORDS)?.is_some() {
        return Err(SyncError::DemoStore);
    }
    Ok(())
}

/// Before synthetic records are added: refused for a store enrolled with a trust server
/// (they would be sent to it); otherwise the store is marked so it can never be enrolled.
pub fn mark_for_demo_records(store: &Store) -> Result<(), SyncError> {
    let enrolled = store.setting(SERVER_URL)?.is_some();
    if enrolled && store.setting(DEMO_PORT)?.is_none() {
        return Err(SyncError::EnrolledStore);
    }
    store.set_setting(DEMO_RECORDS, "yes")?;
    Ok(())
}

/// The enrolment request for `code`: this device's public key and its signature over the code
/// and key (proof of possession). Synchronous, so the store need not cross an await. Every
/// enrolment builds one here, so a demonstration store is refused here, before any connection
/// (the demo's own enrolment happens before the store is marked).
pub fn enrolment_request(store: &Store, code: &str) -> Result<EnrollRequest, SyncError> {
    refuse_a_demo_store(store)?;
    Ok(EnrollRequest::signed(code, store.signing_key()?))
}

/// The network half of [`enroll`]: it holds no store, so a task that owns its connection can
/// await it on a multi-thread runtime (a `&Store` cannot cross an await there).
pub async fn request_enrolment(
    server_url: &str,
    request: &EnrollRequest,
) -> Result<crate::protocol::EnrollResponse, SyncError> {
    let client = ApiClient::new(server_url, Duration::from_secs(20))?;
    Ok(client.enroll(request).await?)
}

/// The store half of [`enroll`]: keeps what the server issued inside the encrypted store.
pub fn remember_enrolment(
    store: &Store,
    server_url: &str,
    response: &crate::protocol::EnrollResponse,
) -> Result<Uuid, SyncError> {
    // Users' keys are registered through a device: a new enrolment (this server again after a
    // reset, or another one) must hear of every one of them. First, so a stop part-way leaves
    // them to be registered again rather than wrongly taken as known.
    store.forget_signer_registrations()?;
    // A tablet retired by one enrolment and enrolled again is back in service.
    store.set_tablet_state(TabletState::Active)?;
    store.set_setting(SERVER_URL, server_url.trim_end_matches('/'))?;
    store.set_setting(DEVICE_ID, &response.device_id.to_string())?;
    store.set_setting(DEVICE_TOKEN, &response.device_token)?;
    store.set_setting(DEVICE_NAME, &response.device_name)?;
    store.delete_setting(REJOINED_LOG)?;
    super::integrity::start_fresh(store, response.log_key.as_deref())?;
    Ok(response.device_id)
}

/// The engine: owns its own store connection and an HTTP client.
pub struct Engine {
    store: Store,
    config: SyncConfig,
    /// Largest batch to try next; shrinks to isolate a record the server refuses as a batch.
    batch_limit: usize,
    /// The server's clock minus this tablet's at the last answer, in seconds.
    clock_skew_secs: Option<i64>,
    /// This cycle's log check: the checkpoint verified before pushing (`None` when the server
    /// has no log and this tablet pinned none), and the versions the server accepted, waiting
    /// for their inclusion proofs before they leave the outbox.
    log: Option<Checkpoint>,
    unproven: Vec<Unproven>,
    /// This tablet's id, read once per cycle (every version leaf names it).
    device_id: Option<Uuid>,
}

/// Versions accepted before the engine stops to prove them (one checkpoint, one consistency
/// proof and one inclusion request per this many).
const PROVE_EVERY_VERSIONS: usize = 1000;

/// A version the server said it holds, not yet proved to be in its log.
#[derive(Debug, Clone)]
struct Unproven {
    record_id: Uuid,
    revision: Revision,
    leaf_index: Option<u64>,
    leaf: LogHash,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine over `store` (give it its own connection: `store.open_another()`).
    pub fn new(store: Store, config: SyncConfig) -> Self {
        let batch_limit = config.batch_max_items;
        Self {
            store,
            config,
            batch_limit,
            clock_skew_secs: None,
            log: None,
            unproven: Vec::new(),
            device_id: None,
        }
    }

    /// The engine's store connection (for status queries by the CLI).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The client and the device token (wiped from memory when the cycle ends).
    fn client(&self) -> Result<(ApiClient, zeroize::Zeroizing<String>), SyncError> {
        let url = self
            .store
            .setting(SERVER_URL)?
            .ok_or(SyncError::NotEnrolled)?;
        let token = zeroize::Zeroizing::new(
            self.store
                .setting(DEVICE_TOKEN)?
                .ok_or(SyncError::NotEnrolled)?,
        );
        Ok((ApiClient::new(&url, self.config.request_timeout)?, token))
    }

    /// One full cycle: push everything pending, then pull feedback. Items the server refuses
    /// are quarantined and do not stop the cycle.
    pub async fn run_cycle(&mut self) -> Result<CycleReport, SyncError> {
        let (client, token) = self.client()?;
        let mut outcome = self.cycle_with(&client, &token).await;
        // A refused token may mean the server was rebuilt from its tablets (its database, and
        // every token, lost): take this tablet's place in it again and go on.
        if matches!(
            outcome,
            Err(SyncError::Request(RequestError::Credentials(401)))
        ) {
            match self.rejoin_rebuilt_server(&client).await {
                Ok(false) => {}
                Ok(true) => {
                    let (_, token) = self.client()?;
                    outcome = self.cycle_with(&client, &token).await;
                }
                Err(e) => outcome = Err(e),
            }
        }
        // Any answer, even a refusal, says what time the server thinks it is.
        if let Some(skew) = client.clock_skew_secs() {
            self.clock_skew_secs = Some(skew);
        }
        outcome
    }

    /// The server's clock minus this tablet's at the last answer, in seconds.
    pub fn clock_skew_secs(&self) -> Option<i64> {
        self.clock_skew_secs
    }

    async fn cycle_with(
        &mut self,
        client: &ApiClient,
        token: &str,
    ) -> Result<CycleReport, SyncError> {
        let (client, token) = (client, token);
        let mut report = CycleReport::default();
        if let Some(reason) = self.store.setting(super::integrity::INTEGRITY_FAILURE)? {
            return Err(SyncError::Integrity(reason));
        }
        if self.store.tablet_state()? == TabletState::Retired {
            return Err(SyncError::Retired);
        }
        self.unproven.clear();
        self.device_id = self
            .store
            .setting(DEVICE_ID)?
            .and_then(|d| Uuid::parse_str(&d).ok());
        self.log = self.check_log(client, token).await?;
        let result = match self.push_all(client, token, &mut report).await {
            Ok(()) => self.prove_pushed(client, token, &mut report).await,
            Err(e) => Err(e),
        };
        self.unproven.clear();
        // Entries still marked "sending" were not answered or not proved: show them as queued
        // again.
        self.store.release_sending()?;
        result?;
        report.reachable = true;
        if self.store.setting(DECISIONS_TO_RESTORE)?.is_some() {
            self.restore_decisions(client, token).await?;
        }
        report.feedback = self.pull_feedback(client, token).await?;
        self.pull_reference(client, token).await?;
        self.report_holdings(client, token).await?;
        report.purged = self.purge_expired_records()?;
        self.store.set_last_sync(Utc::now())?;
        let counts = self.store.status_counts()?;
        report.pending = counts.pending_sync;
        report.quarantined = counts.quarantined;
        Ok(report)
    }

    /// Pushes everything pending. Batches are pipelined: while one batch is on the wire, the
    /// next is read from the store and sent, and the previous answer is applied, so store work
    /// and server work overlap.
    async fn push_all(
        &mut self,
        client: &ApiClient,
        token: &str,
        report: &mut CycleReport,
    ) -> Result<(), SyncError> {
        type InFlight = (
            Vec<OutboxItem>,
            tokio::task::JoinHandle<Result<crate::protocol::PushResponse, RequestError>>,
        );
        // Bounded: each round sends a batch or applies one answer; every answer removes or
        // quarantines at least one entry, shrinks the batch, or ends the cycle with an error.
        let max_rounds = 2 * self.store.status_counts()?.pending_sync as usize + 32;
        let mut after: Option<OutboxPosition> = None;
        let mut in_flight: Option<InFlight> = None;
        self.register_signers(client, token).await?;
        for _ in 0..max_rounds {
            let next = self.store.outbox_batch_after(
                after.as_ref(),
                self.batch_limit,
                self.config.batch_max_bytes,
            )?;
            let sent: Option<InFlight> = if next.is_empty() {
                None
            } else {
                after = next.last().map(|b| b.position.clone());
                let head = self
                    .store
                    .audit_head()?
                    .map(|(seq, hash)| crate::protocol::AuditHead { seq, hash });
                let body = request_body(&next, self.log.as_ref(), head)?;
                let ids: Vec<Uuid> = next.iter().map(|b| b.record_id).collect();
                self.store.mark_sending(&ids)?;
                let client = client.clone();
                let token = zeroize::Zeroizing::new(token.to_owned());
                let handle = tokio::spawn(async move { client.push_json(&token, body).await });
                Some((next, handle))
            };
            let Some((batch, handle)) = in_flight.take() else {
                if sent.is_none() {
                    return Ok(());
                }
                in_flight = sent;
                continue;
            };
            let answer = handle.await.unwrap_or_else(|_| {
                Err(RequestError::Transient(
                    "the push was interrupted".to_owned(),
                ))
            });
            in_flight = sent;
            let response = match answer {
                Ok(r) => r,
                Err(RequestError::Refused { status, message }) => {
                    // The batch as a whole was refused (too large, or one item breaks it):
                    // isolate the culprit by sending one at a time from the start of the
                    // queue; a single refused item is quarantined with the server's reason.
                    if batch.len() > 1 {
                        self.batch_limit = 1;
                        after = None;
                    } else if let Some(only) = batch.first() {
                        let reason = format!("refused by the server ({status}): {message}");
                        self.store
                            .quarantine(only.record_id, only.revision, &reason)?;
                        report.newly_quarantined += 1;
                    }
                    continue;
                }
                Err(e) => {
                    if let Some((_, h)) = in_flight.take() {
                        h.abort();
                    }
                    return Err(e.into());
                }
            };
            if self.apply_answer(&batch, &response, report)? {
                // The server does not know a clinician key this tablet thought registered
                // (a restored server, say): register every key again at the next cycle; the
                // versions it signed stay queued, nothing is quarantined.
                tracing::warn!(
                    "the server does not know a clinician's signing key; it is registered again at the next sync"
                );
                self.store.forget_signer_registrations()?;
                if let Some((_, h)) = in_flight.take() {
                    h.abort();
                }
                return Ok(());
            }
            // Prove as the drain goes, so a fault late in a long drain does not send every
            // version of it again.
            if self.unproven.len() >= PROVE_EVERY_VERSIONS
                && let Err(e) = self.prove_pushed(client, token, report).await
            {
                if let Some((_, h)) = in_flight.take() {
                    h.abort();
                }
                return Err(e);
            }
            if self.batch_limit < self.config.batch_max_items {
                self.batch_limit = (self.batch_limit * 2).min(self.config.batch_max_items);
            }
        }
        if let Some((_, h)) = in_flight.take() {
            h.abort();
        }
        Ok(())
    }

    /// Registers every clinician key the server has not acknowledged, each with its proof of
    /// possession and this tablet's endorsement, in requests of their own before any record
    /// goes. A refusal ends the cycle and quarantines nothing: the records wait.
    async fn register_signers(&mut self, client: &ApiClient, token: &str) -> Result<(), SyncError> {
        let pending = self.store.unregistered_signers()?;
        if pending.is_empty() {
            return Ok(());
        }
        let device_id = self.device_id.ok_or(SyncError::NotEnrolled)?;
        for chunk in pending.chunks(crate::protocol::MAX_PUSH_SIGNERS) {
            let mut signers = Vec::with_capacity(chunk.len());
            for p in chunk {
                let message = p
                    .identity
                    .endorsement_message(device_id)
                    .map_err(|e| SyncError::Store(StoreError::Key(e)))?;
                let endorsement = self.store.signing_key()?.sign_base64(&message);
                signers.push(crate::protocol::SignerRegistration::new(
                    &p.identity,
                    &p.proof,
                    &endorsement,
                ));
            }
            let request = crate::protocol::PushRequest {
                items: Vec::new(),
                verified_checkpoint: None,
                device_audit_head: None,
                signers,
            };
            client.push(token, &request).await?;
            let ids: Vec<Uuid> = chunk.iter().map(|p| p.identity.user_id).collect();
            self.store.mark_signers_registered(&ids)?;
        }
        Ok(())
    }

    /// Applies the server's per-item answers for one batch: acknowledge what it committed,
    /// quarantine what it refused; entries it did not mention stay queued. True when the
    /// server named a clinician key it does not know (those versions stay queued too).
    fn apply_answer(
        &mut self,
        batch: &[OutboxItem],
        response: &crate::protocol::PushResponse,
        report: &mut CycleReport,
    ) -> Result<bool, SyncError> {
        let mut unknown_signer = false;
        let mut acks = Vec::new();
        for result in &response.results {
            let Some(item) = batch
                .iter()
                .find(|b| b.record_id == result.record_id && b.revision == result.revision)
            else {
                continue;
            };
            match result.outcome {
                PushOutcome::Stored | PushOutcome::Duplicate if self.log.is_some() => {
                    // Held back until the server proves the version is in its log.
                    self.unproven.push(Unproven {
                        record_id: item.record_id,
                        revision: item.revision,
                        leaf_index: result.leaf_index,
                        leaf: leaf_hash(&self.version_leaf(item)?.encode()),
                    });
                }
                PushOutcome::Stored | PushOutcome::Duplicate | PushOutcome::Stale => {
                    acks.push((result.record_id, result.revision));
                }
                PushOutcome::Rejected
                    if result.reject_reason == Some(RejectReason::UnknownSigner) =>
                {
                    unknown_signer = true;
                }
                PushOutcome::Rejected => {
                    let reason = match (&result.reject_reason, &result.message) {
                        (_, Some(m)) => m.clone(),
                        (Some(r), None) => format!("{r:?}"),
                        (None, None) => "refused by the server".to_owned(),
                    };
                    self.store
                        .quarantine(result.record_id, result.revision, &reason)?;
                    report.newly_quarantined += 1;
                }
            }
        }
        report.pushed += acks.len() as u64;
        self.store.acknowledge_many(&acks)?;
        Ok(unknown_signer)
    }

    /// The log leaf the server must hold for a version this tablet pushed.
    fn version_leaf(&self, item: &OutboxItem) -> Result<Leaf, SyncError> {
        let device_id = self.device_id.ok_or(SyncError::NotEnrolled)?;
        Ok(Leaf::Version {
            record_id: item.record_id,
            revision: item.revision.get(),
            status: item.status.as_str().to_owned(),
            content_sha256: item.content_sha256.clone(),
            signature: item.signature.clone(),
            device_id,
            saved_at_utc: leaf_time(item.saved_at_utc),
            signer_user_id: item.signer_user_id,
        })
    }

    /// Keeps an integrity failure and turns it into the error that stops sync.
    fn integrity_failed(&mut self, e: IntegrityError) -> SyncError {
        let reason = e.to_string();
        tracing::error!(%reason, "the server failed its integrity check; sync stopped");
        if let Err(store_error) = super::integrity::record_failure(&mut self.store, &reason) {
            return SyncError::Store(store_error);
        }
        SyncError::Integrity(reason)
    }

    /// Fetches the server's checkpoint and checks it: signed by the pinned key, and extending
    /// the last checkpoint this tablet verified. `None` when the server has no log and this
    /// tablet pinned no key (a server from before the log); a tablet enrolled before the log
    /// existed pins the key it is first shown.
    async fn check_log(
        &mut self,
        client: &ApiClient,
        token: &str,
    ) -> Result<Option<Checkpoint>, SyncError> {
        let pinned = super::integrity::pinned_key(&self.store)?;
        // Read under the key pinned now, before any rotation changes it.
        let before = match (
            &pinned,
            self.store.setting(super::integrity::LOG_CHECKPOINT)?,
        ) {
            (Some(key), Some(note)) => Some(open_checkpoint(&note, key).map_err(|_| {
                self.integrity_failed(IntegrityError::MalformedCheckpoint(
                    "the checkpoint this tablet verified last can no longer be read",
                ))
            })?),
            _ => None,
        };
        let Some(answer) = client.log_checkpoint(token).await? else {
            return match pinned {
                None => Ok(None),
                Some(_) => Err(self.integrity_failed(IntegrityError::MalformedCheckpoint(
                    "the server no longer publishes its log",
                ))),
            };
        };
        let key = match pinned {
            Some(k) => k,
            None => {
                let k = LogPublicKey::from_vkey(&answer.log_key)
                    .map_err(|e| self.integrity_failed(e))?;
                self.store
                    .set_setting(super::integrity::LOG_KEY, &k.to_vkey())?;
                tracing::info!(fingerprint = %k.fingerprint(), "pinned the server's log key");
                k
            }
        };
        let now = match open_checkpoint(&answer.checkpoint, &key) {
            Err(IntegrityError::UnknownKey) => match LogPublicKey::from_vkey(&answer.log_key) {
                Ok(offered) if offered != key => {
                    let key = self
                        .follow_key_rotation(client, token, &key, offered)
                        .await?;
                    open_checkpoint(&answer.checkpoint, &key)
                        .map_err(|e| self.integrity_failed(e))?
                }
                _ => return Err(self.integrity_failed(IntegrityError::UnknownKey)),
            },
            other => other.map_err(|e| self.integrity_failed(e))?,
        };
        if let Some(before) = before {
            self.check_extends(client, token, &before, &now).await?;
        }
        self.store
            .set_setting(super::integrity::LOG_CHECKPOINT, &answer.checkpoint)?;
        Ok(Some(now))
    }

    /// The server signs with a key this tablet did not pin: accepted only through rotation
    /// statements, each signed by the key before it, from the pinned key to the one offered.
    /// Then the new key is pinned (and the last verified checkpoint is re-kept, so it still
    /// opens).
    async fn follow_key_rotation(
        &mut self,
        client: &ApiClient,
        token: &str,
        pinned: &LogPublicKey,
        target: LogPublicKey,
    ) -> Result<LogPublicKey, SyncError> {
        // A server without rotations to show has none that could hand over to this key.
        let statements = match client.log_key_rotations(token).await {
            Ok(r) => r.rotations,
            Err(RequestError::Refused { status: 404, .. }) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let key =
            follow_rotations(pinned, &statements, &target).map_err(|e| self.integrity_failed(e))?;
        self.store
            .set_setting(super::integrity::LOG_KEY, &key.to_vkey())?;
        tracing::info!(fingerprint = %key.fingerprint(), "the server's log key was rotated; pinned the new key");
        Ok(key)
    }

    /// After a refused token: if the server was rebuilt from its tablets (`serve --recover`),
    /// checks the rebuilt log with the pinned key (its checkpoint; its first leaf, included in
    /// it, naming a checkpoint of the lost log signed by the same key; that checkpoint
    /// extending the last one this tablet verified), proves with this tablet's enrolled key
    /// that it is the tablet the lost log enrolled, and queues every signed version it still
    /// holds to be sent again. False when the server was not rebuilt (the refusal stands).
    /// A rebuilt log that fails a check is an integrity failure like any other.
    async fn rejoin_rebuilt_server(&mut self, client: &ApiClient) -> Result<bool, SyncError> {
        let Some(key) = super::integrity::pinned_key(&self.store)? else {
            return Ok(false);
        };
        let Some(device_id) = self
            .store
            .setting(DEVICE_ID)?
            .and_then(|d| Uuid::parse_str(&d).ok())
        else {
            return Ok(false);
        };
        let before = super::integrity::verified_checkpoint(&self.store)?;
        let verified_size = before.as_ref().map_or(0, |c| c.size);
        let Some(info) = client.recovery_info(verified_size).await? else {
            return Ok(false);
        };
        let recovery_leaf = leaf_hash(info.recovery_leaf.as_bytes());
        let recovery_hex = crate::transparency::hash_hex(&recovery_leaf);
        if self.store.setting(REJOINED_LOG)?.as_deref() == Some(recovery_hex.as_str()) {
            // Already back in this rebuilt log: the refusal is the server's word on this tablet.
            return Ok(false);
        }
        let now = open_checkpoint(&info.checkpoint, &key).map_err(|e| self.integrity_failed(e))?;
        let proof = parse_proof(&info.recovery_leaf_proof).map_err(|e| self.integrity_failed(e))?;
        check_inclusion(&proof, &now, 0, recovery_leaf).map_err(|e| self.integrity_failed(e))?;
        let Ok(Leaf::Recovery {
            previous_size,
            previous_root,
            previous_checkpoint_sha256,
            ..
        }) = Leaf::decode(info.recovery_leaf.as_bytes())
        else {
            return Err(self.integrity_failed(IntegrityError::MalformedProof(
                "the rebuilt log does not start with a recovery entry",
            )));
        };
        let previous = open_checkpoint(&info.previous_checkpoint, &key)
            .map_err(|e| self.integrity_failed(e))?;
        if previous.size != previous_size
            || crate::transparency::hash_b64(&previous.root) != previous_root
            || crate::crypto::sha256_hex(info.previous_checkpoint.as_bytes())
                != previous_checkpoint_sha256
        {
            return Err(self.integrity_failed(IntegrityError::MalformedProof(
                "the rebuilt log names another checkpoint than the one it shows",
            )));
        }
        if let Some(before) = &before {
            if before.size > previous.size {
                return Err(self.integrity_failed(IntegrityError::RebuiltFromOlder {
                    before: before.size,
                    previous: previous.size,
                }));
            }
            let proof =
                parse_proof(&info.previous_consistency).map_err(|e| self.integrity_failed(e))?;
            check_consistency(&proof, before, &previous).map_err(|e| self.integrity_failed(e))?;
        }
        let signing_key = self.store.signing_key()?;
        let request = crate::protocol::RecoverRequest {
            device_id,
            public_key: signing_key.public_key_base64(),
            signature: signing_key.sign_base64(&crate::transparency::recovery_statement(
                &key.name,
                device_id,
                &recovery_leaf,
            )),
            device_name: self.store.setting(DEVICE_NAME)?,
        };
        let response = client.recover(&request).await?;
        if response.device_id != device_id {
            return Err(SyncError::Request(RequestError::Refused {
                status: 200,
                message: "the rebuilt server answered for another tablet".to_owned(),
            }));
        }
        let requeued = self.store.rejoin_rebuilt_log(&[
            (DEVICE_TOKEN, response.device_token.as_str()),
            (super::integrity::LOG_CHECKPOINT, info.checkpoint.as_str()),
            (REJOINED_LOG, recovery_hex.as_str()),
            (DECISIONS_TO_RESTORE, "yes"),
        ])?;
        tracing::warn!(
            requeued,
            "the server was rebuilt from its tablets: this tablet took its place again and sends back every signed record it holds"
        );
        Ok(true)
    }

    /// After rejoining a rebuilt server and sending back its versions: sends back every
    /// supervisor decision this tablet received from the lost server, oldest first. The
    /// server takes only those its lost log holds; one it refuses is left (the lost log's
    /// entries still prove what was decided). Done once.
    async fn restore_decisions(
        &mut self,
        client: &ApiClient,
        token: &str,
    ) -> Result<(), SyncError> {
        let held = self.store.all_feedback()?;
        let mut refused = 0usize;
        for chunk in held.chunks(crate::protocol::MAX_RESTORED_DECISIONS) {
            let request = crate::protocol::RestoreDecisionsRequest {
                decisions: chunk
                    .iter()
                    .map(|f| crate::protocol::DecisionRecord {
                        record_id: f.record_id,
                        revision: f.revision,
                        decision: f.decision,
                        comment: f.comment.clone(),
                        decided_by: f.decided_by.clone(),
                        decided_at_utc: f.decided_at_utc,
                    })
                    .collect(),
            };
            match client.restore_decisions(token, &request).await {
                Ok(answer) => {
                    refused += answer
                        .results
                        .iter()
                        .filter(|r| {
                            !matches!(
                                r,
                                crate::protocol::DecisionRestore::Restored
                                    | crate::protocol::DecisionRestore::Duplicate
                            )
                        })
                        .count();
                }
                // A server that does not take decisions back: nothing more to do.
                Err(RequestError::Refused { status: 404, .. }) => break,
                Err(e) => return Err(e.into()),
            }
        }
        if refused > 0 {
            tracing::warn!(
                refused,
                "the rebuilt server did not take back some decisions"
            );
        }
        self.store.delete_setting(DECISIONS_TO_RESTORE)?;
        Ok(())
    }

    /// Checks that `now` extends `before` with a consistency proof from the server.
    async fn check_extends(
        &mut self,
        client: &ApiClient,
        token: &str,
        before: &Checkpoint,
        now: &Checkpoint,
    ) -> Result<(), SyncError> {
        let proof = if before.size == 0 || before.size >= now.size {
            Vec::new()
        } else {
            let answer = client.log_consistency(token, before.size, now.size).await?;
            parse_proof(&answer.proof).map_err(|e| self.integrity_failed(e))?
        };
        check_consistency(&proof, before, now).map_err(|e| self.integrity_failed(e))
    }

    /// After pushing: fetches the checkpoint again, checks it extends the one verified before
    /// the push, and checks every accepted version's inclusion proof; then acknowledges them.
    async fn prove_pushed(
        &mut self,
        client: &ApiClient,
        token: &str,
        report: &mut CycleReport,
    ) -> Result<(), SyncError> {
        if self.unproven.is_empty() {
            return Ok(());
        }
        let Some(before) = self.log.clone() else {
            return Ok(());
        };
        let Some(key) = super::integrity::pinned_key(&self.store)? else {
            return Ok(());
        };
        let Some(answer) = client.log_checkpoint(token).await? else {
            return Err(self.integrity_failed(IntegrityError::MalformedCheckpoint(
                "the server no longer publishes its log",
            )));
        };
        let now =
            open_checkpoint(&answer.checkpoint, &key).map_err(|e| self.integrity_failed(e))?;
        self.check_extends(client, token, &before, &now).await?;
        let mut missing_index = false;
        let mut indexed: Vec<(u64, LogHash)> = Vec::with_capacity(self.unproven.len());
        for u in &self.unproven {
            match u.leaf_index {
                Some(i) => indexed.push((i, u.leaf)),
                None => missing_index = true,
            }
        }
        if missing_index {
            return Err(self.integrity_failed(IntegrityError::NotIncluded));
        }
        let chunk_size =
            usize::try_from(crate::transparency::MAX_LEAVES_PER_ANSWER).unwrap_or(1000);
        for chunk in indexed.chunks(chunk_size) {
            let request = InclusionRequest {
                size: now.size,
                indexes: chunk.iter().map(|(i, _)| *i).collect(),
            };
            if chunk.iter().any(|(i, _)| *i >= now.size) {
                return Err(self.integrity_failed(IntegrityError::NotIncluded));
            }
            let answer = client.log_inclusion(token, &request).await?;
            if answer.size != now.size || answer.proofs.len() != chunk.len() {
                return Err(self.integrity_failed(IntegrityError::MalformedProof(
                    "the wrong number of inclusion proofs",
                )));
            }
            for ((index, leaf), proof) in chunk.iter().zip(&answer.proofs) {
                let proof = parse_proof(proof).map_err(|e| self.integrity_failed(e))?;
                check_inclusion(&proof, &now, *index, *leaf)
                    .map_err(|e| self.integrity_failed(e))?;
            }
        }
        self.store
            .set_setting(super::integrity::LOG_CHECKPOINT, &answer.checkpoint)?;
        let proved_in = now.size;
        self.log = Some(now);
        let acks: Vec<(Uuid, Revision)> = self
            .unproven
            .iter()
            .map(|u| (u.record_id, u.revision))
            .collect();
        self.store.acknowledge_proved(&acks, proved_in)?;
        report.pushed += acks.len() as u64;
        self.unproven.clear();
        Ok(())
    }

    /// Tells the server what this tablet still holds, and keeps what it answers: the trust's
    /// retention window and whether the tablet is being retired. A server too old to take
    /// reports, or one that cannot take this report now, changes nothing: sync goes on.
    async fn report_holdings(&mut self, client: &ApiClient, token: &str) -> Result<(), SyncError> {
        let held = self.store.holdings()?;
        let report = DeviceReport {
            pending: held.pending,
            oldest_pending_utc: held.oldest_unacknowledged_utc,
            held_versions: held.held_versions,
            app_version: env!("CARGO_PKG_VERSION").to_owned(),
            verified_tree_size: self.log.as_ref().map(|l| l.size),
        };
        // The report only informs: records were pushed and proved already, so a report that
        // fails is tried again at the next sync rather than failing this one.
        let answer = match client.device_report(token, &report).await {
            Ok(Some(answer)) => answer,
            Ok(None) => return Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, "the holdings report did not reach the server");
                return Ok(());
            }
        };
        if crate::store::retention::RETENTION_DAYS_RANGE.contains(&answer.retention_days) {
            self.store.set_retention_days(answer.retention_days)?;
        } else {
            tracing::warn!(
                days = answer.retention_days,
                "the server's retention window is out of range; the tablet keeps its own"
            );
        }
        self.store.set_tablet_state(match answer.state {
            DeviceState::Active => TabletState::Active,
            DeviceState::Retiring => TabletState::Retiring,
            DeviceState::Retired => TabletState::Retired,
        })?;
        Ok(())
    }

    /// Removes records the server proved it holds, once the trust's window has passed.
    fn purge_expired_records(&mut self) -> Result<u64, SyncError> {
        let days = self.store.retention_days()?;
        let purged = self
            .store
            .purge_expired(Utc::now(), chrono::Duration::days(i64::from(days)))?;
        if purged.records > 0 {
            tracing::info!(
                records = purged.records,
                versions = purged.versions,
                days,
                "records past the retention window left the tablet"
            );
        }
        Ok(purged.records)
    }

    async fn pull_feedback(&mut self, client: &ApiClient, token: &str) -> Result<u64, SyncError> {
        let mut total = 0u64;
        for _ in 0..1000 {
            let since = self.store.feedback_cursor()?;
            let page = client.feedback(token, since).await?;
            if page.items.is_empty() {
                break;
            }
            let entries: Vec<FeedbackEntry> = page
                .items
                .iter()
                .map(|f| FeedbackEntry {
                    cursor: f.cursor,
                    record_id: f.record_id,
                    revision: f.revision,
                    decision: f.decision,
                    comment: f.comment.clone(),
                    decided_by: f.decided_by.clone(),
                    decided_at_utc: f.decided_at_utc,
                })
                .collect();
            let next = page
                .next_cursor
                .max(entries.iter().map(|e| e.cursor).max().unwrap_or(since));
            total += self.store.apply_feedback(&entries, next)? as u64;
            if next <= since {
                break;
            }
        }
        Ok(total)
    }

    /// Takes the server's reference data when it holds a newer version, after checking it
    /// against the pinned log key. A set that fails a check is refused and noted (the set
    /// held stays in use); it does not stop the sync: records still go.
    async fn pull_reference(&mut self, client: &ApiClient, token: &str) -> Result<(), SyncError> {
        let have = self.store.server_reference_version()?;
        let Some(answer) = client.reference(token, have).await? else {
            return Ok(());
        };
        let Some(set) = answer.set else {
            return Ok(());
        };
        let key = super::integrity::pinned_key(&self.store)?;
        match super::integrity::check_reference(&set, key.as_ref()) {
            Ok(_) => {
                if self.store.keep_server_reference(
                    set.version,
                    &set.document,
                    &set.signed_note,
                    Utc::now(),
                )? {
                    tracing::info!(version = set.version, "took the trust's reference data");
                }
            }
            Err(reason) => {
                tracing::warn!(version = set.version, %reason, "refused the reference data the server offered");
                self.store.note_reference_refused(&format!(
                    "version {} was refused: {reason}",
                    set.version
                ))?;
            }
        }
        Ok(())
    }

    fn base_status(&self) -> SyncStatus {
        let counts = self.store.status_counts().unwrap_or_default();
        SyncStatus {
            enrolled: self.store.setting(SERVER_URL).ok().flatten().is_some(),
            queued: counts.pending_sync,
            quarantined: counts.quarantined,
            returned: counts.returned,
            last_success_utc: self.store.last_sync().ok().flatten(),
            clock_skew_secs: self.clock_skew_secs,
            server_integrity_failed: self
                .store
                .setting(super::integrity::INTEGRITY_FAILURE)
                .ok()
                .flatten()
                .is_some(),
            tablet_state: self.store.tablet_state().unwrap_or_default(),
            ..SyncStatus::default()
        }
    }

    /// Runs until [`SyncCommand::Shutdown`] or the handle is dropped. Publishes status after
    /// every change and calls `notify` (the UI's repaint request).
    pub async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<SyncCommand>,
        status_tx: watch::Sender<SyncStatus>,
        notify: Arc<dyn Fn() + Send + Sync>,
    ) {
        let publish = |s: SyncStatus| {
            status_tx.send_replace(s);
            notify();
        };
        // Records past the retention window leave at start too, so a tablet that stays out of
        // coverage does not keep them for longer than the trust allows.
        if self.store.setting(SERVER_URL).ok().flatten().is_some()
            && let Err(e) = self.purge_expired_records()
        {
            tracing::warn!(error = %e, "the retention purge did not run");
        }
        let mut status = self.base_status();
        let mut changes: u64 = 0;
        publish(status.clone());
        let mut failures: u32 = 0;
        let mut stopped = false;
        let mut wait = Duration::ZERO;
        loop {
            // Wait for a trigger: a command, the timer, or (while offline) the server coming back.
            let mut run_now = false;
            let deadline = tokio::time::Instant::now() + wait;
            while !run_now {
                let now = tokio::time::Instant::now();
                if now >= deadline && !stopped {
                    break;
                }
                let slice = if status.reachable == Some(false) && !stopped {
                    self.config.probe_interval.min(deadline - now)
                } else if stopped {
                    Duration::from_secs(3600)
                } else {
                    deadline - now
                };
                tokio::select! {
                    cmd = commands.recv() => match cmd {
                        None | Some(SyncCommand::Shutdown) => return,
                        Some(SyncCommand::RetryQuarantined) => {
                            let _ = self.store.retry_quarantined();
                            run_now = true;
                        }
                        Some(SyncCommand::SyncNow) | Some(SyncCommand::RecordCompleted) => run_now = true,
                    },
                    _ = tokio::time::sleep(slice) => {
                        if status.reachable == Some(false)
                            && !stopped
                            && let Ok((client, _)) = self.client()
                            && client.health().await
                        {
                            run_now = true;
                        }
                    }
                }
            }
            if run_now {
                stopped = false;
                failures = 0;
            }
            let enrolled = self.store.setting(SERVER_URL).ok().flatten().is_some();
            if !enrolled {
                status = self.base_status();
                status.changes = changes;
                publish(status.clone());
                wait = self.config.periodic;
                continue;
            }
            status.sending = true;
            status.retry_in_secs = None;
            publish(status.clone());
            let outcome = self.run_cycle().await;
            let previous_problem = status.last_problem.clone();
            status = self.base_status();
            if let Ok(report) = &outcome {
                changes +=
                    report.pushed + report.feedback + report.newly_quarantined + report.purged;
            }
            status.changes = changes;
            match outcome {
                Ok(report) => {
                    failures = 0;
                    status.reachable = Some(true);
                    if report.newly_quarantined > 0 {
                        status.last_problem = Some(SyncProblem {
                            kind: ProblemKind::Record,
                            message: format!(
                                "{} record(s) were refused by the server and need attention",
                                report.newly_quarantined
                            ),
                            at_utc: Utc::now(),
                        });
                    } else if report.quarantined > 0 {
                        status.last_problem =
                            previous_problem.filter(|p| p.kind == ProblemKind::Record);
                    }
                    wait = self.config.periodic;
                }
                Err(e) => {
                    let kind = e.kind();
                    // The banner already says what an integrity failure means; the problem
                    // line gives the reason.
                    let mut message = match &e {
                        SyncError::Integrity(reason) => reason.clone(),
                        other => other.to_string(),
                    };
                    // A revoked (or retired) tablet keeps what it has not sent, and says so.
                    if kind == ProblemKind::Credentials && status.queued > 0 {
                        message = format!(
                            "{message}. {} unsent record version(s) stay on this tablet: tell control",
                            status.queued
                        );
                    }
                    status.last_problem = Some(SyncProblem {
                        kind,
                        message,
                        at_utc: Utc::now(),
                    });
                    match kind {
                        ProblemKind::Credentials | ProblemKind::Integrity => {
                            stopped = true;
                            status.stopped = true;
                            status.reachable = Some(true);
                            wait = Duration::from_secs(3600);
                        }
                        _ => {
                            status.reachable = Some(kind != ProblemKind::Transient);
                            failures = failures.saturating_add(1);
                            wait = full_jitter_backoff(&self.config, failures);
                            status.retry_in_secs = Some(wait.as_secs().max(1));
                        }
                    }
                }
            }
            publish(status.clone());
        }
    }
}

/// Capped exponential backoff with full jitter: a random wait between zero and
/// `min(cap, initial * 2^(failures-1))`.
pub fn full_jitter_backoff(config: &SyncConfig, failures: u32) -> Duration {
    let ceiling = backoff_ceiling(config, failures);
    let millis = ceiling.as_millis() as u64;
    Duration::from_millis(rand::rng().random_range(0..=millis.max(1)))
}

/// The ceiling of the backoff after `failures` consecutive failures.
pub fn backoff_ceiling(config: &SyncConfig, failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(30);
    let ceiling = config.backoff_initial.saturating_mul(1u32 << exp.min(20));
    ceiling.min(config.backoff_cap)
}

/// Starts the engine as a task on `runtime` (the app's one runtime) over a second connection
/// to `store`. `notify` is called after each status change (the UI passes `request_repaint`).
/// Dropping the returned handle aborts the task.
pub fn start_on(
    runtime: &tokio::runtime::Handle,
    store: &Store,
    config: SyncConfig,
    notify: Arc<dyn Fn() + Send + Sync>,
) -> Result<SyncHandle, SyncError> {
    let own = store.open_another()?;
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (status_tx, status_rx) = watch::channel(SyncStatus::default());
    let engine = Engine::new(own, config);
    let task = runtime.spawn(engine.run(cmd_rx, status_tx, notify));
    Ok(SyncHandle::new(cmd_tx, status_rx).aborting_on_drop(task.abort_handle()))
}

/// Starts the engine on its own thread (with a small tokio runtime) over a second connection
/// to `store`, for callers without a runtime (the CLI, tests). `notify` is called after each status change (the UI passes `request_repaint`).
pub fn start(
    store: &Store,
    config: SyncConfig,
    notify: Arc<dyn Fn() + Send + Sync>,
) -> Result<SyncHandle, SyncError> {
    let own = store.open_another()?;
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (status_tx, status_rx) = watch::channel(SyncStatus::default());
    let engine = Engine::new(own, config);
    std::thread::Builder::new()
        .name("epr-sync".into())
        .spawn(move || {
            // Two workers: the HTTP request of one batch progresses while this thread does the
            // store work for the next.
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build();
            match runtime {
                Ok(rt) => rt.block_on(engine.run(cmd_rx, status_tx, notify)),
                Err(e) => tracing::error!("sync engine could not start its runtime: {e}"),
            }
        })
        .map_err(SyncError::Thread)?;
    Ok(SyncHandle::new(cmd_tx, status_rx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap() {
        let c = SyncConfig::default();
        assert_eq!(backoff_ceiling(&c, 1), Duration::from_secs(1));
        assert_eq!(backoff_ceiling(&c, 2), Duration::from_secs(2));
        assert_eq!(backoff_ceiling(&c, 4), Duration::from_secs(8));
        assert_eq!(backoff_ceiling(&c, 9), Duration::from_secs(256));
        assert_eq!(backoff_ceiling(&c, 10), Duration::from_secs(300));
        assert_eq!(backoff_ceiling(&c, 1000), Duration::from_secs(300));
        for f in 1..20 {
            assert!(full_jitter_backoff(&c, f) <= backoff_ceiling(&c, f));
        }
    }
}
