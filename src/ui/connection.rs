//! Connecting the app to a server: enrolment with a trust's server, the in-process demo
//! server ("Try it on this computer"), starting the sync engine after unlock, and
//! "Simulate server outage".
//!
//! Everything here that touches the network or waits is a task on the app's one runtime (a
//! [`tokio::runtime::Handle`] passed in), held by a [`TaskGuard`] the app keeps, and reports
//! back as a [`ConnectEvent`] over a channel, then asks for a repaint: the window never waits.
//! The store is reached through a second connection opened on the store worker
//! (`Store::open_another`), so no key derivation happens again.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;

use tokio::runtime::Handle;

use super::tasks::TaskGuard;
use crate::store::Store;
use crate::sync::{SyncConfig, SyncError, SyncHandle};

#[cfg(feature = "server")]
use crate::local_server::LocalServer;

/// Setting key: the demo server's port, when this tablet uses "Try it on this computer".
pub use crate::sync::engine::DEMO_PORT;
/// Setting key: the demo server's database key, hex (inside the encrypted store).
pub const DEMO_SERVER_KEY: &str = "demo_server_key";

/// The demo server's database key, from the store.
#[cfg(feature = "server")]
fn demo_server_key(store: &Store) -> Option<crate::crypto::DatabaseKey> {
    let text = zeroize::Zeroizing::new(store.setting(DEMO_SERVER_KEY).ok().flatten()?);
    let bytes = zeroize::Zeroizing::new(hex::decode(text.as_str()).ok()?);
    let array: [u8; 32] = bytes.as_slice().try_into().ok()?;
    Some(crate::crypto::DatabaseKey::from_bytes(array))
}

/// Setting key: the demo supervisor's password (inside the encrypted store).
pub const DEMO_SUPERVISOR_PASSWORD: &str = "demo_supervisor_password";
/// The demo supervisor's user name.
pub const DEMO_SUPERVISOR: &str = "supervisor";

/// The demo server, shared between the UI (for the outage switch) and its tasks.
#[cfg(feature = "server")]
pub type SharedLocalServer = Arc<tokio::sync::Mutex<LocalServer>>;
/// Without the server feature there is no demo server.
#[cfg(not(feature = "server"))]
pub type SharedLocalServer = Arc<()>;

/// What the demo panel shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoInfo {
    pub server_url: String,
    pub supervisor_user: String,
    pub supervisor_password: String,
    /// False while "Simulate server outage" is on.
    pub server_running: bool,
}

/// What a second store connection is opened for (see
/// [`crate::ui::worker::StoreRequest::OpenSecondConnection`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionPurpose {
    /// The first-run choice: enrol with a server, or the demo server on this computer.
    Connect(crate::ui::ConnectRequest),
    /// Unlocked: start sync if this tablet is enrolled.
    ResumeSync,
}

/// Results of connection work, applied by the app in `logic`.
pub enum ConnectEvent {
    /// Sync is running (after enrolment, demo set-up, or unlock of an enrolled tablet).
    Ready {
        handle: SyncHandle,
        demo: Option<(SharedLocalServer, DemoInfo)>,
        notice: Option<String>,
    },
    /// Connecting failed; the message says why in plain words.
    Failed(String),
    /// A one-line message for the crew (an export saved or refused, ...).
    Notice(String),
    /// The outage switch took effect (`running` is the server's new state).
    DemoServer {
        running: bool,
        message: Option<String>,
    },
}

/// Sends events and wakes the window.
#[derive(Clone)]
pub struct Events {
    tx: mpsc::Sender<ConnectEvent>,
    notify: Arc<dyn Fn() + Send + Sync>,
}

impl Events {
    /// A sender that calls `notify` (the repaint request) after each event.
    pub fn new(tx: mpsc::Sender<ConnectEvent>, notify: Arc<dyn Fn() + Send + Sync>) -> Self {
        Self { tx, notify }
    }

    /// Delivers an event and asks for a repaint.
    pub fn send(&self, event: ConnectEvent) {
        let _ = self.tx.send(event);
        (self.notify)();
    }

    fn notify(&self) -> Arc<dyn Fn() + Send + Sync> {
        self.notify.clone()
    }
}

/// Enrols with a trust's server using a one-time code, then starts sync. Runs as a task on
/// `runtime`; the outcome arrives as a [`ConnectEvent`].
pub fn enrol(
    runtime: &Handle,
    store: Store,
    server_url: String,
    code: String,
    events: Events,
) -> TaskGuard {
    let rt = runtime.clone();
    TaskGuard::spawn(runtime, async move {
        let result = enrol_and_start(&rt, store, &server_url, &code, &events).await;
        events.send(match result {
            Ok(handle) => ConnectEvent::Ready {
                handle,
                demo: None,
                notice: Some(
                    "Enrolled. Records will sync whenever the server can be reached.".into(),
                ),
            },
            Err(message) => ConnectEvent::Failed(message),
        });
    })
}

async fn enrol_and_start(
    runtime: &Handle,
    store: Store,
    server_url: &str,
    code: &str,
    events: &Events,
) -> Result<SyncHandle, String> {
    let url = crate::sync::client::check_server_address(server_url)?;
    let failed = |e: SyncError| format!("enrolment failed: {e}");
    let request = crate::sync::engine::enrolment_request(&store, code).map_err(failed)?;
    let response = crate::sync::engine::request_enrolment(&url, &request)
        .await
        .map_err(failed)?;
    crate::sync::engine::remember_enrolment(&store, &url, &response).map_err(failed)?;
    crate::sync::start_on(runtime, &store, SyncConfig::default(), events.notify())
        .map_err(|e| format!("sync could not start: {e}"))
}

/// "Try it on this computer": starts the in-process server, enrols with it, creates a demo
/// supervisor, adds synthetic records and starts sync. Runs as a task on `runtime`.
#[cfg(feature = "server")]
pub fn try_on_this_computer(
    runtime: &Handle,
    store: Store,
    data_dir: PathBuf,
    events: Events,
) -> TaskGuard {
    let rt = runtime.clone();
    TaskGuard::spawn(runtime, async move {
        let result = set_up_demo(&rt, store, &data_dir, &events).await;
        events.send(match result {
            Ok((handle, server, info)) => ConnectEvent::Ready {
                handle,
                notice: Some(format!(
                    "Demo server running at {}. Supervisor sign-in: {} / {}",
                    info.server_url, info.supervisor_user, info.supervisor_password
                )),
                demo: Some((server, info)),
            },
            Err(message) => ConnectEvent::Failed(message),
        });
    })
}

#[cfg(feature = "server")]
async fn set_up_demo(
    runtime: &Handle,
    store: Store,
    data_dir: &std::path::Path,
    events: &Events,
) -> Result<(SyncHandle, SharedLocalServer, DemoInfo), String> {
    use super::problem::StoreProblem;
    // The demo server's database key lives only inside this (encrypted) store.
    let db_key = crate::crypto::DatabaseKey::generate().map_err(|e| e.to_string())?;
    store
        .set_setting(DEMO_SERVER_KEY, &hex::encode(db_key.as_bytes()))
        .map_err(|e| StoreProblem::report(e).to_string())?;
    let server = LocalServer::start_on(runtime.clone(), data_dir, 0, &db_key)
        .await
        .map_err(|e| e.to_string())?;
    let code = server
        .enrolment_code("This computer")
        .await
        .map_err(|e| e.to_string())?;
    let failed = |e: SyncError| format!("enrolment with the demo server failed: {e}");
    let request = crate::sync::engine::enrolment_request(&store, &code).map_err(failed)?;
    let response = crate::sync::engine::request_enrolment(&server.url(), &request)
        .await
        .map_err(failed)?;
    crate::sync::engine::remember_enrolment(&store, &server.url(), &response).map_err(failed)?;
    let token = crate::crypto::new_token().map_err(|e| e.to_string())?;
    let password: String = token
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(12)
        .collect();
    server
        .add_supervisor(DEMO_SUPERVISOR, &password)
        .await
        .map_err(|e| e.to_string())?;
    store
        .set_setting(DEMO_PORT, &server.port().to_string())
        .map_err(|e| StoreProblem::report(e).to_string())?;
    store
        .set_setting(DEMO_SUPERVISOR_PASSWORD, &password)
        .map_err(|e| StoreProblem::report(e).to_string())?;
    // Thirty signed records are a few hundred milliseconds of SQLCipher work: off the
    // runtime's worker threads.
    let seed: u64 = rand::random();
    let store = tokio::task::spawn_blocking(move || {
        let mut store = store;
        crate::demo::add_demo_data(&mut store, 30, seed).map(|_| store)
    })
    .await
    .map_err(|_| "demo records could not be added: the task stopped".to_owned())?
    .map_err(|e| {
        format!(
            "demo records could not be added: {}",
            StoreProblem::report(e)
        )
    })?;
    let handle = crate::sync::start_on(runtime, &store, SyncConfig::default(), events.notify())
        .map_err(|e| format!("sync could not start: {e}"))?;
    let info = DemoInfo {
        server_url: server.url(),
        supervisor_user: DEMO_SUPERVISOR.to_owned(),
        supervisor_password: password,
        server_running: true,
    };
    Ok((handle, Arc::new(tokio::sync::Mutex::new(server)), info))
}

/// After unlock: if this tablet is enrolled, start sync (and the demo server first, in demo
/// mode). Does nothing for a tablet that works offline. Runs as a task on `runtime`.
pub fn resume_after_unlock(
    runtime: &Handle,
    store: Store,
    data_dir: PathBuf,
    events: Events,
) -> TaskGuard {
    let rt = runtime.clone();
    TaskGuard::spawn(runtime, async move {
        let enrolled = store
            .setting(crate::sync::engine::SERVER_URL)
            .ok()
            .flatten()
            .is_some();
        if !enrolled {
            return;
        }
        // Only a build with the demo server can have one to restart.
        #[cfg_attr(not(feature = "server"), allow(unused_mut))]
        let mut demo = None;
        #[cfg_attr(not(feature = "server"), allow(unused_mut))]
        let mut notice = None;
        #[cfg(feature = "server")]
        if let Ok(Some(port)) = store.setting(DEMO_PORT) {
            let port: u16 = port.parse().unwrap_or(0);
            let password = store
                .setting(DEMO_SUPERVISOR_PASSWORD)
                .ok()
                .flatten()
                .unwrap_or_default();
            let started = match demo_server_key(&store) {
                Some(key) => LocalServer::start_on(rt.clone(), &data_dir, port, &key).await,
                None => Err(crate::local_server::LocalServerError::Storage(
                    "its key is missing from this store".to_owned(),
                )),
            };
            match started {
                Ok(server) => {
                    let info = DemoInfo {
                        server_url: server.url(),
                        supervisor_user: DEMO_SUPERVISOR.to_owned(),
                        supervisor_password: password,
                        server_running: true,
                    };
                    demo = Some((Arc::new(tokio::sync::Mutex::new(server)), info));
                }
                Err(e) => notice = Some(format!("{e}. Records stay queued on this tablet.")),
            }
        }
        #[cfg(not(feature = "server"))]
        let _ = &data_dir;
        match crate::sync::start_on(&rt, &store, SyncConfig::default(), events.notify()) {
            Ok(handle) => events.send(ConnectEvent::Ready {
                handle,
                demo,
                notice,
            }),
            Err(e) => events.send(ConnectEvent::Failed(format!("sync could not start: {e}"))),
        }
    })
}

/// Turns "Simulate server outage" on (`running = false`) or off. Runs as a task on `runtime`.
#[cfg(feature = "server")]
pub fn set_demo_server_running(
    runtime: &Handle,
    server: SharedLocalServer,
    running: bool,
    events: Events,
) -> TaskGuard {
    TaskGuard::spawn(runtime, async move {
        let mut s = server.lock().await;
        let message = if running {
            s.resume().await.err().map(|e| e.to_string())
        } else {
            s.pause().await;
            None
        };
        let now_running = s.is_running();
        drop(s);
        events.send(ConnectEvent::DemoServer {
            running: now_running,
            message,
        });
    })
}
