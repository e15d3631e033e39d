//! The hosted server: a replica of completed records for supervisors, audit and integration.
//!
//! Owns the HTTP API under `/api/v1` ([`api`]), credentials (device tokens, supervisor
//! sessions), the push checks ([`ingest`]), server storage behind the [`Storage`] trait with
//! SQLite and PostgreSQL implementations ([`storage`]), the hash-chained server audit, and the
//! administrative actions the `epr-server` binary wraps ([`admin`]).
//!
//! May use `model`, `protocol`, `crypto`, axum, tokio and the database clients. Must never use
//! `store` (the device store), `sync` or `ui`; must never log patient data (documents, names,
//! NHS numbers, free text) or answer 5xx to a client's mistake.
//!
//! # Running it from Rust
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use ambulance_epr::server::{self, ServerConfig, admin};
//! let storage = server::open_storage("sqlite:///tmp/epr-server.db").await?;
//! let code = admin::create_enrolment_code(storage.as_ref(), "Tablet 1").await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let task = tokio::spawn(server::serve(storage, ServerConfig::default(), listener, async {
//!     let _ = stopped.await;
//! }));
//! // ... enrol with `code.code` at http://{addr}/api/v1/devices/enroll, push, pull ...
//! let _ = stop.send(());
//! task.await??;
//! # Ok(()) }
//! ```

pub mod admin;
pub mod api;
pub mod error;
pub mod ingest;
pub mod storage;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use api::{AppState, router};
pub use error::ApiError;
pub use storage::{Storage, StorageError, open_storage};

use crate::crypto::KdfParams;

/// PEM files for TLS (rustls).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert_pem: PathBuf,
    pub key_pem: PathBuf,
}

/// Knobs of a running server. `Default` is what the binary uses.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Argon2id cost for password checks and the unknown-user decoy. Keep
    /// [`KdfParams::INTERACTIVE`] in production; tests may lower it.
    pub password_kdf: KdfParams,
    /// How long a supervisor session lasts.
    pub session_ttl_secs: u64,
    /// Longest a request (body included) may take before a 408.
    pub request_timeout_secs: u64,
    /// Failed logins allowed before the username is locked out.
    pub login_failures_before_lockout: u32,
    /// First lockout; doubles with each further failure.
    pub login_lockout_base_secs: u64,
    pub login_lockout_max_secs: u64,
    /// Serve HTTPS when set.
    pub tls: Option<TlsFiles>,
    /// How long graceful shutdown waits for in-flight requests (TLS path).
    pub shutdown_grace_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            password_kdf: KdfParams::INTERACTIVE,
            session_ttl_secs: 12 * 3600,
            request_timeout_secs: 30,
            login_failures_before_lockout: 5,
            login_lockout_base_secs: 30,
            login_lockout_max_secs: 15 * 60,
            tls: None,
            shutdown_grace_secs: 30,
        }
    }
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("could not set up the server: {0}")]
    Setup(#[from] ApiError),
    #[error("TLS: {0}")]
    Tls(std::io::Error),
    #[error("network: {0}")]
    Io(#[from] std::io::Error),
}

/// Runs the server on `listener` until `shutdown` completes, then stops accepting, lets
/// in-flight requests finish and returns. Every write is one transaction, so stopping never
/// leaves anything half-written.
pub async fn serve(
    storage: Arc<dyn Storage>,
    config: ServerConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let tls = config.tls.clone();
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    let backend = storage.backend();
    let state = AppState::new(storage, config).await?;
    let app = router(state);
    let addr = listener.local_addr()?;
    match tls {
        None => {
            tracing::info!(%addr, backend, tls = false, "serving");
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await?;
        }
        Some(files) => {
            let rustls = axum_server::tls_rustls::RustlsConfig::from_pem_file(
                &files.cert_pem,
                &files.key_pem,
            )
            .await
            .map_err(ServerError::Tls)?;
            let handle = axum_server::Handle::new();
            let stopper = handle.clone();
            tokio::spawn(async move {
                shutdown.await;
                stopper.graceful_shutdown(Some(grace));
            });
            tracing::info!(%addr, backend, tls = true, "serving");
            axum_server::from_tcp_rustls(listener.into_std()?, rustls)?
                .handle(handle)
                .serve(app.into_make_service())
                .await?;
        }
    }
    tracing::info!("stopped");
    Ok(())
}
