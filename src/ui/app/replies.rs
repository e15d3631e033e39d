//! Replies: what comes back from background work (the store worker's [`StoreReply`]s and
//! connection events) and how each one changes the app's state.
//!
//! Owns: the mapping from an answer to a screen change. Out-of-date answers (an older list
//! generation, a record no longer open, a reply after lock) are dropped here.

use std::time::Instant;

use super::commands::ConnectRequest;
use super::state::{EprApp, Screen};
use crate::store::Store;
use crate::sync::SyncCommand;
use crate::ui::connection::ConnectionPurpose;
use crate::ui::editor::{EditMode, EditorState, Forms, VersionView};
use crate::ui::problem::StoreProblem;
use crate::ui::unlock::{ConnectForm, FirstRunForm, UnlockForm};
use crate::ui::worker::{ListPurpose, StoreReply, StoreRequest};
use crate::ui::{connection, widgets};

impl EprApp {
    pub(super) fn handle_reply(&mut self, reply: StoreReply) {
        match reply {
            StoreReply::Opened {
                created,
                result,
                duration,
                quick_pin,
            } => match result {
                Ok(user) => {
                    self.quick_pin_user = quick_pin.then(|| user.clone());
                    self.timings.unlock_duration = Some(duration);
                    self.timings.unlocked_at = Some(Instant::now());
                    self.timings.list_drawn_at = None;
                    self.timings.full_list_at = None;
                    if created {
                        self.users = vec![user.clone()];
                    }
                    self.user = Some(user);
                    self.last_activity = self.now;
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
            StoreReply::PinRefused { attempts_left } => {
                let mut form = self.unlock_form(None);
                if attempts_left == 0 {
                    self.quick_pin_user = None;
                    form = self.unlock_form(None);
                    form.error = Some(
                        "Wrong PIN too many times: unlock with your passphrase. You can set a new quick PIN as you do"
                            .to_owned(),
                    );
                } else {
                    form.error = Some(format!(
                        "Wrong PIN: {attempts_left} more tr{} before the passphrase is needed",
                        if attempts_left == 1 { "y" } else { "ies" }
                    ));
                }
                self.screen = Screen::Unlock(form);
            }
            StoreReply::DemoDeleted(result) => {
                self.user = None;
                self.quick_pin_user = None;
                match result {
                    Ok(()) => {
                        self.users.clear();
                        self.screen = Screen::FirstRun(FirstRunForm::default());
                    }
                    Err(message) => self.screen = Screen::Failed(message),
                }
            }
            StoreReply::Locked
            | StoreReply::AmendmentDiscarded
            | StoreReply::Audited
            | StoreReply::PrefsSaved => {}
            StoreReply::Shift(result) => {
                let panel = &mut self.list.shift;
                panel.busy = false;
                match result {
                    Ok(view) => {
                        panel.shift = view.shift;
                        panel.staff = view.staff;
                        panel.adding = None;
                        panel.error = None;
                    }
                    Err(e) => panel.error = Some(e.to_string()),
                }
            }
            StoreReply::RecentChoices {
                for_record,
                result,
                reference,
            } => {
                if let Screen::Editor(ed) = &mut self.screen
                    && ed.id() == for_record
                {
                    if let Ok(choices) = result {
                        ed.forms.recent = choices;
                    }
                    match reference {
                        Ok(r) => ed.forms.reference = Some(std::sync::Arc::new(r)),
                        Err(e) => {
                            // Said on screen as "no formulary" rather than left "reading".
                            tracing::warn!(problem = %e, "the reference data could not be read");
                            ed.forms.reference = Some(std::sync::Arc::new(
                                crate::store::reference::ActiveReference::none(),
                            ));
                        }
                    }
                }
            }
            StoreReply::Exported(result) => {
                if self.user.is_none() {
                    return;
                }
                let message = match result {
                    Ok(path) => format!("Saved {}", path.display()),
                    Err(e) => e,
                };
                self.handle_connect(connection::ConnectEvent::Notice(message));
            }
            StoreReply::SecondConnection { purpose, result } => {
                self.start_connection_work(purpose, result);
            }
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
                        if self.restore_entries(&mut ed) {
                            ed.notice = Some(
                                "What you typed but had not added yet is still here.".to_owned(),
                            );
                        }
                        // Reopening the same record (after signing): stay in the same section.
                        if let Screen::Editor(old) = &self.screen
                            && old.id() == ed.id()
                        {
                            ed.section = old.section;
                        }
                        if ed.mode == EditMode::Draft {
                            self.worker.send(StoreRequest::RecentChoices {
                                for_record: ed.id(),
                            });
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
                            self.last_save_utc = Some(chrono::Utc::now());
                            // The queued count comes from the store's own outbox, now.
                            self.worker.send(StoreRequest::Counts);
                        }
                        Err(e) => {
                            // Keep the edits marked unsaved so the next edit or flush retries.
                            ed.save.error = Some(widgets::sentence(&e.to_string()));
                            ed.save.mark_edited(self.now);
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
                        self.last_save_utc = Some(chrono::Utc::now());
                        self.worker.send(StoreRequest::Counts);
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

    pub(super) fn open_failed(&mut self, created: bool, e: StoreProblem) {
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

    /// Hands a second store connection to the connection work it was opened for.
    fn start_connection_work(
        &mut self,
        purpose: ConnectionPurpose,
        result: Result<Box<Store>, StoreProblem>,
    ) {
        let events = self.events();
        let data_dir = self.data_dir.clone();
        let Some(runtime) = self.runtime() else {
            return;
        };
        let second = match (result, &purpose) {
            (Ok(store), _) => *store,
            // Sync after unlock is best effort: the status bar shows the tablet offline.
            (Err(_), ConnectionPurpose::ResumeSync) => return,
            (Err(StoreProblem::Locked), ConnectionPurpose::Connect(_)) => {
                return self.handle_connect(connection::ConnectEvent::Failed(
                    "The tablet is locked: unlock it and try again".into(),
                ));
            }
            (Err(e), ConnectionPurpose::Connect(_)) => {
                return self.handle_connect(connection::ConnectEvent::Failed(e.to_string()));
            }
        };
        let task = match purpose {
            ConnectionPurpose::ResumeSync => {
                connection::resume_after_unlock(&runtime, second, data_dir, events)
            }
            ConnectionPurpose::Connect(ConnectRequest::Enrol {
                server_url,
                enrolment_code,
            }) => connection::enrol(&runtime, second, server_url, enrolment_code, events),
            #[cfg(feature = "server")]
            ConnectionPurpose::Connect(ConnectRequest::TryOnThisComputer) => {
                connection::try_on_this_computer(&runtime, second, data_dir, events)
            }
            #[cfg(not(feature = "server"))]
            ConnectionPurpose::Connect(ConnectRequest::TryOnThisComputer) => {
                let _ = (second, data_dir);
                return self.handle_connect(connection::ConnectEvent::Failed(
                    "This build has no demo server".into(),
                ));
            }
        };
        self.tasks.push(task);
    }

    /// Applies the outcome of connection work (enrolment, demo server, sync start-up, export).
    pub(super) fn handle_connect(&mut self, event: connection::ConnectEvent) {
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
}
