//! Commands: what screens ask for, and [`EprApp::apply`], the one place they are carried out.
//!
//! Owns: the [`Command`] enum (whose `Debug` never shows a passphrase or patient text), the
//! first-run [`ConnectRequest`], and the requests a command turns into (store requests,
//! sync commands, connection work). Never draws and never waits.

use crate::model::Revision;
use std::sync::Arc;
use std::time::Duration;

use crate::crypto::SecretText;
use uuid::Uuid;

use super::state::{EprApp, Screen};
use crate::sync::SyncCommand;
use crate::ui::connection::ConnectionPurpose;
use crate::ui::editor::EditorState;
use crate::ui::theme::ThemeChoice;
use crate::ui::unlock::{FirstRunForm, UnlockForm};
use crate::ui::worker::StoreRequest;
use crate::ui::{connection, prefs, review};

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
pub use crate::ui::export::ExportFormat;

/// What screens ask for; carried out by [`EprApp::apply`]. Its `Debug` never shows a
/// passphrase.
#[derive(Clone, PartialEq, Eq)]
pub enum Command {
    CreateStore {
        user: String,
        passphrase: SecretText,
    },
    /// Unlock with the passphrase; `quick_pin` (4 to 8 digits) is kept in memory for
    /// re-unlocking after an idle lock during this shift.
    Unlock {
        user: String,
        passphrase: SecretText,
        quick_pin: Option<SecretText>,
    },
    /// Re-unlock with the quick PIN.
    UnlockWithPin {
        user: String,
        pin: SecretText,
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
    OpenVersion(Revision),
    /// The crew confirmed removing a set, drug or intervention from the open record.
    AuditRemoval(crate::store::audit::Action),
    CloseVersion,
    SyncNow,
    ToggleTheme,
    SetIdleLock(Duration),
    /// Demo mode: stop (`true`) or restart (`false`) the in-process server.
    SimulateOutage(bool),
    /// Demo mode: show (`true`) or hide the "leave the demo" confirmation.
    ConfirmLeaveDemo(bool),
    /// Demo mode, confirmed: stop sync and the demo server, delete the demo store and the
    /// demo server's database, and start again at first run.
    LeaveDemo,
    /// Save the open record's handover document into `folder` (a given version, or the
    /// latest saved one).
    Export {
        format: ExportFormat,
        folder: String,
        revision: Option<Revision>,
    },
    DismissNotice,
    /// Open the supervisor sign-in (from the unlock or first-run screen).
    OpenReview,
    /// A command from the review pages.
    Review(review::ReviewCommand),
    /// Sign a crew member on to the shift with their own passphrase.
    SignInCrew {
        member: crate::store::shift::ShiftMember,
        passphrase: SecretText,
    },
    /// Sign the unlocked user on to the shift.
    JoinShift(crate::store::shift::ShiftMember),
    EndShift,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::CreateStore { user, .. } => write!(f, "CreateStore({user:?}, ..)"),
            Command::Unlock { user, .. } => write!(f, "Unlock({user:?}, ..)"),
            Command::UnlockWithPin { user, .. } => write!(f, "UnlockWithPin({user:?}, ..)"),
            Command::Search(_) => write!(f, "Search(..)"),
            Command::Sign { .. } => write!(f, "Sign(..)"),
            Command::SignAmendment { .. } => write!(f, "SignAmendment(..)"),
            Command::Review(c) => write!(f, "Review({c:?})"),
            Command::SignInCrew { .. } => write!(f, "SignInCrew(..)"),
            other => {
                let name = match other {
                    Command::Lock => "Lock",
                    Command::Connect(_) => "Connect",
                    Command::WorkOffline => "WorkOffline",
                    Command::ConfirmLeaveDemo(_) => "ConfirmLeaveDemo",
                    Command::LeaveDemo => "LeaveDemo",
                    Command::NewRecord => "NewRecord",
                    Command::OpenRecord(_) => "OpenRecord",
                    Command::BackToList => "BackToList",
                    Command::StartAmendment => "StartAmendment",
                    Command::StopAmending => "StopAmending",
                    Command::DiscardAmendment => "DiscardAmendment",
                    Command::OpenVersion(_) => "OpenVersion",
                    Command::CloseVersion => "CloseVersion",
                    Command::AuditRemoval(_) => "AuditRemoval",
                    Command::SyncNow => "SyncNow",
                    Command::ToggleTheme => "ToggleTheme",
                    Command::SetIdleLock(_) => "SetIdleLock",
                    Command::SimulateOutage(_) => "SimulateOutage",
                    Command::Export { .. } => "Export",
                    Command::DismissNotice => "DismissNotice",
                    Command::OpenReview => "OpenReview",
                    Command::JoinShift(_) => "JoinShift",
                    Command::EndShift => "EndShift",
                    _ => "Command",
                };
                f.write_str(name)
            }
        }
    }
}

impl EprApp {
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
        self.worker.send(StoreRequest::OpenSecondConnection(
            ConnectionPurpose::Connect(request),
        ));
    }

    /// Saves the open record's handover document. Pending edits are saved first, so the file
    /// holds what is on screen; the work runs on the store worker, never the UI thread.
    pub(super) fn export(
        &mut self,
        format: ExportFormat,
        folder: String,
        revision: Option<Revision>,
    ) {
        let Some(id) = self.editor().map(EditorState::id) else {
            return;
        };
        self.flush_editor();
        self.worker.send(StoreRequest::Export {
            id,
            revision,
            format,
            folder,
        });
    }

    /// Remembers the theme and idle time (written on the worker thread, not the UI thread).
    pub(super) fn save_prefs(&mut self) {
        let p = prefs::UiPrefs {
            dark_theme: self.theme == ThemeChoice::Dark,
            idle_lock_minutes: self.config.idle_lock_after.as_secs().div_ceil(60),
        };
        self.worker.send(StoreRequest::SavePrefs(p));
    }

    /// A sender for connection events that wakes the window.
    pub(super) fn events(&self) -> connection::Events {
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
    pub(super) fn resume_sync(&mut self) {
        if self.sync.is_some() {
            return;
        }
        self.worker.send(StoreRequest::OpenSecondConnection(
            ConnectionPurpose::ResumeSync,
        ));
    }

    pub fn apply(&mut self, command: Command) {
        match command {
            Command::CreateStore { user, passphrase } => {
                self.worker.send(StoreRequest::Create { user, passphrase });
                self.screen = Screen::Working("Creating the encrypted store…");
            }
            Command::Unlock {
                user,
                passphrase,
                quick_pin,
            } => {
                self.worker.send(StoreRequest::Unlock {
                    user,
                    passphrase,
                    quick_pin,
                });
                self.screen = Screen::Working("Unlocking…");
            }
            Command::UnlockWithPin { user, pin } => {
                self.worker.send(StoreRequest::UnlockWithPin { user, pin });
                self.screen = Screen::Working("Unlocking…");
            }
            Command::Lock => self.lock(None),
            Command::ConfirmLeaveDemo(show) => self.confirm_leave_demo = show,
            Command::LeaveDemo => {
                self.confirm_leave_demo = false;
                // Sync and the demo server hold their own connections: both stop first.
                self.sync = None;
                self.demo = None;
                self.notice = None;
                self.list.clear();
                self.worker.send(StoreRequest::DeleteDemo);
                self.screen = Screen::Working("Deleting the demo…");
            }
            Command::Connect(request) => self.connect(request),
            Command::SimulateOutage(outage) => {
                // Only a build with the in-process demo server has an outage to simulate.
                #[cfg(feature = "server")]
                {
                    let events = self.events();
                    if let Some(runtime) = self.runtime()
                        && let Some((server, info)) = &mut self.demo
                    {
                        info.server_running = !outage;
                        let task = connection::set_demo_server_running(
                            &runtime,
                            server.clone(),
                            !outage,
                            events,
                        );
                        self.tasks.push(task);
                    }
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
                self.schedule_nhs_search(self.now);
            }
            Command::SignInCrew { member, passphrase } => {
                self.worker
                    .send(StoreRequest::SignInCrew { member, passphrase });
            }
            Command::JoinShift(member) => {
                self.list.shift.busy = true;
                self.worker.send(StoreRequest::JoinShift(member));
            }
            Command::EndShift => {
                self.worker.send(StoreRequest::EndShift);
            }
            Command::NewRecord => {
                let user = self.user.clone().unwrap_or_default();
                let mut ed = EditorState::new_record(&user);
                // The crew signed in on this tablet crews the new record.
                ed.doc.crew = self.list.shift.shift.crew();
                self.worker.send(StoreRequest::RecentChoices {
                    for_record: ed.id(),
                });
                self.screen = Screen::Editor(Box::new(ed));
            }
            Command::OpenRecord(id) => {
                self.flush_editor();
                self.worker.send(StoreRequest::Open { id });
            }
            Command::BackToList => {
                self.flush_editor();
                self.keep_entries();
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
                // by the request, which runs after it on the worker.
                if let Screen::Editor(ed) = &mut self.screen {
                    ed.save = Default::default();
                    let id = ed.id();
                    self.worker.send(StoreRequest::DiscardAmendment { id });
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
            Command::AuditRemoval(action) => {
                if let Screen::Editor(ed) = &self.screen {
                    let id = ed.id();
                    self.worker.send(StoreRequest::AuditRemoval { id, action });
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
                if self.user.is_none()
                    && let Some(runtime) = self.runtime()
                {
                    self.screen = Screen::Review(Box::new(review::ReviewScreen::new(
                        &self.data_dir,
                        self.repaint.clone(),
                        &runtime,
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::unlock::{FirstRunForm, UnlockForm};

    #[test]
    fn debug_output_never_shows_a_passphrase() {
        let c = Command::Unlock {
            user: "alex".into(),
            passphrase: "secret-2468".into(),
            quick_pin: Some("97531".into()),
        };
        assert!(!format!("{c:?}").contains("secret-2468"));
        assert!(!format!("{c:?}").contains("97531"));
        let c = Command::UnlockWithPin {
            user: "alex".into(),
            pin: "97531".into(),
        };
        assert!(!format!("{c:?}").contains("97531"));
        let form = UnlockForm {
            passphrase: "secret-2468".into(),
            quick_pin: "97531".into(),
            pin: "97531".into(),
            ..UnlockForm::default()
        };
        assert!(!format!("{form:?}").contains("97531"));
        assert!(!format!("{form:?}").contains("secret-2468"));
        let form = FirstRunForm {
            passphrase: "secret-2468".into(),
            confirm: "secret-2468".into(),
            ..FirstRunForm::default()
        };
        assert!(!format!("{form:?}").contains("secret-2468"));
    }
}
