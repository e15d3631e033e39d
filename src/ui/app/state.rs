//! The app's state: what the window shows, the unlocked user, the list, the open record and
//! the handles to background work (store worker, sync engine, demo server), with the
//! accessors tests and the benchmark read.
//!
//! Owns: the [`EprApp`] struct itself and the small operations the other app files share
//! (refresh the list, flush the editor, lock). It never draws and never runs SQL.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::store::{ListFilter, StoreError};
use crate::sync::SyncHandle;
use crate::ui::editor::drugs::DrugForm;
use crate::ui::editor::forms::InterventionForm;
use crate::ui::editor::observations::ObsEntry;
use crate::ui::editor::{EditMode, EditorState};
use crate::ui::list::{self, ListState};
use crate::ui::problem::StoreProblem;
use crate::ui::tasks::{Background, TaskGuard};
use crate::ui::theme::{self, ThemeChoice};
use crate::ui::unlock::{ConnectForm, FirstRunForm, UnlockForm};
use crate::ui::worker::{ListPurpose, RepaintSignal, StoreRequest, StoreWorker};
use crate::ui::{connection, prefs, review};

/// Settings that tests and the benchmark change.
#[derive(Debug, Clone, Copy)]
pub struct AppConfig {
    /// Lock after this long without a touch or key press. Default 5 minutes.
    pub idle_lock_after: Duration,
    /// Autosave after this pause in typing.
    pub autosave_quiet: Duration,
    /// ... and never later than this after the first unsaved edit.
    pub autosave_max_wait: Duration,
    /// Argon2id cost for a new store, re-sealing an older one, and the quick PIN. Keep
    /// [`KdfParams::INTERACTIVE`]; tests may lower it.
    pub kdf: crate::crypto::KdfParams,
}

impl Default for AppConfig {
    fn default() -> Self {
        Self {
            idle_lock_after: Duration::from_secs(5 * 60),
            autosave_quiet: Duration::from_millis(300),
            autosave_max_wait: Duration::from_millis(800),
            kdf: crate::crypto::KdfParams::INTERACTIVE,
        }
    }
}

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

/// The app state.
pub struct EprApp {
    pub(super) data_dir: PathBuf,
    pub(super) config: AppConfig,
    pub(super) screen: Screen,
    pub(super) list: ListState,
    pub(super) worker: StoreWorker,
    pub(super) repaint: RepaintSignal,
    pub(super) sync: Option<SyncHandle>,
    /// The unlocked user; `None` while locked.
    pub(super) user: Option<String>,
    pub(super) users: Vec<String>,
    /// The user whose quick PIN the worker holds in memory, if any: the unlock screen then
    /// asks for the PIN instead of the passphrase.
    pub(super) quick_pin_user: Option<String>,
    /// The demo bar asks whether to delete the demo.
    pub(super) confirm_leave_demo: bool,
    pub(super) theme: ThemeChoice,
    pub(super) styled_ctx: Option<egui::Context>,
    /// The time of the current frame, as given to `logic_at`. Timers read this, never the
    /// wall clock, so tests can advance time instead of sleeping.
    pub(super) now: Instant,
    pub(super) last_activity: Instant,
    /// The record to reopen after unlocking (its id only: no patient data is kept).
    pub(super) resume_record: Option<Uuid>,
    /// Values typed into a record's "add" forms (a new observation set, a drug, an
    /// intervention) but not yet added, kept when the crew leaves the record or the tablet
    /// locks, and put back when the same user opens the same record. Held in memory only.
    pub(super) kept_entries: HashMap<(String, Uuid), KeptEntries>,
    /// A notice to show once the reopened record arrives.
    pub(super) pending_notice: Option<String>,
    /// When a record was last saved on this tablet: until a sync succeeds after it, the
    /// status bar cannot say "all synced".
    pub(super) last_save_utc: Option<chrono::DateTime<chrono::Utc>>,
    /// The number pad is on: carried from record to record while the app runs.
    pub(super) number_pad_on: bool,
    pub(super) timings: Timings,
    /// Results of connection work (enrolment, demo server, sync start-up).
    pub(super) connect_tx: std::sync::mpsc::Sender<connection::ConnectEvent>,
    pub(super) connect_rx: std::sync::mpsc::Receiver<connection::ConnectEvent>,
    /// The in-process demo server and what the demo panel shows, in demo mode.
    pub(super) demo: Option<(connection::SharedLocalServer, connection::DemoInfo)>,
    /// A one-off message above the record list (enrolment done, demo credentials, ...).
    pub(super) notice: Option<String>,
    /// The sync state the list was last refreshed for.
    pub(super) last_sync_seen: Option<SyncSeen>,
    /// Connection work in flight (enrolment, demo set-up, sync start, outage switch); each
    /// guard aborts its task when the app is dropped.
    pub(super) tasks: Vec<TaskGuard>,
    /// The one runtime all background work runs on (`None` only if it could not start).
    /// Last, so it is dropped after everything that holds one of its tasks.
    pub(super) background: Option<Background>,
}

/// (changes, queued, quarantined, returned): a change means the list's badges moved.
pub(super) type SyncSeen = (u64, u64, u64, u64);

impl EprApp {
    /// The app for `data_dir`. Reads only the small keyring file to choose between first run
    /// and unlock; the store itself is opened on the worker.
    pub fn new(data_dir: PathBuf, config: AppConfig) -> Self {
        let repaint: RepaintSignal = Arc::new(OnceLock::new());
        let worker = StoreWorker::start(data_dir.clone(), config.kdf, repaint.clone());
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
        // Only the starting value: from the first frame on, `logic_at` sets the time.
        let now = Instant::now();
        let background = Background::start();
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
        let (screen, background) = match background {
            Ok(b) => (screen, Some(b)),
            Err(e) => {
                tracing::error!("the background runtime could not start: {e}");
                (
                    Screen::Failed("The app could not start its background work.".to_owned()),
                    None,
                )
            }
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
            quick_pin_user: None,
            confirm_leave_demo: false,
            theme: saved
                .map(prefs::UiPrefs::theme)
                .unwrap_or(ThemeChoice::Light),
            styled_ctx: None,
            now,
            last_activity: now,
            resume_record: None,
            kept_entries: HashMap::new(),
            pending_notice: None,
            last_save_utc: None,
            number_pad_on: false,
            timings: Timings::default(),
            connect_tx,
            connect_rx,
            demo: None,
            notice: None,
            last_sync_seen: None,
            tasks: Vec::new(),
            background,
        }
    }

    /// Plugs in the sync engine. The status bar reads it from the next frame; it is kept
    /// across lock and unlock (sync keeps running while the screen is locked).
    pub fn attach_sync(&mut self, handle: SyncHandle) {
        self.sync = Some(handle);
    }

    /// A handle to the app's runtime, to spawn background work on.
    pub(super) fn runtime(&self) -> Option<tokio::runtime::Handle> {
        self.background.as_ref().and_then(Background::handle)
    }

    /// The attached sync engine, if any.
    pub fn sync_handle(&self) -> Option<&SyncHandle> {
        self.sync.as_ref()
    }

    /// The status bar's headline as drawn this frame ("Offline · 1 queued"), when a sync
    /// engine is attached (tests read it).
    pub fn status_banner(&self) -> Option<String> {
        self.status_view().engine.map(|s| s.banner())
    }

    /// The demo server's address, in demo mode (tests read it).
    pub fn status_demo_url(&self) -> Option<String> {
        self.demo.as_ref().map(|(_, info)| info.server_url.clone())
    }

    /// The demo supervisor's password, in demo mode (tests check where it is shown).
    pub fn demo_supervisor_password(&self) -> Option<String> {
        self.demo
            .as_ref()
            .map(|(_, info)| info.supervisor_password.clone())
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

    /// When the next debounce timer fires (autosave of the open record, the NHS-number
    /// search), on the clock given to `logic_at`. Tests advance their clock to it.
    pub fn next_timer_due(&self) -> Option<Instant> {
        let autosave = self.editor().and_then(|ed| {
            let (quiet, max_wait) = (self.config.autosave_quiet, self.config.autosave_max_wait);
            ed.save
                .time_until_due(self.now, quiet, max_wait)
                .map(|d| self.now + d)
        });
        match (autosave, self.list.nhs_query_due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Connection tasks still running (enrolment, demo set-up, sync start, outage switch).
    pub fn background_tasks(&self) -> usize {
        self.tasks.iter().filter(|t| !t.is_finished()).count()
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
    pub(super) fn refresh_list(&mut self) {
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
        self.worker.send(StoreRequest::Shift);
        self.schedule_nhs_search(self.now);
    }

    /// Debounces the store query for NHS-number digits in the search.
    pub(super) fn schedule_nhs_search(&mut self, now: Instant) {
        // Once every summary is in memory (NHS numbers included) the search needs no query.
        self.list.nhs_query_due = if self.list.complete {
            None
        } else {
            list::nhs_digits(&self.list.search).map(|_| now + NHS_SEARCH_DEBOUNCE)
        };
    }

    /// Sends the open record's unsaved edits to the store now.
    pub(super) fn flush_editor(&mut self) {
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
        self.keep_entries();
        self.resume_record = match &self.screen {
            Screen::Editor(ed) if !ed.is_new || ed.save.in_flight > 0 => Some(ed.id()),
            _ => None,
        };
        self.worker.send(StoreRequest::Lock);
        self.list.clear();
        self.user = None;
        self.screen = Screen::Unlock(self.unlock_form(notice));
    }

    /// The unlock form: for the PIN when a quick PIN is held for the last user.
    pub(super) fn unlock_form(&self, notice: Option<String>) -> UnlockForm {
        let mut form = UnlockForm::new(self.users.clone());
        if let Some(user) = &self.quick_pin_user {
            form.user = user.clone();
            form.pin_mode = true;
        }
        form.notice = notice;
        form
    }

    /// Keeps what the crew typed into the open record's "add" forms but did not add yet, so
    /// leaving the record or the idle lock loses nothing (see [`KeptEntries`]).
    pub(super) fn keep_entries(&mut self) {
        let (Screen::Editor(ed), Some(user)) = (&self.screen, &self.user) else {
            return;
        };
        let key = (user.clone(), ed.id());
        let kept = KeptEntries {
            obs: ed.obs.clone(),
            drug: ed.forms.drug.clone(),
            intervention: ed.forms.intervention.clone(),
        };
        if kept.is_blank() {
            self.kept_entries.remove(&key);
        } else {
            self.kept_entries.insert(key, kept);
        }
    }

    /// Puts back what was kept for this user and record, if anything; true when it did.
    pub(super) fn restore_entries(&mut self, ed: &mut EditorState) -> bool {
        let Some(user) = &self.user else {
            return false;
        };
        match self.kept_entries.remove(&(user.clone(), ed.id())) {
            Some(kept) => {
                ed.obs = kept.obs;
                ed.obs.removing = None;
                ed.forms.drug = kept.drug;
                ed.forms.intervention = kept.intervention;
                true
            }
            None => false,
        }
    }

    /// Saves pending edits and waits for the worker to finish everything queued. Called
    /// when the window closes.
    pub fn shutdown(&mut self) {
        self.flush_editor();
        self.worker.finish();
    }
}

/// Half-typed "add" forms of one record (see `EprApp::kept_entries`).
#[derive(Debug, Clone)]
pub(super) struct KeptEntries {
    obs: ObsEntry,
    drug: DrugForm,
    intervention: InterventionForm,
}

impl KeptEntries {
    fn is_blank(&self) -> bool {
        !self.obs.has_typed() && self.drug.is_blank() && self.intervention.is_blank()
    }
}

/// Closing the window calls [`EprApp::shutdown`] from `on_exit`, but not every way an app
/// ends goes through it (some windowing shutdowns, a test harness): the editor's unsent edits
/// are flushed to the worker and the worker drained here too. Shutting down twice is harmless.
impl Drop for EprApp {
    fn drop(&mut self) {
        self.shutdown();
    }
}

pub(super) fn send_save(worker: &mut StoreWorker, ed: &mut EditorState) {
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
