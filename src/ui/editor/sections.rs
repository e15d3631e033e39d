//! The record's sections other than observations and sign-off: incident and times, patient,
//! complaint and history, interventions and drugs, outcome and destination, notes, crew and
//! the ATMIST handover.
//!
//! Each `*_ui` edits the document and the typed-text buffers it is given and returns true
//! when the document changed (the app then autosaves). Problems are shown beside their field
//! and never stop the crew typing.

use chrono::Local;
use chrono::Offset;
use egui::{RichText, TextEdit, Ui};

use super::forms::{
    Forms, Removal, TimeText, clock_local, given_at, now_utc, parse_date, with_occurrence,
};
use super::{jump_here, name_widget};
use crate::model::clock_time::{ClockTimeError, Expect, Occurrence};
use crate::model::quick_picks;
use crate::model::{
    CrewMember, Encounter, Field, Intervention, Milestone, NhsNumber, Outcome, Patient, Pregnancy,
    Revision, Sex, handover,
};
use crate::store::audit::Action;
use crate::ui::widgets::{
    choice, error_text, quick_pick, sentence, text_area, text_field, warning_text,
};

/// Incident number, call sign, location and the milestone times.
pub fn incident_ui(
    ui: &mut Ui,
    doc: &mut Encounter,
    forms: &mut Forms,
    jump: &mut Option<Field>,
) -> bool {
    let mut changed = false;
    egui::Grid::new("incident-grid")
        .num_columns(2)
        .spacing([12.0, 10.0])
        .show(ui, |ui| {
            let r = text_field(
                ui,
                "Incident number",
                &mut doc.incident.incident_number,
                260.0,
            );
            jump_here(&r, jump, Field::IncidentNumber);
            changed |= r.changed();
            ui.end_row();
            let r = text_field(ui, "Call sign", &mut doc.incident.call_sign, 260.0);
            jump_here(&r, jump, Field::CallSign);
            changed |= r.changed();
            ui.end_row();
            if let Some(call_sign) = &forms.recent.call_sign
                && doc.incident.call_sign.trim().is_empty()
                && ui.is_enabled()
            {
                ui.label("");
                // A record already crewed (by the shift signed in) is offered the call sign only.
                let crew: &[CrewMember] = if doc.crew.is_empty() {
                    &forms.recent.crew
                } else {
                    &[]
                };
                if same_shift_ui(ui, call_sign, crew) {
                    doc.incident.call_sign = call_sign.clone();
                    if doc.crew.is_empty() {
                        doc.crew = forms.recent.crew.clone();
                    }
                    changed = true;
                }
                ui.end_row();
            }
            let r = text_field(ui, "Location", &mut doc.incident.location, 420.0);
            changed |= r.changed();
            ui.end_row();
        });
    ui.add_space(8.0);
    // Read-only views (a signed record, an earlier version, the review) draw this disabled:
    // they show the times without the stamping buttons.
    let stamping = ui.is_enabled();
    ui.label(
        RichText::new(if stamping {
            "Times (24-hour clock, tap Now to stamp)"
        } else {
            "Times (24-hour clock)"
        })
        .strong(),
    );
    let warnings = doc.incident.times.order_warnings();
    egui::Grid::new("times-grid")
        .num_columns(4)
        .spacing([12.0, 8.0])
        .show(ui, |ui| {
            for m in Milestone::ALL {
                let label = ui.label(m.label());
                let current = doc.incident.times.get(m);
                let Some(buffer) = forms.time_mut(m) else {
                    ui.end_row();
                    continue;
                };
                let field = ui
                    .add(
                        TextEdit::singleline(&mut buffer.text)
                            .desired_width(90.0)
                            .min_size(egui::vec2(110.0, 0.0)),
                    )
                    .labelled_by(label.id);
                jump_here(&field, jump, Field::Time(m));
                let mut value = current;
                if field.changed() {
                    buffer.apply(now_utc(), Expect::Past, &mut value);
                }
                ui.horizontal(|ui| {
                    if !stamping {
                        return;
                    }
                    let now = ui.button("Now");
                    name_widget(&now, egui::Role::Button, &format!("{} now", m.label()));
                    if now.clicked() {
                        value = Some(now_utc());
                        *buffer = TimeText::from_time(value);
                    }
                    if current.is_some() {
                        let clear = ui.button("Clear");
                        name_widget(
                            &clear,
                            egui::Role::Button,
                            &format!("Clear {}", m.label().to_lowercase()),
                        );
                        if clear.clicked() {
                            value = None;
                            *buffer = TimeText::default();
                        }
                    }
                });
                ui.horizontal(|ui| {
                    if let Some(e) = buffer.error
                        && time_problem_ui(ui, &e, &mut buffer.text)
                    {
                        buffer.apply(now_utc(), Expect::Past, &mut value);
                    }
                    for w in warnings.iter().filter(|w| w.milestone == m) {
                        warning_text(ui, &w.message());
                    }
                });
                if value != current {
                    doc.incident.times.set(m, value);
                    changed = true;
                }
                ui.end_row();
            }
        });
    changed
}

/// "Same call sign and crew as the last record: RD21 (Sam Jones, Kit Lee)". True when tapped.
fn same_shift_ui(ui: &mut Ui, call_sign: &str, crew: &[CrewMember]) -> bool {
    let names: Vec<&str> = crew.iter().map(|c| c.name.as_str()).collect();
    let text = if names.is_empty() {
        format!("Same call sign as the last record: {call_sign}")
    } else {
        format!(
            "Same call sign and crew as the last record: {call_sign} ({})",
            names.join(", ")
        )
    };
    let r = ui.button(text);
    name_widget(
        &r,
        egui::Role::Button,
        "Same call sign and crew as the last record",
    );
    r.clicked()
}

/// Who the patient is: names, NHS number (checked as typed), date of birth or estimated age,
/// sex, address and GP.
pub fn patient_ui(
    ui: &mut Ui,
    doc: &mut Encounter,
    forms: &mut Forms,
    jump: &mut Option<Field>,
) -> bool {
    let mut changed = false;
    let today = Local::now().date_naive();
    let p: &mut Patient = &mut doc.patient;
    egui::Grid::new("patient-grid")
        .num_columns(2)
        .spacing([12.0, 10.0])
        .show(ui, |ui| {
            let r = text_field(ui, "Given name", &mut p.given_name, 300.0);
            jump_here(&r, jump, Field::PatientName);
            changed |= r.changed();
            ui.end_row();
            let r = text_field(ui, "Family name", &mut p.family_name, 300.0);
            changed |= r.changed();
            ui.end_row();

            let l = ui.label("NHS number");
            // The check's result sits under the field, so the grid keeps two columns.
            ui.vertical(|ui| {
                let r = ui
                    .add(
                        TextEdit::singleline(&mut forms.nhs_number)
                            .desired_width(200.0)
                            .min_size(egui::vec2(200.0, 0.0)),
                    )
                    .labelled_by(l.id);
                if r.changed() {
                    let text = forms.nhs_number.trim();
                    let parsed = if text.is_empty() {
                        Ok(None)
                    } else {
                        NhsNumber::parse(text).map(Some)
                    };
                    match parsed {
                        Ok(n) => {
                            forms.nhs_error = None;
                            if p.nhs_number != n {
                                p.nhs_number = n;
                                changed = true;
                            }
                        }
                        Err(e) => {
                            forms.nhs_error = Some(format!(
                                "{}. Not kept until it is a valid NHS number",
                                sentence(&e.to_string())
                            ));
                            if p.nhs_number.is_some() {
                                p.nhs_number = None;
                                changed = true;
                            }
                        }
                    }
                }
                match &forms.nhs_error {
                    Some(e) => {
                        error_text(ui, e);
                    }
                    None => {
                        if let Some(n) = &p.nhs_number {
                            ui.label(if n.is_test_range() {
                                "Valid (test range)"
                            } else {
                                "Valid"
                            });
                        }
                    }
                }
            });
            ui.end_row();

            let l = ui.label("Date of birth (DD/MM/YYYY)");
            // The check's result sits under the field, so the grid keeps two columns.
            ui.vertical(|ui| {
                let r = ui
                    .add(
                        TextEdit::singleline(&mut forms.date_of_birth)
                            .desired_width(200.0)
                            .min_size(egui::vec2(200.0, 0.0)),
                    )
                    .labelled_by(l.id);
                jump_here(&r, jump, Field::PatientAge);
                if r.changed() {
                    let text = forms.date_of_birth.trim();
                    let parsed = if text.is_empty() {
                        Ok(None)
                    } else {
                        parse_date(text).map_err(str::to_owned).and_then(|d| {
                            Patient::check_date_of_birth(d, today)
                                .map(|()| Some(d))
                                .map_err(|e| sentence(&e.to_string()))
                        })
                    };
                    match parsed {
                        Ok(d) => {
                            forms.dob_error = None;
                            if p.date_of_birth != d {
                                p.date_of_birth = d;
                                changed = true;
                            }
                        }
                        Err(e) => {
                            forms.dob_error = Some(e);
                            if p.date_of_birth.is_some() {
                                p.date_of_birth = None;
                                changed = true;
                            }
                        }
                    }
                }
                match &forms.dob_error {
                    Some(e) => {
                        error_text(ui, e);
                    }
                    None => {
                        if let Some(age) = p.date_of_birth.and_then(|d| today.years_since(d)) {
                            ui.label(format!("Age {age}"));
                        }
                    }
                }
            });
            ui.end_row();

            let l = ui.label("Estimated age (years)");
            // The check's result sits under the field, so the grid keeps two columns.
            ui.vertical(|ui| {
                let r = ui
                    .add(
                        TextEdit::singleline(&mut forms.estimated_age)
                            .desired_width(90.0)
                            .min_size(egui::vec2(90.0, 0.0)),
                    )
                    .labelled_by(l.id);
                forms.pad.offer(&r, "Estimated age (years)");
                if r.changed() {
                    let text = forms.estimated_age.trim();
                    let parsed = if text.is_empty() {
                        Ok(None)
                    } else {
                        match text.parse::<u32>() {
                            Ok(a) if a <= 130 => Ok(Some(a)),
                            _ => Err("Enter the age in whole years, 0 to 130"),
                        }
                    };
                    match parsed {
                        Ok(a) => {
                            forms.age_error = None;
                            if p.estimated_age_years != a {
                                p.estimated_age_years = a;
                                changed = true;
                            }
                        }
                        Err(e) => forms.age_error = Some(e.to_owned()),
                    }
                }
                match &forms.age_error {
                    Some(e) => {
                        error_text(ui, e);
                    }
                    None => {
                        ui.label(if p.date_of_birth.is_some() {
                            "Date of birth is used"
                        } else {
                            "Use when the date of birth is not known"
                        });
                    }
                }
            });
            ui.end_row();

            ui.label("Sex");
            ui.horizontal(|ui| {
                for (i, s) in Sex::ALL.iter().enumerate() {
                    let r = choice(ui, p.sex == Some(*s), s.label());
                    if i == 0 {
                        jump_here(&r, jump, Field::PatientSex);
                    }
                    if r.clicked() {
                        p.sex = Some(*s);
                        changed = true;
                    }
                }
            });
            ui.end_row();

            // NEWS2 is not validated in pregnancy or up to 6 weeks after.
            ui.label("Pregnancy");
            ui.horizontal_wrapped(|ui| {
                for c in Pregnancy::CHOICES {
                    let selected = p.pregnancy.is_some_and(|now| now.same_choice(c));
                    if choice(ui, selected, c.label()).clicked() && !selected {
                        p.pregnancy = Some(c);
                        forms.gestation_weeks.clear();
                        forms.gestation_error = None;
                        changed = true;
                    }
                }
                if let Some(Pregnancy::Pregnant { gestation_weeks }) = &mut p.pregnancy {
                    let r = text_field(ui, "Weeks", &mut forms.gestation_weeks, 60.0);
                    forms.pad.offer(&r, "Weeks");
                    if r.changed() {
                        let typed = forms.gestation_weeks.trim();
                        match typed.parse::<u8>() {
                            _ if typed.is_empty() => {
                                *gestation_weeks = None;
                                forms.gestation_error = None;
                                changed = true;
                            }
                            Ok(w) if (4..=45).contains(&w) => {
                                *gestation_weeks = Some(w);
                                forms.gestation_error = None;
                                changed = true;
                            }
                            _ => {
                                forms.gestation_error =
                                    Some("Enter the weeks of pregnancy, 4 to 45".to_owned())
                            }
                        }
                    }
                    if let Some(e) = &forms.gestation_error {
                        error_text(ui, e);
                    }
                }
            });
            ui.end_row();

            let r = text_field(ui, "Address", &mut p.address, 420.0);
            changed |= r.changed();
            ui.end_row();
            let r = text_field(ui, "GP practice", &mut p.gp_practice, 420.0);
            changed |= r.changed();
            ui.end_row();
        });
    changed
}

/// Presenting complaint, history, past medical history, medications, allergies, safeguarding.
pub fn history_ui(
    ui: &mut Ui,
    doc: &mut Encounter,
    forms: &Forms,
    jump: &mut Option<Field>,
) -> bool {
    let mut changed = false;
    let reference = forms.reference.as_deref().map(|r| &r.data);
    let h = &mut doc.history;
    let r = text_area(ui, "Presenting complaint", &mut h.presenting_complaint, 2);
    jump_here(&r, jump, Field::PresentingComplaint);
    changed |= r.changed();
    if h.presenting_complaint.trim().is_empty() && ui.is_enabled() {
        // The trust's list when it has one, otherwise the built-in commonest complaints.
        let picks: Vec<&str> = match reference {
            Some(r) if !r.presenting_complaints.is_empty() => {
                r.presenting_complaints.iter().map(String::as_str).collect()
            }
            _ => quick_picks::PRESENTING_COMPLAINTS.to_vec(),
        };
        ui.horizontal_wrapped(|ui| {
            for pick in picks {
                if quick_pick(ui, "Presenting complaint", pick).clicked() {
                    h.presenting_complaint = pick.to_owned();
                    changed = true;
                }
            }
        });
    }
    changed |= text_area(
        ui,
        "History of presenting complaint or mechanism",
        &mut h.history_of_complaint,
        3,
    )
    .changed();
    changed |= text_area(ui, "Past medical history", &mut h.past_medical_history, 2).changed();
    changed |= text_area(ui, "Medications", &mut h.medications, 2).changed();
    changed |= allergies_ui(ui, h, reference, jump);
    ui.add_space(6.0);
    changed |= super::advance::advance_decisions_ui(ui, doc, jump);
    ui.add_space(6.0);
    changed |= super::safeguarding::safeguarding_ui(ui, doc, jump);
    changed
}

/// Allergies: drug allergy classes from the formulary's list (checked against every drug
/// given), free text as the patient said it, or one of the two answers that are not an
/// allergy: no known drug allergies, or unable to establish.
fn allergies_ui(
    ui: &mut Ui,
    h: &mut crate::model::History,
    reference: Option<&crate::model::reference::ReferenceData>,
    jump: &mut Option<Field>,
) -> bool {
    use crate::model::AllergyStatus;
    let mut changed = false;
    ui.horizontal(|ui| {
        let r = text_field(ui, "Allergies", &mut h.allergies, 360.0);
        jump_here(&r, jump, Field::Allergies);
        changed |= r.changed();
        for (answer, said) in [
            ("NKDA", "No known drug allergies"),
            (
                "Unable to establish",
                "Allergy status could not be established",
            ),
        ] {
            let on = h.allergy_classes.is_empty()
                && AllergyStatus::of(&h.allergies) == AllergyStatus::of(answer);
            if choice(ui, on, answer).on_hover_text(said).clicked() && !on {
                h.allergies = answer.to_owned();
                h.allergy_classes.clear();
                changed = true;
            }
        }
    });
    let mut classes: Vec<&str> = reference
        .map(|r| {
            r.formulary
                .iter()
                .flat_map(|d| d.allergy_classes.iter().map(String::as_str))
                .collect()
        })
        .unwrap_or_default();
    classes.sort_by_key(|c| c.to_lowercase());
    classes.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    if !classes.is_empty() && ui.is_enabled() {
        ui.horizontal_wrapped(|ui| {
            ui.label(RichText::new("Drug allergy classes:").weak());
            for class in classes {
                let on = h
                    .allergy_classes
                    .iter()
                    .any(|c| c.eq_ignore_ascii_case(class));
                let r = choice(ui, on, class);
                name_widget(&r, egui::Role::Button, &format!("Allergy class: {class}"));
                if r.clicked() {
                    if on {
                        h.allergy_classes.retain(|c| !c.eq_ignore_ascii_case(class));
                    } else {
                        h.allergy_classes.push(class.to_owned());
                        // A class ticked is an allergy: "NKDA" or "unable" no longer stands.
                        if !matches!(AllergyStatus::of(&h.allergies), AllergyStatus::Recorded(_)) {
                            h.allergies.clear();
                        }
                    }
                    changed = true;
                }
            }
        });
    } else if !h.allergy_classes.is_empty() {
        ui.label(format!(
            "Drug allergy classes: {}",
            h.allergy_classes.join(", ")
        ));
    }
    changed
}

/// Asks before `item` leaves `list`. `Some(true)` when the crew confirmed and it was taken
/// out, `Some(false)` when they kept it (or it had already gone), `None` while they have not
/// answered.
pub(super) fn confirm_removal_ui<T: PartialEq>(
    ui: &mut Ui,
    question: &str,
    confirm: &str,
    list: &mut Vec<T>,
    item: &T,
) -> Option<bool> {
    let mut answer = None;
    egui::Frame::group(ui.style()).show(ui, |ui| {
        warning_text(ui, question);
        ui.horizontal(|ui| {
            if ui.button(confirm).clicked() {
                answer = Some(true);
            }
            if ui.button("Keep it").clicked() {
                answer = Some(false);
            }
        });
    });
    match answer? {
        true => match list.iter().position(|x| x == item) {
            Some(i) => {
                list.remove(i);
                Some(true)
            }
            None => Some(false),
        },
        false => Some(false),
    }
}

/// Shows why a typed time was not taken. For the hour that happened twice (the clocks went
/// back) it offers both occurrences; returns true when the crew chose one, after which the
/// text names it ("01:30 (2nd)") and should be applied again.
pub(super) fn time_problem_ui(ui: &mut Ui, problem: &ClockTimeError, text: &mut String) -> bool {
    error_text(ui, problem.message());
    let ClockTimeError::Ambiguous { first, second } = problem else {
        return false;
    };
    let mut chose = false;
    for (occurrence, at, which) in [
        (
            Occurrence::First,
            first,
            "first, before the clocks went back",
        ),
        (
            Occurrence::Second,
            second,
            "second, after the clocks went back",
        ),
    ] {
        let local = at.with_timezone(&Local).format("%H:%M (UTC%:z)");
        if ui.button(format!("{local}: {which}")).clicked() {
            *text = with_occurrence(text, occurrence);
            chose = true;
        }
    }
    chose
}

/// Procedures and drugs given, with time and who gave them.
pub fn treatment_ui(
    ui: &mut Ui,
    doc: &mut Encounter,
    forms: &mut Forms,
    editable: bool,
    user: &str,
) -> bool {
    let mut changed = false;
    ui.label(RichText::new("Interventions").strong().size(22.0));
    let mut remove_intervention = None;
    if doc.interventions.is_empty() {
        ui.label("None recorded.");
    }
    for (i, it) in doc.interventions.iter().enumerate() {
        ui.horizontal_wrapped(|ui| {
            ui.label(RichText::new(clock_local(it.at_utc)).strong());
            ui.label(&it.what);
            if !it.details.is_empty() {
                ui.label(format!("({})", it.details));
            }
            if !it.by.is_empty() {
                ui.label(format!("by {}", it.by));
            }
            if editable {
                let r = ui.button("Remove");
                name_widget(
                    &r,
                    egui::Role::Button,
                    &format!("Remove intervention {}", i + 1),
                );
                if r.clicked() {
                    remove_intervention = Some(i);
                }
            }
        });
    }
    if let Some(it) = remove_intervention.and_then(|i| doc.interventions.get(i)) {
        forms.removing = Some(Removal::Intervention(it.clone()));
    }
    if let Some(Removal::Intervention(it)) = &forms.removing {
        let question = format!(
            "Remove {} at {} from the record? The removal is audited.",
            it.what,
            clock_local(it.at_utc)
        );
        let list = &mut doc.interventions;
        if let Some(removed) =
            confirm_removal_ui(ui, &question, "Remove the intervention", list, it)
        {
            if removed {
                forms.removed.push(Action::InterventionRemoved);
                changed = true;
            }
            forms.removing = None;
        }
    }
    if editable {
        let f = &mut forms.intervention;
        ui.horizontal_wrapped(|ui| {
            ui.vertical(|ui| {
                text_field(ui, "Intervention", &mut f.what, 240.0);
            });
            ui.vertical(|ui| {
                text_field(ui, "Details", &mut f.details, 240.0);
            });
            ui.vertical(|ui| {
                text_field(ui, "Time of intervention (blank = now)", &mut f.time, 90.0);
            });
            ui.vertical(|ui| {
                text_field(ui, "Done by", &mut f.by, 180.0);
            });
        });
        ui.horizontal(|ui| {
            if ui.button("Add intervention").clicked() {
                f.time_error = None;
                if f.what.trim().is_empty() {
                    f.error = Some("Say what was done".to_owned());
                } else {
                    match given_at(&f.time, now_utc()) {
                        Ok(at) => {
                            doc.interventions.push(Intervention {
                                what: f.what.trim().to_owned(),
                                at_utc: at,
                                by: if f.by.trim().is_empty() {
                                    user.to_owned()
                                } else {
                                    f.by.trim().to_owned()
                                },
                                details: f.details.trim().to_owned(),
                            });
                            *f = Default::default();
                            changed = true;
                        }
                        Err(e) => {
                            f.error = None;
                            f.time_error = Some(e);
                        }
                    }
                }
            }
            if let Some(e) = &f.error {
                error_text(ui, e);
            }
            if let Some(e) = f.time_error
                && time_problem_ui(ui, &e, &mut f.time)
            {
                f.time_error = None;
            }
        });
    }

    ui.separator();
    changed |= super::drugs::drugs_ui(ui, doc, forms, editable, user);
    changed
}

/// Where a conveyed patient goes: the trust's destinations, those meeting the record's
/// needs first (a stroke: hyperacute stroke units), each picked with its ODS code; or a
/// name typed for one not in the list. True when the record changed.
fn destination_ui(
    ui: &mut Ui,
    hospital: &mut String,
    ods_code: &mut Option<String>,
    presentations: &[crate::model::Presentation],
    forms: &Forms,
) -> bool {
    use crate::model::reference::Capability;
    let mut changed = false;
    let needs = Capability::needed_for(presentations);
    let reference = forms.reference.as_deref();
    if let Some(r) = reference
        && ui.is_enabled()
        && !r.data.destinations.is_empty()
    {
        let wanted: Vec<&str> = needs.iter().map(|c| c.label()).collect();
        ui.label(
            RichText::new(format!("Destinations with {} first:", wanted.join(" and "))).weak(),
        );
        ui.horizontal_wrapped(|ui| {
            for offer in r.data.destinations_for(&needs) {
                let d = offer.destination;
                let picked = ods_code
                    .as_deref()
                    .is_some_and(|c| c.eq_ignore_ascii_case(&d.ods_code));
                let mut text = format!("{} ({})", d.name, d.ods_code);
                if offer.meets_all {
                    text.push_str(" - ");
                    let met: Vec<&str> = offer.meets.iter().map(|c| c.label()).collect();
                    text.push_str(&met.join(", "));
                }
                let label = if offer.meets_all {
                    RichText::new(text).strong()
                } else {
                    RichText::new(text)
                };
                let r = choice(ui, picked, label);
                name_widget(&r, egui::Role::Button, &format!("Destination: {}", d.name));
                if r.clicked() && !picked {
                    *hospital = d.name.clone();
                    *ods_code = Some(d.ods_code.clone());
                    changed = true;
                }
            }
        });
    }
    ui.horizontal(|ui| {
        let r = text_field(ui, "Destination hospital", hospital, 360.0);
        if r.changed() {
            // A typed name keeps a code only while it is exactly a listed destination's.
            *ods_code = reference.and_then(|r| {
                r.data
                    .destinations
                    .iter()
                    .find(|d| d.name.eq_ignore_ascii_case(hospital.trim()))
                    .map(|d| d.ods_code.clone())
            });
            changed = true;
        }
        match ods_code {
            Some(code) => {
                ui.label(format!("ODS {code}"));
            }
            None if !hospital.trim().is_empty() => {
                ui.label(RichText::new("not in the trust's list").weak());
            }
            None => {}
        }
    });
    changed
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum OutcomeKind {
    Conveyed,
    NotConveyed,
    Referred,
    Declined,
    Deceased,
}

impl OutcomeKind {
    const ALL: [OutcomeKind; 5] = [
        OutcomeKind::Conveyed,
        OutcomeKind::NotConveyed,
        OutcomeKind::Referred,
        OutcomeKind::Declined,
        OutcomeKind::Deceased,
    ];

    fn of(o: &Outcome) -> Self {
        match o {
            Outcome::ConveyedTo { .. } => OutcomeKind::Conveyed,
            Outcome::NotConveyed { .. } => OutcomeKind::NotConveyed,
            Outcome::Referred { .. } => OutcomeKind::Referred,
            Outcome::Declined => OutcomeKind::Declined,
            Outcome::Deceased => OutcomeKind::Deceased,
        }
    }

    fn label(self) -> &'static str {
        match self {
            OutcomeKind::Conveyed => "Conveyed to hospital",
            OutcomeKind::NotConveyed => "Not conveyed",
            OutcomeKind::Referred => "Referred",
            OutcomeKind::Declined => "Declined conveyance",
            OutcomeKind::Deceased => "Deceased",
        }
    }

    fn make(self) -> Outcome {
        match self {
            OutcomeKind::Conveyed => Outcome::ConveyedTo {
                hospital: String::new(),
                ods_code: None,
            },
            OutcomeKind::NotConveyed => Outcome::NotConveyed {
                reason: String::new(),
            },
            OutcomeKind::Referred => Outcome::Referred { to: String::new() },
            OutcomeKind::Declined => Outcome::Declined,
            OutcomeKind::Deceased => Outcome::Deceased,
        }
    }
}

/// How the encounter ended, the destination, and the pre-alert (ETA and requirements).
pub fn outcome_ui(
    ui: &mut Ui,
    doc: &mut Encounter,
    forms: &mut Forms,
    jump: &mut Option<Field>,
) -> bool {
    let mut changed = false;
    let current = doc.outcome.as_ref().map(OutcomeKind::of);
    ui.label(RichText::new("Outcome").strong());
    ui.horizontal_wrapped(|ui| {
        for (i, k) in OutcomeKind::ALL.iter().enumerate() {
            let r = choice(ui, current == Some(*k), k.label());
            if i == 0 {
                jump_here(&r, jump, Field::Outcome);
            }
            if r.clicked() && current != Some(*k) {
                doc.outcome = Some(k.make());
                changed = true;
            }
        }
    });
    match &mut doc.outcome {
        Some(Outcome::ConveyedTo { hospital, ods_code }) => {
            let presentations = doc.assessment.presentations.clone();
            changed |= destination_ui(ui, hospital, ods_code, &presentations, forms);
        }
        Some(Outcome::NotConveyed { reason }) => {
            changed |= text_area(ui, "Reason not conveyed and advice given", reason, 2).changed();
        }
        Some(Outcome::Referred { to }) => {
            ui.horizontal(|ui| {
                changed |= text_field(ui, "Referred to", to, 360.0).changed();
            });
        }
        _ => {}
    }
    changed |= super::non_conveyance::non_conveyance_ui(ui, doc, forms, jump);
    ui.separator();
    ui.label(RichText::new("Pre-alert").strong());
    ui.horizontal(|ui| {
        let r = text_field(ui, "ETA (HH:MM)", &mut forms.eta.text, 90.0);
        let mut apply = r.changed();
        if let Some(e) = forms.eta.error {
            apply |= time_problem_ui(ui, &e, &mut forms.eta.text);
        }
        if apply {
            let before = doc.pre_alert.eta_utc;
            forms
                .eta
                .apply(now_utc(), Expect::Nearest, &mut doc.pre_alert.eta_utc);
            changed |= before != doc.pre_alert.eta_utc;
        }
    });
    changed |= text_area(
        ui,
        "Requirements on arrival",
        &mut doc.pre_alert.requirements,
        2,
    )
    .changed();
    changed
}

/// Free-text notes.
pub fn notes_ui(ui: &mut Ui, doc: &mut Encounter) -> bool {
    text_area(ui, "Clinical notes", &mut doc.notes, 12).changed()
}

/// The crew on the job.
pub fn crew_ui(
    ui: &mut Ui,
    doc: &mut Encounter,
    forms: &mut Forms,
    jump: &mut Option<Field>,
    editable: bool,
    user: &str,
) -> bool {
    let mut changed = false;
    let mut remove = None;
    if doc.crew.is_empty() {
        ui.label("No crew members recorded.");
    }
    for (i, c) in doc.crew.iter().enumerate() {
        ui.horizontal(|ui| {
            ui.label(RichText::new(&c.name).strong());
            if !c.role.is_empty() {
                ui.label(&c.role);
            }
            if !c.registration.is_empty() {
                ui.label(format!("Registration {}", c.registration));
            }
            if editable {
                let r = ui.button("Remove");
                name_widget(
                    &r,
                    egui::Role::Button,
                    &format!("Remove crew member {}", i + 1),
                );
                if r.clicked() {
                    remove = Some(i);
                }
            }
        });
    }
    if let Some(i) = remove {
        doc.crew.remove(i);
        changed = true;
    }
    if !editable {
        return changed;
    }
    let f = &mut forms.crew;
    ui.horizontal_wrapped(|ui| {
        ui.vertical(|ui| {
            let r = text_field(ui, "Crew member name", &mut f.name, 220.0);
            jump_here(&r, jump, Field::Crew);
        });
        ui.vertical(|ui| {
            text_field(ui, "Role", &mut f.role, 160.0);
        });
        ui.vertical(|ui| {
            text_field(
                ui,
                "Registration or staff number",
                &mut f.registration,
                200.0,
            );
        });
    });
    ui.horizontal(|ui| {
        if ui
            .add_enabled(
                !f.name.trim().is_empty(),
                egui::Button::new("Add crew member"),
            )
            .clicked()
        {
            doc.crew.push(CrewMember {
                name: f.name.trim().to_owned(),
                role: f.role.trim().to_owned(),
                registration: f.registration.trim().to_owned(),
            });
            *f = Default::default();
            changed = true;
        }
        if !user.is_empty()
            && !doc.crew.iter().any(|c| c.name == user)
            && ui.button(format!("Add me ({user})")).clicked()
        {
            doc.crew.push(CrewMember {
                name: user.to_owned(),
                role: String::new(),
                registration: String::new(),
            });
            changed = true;
        }
    });
    changed
}

/// The ATMIST handover, large enough to read aloud at a glance.
pub fn handover_ui(ui: &mut Ui, doc: &Encounter) {
    ui.label("Read aloud at handover. Generated from the record; it updates as you type.");
    ui.add_space(6.0);
    egui::Grid::new("atmist-grid")
        .num_columns(2)
        .spacing([18.0, 14.0])
        .striped(true)
        .show(ui, |ui| {
            let local = chrono::Local::now().offset().fix();
            for line in handover::atmist_in(doc, local) {
                ui.vertical(|ui| {
                    ui.label(RichText::new(line.letter).size(34.0).strong());
                });
                ui.vertical(|ui| {
                    ui.label(RichText::new(line.heading).size(17.0).weak());
                    ui.add(egui::Label::new(RichText::new(line.text).size(24.0)).wrap());
                });
                ui.end_row();
            }
        });
}

/// "Hand over…": save the FHIR bundle or the printable PDF to a folder, with no server.
pub fn handover_export_ui(
    ui: &mut Ui,
    doc: &Encounter,
    folder: &mut String,
    revision: Option<Revision>,
    out: &mut Vec<crate::ui::Command>,
) {
    ui.label(RichText::new("Hand over…").size(20.0).strong());
    if !doc.status.is_signed() {
        ui.label(
            RichText::new(format!(
                "This record is not signed yet: the files will be marked \"{}\".",
                crate::export::DRAFT_MARK
            ))
            .color(ui.visuals().warn_fg_color),
        );
    }
    ui.horizontal_wrapped(|ui| {
        let label = ui.label("Save to folder");
        ui.add(egui::TextEdit::singleline(folder).desired_width(420.0))
            .labelled_by(label.id);
    });
    ui.horizontal_wrapped(|ui| {
        let ready = !folder.trim().is_empty();
        for (text, format) in [
            ("Save FHIR bundle", crate::ui::ExportFormat::Fhir),
            ("Save PDF", crate::ui::ExportFormat::Pdf),
        ] {
            if ui.add_enabled(ready, egui::Button::new(text)).clicked() {
                out.push(crate::ui::Command::Export {
                    format,
                    folder: folder.trim().to_owned(),
                    revision,
                });
            }
        }
    });
    ui.separator();
}
