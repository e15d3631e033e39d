//! The read-only record view for a supervisor: every section of the version shown (drawn by
//! the editor's own section functions, disabled), the observation table and NEWS2 trend,
//! the ATMIST handover, the versions with their amendment reasons, signature checks and what
//! changed, and the decision panel.

use chrono::{DateTime, Local, Utc};
use egui::{RichText, TextEdit, Ui};
use uuid::Uuid;

use super::ReviewCommand;
use super::diff::{FieldChange, changes};
use super::queue::decision_badge;
use super::service::CheckedDetail;
use crate::model::{Encounter, Field, RecordStatus, Revision};
use crate::protocol::{Decision, DecisionRecord, DecisionRequest};
use crate::review_client::proof::SignatureCheck;
use crate::ui::editor::observations::{self, ObsEntry};
use crate::ui::editor::{Forms, Section, sections};
use crate::ui::theme;
use crate::ui::widgets::{badge, current_news2_badge, error_text};

/// Shown when "Return to crew" or "Flag" is pressed without a comment.
pub const COMMENT_NEEDED: &str =
    "Write a comment for the crew first: returning or flagging needs one.";

/// One signed version, parsed once when the record arrives.
#[derive(Debug)]
pub struct VersionDoc {
    pub revision: Revision,
    pub status: RecordStatus,
    /// `None` when this app cannot read the stored document.
    pub encounter: Option<Encounter>,
    pub forms: Forms,
    pub obs: ObsEntry,
    /// This computer's own check of the content hash, the device signature against the key
    /// logged at enrolment, and the version's place in the server's log.
    pub check: SignatureCheck,
    pub saved_at_utc: DateTime<Utc>,
    pub received_at_utc: DateTime<Utc>,
    /// What changed since the version before (empty for the first).
    pub changes: Vec<FieldChange>,
}

/// One record as the supervisor sees it. Memory only.
#[derive(Debug)]
pub struct RecordView {
    pub record_id: Uuid,
    pub device_name: String,
    /// Oldest first.
    pub versions: Vec<VersionDoc>,
    /// Oldest first.
    pub decisions: Vec<DecisionRecord>,
    /// Index into `versions` of the one on screen.
    pub showing: usize,
    pub section: Section,
    /// The comment being written for the crew.
    pub comment: String,
    /// A decision has been sent and not answered.
    pub deciding: bool,
    /// The decision last sent (for "Retry").
    pub last_request: Option<DecisionRequest>,
    /// Why the last decision did not go through, in words.
    pub message: Option<String>,
    /// What just happened (decision recorded, signed in again).
    pub notice: Option<String>,
    jump: Option<Field>,
}

impl RecordView {
    /// Parses every version's document and works out what changed between them.
    pub fn from_detail(checked: CheckedDetail) -> Self {
        let CheckedDetail { detail, checks } = checked;
        let mut versions: Vec<VersionDoc> = Vec::with_capacity(detail.versions.len());
        let mut previous: Option<serde_json::Value> = None;
        let mut checks = checks.into_iter();
        for v in detail.versions {
            let encounter: Option<Encounter> = serde_json::from_value(v.document.clone()).ok();
            let forms = encounter
                .as_ref()
                .map(Forms::from_encounter)
                .unwrap_or_default();
            let diff = previous
                .as_ref()
                .map(|p| changes(p, &v.document))
                .unwrap_or_default();
            previous = Some(v.document);
            versions.push(VersionDoc {
                revision: v.revision,
                status: v.status,
                encounter,
                forms,
                obs: ObsEntry::default(),
                check: checks.next().unwrap_or_else(|| {
                    SignatureCheck::NotProved("not checked on this computer".into())
                }),
                saved_at_utc: v.saved_at_utc,
                received_at_utc: v.received_at_utc,
                changes: diff,
            });
        }
        Self {
            record_id: detail.record_id,
            device_name: detail.device_name,
            showing: versions.len().saturating_sub(1),
            versions,
            decisions: detail.decisions,
            section: Section::Incident,
            comment: String::new(),
            deciding: false,
            last_request: None,
            message: None,
            notice: None,
            jump: None,
        }
    }

    /// After a reload of the same record: keep the section, the comment and the messages;
    /// show the newest version.
    pub fn keep_from(&mut self, old: RecordView) {
        self.section = old.section;
        self.comment = old.comment;
        self.message = old.message;
        self.notice = old.notice;
        self.last_request = old.last_request;
    }

    /// The revision a decision made now would name: the newest, when it is the one shown.
    pub fn shown_revision(&self) -> Option<Revision> {
        let shown = self.versions.get(self.showing)?;
        (self.showing + 1 == self.versions.len()).then_some(shown.revision)
    }

    /// The newest version.
    pub fn latest(&self) -> Option<&VersionDoc> {
        self.versions.last()
    }

    /// The latest decision on the newest version, if any.
    pub fn current_decision(&self) -> Option<&DecisionRecord> {
        let latest = self.latest()?.revision;
        self.decisions.iter().rev().find(|d| d.revision == latest)
    }
}

/// The notice after a decision was recorded.
pub fn decided_notice(d: &DecisionRecord) -> String {
    match d.decision {
        Decision::Approved => format!("Approved version {}.", d.revision),
        Decision::Returned => format!(
            "Returned version {} to the crew with your comment. They see it after their next sync.",
            d.revision
        ),
        Decision::Flagged => format!("Flagged version {} for clinical audit.", d.revision),
    }
}

/// The message when the crew amended the record after the version a decision named.
pub fn superseded_message(revision: Option<Revision>) -> String {
    let which = revision.map_or_else(
        || "the version you reviewed".to_owned(),
        |r| format!("version {r}"),
    );
    format!(
        "Not recorded: the crew amended this record after {which}. The newest version is now \
         shown. Review it and decide again; your comment is kept."
    )
}

fn local(at: DateTime<Utc>) -> String {
    at.with_timezone(&Local)
        .format("%d %b %Y %H:%M")
        .to_string()
}

fn status_word(status: RecordStatus) -> &'static str {
    match status {
        RecordStatus::Draft => "draft",
        RecordStatus::Completed => "signed",
        RecordStatus::Amended => "amendment",
    }
}

/// The signature check as this computer made it (never the server's own say-so).
fn signature_badge(ui: &mut Ui, check: &SignatureCheck) {
    match check {
        SignatureCheck::Proved {
            key_fingerprint,
            signer,
            log_size,
        } => {
            let by = match signer {
                Some(name) => format!(
                    "signed by {name}'s own key, logged when it was registered through the \
                     tablet (fingerprint {key_fingerprint})"
                ),
                None => format!(
                    "signed by the device key logged when the tablet enrolled (fingerprint \
                     {key_fingerprint}): signature version 1, which names no clinician"
                ),
            };
            badge(ui, "Signature checked here", theme::good_badge()).on_hover_text(format!(
                "Checked on this computer: {by}, and in the server's log of {log_size} entries"
            ));
        }
        SignatureCheck::NotProved(reason) => {
            badge(ui, "Signature not proved", theme::alert_badge())
                .on_hover_text(format!("Not proved on this computer: {reason}"));
        }
    }
}

/// The record page.
pub fn record_ui(
    ui: &mut Ui,
    view: &mut RecordView,
    error: Option<&str>,
    can_retry: bool,
    out: &mut Vec<ReviewCommand>,
) {
    egui::Panel::top("review-record-top").show(ui, |ui| {
        top_ui(ui, view, error, can_retry, out);
    });
    egui::Panel::left("review-record-nav")
        .resizable(false)
        .exact_size(220.0)
        .show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| {
                // Tighter than the editor's list: the top bar here is taller, and every
                // section should fit on an 800-pixel-high screen without scrolling.
                ui.spacing_mut().item_spacing.y = 4.0;
                for s in Section::ALL {
                    let label = if s == Section::SignOff {
                        "Versions and changes"
                    } else {
                        s.label()
                    };
                    let mut text = RichText::new(label).size(19.0);
                    if view.section == s {
                        text = text.strong();
                    }
                    if ui
                        .add(
                            egui::Button::selectable(view.section == s, text).min_size(egui::vec2(
                                ui.available_width(),
                                theme::TOUCH_TARGET_POINTS,
                            )),
                        )
                        .clicked()
                    {
                        view.section = s;
                    }
                }
            });
        });
    // Below the record rather than beside it, so the observation table and the trend get
    // the whole width.
    egui::Panel::bottom("review-record-decision").show(ui, |ui| {
        ui.add_space(6.0);
        decision_ui(ui, view, out);
        ui.add_space(2.0);
    });
    egui::CentralPanel::default_margins().show(ui, |ui| {
        egui::ScrollArea::vertical()
            .id_salt(("review-section", view.section.label()))
            .auto_shrink([false, false])
            .show(ui, |ui| {
                if view.section == Section::SignOff {
                    ui.heading("Versions and changes");
                    ui.add_space(6.0);
                    decisions_so_far_ui(ui, view);
                    versions_ui(ui, view, out);
                } else {
                    ui.heading(view.section.label());
                    ui.add_space(6.0);
                    section_body_ui(ui, view);
                }
                ui.add_space(40.0);
            });
    });
}

fn top_ui(
    ui: &mut Ui,
    view: &mut RecordView,
    error: Option<&str>,
    can_retry: bool,
    out: &mut Vec<ReviewCommand>,
) {
    let dark = ui.visuals().dark_mode;
    ui.horizontal(|ui| {
        if ui.button("Back to queue").clicked() {
            out.push(ReviewCommand::BackToQueue);
        }
        let shown = view.versions.get(view.showing);
        let doc = shown.and_then(|v| v.encounter.as_ref());
        let name = doc.map(|d| d.patient.display_name()).unwrap_or_default();
        ui.scope(|ui| {
            ui.set_max_width(280.0);
            ui.add(
                egui::Label::new(
                    RichText::new(if name.is_empty() {
                        "Name not recorded"
                    } else {
                        name.as_str()
                    })
                    .size(24.0)
                    .strong(),
                )
                .truncate(),
            );
        });
        if let Some(d) = doc
            && !d.incident.incident_number.is_empty()
        {
            ui.label(RichText::new(&d.incident.incident_number).size(20.0));
        }
        if let Some(d) = doc {
            current_news2_badge(ui, d, 20.0);
        }
        let current = view.current_decision().map(|d| d.decision);
        let (text, colours) = decision_badge(current, dark);
        badge(ui, text, colours);
    });
    ui.horizontal_wrapped(|ui| {
        ui.label(format!("From {}", view.device_name));
        if let Some(v) = view.versions.get(view.showing) {
            signature_badge(ui, &v.check);
            match &v.check {
                SignatureCheck::Proved {
                    key_fingerprint,
                    signer: Some(name),
                    ..
                } => ui.label(format!("signed by {name}, key {key_fingerprint}")),
                SignatureCheck::Proved {
                    key_fingerprint,
                    signer: None,
                    ..
                } => ui.label(format!("device key {key_fingerprint}")),
                SignatureCheck::NotProved(reason) => {
                    ui.label(RichText::new(reason).color(ui.visuals().warn_fg_color))
                }
            };
        }
        ui.label(RichText::new("Versions:").strong());
        let latest = view.versions.len().saturating_sub(1);
        for (i, v) in view.versions.iter().enumerate() {
            let text = format!(
                "Version {}{}",
                v.revision,
                if i == latest { " (newest)" } else { "" }
            );
            if crate::ui::widgets::choice(ui, view.showing == i, text).clicked() {
                out.push(ReviewCommand::ShowVersion(i));
            }
        }
    });
    if view.showing + 1 < view.versions.len() {
        badge(
            ui,
            "Showing an earlier version (read-only). Decisions are made on the newest version.",
            theme::info_badge(),
        );
    }
    if let Some(n) = &view.notice {
        ui.label(RichText::new(n).strong());
    }
    if let Some(e) = error {
        ui.horizontal_wrapped(|ui| {
            error_text(ui, e);
            if can_retry && ui.button("Retry").clicked() {
                out.push(ReviewCommand::Retry);
            }
        });
    }
}

fn section_body_ui(ui: &mut Ui, view: &mut RecordView) {
    let section = view.section;
    let jump = &mut view.jump;
    let Some(v) = view.versions.get_mut(view.showing) else {
        return;
    };
    let Some(doc) = v.encounter.as_mut() else {
        error_text(
            ui,
            "This version could not be read by this app. The version history still lists it.",
        );
        return;
    };
    let forms = &mut v.forms;
    let obs = &mut v.obs;
    // Read-only: the editor's drawing, disabled. Observations and the handover stay enabled
    // (their own read-only form) so the NEWS2 colours and chart keep full strength.
    ui.add_enabled_ui(
        matches!(section, Section::Observations | Section::Handover),
        |ui| match section {
            Section::Incident => {
                sections::incident_ui(ui, doc, forms, jump);
            }
            Section::Patient => {
                sections::patient_ui(ui, doc, forms, jump);
            }
            Section::History => {
                sections::history_ui(ui, doc, forms, jump);
            }
            Section::Assessment => {
                crate::ui::editor::assessment::assessment_ui(ui, doc, forms, jump);
            }
            Section::Observations => {
                observations::observations_ui(ui, doc, obs, &mut forms.pad, jump, false, "");
            }
            Section::Treatment => {
                sections::treatment_ui(ui, doc, forms, false, "");
            }
            Section::Outcome => {
                sections::outcome_ui(ui, doc, forms, jump);
            }
            Section::Notes => {
                sections::notes_ui(ui, doc);
            }
            Section::Crew => {
                sections::crew_ui(ui, doc, forms, jump, false, "");
            }
            Section::Handover => sections::handover_ui(ui, doc),
            Section::SignOff => {}
        },
    );
}

fn versions_ui(ui: &mut Ui, view: &RecordView, out: &mut Vec<ReviewCommand>) {
    for (i, v) in view.versions.iter().enumerate().rev() {
        egui::Frame::group(ui.style()).show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.horizontal_wrapped(|ui| {
                ui.label(
                    RichText::new(format!(
                        "Version {} · {}",
                        v.revision,
                        status_word(v.status)
                    ))
                    .strong()
                    .size(21.0),
                );
                signature_badge(ui, &v.check);
                if view.showing == i {
                    ui.label(RichText::new("(showing)").strong());
                } else {
                    let r = ui.button("Show");
                    crate::ui::editor::name_widget(
                        &r,
                        egui::Role::Button,
                        &format!("Show version {}", v.revision),
                    );
                    if r.clicked() {
                        out.push(ReviewCommand::ShowVersion(i));
                    }
                }
            });
            ui.label(format!(
                "Saved on the tablet {} · received by the server {}",
                local(v.saved_at_utc),
                local(v.received_at_utc)
            ));
            if let Some(s) = v.encounter.as_ref().and_then(|e| e.sign_off.as_ref()) {
                ui.label(format!(
                    "Signed by {}{} at {}",
                    s.clinician_name,
                    if s.registration.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", s.registration)
                    },
                    local(s.signed_at_utc)
                ));
            }
            if let Some(r) = v
                .encounter
                .as_ref()
                .and_then(|e| e.amendment_reason.as_ref())
            {
                ui.label(RichText::new(format!("Reason for amendment: {r}")).strong());
            }
            if i > 0 {
                let before = view
                    .versions
                    .get(i - 1)
                    .map_or_else(String::new, |p| p.revision.to_string());
                if v.changes.is_empty() {
                    ui.label(format!(
                        "No change to the record's content since version {before}."
                    ));
                } else {
                    ui.label(RichText::new(format!("Changes since version {before}:")).strong());
                    for c in &v.changes {
                        ui.add(egui::Label::new(format!("– {}", c.sentence())).wrap());
                    }
                }
            }
        });
    }
}

fn decisions_so_far_ui(ui: &mut Ui, view: &RecordView) {
    let dark = ui.visuals().dark_mode;
    ui.label(RichText::new("Decisions so far").strong().size(21.0));
    if view.decisions.is_empty() {
        ui.label("None yet.");
    }
    for d in view.decisions.iter().rev() {
        ui.horizontal_wrapped(|ui| {
            let (text, colours) = decision_badge(Some(d.decision), dark);
            badge(ui, text, colours);
            ui.label(format!(
                "version {} · {} · {}",
                d.revision,
                d.decided_by,
                local(d.decided_at_utc)
            ));
            if !d.comment.is_empty() {
                ui.add(
                    egui::Label::new(RichText::new(format!("“{}”", d.comment)).italics()).wrap(),
                );
            }
        });
    }
    ui.separator();
}

fn decision_ui(ui: &mut Ui, view: &mut RecordView, out: &mut Vec<ReviewCommand>) {
    let Some(revision) = view.shown_revision() else {
        ui.label("Show the newest version to decide on it.");
        return;
    };
    ui.horizontal(|ui| {
        let l = ui.label("Comment for the crew");
        ui.add(
            TextEdit::multiline(&mut view.comment)
                .desired_rows(2)
                .desired_width(f32::INFINITY)
                .hint_text("Needed to return or flag"),
        )
        .labelled_by(l.id);
    });
    let has_comment = !view.comment.trim().is_empty();
    let ready = !view.deciding;
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new(format!("Decide on version {revision}:")).strong());
        if ui
            .add_enabled(ready, egui::Button::new(RichText::new("Approve").strong()))
            .clicked()
        {
            out.push(ReviewCommand::Decide(Decision::Approved));
        }
        if ui
            .add_enabled(ready && has_comment, egui::Button::new("Return to crew"))
            .clicked()
        {
            out.push(ReviewCommand::Decide(Decision::Returned));
        }
        if ui
            .add_enabled(
                ready && has_comment,
                egui::Button::new("Flag for clinical audit"),
            )
            .clicked()
        {
            out.push(ReviewCommand::Decide(Decision::Flagged));
        }
        if view.deciding {
            ui.spinner();
            ui.label("Sending…");
        } else if let Some(m) = &view.message {
            error_text(ui, m);
        } else if !has_comment {
            ui.label(RichText::new("Returning or flagging needs a comment.").weak());
        }
    });
}
