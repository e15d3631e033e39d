//! Shared helpers for the server tests: a real server on 127.0.0.1:0, enrolled devices that
//! sign like tablets do, supervisors, and a fresh PostgreSQL schema per test.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use ambulance_epr::crypto::{DeviceSigningKey, KdfParams, content_sha256_hex, signing_payload};
use ambulance_epr::model::testdata::complete_encounter;
use ambulance_epr::model::{Encounter, RecordStatus};
use ambulance_epr::protocol::*;
use ambulance_epr::server::{self, ServerConfig, Storage, admin};
use chrono::Utc;
use serde_json::Value;
use uuid::Uuid;

/// Cheap password hashing and a short request timeout: tests only.
pub fn test_config() -> ServerConfig {
    ServerConfig {
        password_kdf: KdfParams::FAST_FOR_TESTS,
        request_timeout_secs: 2,
        ..ServerConfig::default()
    }
}

pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A running server; stopped when dropped.
pub struct TestServer {
    pub base: String,
    pub addr: std::net::SocketAddr,
    pub storage: Arc<dyn Storage>,
    pub http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

pub async fn start(storage: Arc<dyn Storage>, dir: Option<tempfile::TempDir>) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let s = Arc::clone(&storage);
    tokio::spawn(async move {
        server::serve(s, test_config(), listener, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    TestServer {
        base: format!("http://{addr}/api/v1"),
        addr,
        storage,
        http: http(),
        stop: Some(tx),
        _dir: dir,
    }
}

pub async fn sqlite_storage() -> (Arc<dyn Storage>, tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("server.db").display());
    (server::open_storage(&url).await.unwrap(), dir, url)
}

pub async fn start_sqlite() -> TestServer {
    let (storage, dir, _) = sqlite_storage().await;
    start(storage, Some(dir)).await
}

/// A URL for a brand-new schema in the test PostgreSQL, or None when not configured.
pub async fn fresh_postgres_url() -> Option<String> {
    let base = std::env::var("EPR_TEST_POSTGRES_URL").ok()?;
    let schema = format!("t_{}", Uuid::new_v4().simple());
    let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
        .await
        .expect("EPR_TEST_POSTGRES_URL is set but PostgreSQL is not reachable");
    tokio::spawn(conn);
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    Some(format!("{base}{sep}options=-csearch_path%3D{schema}"))
}

pub async fn postgres_storage() -> Option<(Arc<dyn Storage>, String)> {
    let url = fresh_postgres_url().await?;
    Some((server::open_storage(&url).await.unwrap(), url))
}

/// An enrolled device that signs like a tablet.
pub struct Device {
    pub id: Uuid,
    pub token: String,
    pub key: DeviceSigningKey,
}

pub async fn enroll(srv: &TestServer, name: &str) -> Device {
    let code = admin::create_enrolment_code(srv.storage.as_ref(), name)
        .await
        .unwrap();
    enroll_with_code(&srv.http, &srv.base, &code.code, name).await
}

pub async fn enroll_with_code(
    http: &reqwest::Client,
    base: &str,
    code: &str,
    name: &str,
) -> Device {
    let key = DeviceSigningKey::generate().unwrap();
    let resp = http
        .post(format!("{base}/devices/enroll"))
        .json(&EnrollRequest {
            code: code.into(),
            device_name: name.into(),
            public_key: key.public_key_base64(),
        })
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let r: EnrollResponse = resp.json().await.unwrap();
    Device {
        id: r.device_id,
        token: r.device_token,
        key,
    }
}

/// A new encounter (fresh id) with the given status.
pub fn encounter(status: RecordStatus) -> Encounter {
    let mut e = complete_encounter();
    e.id = Uuid::now_v7();
    e.status = status;
    e
}

pub fn item(key: &DeviceSigningKey, e: &Encounter, revision: u64) -> PushItem {
    let document = serde_json::to_value(e).unwrap();
    let sha = content_sha256_hex(&document);
    let signature = e
        .status
        .is_signed()
        .then(|| key.sign_base64(&signing_payload(e.id, revision, e.status.as_str(), &sha)));
    PushItem {
        record_id: e.id,
        revision,
        status: e.status,
        document,
        content_sha256: sha,
        signature,
        saved_at_utc: Utc::now(),
    }
}

pub async fn push(srv: &TestServer, token: &str, items: &[PushItem]) -> PushResponse {
    let resp = srv
        .http
        .post(srv.url("/sync/push"))
        .bearer_auth(token)
        .json(&PushRequest {
            items: items.to_vec(),
        })
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

pub fn outcomes(r: &PushResponse) -> Vec<(PushOutcome, Option<RejectReason>)> {
    r.results
        .iter()
        .map(|x| (x.outcome, x.reject_reason))
        .collect()
}

pub const SUPERVISOR_PASSWORD: &str = "a long test password";

/// Adds a supervisor and logs in; returns the session token.
pub async fn supervisor(srv: &TestServer, username: &str) -> String {
    admin::add_user(
        srv.storage.as_ref(),
        username,
        admin::Role::Supervisor,
        SUPERVISOR_PASSWORD,
        KdfParams::FAST_FOR_TESTS,
    )
    .await
    .unwrap();
    login(srv, username, SUPERVISOR_PASSWORD).await
}

pub async fn login(srv: &TestServer, username: &str, password: &str) -> String {
    let resp = srv
        .http
        .post(srv.url("/auth/login"))
        .json(&LoginRequest {
            username: username.into(),
            password: password.into(),
        })
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let r: LoginResponse = resp.json().await.unwrap();
    assert!(r.expires_at > Utc::now());
    r.token
}

/// Asserts a 4xx/5xx JSON error body with this status and code.
pub async fn expect_error(resp: reqwest::Response, status: u16, code: &str) -> ErrorBody {
    let got = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    assert_eq!(got, status, "body: {text}");
    let body: ErrorBody =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not a JSON error body: {text}"));
    assert_eq!(body.error, code, "message: {}", body.message);
    assert!(!body.message.is_empty());
    body
}

pub async fn json(resp: reqwest::Response) -> Value {
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert!(status.is_success(), "{status}: {text}");
    serde_json::from_str(&text).unwrap()
}
