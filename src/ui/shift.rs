//! The crew on shift, on the records screen: who is signed in, signing the unlocked user on,
//! another member signing in from the trust's staff list with their own passphrase on this
//! tablet, and ending the shift. New records take this crew.
//!
//! Owns the panel's state ([`ShiftPanel`]) and its drawing; the checks are the store's
//! (`store::shift`), run on the worker.

use egui::{RichText, TextEdit, Ui};

use super::Command;
use super::widgets::{error_text, name_widget, sentence};
use crate::crypto::SecretText;
use crate::model::reference::StaffMember;
use crate::store::shift::{Shift, ShiftMember};

/// What the shift panel holds.
#[derive(Debug, Clone, Default)]
pub struct ShiftPanel {
    pub shift: Shift,
    /// The staff list of the reference data in use.
    pub staff: Vec<StaffMember>,
    /// Adding a member: who (staff id) and their passphrase as typed.
    pub adding: Option<String>,
    pub passphrase: SecretText,
    pub error: Option<String>,
    /// A sign-in is with the worker.
    pub busy: bool,
}

impl ShiftPanel {
    /// The staff member who signs in as `user`, if the list names them.
    fn staff_for(&self, user: &str) -> Option<&StaffMember> {
        self.staff.iter().find(|s| {
            s.user_id
                .as_deref()
                .is_some_and(|u| u.trim() == user.trim())
        })
    }

    fn on_shift(&self, user: &str) -> bool {
        self.shift.members.iter().any(|m| m.user == user)
    }
}

/// `staff` as a shift member signing in as `user`.
pub fn member(staff: &StaffMember, user: &str) -> ShiftMember {
    ShiftMember {
        user: user.to_owned(),
        staff_id: staff.id.clone(),
        name: staff.name.clone(),
        role: staff.role.clone(),
        registration: staff.registration.clone(),
    }
}

/// The panel. `user` is the user who unlocked the tablet.
pub fn shift_ui(ui: &mut Ui, panel: &mut ShiftPanel, user: &str, out: &mut Vec<Command>) {
    egui::Frame::group(ui.style()).show(ui, |ui| {
        if panel.staff.is_empty() && panel.shift.members.is_empty() {
            ui.label(
                RichText::new(
                    "Crew on shift: the trust's staff list has not reached this tablet, so the crew is entered on each record.",
                )
                .weak(),
            );
            return;
        }
        ui.horizontal_wrapped(|ui| {
            ui.label(RichText::new("Crew on shift:").strong());
            if panel.shift.members.is_empty() {
                ui.label("no one signed in. New records start with no crew.");
            }
            let count = panel.shift.members.len();
            for (i, m) in panel.shift.members.iter().enumerate() {
                let mut text = if m.registration.is_empty() {
                    format!("{} ({})", m.name, m.role)
                } else {
                    format!("{} ({}, {})", m.name, m.role, m.registration)
                };
                if i + 1 < count {
                    text.push(';');
                }
                ui.label(RichText::new(text).strong());
            }
            if let Some(me) = panel.staff_for(user)
                && !panel.on_shift(user)
                && !panel.busy
            {
                let r = ui.button(format!("Sign me in ({})", me.name));
                name_widget(&r, egui::Role::Button, "Sign me in");
                if r.clicked() {
                    out.push(Command::JoinShift(member(me, user)));
                }
            }
            if panel.adding.is_none() && !panel.busy && ui.button("Add crew member").clicked() {
                panel.adding = Some(String::new());
                panel.error = None;
            }
            if !panel.shift.members.is_empty() && !panel.busy && ui.button("End shift").clicked() {
                out.push(Command::EndShift);
            }
        });
        if panel.adding.is_some() {
            adding_ui(ui, panel, out);
        }
        if let Some(e) = &panel.error {
            error_text(ui, &sentence(e));
        }
    });
}

/// Choosing the member from the staff list and their passphrase.
fn adding_ui(ui: &mut Ui, panel: &mut ShiftPanel, out: &mut Vec<Command>) {
    let candidates: Vec<StaffMember> = panel
        .staff
        .iter()
        .filter(|s| s.user_id.as_deref().is_some_and(|u| !panel.on_shift(u)))
        .cloned()
        .collect();
    let Some(mut chosen) = panel.adding.clone() else {
        return;
    };
    if candidates.is_empty() {
        ui.label(
            "Everyone in the staff list with a user on this tablet is signed in (staff without a tablet user cannot sign in here).",
        );
        if ui.button("Close").clicked() {
            panel.adding = None;
        }
        return;
    }
    ui.horizontal_wrapped(|ui| {
        ui.vertical(|ui| {
            let l = ui.label("Crew member");
            let shown = candidates
                .iter()
                .find(|s| s.id == chosen)
                .map_or("Choose from the staff list", |s| s.name.as_str());
            egui::ComboBox::from_id_salt("shift-member")
                .selected_text(shown)
                .width(260.0)
                .show_ui(ui, |ui| {
                    for s in &candidates {
                        let label = format!("{} ({})", s.name, s.role);
                        ui.selectable_value(&mut chosen, s.id.clone(), label);
                    }
                })
                .response
                .labelled_by(l.id);
        });
        ui.vertical(|ui| {
            let l = ui.label("Their passphrase on this tablet");
            ui.add(
                TextEdit::singleline(&mut *panel.passphrase)
                    .password(true)
                    .desired_width(220.0),
            )
            .labelled_by(l.id);
        });
    });
    panel.adding = Some(chosen.clone());
    ui.horizontal(|ui| {
        let staff = candidates.iter().find(|s| s.id == chosen);
        let ready = staff.is_some() && !panel.passphrase.is_empty() && !panel.busy;
        if ui
            .add_enabled(ready, egui::Button::new(RichText::new("Sign in").strong()))
            .clicked()
            && let Some(s) = staff
            && let Some(user) = s.user_id.as_deref()
        {
            panel.busy = true;
            panel.error = None;
            out.push(Command::SignInCrew {
                member: member(s, user),
                passphrase: panel.passphrase.take(),
            });
        }
        if ui.button("Cancel").clicked() {
            panel.adding = None;
            panel.passphrase.take();
            panel.error = None;
        }
        if panel.busy {
            ui.spinner();
        }
    });
}
