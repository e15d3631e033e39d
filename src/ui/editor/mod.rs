//! The encounter editor: a side list of sections the crew can visit in any order, the
//! section being edited, and the sign-off flow (completion check, signing, amendments,
//! earlier versions).
//!
//! The editor owns its [`EditorState`]: the document, typed-text buffers and the autosave
//! bookkeeping. It marks the document edited; the app decides when to save (debounced) and
//! sends the save to the store worker. Signed records are drawn read-only.

pub mod advance;
pub mod assessment;
pub mod drugs;
pub mod forms;
pub mod non_conveyance;
pub mod number_pad;
pub mod observations;
pub mod safeguarding;
pub mod sections;

pub use crate::ui::widgets::name_widget;

use std::time::{Duration, Instant};

use chrono::{DateTime, Local};
use egui::{Response, RichText, TextEdit, Ui};
use uuid::Uuid;

use super::Command;
use super::theme;
use super::widgets::{badge, current_news2_badge, error_text, sentence, warning_text};
use super::worker::RecordBundle;
use crate::model::{Decision, Encounter, Field, RecordStatus, Revision, missing_items};
use crate::store::{FeedbackEntry, SyncState, VersionInfo};
pub use forms::Forms;
use observations::ObsEntry;

/// The editor's sections, in the order of the side list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Incident,
    Patient,
    History,
    Assessment,
    Observations,
    Treatment,
    Outcome,
    Notes,
    Crew,
    Handover,
    SignOff,
}

impl Section {
    /// Every section in side-list order.
    pub const ALL: [Section; 11] = [
        Section::Incident,
        Section::Patient,
        Section::History,
        Section::Assessment,
        Section::Observations,
        Section::Treatment,
        Section::Outcome,
        Section::Notes,
        Section::Crew,
        Section::Handover,
        Section::SignOff,
    ];

    /// The section's name in the side list and as its heading.
    pub fn label(self) -> &'static str {
        match self {
            Section::Incident => "Incident and times",
            Section::Patient => "Patient",
            Section::History => "Complaint and history",
            Section::Assessment => "Presentation and ECG",
            Section::Observations => "Observations",
            Section::Treatment => "Interventions and drugs",
            Section::Outcome => "Outcome and destination",
            Section::Notes => "Notes",
            Section::Crew => "Crew",
            Section::Handover => "Handover (ATMIST)",
            Section::SignOff => "Sign-off and versions",
        }
    }

    /// The section after this one in the side list; `None` after the last.
    pub fn next(self) -> Option<Section> {
        let i = Section::ALL.iter().position(|s| *s == self)?;
        Section::ALL.get(i + 1).copied()
    }

    /// The section holding a field the completion check names.
    pub fn of_field(field: Field) -> Section {
        match field {
            Field::IncidentNumber | Field::CallSign | Field::Time(_) => Section::Incident,
            Field::PatientName | Field::PatientAge | Field::PatientSex => Section::Patient,
            Field::PresentingComplaint
            | Field::Allergies
            | Field::AdvanceDecisions
            | Field::Safeguarding => Section::History,
            Field::Assessment(_) => Section::Assessment,
            Field::Observations => Section::Observations,
            Field::Outcome | Field::NonConveyance(_) => Section::Outcome,
            Field::Crew => Section::Crew,
            Field::SignOffClinician => Section::SignOff,
        }
    }
}

/// Whether the document may be edited, and how edits are saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditMode {
    /// A draft: edits are saved as drafts.
    Draft,
    /// Signed: read-only until "Amend…".
    Signed,
    /// Amending a signed record: edits are kept as an amendment draft until signed.
    Amending,
}

/// Autosave bookkeeping. Edits are saved after a short pause in typing, and never later than
/// a fixed bound after the first unsaved edit.
#[derive(Debug, Clone, Default)]
pub struct SaveStatus {
    /// When the oldest unsaved edit happened.
    pub first_unsaved: Option<Instant>,
    /// When the newest edit happened.
    pub last_edit: Option<Instant>,
    /// Saves sent to the worker and not yet answered.
    pub in_flight: usize,
    pub last_saved_local: Option<DateTime<Local>>,
    pub error: Option<String>,
}

impl SaveStatus {
    /// Notes an edit made at `now`.
    pub fn mark_edited(&mut self, now: Instant) {
        self.first_unsaved.get_or_insert(now);
        self.last_edit = Some(now);
    }

    /// True when there are edits not yet sent to the store.
    pub fn has_unsent(&self) -> bool {
        self.first_unsaved.is_some()
    }

    /// True when a save should be sent now: `quiet` after the last edit, or `max_wait`
    /// after the first unsaved one, whichever comes first.
    pub fn due(&self, now: Instant, quiet: Duration, max_wait: Duration) -> bool {
        match (self.first_unsaved, self.last_edit) {
            (Some(first), Some(last)) => {
                now.duration_since(last) >= quiet || now.duration_since(first) >= max_wait
            }
            _ => false,
        }
    }

    /// How long until [`SaveStatus::due`] becomes true, for scheduling a repaint.
    pub fn time_until_due(
        &self,
        now: Instant,
        quiet: Duration,
        max_wait: Duration,
    ) -> Option<Duration> {
        let (first, last) = (self.first_unsaved?, self.last_edit?);
        let a = (last + quiet).saturating_duration_since(now);
        let b = (first + max_wait).saturating_duration_since(now);
        Some(a.min(b))
    }
}

/// The "Complete and sign" / "Sign amendment" dialog.
#[derive(Debug, Clone, Default)]
pub struct SignDialog {
    /// Signing an amendment (needs a reason) rather than a first completion.
    pub amendment: bool,
    pub clinician_name: String,
    pub registration: String,
    pub reason: String,
    pub error: Option<String>,
    /// Sent to the store, waiting for the answer.
    pub busy: bool,
    /// The signed-in user's entry in the trust's staff list: the record is signed in their
    /// name and registration, which are then shown, not typed.
    pub staff: Option<crate::model::reference::StaffMember>,
}

impl SignDialog {
    /// The dialog for the user signed in as `user`: named from the staff list when it holds
    /// them, otherwise (a user the list does not name) with their user name to correct.
    fn for_user(user: &str, forms: &Forms, amendment: bool) -> Self {
        let staff = forms
            .reference
            .as_deref()
            .and_then(|r| r.staff_for_user(user))
            .cloned();
        match staff {
            Some(s) => SignDialog {
                amendment,
                clinician_name: s.name.clone(),
                registration: s.registration.clone(),
                staff: Some(s),
                ..SignDialog::default()
            },
            None => SignDialog {
                amendment,
                clinician_name: user.to_owned(),
                ..SignDialog::default()
            },
        }
    }
}

/// An earlier version opened read-only.
#[derive(Debug, Clone)]
pub struct VersionView {
    pub revision: Revision,
    pub encounter: Encounter,
    pub forms: Forms,
}

/// Everything the editor shows for one record.
#[derive(Debug)]
pub struct EditorState {
    pub doc: Encounter,
    pub mode: EditMode,
    /// Never saved: nothing is written until the first edit, so an empty "New record" that is
    /// left at once leaves no trace.
    pub is_new: bool,
    pub save: SaveStatus,
    pub section: Section,
    /// A field to give focus to and scroll to on the next frame.
    pub jump: Option<Field>,
    pub forms: Forms,
    pub obs: ObsEntry,
    pub versions: Vec<VersionInfo>,
    pub review: Option<(Decision, String)>,
    pub feedback: Vec<FeedbackEntry>,
    pub sync_state: Option<SyncState>,
    /// Unsigned amendment edits loaded with the record.
    pub amendment_draft: Option<Encounter>,
    pub viewing_version: Option<VersionView>,
    pub dialog: Option<SignDialog>,
    /// A one-line message after signing, amending and similar.
    pub notice: Option<String>,
    /// The unlocked user: offered as crew member and default clinician.
    pub user: String,
    /// Where "Save FHIR bundle" and "Save PDF" write (a USB stick, a shared drive...).
    pub export_folder: String,
    /// "Discard amendment…" was pressed: ask before throwing the changes away.
    pub confirm_discard: bool,
}

/// The folder exports go to until the crew picks another: the user's documents folder.
pub fn default_export_folder() -> String {
    directories::UserDirs::new()
        .and_then(|d| {
            d.document_dir()
                .map(|p| p.display().to_string())
                .or_else(|| Some(d.home_dir().display().to_string()))
        })
        .unwrap_or_else(|| ".".to_owned())
}

impl EditorState {
    /// A new, empty draft created now.
    pub fn new_record(user: &str) -> Self {
        let doc = Encounter::new_draft(chrono::Utc::now());
        Self::with_doc(doc, EditMode::Draft, true, user)
    }

    /// The editor for a record the store returned.
    pub fn from_bundle(bundle: RecordBundle, user: &str) -> Self {
        let mode = if bundle.encounter.status.is_signed() {
            EditMode::Signed
        } else {
            EditMode::Draft
        };
        let mut state = Self::with_doc(bundle.encounter, mode, false, user);
        state.versions = bundle.versions;
        state.review = bundle.review;
        state.feedback = bundle.feedback;
        state.sync_state = bundle.sync_state;
        state.amendment_draft = bundle.amendment_draft;
        if state
            .review
            .as_ref()
            .is_some_and(|(d, _)| *d == Decision::Returned)
        {
            state.section = Section::SignOff;
        }
        state
    }

    fn with_doc(doc: Encounter, mode: EditMode, is_new: bool, user: &str) -> Self {
        Self {
            forms: Forms::from_encounter(&doc),
            doc,
            mode,
            is_new,
            save: SaveStatus::default(),
            section: Section::Incident,
            jump: None,
            obs: ObsEntry::default(),
            versions: Vec::new(),
            review: None,
            feedback: Vec::new(),
            sync_state: None,
            amendment_draft: None,
            viewing_version: None,
            dialog: None,
            notice: None,
            user: user.to_owned(),
            export_folder: default_export_folder(),
            confirm_discard: false,
        }
    }

    /// The record's id.
    pub fn id(&self) -> Uuid {
        self.doc.id
    }

    /// True when the current document may be edited.
    pub fn editable(&self) -> bool {
        self.mode != EditMode::Signed && self.viewing_version.is_none()
    }

    /// Starts an amendment: resumes unsigned amendment edits if there are any.
    pub fn start_amendment(&mut self) {
        if let Some(draft) = self.amendment_draft.take() {
            self.doc = draft;
            self.forms = Forms::from_encounter(&self.doc);
        }
        self.mode = EditMode::Amending;
        self.viewing_version = None;
        self.notice = Some(
            "Amending: changes are kept on this tablet until you sign the amendment.".to_owned(),
        );
    }

    /// Jumps to a field named by the completion check.
    pub fn jump_to(&mut self, field: Field) {
        self.section = Section::of_field(field);
        self.jump = Some(field);
        self.dialog = None;
    }

    /// The items the completion check lists, leaving out the signature the dialog asks for.
    pub fn missing_before_signing(&self) -> Vec<crate::model::MissingItem> {
        missing_items(&self.doc)
            .into_iter()
            .filter(|m| m.field != Field::SignOffClinician)
            .collect()
    }
}

/// If `field` is the jump target, gives `response` focus and scrolls it into view.
pub fn jump_here(response: &Response, jump: &mut Option<Field>, field: Field) {
    if *jump == Some(field) {
        response.request_focus();
        response.scroll_to_me(Some(egui::Align::Center));
        *jump = None;
    }
}

fn status_text(doc: &Encounter, mode: EditMode) -> (&'static str, (egui::Color32, egui::Color32)) {
    match (mode, doc.status) {
        (EditMode::Amending, _) => ("Amending", theme::info_badge()),
        (_, RecordStatus::Draft) => ("Draft", theme::info_badge()),
        (_, RecordStatus::Completed) => ("Signed", theme::good_badge()),
        (_, RecordStatus::Amended) => ("Signed (amended)", theme::good_badge()),
    }
}

fn save_text(state: &EditorState) -> String {
    if let Some(e) = &state.save.error {
        return format!("Not saved: {e}");
    }
    if state.save.has_unsent() || state.save.in_flight > 0 {
        return "Saving…".to_owned();
    }
    match (state.mode, state.save.last_saved_local) {
        (EditMode::Signed, _) => "Read-only".to_owned(),
        (EditMode::Amending, Some(t)) => format!("Amendment kept {}", t.format("%H:%M:%S")),
        (_, Some(t)) => format!("Saved {}", t.format("%H:%M:%S")),
        (_, None) if state.is_new => "Saved as you type".to_owned(),
        (_, None) => "Saved".to_owned(),
    }
}

/// The top bar: back, who and what, save state, latest NEWS2 and the sign/amend buttons.
fn top_bar_ui(ui: &mut Ui, state: &mut EditorState, out: &mut Vec<Command>) {
    // One line at every window size: a long name is cut short rather than wrapping the bar.
    ui.horizontal(|ui| {
        if ui
            .button("Back to records")
            .on_hover_text("Your changes are saved")
            .clicked()
        {
            out.push(Command::BackToList);
        }
        // The name, and under it date of birth (or age) and NHS number: with several jobs on
        // one tablet, the name alone does not say which patient this is.
        let name = state.doc.patient.display_name();
        let today = chrono::Local::now().date_naive();
        ui.scope(|ui| {
            ui.set_max_width(300.0);
            ui.spacing_mut().item_spacing.y = 0.0;
            ui.vertical(|ui| {
                ui.add(
                    egui::Label::new(
                        RichText::new(if name.is_empty() {
                            "New patient"
                        } else {
                            name.as_str()
                        })
                        .size(20.0)
                        .strong(),
                    )
                    .truncate(),
                );
                ui.add(
                    egui::Label::new(
                        RichText::new(state.doc.patient.identifiers_line(today)).size(13.0),
                    )
                    .truncate(),
                );
            });
        });
        if !state.doc.incident.incident_number.is_empty() {
            ui.label(RichText::new(&state.doc.incident.incident_number).size(20.0));
        }
        let (text, colours) = status_text(&state.doc, state.mode);
        badge(ui, text, colours);
        current_news2_badge(ui, &state.doc, 20.0);
        let saved = save_text(state);
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            if state.viewing_version.is_none() {
                action_buttons_ui(ui, state, out);
            }
            let text = if state.save.error.is_some() {
                RichText::new(saved)
                    .color(ui.visuals().error_fg_color)
                    .strong()
            } else {
                RichText::new(saved).weak()
            };
            ui.add(egui::Label::new(text).truncate());
        });
    });
}

/// "Complete and sign…", "Amend…" or "Sign amendment…" / "Stop amending".
fn action_buttons_ui(ui: &mut Ui, state: &mut EditorState, out: &mut Vec<Command>) {
    {
        {
            match state.mode {
                EditMode::Draft => {
                    if ui
                        .add(egui::Button::new(
                            RichText::new("Complete and sign…").strong(),
                        ))
                        .clicked()
                    {
                        state.dialog = Some(SignDialog::for_user(&state.user, &state.forms, false));
                    }
                }
                EditMode::Signed => {
                    if ui.button("Amend…").clicked() {
                        out.push(Command::StartAmendment);
                    }
                }
                EditMode::Amending => {
                    if ui
                        .add(egui::Button::new(RichText::new("Sign amendment…").strong()))
                        .clicked()
                    {
                        state.dialog = Some(SignDialog::for_user(&state.user, &state.forms, true));
                    }
                    if ui
                        .button("Stop amending")
                        .on_hover_text(
                            "Your amendment stays saved on this tablet; you can continue it later",
                        )
                        .clicked()
                    {
                        out.push(Command::StopAmending);
                    }
                    if state.confirm_discard {
                        ui.label(RichText::new("Throw away the unsigned changes?").strong());
                        if ui.button("Discard changes").clicked() {
                            state.confirm_discard = false;
                            out.push(Command::DiscardAmendment);
                        }
                        if ui.button("Keep them").clicked() {
                            state.confirm_discard = false;
                        }
                    } else if ui
                        .button("Discard amendment…")
                        .on_hover_text(
                            "Throws away the unsigned changes; the signed record stays as it is",
                        )
                        .clicked()
                    {
                        state.confirm_discard = true;
                    }
                }
            }
        }
    }
}

/// The supervisor's decision, shown prominently (returned records above all).
fn review_banner_ui(ui: &mut Ui, state: &EditorState) {
    // The record's current decision; once a returned record is signed again the store clears
    // it (it no longer waits for the crew), and the last decision in the history is shown.
    let from_history = state
        .feedback
        .last()
        .map(|f| (f.decision, f.comment.clone()));
    let Some((decision, comment)) = state.review.clone().or(from_history) else {
        return;
    };
    let comment = &comment;
    let (bg, fg) = super::list::decision_badge(decision).1;
    egui::Frame::new()
        .fill(bg)
        .corner_radius(8.0)
        .inner_margin(egui::Margin::same(12))
        .show(ui, |ui| {
            ui.set_width(ui.available_width());
            // A decision on an earlier version than the newest signed one: the crew has
            // amended since, and the supervisor has the new version to review.
            let amended_since = state.feedback.last().is_some_and(|f| {
                state
                    .versions
                    .iter()
                    .any(|v| v.status.is_signed() && v.revision > f.revision)
            });
            let heading = match decision {
                Decision::Returned if amended_since => "Returned by a supervisor; amended since",
                Decision::Returned => "Returned by a supervisor",
                Decision::Approved => "Approved by a supervisor",
                Decision::Flagged => "Flagged by a supervisor",
            };
            ui.label(RichText::new(heading).color(fg).strong().size(22.0));
            if !comment.trim().is_empty() {
                ui.label(
                    RichText::new(format!("“{}”", comment.trim()))
                        .color(fg)
                        .size(21.0),
                );
            }
            if let Some(last) = state.feedback.last() {
                ui.label(
                    RichText::new(format!(
                        "{} · {}",
                        last.decided_by,
                        last.decided_at_utc
                            .with_timezone(&Local)
                            .format("%d %b %H:%M")
                    ))
                    .color(fg),
                );
            }
            if decision == Decision::Returned && amended_since {
                ui.label(
                    RichText::new("The amended version has gone to the supervisor for review.")
                        .color(fg),
                );
            } else if decision == Decision::Returned && state.mode == EditMode::Signed {
                ui.label(RichText::new("Tap \"Amend…\" to correct the record.").color(fg));
            }
        });
}

/// The sign-off section: who signed, the supervisor's feedback and every version.
fn signoff_ui(ui: &mut Ui, state: &mut EditorState, out: &mut Vec<Command>) {
    let doc = match &state.viewing_version {
        Some(v) => &v.encounter,
        None => &state.doc,
    };
    match &doc.sign_off {
        Some(s) => {
            ui.label(
                RichText::new(format!(
                    "Signed by {}{} at {}",
                    s.clinician_name,
                    if s.registration.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", s.registration)
                    },
                    s.signed_at_utc
                        .with_timezone(&Local)
                        .format("%d %b %Y %H:%M")
                ))
                .strong(),
            );
        }
        None => {
            ui.label("Not signed yet.");
        }
    }
    if let Some(r) = &doc.amendment_reason {
        ui.label(format!("Reason for amendment: {r}"));
    }
    if state.mode == EditMode::Draft && state.viewing_version.is_none() {
        let missing = state.missing_before_signing();
        if missing.is_empty() {
            ui.label("Everything needed for signing is recorded.");
        } else {
            ui.label(RichText::new("Still needed before signing:").strong());
            ui.horizontal_wrapped(|ui| {
                for m in &missing {
                    let r = ui.button(m.label);
                    name_widget(
                        &r,
                        egui::Role::Button,
                        &format!("Go to {}", m.label.to_lowercase()),
                    );
                    if r.clicked() {
                        state.jump_to(m.field);
                    }
                }
            });
        }
    }
    if !state.feedback.is_empty() {
        ui.separator();
        ui.label(RichText::new("Supervisor feedback").strong().size(22.0));
        for f in &state.feedback {
            ui.horizontal_wrapped(|ui| {
                let (text, colours) = super::list::decision_badge(f.decision);
                badge(ui, &text, colours);
                ui.label(format!(
                    "version {} · {} · {}",
                    f.revision,
                    f.decided_by,
                    f.decided_at_utc.with_timezone(&Local).format("%d %b %H:%M")
                ));
                if !f.comment.is_empty() {
                    ui.label(RichText::new(&f.comment).strong());
                }
            });
        }
    }
    ui.separator();
    ui.label(RichText::new("Versions").strong().size(22.0));
    if state.versions.is_empty() {
        ui.label("No saved versions yet.");
    }
    let viewing = state.viewing_version.as_ref().map(|v| v.revision);
    // Newest first; drafts are many, signed versions are the ones that matter.
    for v in state.versions.iter().rev() {
        ui.horizontal_wrapped(|ui| {
            let status = match v.status {
                RecordStatus::Draft => "draft",
                RecordStatus::Completed => "signed",
                RecordStatus::Amended => "amendment",
            };
            ui.label(format!(
                "Version {} · {} · {} · {}",
                v.revision,
                status,
                v.saved_at_utc
                    .with_timezone(&Local)
                    .format("%d %b %H:%M:%S"),
                v.saved_by
            ));
            if let Some(reason) = &v.amendment_reason {
                ui.label(RichText::new(format!("Reason: {reason}")).italics());
            }
            if viewing == Some(v.revision) {
                ui.label(RichText::new("(showing)").strong());
            } else {
                let r = ui.button("View");
                name_widget(
                    &r,
                    egui::Role::Button,
                    &format!("View version {}", v.revision),
                );
                if r.clicked() {
                    out.push(Command::OpenVersion(v.revision));
                }
            }
        });
    }
}

/// The signing dialog. Lists what is missing (each item jumps to its field); when nothing
/// is, asks for the clinician (and for an amendment, the reason).
fn sign_dialog_ui(ui: &mut Ui, state: &mut EditorState, out: &mut Vec<Command>) {
    let missing = state.missing_before_signing();
    let mut close = false;
    let mut jump = None;
    let Some(dialog) = state.dialog.as_mut() else {
        return;
    };
    let amendment = dialog.amendment;
    let frame = egui::Frame::popup(ui.style()).inner_margin(egui::Margin::same(20));
    egui::Modal::new(egui::Id::unique("sign-dialog"))
        .frame(frame)
        .show(ui.ctx(), |ui| {
            ui.set_width(520.0_f32.min(ui.ctx().content_rect().width() - 40.0));
            if !missing.is_empty() {
                ui.heading("Not ready to sign");
                ui.label("These are still missing. Tap one to go to it:");
                for m in &missing {
                    let r = ui.add(
                        egui::Button::new(RichText::new(m.label).strong())
                            .min_size(egui::vec2(ui.available_width(), 44.0)),
                    );
                    if r.clicked() {
                        jump = Some(m.field);
                    }
                }
                ui.add_space(6.0);
                if ui.button("Close").clicked() {
                    close = true;
                }
                return;
            }
            ui.heading(if amendment {
                "Sign amendment"
            } else {
                "Complete and sign"
            });
            ui.label(if amendment {
                "The earlier signed version is kept. Say why the record is being changed."
            } else {
                "Signing locks the record. Later changes are amendments with a reason."
            });
            if amendment {
                let l = ui.label("Reason for amendment");
                ui.add(
                    TextEdit::multiline(&mut dialog.reason)
                        .desired_rows(2)
                        .desired_width(f32::INFINITY),
                )
                .labelled_by(l.id);
            }
            match &dialog.staff {
                Some(staff) => {
                    let registration = if staff.registration.is_empty() {
                        String::new()
                    } else {
                        format!(", {}", staff.registration)
                    };
                    ui.label(
                        RichText::new(format!(
                            "Signing as {} ({}{registration})",
                            staff.name, staff.role
                        ))
                        .strong(),
                    );
                    ui.label(
                        RichText::new(
                            "From the trust's staff list for the user signed in on this tablet.",
                        )
                        .weak(),
                    );
                }
                None => {
                    let l = ui.label("Clinician name");
                    ui.add(
                        TextEdit::singleline(&mut dialog.clinician_name)
                            .desired_width(f32::INFINITY),
                    )
                    .labelled_by(l.id);
                    let l = ui.label("Registration (HCPC or staff number)");
                    ui.add(
                        TextEdit::singleline(&mut dialog.registration)
                            .desired_width(f32::INFINITY),
                    )
                    .labelled_by(l.id);
                    warning_text(
                        ui,
                        "The user signed in is not in the trust's staff list: check the name and registration.",
                    );
                }
            }
            if let Some(e) = &dialog.error {
                error_text(ui, &sentence(e));
            }
            let ready = !dialog.clinician_name.trim().is_empty()
                && (!amendment || !dialog.reason.trim().is_empty())
                && !dialog.busy;
            ui.horizontal(|ui| {
                let label = if amendment {
                    "Sign amendment"
                } else {
                    "Sign record"
                };
                if ui
                    .add_enabled(ready, egui::Button::new(RichText::new(label).strong()))
                    .clicked()
                {
                    dialog.busy = true;
                    dialog.error = None;
                    out.push(if amendment {
                        Command::SignAmendment {
                            reason: dialog.reason.trim().to_owned(),
                            clinician_name: dialog.clinician_name.trim().to_owned(),
                            registration: dialog.registration.trim().to_owned(),
                        }
                    } else {
                        Command::Sign {
                            clinician_name: dialog.clinician_name.trim().to_owned(),
                            registration: dialog.registration.trim().to_owned(),
                        }
                    });
                }
                if ui.button("Cancel").clicked() {
                    close = true;
                }
                if dialog.busy {
                    ui.spinner();
                }
            });
            if amendment && dialog.reason.trim().is_empty() {
                ui.label(RichText::new("An amendment needs a reason").weak());
            }
        });
    if let Some(f) = jump {
        state.jump_to(f);
    } else if close {
        state.dialog = None;
    }
}

/// The editor screen.
pub fn editor_ui(ui: &mut Ui, state: &mut EditorState, now: Instant, out: &mut Vec<Command>) {
    egui::Panel::top("editor-top").show(ui, |ui| {
        top_bar_ui(ui, state, out);
        if let Some(n) = &state.notice {
            ui.label(RichText::new(n).strong());
        }
        if let Some(v) = &state.viewing_version {
            ui.horizontal(|ui| {
                badge(
                    ui,
                    &format!("Viewing version {} (read-only)", v.revision),
                    theme::info_badge(),
                );
                if ui.button("Back to current version").clicked() {
                    out.push(Command::CloseVersion);
                }
            });
        }
    });
    egui::Panel::left("editor-nav")
        .resizable(false)
        .exact_size(230.0)
        .show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| {
                // Every section, sign-off included, fits an 800-pixel-high screen unscrolled.
                ui.spacing_mut().item_spacing.y = 4.0;
                let missing: Vec<Section> = if state.mode == EditMode::Draft {
                    state
                        .missing_before_signing()
                        .iter()
                        .map(|m| Section::of_field(m.field))
                        .collect()
                } else {
                    Vec::new()
                };
                for s in Section::ALL {
                    let mut text = RichText::new(s.label()).size(19.0);
                    if state.section == s {
                        text = text.strong();
                    }
                    let r = ui
                        .add(egui::Button::selectable(state.section == s, text).min_size(
                            egui::vec2(ui.available_width(), theme::TOUCH_TARGET_POINTS),
                        ));
                    if missing.contains(&s) {
                        r.clone()
                            .on_hover_text("Something needed for signing is missing here");
                        let c = r.rect.left_center() + egui::vec2(7.0, 0.0);
                        ui.painter()
                            .circle_filled(c, 5.0, ui.visuals().warn_fg_color);
                    }
                    if r.clicked() {
                        state.section = s;
                    }
                }
            });
        });
    egui::CentralPanel::default_margins().show(ui, |ui| {
        review_banner_ui(ui, state);
        egui::ScrollArea::vertical()
            .id_salt(("section", state.section.label()))
            .auto_shrink([false, false])
            .show(ui, |ui| {
                ui.heading(state.section.label());
                ui.add_space(6.0);
                section_body_ui(ui, state, now, out);
                // The next section offered at the end of each, so a record can be written top
                // to bottom without reaching for the side list.
                if let Some(next) = state.section.next() {
                    ui.add_space(16.0);
                    let r = ui.add(
                        egui::Button::new(
                            RichText::new(format!("Next: {}", next.label())).strong(),
                        )
                        .min_size(egui::vec2(0.0, theme::TOUCH_TARGET_POINTS)),
                    );
                    if r.clicked() {
                        state.section = next;
                    }
                }
                ui.add_space(40.0);
            });
    });
    if state.viewing_version.is_none() {
        state.forms.pad.ui(ui.ctx());
    }
    sign_dialog_ui(ui, state, out);
}

/// `now` is the frame's time (passed in by the app), which dates an edit for autosave.
fn section_body_ui(ui: &mut Ui, state: &mut EditorState, now: Instant, out: &mut Vec<Command>) {
    if state.section == Section::SignOff {
        signoff_ui(ui, state, out);
        return;
    }
    let editable = state.editable();
    let user = state.user.clone();
    let viewing_revision = state.viewing_version.as_ref().map(|v| v.revision);
    let (doc, forms) = match &mut state.viewing_version {
        Some(v) => (&mut v.encounter, &mut v.forms),
        None => (&mut state.doc, &mut state.forms),
    };
    let jump = &mut state.jump;
    let obs = &mut state.obs;
    let section = state.section;
    let export_folder = &mut state.export_folder;
    let changed = ui
        // Observations draw their own read-only form (no entry row) and keep the NEWS2
        // colours at full strength; the handover is text to read.
        .add_enabled_ui(
            editable || matches!(section, Section::Handover | Section::Observations),
            |ui| match section {
                Section::Incident => sections::incident_ui(ui, doc, forms, jump),
                Section::Patient => sections::patient_ui(ui, doc, forms, jump),
                Section::History => sections::history_ui(ui, doc, forms, jump),
                Section::Assessment => assessment::assessment_ui(ui, doc, forms, jump),
                Section::Observations => observations::observations_ui(
                    ui,
                    doc,
                    obs,
                    &mut forms.pad,
                    jump,
                    editable,
                    &user,
                ),
                Section::Treatment => sections::treatment_ui(ui, doc, forms, editable, &user),
                Section::Outcome => sections::outcome_ui(ui, doc, forms, jump),
                Section::Notes => sections::notes_ui(ui, doc),
                Section::Crew => sections::crew_ui(ui, doc, forms, jump, editable, &user),
                Section::Handover => {
                    sections::handover_export_ui(ui, doc, export_folder, viewing_revision, out);
                    ui.add_space(12.0);
                    sections::handover_ui(ui, doc);
                    false
                }
                Section::SignOff => false,
            },
        )
        .inner;
    // Removals the crew confirmed are audited (the saved version no longer holds them).
    for action in forms.removed.drain(..).chain(obs.removed.drain(..)) {
        out.push(Command::AuditRemoval(action));
    }
    if changed && editable {
        state.save.mark_edited(now);
        state.notice = None;
    }
}
