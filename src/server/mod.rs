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
pub mod limits;
pub mod log_key;
pub mod recovery;
pub mod reference;
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
    /// How long a supervisor session lasts at most.
    pub session_ttl_secs: u64,
    /// A session unused for this long is refused (sliding, within `session_ttl_secs`).
    pub session_idle_secs: u64,
    /// Longest a request (body included) may take before a 408.
    pub request_timeout_secs: u64,
    /// Failed logins allowed before the username is locked out.
    pub login_failures_before_lockout: u32,
    /// First lockout; doubles with each further failure.
    pub login_lockout_base_secs: u64,
    pub login_lockout_max_secs: u64,
    /// Unauthenticated attempts (logins, enrolments, refused tokens) allowed per client
    /// address per minute, and at most this many at once.
    pub auth_attempts_per_minute: u32,
    pub auth_attempts_burst: u32,
    /// Password checks (128 MiB of Argon2id each) running at once; more are answered 503.
    pub max_concurrent_password_checks: usize,
    /// Longest wait for a request's headers (and for the first request on a new connection),
    /// and for an idle keep-alive connection's next request.
    pub header_read_timeout_secs: u64,
    /// Open connections allowed at once; more are closed as they arrive.
    pub max_connections: usize,
    /// Serve HTTPS when set.
    pub tls: Option<TlsFiles>,
    /// Plain HTTP on a non-loopback address is allowed only behind a TLS-terminating proxy;
    /// the client address is then the last `X-Forwarded-For` entry.
    pub behind_tls_proxy: bool,
    /// How long graceful shutdown waits for in-flight requests (TLS path).
    pub shutdown_grace_secs: u64,
    /// Signs the log's checkpoints. `None`: a new random key for this process only (a
    /// warning is logged), which tablets that pinned an earlier key will refuse: the binary
    /// always gives one from its key file.
    pub log_signer: Option<Arc<log_key::LogSigner>>,
    /// The trust's retention window, sent to tablets with every report answer: days a record
    /// the server has acknowledged and proved stays on the tablet
    /// (`crate::store::retention::RETENTION_DAYS_RANGE`).
    pub device_retention_days: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            password_kdf: KdfParams::INTERACTIVE,
            session_ttl_secs: 12 * 3600,
            session_idle_secs: 30 * 60,
            request_timeout_secs: 30,
            login_failures_before_lockout: 5,
            login_lockout_base_secs: 30,
            login_lockout_max_secs: 15 * 60,
            auth_attempts_per_minute: 10,
            auth_attempts_burst: 10,
            max_concurrent_password_checks: 2,
            header_read_timeout_secs: 10,
            max_connections: 1024,
            tls: None,
            behind_tls_proxy: false,
            shutdown_grace_secs: 30,
            log_signer: None,
            device_retention_days: crate::store::DEFAULT_RETENTION_DAYS,
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
    #[error(
        "refusing to serve plain HTTP on {0}: patient records would cross the network unencrypted. \
         Give --tls-cert and --tls-key, listen on 127.0.0.1, or pass --behind-tls-proxy if a \
         TLS-terminating proxy on this host forwards to it"
    )]
    Plaintext(std::net::SocketAddr),
}

/// Refuses plain HTTP on a non-loopback address unless `behind_tls_proxy` is set (then says
/// so at WARN). Called by [`serve`]; the binary calls it before binding, too.
pub fn check_listen_address(
    addr: std::net::SocketAddr,
    config: &ServerConfig,
) -> Result<(), ServerError> {
    if config.tls.is_some() || addr.ip().is_loopback() {
        return Ok(());
    }
    if !config.behind_tls_proxy {
        return Err(ServerError::Plaintext(addr));
    }
    tracing::warn!(%addr, "serving plain HTTP: a TLS-terminating proxy must front this address");
    Ok(())
}

/// Runs the server on `listener` until `shutdown` completes, then stops accepting, lets
/// in-flight requests finish (up to the grace period) and returns. Every write is one
/// transaction, so stopping never leaves anything half-written.
///
/// Refuses plain HTTP on a non-loopback address unless `behind_tls_proxy` is set. Both the
/// plain and the TLS listener cap connections, close a connection whose first request (or
/// headers, or next keep-alive request) does not arrive within the header timeout, and bound
/// the TLS handshake the same way.
pub async fn serve(
    storage: Arc<dyn Storage>,
    config: ServerConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let addr = listener.local_addr()?;
    check_listen_address(addr, &config)?;
    let tls = config.tls.clone();
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    let header_timeout = Duration::from_secs(config.header_read_timeout_secs.max(1));
    let max_connections = config.max_connections;
    let backend = storage.backend();
    let state = AppState::new(storage, config).await?;
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();

    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(Some(grace));
    });
    let std_listener = listener.into_std()?;
    // One listener set-up for plain and TLS: only the acceptor differs (a macro because the
    // two acceptors are different types with long trait bounds).
    macro_rules! serve_with {
        ($acceptor:expr) => {{
            let mut server = axum_server::from_tcp(std_listener)?
                .acceptor($acceptor)
                .handle(handle)
                .first_request_timeout(header_timeout);
            let builder = server.http_builder();
            builder
                .http1()
                .header_read_timeout(header_timeout)
                .keep_alive(true);
            builder
                .http2()
                .keep_alive_interval(header_timeout)
                .keep_alive_timeout(header_timeout);
            server.serve(app).await?;
        }};
    }
    let capped =
        limits::CappedAcceptor::new(axum_server::accept::DefaultAcceptor::new(), max_connections);
    match tls {
        None => {
            tracing::info!(%addr, backend, tls = false, "serving");
            serve_with!(capped);
        }
        Some(files) => {
            let rustls = axum_server::tls_rustls::RustlsConfig::from_pem_file(
                &files.cert_pem,
                &files.key_pem,
            )
            .await
            .map_err(ServerError::Tls)?;
            let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(rustls)
                .handshake_timeout(header_timeout)
                .acceptor(capped);
            tracing::info!(%addr, backend, tls = true, "serving");
            serve_with!(acceptor);
        }
    }
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_off_loopback_needs_tls_or_a_declared_proxy() {
        let plain = ServerConfig::default();
        for ok in ["127.0.0.1:8080", "[::1]:8080", "127.0.0.9:80"] {
            assert!(
                check_listen_address(ok.parse().unwrap(), &plain).is_ok(),
                "{ok}"
            );
        }
        for refused in ["0.0.0.0:8080", "[::]:8080", "10.0.0.5:80"] {
            let err = check_listen_address(refused.parse().unwrap(), &plain).unwrap_err();
            assert!(err.to_string().contains("--tls-cert"), "{err}");
        }
        let proxied = ServerConfig {
            behind_tls_proxy: true,
            ..ServerConfig::default()
        };
        assert!(check_listen_address("0.0.0.0:8080".parse().unwrap(), &proxied).is_ok());
        let tls = ServerConfig {
            tls: Some(TlsFiles {
                cert_pem: "c.pem".into(),
                key_pem: "k.pem".into(),
            }),
            ..ServerConfig::default()
        };
        assert!(check_listen_address("0.0.0.0:8443".parse().unwrap(), &tls).is_ok());
    }
}
