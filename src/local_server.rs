//! The in-process server behind "Try it on this computer".
//!
//! Owns: running the real hosted server (the same `server` code, SQLite encrypted with
//! SQLCipher in the app's data directory, listening on 127.0.0.1 only) inside the crew app, stopping and restarting it on
//! the same port for "Simulate server outage", and the demo set-up (enrolment code, supervisor
//! account). It runs on the runtime it is given (the app's one runtime) and never makes one
//! of its own. It is wiring between the `server` and the app, like a binary: the `ui` and `sync`
//! rooms never import `server` themselves.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::crypto::{DatabaseKey, KdfParams};
use crate::server::{self, ServerConfig, Storage, admin};

/// File name of the demo server's database inside the app's data directory.
pub const DEMO_DB_FILE: &str = "demo-server.db";

/// The demo server's log signing key, beside its database (deleted with it).
pub fn demo_key_path(data_dir: &Path) -> std::path::PathBuf {
    server::log_key::key_path_beside(&data_dir.join(DEMO_DB_FILE))
}

/// Why the local server could not start or act.
#[derive(Debug, thiserror::Error)]
pub enum LocalServerError {
    #[error("the demo server could not listen on 127.0.0.1:{port}: {source}")]
    Listen { port: u16, source: std::io::Error },
    #[error("the demo server's database could not be opened: {0}")]
    Storage(String),
    #[error("demo set-up failed: {0}")]
    Admin(String),
}

/// A running (or paused) in-process server. Its listener is a task on the runtime it was
/// opened on (the app's one runtime); dropping the server aborts that task.
pub struct LocalServer {
    runtime: tokio::runtime::Handle,
    storage: Arc<dyn Storage>,
    /// Signs the demo log's checkpoints; its file sits beside the demo database, so the demo
    /// tablet's pinned key holds across restarts.
    log_signer: Arc<server::log_key::LogSigner>,
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for LocalServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalServer")
            .field("addr", &self.addr)
            .field("running", &self.is_running())
            .finish()
    }
}

impl LocalServer {
    /// Starts a server on 127.0.0.1:`port` (0 picks a free port below the kernel's ephemeral
    /// range, see [`pick_port`]) with its database in `data_dir`. The listener runs as a task
    /// on `runtime`; call this from a task on that runtime.
    ///
    /// The database is encrypted (SQLCipher) under `db_key`, which the caller keeps inside the
    /// tablet's encrypted store: whatever is typed while trying the app is as protected on
    /// disk as the store itself.
    pub async fn start_on(
        runtime: tokio::runtime::Handle,
        data_dir: &Path,
        port: u16,
        db_key: &DatabaseKey,
    ) -> Result<Self, LocalServerError> {
        let port = if port == 0 { pick_port() } else { port };
        let (signer, _) = server::log_key::LogSigner::load_or_create(
            &demo_key_path(data_dir),
            Some("ambulance-epr/demo-log"),
        )
        .map_err(|e| LocalServerError::Storage(e.to_string()))?;
        let storage: Arc<dyn Storage> = Arc::new(
            server::storage::sqlite::SqliteStorage::open_encrypted(
                &data_dir.join(DEMO_DB_FILE),
                db_key,
            )
            .await
            .map_err(|e| LocalServerError::Storage(e.to_string()))?,
        );
        let mut me = Self {
            runtime,
            storage,
            log_signer: Arc::new(signer),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            stop: None,
            task: None,
        };
        me.resume().await?;
        Ok(me)
    }

    /// The base URL devices use.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// True while it accepts requests.
    pub fn is_running(&self) -> bool {
        self.task.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stops accepting requests, letting in-flight ones finish (at most a few seconds).
    pub async fn pause(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }

    /// Listens again on the same address.
    pub async fn resume(&mut self) -> Result<(), LocalServerError> {
        if self.is_running() {
            return Ok(());
        }
        let addr = self.addr;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| LocalServerError::Listen {
                port: addr.port(),
                source,
            })?;
        self.addr = listener
            .local_addr()
            .map_err(|source| LocalServerError::Listen {
                port: addr.port(),
                source,
            })?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let storage = self.storage.clone();
        let config = ServerConfig {
            log_signer: Some(Arc::clone(&self.log_signer)),
            ..ServerConfig::default()
        };
        let task = self.runtime.spawn(async move {
            let result = server::serve(storage, config, listener, async {
                let _ = stopped.await;
            })
            .await;
            if let Err(e) = result {
                tracing::error!("demo server stopped: {e}");
            }
        });
        self.stop = Some(stop);
        self.task = Some(task);
        Ok(())
    }

    /// A one-time enrolment code for this computer's crew app.
    pub async fn enrolment_code(&self, device_name: &str) -> Result<String, LocalServerError> {
        admin::create_enrolment_code(self.storage.as_ref(), device_name)
            .await
            .map(|c| c.code)
            .map_err(|e| LocalServerError::Admin(e.to_string()))
    }

    /// Adds the demo supervisor account.
    pub async fn add_supervisor(
        &self,
        username: &str,
        password: &str,
    ) -> Result<(), LocalServerError> {
        admin::add_user(
            self.storage.as_ref(),
            username,
            admin::Role::Supervisor,
            password,
            KdfParams::INTERACTIVE,
        )
        .await
        .map_err(|e| LocalServerError::Admin(e.to_string()))
    }
}

/// A free port in 20000-31999. Below Linux's default ephemeral range (32768-60999) on purpose:
/// while "Simulate server outage" has the server paused, the sync engine keeps trying to
/// connect, and a connection to a free ephemeral-range port can be given that same port as
/// its own source (a TCP self-connect), which would then block the server's restart.
/// Falls back to 0 (any port) if none is free.
pub fn pick_port() -> u16 {
    use rand::Rng;
    let mut rng = rand::rng();
    for _ in 0..200 {
        let port = rng.random_range(20_000..32_000);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    0
}

impl Drop for LocalServer {
    /// The drop guard: the listener task ends with the server (in-flight requests are cut).
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
