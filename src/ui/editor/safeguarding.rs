//! Safeguarding, under the history: a concern raised, then about whom, its category, the
//! referral and its reference, and consent or why the crew referred without it.

use egui::{RichText, Ui};

use super::non_conveyance::pick;
use crate::model::safeguarding::{Category, ReferralConsent, Subject};
use crate::model::{Encounter, Field};
use crate::ui::widgets::{text_area, text_field};

/// Quick picks for who the referral went to.
const REFERRAL_PICKS: [&str; 3] = [
    "Trust safeguarding line",
    "Police",
    "Children's social care",
];

/// Returns true when the document changed.
pub fn safeguarding_ui(ui: &mut Ui, doc: &mut Encounter, jump: &mut Option<Field>) -> bool {
    let s = &mut doc.history.safeguarding;
    let mut changed = false;
    ui.label(RichText::new("Safeguarding").strong());
    let r = ui.checkbox(&mut s.concern_raised, "Safeguarding concern raised");
    super::jump_here(&r, jump, Field::Safeguarding);
    changed |= r.changed();
    if !s.concern_raised {
        return changed;
    }
    changed |= pick(
        ui,
        "Concern about",
        &mut s.subject,
        &Subject::ALL,
        Subject::label,
        jump,
        Field::Safeguarding,
    );
    changed |= pick(
        ui,
        "Category",
        &mut s.category,
        &Category::ALL,
        Category::label,
        jump,
        Field::Safeguarding,
    );
    ui.horizontal_wrapped(|ui| {
        changed |= text_field(ui, "Referred to", &mut s.referred_to, 260.0).changed();
        for p in REFERRAL_PICKS {
            if ui.is_enabled() && ui.button(p).clicked() {
                s.referred_to = p.to_owned();
                changed = true;
            }
        }
    });
    changed |= text_field(ui, "Referral reference", &mut s.reference, 200.0).changed();
    changed |= pick(
        ui,
        "Consent to referral",
        &mut s.consent,
        &ReferralConsent::ALL,
        ReferralConsent::label,
        jump,
        Field::Safeguarding,
    );
    if s.consent == Some(ReferralConsent::ReferredWithout) {
        changed |= text_area(
            ui,
            "Why referred without consent",
            &mut s.no_consent_reason,
            2,
        )
        .changed();
    }
    changed |= text_area(ui, "What was seen and done", &mut s.details, 3).changed();
    changed
}
