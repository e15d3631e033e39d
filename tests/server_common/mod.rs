//! Shared helpers for the server tests: a real server on 127.0.0.1:0 over a fresh database of
//! either backend ([`Backend`], [`TestDb`]), `both_backends!` to run one test body on SQLite
//! and PostgreSQL, enrolled devices that sign like tablets do, and supervisors.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use ambulance_epr::crypto::{DeviceSigningKey, KdfParams, content_sha256_hex, signing_payload};
use ambulance_epr::demo::complete_encounter;
use ambulance_epr::model::{Encounter, RecordStatus};
use ambulance_epr::protocol::*;
use ambulance_epr::server::{self, ServerConfig, Storage, admin};
use chrono::Utc;
use serde_json::Value;
use uuid::Uuid;

/// Cheap password hashing and a short request timeout: tests only. The per-address and
/// password-check limits are lifted (every test client is 127.0.0.1); the tests of those
/// limits set their own.
pub fn test_config() -> ServerConfig {
    ServerConfig {
        log_signer: Some(test_log_signer()),
        password_kdf: KdfParams::FAST_FOR_TESTS,
        request_timeout_secs: 2,
        auth_attempts_per_minute: 100_000,
        auth_attempts_burst: 10_000,
        max_concurrent_password_checks: 64,
        ..ServerConfig::default()
    }
}

/// One log signing key for every in-process test server of this test binary, so a server
/// restarted on the same database signs with the key its devices pinned.
pub fn test_log_signer() -> std::sync::Arc<ambulance_epr::server::log_key::LogSigner> {
    static SIGNER: std::sync::OnceLock<std::sync::Arc<ambulance_epr::server::log_key::LogSigner>> =
        std::sync::OnceLock::new();
    SIGNER
        .get_or_init(|| {
            std::sync::Arc::new(
                ambulance_epr::server::log_key::LogSigner::generate(Some("test/log")).unwrap(),
            )
        })
        .clone()
}

/// Where an `epr-server` process for `db` keeps its log key in tests: beside a SQLite file,
/// and for PostgreSQL a file in the temporary directory named by the URL (never the
/// working directory, which is the repository).
pub fn test_key_path(db: &str) -> std::path::PathBuf {
    if db.starts_with("sqlite://") {
        ambulance_epr::server::log_key::default_key_path(db)
    } else {
        std::env::temp_dir().join(format!(
            "epr-test-signing-key-{}.json",
            &ambulance_epr::crypto::sha256_hex(db.as_bytes())[..16]
        ))
    }
}

pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// The storage backends every server test runs against. SQLite always runs; PostgreSQL needs
/// `EPR_TEST_POSTGRES_URL` (see [`postgres_variant_runs`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// What [`Storage::backend`] answers for this backend, so a test can prove which
    /// database it really ran on.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// The variable naming the test PostgreSQL (a database the tests may create schemas in).
pub const POSTGRES_URL_VAR: &str = "EPR_TEST_POSTGRES_URL";

/// True under CI (`CI` set to anything but empty, `0` or `false`), where every PostgreSQL
/// variant must run for real.
pub fn under_ci() -> bool {
    std::env::var("CI")
        .map(|v| !matches!(v.trim().to_ascii_lowercase().as_str(), "" | "0" | "false"))
        .unwrap_or(false)
}

/// `EPR_TEST_POSTGRES_URL`, when set.
pub fn postgres_base_url() -> Option<String> {
    std::env::var(POSTGRES_URL_VAR)
        .ok()
        .filter(|v| !v.trim().is_empty())
}

/// Whether the PostgreSQL variant of `test` runs. With `EPR_TEST_POSTGRES_URL` set it does
/// (and an unreachable server fails the test). Without it, under CI this panics: a PostgreSQL
/// test that did nothing must never count as a pass there. Outside CI it prints a loud
/// SKIPPED line (straight to stderr, past the test harness's capture) and returns false.
pub fn postgres_variant_runs(test: &str) -> bool {
    if postgres_base_url().is_some() {
        return true;
    }
    assert!(
        !under_ci(),
        "{POSTGRES_URL_VAR} is not set, but under CI every PostgreSQL test must run: {test} \
         (point it at a PostgreSQL database, e.g. postgres://postgres@127.0.0.1:5432/test)"
    );
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: {POSTGRES_URL_VAR} is not set, so this PostgreSQL test did not run"
    );
    false
}

/// Generates, for each `async fn name(backend: Backend)`, a module `name` with the tests
/// `name::sqlite` and `name::postgres`; `blocking:` does the same for plain `fn`s that build
/// their own runtime. The PostgreSQL test follows [`postgres_variant_runs`]. Filter with
/// `cargo test postgres` or `cargo test sqlite`.
#[macro_export]
macro_rules! both_backends {
    (async: $($name:ident),+ $(,)?) => {$(
        mod $name {
            use $crate::server_common::{Backend, postgres_variant_runs};

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if postgres_variant_runs(module_path!()) {
                    super::$name(Backend::Postgres).await;
                }
            }
        }
    )+};
    (blocking: $($name:ident),+ $(,)?) => {$(
        mod $name {
            use $crate::server_common::{Backend, postgres_variant_runs};

            #[test]
            fn sqlite() {
                super::$name(Backend::Sqlite);
            }

            #[test]
            fn postgres() {
                if postgres_variant_runs(module_path!()) {
                    super::$name(Backend::Postgres);
                }
            }
        }
    )+};
}

/// A brand-new, empty database for one test: a SQLite file in a temporary directory, or a
/// fresh schema in the test PostgreSQL. Keep it alive as long as anything uses `url`. When
/// dropped, the PostgreSQL schema goes too, unless the test failed (then it stays, to look at).
pub struct TestDb {
    pub backend: Backend,
    /// What `--database` and [`server::open_storage`] take.
    pub url: String,
    /// The SQLite file's directory (and a place for logs); also made for PostgreSQL.
    pub dir: tempfile::TempDir,
    postgres_schema: Option<String>,
}

impl TestDb {
    pub async fn fresh(backend: Backend) -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let (url, postgres_schema) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}", dir.path().join("server.db").display()),
                None,
            ),
            Backend::Postgres => {
                let (url, schema) = fresh_postgres_schema().await;
                (url, Some(schema))
            }
        };
        TestDb {
            backend,
            url,
            dir,
            postgres_schema,
        }
    }

    /// The PostgreSQL schema this database is, for the PostgreSQL backend.
    pub fn postgres_schema(&self) -> Option<&str> {
        self.postgres_schema.as_deref()
    }

    /// Opens the server storage (migrations applied) and checks it is the backend asked for.
    pub async fn open(&self) -> Arc<dyn Storage> {
        let storage = server::open_storage(&self.url)
            .await
            .unwrap_or_else(|e| panic!("opening {} storage: {e}", self.backend.name()));
        assert_eq!(storage.backend(), self.backend.name());
        storage
    }

    /// Runs one SQL statement straight on the database, behind the server's back (to play
    /// someone editing it); returns the rows changed. Keep `sql` valid in both dialects.
    pub async fn execute_behind_the_servers_back(&self, sql: &str) -> u64 {
        match self.backend {
            Backend::Sqlite => {
                let path = self.url.strip_prefix("sqlite://").unwrap().to_owned();
                let sql = sql.to_owned();
                tokio::task::spawn_blocking(move || {
                    let conn = rusqlite::Connection::open(path).unwrap();
                    conn.execute(&sql, []).unwrap() as u64
                })
                .await
                .unwrap()
            }
            Backend::Postgres => {
                let (client, conn) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                let task = tokio::spawn(conn);
                let n = client.execute(sql, &[]).await.unwrap();
                drop(client);
                let _ = task.await;
                n
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(schema) = self.postgres_schema.take() else {
            return;
        };
        if std::thread::panicking() {
            eprintln!("PostgreSQL schema {schema} kept for inspection");
            return;
        }
        let Some(base) = postgres_base_url() else {
            return;
        };
        // Its own thread and runtime: Drop cannot await, and may run inside a test's runtime.
        // Best effort and bounded: a leftover schema is litter, not a failure.
        let dropper = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
                    .await
                    .ok()?;
                tokio::spawn(conn);
                client
                    .batch_execute(&format!(
                        "SET lock_timeout = '5s'; DROP SCHEMA IF EXISTS {schema} CASCADE"
                    ))
                    .await
                    .ok()
            })
        });
        let _ = dropper.join();
    }
}

/// A running server; stopped when dropped.
pub struct TestServer {
    pub base: String,
    pub addr: std::net::SocketAddr,
    pub storage: Arc<dyn Storage>,
    pub http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _db: Option<TestDb>,
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

/// Serves `storage` on 127.0.0.1:0; `db` (if any) is kept alive with the server.
pub async fn start(storage: Arc<dyn Storage>, db: Option<TestDb>) -> TestServer {
    start_with(storage, db, test_config()).await
}

/// A server on a fresh database of `backend` with `config`.
pub async fn start_on_with(backend: Backend, config: ServerConfig) -> TestServer {
    let db = TestDb::fresh(backend).await;
    let storage = db.open().await;
    start_with(storage, Some(db), config).await
}

/// [`start`] with a particular configuration.
pub async fn start_with(
    storage: Arc<dyn Storage>,
    db: Option<TestDb>,
    config: ServerConfig,
) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let s = Arc::clone(&storage);
    tokio::spawn(async move {
        server::serve(s, config, listener, async {
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
        _db: db,
    }
}

/// A server on a fresh database of `backend`.
pub async fn start_on(backend: Backend) -> TestServer {
    let db = TestDb::fresh(backend).await;
    let storage = db.open().await;
    start(storage, Some(db)).await
}

/// A URL for a brand-new schema in the test PostgreSQL (`EPR_TEST_POSTGRES_URL`). Panics when
/// the variable is unset or PostgreSQL is unreachable: call it only from a test that
/// [`postgres_variant_runs`] said should run.
pub async fn fresh_postgres_url() -> String {
    fresh_postgres_schema().await.0
}

/// [`fresh_postgres_url`] and the schema's name.
async fn fresh_postgres_schema() -> (String, String) {
    let base = postgres_base_url().unwrap_or_else(|| {
        panic!("{POSTGRES_URL_VAR} is not set; this PostgreSQL test cannot run")
    });
    let schema = format!("t_{}", Uuid::new_v4().simple());
    let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!("{POSTGRES_URL_VAR} is set but PostgreSQL is not reachable there: {e:?}")
        });
    tokio::spawn(conn);
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-csearch_path%3D{schema}");
    (url, schema)
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
        .json(&EnrollRequest::signed(code, &key))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let r: EnrollResponse = resp.json().await.unwrap();
    // The device is known by the name given to its code, never one it chose.
    assert_eq!(r.device_name, name);
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

/// A push item for `e` at `revision` (a literal in range), signed when `e` is signed.
pub fn item(key: &DeviceSigningKey, e: &Encounter, revision: u64) -> PushItem {
    let revision = ambulance_epr::model::Revision::new(revision).unwrap();
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
        signer_user_id: None,
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
            verified_checkpoint: None,
            device_audit_head: None,
            signers: Vec::new(),
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

pub const SUPERVISOR_PASSWORD: &str = "copper kettle marsh lantern";

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
