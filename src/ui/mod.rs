//! The crew tablet app (eframe/egui): screens, widgets, theme and the one logic layer that
//! talks to the store.
//!
//! Shape (after rerun's viewer): [`EprApp`] is a thin [`eframe::App`]. Per-frame work that
//! is not drawing (worker replies, debounced autosave, idle lock) runs in `logic`; drawing
//! runs in `ui`. Screens are functions named `*_ui` that edit only the state they are given
//! and push [`Command`]s, which [`EprApp::apply`] carries out in one place.
//!
//! Nothing slow runs on the UI thread. The unlocked [`crate::store::Store`] lives on a
//! worker thread ([`worker`]); key derivation, saves and queries go there as requests and
//! come back over a channel with a repaint. This room never runs SQL and never imports
//! rusqlite (a test reads the source tree to keep it so).
//!
//! Seams for the sync engine and enrolment, which are wired in elsewhere:
//! - [`EprApp::attach_sync`] hands the app a [`SyncHandle`]; the status bar reads it every
//!   frame and "Sync now" / record completion send commands to it. Locking keeps it.
//! - [`EprApp::connect`] receives the first-run choice ([`ConnectRequest`]).
//! - [`EprApp::run_on_store`] runs a closure on the store worker with the unlocked store, for
//!   example `store.open_another()` to give the sync engine its own connection.

pub mod connection;
pub mod editor;
pub mod list;
pub mod prefs;
pub mod problem;
pub mod review;
pub mod status_bar;
pub mod theme;
pub mod unlock;
pub mod widgets;
pub mod worker;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::store::{ListFilter, StoreError};
use crate::sync::{SyncCommand, SyncHandle};
use editor::{EditMode, EditorState, Forms, VersionView};
use list::ListState;
use problem::StoreProblem;
use theme::ThemeChoice;
use unlock::{ConnectForm, FirstRunForm, UnlockForm};
use worker::{ListPurpose, RepaintSignal, StoreJob, StoreReply, StoreRequest, StoreWorker};

pub use editor::forms;

/// Opens the window and runs until it is closed.
pub fn run_app(data_dir: PathBuf) -> Result<(), String> {
    let mut config = AppConfig::default();
    if let Some(secs) = std::env::var("EPR_IDLE_LOCK_SECS")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|s| *s > 0)
    {
        config.idle_lock_after = Duration::from_secs(secs);
    }
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("Ambulance ePR")
            .with_inner_size([1280.0, 800.0])
            .with_min_inner_size([800.0, 560.0]),
        ..Default::default()
    };
    eframe::run_native(
        "Ambulance ePR",
        options,
        Box::new(move |_cc| Ok(Box::new(EprApp::new(data_dir, config)))),
    )
    .map_err(|e| e.to_string())
}

/// Settings that tests and the benchmark change.
#[derive(Debug, Clone, Copy)]
pub struct AppConfig {
    /// Lock after this long without a touch or key press. Default 5 minutes.
    pub idle_lock_after: Duration,
    /// Autosave after this pause in typing.
    pub autosave_quiet: Duration,
    /// ... and never later than this after the first unsaved edit.
    pub autosave_max_wait: Duration,
}

impl Default for AppConfig {
    fn default() -> Self {
        Self {
            idle_lock_after: Duration::from_secs(5 * 60),
            autosave_quiet: Duration::from_millis(300),
            autosave_max_wait: Duration::from_millis(800),
        }
    }
}

/// The first-run choice of server. Carried to [`EprApp::connect`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectRequest {
    /// Enrol with a trust's server using a one-time code from its administrators.
    Enrol {
        server_url: String,
        enrolment_code: String,
    },
    /// Start a demonstration server inside this app and enrol with it.
    TryOnThisComputer,
}

/// Which handover document to save (the export room's format).
pub use crate::export::Format as ExportFormat;

/// What the window shows.
#[derive(Debug)]
pub enum Screen {
    /// No store yet: create the first user.
    FirstRun(FirstRunForm),
    /// Just created: choose a server, or work offline.
    ConnectChoice(ConnectForm),
    /// A store exists: pick a user and enter the PIN.
    Unlock(UnlockForm),
    /// Waiting for the worker (key derivation).
    Working(&'static str),
    /// The store could not be opened; the file was left as it is.
    Failed(String),
    /// Unlocked: the encounter list.
    Records,
    /// Unlocked: one record.
    Editor(Box<EditorState>),
    /// Supervisor review (sign-in, queue, record); no crew user is unlocked.
    Review(Box<review::ReviewScreen>),
}

impl Screen {
    /// A short name, for tests and logs (never patient data).
    pub fn name(&self) -> &'static str {
        match self {
            Screen::FirstRun(_) => "first run",
            Screen::ConnectChoice(_) => "connect",
            Screen::Unlock(_) => "unlock",
            Screen::Working(_) => "working",
            Screen::Failed(_) => "failed",
            Screen::Records => "records",
            Screen::Editor(_) => "editor",
            Screen::Review(r) => r.page_name(),
        }
    }
}

/// What screens ask for; carried out by [`EprApp::apply`]. Its `Debug` never shows a
/// passphrase.
#[derive(Clone, PartialEq, Eq)]
pub enum Command {
    CreateStore {
        user: String,
        passphrase: String,
    },
    Unlock {
        user: String,
        passphrase: String,
    },
    Lock,
    Connect(ConnectRequest),
    WorkOffline,
    Search(String),
    NewRecord,
    OpenRecord(Uuid),
    BackToList,
    StartAmendment,
    StopAmending,
    /// Throw away the unsigned amendment and show the signed record again.
    DiscardAmendment,
    Sign {
        clinician_name: String,
        registration: String,
    },
    SignAmendment {
        reason: String,
        clinician_name: String,
        registration: String,
    },
    OpenVersion(u64),
    CloseVersion,
    SyncNow,
    ToggleTheme,
    SetIdleLock(Duration),
    /// Demo mode: stop (`true`) or restart (`false`) the in-process server.
    SimulateOutage(bool),
    /// Save the open record's handover document into `folder` (a given version, or the
    /// latest saved one).
    Export {
        format: ExportFormat,
        folder: String,
        revision: Option<u64>,
    },
    DismissNotice,
    /// Open the supervisor sign-in (from the unlock or first-run screen).
    OpenReview,
    /// A command from the review pages.
    Review(review::ReviewCommand),
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::CreateStore { user, .. } => write!(f, "CreateStore({user:?}, ..)"),
            Command::Unlock { user, .. } => write!(f, "Unlock({user:?}, ..)"),
            Command::Search(_) => write!(f, "Search(..)"),
            Command::Sign { .. } => write!(f, "Sign(..)"),
            Command::SignAmendment { .. } => write!(f, "SignAmendment(..)"),
            Command::Review(c) => write!(f, "Review({c:?})"),
            other => {
                let name = match other {
                    Command::Lock => "Lock",
                    Command::Connect(_) => "Connect",
                    Command::WorkOffline => "WorkOffline",
                    Command::NewRecord => "NewRecord",
                    Command::OpenRecord(_) => "OpenRecord",
                    Command::BackToList => "BackToList",
                    Command::StartAmendment => "StartAmendment",
                    Command::StopAmending => "StopAmending",
                    Command::DiscardAmendment => "DiscardAmendment",
                    Command::OpenVersion(_) => "OpenVersion",
                    Command::CloseVersion => "CloseVersion",
                    Command::SyncNow => "SyncNow",
                    Command::ToggleTheme => "ToggleTheme",
                    Command::SetIdleLock(_) => "SetIdleLock",
                    Command::SimulateOutage(_) => "SimulateOutage",
                    Command::Export { .. } => "Export",
                    Command::DismissNotice => "DismissNotice",
                    Command::OpenReview => "OpenReview",
                    _ => "Command",
                };
                f.write_str(name)
            }
        }
    }
}

/// Timings the benchmark reads; no patient data.
#[derive(Debug, Clone, Default)]
pub struct Timings {
    /// Time the worker spent creating or unlocking (mostly key derivation).
    pub unlock_duration: Option<Duration>,
    /// When the unlock reply reached the UI thread.
    pub unlocked_at: Option<Instant>,
    /// When the first list frame after unlock was drawn with rows.
    pub list_drawn_at: Option<Instant>,
    /// How long the last list query took on the worker.
    pub last_list_query: Option<Duration>,
    /// When the whole list (every summary) arrived.
    pub full_list_at: Option<Instant>,
}

/// Pause in typing before digits in the search are looked up as an NHS number.
const NHS_SEARCH_DEBOUNCE: Duration = Duration::from_millis(250);

/// Idle-lock choices offered in the top bar, in minutes.
const IDLE_LOCK_CHOICES_MINUTES: [u64; 5] = [1, 2, 5, 10, 15];

/// The app state.
pub struct EprApp {
    data_dir: PathBuf,
    config: AppConfig,
    screen: Screen,
    list: ListState,
    worker: StoreWorker,
    repaint: RepaintSignal,
    sync: Option<SyncHandle>,
    /// The unlocked user; `None` while locked.
    user: Option<String>,
    users: Vec<String>,
    theme: ThemeChoice,
    styled_ctx: Option<egui::Context>,
    last_activity: Instant,
    /// The record to reopen after unlocking (its id only: no patient data is kept).
    resume_record: Option<Uuid>,
    /// A notice to show once the reopened record arrives.
    pending_notice: Option<String>,
    timings: Timings,
    /// Results of connection work (enrolment, demo server, sync start-up).
    connect_tx: std::sync::mpsc::Sender<connection::ConnectEvent>,
    connect_rx: std::sync::mpsc::Receiver<connection::ConnectEvent>,
    /// The in-process demo server and what the demo panel shows, in demo mode.
    demo: Option<(connection::SharedLocalServer, connection::DemoInfo)>,
    /// A one-off message above the record list (enrolment done, demo credentials, ...).
    notice: Option<String>,
    /// The sync state the list was last refreshed for.
    last_sync_seen: Option<SyncSeen>,
}

/// (changes, queued, quarantined, returned): a change means the list's badges moved.
type SyncSeen = (u64, u64, u64, u64);

impl EprApp {
    /// The app for `data_dir`. Reads only the small keyring file to choose between first run
    /// and unlock; the store itself is opened on the worker.
    pub fn new(data_dir: PathBuf, config: AppConfig) -> Self {
        let repaint: RepaintSignal = Arc::new(OnceLock::new());
        let worker = StoreWorker::start(data_dir.clone(), repaint.clone());
        let (connect_tx, connect_rx) = std::sync::mpsc::channel();
        // Remembered display choices; an idle time set explicitly (tests, EPR_IDLE_LOCK_SECS)
        // wins over the remembered one.
        let saved = prefs::load(&data_dir);
        let mut config = config;
        if let Some(p) = saved
            && config.idle_lock_after == AppConfig::default().idle_lock_after
        {
            config.idle_lock_after = p.idle_lock_after();
        }
        let (screen, users) = match crate::store::user_names(&data_dir) {
            Ok(users) => (Screen::Unlock(UnlockForm::new(users.clone())), users),
            Err(StoreError::NotInitialised(_)) => {
                (Screen::FirstRun(FirstRunForm::default()), Vec::new())
            }
            Err(e) => (
                Screen::Failed(StoreProblem::report(e).to_string()),
                Vec::new(),
            ),
        };
        Self {
            data_dir,
            config,
            screen,
            list: ListState::default(),
            worker,
            repaint,
            sync: None,
            user: None,
            users,
            theme: saved
                .map(prefs::UiPrefs::theme)
                .unwrap_or(ThemeChoice::Light),
            styled_ctx: None,
            last_activity: Instant::now(),
            resume_record: None,
            pending_notice: None,
            timings: Timings::default(),
            connect_tx,
            connect_rx,
            demo: None,
            notice: None,
            last_sync_seen: None,
        }
    }

    /// Plugs in the sync engine. The status bar reads it from the next frame; it is kept
    /// across lock and unlock (sync keeps running while the screen is locked).
    pub fn attach_sync(&mut self, handle: SyncHandle) {
        self.sync = Some(handle);
    }

    /// The attached sync engine, if any.
    pub fn sync_handle(&self) -> Option<&SyncHandle> {
        self.sync.as_ref()
    }

    /// Runs `job` on the store worker, after everything already queued. The closure gets the
    /// unlocked store (`None` while locked) and reports its result itself. Never do network
    /// calls inside it: saves wait behind it.
    pub fn run_on_store(&mut self, job: StoreJob) {
        self.worker.send(StoreRequest::Job(job));
    }

    /// The first-run server choice: enrol with a trust's server, or start the demo server
    /// on this computer. The work runs off the UI thread on a second store connection; the
    /// outcome arrives as a [`connection::ConnectEvent`].
    pub fn connect(&mut self, request: ConnectRequest) {
        if let Screen::ConnectChoice(form) = &mut self.screen {
            form.busy = true;
            form.message = Some(match request {
                ConnectRequest::Enrol { .. } => "Enrolling with the server…".to_owned(),
                ConnectRequest::TryOnThisComputer => {
                    "Starting the demo server and adding demo records…".to_owned()
                }
            });
        }
        let events = self.events();
        let data_dir = self.data_dir.clone();
        self.run_on_store(Box::new(move |store| {
            let Some(store) = store else {
                events.send(connection::ConnectEvent::Failed(
                    "The tablet is locked: unlock it and try again".into(),
                ));
                return;
            };
            let second = match store.open_another() {
                Ok(s) => s,
                Err(e) => {
                    events.send(connection::ConnectEvent::Failed(
                        StoreProblem::report(e).to_string(),
                    ));
                    return;
                }
            };
            match request {
                ConnectRequest::Enrol {
                    server_url,
                    enrolment_code,
                } => connection::enrol(second, server_url, enrolment_code, events),
                #[cfg(feature = "server")]
                ConnectRequest::TryOnThisComputer => {
                    connection::try_on_this_computer(second, data_dir, events)
                }
                #[cfg(not(feature = "server"))]
                ConnectRequest::TryOnThisComputer => {
                    let _ = (second, data_dir);
                    events.send(connection::ConnectEvent::Failed(
                        "This build has no demo server".into(),
                    ));
                }
            }
        }));
    }

    /// Saves the open record's handover document. Pending edits are saved first, so the file
    /// holds what is on screen; the work runs on the store worker, never the UI thread.
    fn export(&mut self, format: ExportFormat, folder: String, revision: Option<u64>) {
        let Some(id) = self.editor().map(EditorState::id) else {
            return;
        };
        self.flush_editor();
        let events = self.events();
        self.run_on_store(Box::new(move |store| {
            let Some(store) = store else { return };
            let message = match export_to_folder(store, id, revision, format, &folder) {
                Ok(path) => format!("Saved {}", path.display()),
                Err(e) => e,
            };
            events.send(connection::ConnectEvent::Notice(message));
        }));
    }

    /// Remembers the theme and idle time (written on the worker thread, not the UI thread).
    fn save_prefs(&mut self) {
        let data_dir = self.data_dir.clone();
        let p = prefs::UiPrefs {
            dark_theme: self.theme == ThemeChoice::Dark,
            idle_lock_minutes: self.config.idle_lock_after.as_secs().div_ceil(60),
        };
        self.run_on_store(Box::new(move |_| prefs::save(&data_dir, p)));
    }

    /// A sender for connection events that wakes the window.
    fn events(&self) -> connection::Events {
        let repaint = self.repaint.clone();
        connection::Events::new(
            self.connect_tx.clone(),
            Arc::new(move || {
                if let Some(ctx) = repaint.get() {
                    ctx.request_repaint();
                }
            }),
        )
    }

    /// Starts sync after unlock when this tablet is enrolled and no engine is running yet.
    fn resume_sync(&mut self) {
        if self.sync.is_some() {
            return;
        }
        let events = self.events();
        let data_dir = self.data_dir.clone();
        self.run_on_store(Box::new(move |store| {
            if let Some(store) = store
                && let Ok(second) = store.open_another()
            {
                connection::resume_after_unlock(second, data_dir, events);
            }
        }));
    }

    fn handle_connect(&mut self, event: connection::ConnectEvent) {
        match event {
            connection::ConnectEvent::Ready {
                handle,
                demo,
                notice,
            } => {
                self.attach_sync(handle);
                if demo.is_some() {
                    self.demo = demo;
                }
                self.notice = notice;
                if matches!(self.screen, Screen::ConnectChoice(_)) {
                    self.screen = Screen::Records;
                    self.refresh_list();
                } else if matches!(self.screen, Screen::Records) {
                    self.refresh_list();
                }
            }
            connection::ConnectEvent::Failed(message) => {
                if let Screen::ConnectChoice(form) = &mut self.screen {
                    form.busy = false;
                    form.message = Some(message);
                } else {
                    self.notice = Some(message);
                }
            }
            connection::ConnectEvent::Notice(message) => {
                if let Screen::Editor(ed) = &mut self.screen {
                    ed.notice = Some(message);
                } else {
                    self.notice = Some(message);
                }
            }
            connection::ConnectEvent::DemoServer { running, message } => {
                if let Some((_, info)) = &mut self.demo {
                    info.server_running = running;
                }
                if message.is_some() {
                    self.notice = message;
                }
            }
        }
    }

    /// The demo server's address, in demo mode (tests read it).
    pub fn status_demo_url(&self) -> Option<String> {
        self.demo.as_ref().map(|(_, info)| info.server_url.clone())
    }

    /// The connect screen's message, if it shows one (tests read it).
    pub fn connect_message(&self) -> Option<&str> {
        match &self.screen {
            Screen::ConnectChoice(form) => form.message.as_deref(),
            _ => None,
        }
    }

    /// The data directory the app was started with.
    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }

    /// The current screen (tests inspect it).
    pub fn screen(&self) -> &Screen {
        &self.screen
    }

    /// The open record's editor, if one is open.
    pub fn editor(&self) -> Option<&EditorState> {
        match &self.screen {
            Screen::Editor(e) => Some(e),
            _ => None,
        }
    }

    /// The open record's editor, to change its section (tests, benchmark).
    pub fn editor_mut(&mut self) -> Option<&mut EditorState> {
        match &mut self.screen {
            Screen::Editor(e) => Some(e),
            _ => None,
        }
    }

    /// The supervisor review screen, when it is showing.
    pub fn review(&self) -> Option<&review::ReviewScreen> {
        match &self.screen {
            Screen::Review(r) => Some(r),
            _ => None,
        }
    }

    /// The supervisor review screen, to edit its forms (tests).
    pub fn review_mut(&mut self) -> Option<&mut review::ReviewScreen> {
        match &mut self.screen {
            Screen::Review(r) => Some(r),
            _ => None,
        }
    }

    /// The list's state.
    pub fn list(&self) -> &ListState {
        &self.list
    }

    /// True when no store request, review request or sync cycle is outstanding and no edit
    /// is waiting to be saved.
    pub fn is_idle(&self) -> bool {
        self.worker.in_flight() == 0
            && !matches!(&self.screen, Screen::Review(r) if r.busy())
            && self.list.nhs_query_due.is_none()
            && !self.editor().is_some_and(|e| e.save.has_unsent())
            && !self.sync.as_ref().is_some_and(|s| s.status().sending)
    }

    /// True while a user has the store unlocked.
    pub fn is_unlocked(&self) -> bool {
        self.user.is_some()
    }

    /// Benchmark timings.
    pub fn timings(&self) -> &Timings {
        &self.timings
    }

    /// The theme in use.
    pub fn theme(&self) -> ThemeChoice {
        self.theme
    }

    /// Sets the theme (applied on the next frame).
    pub fn set_theme(&mut self, theme: ThemeChoice) {
        self.theme = theme;
        if let Some(ctx) = &self.styled_ctx {
            theme::select(ctx, theme);
        }
    }

    /// How long without input before the app locks.
    pub fn idle_lock_after(&self) -> Duration {
        self.config.idle_lock_after
    }

    /// Asks for the list: the first page at once (drawn within a frame or two), then every
    /// summary, then the status counts. What is on screen stays until the answers arrive.
    fn refresh_list(&mut self) {
        if self.user.is_none() {
            return;
        }
        self.list.generation += 1;
        self.list.loading = true;
        if self.list.all.is_empty() {
            self.worker.send(StoreRequest::List {
                filter: ListFilter {
                    limit: Some(list::FIRST_PAGE_ROWS),
                    ..ListFilter::default()
                },
                generation: self.list.generation,
                purpose: ListPurpose::FirstPage,
            });
        }
        self.worker.send(StoreRequest::List {
            filter: ListFilter::default(),
            generation: self.list.generation,
            purpose: ListPurpose::All,
        });
        self.worker.send(StoreRequest::Counts);
        self.schedule_nhs_search(Instant::now());
    }

    /// Debounces the store query for NHS-number digits in the search.
    fn schedule_nhs_search(&mut self, now: Instant) {
        // Once every summary is in memory (NHS numbers included) the search needs no query.
        self.list.nhs_query_due = if self.list.complete {
            None
        } else {
            list::nhs_digits(&self.list.search).map(|_| now + NHS_SEARCH_DEBOUNCE)
        };
    }

    /// Sends the open record's unsaved edits to the store now.
    fn flush_editor(&mut self) {
        if let Screen::Editor(ed) = &mut self.screen
            && ed.save.has_unsent()
        {
            send_save(&mut self.worker, ed);
        }
    }

    /// Locks: saves pending edits, drops the store (and its key) on the worker and hides all
    /// patient data. The sync handle is kept.
    pub fn lock(&mut self, notice: Option<String>) {
        self.flush_editor();
        self.resume_record = match &self.screen {
            Screen::Editor(ed) if !ed.is_new || ed.save.in_flight > 0 => Some(ed.id()),
            _ => None,
        };
        self.worker.send(StoreRequest::Lock);
        self.list.clear();
        self.user = None;
        let mut form = UnlockForm::new(self.users.clone());
        form.notice = notice;
        self.screen = Screen::Unlock(form);
    }

    /// Saves pending edits and waits for the worker to finish everything queued. Called
    /// when the window closes.
    pub fn shutdown(&mut self) {
        self.flush_editor();
        self.worker.finish();
    }

    /// Carries out one command from a screen.
    pub fn apply(&mut self, command: Command) {
        match command {
            Command::CreateStore { user, passphrase } => {
                self.worker.send(StoreRequest::Create { user, passphrase });
                self.screen = Screen::Working("Creating the encrypted store…");
            }
            Command::Unlock { user, passphrase } => {
                self.worker.send(StoreRequest::Unlock { user, passphrase });
                self.screen = Screen::Working("Unlocking…");
            }
            Command::Lock => self.lock(None),
            Command::Connect(request) => self.connect(request),
            Command::SimulateOutage(outage) => {
                #[cfg(feature = "server")]
                if let Some((server, info)) = &mut self.demo {
                    info.server_running = !outage;
                    connection::set_demo_server_running(server.clone(), !outage, self.events());
                }
                #[cfg(not(feature = "server"))]
                let _ = outage;
            }
            Command::DismissNotice => self.notice = None,
            Command::Export {
                format,
                folder,
                revision,
            } => self.export(format, folder, revision),
            Command::WorkOffline => {
                self.screen = Screen::Records;
                self.refresh_list();
            }
            Command::Search(text) => {
                self.list.search = text;
                self.list.apply_search();
                self.list.nhs_generation = None;
                self.schedule_nhs_search(Instant::now());
            }
            Command::NewRecord => {
                let user = self.user.clone().unwrap_or_default();
                self.screen = Screen::Editor(Box::new(EditorState::new_record(&user)));
            }
            Command::OpenRecord(id) => {
                self.flush_editor();
                self.worker.send(StoreRequest::Open { id });
            }
            Command::BackToList => {
                self.flush_editor();
                self.screen = Screen::Records;
                self.refresh_list();
            }
            Command::StartAmendment => {
                if let Screen::Editor(ed) = &mut self.screen {
                    ed.start_amendment();
                }
            }
            Command::DiscardAmendment => {
                // Unsent edits are dropped, not saved; anything already queued is discarded
                // by the job, which runs after it on the worker.
                if let Screen::Editor(ed) = &mut self.screen {
                    ed.save = Default::default();
                    let id = ed.id();
                    self.run_on_store(Box::new(move |store| {
                        if let Some(store) = store
                            && let Err(e) = store.discard_amendment_draft(id)
                        {
                            // Reported to the log only; reopening shows the amendment kept.
                            StoreProblem::report(e);
                        }
                    }));
                    self.worker.send(StoreRequest::Open { id });
                }
            }
            Command::StopAmending => {
                self.flush_editor();
                if let Screen::Editor(ed) = &self.screen {
                    let id = ed.id();
                    self.worker.send(StoreRequest::Open { id });
                }
            }
            Command::Sign {
                clinician_name,
                registration,
            } => {
                self.flush_editor();
                if let Screen::Editor(ed) = &self.screen {
                    self.worker.send(StoreRequest::Sign {
                        encounter: Box::new(ed.doc.clone()),
                        clinician_name,
                        registration,
                    });
                }
            }
            Command::SignAmendment {
                reason,
                clinician_name,
                registration,
            } => {
                self.flush_editor();
                if let Screen::Editor(ed) = &self.screen {
                    self.worker.send(StoreRequest::Amend {
                        encounter: Box::new(ed.doc.clone()),
                        reason,
                        clinician_name,
                        registration,
                    });
                }
            }
            Command::OpenVersion(revision) => {
                if let Screen::Editor(ed) = &self.screen {
                    let id = ed.id();
                    self.worker.send(StoreRequest::Version { id, revision });
                }
            }
            Command::CloseVersion => {
                if let Screen::Editor(ed) = &mut self.screen {
                    ed.viewing_version = None;
                }
            }
            Command::SyncNow => {
                if let Some(s) = &self.sync {
                    s.send(SyncCommand::SyncNow);
                }
            }
            Command::ToggleTheme => {
                self.set_theme(self.theme.toggled());
                self.save_prefs();
            }
            Command::SetIdleLock(d) => {
                self.config.idle_lock_after = d;
                self.save_prefs();
            }
            Command::OpenReview => {
                if self.user.is_none() {
                    self.screen = Screen::Review(Box::new(review::ReviewScreen::new(
                        &self.data_dir,
                        self.repaint.clone(),
                    )));
                }
            }
            Command::Review(review::ReviewCommand::Leave) => {
                // Dropping the review screen drops every record it held and the session.
                self.screen = if self.users.is_empty() {
                    Screen::FirstRun(FirstRunForm::default())
                } else {
                    Screen::Unlock(UnlockForm::new(self.users.clone()))
                };
            }
            Command::Review(c) => {
                if let Screen::Review(r) = &mut self.screen {
                    r.apply(c);
                }
            }
        }
    }

    fn handle_reply(&mut self, reply: StoreReply) {
        match reply {
            StoreReply::Opened {
                created,
                result,
                duration,
            } => match result {
                Ok(user) => {
                    self.timings.unlock_duration = Some(duration);
                    self.timings.unlocked_at = Some(Instant::now());
                    self.timings.list_drawn_at = None;
                    self.timings.full_list_at = None;
                    if created {
                        self.users = vec![user.clone()];
                    }
                    self.user = Some(user);
                    self.last_activity = Instant::now();
                    self.screen = if created {
                        Screen::ConnectChoice(ConnectForm::default())
                    } else {
                        Screen::Records
                    };
                    self.refresh_list();
                    if let Some(id) = self.resume_record.take() {
                        self.worker.send(StoreRequest::Open { id });
                    }
                    if !created {
                        self.resume_sync();
                    }
                }
                Err(e) => self.open_failed(created, e),
            },
            StoreReply::Locked | StoreReply::JobDone => {}
            StoreReply::Listed {
                generation,
                purpose,
                result,
            } => {
                if self.user.is_none() {
                    return;
                }
                let current = match purpose {
                    ListPurpose::NhsSearch => self.list.nhs_generation == Some(generation),
                    _ => generation == self.list.generation,
                };
                if !current {
                    return;
                }
                match result {
                    Ok(r) => {
                        self.timings.last_list_query = Some(r.query_duration);
                        match purpose {
                            ListPurpose::FirstPage => {
                                // A full list may already have arrived for a newer request.
                                if !self.list.complete {
                                    self.list.set_all(r.rows, false);
                                }
                            }
                            ListPurpose::All => {
                                self.list.loading = false;
                                self.list.set_all(r.rows, true);
                                self.timings.full_list_at = Some(Instant::now());
                            }
                            ListPurpose::NhsSearch => {
                                self.list.nhs_generation = None;
                                self.list.set_nhs_matches(r.rows);
                            }
                        }
                        self.list.error = None;
                    }
                    Err(e) => {
                        self.list.loading = false;
                        self.list.nhs_generation = None;
                        self.list.error = Some(widgets::sentence(&e.to_string()));
                    }
                }
            }
            StoreReply::Counts(result) => {
                if self.user.is_none() {
                    return;
                }
                if let Ok((counts, last)) = result {
                    self.list.counts = Some(counts);
                    self.list.last_sync_utc = last;
                }
            }
            StoreReply::Record(result) => {
                if self.user.is_none() {
                    return;
                }
                match result {
                    Ok(bundle) => {
                        let user = self.user.clone().unwrap_or_default();
                        let mut ed = EditorState::from_bundle(*bundle, &user);
                        ed.notice = self.pending_notice.take();
                        // Reopening the same record (after signing): stay in the same section.
                        if let Screen::Editor(old) = &self.screen
                            && old.id() == ed.id()
                        {
                            ed.section = old.section;
                        }
                        self.screen = Screen::Editor(Box::new(ed));
                    }
                    Err(e) => {
                        self.list.error = Some(format!("The record could not be opened: {}", e));
                        if !matches!(self.screen, Screen::Editor(_)) {
                            self.screen = Screen::Records;
                        }
                    }
                }
            }
            StoreReply::Saved { record_id, result } => {
                if let Screen::Editor(ed) = &mut self.screen
                    && ed.id() == record_id
                {
                    ed.save.in_flight = ed.save.in_flight.saturating_sub(1);
                    match result {
                        Ok(_) => {
                            ed.is_new = false;
                            ed.save.error = None;
                            ed.save.last_saved_local = Some(chrono::Local::now());
                        }
                        Err(e) => {
                            // Keep the edits marked unsaved so the next edit or flush retries.
                            ed.save.error = Some(widgets::sentence(&e.to_string()));
                            ed.save.mark_edited(Instant::now());
                        }
                    }
                }
            }
            StoreReply::Signed { record_id, result } => {
                let Screen::Editor(ed) = &mut self.screen else {
                    return;
                };
                if ed.id() != record_id {
                    return;
                }
                match result {
                    Ok(receipt) => {
                        if let Some(s) = &self.sync {
                            s.send(SyncCommand::RecordCompleted);
                        }
                        ed.dialog = None;
                        self.pending_notice = Some(if receipt.status == crate::model::RecordStatus::Amended {
                            "Amendment signed. The earlier version is kept under Sign-off and versions."
                        } else {
                            "Signed and locked. Later changes need an amendment with a reason."
                        }
                        .to_owned());
                        self.worker.send(StoreRequest::Open { id: record_id });
                    }
                    Err(e) => {
                        if let Some(d) = &mut ed.dialog {
                            d.busy = false;
                            d.error = Some(e.to_string());
                        }
                    }
                }
            }
            StoreReply::Version { revision, result } => {
                if let Screen::Editor(ed) = &mut self.screen {
                    match result {
                        Ok(doc) => {
                            ed.viewing_version = Some(VersionView {
                                revision,
                                forms: Forms::from_encounter(&doc),
                                encounter: *doc,
                            });
                        }
                        Err(e) => ed.notice = Some(widgets::sentence(&e.to_string())),
                    }
                }
            }
        }
    }

    fn open_failed(&mut self, created: bool, e: StoreProblem) {
        match e {
            StoreProblem::WrongPassphrase
            | StoreProblem::RateLimited { .. }
            | StoreProblem::UnknownUser(_)
            | StoreProblem::ChooseUser(_) => {
                let mut form = UnlockForm::new(self.users.clone());
                if let Screen::Unlock(old) = &self.screen {
                    form.user = old.user.clone();
                }
                form.error = Some(e.to_string());
                self.screen = Screen::Unlock(form);
            }
            StoreProblem::AlreadyExists | StoreProblem::DataDir(_) | StoreProblem::ReadOnly
                if created =>
            {
                self.screen = Screen::FirstRun(FirstRunForm {
                    error: Some(widgets::sentence(&e.to_string())),
                    ..FirstRunForm::default()
                });
            }
            other => self.screen = Screen::Failed(other.to_string()),
        }
    }

    /// The non-drawing work of one frame. `now` is passed in so tests can reason about time.
    pub fn logic_at(&mut self, ctx: &egui::Context, now: Instant) {
        let _ = self.repaint.set(ctx.clone());
        if self.styled_ctx.as_ref() != Some(ctx) {
            theme::install(ctx, self.theme);
            self.styled_ctx = Some(ctx.clone());
        }
        if ctx.input(|i| !i.events.is_empty() || i.pointer.any_down()) {
            self.last_activity = now;
        }
        while let Some(reply) = self.worker.try_recv() {
            self.handle_reply(reply);
        }
        while let Ok(event) = self.connect_rx.try_recv() {
            self.handle_connect(event);
        }
        // When a sync changed records (acknowledged, decided, refused), the list's badges are
        // stale; a periodic sync that changed nothing does not reload the list.
        if let Some(status) = self.sync.as_ref().map(SyncHandle::status) {
            let seen = (
                status.changes,
                status.queued,
                status.quarantined,
                status.returned,
            );
            if self.last_sync_seen != Some(seen) {
                self.last_sync_seen = Some(seen);
                if !status.sending && matches!(self.screen, Screen::Records) {
                    self.refresh_list();
                }
            }
        }
        if let Screen::Review(r) = &mut self.screen {
            r.poll();
            // Supervisors are signed out after the same idle time that locks the crew app:
            // review records leave the screen, a half-written comment is kept.
            if r.signed_in() {
                let idle = now.saturating_duration_since(self.last_activity);
                if idle >= self.config.idle_lock_after {
                    r.idle_sign_out(self.config.idle_lock_after.as_secs().div_ceil(60));
                } else {
                    ctx.request_repaint_after(self.config.idle_lock_after - idle);
                }
            }
        }
        let mut wake: Option<Duration> = None;
        if let Some(due) = self.list.nhs_query_due {
            if now >= due {
                self.list.nhs_query_due = None;
                if let Some(digits) = list::nhs_digits(&self.list.search) {
                    self.list.generation += 1;
                    self.list.nhs_generation = Some(self.list.generation);
                    self.worker.send(StoreRequest::List {
                        filter: ListFilter {
                            text: Some(digits),
                            ..ListFilter::default()
                        },
                        generation: self.list.generation,
                        purpose: ListPurpose::NhsSearch,
                    });
                }
            } else {
                wake = Some(due - now);
            }
        }
        let (quiet, max_wait) = (self.config.autosave_quiet, self.config.autosave_max_wait);
        if let Screen::Editor(ed) = &mut self.screen {
            if ed.save.due(now, quiet, max_wait) {
                send_save(&mut self.worker, ed);
            } else if let Some(d) = ed.save.time_until_due(now, quiet, max_wait) {
                wake = Some(d);
            }
        }
        if self.user.is_some() {
            let idle = now.saturating_duration_since(self.last_activity);
            if idle >= self.config.idle_lock_after {
                let minutes = self.config.idle_lock_after.as_secs().div_ceil(60);
                self.lock(Some(format!(
                    "Locked after {minutes} minute{} without use. Patient data is hidden; sync carries on.",
                    if minutes == 1 { "" } else { "s" }
                )));
            } else {
                let left = self.config.idle_lock_after - idle;
                wake = Some(wake.map_or(left, |w| w.min(left)));
            }
        }
        if let Some(d) = wake {
            ctx.request_repaint_after(d);
        }
    }

    /// Draws one frame.
    pub fn draw(&mut self, ui: &mut egui::Ui) {
        let mut commands = Vec::new();
        egui::Panel::top("app-top").show(ui, |ui| {
            top_bar_ui(
                ui,
                self.user.as_deref(),
                self.theme,
                self.config.idle_lock_after,
                &mut commands,
            );
        });
        // The crew's sync status means nothing to a supervisor reviewing on the server.
        if !matches!(self.screen, Screen::Review(_)) {
            let view = self.status_view();
            egui::Panel::bottom("status-bar").show(ui, |ui| {
                status_bar::status_bar_ui(ui, &view, &mut commands);
            });
            if let Some(demo) = &view.demo {
                egui::Panel::bottom("demo-bar").show(ui, |ui| {
                    status_bar::demo_bar_ui(ui, demo, &mut commands);
                });
            }
        }
        egui::CentralPanel::default_margins().show(ui, |ui| match &mut self.screen {
            Screen::FirstRun(form) => unlock::first_run_ui(ui, form, &mut commands),
            Screen::ConnectChoice(form) => unlock::connect_choice_ui(ui, form, &mut commands),
            Screen::Unlock(form) => unlock::unlock_ui(ui, form, &mut commands),
            Screen::Working(label) => unlock::working_ui(ui, label),
            Screen::Failed(message) => unlock::failed_ui(ui, message),
            Screen::Records => {
                if let Some(n) = &self.notice {
                    ui.horizontal_wrapped(|ui| {
                        ui.label(egui::RichText::new(n).strong());
                        if ui.button("Dismiss").clicked() {
                            commands.push(Command::DismissNotice);
                        }
                    });
                }
                list::records_ui(ui, &mut self.list, &mut commands);
                if self.timings.list_drawn_at.is_none() && !self.list.all.is_empty() {
                    self.timings.list_drawn_at = Some(Instant::now());
                }
            }
            Screen::Editor(ed) => editor::editor_ui(ui, ed, &mut commands),
            Screen::Review(r) => {
                let mut asked = Vec::new();
                review::review_ui(ui, r, &mut asked);
                commands.extend(asked.into_iter().map(Command::Review));
            }
        });
        for c in commands {
            self.apply(c);
        }
    }

    fn status_view(&self) -> status_bar::StatusView {
        status_bar::StatusView {
            engine: self.sync.as_ref().map(SyncHandle::status),
            local_queued: self.list.counts.as_ref().map(|c| c.pending_sync),
            local_last_sync_utc: self.list.last_sync_utc,
            demo: self.demo.as_ref().map(|(_, info)| info.clone()),
        }
    }
}

/// Writes one version's handover document into `folder`; returns the file written or a
/// message saying what went wrong.
fn export_to_folder(
    store: &mut crate::store::Store,
    id: Uuid,
    revision: Option<u64>,
    format: ExportFormat,
    folder: &str,
) -> Result<PathBuf, String> {
    use chrono::Offset;
    let (doc, meta) = store
        .version_for_export(id, revision)
        .map_err(|e| format!("Could not read the record: {}", StoreProblem::report(e)))?;
    let local = chrono::Local::now().offset().fix();
    let bytes = crate::export::document(format, &doc, &meta, chrono::Utc::now(), local)
        .map_err(|e| format!("Could not build the document: {e}"))?;
    let path = PathBuf::from(folder).join(crate::export::file_name(&doc, &meta, format));
    std::fs::write(&path, bytes).map_err(|e| format!("Could not save to {folder}: {e}"))?;
    store
        .record_access(crate::store::audit::Action::Exported, id)
        .map_err(|e| {
            format!(
                "Saved, but the export could not be audited: {}",
                StoreProblem::report(e)
            )
        })?;
    Ok(path)
}

fn send_save(worker: &mut StoreWorker, ed: &mut EditorState) {
    let request = match ed.mode {
        EditMode::Draft => StoreRequest::SaveDraft(Box::new(ed.doc.clone())),
        EditMode::Amending => StoreRequest::SaveAmendmentDraft(Box::new(ed.doc.clone())),
        EditMode::Signed => {
            ed.save = Default::default();
            return;
        }
    };
    worker.send(request);
    ed.save.first_unsaved = None;
    ed.save.last_edit = None;
    ed.save.in_flight += 1;
}

fn top_bar_ui(
    ui: &mut egui::Ui,
    user: Option<&str>,
    theme: ThemeChoice,
    idle_lock_after: Duration,
    out: &mut Vec<Command>,
) {
    ui.horizontal(|ui| {
        ui.label(egui::RichText::new("Ambulance ePR").strong().size(21.0));
        if let Some(u) = user {
            ui.label(format!("· {u}"));
        }
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            if user.is_some()
                && ui
                    .button("Lock")
                    .on_hover_text("Hide all patient data now")
                    .clicked()
            {
                out.push(Command::Lock);
            }
            if ui.button(theme.switch_label()).clicked() {
                out.push(Command::ToggleTheme);
            }
            if user.is_some() {
                let minutes = idle_lock_after.as_secs() / 60;
                let r = egui::ComboBox::from_id_salt("idle-lock")
                    .selected_text(format!("Lock after {minutes} min"))
                    .show_ui(ui, |ui| {
                        for m in IDLE_LOCK_CHOICES_MINUTES {
                            if ui
                                .selectable_label(minutes == m, format!("{m} min"))
                                .clicked()
                            {
                                out.push(Command::SetIdleLock(Duration::from_secs(m * 60)));
                            }
                        }
                    })
                    .response;
                editor::name_widget(&r, egui::Role::ComboBox, "Lock after idle time");
            }
        });
    });
}

impl eframe::App for EprApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.logic_at(ctx, Instant::now());
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.draw(ui);
    }

    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_a_passphrase() {
        let c = Command::Unlock {
            user: "alex".into(),
            passphrase: "secret-2468".into(),
        };
        assert!(!format!("{c:?}").contains("secret-2468"));
        let form = UnlockForm {
            passphrase: "secret-2468".into(),
            ..UnlockForm::default()
        };
        assert!(!format!("{form:?}").contains("secret-2468"));
        let form = FirstRunForm {
            passphrase: "secret-2468".into(),
            confirm: "secret-2468".into(),
            ..FirstRunForm::default()
        };
        assert!(!format!("{form:?}").contains("secret-2468"));
    }
}
