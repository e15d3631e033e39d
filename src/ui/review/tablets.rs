//! The supervisors' Tablets page: every tablet, what it last reported not having sent yet,
//! and which have held a record for more than 24 hours (DESIGN.md, Recovery). No patient data:
//! counts, times, names of tablets and app versions only.

use egui::{RichText, Ui};

use super::ReviewCommand;
use crate::protocol::{TabletStatus, TabletsResponse};
use crate::ui::widgets::{error_text, when};

/// What the Tablets page holds. Memory only; emptied when the session ends.
#[derive(Debug, Default)]
pub struct TabletsView {
    pub answer: Option<TabletsResponse>,
    pub loading: bool,
}

/// "3 unsent", "Nothing unsent" or "Not reported yet".
pub fn unsent_text(t: &TabletStatus) -> String {
    match t.pending {
        None => "Not reported yet".to_owned(),
        Some(0) => "Nothing unsent".to_owned(),
        Some(1) => "1 unsent".to_owned(),
        Some(n) => format!("{n} unsent"),
    }
}

fn state_text(state: &str) -> &'static str {
    match state {
        "active" => "In service",
        "retiring" => "Being retired",
        "retired" => "Retired",
        "revoked" => "Revoked",
        _ => "Unknown",
    }
}

/// The Tablets page.
pub fn tablets_ui(
    ui: &mut Ui,
    view: &TabletsView,
    error: Option<&str>,
    can_retry: bool,
    out: &mut Vec<ReviewCommand>,
) {
    ui.horizontal(|ui| {
        ui.heading("Tablets");
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            if ui.button("Back to the queue").clicked() {
                out.push(ReviewCommand::BackToQueue);
            }
            if ui.button("Refresh").clicked() {
                out.push(ReviewCommand::ShowTablets);
            }
            if view.loading {
                ui.spinner();
            }
        });
    });
    ui.label(
        "What each tablet said it had not yet sent to the server, as of its last sync. A record \
         waiting for more than 24 hours is marked: find the tablet and get it online.",
    );
    super::error_with_retry(ui, error, can_retry, out);
    ui.separator();
    let Some(answer) = &view.answer else {
        super::not_loaded(
            ui,
            view.loading,
            "Loading the tablets…",
            "The tablets have not loaded.",
        );
        return;
    };
    if answer.tablets.is_empty() {
        ui.add_space(24.0);
        ui.label(RichText::new("No tablets are enrolled with this server.").size(22.0));
        return;
    }
    let overdue = answer.tablets.iter().filter(|t| t.unsent_over_24h).count();
    if overdue > 0 {
        error_text(
            ui,
            &format!(
                "{overdue} tablet{} {} held a record for more than 24 hours",
                if overdue == 1 { "" } else { "s" },
                if overdue == 1 { "has" } else { "have" }
            ),
        );
    }
    egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .show(ui, |ui| {
            egui::Grid::new("tablets-grid")
                .striped(true)
                .spacing([24.0, 10.0])
                .show(ui, |ui| {
                    for heading in [
                        "Tablet",
                        "State",
                        "Unsent",
                        "Oldest unsent saved",
                        "Last seen",
                        "App",
                    ] {
                        ui.label(RichText::new(heading).strong());
                    }
                    ui.end_row();
                    for t in &answer.tablets {
                        ui.label(&t.name);
                        ui.label(state_text(&t.state));
                        if t.unsent_over_24h {
                            error_text(ui, &format!("{} · over 24 hours", unsent_text(t)));
                        } else {
                            ui.label(unsent_text(t));
                        }
                        ui.label(
                            t.oldest_pending_utc
                                .map_or_else(|| "—".to_owned(), |at| when(at, true)),
                        );
                        ui.label(
                            t.last_seen_utc
                                .map_or_else(|| "Never".to_owned(), |at| when(at, true)),
                        );
                        ui.label(t.app_version.as_deref().unwrap_or("—"));
                        ui.end_row();
                    }
                });
        });
}
