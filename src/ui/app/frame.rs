//! One frame: `logic` (worker replies, timers, idle lock; no drawing) and `draw` (panels and
//! the current screen; commands applied after drawing), plus the [`eframe::App`] glue.

use std::time::{Duration, Instant};

use super::commands::Command;
use super::state::{EprApp, Screen, send_save};
use crate::store::ListFilter;
use crate::sync::SyncHandle;
use crate::ui::worker::{ListPurpose, StoreRequest};
use crate::ui::{editor, list, review, status_bar, theme, top_bar, unlock};

impl EprApp {
    /// The non-drawing work of one frame. `now` is passed in (the window passes the wall
    /// clock, tests a clock they advance): every timer (idle lock, supervisor sign-out,
    /// autosave, the NHS-number search) reads it, and [`EprApp::draw`] dates edits with it.
    pub fn logic_at(&mut self, ctx: &egui::Context, now: Instant) {
        self.now = now;
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
        // The number pad's keys from the last frame go to its field before anything is drawn;
        // whether the pad is on carries from record to record.
        if let Screen::Editor(ed) = &mut self.screen {
            ed.forms.pad.carry(&mut self.number_pad_on);
            ed.forms.pad.inject(ctx);
        }
        while let Ok(event) = self.connect_rx.try_recv() {
            self.handle_connect(event);
        }
        self.tasks.retain(|t| !t.is_finished());
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
            top_bar::top_bar_ui(
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
                // The demo supervisor's password opens every synced record: never drawn
                // while the app is locked.
                let unlocked = self.user.is_some();
                let confirming = self.confirm_leave_demo && unlocked;
                egui::Panel::bottom("demo-bar").show(ui, |ui| {
                    status_bar::demo_bar_ui(ui, demo, unlocked, confirming, &mut commands);
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
                self.list.tablet_state = self
                    .sync
                    .as_ref()
                    .map(|s| s.status().tablet_state)
                    .unwrap_or_default();
                let user = self.user.clone().unwrap_or_default();
                list::records_ui(ui, &mut self.list, &user, &mut commands);
                if self.timings.list_drawn_at.is_none() && !self.list.all.is_empty() {
                    self.timings.list_drawn_at = Some(Instant::now());
                }
            }
            Screen::Editor(ed) => editor::editor_ui(ui, ed, self.now, &mut commands),
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

    pub(super) fn status_view(&self) -> status_bar::StatusView {
        status_bar::StatusView {
            engine: self.sync.as_ref().map(|s| {
                s.status().with_local_outbox(
                    self.list.counts.as_ref().map(|c| c.pending_sync),
                    self.last_save_utc,
                )
            }),
            local_queued: self.list.counts.as_ref().map(|c| c.pending_sync),
            local_last_sync_utc: self.list.last_sync_utc,
            demo: self.demo.as_ref().map(|(_, info)| info.clone()),
        }
    }
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
