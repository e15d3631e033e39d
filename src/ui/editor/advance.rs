//! DNACPR, ReSPECT and other advance decisions, under the history: seen, told of, or none
//! known; then the document, where it is kept, and what it says about CPR and care.

use egui::{RichText, Ui};

use super::non_conveyance::pick;
use crate::model::advance_decisions::{AdvanceDocument, AdvanceStatus, CprRecommendation};
use crate::model::{Encounter, Field};
use crate::ui::widgets::{text_area, text_field, warning_text};

/// Returns true when the document changed.
pub fn advance_decisions_ui(ui: &mut Ui, doc: &mut Encounter, jump: &mut Option<Field>) -> bool {
    let a = &mut doc.history.advance_decisions;
    let mut changed = false;
    ui.label(RichText::new("DNACPR, ReSPECT and advance decisions").strong());
    changed |= pick(
        ui,
        "Advance decision document",
        &mut a.status,
        &AdvanceStatus::ALL,
        AdvanceStatus::label,
        jump,
        Field::AdvanceDecisions,
    );
    if !a.has_document() {
        return changed;
    }
    if a.status == Some(AdvanceStatus::ReportedNotSeen) {
        warning_text(
            ui,
            "Not seen: a decision only reported must not be acted on as if it had been seen",
        );
    }
    changed |= pick(
        ui,
        "Document type",
        &mut a.document,
        &AdvanceDocument::ALL,
        AdvanceDocument::label,
        jump,
        Field::AdvanceDecisions,
    );
    ui.horizontal(|ui| {
        if a.document == Some(AdvanceDocument::Other) {
            changed |= text_field(ui, "Document", &mut a.other_document, 240.0).changed();
        }
        changed |= text_field(ui, "Where it is kept", &mut a.location, 300.0).changed();
    });
    changed |= pick(
        ui,
        "CPR",
        &mut a.cpr,
        &CprRecommendation::ALL,
        CprRecommendation::label,
        jump,
        Field::AdvanceDecisions,
    );
    changed |= text_area(ui, "Its recommendation", &mut a.recommendation, 2).changed();
    changed
}
