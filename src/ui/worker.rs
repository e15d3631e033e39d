//! The store worker: the one thread that owns the unlocked [`Store`] for the window.
//!
//! Owns: creating and unlocking the store (Argon2id key derivation runs here, never on the
//! UI thread), the crew's quick PIN for the shift (the key sealed under it, in this thread's
//! memory only), every read and write the screens need, and dropping the store (and with it
//! the key) on lock. Screens never touch the store: the app sends [`StoreRequest`]s and receives
//! [`StoreReply`]s over a channel; after each reply the worker asks egui for a repaint.
//! Requests are handled strictly in order, so an autosave sent before "sign" is committed
//! before the signature. Dropping the [`StoreWorker`] closes the channel and waits for the
//! thread to finish what is queued, so no acknowledged edit is lost when the window closes.
//!
//! Replies carry a [`StoreProblem`], never a raw [`StoreError`]: the worker maps each error
//! once, here, and the mapping writes the detail to the log.

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::crypto::{KdfParams, SecretText, WrappedKey};
use uuid::Uuid;

use super::connection::ConnectionPurpose;
use super::export::{ExportFormat, export_to_folder};
use super::prefs::{self, UiPrefs};
use super::problem::StoreProblem;
use crate::model::{Decision, Encounter, Revision};
use crate::store::audit::Action;
use crate::store::{
    EncounterSummary, FeedbackEntry, ListFilter, SaveReceipt, StatusCounts, Store, StoreError,
    SyncState, VersionInfo,
};

/// What the app asks of the store.
pub enum StoreRequest {
    /// First run: create the store and its first user (runs key derivation).
    Create {
        user: String,
        passphrase: SecretText,
    },
    /// Unlock for `user` with the passphrase (runs key derivation). With `quick_pin`, the
    /// key is also sealed under that PIN in this process's memory, for [`Self::UnlockWithPin`]
    /// after an idle lock; without, any quick PIN is forgotten.
    Unlock {
        user: String,
        passphrase: SecretText,
        quick_pin: Option<SecretText>,
    },
    /// Re-unlock with the quick PIN set at the last passphrase unlock.
    UnlockWithPin { user: String, pin: SecretText },
    /// Drop the store and its key. Queued saves before this still commit.
    Lock,
    /// Encounter summaries. `generation` lets the app ignore out-of-date answers.
    List {
        filter: ListFilter,
        generation: u64,
        purpose: ListPurpose,
    },
    /// Counts for the status bar (a scan of the whole table: asked for after the list).
    Counts,
    /// Everything the editor needs about one record.
    Open { id: Uuid },
    /// Autosave of a draft.
    SaveDraft(Box<Encounter>),
    /// Autosave of an amendment in progress (kept locally, never pushed).
    SaveAmendmentDraft(Box<Encounter>),
    /// "Complete and sign".
    Sign {
        encounter: Box<Encounter>,
        clinician_name: String,
        registration: String,
    },
    /// Sign an amendment of a completed record.
    Amend {
        encounter: Box<Encounter>,
        reason: String,
        clinician_name: String,
        registration: String,
    },
    /// One earlier version, to view read-only.
    Version { id: Uuid, revision: Revision },
    /// Audit a removal the crew confirmed in the editor (errors go to the log only).
    AuditRemoval { id: Uuid, action: Action },
    /// Throw away the unsigned amendment of a signed record (errors go to the log only:
    /// reopening shows the amendment kept).
    DiscardAmendment { id: Uuid },
    /// Save one version's handover document into `folder` and audit the export.
    Export {
        id: Uuid,
        revision: Option<Revision>,
        format: ExportFormat,
        folder: String,
    },
    /// One-tap answers from the crew's recent records other than the record in hand.
    RecentChoices { for_record: Uuid },
    /// Remember the theme and idle time (a small file beside the store, written here so the
    /// UI thread never touches the disk).
    SavePrefs(UiPrefs),
    /// Open a second connection to the unlocked store (no key derivation again) and hand it
    /// back, for work that runs beside the worker: enrolment, the demo set-up, the sync engine.
    OpenSecondConnection(ConnectionPurpose),
    /// Leaving demo mode: close the store and delete it, its keyring and the demo server's
    /// database, so the tablet starts again at first run. Refused unless the open store is a
    /// demo store. The app stops sync and the demo server first.
    DeleteDemo,
    /// The crew on shift and the staff who may sign in (from the reference data in use).
    Shift,
    /// Sign a crew member on to the shift with their own passphrase (key derivation).
    SignInCrew {
        member: crate::store::shift::ShiftMember,
        passphrase: SecretText,
    },
    /// Sign the user who unlocked the tablet on to the shift.
    JoinShift(crate::store::shift::ShiftMember),
    /// Clear the crew on shift.
    EndShift,
}

/// The shift as the records screen shows it.
#[derive(Debug, Clone, Default)]
pub struct ShiftView {
    pub shift: crate::store::shift::Shift,
    pub staff: Vec<crate::model::reference::StaffMember>,
}

/// A record as the editor opens it.
#[derive(Debug, Clone)]
pub struct RecordBundle {
    pub encounter: Encounter,
    /// Unsigned edits to a signed record, if an amendment was started earlier.
    pub amendment_draft: Option<Encounter>,
    pub versions: Vec<VersionInfo>,
    /// The latest supervisor decision and comment.
    pub review: Option<(Decision, String)>,
    pub feedback: Vec<FeedbackEntry>,
    pub sync_state: Option<SyncState>,
}

/// Why a list was asked for; echoed in the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListPurpose {
    /// The newest few rows, to draw something at once after unlock.
    FirstPage,
    /// Every summary, held in memory for scrolling and searching.
    All,
    /// Records whose NHS number (or name or incident) matches typed digits.
    NhsSearch,
}

/// Summaries from the store.
#[derive(Debug, Clone)]
pub struct ListResult {
    pub rows: Vec<EncounterSummary>,
    /// How long the query took on the worker, for the benchmark.
    pub query_duration: Duration,
}

/// What the worker answers.
pub enum StoreReply {
    /// The store was created or unlocked; carries the user's name.
    Opened {
        created: bool,
        result: Result<String, StoreProblem>,
        /// Time spent in create/unlock (mostly key derivation).
        duration: Duration,
        /// Whether a quick PIN is now held in memory for this user.
        quick_pin: bool,
    },
    /// The quick PIN was wrong. At zero attempts left it has been forgotten: the passphrase
    /// is needed.
    PinRefused {
        attempts_left: u32,
    },
    Locked,
    Listed {
        generation: u64,
        purpose: ListPurpose,
        result: Result<ListResult, StoreProblem>,
    },
    Counts(Result<(StatusCounts, Option<chrono::DateTime<chrono::Utc>>), StoreProblem>),
    Record(Result<Box<RecordBundle>, StoreProblem>),
    Saved {
        record_id: Uuid,
        result: Result<Option<SaveReceipt>, StoreProblem>,
    },
    Signed {
        record_id: Uuid,
        result: Result<SaveReceipt, StoreProblem>,
    },
    Version {
        revision: Revision,
        result: Result<Box<Encounter>, StoreProblem>,
    },
    AmendmentDiscarded,
    Audited,
    /// The file written, or what went wrong in words for the crew.
    Exported(Result<PathBuf, String>),
    PrefsSaved,
    /// One-tap answers from recent records, and the reference data in use, for the record
    /// `for_record`.
    RecentChoices {
        for_record: Uuid,
        result: Result<crate::store::RecentChoices, StoreProblem>,
        reference: Result<crate::store::reference::ActiveReference, StoreProblem>,
    },
    /// The demo was deleted, or why not (in words).
    DemoDeleted(Result<(), String>),
    /// The crew on shift, with the staff list (after any shift request); a refused sign-in
    /// carries its problem.
    Shift(Result<ShiftView, StoreProblem>),
    /// A second store connection (boxed: the store is large), with what it was asked for.
    SecondConnection {
        purpose: ConnectionPurpose,
        result: Result<Box<Store>, StoreProblem>,
    },
}

/// Where the worker finds the egui context to wake the window. Set by the app on its first
/// frame, so the app can be built before a window (or a test harness) exists.
pub type RepaintSignal = Arc<OnceLock<egui::Context>>;

/// The app's end of the worker thread.
pub struct StoreWorker {
    requests: Option<mpsc::Sender<StoreRequest>>,
    replies: mpsc::Receiver<StoreReply>,
    thread: Option<JoinHandle<()>>,
    in_flight: usize,
}

impl StoreWorker {
    /// Starts the worker thread for the store in `data_dir`, deriving keys at `kdf` cost.
    pub fn start(data_dir: PathBuf, kdf: KdfParams, repaint: RepaintSignal) -> Self {
        let (req_tx, req_rx) = mpsc::channel::<StoreRequest>();
        let (rep_tx, rep_rx) = mpsc::channel::<StoreReply>();
        let thread = std::thread::Builder::new()
            .name("epr-store".to_owned())
            .spawn(move || run(data_dir, kdf, req_rx, rep_tx, repaint))
            .ok();
        Self {
            requests: Some(req_tx),
            replies: rep_rx,
            thread,
            in_flight: 0,
        }
    }

    /// Queues a request. If the thread could not start, the failure shows as an error reply.
    pub fn send(&mut self, request: StoreRequest) {
        let sent = self
            .requests
            .as_ref()
            .is_some_and(|tx| tx.send(request).is_ok());
        if sent {
            self.in_flight += 1;
        } else {
            tracing::error!("the store worker is not running");
        }
    }

    /// The next reply, if one has arrived (never blocks).
    pub fn try_recv(&mut self) -> Option<StoreReply> {
        let reply = self.replies.try_recv().ok()?;
        self.in_flight = self.in_flight.saturating_sub(1);
        Some(reply)
    }

    /// Requests sent and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// True when the worker thread is running.
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }
}

impl StoreWorker {
    /// Closes the channel and waits until everything queued has been handled (the window is
    /// closing). Later requests are refused.
    pub fn finish(&mut self) {
        self.requests = None;
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("the store worker stopped abnormally");
        }
    }
}

impl Drop for StoreWorker {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Wrong quick PINs allowed before the passphrase is needed again.
pub const QUICK_PIN_ATTEMPTS: u32 = 5;

/// A quick PIN is 4 to 8 digits.
pub fn is_quick_pin(pin: &str) -> bool {
    (4..=8).contains(&pin.chars().count()) && pin.chars().all(|c| c.is_ascii_digit())
}

/// The crew's quick PIN for this shift: the database key sealed under the PIN, held in this
/// thread's memory only. Never written anywhere; gone when the app stops or after
/// [`QUICK_PIN_ATTEMPTS`] wrong tries.
struct QuickPin {
    user: String,
    sealed: WrappedKey,
    /// The user's own signing key, sealed under the same PIN.
    signer: Option<crate::crypto::SealedSigner>,
    wrong: u32,
}

/// What the worker thread holds between requests.
struct WorkerState {
    store: Option<Store>,
    quick_pin: Option<QuickPin>,
    /// Key-derivation cost for new stores, re-sealing on unlock and the quick PIN.
    kdf: KdfParams,
}

fn run(
    data_dir: PathBuf,
    kdf: KdfParams,
    requests: mpsc::Receiver<StoreRequest>,
    replies: mpsc::Sender<StoreReply>,
    repaint: RepaintSignal,
) {
    let mut state = WorkerState {
        store: None,
        quick_pin: None,
        kdf,
    };
    while let Ok(request) = requests.recv() {
        let reply = handle(&data_dir, &mut state, request);
        if replies.send(reply).is_err() {
            break;
        }
        if let Some(ctx) = repaint.get() {
            ctx.request_repaint();
        }
    }
}

fn locked() -> StoreError {
    // The screens only send record requests while unlocked; this is a safety net.
    StoreError::Locked
}

/// The one place a store error becomes what the screen shows (and the log records).
fn shift_view(store: &Store) -> Result<ShiftView, StoreError> {
    Ok(ShiftView {
        shift: store.shift(chrono::Utc::now())?,
        // Only a trust's own staff list names the people who sign in; never the sample's.
        staff: match crate::sync::integrity::reference_in_use(store)? {
            r if r.source == crate::store::reference::ReferenceSource::Server => r.data.staff,
            _ => Vec::new(),
        },
    })
}

fn shown<T>(result: Result<T, StoreError>) -> Result<T, StoreProblem> {
    result.map_err(StoreProblem::report)
}

/// Seals the unlocked store's key under `pin`, in memory.
fn seal_quick_pin(store: &Store, pin: &str, kdf: KdfParams) -> Option<QuickPin> {
    if !is_quick_pin(pin) {
        return None;
    }
    let owner = format!("quick-pin:{}", store.user());
    let sealed = store
        .database_key()
        .map_err(StoreProblem::report)
        .and_then(|key| {
            let seal = || -> Result<_, crate::crypto::KeyError> {
                let (sealed, secret) = WrappedKey::wrap_with_secret(key, pin, kdf, &owner)?;
                let signer = store
                    .signer()
                    .map(|s| s.seal(&secret, &owner))
                    .transpose()?;
                Ok((sealed, signer))
            };
            seal().map_err(|e| StoreProblem::report(StoreError::Key(e)))
        });
    match sealed {
        Ok((sealed, signer)) => Some(QuickPin {
            user: store.user().to_owned(),
            sealed,
            signer,
            wrong: 0,
        }),
        Err(e) => {
            tracing::warn!(error = %e, "the quick PIN could not be set");
            None
        }
    }
}

/// The answer to a create or unlock: an opened store is kept and its user named.
fn opened(
    store: &mut Option<Store>,
    created: bool,
    result: Result<Store, StoreError>,
    duration: Duration,
    quick_pin: bool,
) -> StoreReply {
    StoreReply::Opened {
        created,
        result: shown(result.map(|s| {
            let name = s.user().to_owned();
            *store = Some(s);
            name
        })),
        duration,
        quick_pin,
    }
}

fn handle(
    data_dir: &std::path::Path,
    state: &mut WorkerState,
    request: StoreRequest,
) -> StoreReply {
    let kdf = state.kdf;
    let store = &mut state.store;
    match request {
        StoreRequest::Create { user, passphrase } => {
            let start = Instant::now();
            let result = Store::create_with(
                data_dir,
                &user,
                &passphrase,
                kdf,
                crate::store::migrate::latest_version(),
            );
            drop(passphrase);
            state.quick_pin = None;
            opened(store, true, result, start.elapsed(), false)
        }
        StoreRequest::Unlock {
            user,
            passphrase,
            quick_pin,
        } => {
            let start = Instant::now();
            *store = None;
            let result = Store::unlock_with_policy(data_dir, Some(&user), &passphrase, kdf);
            drop(passphrase);
            // A passphrase unlock replaces the quick PIN (or, without one, forgets it); a
            // failed attempt leaves it as it was.
            if let Ok(s) = &result {
                state.quick_pin = quick_pin
                    .as_deref()
                    .and_then(|pin| seal_quick_pin(s, pin, kdf));
            }
            drop(quick_pin);
            let has_pin = state.quick_pin.is_some();
            opened(store, false, result, start.elapsed(), has_pin)
        }
        StoreRequest::UnlockWithPin { user, pin } => {
            let start = Instant::now();
            *store = None;
            let Some(quick) = state.quick_pin.as_mut().filter(|q| q.user == user) else {
                return StoreReply::PinRefused { attempts_left: 0 };
            };
            let owner = format!("quick-pin:{user}");
            let (key, secret) = match quick.sealed.open(&pin, &owner) {
                Ok(opened) => opened,
                Err(_) => {
                    quick.wrong += 1;
                    let attempts_left = QUICK_PIN_ATTEMPTS.saturating_sub(quick.wrong);
                    if attempts_left == 0 {
                        state.quick_pin = None;
                    }
                    return StoreReply::PinRefused { attempts_left };
                }
            };
            quick.wrong = 0;
            drop(pin);
            let signer = quick
                .signer
                .as_ref()
                .and_then(|s| s.open(&secret, &owner).ok());
            drop(secret);
            let result = Store::open_with_key(data_dir, &user, key, signer);
            opened(store, false, result, start.elapsed(), true)
        }
        StoreRequest::Lock => {
            *store = None;
            StoreReply::Locked
        }
        StoreRequest::List {
            filter,
            generation,
            purpose,
        } => {
            let result = match store.as_ref() {
                Some(s) => list(s, &filter),
                None => Err(locked()),
            };
            StoreReply::Listed {
                generation,
                purpose,
                result: shown(result),
            }
        }
        StoreRequest::Counts => StoreReply::Counts(shown(match store.as_ref() {
            Some(s) => s
                .status_counts()
                .and_then(|c| s.last_sync().map(|t| (c, t))),
            None => Err(locked()),
        })),
        StoreRequest::Open { id } => StoreReply::Record(shown(match store.as_mut() {
            Some(s) => open(s, id).map(Box::new),
            None => Err(locked()),
        })),
        StoreRequest::SaveDraft(e) => StoreReply::Saved {
            record_id: e.id,
            result: shown(match store.as_mut() {
                Some(s) => s.save_draft(&e).map(Some),
                None => Err(locked()),
            }),
        },
        StoreRequest::SaveAmendmentDraft(e) => StoreReply::Saved {
            record_id: e.id,
            result: shown(match store.as_mut() {
                Some(s) => s.save_amendment_draft(&e).map(|()| None),
                None => Err(locked()),
            }),
        },
        StoreRequest::Sign {
            encounter,
            clinician_name,
            registration,
        } => StoreReply::Signed {
            record_id: encounter.id,
            result: shown(match store.as_mut() {
                Some(s) => s.complete_and_sign(&encounter, &clinician_name, &registration),
                None => Err(locked()),
            }),
        },
        StoreRequest::Amend {
            encounter,
            reason,
            clinician_name,
            registration,
        } => StoreReply::Signed {
            record_id: encounter.id,
            result: shown(match store.as_mut() {
                Some(s) => s.amend(&encounter, &reason, &clinician_name, &registration),
                None => Err(locked()),
            }),
        },
        StoreRequest::Version { id, revision } => StoreReply::Version {
            revision,
            result: shown(match store.as_ref() {
                Some(s) => s.version(id, revision).map(Box::new),
                None => Err(locked()),
            }),
        },
        StoreRequest::AuditRemoval { id, action } => {
            let result = match store.as_mut() {
                Some(s) => s.record_access(action, id),
                None => Err(locked()),
            };
            let _ = shown(result);
            StoreReply::Audited
        }
        StoreRequest::DiscardAmendment { id } => {
            let result = match store.as_mut() {
                Some(s) => s.discard_amendment_draft(id),
                None => Err(locked()),
            };
            // Reported to the log only; reopening shows the amendment kept.
            let _ = shown(result);
            StoreReply::AmendmentDiscarded
        }
        StoreRequest::Export {
            id,
            revision,
            format,
            folder,
        } => StoreReply::Exported(match store.as_mut() {
            Some(s) => export_to_folder(s, id, revision, format, &folder),
            None => Err(StoreProblem::Locked.to_string()),
        }),
        StoreRequest::RecentChoices { for_record } => StoreReply::RecentChoices {
            for_record,
            result: shown(match store.as_ref() {
                Some(s) => s.recent_choices(chrono::Utc::now(), Some(for_record)),
                None => Err(locked()),
            }),
            reference: shown(match store.as_ref() {
                Some(s) => crate::sync::integrity::reference_in_use(s),
                None => Err(locked()),
            }),
        },
        StoreRequest::SavePrefs(p) => {
            prefs::save(data_dir, p);
            StoreReply::PrefsSaved
        }
        StoreRequest::OpenSecondConnection(purpose) => StoreReply::SecondConnection {
            purpose,
            result: shown(match store.as_ref() {
                Some(s) => s.open_another().map(Box::new),
                None => Err(locked()),
            }),
        },
        StoreRequest::Shift => StoreReply::Shift(shown(match store.as_ref() {
            Some(s) => shift_view(s),
            None => Err(locked()),
        })),
        StoreRequest::SignInCrew { member, passphrase } => {
            StoreReply::Shift(shown(match store.as_mut() {
                Some(s) => s
                    .sign_in_crew(member, &passphrase, chrono::Utc::now())
                    .and_then(|_| shift_view(s)),
                None => Err(locked()),
            }))
        }
        StoreRequest::JoinShift(member) => StoreReply::Shift(shown(match store.as_mut() {
            Some(s) => s
                .join_shift(member, chrono::Utc::now())
                .and_then(|_| shift_view(s)),
            None => Err(locked()),
        })),
        StoreRequest::EndShift => StoreReply::Shift(shown(match store.as_mut() {
            Some(s) => s.end_shift().and_then(|()| shift_view(s)),
            None => Err(locked()),
        })),
        StoreRequest::DeleteDemo => {
            let is_demo = match store.as_ref() {
                Some(s) => shown(s.setting(crate::sync::engine::DEMO_PORT)).map(|p| p.is_some()),
                None => Err(StoreProblem::Locked),
            };
            StoreReply::DemoDeleted(match is_demo {
                Ok(true) => {
                    *store = None;
                    state.quick_pin = None;
                    delete_demo_files(data_dir)
                }
                Ok(false) => Err("this store is not a demo store; nothing was deleted".to_owned()),
                Err(e) => Err(e.to_string()),
            })
        }
    }
}

/// Deletes the demo server's database, then the store, then the keyring (last, so a failure
/// part-way never leaves a store without its keyring). Files already gone are fine.
fn delete_demo_files(data_dir: &std::path::Path) -> Result<(), String> {
    let store = crate::store::store_path(data_dir);
    let with_suffix = |p: &std::path::Path, suffix: &str| {
        let mut s = p.as_os_str().to_owned();
        s.push(suffix);
        PathBuf::from(s)
    };
    let mut doomed = Vec::new();
    #[cfg(feature = "server")]
    {
        let demo_db = data_dir.join(crate::local_server::DEMO_DB_FILE);
        doomed.extend([
            with_suffix(&demo_db, "-wal"),
            with_suffix(&demo_db, "-shm"),
            crate::local_server::demo_key_path(data_dir),
            demo_db,
        ]);
    }
    doomed.extend([
        with_suffix(&store, "-wal"),
        with_suffix(&store, "-shm"),
        store,
        crate::store::keyring_path(data_dir),
    ]);
    for path in doomed {
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
                return Err(format!(
                    "the demo could not be fully deleted ({}: {e}); close the app and delete its data directory",
                    name.unwrap_or_default()
                ));
            }
        }
    }
    Ok(())
}

fn list(store: &Store, filter: &ListFilter) -> Result<ListResult, StoreError> {
    let start = Instant::now();
    let rows = store.list(filter)?;
    Ok(ListResult {
        rows,
        query_duration: start.elapsed(),
    })
}

fn open(store: &mut Store, id: Uuid) -> Result<RecordBundle, StoreError> {
    let encounter = store.get(id)?;
    store.record_access(Action::Viewed, id)?;
    Ok(RecordBundle {
        amendment_draft: store.amendment_draft(id)?,
        versions: store.versions(id)?,
        review: store.review_of(id)?,
        feedback: store.feedback_for(id)?,
        sync_state: store.summary(id).ok().map(|s| s.sync_state),
        encounter,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn state() -> WorkerState {
        WorkerState {
            store: None,
            quick_pin: None,
            kdf: KdfParams::FAST_FOR_TESTS,
        }
    }

    fn signed(dir: &std::path::Path, state: &mut WorkerState) -> Result<SaveReceipt, StoreProblem> {
        let mut e = crate::demo::complete_encounter();
        e.id = Uuid::now_v7();
        match handle(
            dir,
            state,
            StoreRequest::Sign {
                encounter: Box::new(e),
                clinician_name: "A. Paramedic".into(),
                registration: "PA1".into(),
            },
        ) {
            StoreReply::Signed { result, .. } => result,
            _ => panic!("a sign request answers Signed"),
        }
    }

    /// At 3 a.m. after the idle lock, the quick PIN must bring back the clinician's own
    /// signing key with the store key: a record completed then is signed, by them.
    #[test]
    fn after_the_idle_lock_the_quick_pin_still_signs_as_the_same_clinician() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = state();
        let passphrase = "heron pebble maple drift";
        handle(
            dir.path(),
            &mut state,
            StoreRequest::Create {
                user: "crew".into(),
                passphrase: passphrase.into(),
            },
        );
        handle(dir.path(), &mut state, StoreRequest::Lock);
        handle(
            dir.path(),
            &mut state,
            StoreRequest::Unlock {
                user: "crew".into(),
                passphrase: passphrase.into(),
                quick_pin: Some("97531".into()),
            },
        );
        let clinician = state.store.as_ref().unwrap().signer().unwrap().user_id();
        signed(dir.path(), &mut state).unwrap();

        handle(dir.path(), &mut state, StoreRequest::Lock);
        assert!(matches!(
            handle(
                dir.path(),
                &mut state,
                StoreRequest::UnlockWithPin {
                    user: "crew".into(),
                    pin: "97531".into(),
                },
            ),
            StoreReply::Opened { result: Ok(_), .. }
        ));
        assert_eq!(
            state.store.as_ref().unwrap().signer().map(|s| s.user_id()),
            Some(clinician)
        );
        let receipt = signed(dir.path(), &mut state).unwrap();
        let versions = state
            .store
            .as_ref()
            .unwrap()
            .versions(receipt.record_id)
            .unwrap();
        assert_eq!(versions[0].signer_user_id, Some(clinician));
    }
}
