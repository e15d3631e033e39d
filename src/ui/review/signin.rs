//! The supervisor sign-in page: server address, username and password. Says plainly when
//! the server cannot be reached and offers "Retry".

use egui::{RichText, TextEdit, Ui};

use super::ReviewCommand;
use crate::ui::widgets::{error_text, sentence};

/// The sign-in form. Its `Debug` leaves out the password.
#[derive(Default)]
pub struct SignInForm {
    pub server_url: String,
    pub username: String,
    pub password: crate::crypto::SecretText,
    /// Why the last attempt failed.
    pub error: Option<String>,
    /// Why sign-in is asked for again (an ended session).
    pub notice: Option<String>,
    /// Waiting for the server.
    pub busy: bool,
    /// The first empty field has been given keyboard focus (once, so Tab still works).
    pub focused_once: bool,
}

impl std::fmt::Debug for SignInForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInForm")
            .field("server_url", &self.server_url)
            .field("username", &self.username)
            .field("busy", &self.busy)
            .finish_non_exhaustive()
    }
}

/// The sign-in page.
pub fn sign_in_ui(
    ui: &mut Ui,
    form: &mut SignInForm,
    can_retry: bool,
    out: &mut Vec<ReviewCommand>,
) {
    crate::ui::widgets::centred_column(ui, |ui| form_ui(ui, form, can_retry, out));
}

fn form_ui(ui: &mut Ui, form: &mut SignInForm, can_retry: bool, out: &mut Vec<ReviewCommand>) {
    ui.add_space(24.0);
    ui.heading("Supervisor sign-in");
    ui.label(
        "Review completed records on the trust's server. Nothing you open here is kept on \
         this computer: it is cleared when you sign out.",
    );
    if let Some(n) = &form.notice {
        ui.add_space(6.0);
        ui.label(RichText::new(n).strong());
    }
    ui.add_space(8.0);
    let l = ui.label("Server address");
    let url = ui
        .add(
            TextEdit::singleline(&mut form.server_url)
                .hint_text("https://epr.example.nhs.uk")
                .desired_width(f32::INFINITY),
        )
        .labelled_by(l.id);
    let l = ui.label("Username");
    let user = ui
        .add(TextEdit::singleline(&mut form.username).desired_width(f32::INFINITY))
        .labelled_by(l.id);
    let l = ui.label("Password");
    let pass = ui
        .add(
            TextEdit::singleline(&mut *form.password)
                .password(true)
                .desired_width(f32::INFINITY),
        )
        .labelled_by(l.id);
    if !form.focused_once {
        form.focused_once = true;
        if form.server_url.trim().is_empty() {
            url.request_focus();
        } else if form.username.trim().is_empty() {
            user.request_focus();
        } else {
            pass.request_focus();
        }
    }
    if let Some(e) = &form.error {
        error_text(ui, &sentence(e));
    }
    let ready = !form.server_url.trim().is_empty()
        && !form.username.trim().is_empty()
        && !form.password.is_empty()
        && !form.busy;
    let enter = pass.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
    ui.add_space(8.0);
    ui.horizontal(|ui| {
        if ui
            .add_enabled(ready, egui::Button::new(RichText::new("Sign in").strong()))
            .clicked()
            || (ready && enter)
        {
            out.push(ReviewCommand::SignIn);
        }
        if can_retry && !form.busy && ui.button("Retry").clicked() {
            out.push(ReviewCommand::Retry);
        }
        if ui
            .button("Back to the crew app")
            .on_hover_text("Return to the unlock screen")
            .clicked()
        {
            out.push(ReviewCommand::Leave);
        }
        if form.busy {
            ui.spinner();
            ui.label("Signing in…");
        }
    });
}
