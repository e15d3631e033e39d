//! The non-conveyance section, shown under the outcome when the patient stays where they are:
//! the decision, the two-stage mental capacity assessment, consent, the risks explained, the
//! worsening advice, the referral and the patient's or witness's signature drawn on screen.
//!
//! Every choice is one tap; the accessible name of each Yes/No says which question it answers
//! ("Impairment of mind or brain: yes"), so the tests (and screen readers) can tell them apart.

use egui::{Color32, Pos2, Rect, RichText, Sense, Stroke, Ui, Vec2};

use super::forms::{Forms, now_utc};
use super::{jump_here, name_widget};
use crate::model::non_conveyance::{
    Ability, AdviceGivenTo, CapacityFinding, Consent, NonConveyance, NonConveyanceDecision,
    NonConveyanceItem as Item, ReferralService, SIGNATURE_SCALE, Signatory,
};
use crate::model::{Encounter, Field};
use crate::ui::widgets::{choice, text_area, text_field, warning_text};

/// Quick picks for the worsening advice, appended to what is there.
const ADVICE_PICKS: [&str; 3] = [
    "Call 999 if symptoms return or worsen",
    "See GP within 48 hours",
    "Call 111 for advice",
];

/// Quick picks for the risks explained.
const RISK_PICKS: [&str; 3] = [
    "Risk of deterioration",
    "Risk of serious illness being missed",
    "Risk of death",
];

/// The pad's size on screen, in points.
const PAD_SIZE: Vec2 = Vec2::new(420.0, 140.0);

/// Draws the section when the outcome is a non-conveyance; keeps a section the crew filled in
/// (in the editor's forms, not the record) when they switch to another outcome, and gives it
/// back when they switch again. Returns true when the document changed.
pub fn non_conveyance_ui(
    ui: &mut Ui,
    doc: &mut Encounter,
    forms: &mut Forms,
    jump: &mut Option<Field>,
) -> bool {
    let Some(outcome) = doc.outcome.clone() else {
        return false;
    };
    let mut changed = false;
    if !outcome.is_non_conveyance() {
        if ui.is_enabled()
            && let Some(section) = doc.non_conveyance.take()
        {
            forms.parked_non_conveyance = Some(section);
            changed = true;
        }
        return changed;
    }
    if doc.non_conveyance.is_none() && ui.is_enabled() {
        doc.non_conveyance = Some(
            forms
                .parked_non_conveyance
                .take()
                .unwrap_or_else(|| NonConveyance::for_outcome(&outcome)),
        );
        changed = true;
    }
    let Some(section) = doc.non_conveyance.as_mut() else {
        return changed;
    };
    ui.separator();
    ui.label(RichText::new("Non-conveyance").heading());
    changed |= decision_ui(ui, section, jump);
    ui.add_space(6.0);
    changed |= capacity_ui(ui, section, jump);
    ui.add_space(6.0);
    changed |= consent_ui(ui, section, jump);
    ui.add_space(6.0);
    changed |= advice_ui(ui, section, jump);
    if section.decision == Some(NonConveyanceDecision::Referral) {
        ui.add_space(6.0);
        changed |= referral_ui(ui, section, jump);
    }
    ui.add_space(6.0);
    changed |= signature_ui(ui, section, forms, jump);
    changed
}

/// A row of choices for an optional value under a label; tapping the chosen one again leaves
/// it chosen. Each choice is named "{group}: {choice}" for screen readers (several groups
/// offer "Patient").
pub(super) fn pick<T: Copy + PartialEq>(
    ui: &mut Ui,
    group: &str,
    value: &mut Option<T>,
    options: &[T],
    label: impl Fn(T) -> &'static str,
    jump: &mut Option<Field>,
    field: Field,
) -> bool {
    let mut changed = false;
    ui.label(group);
    ui.horizontal_wrapped(|ui| {
        for (i, &o) in options.iter().enumerate() {
            let r = choice(ui, *value == Some(o), label(o));
            name_widget(
                &r,
                egui::Role::Button,
                &format!("{group}: {}", label(o).to_lowercase()),
            );
            if i == 0 {
                jump_here(&r, jump, field);
            }
            if r.clicked() && *value != Some(o) {
                *value = Some(o);
                changed = true;
            }
        }
    });
    changed
}

/// Yes / No for one question, named after it: the question, then the two answers (one row
/// of a two-column grid). Returns whether the answer changed and the "Yes" button.
pub(super) fn yes_no(
    ui: &mut Ui,
    question: &str,
    value: &mut Option<bool>,
) -> (bool, egui::Response) {
    let mut changed = false;
    ui.label(question);
    let inner = ui.horizontal(|ui| {
        let mut first = None;
        for (answer, text) in [(true, "Yes"), (false, "No")] {
            let r = choice(ui, *value == Some(answer), text);
            name_widget(
                &r,
                egui::Role::Button,
                &format!("{question}: {}", text.to_lowercase()),
            );
            if r.clicked() && *value != Some(answer) {
                *value = Some(answer);
                changed = true;
            }
            first.get_or_insert(r);
        }
        first
    });
    ui.end_row();
    let response = inner.inner.unwrap_or(inner.response);
    (changed, response)
}

fn decision_ui(ui: &mut Ui, s: &mut NonConveyance, jump: &mut Option<Field>) -> bool {
    pick(
        ui,
        "Decision",
        &mut s.decision,
        &NonConveyanceDecision::ALL,
        NonConveyanceDecision::label,
        jump,
        Field::NonConveyance(Item::Decision),
    )
}

fn capacity_ui(ui: &mut Ui, s: &mut NonConveyance, jump: &mut Option<Field>) -> bool {
    let mut changed = false;
    ui.label(RichText::new("Mental capacity (Mental Capacity Act, two-stage test)").strong());
    egui::Grid::new("capacity-grid")
        .num_columns(2)
        .spacing([12.0, 8.0])
        .show(ui, |ui| {
            let (c, r) = yes_no(
                ui,
                "Impairment of mind or brain",
                &mut s.capacity.impairment,
            );
            jump_here(&r, jump, Field::NonConveyance(Item::Capacity));
            changed |= c;
            // Stage 2 only once stage 1 finds an impairment.
            if s.capacity.impairment == Some(true) {
                for a in Ability::ALL {
                    let (c, _) = yes_no(ui, a.question(), s.capacity.ability_mut(a));
                    changed |= c;
                }
            }
        });
    let finding = s.capacity.finding();
    match finding {
        CapacityFinding::LacksCapacity => {
            warning_text(ui, finding.label());
            changed |= text_area(
                ui,
                "Best-interests decision and why",
                &mut s.capacity.best_interests,
                2,
            )
            .changed();
        }
        _ => {
            ui.label(RichText::new(finding.label()).strong());
        }
    }
    changed
}

fn consent_ui(ui: &mut Ui, s: &mut NonConveyance, jump: &mut Option<Field>) -> bool {
    pick(
        ui,
        "Consent",
        &mut s.consent,
        &Consent::ALL,
        Consent::label,
        jump,
        Field::NonConveyance(Item::Consent),
    )
}

/// Appends a quick pick to a text, on a line of its own.
fn append_pick(text: &mut String, pick: &str) {
    if text.contains(pick) {
        return;
    }
    let trimmed = text.trim_end().len();
    text.truncate(trimmed);
    if !text.is_empty() {
        text.push_str("; ");
    }
    text.push_str(pick);
}

fn advice_ui(ui: &mut Ui, s: &mut NonConveyance, jump: &mut Option<Field>) -> bool {
    let mut changed = false;
    let r = text_area(ui, "Risks explained", &mut s.risks_explained, 2);
    jump_here(&r, jump, Field::NonConveyance(Item::Risks));
    changed |= r.changed();
    ui.horizontal_wrapped(|ui| {
        for p in RISK_PICKS {
            if ui.button(format!("+ {p}")).clicked() {
                append_pick(&mut s.risks_explained, p);
                changed = true;
            }
        }
    });
    changed |= pick(
        ui,
        "Worsening advice given to",
        &mut s.worsening_advice_to,
        &AdviceGivenTo::ALL,
        AdviceGivenTo::label,
        jump,
        Field::NonConveyance(Item::WorseningAdvice),
    );
    changed |= text_area(ui, "Worsening advice", &mut s.worsening_advice, 2).changed();
    ui.horizontal_wrapped(|ui| {
        for p in ADVICE_PICKS {
            if ui.button(format!("+ {p}")).clicked() {
                append_pick(&mut s.worsening_advice, p);
                changed = true;
            }
        }
    });
    changed
}

fn referral_ui(ui: &mut Ui, s: &mut NonConveyance, jump: &mut Option<Field>) -> bool {
    let mut changed = false;
    changed |= pick(
        ui,
        "Referred to",
        &mut s.referral_service,
        &ReferralService::ALL,
        ReferralService::label,
        jump,
        Field::NonConveyance(Item::Referral),
    );
    ui.horizontal(|ui| {
        if s.referral_service == Some(ReferralService::Other) {
            changed |= text_field(ui, "Service", &mut s.referral_other, 240.0).changed();
        }
        changed |= text_field(ui, "Referral reference", &mut s.referral_reference, 160.0).changed();
    });
    changed
}

fn signature_ui(
    ui: &mut Ui,
    s: &mut NonConveyance,
    forms: &mut Forms,
    jump: &mut Option<Field>,
) -> bool {
    let mut changed = false;
    ui.label(RichText::new("Signature").strong());
    changed |= pick(
        ui,
        "Signed by",
        &mut s.signature.signatory,
        &Signatory::ALL,
        Signatory::label,
        jump,
        Field::NonConveyance(Item::Signature),
    );
    ui.horizontal(|ui| {
        changed |= text_field(ui, "Name of signatory", &mut s.signature.name, 260.0).changed();
    });
    changed |= signature_pad(ui, s, forms);
    ui.horizontal(|ui| {
        if ui.is_enabled() && s.signature.is_drawn() && ui.button("Clear signature").clicked() {
            s.signature.strokes.clear();
            s.signature.signed_at_utc = None;
            changed = true;
        }
    });
    if !s.signature.is_drawn() {
        changed |= text_area(ui, "No signature because", &mut s.no_signature_reason, 1).changed();
    }
    changed
}

/// The pad: strokes drawn with a finger or stylus. A stroke becomes part of the record when
/// the finger lifts (so the record is saved once per stroke, not once per point).
fn signature_pad(ui: &mut Ui, s: &mut NonConveyance, forms: &mut Forms) -> bool {
    let width = PAD_SIZE.x.min(ui.available_width());
    let (response, painter) = ui.allocate_painter(Vec2::new(width, PAD_SIZE.y), Sense::drag());
    name_widget(&response, egui::Role::Canvas, "Signature pad");
    let rect = response.rect;
    let visuals = ui.visuals();
    painter.rect_filled(rect, 4.0, visuals.extreme_bg_color);
    painter.rect_stroke(
        rect,
        4.0,
        visuals.widgets.inactive.bg_stroke,
        egui::StrokeKind::Inside,
    );
    let ink = Stroke::new(2.0, visuals.strong_text_color());
    let scale = f32::from(SIGNATURE_SCALE);
    let to_screen = |p: [u16; 2]| {
        Pos2::new(
            rect.left() + f32::from(p[0]) / scale * rect.width(),
            rect.top() + f32::from(p[1]) / scale * rect.height(),
        )
    };
    for stroke in &s.signature.strokes {
        let points: Vec<Pos2> = stroke.iter().map(|&p| to_screen(p)).collect();
        painter.add(egui::Shape::line(points, ink));
    }
    if s.signature.strokes.is_empty() && forms.signature_stroke.is_empty() {
        painter.text(
            rect.center(),
            egui::Align2::CENTER_CENTER,
            "Sign here",
            egui::FontId::proportional(22.0),
            Color32::from_gray(140),
        );
    }
    if !ui.is_enabled() {
        return false;
    }
    let to_fraction = |p: Pos2, rect: Rect| {
        (
            (p.x - rect.left()) / rect.width().max(1.0),
            (p.y - rect.top()) / rect.height().max(1.0),
        )
    };
    if (response.dragged() || response.drag_started())
        && let Some(p) = response.interact_pointer_pos()
    {
        forms.signature_stroke.push(to_fraction(p, rect));
    }
    if forms.signature_stroke.len() > 1 {
        let live: Vec<Pos2> = forms
            .signature_stroke
            .iter()
            .map(|&(x, y)| {
                Pos2::new(
                    rect.left() + x * rect.width(),
                    rect.top() + y * rect.height(),
                )
            })
            .collect();
        painter.add(egui::Shape::line(live, ink));
    }
    if response.drag_stopped() {
        let stroke = std::mem::take(&mut forms.signature_stroke);
        if s.signature.add_stroke(&stroke) {
            s.signature.signed_at_utc = Some(now_utc());
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::append_pick;

    #[test]
    fn quick_picks_append_once() {
        let mut t = String::new();
        append_pick(&mut t, "Call 999");
        append_pick(&mut t, "Call 999");
        assert_eq!(t, "Call 999");
        t.push_str("  ");
        append_pick(&mut t, "See GP");
        assert_eq!(t, "Call 999; See GP");
    }
}
