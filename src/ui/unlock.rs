//! The screens before any patient data is visible: first run (create the first user), the
//! choice of server after first run, unlock, "working", and the store-failed screen.
//!
//! Each `*_ui` function edits only its own form and pushes [`Command`]s; none of them touches
//! the store or derives a key.

use egui::{RichText, TextEdit, Ui};

use super::widgets::{centred_column, choice, error_text, sentence};
use super::worker::{QUICK_PIN_ATTEMPTS, is_quick_pin};
use super::{Command, ConnectRequest};
use crate::crypto::{SecretText, WeakSecret, check_secret};

/// The first-run form. Its `Debug` leaves out the passphrase.
#[derive(Default)]
pub struct FirstRunForm {
    pub user: String,
    pub passphrase: SecretText,
    pub confirm: SecretText,
    /// Shown after an attempt failed (for example the data directory is read-only).
    pub error: Option<String>,
    /// The name field has been given keyboard focus once.
    pub focused_once: bool,
    /// The last strength verdict and the (passphrase, name) it was for: zxcvbn runs when the
    /// text changes, not on every frame.
    pub(crate) strength: Option<(SecretText, String, Result<(), WeakSecret>)>,
}

impl FirstRunForm {
    /// Whether the passphrase is strong enough for this name (see [`check_secret`]).
    fn strength(&mut self) -> Result<(), WeakSecret> {
        let user = self.user.trim();
        match &self.strength {
            Some((pass, name, verdict)) if *pass == self.passphrase && name == user => {
                verdict.clone()
            }
            _ => {
                let verdict = check_secret(&self.passphrase, &[user]);
                self.strength = Some((self.passphrase.clone(), user.to_owned(), verdict.clone()));
                verdict
            }
        }
    }
}

/// The unlock form. Its `Debug` leaves out the passphrase and PINs.
#[derive(Default)]
pub struct UnlockForm {
    pub users: Vec<String>,
    pub user: String,
    pub passphrase: SecretText,
    /// An optional quick PIN to set for this shift, typed beside the passphrase.
    pub quick_pin: SecretText,
    /// The quick PIN, when unlocking with it.
    pub pin: SecretText,
    /// Ask for the quick PIN (held in memory for `user`) instead of the passphrase.
    pub pin_mode: bool,
    /// Wrong PIN, rate limit, ... shown beside the field.
    pub error: Option<String>,
    /// Why the app locked itself (idle), shown above the form.
    pub notice: Option<String>,
    /// The field has been given keyboard focus once (not every frame, so Tab still works).
    pub focused_once: bool,
}

impl std::fmt::Debug for FirstRunForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FirstRunForm")
            .field("user", &self.user)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for UnlockForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnlockForm")
            .field("user", &self.user)
            .field("pin_mode", &self.pin_mode)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl UnlockForm {
    /// A form for `users`, the first one preselected.
    pub fn new(users: Vec<String>) -> Self {
        Self {
            user: users.first().cloned().unwrap_or_default(),
            users,
            ..Self::default()
        }
    }
}

/// The server choice after first run.
#[derive(Debug, Default)]
pub struct ConnectForm {
    pub server_url: String,
    pub enrolment_code: String,
    pub enrol_open: bool,
    /// True while an enrolment or demo set-up is running.
    pub busy: bool,
    /// The outcome of the last attempt, in words.
    pub message: Option<String>,
}

/// First run: create the first user and the encrypted store.
pub fn first_run_ui(ui: &mut Ui, form: &mut FirstRunForm, out: &mut Vec<Command>) {
    centred_column(ui, |ui| {
        ui.add_space(24.0);
        ui.heading("Set up this tablet");
        ui.label(
            "Create the first user. Records on this tablet are encrypted with a key that only \
             your passphrase can unlock. If the tablet is lost, the passphrase is what keeps \
             the records safe: use four or more unrelated words.",
        );
        ui.add_space(8.0);
        let name = ui.label("Your name");
        let name_field = ui
            .add(TextEdit::singleline(&mut form.user).desired_width(f32::INFINITY))
            .labelled_by(name.id);
        if !form.focused_once {
            name_field.request_focus();
            form.focused_once = true;
        }
        let pass = ui.label("Passphrase");
        ui.add(
            TextEdit::singleline(&mut *form.passphrase)
                .password(true)
                .desired_width(f32::INFINITY),
        )
        .labelled_by(pass.id);
        let strength = form.strength();
        if let (false, Err(weak)) = (form.passphrase.is_empty(), &strength) {
            error_text(
                ui,
                &sentence(&format!("This passphrase is not strong enough: {weak}")),
            );
        }
        let confirm = ui.label("Repeat passphrase");
        let confirm_response = ui
            .add(
                TextEdit::singleline(&mut *form.confirm)
                    .password(true)
                    .desired_width(f32::INFINITY),
            )
            .labelled_by(confirm.id);
        let mismatch = !form.confirm.is_empty() && form.confirm != form.passphrase;
        if mismatch {
            error_text(ui, "The two entries do not match");
        }
        if let Some(e) = &form.error {
            error_text(ui, e);
        }
        let ready =
            !form.user.trim().is_empty() && strength.is_ok() && form.passphrase == form.confirm;
        let enter = confirm_response.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        ui.add_space(8.0);
        if ui
            .add_enabled(ready, egui::Button::new("Create encrypted store"))
            .clicked()
            || (ready && enter)
        {
            out.push(Command::CreateStore {
                user: form.user.trim().to_owned(),
                passphrase: form.passphrase.take(),
            });
            form.confirm.clear();
            form.error = None;
        }
        supervisor_entry_ui(ui, out);
    });
}

/// The way in for clinical supervisors, below the crew's own form.
fn supervisor_entry_ui(ui: &mut Ui, out: &mut Vec<Command>) {
    ui.add_space(24.0);
    ui.separator();
    ui.label(
        RichText::new("Clinical supervisors review completed records on the trust's server.")
            .weak(),
    );
    if ui.button("Supervisor sign-in…").clicked() {
        out.push(Command::OpenReview);
    }
}

/// After first run: enrol with a server, try a server on this computer, or work offline.
pub fn connect_choice_ui(ui: &mut Ui, form: &mut ConnectForm, out: &mut Vec<Command>) {
    centred_column(ui, |ui| {
        ui.add_space(24.0);
        ui.heading("Connect this tablet");
        ui.label(
            "Records are always kept on this tablet first. A server receives a copy when it can \
             be reached, so supervisors can review them.",
        );
        ui.add_space(8.0);
        if ui
            .toggle_value(&mut form.enrol_open, "Enrol with a trust server…")
            .changed()
        {
            form.message = None;
        }
        if form.enrol_open {
            egui::Frame::group(ui.style()).show(ui, |ui| {
                let url = ui.label("Server address");
                ui.add(
                    TextEdit::singleline(&mut form.server_url)
                        .hint_text("https://epr.example.nhs.uk")
                        .desired_width(f32::INFINITY),
                )
                .labelled_by(url.id);
                let code = ui.label("Enrolment code");
                ui.add(TextEdit::singleline(&mut form.enrolment_code).desired_width(240.0))
                    .labelled_by(code.id);
                let ready =
                    !form.server_url.trim().is_empty() && !form.enrolment_code.trim().is_empty();
                if ui
                    .add_enabled(ready && !form.busy, egui::Button::new("Enrol"))
                    .clicked()
                {
                    out.push(Command::Connect(ConnectRequest::Enrol {
                        server_url: form.server_url.trim().to_owned(),
                        enrolment_code: form.enrolment_code.trim().to_owned(),
                    }));
                }
            });
        }
        if ui
            .add_enabled(!form.busy, egui::Button::new("Try it on this computer"))
            .on_hover_text("Starts a demonstration server on this computer, with demo records")
            .clicked()
        {
            out.push(Command::Connect(ConnectRequest::TryOnThisComputer));
        }
        if ui.button("Work offline for now").clicked() {
            out.push(Command::WorkOffline);
        }
        if let Some(m) = &form.message {
            ui.add_space(8.0);
            ui.horizontal_wrapped(|ui| {
                if form.busy {
                    ui.spinner();
                }
                ui.label(RichText::new(m).strong());
            });
        }
    });
}

/// Unlock: pick a user and enter the passphrase (optionally setting a quick PIN for the
/// shift), or, after an idle lock with a quick PIN set, enter the PIN.
pub fn unlock_ui(ui: &mut Ui, form: &mut UnlockForm, out: &mut Vec<Command>) {
    centred_column(ui, |ui| {
        ui.add_space(24.0);
        ui.heading("Unlock");
        if let Some(n) = &form.notice {
            ui.label(RichText::new(n).strong());
        }
        if form.pin_mode {
            pin_ui(ui, form, out);
        } else {
            passphrase_ui(ui, form, out);
        }
        supervisor_entry_ui(ui, out);
    });
}

fn pin_ui(ui: &mut Ui, form: &mut UnlockForm, out: &mut Vec<Command>) {
    ui.label(format!("User: {}", form.user));
    let label = ui.label("Quick PIN");
    let field = ui
        .add(
            TextEdit::singleline(&mut *form.pin)
                .password(true)
                .desired_width(160.0),
        )
        .labelled_by(label.id);
    if field.changed() {
        form.error = None;
    }
    if let Some(e) = &form.error {
        error_text(ui, &sentence(e));
    }
    let enter = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
    let ready = !form.pin.is_empty();
    ui.horizontal(|ui| {
        if ui.add_enabled(ready, egui::Button::new("Unlock")).clicked() || (ready && enter) {
            out.push(Command::UnlockWithPin {
                user: form.user.clone(),
                pin: form.pin.take(),
            });
        }
        if ui.button("Use the passphrase instead").clicked() {
            form.pin.clear();
            form.pin_mode = false;
            form.error = None;
            form.focused_once = false;
        }
    });
    if !form.focused_once {
        field.request_focus();
        form.focused_once = true;
    }
}

fn passphrase_ui(ui: &mut Ui, form: &mut UnlockForm, out: &mut Vec<Command>) {
    if form.users.len() > 1 {
        ui.label("Who is using the tablet?");
        ui.horizontal_wrapped(|ui| {
            for u in &form.users {
                if choice(ui, form.user == *u, u.as_str()).clicked() {
                    form.user = u.clone();
                    form.error = None;
                }
            }
        });
    } else {
        ui.label(format!("User: {}", form.user));
    }
    let label = ui.label("Passphrase");
    let field = ui
        .add(
            TextEdit::singleline(&mut *form.passphrase)
                .password(true)
                .desired_width(f32::INFINITY),
        )
        .labelled_by(label.id);
    if field.changed() {
        form.error = None;
    }
    if let Some(e) = &form.error {
        error_text(ui, &sentence(e));
    }
    ui.add_space(4.0);
    let pin_label = ui.label("Quick PIN for this shift (optional, 4 to 8 digits)");
    let pin_field = ui
        .add(
            TextEdit::singleline(&mut *form.quick_pin)
                .password(true)
                .desired_width(160.0),
        )
        .labelled_by(pin_label.id);
    ui.label(
        RichText::new(format!(
            "Kept only in this app's memory, to unlock quickly after an idle lock. Forgotten when \
             the app closes or after {QUICK_PIN_ATTEMPTS} wrong tries."
        ))
        .weak(),
    );
    let pin_ok = form.quick_pin.is_empty() || is_quick_pin(&form.quick_pin);
    if !pin_ok {
        error_text(ui, "A quick PIN is 4 to 8 digits");
    }
    let enter = (field.lost_focus() || pin_field.lost_focus())
        && ui.input(|i| i.key_pressed(egui::Key::Enter));
    let ready = !form.passphrase.is_empty() && !form.user.is_empty() && pin_ok;
    if ui.add_enabled(ready, egui::Button::new("Unlock")).clicked() || (ready && enter) {
        let quick_pin = form.quick_pin.take();
        out.push(Command::Unlock {
            user: form.user.clone(),
            passphrase: form.passphrase.take(),
            quick_pin: (!quick_pin.is_empty()).then_some(quick_pin),
        });
    }
    if !form.focused_once {
        field.request_focus();
        form.focused_once = true;
    }
}

/// While key derivation (or another slow step) runs on the worker thread.
pub fn working_ui(ui: &mut Ui, label: &str) {
    centred_column(ui, |ui| {
        ui.add_space(48.0);
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label(RichText::new(label).size(22.0));
        });
    });
}

/// The store could not be opened. The file is never touched; say so and what to do.
pub fn failed_ui(ui: &mut Ui, message: &str) {
    centred_column(ui, |ui| {
        ui.add_space(24.0);
        ui.heading("The record store could not be opened");
        ui.add_space(8.0);
        error_text(ui, &sentence(message));
        ui.add_space(8.0);
        ui.label(
            "The file has been left exactly as it was: nothing was deleted or overwritten. \
             Carry on with paper records and contact your IT service desk, quoting this message.",
        );
    });
}
