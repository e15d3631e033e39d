//! The sync status bar, drawn on every screen: online or offline, how many records are
//! queued, when the last sync succeeded, the last problem in plain words, and "Sync now".
//!
//! It reads only a [`SyncStatus`] snapshot (from the engine when one is attached) and counts
//! the app already holds; it never waits on the engine.

use chrono::{DateTime, Local, Utc};
use egui::{RichText, Ui};

use super::Command;
use super::theme;
use super::widgets::badge;
use crate::sync::{ProblemKind, SyncStatus};

/// What the status bar shows; built by the app each frame from cheap snapshots.
#[derive(Debug, Clone, Default)]
pub struct StatusView {
    /// The engine's status; `None` when no engine is attached (not connected).
    pub engine: Option<SyncStatus>,
    /// Records waiting to be pushed, from the store (used when no engine is attached).
    pub local_queued: Option<u64>,
    /// The last successful sync recorded in the store.
    pub local_last_sync_utc: Option<DateTime<Utc>>,
    /// Demo mode: the in-process server's address, the supervisor sign-in and its state.
    pub demo: Option<super::connection::DemoInfo>,
}

fn when(at: DateTime<Utc>) -> String {
    let local = at.with_timezone(&Local);
    if local.date_naive() == Local::now().date_naive() {
        local.format("%H:%M").to_string()
    } else {
        local.format("%d %b %H:%M").to_string()
    }
}

/// Draws the bar. "Sync now" is enabled only when an engine is attached.
pub fn status_bar_ui(ui: &mut Ui, view: &StatusView, out: &mut Vec<Command>) {
    if view
        .engine
        .as_ref()
        .is_some_and(|s| s.server_integrity_failed)
    {
        ui.horizontal_wrapped(|ui| {
            badge(
                ui,
                crate::sync::status::INTEGRITY_ALERT,
                theme::alert_badge(),
            );
        });
    }
    ui.horizontal_wrapped(|ui| {
        let (banner, colours) = match &view.engine {
            Some(s) => {
                let colours = if s.stopped || s.quarantined > 0 {
                    theme::alert_badge()
                } else if s.reachable == Some(true) {
                    theme::good_badge()
                } else {
                    theme::neutral_badge(ui.visuals().dark_mode)
                };
                (s.banner(), colours)
            }
            None => (
                SyncStatus::default().banner(),
                theme::neutral_badge(ui.visuals().dark_mode),
            ),
        };
        badge(ui, &banner, colours);
        if view.engine.is_none()
            && let Some(n) = view.local_queued
        {
            ui.label(format!("{n} queued"));
        }
        let last = view
            .engine
            .as_ref()
            .and_then(|s| s.last_success_utc)
            .or(view.local_last_sync_utc);
        ui.label(match last {
            Some(at) => format!("Last sync {}", when(at)),
            None => "Never synced".to_owned(),
        });
        if let Some(p) = view.engine.as_ref().and_then(|s| s.last_problem.as_ref()) {
            let retired = view
                .engine
                .as_ref()
                .is_some_and(|s| s.tablet_state == crate::store::TabletState::Retired);
            let prefix = match p.kind {
                ProblemKind::Transient => "Will retry",
                ProblemKind::Credentials if retired => "Retired",
                ProblemKind::Credentials => "Sign-in refused",
                ProblemKind::Record => "Record refused",
                ProblemKind::Local => "Problem",
                ProblemKind::Integrity => "Server integrity",
            };
            let retry = view
                .engine
                .as_ref()
                .and_then(|s| s.retry_in_secs)
                .map(|s| format!(" (next try in {s} s)"))
                .unwrap_or_default();
            ui.label(
                RichText::new(format!("{prefix}: {}{retry}", p.message))
                    .color(ui.visuals().warn_fg_color),
            );
        }
        if let Some(w) = view.engine.as_ref().and_then(SyncStatus::clock_warning) {
            ui.label(RichText::new(w).color(ui.visuals().warn_fg_color).strong());
        }
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            let button = ui
                .add_enabled(view.engine.is_some(), egui::Button::new("Sync now"))
                .on_disabled_hover_text("This tablet is not connected to a server");
            if button.clicked() {
                out.push(Command::SyncNow);
            }
        });
    });
}

/// Demo mode only: where the demo server is, the supervisor sign-in, and the outage switch.
/// Drawn as its own bar above the status bar so neither crowds the other.
/// The demo bar. The demo supervisor's sign-in, and the way out of the demo, are shown only
/// while `unlocked`; `confirming` asks before the demo is deleted.
pub fn demo_bar_ui(
    ui: &mut Ui,
    demo: &super::connection::DemoInfo,
    unlocked: bool,
    confirming: bool,
    out: &mut Vec<Command>,
) {
    if confirming {
        ui.horizontal_wrapped(|ui| {
            ui.label(
                RichText::new(
                    "Delete the demo? Its records, everything typed while trying the app and the \
                     demo server are deleted from this computer, and the app starts again at set-up.",
                )
                .strong(),
            );
            if ui.button("Delete the demo and start again").clicked() {
                out.push(Command::LeaveDemo);
            }
            if ui.button("Keep trying it").clicked() {
                out.push(Command::ConfirmLeaveDemo(false));
            }
        });
        return;
    }
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new("Demo").strong());
        if unlocked {
            ui.label(format!(
                "Server {} · supervisor sign-in: {} / {}",
                demo.server_url, demo.supervisor_user, demo.supervisor_password
            ));
        } else {
            ui.label(format!(
                "Server {} · unlock to see the supervisor sign-in",
                demo.server_url
            ));
        }
        let mut outage = !demo.server_running;
        if ui
            .checkbox(&mut outage, "Simulate server outage")
            .on_hover_text("Stops the demo server on this computer; untick to bring it back")
            .changed()
        {
            out.push(Command::SimulateOutage(outage));
        }
        if unlocked && ui.button("Leave the demo…").clicked() {
            out.push(Command::ConfirmLeaveDemo(true));
        }
    });
}
