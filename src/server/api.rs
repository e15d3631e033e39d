//! The HTTP API under `/api/v1`: router, credentials, handlers and the cross-cutting layers
//! (request ids, tracing, body limits, timeouts, JSON errors).
//!
//! Handlers check credentials first (before any body is read), then input, then call
//! [`Storage`]. Logs carry the request id, route, device id or username and outcome counts,
//! never documents, names or free text: the trace span records the path only, not the
//! query string, because the review filter's `q` may hold a patient's name.

use crate::model::Revision;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Extension, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use chrono::Utc;
use serde::Deserialize;
use tower_http::request_id::PropagateRequestIdLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use uuid::Uuid;

use super::ServerConfig;
use super::admin::normalise_enrolment_code;
use super::error::{ApiError, ApiJson, ApiPath, ApiQuery, json_rejection};
use super::ingest::{PushKeys, Rejection, check_item, recheck_stored};
use super::limits::{ClientAddr, Limits, client_address};
use super::log_key::LogSigner;
use super::storage::{
    Actor, AuditAction, AuditEvent, DecideOutcome, DeviceIdentity, EnrolOutcome,
    LAST_USED_RESOLUTION_SECS, LockoutPolicy, LogHead, LoginReservation, NewDecision, NewDevice,
    ReviewFilter, Role, SessionIdentity, SessionScope, SignerKey, Storage, StorageError,
    StoreOutcome,
};
use crate::crypto::{new_token, token_hash_hex, verify_password};
use crate::protocol::{
    API_PREFIX, CheckpointResponse, ConsistencyResponse, Decision, DecisionRequest, DeviceReport,
    DeviceReportResponse, EnrollRequest, EnrollResponse, FeedbackResponse, Health,
    InclusionRequest, InclusionResponse, KeyRotationsResponse, LeavesResponse, LogState,
    LoginRequest, LoginResponse, MAX_APP_VERSION_CHARS, MAX_PUSH_BODY_BYTES, MAX_PUSH_ITEMS,
    PushItemResult, PushOutcome, PushRequest, PushResponse, RejectReason, ReviewDetail, ReviewList,
    ReviewProof, ReviewQuery, ReviewVersion, TabletsResponse, VersionProof,
};
use crate::transparency::{self, Checkpoint};

/// Most feedback items in one answer; the device pages with the cursor.
pub const MAX_FEEDBACK_ITEMS: u32 = 500;

/// Default and largest review page sizes.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 200;

/// Longest decision comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 4000;

/// Shared by every request: storage and configuration.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<StateInner>,
}

struct StateInner {
    storage: Arc<dyn Storage>,
    config: ServerConfig,
    /// Signs checkpoints (from the configuration, or made for this process).
    log: Arc<LogSigner>,
    /// The size of the last checkpoint kept in the database, and when it was kept: at most
    /// one a second is written, so pushes and tablets' checks do not each cost a write.
    last_kept_checkpoint: std::sync::Mutex<(u64, Option<std::time::Instant>)>,
    /// Checked against when the username is unknown, so the answer takes as long as a real
    /// check and does not reveal which usernames exist.
    dummy_password_hash: String,
    limits: Limits,
    /// A server rebuilt from its tablets: the lost log, and the rebuilt log's first
    /// (`recovery`) leaf, whose hash returning tablets sign.
    recovered: Option<Recovered>,
}

/// What a rebuilt server keeps in memory for returning tablets.
struct Recovered {
    previous: super::recovery::PreviousLog,
    /// Leaf 0's text and hash.
    leaf: String,
    leaf_hash: transparency::LogHash,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("storage", &self.inner.storage.backend())
            .finish()
    }
}

impl AppState {
    /// Builds the state (hashing a throwaway password once for the unknown-user path).
    pub async fn new(storage: Arc<dyn Storage>, config: ServerConfig) -> Result<Self, ApiError> {
        let kdf = config.password_kdf;
        let dummy_password_hash = tokio::task::spawn_blocking(move || {
            let pw = new_token().unwrap_or_default();
            crate::crypto::hash_password(&pw, kdf)
        })
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
        let limits = Limits::new(
            config.auth_attempts_per_minute,
            config.auth_attempts_burst,
            config.max_concurrent_password_checks,
        );
        let log = match &config.log_signer {
            Some(signer) => Arc::clone(signer),
            None => {
                tracing::warn!(
                    "no log signing key given: checkpoints are signed with a key that lasts only as long as this process"
                );
                Arc::new(LogSigner::generate(None).map_err(|e| ApiError::Internal(e.to_string()))?)
            }
        };
        let recovered = match storage.recovery().await? {
            None => None,
            Some(record) => {
                let previous = super::recovery::PreviousLog::from_record(record)
                    .map_err(|e| ApiError::Internal(e.to_string()))?;
                let first = storage.log_leaves(0, 1).await?;
                let leaf = first.into_iter().next().ok_or_else(|| {
                    ApiError::Internal("a rebuilt log has no recovery leaf".into())
                })?;
                Some(Recovered {
                    previous,
                    leaf_hash: transparency::leaf_hash(leaf.data.as_bytes()),
                    leaf: leaf.data,
                })
            }
        };
        Ok(Self {
            inner: Arc::new(StateInner {
                storage,
                config,
                log,
                last_kept_checkpoint: std::sync::Mutex::new((0, None)),
                dummy_password_hash,
                limits,
                recovered,
            }),
        })
    }

    fn storage(&self) -> &dyn Storage {
        self.inner.storage.as_ref()
    }

    fn log(&self) -> &LogSigner {
        &self.inner.log
    }

    /// Signs the checkpoint for `head`, and keeps it when the log has grown and none was
    /// kept in the last second (so `verify` can compare the log with what was handed out).
    async fn signed_checkpoint(&self, head: &LogHead) -> Result<String, ApiError> {
        let note = self.log().sign(head);
        let keep = match self.inner.last_kept_checkpoint.lock() {
            Ok(mut last) => {
                let due = last
                    .1
                    .is_none_or(|at| at.elapsed() >= Duration::from_secs(1));
                if head.size > last.0 && due {
                    *last = (head.size, Some(std::time::Instant::now()));
                    true
                } else {
                    false
                }
            }
            Err(_) => true,
        };
        if keep {
            self.storage()
                .save_checkpoint(head.size, &note, Utc::now())
                .await?;
        }
        Ok(note)
    }

    fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    fn lockout_policy(&self) -> LockoutPolicy {
        let c = self.config();
        LockoutPolicy {
            failures_before_lockout: c.login_failures_before_lockout,
            base_secs: c.login_lockout_base_secs,
            max_secs: c.login_lockout_max_secs,
        }
    }

    /// Records a refused credential (bad token, failed login) in the server audit with the
    /// client address, unless that address is already over its limit: then the answer is a
    /// 429 and nothing is written, so a flood of bad tokens cannot fill the audit.
    async fn refused_credential(
        &self,
        client: &ClientAddr,
        action: AuditAction,
        detail: String,
        refusal: ApiError,
    ) -> ApiError {
        if let Err(limited) = self.limits().check_auth_rate(client) {
            return limited;
        }
        let event = AuditEvent::new(&Actor::Anonymous(client.text()), action, detail);
        match self.storage().append_audit(&[event], Utc::now()).await {
            Ok(()) => refusal,
            Err(e) => e.into(),
        }
    }
}

/// Every answer may carry patient data: no cache (browser, proxy) keeps it, and no client
/// guesses a content type other than the one sent. Over TLS, browsers are told to use
/// nothing else for a year (HSTS).
async fn never_cached(State(tls): State<bool>, mut response: Response) -> Response {
    let headers = response.headers_mut();
    if tls {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            header::HeaderValue::from_static("max-age=31536000"),
        );
    }
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    response
}

/// Every request gets an id of the server's own making (any id a client sent is replaced),
/// so log lines cannot be forged or confused by a client.
async fn fresh_request_id(mut req: Request) -> Request {
    if let Ok(id) = header::HeaderValue::from_str(&Uuid::new_v4().to_string()) {
        req.headers_mut().insert("x-request-id", id);
    }
    req
}

/// Builds the router with every route and layer; [`super::serve`] runs it.
pub fn router(state: AppState) -> Router {
    let timeout_secs = state.config().request_timeout_secs;
    let tls = state.config().tls.is_some();
    let behind_proxy = state.config().behind_tls_proxy;
    let x_request_id = HeaderName::from_static("x-request-id");
    let p = |path: &str| format!("{API_PREFIX}{path}");
    Router::new()
        .route(&p("/devices/enroll"), post(enroll))
        .route(&p("/devices/recover"), post(recover_device))
        .route(&p("/recovery"), get(recovery_info))
        .route(&p("/recovery/decisions"), post(restore_decisions))
        .route(
            &p("/sync/push"),
            post(push).layer(DefaultBodyLimit::max(MAX_PUSH_BODY_BYTES)),
        )
        .route(&p("/sync/feedback"), get(feedback))
        .route(&p("/sync/report"), post(device_report))
        .route(&p("/auth/login"), post(login))
        .route(&p("/auth/logout"), post(logout))
        .route(&p("/review/encounters"), get(review_list))
        .route(&p("/review/tablets"), get(review_tablets))
        .route(&p("/review/encounters/{id}"), get(review_detail))
        .route(&p("/review/encounters/{id}/decision"), post(decide))
        .route(&p("/review/encounters/{id}/fhir"), get(review_fhir))
        .route(&p("/log/checkpoint"), get(log_checkpoint))
        .route(&p("/log/consistency"), get(log_consistency))
        .route(&p("/log/inclusion"), post(log_inclusion))
        .route(&p("/log/leaves"), get(log_leaves))
        .route(&p("/log/key-rotations"), get(log_key_rotations))
        .route(&p("/reference"), get(reference))
        .route(&p("/health"), get(health))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(super::error::SMALL_BODY_LIMIT_BYTES))
        .layer(middleware::map_response_with_state(tls, never_cached))
        .layer(middleware::from_fn_with_state(behind_proxy, client_address))
        .layer(middleware::from_fn_with_state(
            timeout_secs,
            request_timeout,
        ))
        .layer(PropagateRequestIdLayer::new(x_request_id))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!(
                        "request",
                        request_id = %id,
                        method = %req.method(),
                        path = %req.uri().path(),
                    )
                })
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(middleware::map_request(fresh_request_id))
        .with_state(state)
}

/// Answers 408 (JSON) when a request, body included, takes longer than the limit: a client
/// that stalls mid-body cannot hold a connection and a handler forever.
async fn request_timeout(State(limit_secs): State<u64>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(Duration::from_secs(limit_secs), next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => {
            tracing::warn!(limit_secs, "request timed out");
            ApiError::timeout(limit_secs).into_response()
        }
    }
}

async fn not_found() -> ApiError {
    ApiError::client(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint (the API lives under /api/v1)",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::client(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not accept that HTTP method",
    )
}

fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError::unauthorized("an `Authorization: Bearer TOKEN` header is required")
    })?;
    let text = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("the Authorization header is not valid text"))?;
    let token = text
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 256)
        .ok_or_else(|| ApiError::unauthorized("the Authorization header must be `Bearer TOKEN`"))?;
    Ok(token)
}

fn client_of(parts: &Parts) -> ClientAddr {
    parts
        .extensions
        .get::<ClientAddr>()
        .copied()
        .unwrap_or(ClientAddr(None))
}

/// Whether a "last used" time is old enough to be written again.
fn stale_by_a_minute(last: Option<chrono::DateTime<Utc>>, now: chrono::DateTime<Utc>) -> bool {
    last.is_none_or(|t| (now - t).num_seconds() >= LAST_USED_RESOLUTION_SECS)
}

/// An enrolled, unrevoked device, from its bearer token.
#[derive(Debug, Clone)]
pub struct DeviceAuth(pub DeviceIdentity);

impl FromRequestParts<AppState> for DeviceAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let client = client_of(parts);
        let token = bearer_token(parts)?;
        let now = Utc::now();
        match state
            .storage()
            .device_by_token_hash(&token_hash_hex(token))
            .await?
        {
            None => Err(state
                .refused_credential(
                    &client,
                    AuditAction::TokenRefused,
                    "kind=device".to_owned(),
                    ApiError::unauthorized("the device token is not recognised"),
                )
                .await),
            Some(d) if d.revoked => Err(state
                .refused_credential(
                    &client,
                    AuditAction::TokenRefused,
                    format!("kind=device device={} revoked", d.device_id),
                    ApiError::client(
                        StatusCode::UNAUTHORIZED,
                        "device_revoked",
                        "this device has been revoked; ask your administrator to enrol it again",
                    ),
                )
                .await),
            Some(d) => {
                if stale_by_a_minute(d.last_seen_utc, now) {
                    state.storage().touch_device(d.device_id, now).await?;
                }
                Ok(DeviceAuth(d))
            }
        }
    }
}

/// A supervisor with a live session, from its bearer token (and the token's hash, for
/// logout).
#[derive(Debug, Clone)]
pub struct SupervisorAuth(pub SessionIdentity, pub String);

impl FromRequestParts<AppState> for SupervisorAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let client = client_of(parts);
        let token_hash = token_hash_hex(bearer_token(parts)?);
        let now = Utc::now();
        let idle_secs = i64::try_from(state.config().session_idle_secs).unwrap_or(i64::MAX);
        let session = state
            .storage()
            .session_by_token_hash(&token_hash, now)
            .await?
            .filter(|s| (now - s.last_used_at_utc).num_seconds() < idle_secs);
        match session {
            Some(s) if s.role == Some(Role::Supervisor) => {
                if stale_by_a_minute(Some(s.last_used_at_utc), now) {
                    state.storage().touch_session(&token_hash, now).await?;
                }
                Ok(SupervisorAuth(s, token_hash))
            }
            Some(_) => Err(ApiError::client(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this account may not review records",
            )),
            None => Err(state
                .refused_credential(
                    &client,
                    AuditAction::TokenRefused,
                    "kind=session".to_owned(),
                    ApiError::unauthorized(
                        "the session token is not recognised, has expired or was idle too long; log in again",
                    ),
                )
                .await),
        }
    }
}

async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

async fn enroll(
    State(state): State<AppState>,
    Extension(client): Extension<ClientAddr>,
    ApiJson(req): ApiJson<EnrollRequest>,
) -> Result<Json<EnrollResponse>, ApiError> {
    state.limits().check_auth_rate(&client)?;
    let public_key = req.public_key.trim();
    let key = base64::engine::general_purpose::STANDARD
        .decode(public_key)
        .ok()
        .filter(|k| k.len() == 32);
    let Some(key) = key else {
        return Err(ApiError::client(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_public_key",
            "public_key must be a base64 Ed25519 public key (32 bytes)",
        ));
    };
    let code = normalise_enrolment_code(&req.code);
    if code.is_empty() || code.len() > 64 {
        return Err(ApiError::client(
            StatusCode::FORBIDDEN,
            "enrolment_code_unknown",
            "the enrolment code is not recognised",
        ));
    }
    // Proof of possession: whoever enrols a key must hold its private half, so no one can
    // enrol (and later be credited with) a key that is not theirs.
    let proof = base64::engine::general_purpose::STANDARD
        .decode(req.proof.trim())
        .unwrap_or_default();
    let message = crate::protocol::enrolment_proof_message(&code, public_key);
    if ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &key)
        .verify(&message, &proof)
        .is_err()
    {
        return Err(ApiError::client(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_proof",
            "proof must be this device's signature over the enrolment code and its public key",
        ));
    }
    let token = new_token().map_err(|e| ApiError::Internal(e.to_string()))?;
    let device = NewDevice {
        code_hash: token_hash_hex(&code),
        device_id: Uuid::now_v7(),
        public_key_b64: public_key.to_owned(),
        token_hash: token_hash_hex(&token),
    };
    let outcome = state.storage().enroll_device(&device, Utc::now()).await?;
    let refuse = |code: &'static str, msg: &str| {
        tracing::info!(outcome = code, client = %client, "enrolment refused");
        Err(ApiError::client(StatusCode::FORBIDDEN, code, msg))
    };
    match outcome {
        EnrolOutcome::Enrolled { device_name } => {
            tracing::info!(device_id = %device.device_id, "device enrolled");
            Ok(Json(EnrollResponse {
                device_id: device.device_id,
                device_token: token,
                device_name,
                log_key: Some(state.log().public().to_vkey()),
            }))
        }
        EnrolOutcome::UnknownCode => refuse(
            "enrolment_code_unknown",
            "the enrolment code is not recognised",
        ),
        EnrolOutcome::CodeUsed => refuse(
            "enrolment_code_used",
            "the enrolment code has already been used; ask for a new one",
        ),
        EnrolOutcome::CodeExpired => refuse(
            "enrolment_code_expired",
            "the enrolment code has expired; ask for a new one",
        ),
        EnrolOutcome::KeyInUse => refuse(
            "key_already_enrolled",
            "this device's key is already enrolled as another device; ask your administrator to revoke that one first",
        ),
    }
}

/// The answer for a server that was not rebuilt from its tablets.
fn not_recovered() -> ApiError {
    ApiError::client(
        StatusCode::NOT_FOUND,
        "not_recovered",
        "this server was not rebuilt from its tablets",
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecoveryQuery {
    /// The size of the last checkpoint of the lost log the tablet verified.
    #[serde(default)]
    verified_size: u64,
}

/// What a tablet checks before it takes its place in a rebuilt log (no credentials: the
/// tablet's token died with the lost database, and nothing here is private).
async fn recovery_info(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<RecoveryQuery>,
) -> Result<Json<crate::protocol::RecoveryInfo>, ApiError> {
    let Some(Recovered { previous, leaf, .. }) = &state.inner.recovered else {
        return Err(not_recovered());
    };
    let head = state.storage().log_head().await?;
    let checkpoint = state.signed_checkpoint(&head).await?;
    let proof = state.storage().inclusion_proofs(head.size, &[0]).await?;
    let previous_consistency = previous
        .consistency_from(q.verified_size)
        .unwrap_or_default();
    Ok(Json(crate::protocol::RecoveryInfo {
        checkpoint,
        recovery_leaf: leaf.clone(),
        recovery_leaf_proof: proof
            .first()
            .map(|p| p.iter().map(transparency::hash_b64).collect())
            .unwrap_or_default(),
        previous_checkpoint: previous.checkpoint_note().to_owned(),
        previous_consistency: previous_consistency
            .iter()
            .map(transparency::hash_b64)
            .collect(),
    }))
}

/// Longest device name a returning tablet may give, in characters.
const MAX_DEVICE_NAME_CHARS: usize = 100;

/// A tablet enrolled in the lost log takes its place in the rebuilt one: it must hold the key
/// the lost log enrolled for its id, and not have been revoked there.
async fn recover_device(
    State(state): State<AppState>,
    Extension(client): Extension<ClientAddr>,
    ApiJson(req): ApiJson<crate::protocol::RecoverRequest>,
) -> Result<Json<EnrollResponse>, ApiError> {
    state.limits().check_auth_rate(&client)?;
    let Some(Recovered {
        previous,
        leaf_hash: recovery_leaf,
        ..
    }) = &state.inner.recovered
    else {
        return Err(not_recovered());
    };
    let refuse = |code: &'static str, msg: &str| {
        tracing::info!(outcome = code, client = %client, "recovery refused");
        ApiError::client(StatusCode::FORBIDDEN, code, msg)
    };
    let Some(known) = previous.device(req.device_id) else {
        return Err(refuse(
            "device_not_in_lost_log",
            "this tablet was not enrolled in the log this server was rebuilt from; enrol it with a new code",
        ));
    };
    if known.revoked {
        return Err(refuse(
            "device_revoked",
            "this tablet was revoked before the server was rebuilt; ask your administrator to enrol it again",
        ));
    }
    let public_key = req.public_key.trim();
    let key = base64::engine::general_purpose::STANDARD
        .decode(public_key)
        .unwrap_or_default();
    let signature = base64::engine::general_purpose::STANDARD
        .decode(req.signature.trim())
        .unwrap_or_default();
    let statement =
        transparency::recovery_statement(state.log().origin(), req.device_id, recovery_leaf);
    if public_key != known.public_key
        || ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &key)
            .verify(&statement, &signature)
            .is_err()
    {
        return Err(refuse(
            "invalid_proof",
            "the signature is not by the key this tablet was enrolled with",
        ));
    }
    let token = new_token().map_err(|e| ApiError::Internal(e.to_string()))?;
    let name = req
        .device_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty() && !n.chars().any(char::is_control))
        .map(|n| n.chars().take(MAX_DEVICE_NAME_CHARS).collect::<String>())
        .unwrap_or_else(|| "Tablet (restored)".to_owned());
    let device = super::storage::RestoredDevice {
        device_id: req.device_id,
        public_key_b64: known.public_key.clone(),
        enrolled_at_utc: known.enrolled_at_utc.clone(),
        token_hash: token_hash_hex(&token),
        name: name.clone(),
    };
    match state.storage().restore_device(&device, Utc::now()).await? {
        super::storage::RestoreOutcome::Restored => {
            tracing::info!(device_id = %req.device_id, "device restored");
            Ok(Json(EnrollResponse {
                device_id: req.device_id,
                device_token: token,
                device_name: name,
                log_key: Some(state.log().public().to_vkey()),
            }))
        }
        super::storage::RestoreOutcome::NotActive => Err(refuse(
            "device_revoked",
            "this tablet has been revoked; ask your administrator to enrol it again",
        )),
    }
}

/// A returning tablet sends back the supervisor decisions it received from the lost server.
/// Each is taken only if the lost log holds its leaf (so a tablet cannot make one up), and
/// only on a signed version of the tablet's own record that is back.
async fn restore_decisions(
    State(state): State<AppState>,
    DeviceAuth(device): DeviceAuth,
    ApiJson(req): ApiJson<crate::protocol::RestoreDecisionsRequest>,
) -> Result<Json<crate::protocol::RestoreDecisionsResponse>, ApiError> {
    use crate::protocol::DecisionRestore;
    let Some(Recovered { previous, .. }) = &state.inner.recovered else {
        return Err(not_recovered());
    };
    if req.decisions.len() > crate::protocol::MAX_RESTORED_DECISIONS {
        return Err(ApiError::client(
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_many_items",
            format!(
                "at most {} decisions per request",
                crate::protocol::MAX_RESTORED_DECISIONS
            ),
        ));
    }
    let mut results = vec![DecisionRestore::NotInLostLog; req.decisions.len()];
    let mut known = Vec::new();
    let mut known_at = Vec::new();
    for (i, d) in req.decisions.iter().enumerate() {
        let leaf = super::storage::decision_leaf_of(d);
        if previous.holds(&transparency::leaf_hash(&leaf.encode())) {
            known.push(d.clone());
            known_at.push(i);
        }
    }
    let outcomes = state
        .storage()
        .restore_decisions(device.device_id, &known, Utc::now())
        .await?;
    for (i, outcome) in known_at.into_iter().zip(outcomes) {
        if let Some(slot) = results.get_mut(i) {
            *slot = outcome;
        }
    }
    tracing::info!(
        device_id = %device.device_id,
        restored = results.iter().filter(|r| **r == DecisionRestore::Restored).count(),
        refused = results.iter().filter(|r| **r == DecisionRestore::NotInLostLog).count(),
        "decisions restored"
    );
    Ok(Json(crate::protocol::RestoreDecisionsResponse { results }))
}

async fn push(
    State(state): State<AppState>,
    DeviceAuth(device): DeviceAuth,
    body: Result<Json<PushRequest>, JsonRejection>,
) -> Result<Json<PushResponse>, ApiError> {
    let Json(req) = body.map_err(|rej| json_rejection(rej, MAX_PUSH_BODY_BYTES))?;
    if req.items.len() > MAX_PUSH_ITEMS {
        return Err(ApiError::client(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_items",
            format!("a push may carry at most {MAX_PUSH_ITEMS} items"),
        ));
    }
    // Registered keys are read only when something needs them: a push of device-signed
    // (format 1) versions alone costs no extra read.
    let signers = if req.signers.is_empty() && req.items.iter().all(|i| i.signer_user_id.is_none())
    {
        std::collections::HashMap::new()
    } else {
        register_signers(&state, &device, &req.signers).await?
    };
    let public_key = device.public_key_b64.clone();
    let items = req.items;
    let (items, checked) = tokio::task::spawn_blocking(move || {
        let keys = PushKeys {
            device_public_key_b64: &public_key,
            signers: &signers,
        };
        let checked: Vec<Result<_, Rejection>> =
            items.iter().map(|i| check_item(i, &keys)).collect();
        (items, checked)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;

    let mut valid = Vec::with_capacity(checked.len());
    let checked: Vec<Result<(), Rejection>> = checked
        .into_iter()
        .map(|c| c.map(|v| valid.push(v)))
        .collect();
    // A malformed audit head is not logged (and does not refuse the records with it).
    let audit_head = req.device_audit_head.as_ref().and_then(|h| {
        if h.is_well_formed() {
            u64::try_from(h.seq).ok().map(|seq| (seq, h.hash.clone()))
        } else {
            tracing::warn!(device_id = %device.device_id, "a malformed device audit head was not logged");
            None
        }
    });
    let pushed = state
        .storage()
        .push_versions(&device, &valid, audit_head, Utc::now())
        .await?;
    let checkpoint = state.signed_checkpoint(&pushed.log).await?;
    if let Some(seen) = &req.verified_checkpoint {
        witness_check(&state, &device, seen, &pushed.log).await?;
    }
    let mut stored = pushed.outcomes.into_iter().zip(pushed.leaf_indexes);

    let mut counts = [0usize; 4];
    let mut results = Vec::with_capacity(items.len());
    for (item, check) in items.iter().zip(checked) {
        let mut leaf_index = None;
        let (outcome, reason, message) = match check {
            Err(r) => (
                PushOutcome::Rejected,
                Some(r.reason),
                Some(r.message.to_owned()),
            ),
            Ok(_) => match stored.next().map(|(o, leaf)| {
                leaf_index = leaf;
                o
            }) {
                Some(StoreOutcome::Stored) => (PushOutcome::Stored, None, None),
                Some(StoreOutcome::Duplicate) => (PushOutcome::Duplicate, None, None),
                Some(StoreOutcome::Stale) => (
                    PushOutcome::Stale,
                    None,
                    Some("a later revision of this record is already held".to_owned()),
                ),
                Some(StoreOutcome::Conflict) => (
                    PushOutcome::Rejected,
                    Some(RejectReason::Conflict),
                    Some(
                        "this record id and revision are already held with different content"
                            .to_owned(),
                    ),
                ),
                Some(StoreOutcome::NotOwner) => (
                    PushOutcome::Rejected,
                    Some(RejectReason::NotOwner),
                    Some("this record belongs to another device".to_owned()),
                ),
                None => {
                    return Err(ApiError::Internal(
                        "storage returned fewer outcomes than items".into(),
                    ));
                }
            },
        };
        counts[match outcome {
            PushOutcome::Stored => 0,
            PushOutcome::Duplicate => 1,
            PushOutcome::Stale => 2,
            PushOutcome::Rejected => 3,
        }] += 1;
        results.push(PushItemResult {
            record_id: item.record_id,
            revision: item.revision,
            outcome,
            reject_reason: reason,
            message,
            leaf_index,
        });
    }
    tracing::info!(
        device_id = %device.device_id,
        items = results.len(),
        stored = counts[0],
        duplicate = counts[1],
        stale = counts[2],
        rejected = counts[3],
        "push"
    );
    Ok(Json(PushResponse {
        results,
        checkpoint: Some(checkpoint),
    }))
}

/// The longest user name a signing key registration may carry.
const MAX_SIGNER_NAME_CHARS: usize = 1_000;

/// Registers the users' signing keys a push carries (each proof checked first, then logged)
/// and returns every key registered through this device, by user id: what the push's
/// format-2 signatures are checked with.
async fn register_signers(
    state: &AppState,
    device: &DeviceIdentity,
    offered: &[crate::protocol::SignerRegistration],
) -> Result<std::collections::HashMap<Uuid, SignerKey>, ApiError> {
    if offered.len() > crate::protocol::MAX_PUSH_SIGNERS {
        return Err(ApiError::client(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_signers",
            format!(
                "a push may register at most {} signing keys",
                crate::protocol::MAX_PUSH_SIGNERS
            ),
        ));
    }
    let mut held: std::collections::HashMap<Uuid, SignerKey> = state
        .storage()
        .device_signers(device.device_id)
        .await?
        .into_iter()
        .map(|r| (r.identity.user_id, r.key()))
        .collect();
    let new: Vec<crate::protocol::SignerRegistration> = offered
        .iter()
        .filter(|s| {
            held.get(&s.user_id)
                .is_none_or(|k| k.public_key_b64 != s.public_key || k.tablet_id != s.tablet_id)
        })
        .cloned()
        .collect();
    if new.is_empty() {
        return Ok(held);
    }
    for s in &new {
        // The name is whatever the tablet's user was called (the tablet does not restrict
        // it, and the proof covers it as it is): only its size is bounded.
        let well_formed = s.user_name.chars().count() <= MAX_SIGNER_NAME_CHARS
            && base64::engine::general_purpose::STANDARD
                .decode(&s.public_key)
                .is_ok_and(|k| k.len() == 32);
        let identity = s.identity();
        if !well_formed
            || !identity.check_proof(&s.proof)
            || !identity.check_endorsement(
                device.device_id,
                &device.public_key_b64,
                &s.device_endorsement,
            )
        {
            return Err(ApiError::client(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_signer",
                "a signing key registration is malformed, or its proof or this device's endorsement does not verify",
            ));
        }
    }
    let rows = match state
        .storage()
        .register_signers(device, &new, Utc::now())
        .await
    {
        Err(StorageError::SignerConflict) => {
            return Err(ApiError::client(
                StatusCode::CONFLICT,
                "signer_conflict",
                "a user id in this push is already registered with a different key, or names another tablet than this device's users",
            ));
        }
        other => other?,
    };
    for row in rows {
        tracing::info!(device_id = %device.device_id, user_id = %row.identity.user_id, leaf = row.leaf_idx, "signing key registered");
        held.insert(row.identity.user_id, row.key());
    }
    Ok(held)
}

/// A device's report of the checkpoint it last verified, checked against this server's own
/// log: a tablet shown a different history (a split view) is named in the server's log at
/// ERROR. The device's own checks are what protect it; this tells ops.
async fn witness_check(
    state: &AppState,
    device: &DeviceIdentity,
    seen: &LogState,
    head: &LogHead,
) -> Result<(), ApiError> {
    let consistent = if seen.size == 0 {
        true
    } else if seen.size > head.size {
        false
    } else {
        let proof = state
            .storage()
            .consistency_proof(seen.size, head.size)
            .await?;
        let old = Checkpoint {
            origin: state.log().origin().to_owned(),
            size: seen.size,
            root: transparency::hash_from_b64(&seen.root).unwrap_or_default(),
        };
        let new = state.log().checkpoint(head);
        transparency::check_consistency(&proof, &old, &new).is_ok()
    };
    if !consistent {
        tracing::error!(
            device_id = %device.device_id,
            reported_size = seen.size,
            log_size = head.size,
            "a device reports a checkpoint this log does not extend: it was shown another history"
        );
    }
    Ok(())
}

/// Either credential may read the log: a device checking what it pushed, a supervisor (or
/// an auditor with a supervisor account) checking the whole.
#[derive(Debug, Clone)]
pub struct LogReader;

impl FromRequestParts<AppState> for LogReader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(parts)?;
        let hash = token_hash_hex(token);
        // A device token goes through the device check (so a revoked tablet hears that it is
        // revoked); anything else must be a supervisor session.
        if state.storage().device_by_token_hash(&hash).await?.is_some() {
            DeviceAuth::from_request_parts(parts, state).await?;
        } else {
            SupervisorAuth::from_request_parts(parts, state).await?;
        }
        Ok(LogReader)
    }
}

fn bad_log_query(message: impl Into<String>) -> ApiError {
    ApiError::client(StatusCode::BAD_REQUEST, "bad_log_query", message)
}

async fn log_checkpoint(
    State(state): State<AppState>,
    _reader: LogReader,
) -> Result<Json<CheckpointResponse>, ApiError> {
    let head = state.storage().log_head().await?;
    let checkpoint = state.signed_checkpoint(&head).await?;
    Ok(Json(CheckpointResponse {
        checkpoint,
        log_key: state.log().public().to_vkey(),
    }))
}

#[derive(Debug, Deserialize)]
struct ReferenceQuery {
    #[serde(default)]
    have: Option<u64>,
}

/// The trust's reference data for a tablet: the latest version when it is newer than the
/// one the tablet has.
async fn reference(
    State(state): State<AppState>,
    DeviceAuth(device): DeviceAuth,
    ApiQuery(q): ApiQuery<ReferenceQuery>,
) -> Result<Json<crate::protocol::ReferenceResponse>, ApiError> {
    let latest = super::reference::for_tablets(state.storage(), state.log()).await?;
    let version = latest.as_ref().map(|l| l.version);
    let set = latest
        .filter(|l| q.have.is_none_or(|have| l.version > have))
        .map(|l| crate::protocol::SignedReference {
            version: l.version,
            document: l.document,
            signed_note: l.signed_note,
        });
    tracing::info!(device_id = %device.device_id, sent = set.is_some(), "reference data");
    Ok(Json(crate::protocol::ReferenceResponse { version, set }))
}

#[derive(Debug, Deserialize)]
struct ConsistencyQuery {
    old_size: u64,
    size: u64,
}

async fn log_consistency(
    State(state): State<AppState>,
    _reader: LogReader,
    ApiQuery(q): ApiQuery<ConsistencyQuery>,
) -> Result<Json<ConsistencyResponse>, ApiError> {
    let log_size = state.storage().log_head().await?.size;
    if q.old_size == 0 || q.old_size > q.size || q.size > log_size {
        return Err(bad_log_query(format!(
            "need 1 <= old_size <= size <= {log_size} (the log's size)"
        )));
    }
    let proof = state
        .storage()
        .consistency_proof(q.old_size, q.size)
        .await?;
    Ok(Json(ConsistencyResponse {
        old_size: q.old_size,
        size: q.size,
        proof: proof.iter().map(transparency::hash_b64).collect(),
    }))
}

async fn log_inclusion(
    State(state): State<AppState>,
    _reader: LogReader,
    ApiJson(req): ApiJson<InclusionRequest>,
) -> Result<Json<InclusionResponse>, ApiError> {
    if req.indexes.len() as u64 > transparency::MAX_LEAVES_PER_ANSWER {
        return Err(bad_log_query(format!(
            "at most {} indexes per request",
            transparency::MAX_LEAVES_PER_ANSWER
        )));
    }
    let log_size = state.storage().log_head().await?.size;
    if req.size > log_size || req.indexes.iter().any(|&i| i >= req.size) {
        return Err(bad_log_query(format!(
            "need every index < size <= {log_size} (the log's size)"
        )));
    }
    let proofs = state
        .storage()
        .inclusion_proofs(req.size, &req.indexes)
        .await?;
    Ok(Json(InclusionResponse {
        size: req.size,
        proofs: proofs
            .iter()
            .map(|p| p.iter().map(transparency::hash_b64).collect())
            .collect(),
    }))
}

async fn log_key_rotations(
    State(state): State<AppState>,
    _reader: LogReader,
) -> Result<Json<KeyRotationsResponse>, ApiError> {
    Ok(Json(KeyRotationsResponse {
        rotations: state.storage().key_rotations().await?,
    }))
}

#[derive(Debug, Deserialize)]
struct LeavesQuery {
    start: u64,
    end: u64,
}

async fn log_leaves(
    State(state): State<AppState>,
    _reader: LogReader,
    ApiQuery(q): ApiQuery<LeavesQuery>,
) -> Result<Json<LeavesResponse>, ApiError> {
    if q.end < q.start || q.end - q.start > transparency::MAX_LEAVES_PER_ANSWER {
        return Err(bad_log_query(format!(
            "need start <= end and at most {} leaves",
            transparency::MAX_LEAVES_PER_ANSWER
        )));
    }
    let leaves = state.storage().log_leaves(q.start, q.end).await?;
    Ok(Json(LeavesResponse {
        start: q.start,
        leaves: leaves.into_iter().map(|l| l.data).collect(),
    }))
}

#[derive(Debug, Deserialize)]
struct FeedbackQuery {
    #[serde(default)]
    since: Option<i64>,
}

async fn feedback(
    State(state): State<AppState>,
    DeviceAuth(device): DeviceAuth,
    ApiQuery(q): ApiQuery<FeedbackQuery>,
) -> Result<Json<FeedbackResponse>, ApiError> {
    let since = q.since.unwrap_or(0);
    if since < 0 {
        return Err(ApiError::client(
            StatusCode::BAD_REQUEST,
            "bad_query",
            "since must be zero or a cursor from an earlier answer",
        ));
    }
    let items = state
        .storage()
        .feedback_since(&device, since, MAX_FEEDBACK_ITEMS, Utc::now())
        .await?;
    let next_cursor = items.last().map_or(since, |i| i.cursor);
    tracing::info!(device_id = %device.device_id, items = items.len(), "feedback");
    Ok(Json(FeedbackResponse { items, next_cursor }))
}

/// A tablet reports what it still holds; the answer says whether it is retiring and the
/// trust's retention window.
async fn device_report(
    State(state): State<AppState>,
    DeviceAuth(device): DeviceAuth,
    ApiJson(report): ApiJson<DeviceReport>,
) -> Result<Json<DeviceReportResponse>, ApiError> {
    let now = Utc::now();
    let version_ok = !report.app_version.is_empty()
        && report.app_version.len() <= MAX_APP_VERSION_CHARS
        && report
            .app_version
            .bytes()
            .all(|b| b.is_ascii_graphic() || b == b' ');
    if !version_ok {
        return Err(ApiError::client(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_report",
            format!("app_version must be 1 to {MAX_APP_VERSION_CHARS} printable ASCII characters"),
        ));
    }
    let too_big = |n: u64| i64::try_from(n).is_err();
    if too_big(report.pending)
        || too_big(report.held_versions)
        || report.verified_tree_size.is_some_and(too_big)
    {
        return Err(ApiError::client(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_report",
            "a count in the report is out of range",
        ));
    }
    if report.pending == 0 && report.oldest_pending_utc.is_some() {
        return Err(ApiError::client(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_report",
            "oldest_pending_utc is given with nothing pending",
        ));
    }
    let state_now = state
        .storage()
        .device_report(device.device_id, &report, now)
        .await?;
    tracing::info!(
        device_id = %device.device_id,
        pending = report.pending,
        held_versions = report.held_versions,
        state = ?state_now,
        "device report"
    );
    Ok(Json(DeviceReportResponse {
        state: state_now,
        retention_days: state.config().device_retention_days,
    }))
}

fn invalid_credentials() -> ApiError {
    ApiError::client(
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
        "the username or password is wrong",
    )
}

/// Checks are ordered so that a flood costs as little as possible: the per-address limit
/// (memory only), then a password-check slot (memory only), then the account (a read), then
/// the atomic lockout reservation (a write, existing accounts only), then Argon2id.
async fn login(
    State(state): State<AppState>,
    Extension(client): Extension<ClientAddr>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    let password = zeroize::Zeroizing::new(req.password);
    state.limits().check_auth_rate(&client)?;
    let username = req.username.trim().to_owned();
    if username.is_empty() || username.len() > 64 || password.len() > 1024 {
        return Err(invalid_credentials());
    }
    let permit = state.limits().password_check_permit()?;
    let storage = state.storage();
    let now = Utc::now();
    let user = storage.user_by_name(&username).await?;
    if let Some(u) = &user
        && let LoginReservation::Locked { retry_after_secs } = storage
            .reserve_login_attempt(&u.username, &client.text(), state.lockout_policy(), now)
            .await?
    {
        tracing::warn!(client = %client, "login refused: too many failures from this address");
        return Err(ApiError::Client {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "too_many_attempts",
            message: format!(
                "too many failed logins for this account from this address; try again in {retry_after_secs} seconds"
            ),
            retry_after_secs: Some(retry_after_secs),
        });
    }
    let stored_hash = user.as_ref().map_or_else(
        || state.inner.dummy_password_hash.clone(),
        |u| u.password_hash.clone(),
    );
    let ok = tokio::task::spawn_blocking(move || {
        let _slot = permit;
        verify_password(&password, &stored_hash)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    let user = match user {
        Some(u) if ok && u.disabled => {
            let event = AuditEvent::new(
                &Actor::Anonymous(client.text()),
                AuditAction::LoginFailed,
                format!("user={} disabled", u.username),
            );
            storage.append_audit(&[event], Utc::now()).await?;
            tracing::info!(client = %client, "login refused: account disabled");
            return Err(ApiError::client(
                StatusCode::FORBIDDEN,
                "account_disabled",
                "this account is disabled; ask your administrator",
            ));
        }
        Some(u) if ok && u.role == Some(Role::Supervisor) => u,
        Some(u) => {
            let event = AuditEvent::new(
                &Actor::Anonymous(client.text()),
                AuditAction::LoginFailed,
                format!("user={}", u.username),
            );
            storage.append_audit(&[event], Utc::now()).await?;
            tracing::info!(client = %client, "login failed");
            return Err(invalid_credentials());
        }
        // No row and no audit entry for a name that is not an account: an anonymous flood
        // of made-up names writes nothing (the address limit above bounds it).
        None => {
            tracing::info!(client = %client, "login failed: unknown username");
            return Err(invalid_credentials());
        }
    };
    let token = new_token().map_err(|e| ApiError::Internal(e.to_string()))?;
    let expires_at = super::storage::to_micros(
        now + chrono::Duration::seconds(
            i64::try_from(state.config().session_ttl_secs).unwrap_or(12 * 3600),
        ),
    );
    storage
        .create_session(
            &token_hash_hex(&token),
            &user,
            &client.text(),
            now,
            expires_at,
        )
        .await?;
    tracing::info!(user = %user.username, client = %client, "logged in");
    Ok(Json(LoginResponse { token, expires_at }))
}

/// Ends the caller's session: the token is refused from now on.
async fn logout(
    State(state): State<AppState>,
    SupervisorAuth(session, token_hash): SupervisorAuth,
) -> Result<StatusCode, ApiError> {
    let actor = Actor::Supervisor(session.username.clone());
    state
        .storage()
        .end_sessions(&SessionScope::Token(token_hash), &actor, Utc::now())
        .await?;
    tracing::info!(user = %session.username, "logged out");
    Ok(StatusCode::NO_CONTENT)
}

fn bad_query(message: &str) -> ApiError {
    ApiError::client(StatusCode::BAD_REQUEST, "bad_query", message)
}

/// Every tablet with what it last reported holding, for the supervisors' Tablets view.
async fn review_tablets(
    State(state): State<AppState>,
    SupervisorAuth(session, _): SupervisorAuth,
) -> Result<Json<TabletsResponse>, ApiError> {
    let now = Utc::now();
    let tablets: Vec<_> = state
        .storage()
        .list_devices()
        .await?
        .iter()
        .map(|d| d.tablet_status(now))
        .collect();
    tracing::info!(user = %session.username, tablets = tablets.len(), "tablets read");
    Ok(Json(TabletsResponse {
        tablets,
        at_utc: now,
    }))
}

async fn review_list(
    State(state): State<AppState>,
    SupervisorAuth(session, _): SupervisorAuth,
    ApiQuery(q): ApiQuery<ReviewQuery>,
) -> Result<Json<ReviewList>, ApiError> {
    let page = q.page.unwrap_or(1);
    if page == 0 {
        return Err(bad_query("page counts from 1"));
    }
    let page_size = q.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
    if page_size == 0 || page_size > MAX_PAGE_SIZE {
        return Err(bad_query("page_size must be 1 to 200"));
    }
    if q.min_news2.is_some_and(|n| n > 20) {
        return Err(bad_query("min_news2 must be 0 to 20"));
    }
    let text =
        q.q.as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_lowercase);
    if text.as_ref().is_some_and(|t| t.chars().count() > 100) {
        return Err(bad_query("q must be at most 100 characters"));
    }
    let destination = q
        .destination
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_uppercase);
    if destination
        .as_ref()
        .is_some_and(|d| d.len() > 10 || !d.chars().all(|c| c.is_ascii_alphanumeric()))
    {
        return Err(bad_query(
            "destination must be an ODS code (letters and digits, up to 10)",
        ));
    }
    let filter = ReviewFilter {
        from_utc: q.from,
        to_utc: q.to,
        decision: q.decision,
        min_news2: q.min_news2,
        text,
        destination,
        limit: page_size,
        offset: u64::from(page - 1) * u64::from(page_size),
    };
    let actor = Actor::Supervisor(session.username.clone());
    let result = state
        .storage()
        .review_list(&filter, &actor, Utc::now())
        .await?;
    tracing::info!(user = %session.username, items = result.items.len(), total = result.total, "review list");
    Ok(Json(ReviewList {
        items: result.items,
        total: result.total,
        page,
        page_size,
        counts: result.counts,
        destinations: result.destinations,
    }))
}

async fn review_detail(
    State(state): State<AppState>,
    SupervisorAuth(session, _): SupervisorAuth,
    ApiPath(record_id): ApiPath<Uuid>,
) -> Result<Json<ReviewDetail>, ApiError> {
    let actor = Actor::Supervisor(session.username.clone());
    let Some(detail) = state
        .storage()
        .review_detail(record_id, &actor, Utc::now())
        .await?
    else {
        return Err(ApiError::client(
            StatusCode::NOT_FOUND,
            "not_found",
            "no completed record with that id",
        ));
    };
    let versions = detail
        .versions
        .iter()
        .map(|v| ReviewVersion {
            revision: v.revision,
            status: v.status.unwrap_or(crate::model::RecordStatus::Completed),
            document: serde_json::from_str(&v.document).unwrap_or(serde_json::Value::Null),
            content_sha256: v.content_sha256.clone(),
            signature: v.signature.clone(),
            signature_valid: recheck_stored(v).is_ok(),
            saved_at_utc: v.saved_at_utc,
            received_at_utc: v.received_at_utc,
            signer_user_id: v.signer_user_id,
        })
        .collect();
    let keys: Vec<(Uuid, Revision)> = detail
        .versions
        .iter()
        .map(|v| (detail.record_id, v.revision))
        .collect();
    let mut signer_ids: Vec<Uuid> = detail
        .versions
        .iter()
        .filter_map(|v| v.signer_user_id)
        .collect();
    signer_ids.sort_unstable();
    signer_ids.dedup();
    let proof = match state
        .storage()
        .review_proof(detail.device_id, &keys, &signer_ids)
        .await?
    {
        Some(parts) => Some(ReviewProof {
            checkpoint: state.signed_checkpoint(&parts.head).await?,
            log_key: state.log().public().to_vkey(),
            enrolment_leaf: parts.enrolment.data,
            enrolment_index: parts.enrolment.idx,
            enrolment_proof: parts
                .enrolment_proof
                .iter()
                .map(transparency::hash_b64)
                .collect(),
            versions: parts
                .versions
                .into_iter()
                .map(|(revision, leaf_index, proof)| VersionProof {
                    revision,
                    leaf_index,
                    proof: proof.iter().map(transparency::hash_b64).collect(),
                })
                .collect(),
            signers: parts
                .signers
                .into_iter()
                .map(|(leaf, proof)| crate::protocol::LeafProof {
                    leaf: leaf.data,
                    leaf_index: leaf.idx,
                    proof: proof.iter().map(transparency::hash_b64).collect(),
                })
                .collect(),
        }),
        None => {
            tracing::warn!(%record_id, "a record's versions or its device's enrolment are not in the log");
            None
        }
    };
    tracing::info!(user = %session.username, %record_id, "review detail");
    Ok(Json(ReviewDetail {
        record_id: detail.record_id,
        device_id: detail.device_id,
        device_name: detail.device_name,
        versions,
        decisions: detail.decisions,
        proof,
    }))
}

/// `?revision=N` of the FHIR export (default: the latest signed version).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FhirQuery {
    revision: Option<Revision>,
}

/// The FHIR R4 document bundle of a signed version: the same bundle the device builds for
/// hospital handover (`crate::export::fhir`), apart from its generation time.
async fn review_fhir(
    State(state): State<AppState>,
    SupervisorAuth(session, _): SupervisorAuth,
    ApiPath(record_id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<FhirQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let actor = Actor::Supervisor(session.username.clone());
    let not_found = || {
        ApiError::client(
            StatusCode::NOT_FOUND,
            "not_found",
            "no completed record with that id (or that revision)",
        )
    };
    let detail = state
        .storage()
        .review_detail(record_id, &actor, Utc::now())
        .await?
        .ok_or_else(not_found)?;
    let version = match query.revision {
        Some(r) => detail.versions.iter().find(|v| v.revision == r),
        None => detail.versions.iter().max_by_key(|v| v.revision),
    }
    .ok_or_else(not_found)?;
    let encounter: crate::model::Encounter = serde_json::from_str(&version.document)
        .map_err(|_| ApiError::Internal("a stored record could not be read".to_owned()))?;
    let meta = version.version_meta();
    tracing::info!(user = %session.username, %record_id, revision = %version.revision, "fhir export");
    Ok(Json(crate::export::fhir::bundle(
        &encounter,
        &meta,
        Utc::now(),
    )))
}

async fn decide(
    State(state): State<AppState>,
    SupervisorAuth(session, _): SupervisorAuth,
    ApiPath(record_id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<DecisionRequest>,
) -> Result<(StatusCode, Json<crate::protocol::DecisionRecord>), ApiError> {
    let comment = req.comment.trim().to_owned();
    if matches!(req.decision, Decision::Returned | Decision::Flagged) && comment.is_empty() {
        return Err(ApiError::client(
            StatusCode::UNPROCESSABLE_ENTITY,
            "comment_required",
            "a returned or flagged decision needs a comment saying why",
        ));
    }
    if comment.chars().count() > MAX_COMMENT_CHARS {
        return Err(ApiError::client(
            StatusCode::UNPROCESSABLE_ENTITY,
            "comment_too_long",
            format!("the comment must be at most {MAX_COMMENT_CHARS} characters"),
        ));
    }
    let decision = NewDecision {
        record_id,
        revision: req.revision,
        decision: req.decision,
        comment,
        decided_by: session.username.clone(),
    };
    match state.storage().decide(&decision, Utc::now()).await? {
        DecideOutcome::Recorded(d) => {
            tracing::info!(user = %session.username, %record_id, revision = %d.revision, decision = d.decision.as_str(), "decision");
            Ok((StatusCode::CREATED, Json(d)))
        }
        DecideOutcome::RecordNotFound => Err(ApiError::client(
            StatusCode::NOT_FOUND,
            "not_found",
            "no completed record with that id",
        )),
        DecideOutcome::UnknownRevision => Err(ApiError::client(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_revision",
            "that revision is not a signed version of this record",
        )),
        DecideOutcome::Superseded { latest_revision } => Err(ApiError::client(
            StatusCode::CONFLICT,
            "superseded",
            format!(
                "revision {} has since been amended; the latest signed revision is {latest_revision}: review it and decide again",
                req.revision
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockout_grows_and_is_capped() {
        let state_config = ServerConfig::default();
        let c = LockoutPolicy {
            failures_before_lockout: state_config.login_failures_before_lockout,
            base_secs: state_config.login_lockout_base_secs,
            max_secs: state_config.login_lockout_max_secs,
        };
        assert_eq!(c.lockout_secs(c.failures_before_lockout - 1), None);
        let first = c.lockout_secs(c.failures_before_lockout);
        let second = c.lockout_secs(c.failures_before_lockout + 1);
        assert!(first.is_some() && second > first);
        assert_eq!(c.lockout_secs(1000), Some(c.max_secs));
    }
}
