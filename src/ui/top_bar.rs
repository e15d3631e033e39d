//! The top bar: app name, the unlocked user, lock, theme switch and idle-lock choice.

use std::time::Duration;

use super::Command;
use super::editor;
use super::theme::ThemeChoice;

/// Idle-lock choices offered in the top bar, in minutes.
const IDLE_LOCK_CHOICES_MINUTES: [u64; 5] = [1, 2, 5, 10, 15];

/// Draws the top bar; pushes the commands its buttons ask for.
pub fn top_bar_ui(
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
