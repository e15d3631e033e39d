//! The "Presentation" section: the presentations the crew pick, then the sections they bring.
//! Cardiac arrest adds the Utstein core (witness, bystander CPR, times, first rhythm, shocks
//! with one tap each, airway, how it ended); Stroke / TIA adds BE-FAST, the onset or last-known-well time, the pathway and the
//! stroke-unit pre-alert; a 12-lead ECG can be added on any record and is asked for on chest
//! pain.
//!
//! An arrest or stroke section filled in and then unpicked is set aside in the editor's forms (not the
//! record) and given back if stroke is picked again, like the non-conveyance section.

use chrono::{DateTime, Utc};
use egui::{RichText, TextEdit, Ui};

use super::forms::{Forms, TimeText, now_utc};
use super::non_conveyance::{pick, yes_no};
use super::sections::time_problem_ui;
use super::{jump_here, name_widget};
use crate::model::Pregnancy;
use crate::model::arrest::{
    ArrestAirway, ArrestEnd, ArrestRhythm, ArrestTime, CardiacArrest, Shock, Witness,
};
use crate::model::assessment::{AssessmentPart, Presentation};
use crate::model::breathing::{BreathingAssessment, KnownCondition, LifeThreat, Speech};
use crate::model::clock_time::Expect;
use crate::model::ecg::{Ecg12Lead, EcgRhythm};
use crate::model::falls::{FallAssessment, FallsReferral, Mobility, TimeOnFloor};
use crate::model::maternity::{MaternityAssessment, MaternityFinding};
use crate::model::mental_health::{LegalStatus, MentalHealthAssessment, MentalHealthContact};
use crate::model::paediatric::{
    PaediatricAssessment, WeightMethod, age_months_under_two, parse_weight_kg,
};
use crate::model::quick_picks;
use crate::model::sepsis::{RedFlag, SepsisPathway, SepsisScreen, SepsisSource};
use crate::model::stroke::{BeFast, Finding, OnsetKind, StrokeAssessment, StrokePathway};
use crate::model::trauma::{
    BodyRegion, HaemorrhageControl, Injury, InjuryKind, Mechanism, TraumaAssessment, TraumaTriage,
};
use crate::model::{Encounter, Field};
use crate::ui::widgets::{choice, quick_pick, text_field, warning_text};

const ARREST: Field = Field::Assessment(AssessmentPart::Arrest);
const STROKE: Field = Field::Assessment(AssessmentPart::Stroke);
const SEPSIS: Field = Field::Assessment(AssessmentPart::Sepsis);
const FALL: Field = Field::Assessment(AssessmentPart::Fall);
const BREATHING: Field = Field::Assessment(AssessmentPart::Breathing);
const MENTAL_HEALTH: Field = Field::Assessment(AssessmentPart::MentalHealth);
const TRAUMA: Field = Field::Assessment(AssessmentPart::Trauma);
const MATERNITY: Field = Field::Assessment(AssessmentPart::Maternity);
const PAEDIATRIC: Field = Field::Assessment(AssessmentPart::Paediatric);

/// Contractions in ten minutes, as the buttons offer them.
const CONTRACTION_COUNTS: [u8; 6] = [1, 2, 3, 4, 5, 6];

/// The Clinical Frailty Scale's levels as the buttons show them.
const CFS_LEVELS: [u8; 9] = [1, 2, 3, 4, 5, 6, 7, 8, 9];

/// The energies offered as one-tap shocks, in joules.
const SHOCK_ENERGIES_J: [u16; 3] = [150, 200, 360];
const ECG: Field = Field::Assessment(AssessmentPart::Ecg);

/// Quick picks for why no ECG was taken.
const NO_ECG_PICKS: [&str; 2] = ["Patient declined", "Equipment unavailable"];

/// Returns true when the document changed.
pub fn assessment_ui(
    ui: &mut Ui,
    doc: &mut Encounter,
    forms: &mut Forms,
    jump: &mut Option<Field>,
) -> bool {
    let mut changed = presentations_ui(ui, doc, jump);
    changed |= keep_sections(ui, doc, forms);
    if doc.assessment.arrest().is_some() {
        ui.separator();
        ui.label(RichText::new("Cardiac arrest").heading());
        if let Some(arrest) = doc.assessment.arrest.as_mut() {
            changed |= arrest_ui(ui, arrest, forms, jump);
        }
    }
    if doc.assessment.stroke().is_some() {
        ui.separator();
        ui.label(RichText::new("Stroke / TIA").heading());
        let glucose = doc
            .observations
            .iter()
            .any(|o| o.glucose_mmol_per_l.is_some());
        if let Some(stroke) = doc.assessment.stroke.as_mut() {
            changed |= stroke_ui(ui, stroke, forms, jump, glucose);
        }
    }
    if doc.assessment.trauma().is_some() {
        ui.separator();
        ui.label(RichText::new("Trauma").heading());
        if let Some(trauma) = doc.assessment.trauma.as_mut() {
            changed |= trauma_ui(ui, trauma, forms, jump);
        }
    }
    if doc.assessment.paediatric().is_some() {
        ui.separator();
        ui.label(RichText::new("Paediatric").heading());
        let months = doc
            .patient
            .date_of_birth
            .and_then(|dob| age_months_under_two(dob, doc.created_at_utc.date_naive()));
        if let Some(m) = months {
            ui.label(format!("Age: {m} months"));
        }
        if let Some(p) = doc.assessment.paediatric.as_mut() {
            changed |= paediatric_ui(ui, p, forms, jump);
        }
    }
    if doc.assessment.maternity().is_some() {
        ui.separator();
        ui.label(RichText::new("Maternity").heading());
        let pregnancy = doc.patient.pregnancy;
        match pregnancy {
            Some(Pregnancy::Pregnant {
                gestation_weeks: Some(w),
            }) => ui.label(format!("Pregnant, {w} weeks (from Patient)")),
            Some(Pregnancy::PostPartum) => ui.label("Post-partum (from Patient)"),
            _ => ui.label(
                RichText::new("Record the pregnancy and its weeks under Patient")
                    .color(ui.visuals().warn_fg_color),
            ),
        };
        if let Some(m) = doc.assessment.maternity.as_mut() {
            changed |= maternity_ui(ui, m, jump);
        }
    }
    if doc.assessment.sepsis().is_some() {
        ui.separator();
        ui.label(RichText::new("Sepsis screen").heading());
        // What the observations say, read before the screen is borrowed to be edited.
        let (news2, suggested) = doc
            .assessment
            .sepsis
            .as_ref()
            .map(|s| (s.news2_at_screening(doc), s.flags_suggested(doc)))
            .unwrap_or_default();
        if let Some(sepsis) = doc.assessment.sepsis.as_mut() {
            changed |= sepsis_ui(ui, sepsis, forms, jump, news2, &suggested);
        }
    }
    if doc.assessment.breathing().is_some() {
        ui.separator();
        ui.label(RichText::new("Breathing difficulty").heading());
        if let Some(b) = doc.assessment.breathing.as_mut() {
            changed |= breathing_ui(ui, b, jump);
        }
    }
    if doc.assessment.mental_health().is_some() {
        ui.separator();
        ui.label(RichText::new("Mental health").heading());
        if let Some(m) = doc.assessment.mental_health.as_mut() {
            changed |= mental_health_ui(ui, m, jump);
        }
    }
    if doc.assessment.fall().is_some() {
        ui.separator();
        ui.label(RichText::new("Fall and frailty").heading());
        if let Some(fall) = doc.assessment.fall.as_mut() {
            changed |= fall_ui(ui, fall, jump);
        }
    }
    ui.separator();
    changed |= ecgs_ui(ui, doc, forms, jump);
    changed
}

fn sepsis_ui(
    ui: &mut Ui,
    s: &mut SepsisScreen,
    forms: &mut Forms,
    jump: &mut Option<Field>,
    news2: Option<(u8, DateTime<Utc>)>,
    suggested: &[RedFlag],
) -> bool {
    let mut changed = false;
    egui::Grid::new("sepsis-screened")
        .num_columns(2)
        .spacing([12.0, 8.0])
        .show(ui, |ui| {
            changed |= time_row(
                ui,
                "Screened",
                &mut forms.sepsis_screened,
                &mut s.screened_utc,
                jump,
                SEPSIS,
            );
        });
    match news2 {
        Some((score, at)) => ui.label(format!(
            "NEWS2 at screening: {score} (set at {})",
            super::forms::clock_local(at)
        )),
        None => ui.label("NEWS2 at screening: no complete observation set before it"),
    };
    changed |= pick(
        ui,
        "Suspected source",
        &mut s.source,
        &SepsisSource::ALL,
        SepsisSource::label,
        jump,
        SEPSIS,
    );
    ui.label("Red flags (NICE high-risk criteria)");
    ui.horizontal_wrapped(|ui| {
        for flag in RedFlag::ALL {
            let on = s.red_flags.contains(&flag);
            let r = choice(ui, on, flag.label());
            name_widget(
                &r,
                egui::Role::Button,
                &format!("Red flag: {}", flag.label().to_lowercase()),
            );
            if r.clicked() {
                s.set_flag(flag, !on);
                changed = true;
            }
        }
        let r = choice(ui, s.no_red_flags, "None");
        name_widget(&r, egui::Role::Button, "Red flag: none");
        if r.clicked() && !s.no_red_flags {
            s.no_red_flags = true;
            s.red_flags.clear();
            changed = true;
        }
    });
    if !suggested.is_empty() {
        let names: Vec<String> = suggested.iter().map(|f| f.label().to_lowercase()).collect();
        warning_text(ui, &format!("The observations show: {}", names.join(", ")));
    }
    changed |= pick(
        ui,
        "Sepsis pathway",
        &mut s.pathway,
        &SepsisPathway::ALL,
        SepsisPathway::label,
        jump,
        SEPSIS,
    );
    if s.pathway == Some(SepsisPathway::RedFlagPreAlert) {
        egui::Grid::new("sepsis-pre-alert")
            .num_columns(2)
            .spacing([12.0, 8.0])
            .show(ui, |ui| {
                changed |= time_row(
                    ui,
                    "Department pre-alerted",
                    &mut forms.sepsis_pre_alert,
                    &mut s.pre_alert_utc,
                    jump,
                    SEPSIS,
                );
            });
    }
    changed
}

fn trauma_ui(
    ui: &mut Ui,
    t: &mut TraumaAssessment,
    forms: &mut Forms,
    jump: &mut Option<Field>,
) -> bool {
    let mut changed = pick(
        ui,
        "Mechanism",
        &mut t.mechanism,
        &Mechanism::ALL,
        Mechanism::label,
        jump,
        TRAUMA,
    );
    changed |= text_field(ui, "Mechanism details", &mut t.mechanism_details, 420.0).changed();
    ui.add_space(6.0);
    ui.label(RichText::new("Injuries").strong());
    let mut remove = None;
    for (i, injury) in t.injuries.iter().enumerate() {
        ui.horizontal(|ui| {
            ui.label(format!("{}. {}", i + 1, injury.text()));
            if ui.is_enabled() {
                let r = ui.button("Remove");
                name_widget(&r, egui::Role::Button, &format!("Remove injury {}", i + 1));
                if r.clicked() {
                    remove = Some(i);
                }
            }
        });
    }
    if let Some(i) = remove {
        t.injuries.remove(i);
        changed = true;
    }
    if ui.is_enabled() {
        // Region, then kind, then "Add": the pair is added together.
        pick(
            ui,
            "Injury region",
            &mut forms.injury_region,
            &BodyRegion::ALL,
            BodyRegion::label,
            jump,
            TRAUMA,
        );
        pick(
            ui,
            "Injury type",
            &mut forms.injury_kind,
            &InjuryKind::ALL,
            InjuryKind::label,
            jump,
            TRAUMA,
        );
        ui.horizontal(|ui| {
            let ready = forms.injury_region.zip(forms.injury_kind);
            if ui
                .add_enabled(ready.is_some(), egui::Button::new("Add injury"))
                .clicked()
                && let Some((region, kind)) = ready
            {
                t.add_injury(Injury { region, kind });
                forms.injury_region = None;
                forms.injury_kind = None;
                changed = true;
            }
            if t.injuries.is_empty() {
                let r = choice(ui, t.no_injuries_found, "No injuries found");
                if r.clicked() && !t.no_injuries_found {
                    t.no_injuries_found = true;
                    changed = true;
                }
            }
        });
    } else if t.injuries.is_empty() {
        ui.label(if t.no_injuries_found {
            "No injuries found"
        } else {
            "None recorded"
        });
    }
    ui.add_space(6.0);
    egui::Grid::new("trauma-haemorrhage")
        .num_columns(2)
        .spacing([12.0, 8.0])
        .show(ui, |ui| {
            changed |= yes_no(
                ui,
                "Catastrophic haemorrhage",
                &mut t.catastrophic_haemorrhage,
            )
            .0;
        });
    if t.catastrophic_haemorrhage == Some(true) {
        changed |= pick(
            ui,
            "Haemorrhage control",
            &mut t.haemorrhage_control,
            &HaemorrhageControl::ALL,
            HaemorrhageControl::label,
            jump,
            TRAUMA,
        );
        if t.haemorrhage_control == Some(HaemorrhageControl::Tourniquet) {
            egui::Grid::new("tourniquet-time")
                .num_columns(2)
                .spacing([12.0, 8.0])
                .show(ui, |ui| {
                    changed |= time_row(
                        ui,
                        "Tourniquet on",
                        &mut forms.tourniquet,
                        &mut t.tourniquet_utc,
                        jump,
                        TRAUMA,
                    );
                });
        }
    }
    changed |= pick(
        ui,
        "Major trauma triage",
        &mut t.triage,
        &TraumaTriage::ALL,
        TraumaTriage::label,
        jump,
        TRAUMA,
    );
    changed
}

fn paediatric_ui(
    ui: &mut Ui,
    p: &mut PaediatricAssessment,
    forms: &mut Forms,
    jump: &mut Option<Field>,
) -> bool {
    let mut changed = false;
    ui.horizontal(|ui| {
        let r = text_field(ui, "Weight (kg)", &mut forms.weight_kg, 90.0);
        forms.pad.offer(&r, "Weight (kg)");
        jump_here(&r, jump, PAEDIATRIC);
        if r.changed() {
            let before = p.weight_kg;
            if forms.weight_kg.trim().is_empty() {
                p.weight_kg = None;
                forms.weight_error = None;
            } else {
                match parse_weight_kg(&forms.weight_kg) {
                    Ok(kg) => {
                        p.weight_kg = Some(kg);
                        forms.weight_error = None;
                    }
                    // The stored weight stays as it was until the typed one reads.
                    Err(e) => forms.weight_error = Some(e),
                }
            }
            changed |= p.weight_kg != before;
        }
        if let Some(e) = forms.weight_error {
            crate::ui::widgets::error_text(ui, e.message());
        }
    });
    changed |= pick(
        ui,
        "Weight found by",
        &mut p.weight_method,
        &WeightMethod::ALL,
        WeightMethod::label,
        jump,
        PAEDIATRIC,
    );
    changed
}

fn maternity_ui(ui: &mut Ui, m: &mut MaternityAssessment, jump: &mut Option<Field>) -> bool {
    let mut changed = false;
    ui.label("Findings");
    ui.horizontal_wrapped(|ui| {
        for (i, f) in MaternityFinding::ALL.into_iter().enumerate() {
            let on = m.findings.contains(&f);
            let r = choice(ui, on, f.label());
            name_widget(
                &r,
                egui::Role::Button,
                &format!("Maternity finding: {}", f.label().to_lowercase()),
            );
            if i == 0 {
                jump_here(&r, jump, MATERNITY);
            }
            if r.clicked() {
                m.set(f, !on);
                changed = true;
            }
        }
        let r = choice(ui, m.none_found, "None");
        name_widget(&r, egui::Role::Button, "Maternity finding: none");
        if r.clicked() && !m.none_found {
            m.findings.clear();
            m.contractions_per_10_min = None;
            m.none_found = true;
            changed = true;
        }
    });
    if m.findings.contains(&MaternityFinding::Contractions) {
        changed |= pick(
            ui,
            "Contractions in 10 minutes",
            &mut m.contractions_per_10_min,
            &CONTRACTION_COUNTS,
            |n| match n {
                1 => "1",
                2 => "2",
                3 => "3",
                4 => "4",
                5 => "5",
                _ => "6 or more",
            },
            jump,
            MATERNITY,
        );
    }
    egui::Grid::new("maternity-unit")
        .num_columns(2)
        .spacing([12.0, 8.0])
        .show(ui, |ui| {
            changed |= yes_no(
                ui,
                "Maternity unit contacted",
                &mut m.maternity_unit_contacted,
            )
            .0;
        });
    changed
}

fn breathing_ui(ui: &mut Ui, b: &mut BreathingAssessment, jump: &mut Option<Field>) -> bool {
    let mut changed = pick(
        ui,
        "Speech in one breath",
        &mut b.speech,
        &Speech::ALL,
        Speech::label,
        jump,
        BREATHING,
    );
    egui::Grid::new("breathing-signs")
        .num_columns(2)
        .spacing([12.0, 8.0])
        .show(ui, |ui| {
            changed |= yes_no(ui, "Wheeze", &mut b.wheeze).0;
            changed |= yes_no(ui, "Accessory muscle use", &mut b.accessory_muscles).0;
        });
    changed |= pick(
        ui,
        "Known condition",
        &mut b.known_condition,
        &KnownCondition::ALL,
        KnownCondition::label,
        jump,
        BREATHING,
    );
    if b.known_condition == Some(KnownCondition::Copd) {
        ui.label(
            RichText::new(
                "COPD: SpO2 scale 2 only with confirmed hypercapnic respiratory failure, chosen per set under Observations",
            )
            .weak(),
        );
    }
    ui.label("Life-threatening features");
    ui.horizontal_wrapped(|ui| {
        for threat in LifeThreat::ALL {
            let on = b.life_threats.contains(&threat);
            let r = choice(ui, on, threat.label());
            name_widget(
                &r,
                egui::Role::Button,
                &format!("Life-threatening: {}", threat.label().to_lowercase()),
            );
            if r.clicked() {
                b.set_threat(threat, !on);
                changed = true;
            }
        }
        let r = choice(ui, b.no_life_threats, "None");
        name_widget(&r, egui::Role::Button, "Life-threatening: none");
        if r.clicked() && !b.no_life_threats {
            b.no_life_threats = true;
            b.life_threats.clear();
            changed = true;
        }
    });
    if !b.life_threats.is_empty() {
        warning_text(
            ui,
            "Life-threatening features: the handover says them before the other findings",
        );
    }
    changed
}

fn mental_health_ui(ui: &mut Ui, m: &mut MentalHealthAssessment, jump: &mut Option<Field>) -> bool {
    let mut changed = false;
    egui::Grid::new("mental-health-risks")
        .num_columns(2)
        .spacing([12.0, 8.0])
        .show(ui, |ui| {
            let (c, r) = yes_no(ui, "Thoughts of suicide", &mut m.thoughts_of_suicide);
            jump_here(&r, jump, MENTAL_HEALTH);
            changed |= c;
            changed |= yes_no(ui, "Self-harm in this episode", &mut m.self_harm).0;
            changed |= yes_no(ui, "Risk to others", &mut m.risk_to_others).0;
            changed |= yes_no(ui, "Police present", &mut m.police_present).0;
        });
    if m.any_risk() {
        warning_text(ui, "A risk is present: said in the handover");
    }
    changed |= pick(
        ui,
        "Mental Health Act status",
        &mut m.legal_status,
        &LegalStatus::ALL,
        LegalStatus::label,
        jump,
        MENTAL_HEALTH,
    );
    changed |= pick(
        ui,
        "Mental health service contacted",
        &mut m.contacted,
        &MentalHealthContact::ALL,
        MentalHealthContact::label,
        jump,
        MENTAL_HEALTH,
    );
    changed
}

fn fall_ui(ui: &mut Ui, f: &mut FallAssessment, jump: &mut Option<Field>) -> bool {
    const NUMBERS: [&str; 9] = ["1", "2", "3", "4", "5", "6", "7", "8", "9"];
    let mut changed = pick(
        ui,
        "Clinical Frailty Scale",
        &mut f.frailty_scale,
        &CFS_LEVELS,
        |level| {
            NUMBERS
                .get(usize::from(level).saturating_sub(1))
                .copied()
                .unwrap_or("?")
        },
        jump,
        FALL,
    );
    if let Some(name) = f.frailty_label() {
        ui.label(RichText::new(name).weak());
    }
    changed |= pick(
        ui,
        "Time on the floor",
        &mut f.time_on_floor,
        &TimeOnFloor::ALL,
        TimeOnFloor::label,
        jump,
        FALL,
    );
    egui::Grid::new("fall-head")
        .num_columns(2)
        .spacing([12.0, 8.0])
        .show(ui, |ui| {
            changed |= yes_no(ui, "Head injury", &mut f.head_injury).0;
            changed |= yes_no(ui, "On an anticoagulant", &mut f.anticoagulated).0;
        });
    if f.anticoagulated_head_injury() {
        warning_text(
            ui,
            "Head injury on an anticoagulant: said first in the handover; needs imaging",
        );
    }
    changed |= pick(
        ui,
        "Mobility",
        &mut f.mobility,
        &Mobility::ALL,
        Mobility::label,
        jump,
        FALL,
    );
    changed |= pick(
        ui,
        "Falls referral",
        &mut f.referral,
        &FallsReferral::ALL,
        FallsReferral::label,
        jump,
        FALL,
    );
    changed
}

fn presentations_ui(ui: &mut Ui, doc: &mut Encounter, jump: &mut Option<Field>) -> bool {
    let mut changed = false;
    ui.label(RichText::new("Presentation (pick all that apply)").strong());
    ui.horizontal_wrapped(|ui| {
        for (i, p) in Presentation::ALL.into_iter().enumerate() {
            let picked = doc.assessment.has(p);
            let r = choice(ui, picked, p.label());
            name_widget(
                &r,
                egui::Role::Button,
                &format!("Presentation: {}", p.label().to_lowercase()),
            );
            if i == 0 {
                jump_here(&r, jump, Field::Assessment(AssessmentPart::Presentations));
            }
            if r.clicked() {
                doc.assessment.set(p, !picked);
                changed = true;
            }
        }
    });
    changed
}

/// Gives each presentation's section to a record with them picked, and sets them aside
/// when unpicked. Read-only views change nothing.
fn keep_sections(ui: &Ui, doc: &mut Encounter, forms: &mut Forms) -> bool {
    if !ui.is_enabled() {
        return false;
    }
    let a = &mut doc.assessment;
    let mut changed = keep(
        a.presentations.contains(&Presentation::Stroke),
        &mut a.stroke,
        &mut forms.parked_stroke,
    );
    changed |= keep(
        a.presentations.contains(&Presentation::CardiacArrest),
        &mut a.arrest,
        &mut forms.parked_arrest,
    );
    changed |= keep(
        a.presentations.contains(&Presentation::Sepsis),
        &mut a.sepsis,
        &mut forms.parked_sepsis,
    );
    changed |= keep(
        a.presentations.contains(&Presentation::BreathingDifficulty),
        &mut a.breathing,
        &mut forms.parked_breathing,
    );
    changed |= keep(
        a.presentations.contains(&Presentation::MentalHealth),
        &mut a.mental_health,
        &mut forms.parked_mental_health,
    );
    changed |= keep(
        a.presentations.contains(&Presentation::Fall),
        &mut a.fall,
        &mut forms.parked_fall,
    );
    changed |= keep(
        a.presentations.contains(&Presentation::Trauma),
        &mut a.trauma,
        &mut forms.parked_trauma,
    );
    changed |= keep(
        a.presentations.contains(&Presentation::Maternity),
        &mut a.maternity,
        &mut forms.parked_maternity,
    );
    changed |= keep(
        a.presentations.contains(&Presentation::Paediatric),
        &mut a.paediatric,
        &mut forms.parked_paediatric,
    );
    changed
}

/// Moves a section between the record and the parking place as `picked` says.
fn keep<T: Default>(picked: bool, section: &mut Option<T>, parked: &mut Option<T>) -> bool {
    match (picked, section.is_some()) {
        (true, false) => {
            *section = Some(parked.take().unwrap_or_default());
            true
        }
        (false, true) => {
            *parked = section.take();
            true
        }
        _ => false,
    }
}

fn arrest_ui(
    ui: &mut Ui,
    a: &mut CardiacArrest,
    forms: &mut Forms,
    jump: &mut Option<Field>,
) -> bool {
    let mut changed = pick(
        ui,
        "Witnessed",
        &mut a.witnessed,
        &Witness::ALL,
        Witness::label,
        jump,
        ARREST,
    );
    if a.witnessed != Some(Witness::Crew) {
        egui::Grid::new("arrest-bystander")
            .num_columns(2)
            .spacing([12.0, 8.0])
            .show(ui, |ui| {
                changed |= yes_no(ui, "Bystander CPR", &mut a.bystander_cpr).0;
            });
    }
    changed |= pick(
        ui,
        "Arrest ended",
        &mut a.end,
        &ArrestEnd::ALL,
        ArrestEnd::label,
        jump,
        ARREST,
    );
    forms
        .arrest_times
        .resize_with(ArrestTime::ALL.len(), TimeText::default);
    let asked = a.times_asked();
    egui::Grid::new("arrest-times")
        .num_columns(2)
        .spacing([12.0, 8.0])
        .show(ui, |ui| {
            for (t, buffer) in ArrestTime::ALL.iter().zip(forms.arrest_times.iter_mut()) {
                if asked.contains(t) || a.time(*t).is_some() {
                    changed |= time_row(ui, t.label(), buffer, a.time_mut(*t), jump, ARREST);
                }
            }
        });
    for w in a.time_warnings() {
        warning_text(ui, &w);
    }
    if a.resuscitation_attempted() {
        changed |= pick(
            ui,
            "First rhythm",
            &mut a.first_rhythm,
            &ArrestRhythm::ALL,
            ArrestRhythm::label,
            jump,
            ARREST,
        );
        changed |= shocks_ui(ui, a);
        changed |= pick(
            ui,
            "Airway",
            &mut a.airway,
            &ArrestAirway::ALL,
            ArrestAirway::label,
            jump,
            ARREST,
        );
    }
    changed
}

/// The shocks given, each with its time and energy; one tap records a shock now.
fn shocks_ui(ui: &mut Ui, a: &mut CardiacArrest) -> bool {
    let mut changed = false;
    ui.label(format!("Shocks ({})", a.shocks.len()));
    let mut remove = None;
    for (i, shock) in a.shocks.iter().enumerate() {
        ui.horizontal(|ui| {
            ui.label(format!(
                "{}. {} J at {}",
                i + 1,
                shock.energy_joules,
                super::forms::clock_local(shock.at_utc)
            ));
            if ui.is_enabled() {
                let r = ui.button("Remove");
                name_widget(&r, egui::Role::Button, &format!("Remove shock {}", i + 1));
                if r.clicked() {
                    remove = Some(i);
                }
            }
        });
    }
    if let Some(i) = remove {
        a.shocks.remove(i);
        changed = true;
    }
    if ui.is_enabled() {
        ui.horizontal_wrapped(|ui| {
            for energy in SHOCK_ENERGIES_J {
                if ui.button(format!("Shock {energy} J now")).clicked() {
                    a.shocks.push(Shock {
                        at_utc: now_utc(),
                        energy_joules: energy,
                    });
                    changed = true;
                }
            }
        });
    }
    changed
}

/// A time with "Now" and "Clear", typed on the 24-hour clock; `name` is its accessible name.
/// Returns true when the stored time changed.
fn time_row(
    ui: &mut Ui,
    name: &str,
    buffer: &mut TimeText,
    value: &mut Option<DateTime<Utc>>,
    jump: &mut Option<Field>,
    field: Field,
) -> bool {
    let before = *value;
    let label = ui.label(name);
    ui.horizontal(|ui| {
        let r = ui
            .add(TextEdit::singleline(&mut buffer.text).desired_width(90.0))
            .labelled_by(label.id);
        jump_here(&r, jump, field);
        if r.changed() {
            buffer.apply(now_utc(), Expect::Past, value);
        }
        if ui.is_enabled() {
            let now = ui.button("Now");
            name_widget(&now, egui::Role::Button, &format!("{name} now"));
            if now.clicked() {
                *value = Some(now_utc());
                *buffer = TimeText::from_time(*value);
            }
            if value.is_some() {
                let clear = ui.button("Clear");
                name_widget(
                    &clear,
                    egui::Role::Button,
                    &format!("Clear {}", name.to_lowercase()),
                );
                if clear.clicked() {
                    *value = None;
                    *buffer = TimeText::default();
                }
            }
        }
        if let Some(e) = buffer.error
            && time_problem_ui(ui, &e, &mut buffer.text)
        {
            buffer.apply(now_utc(), Expect::Past, value);
        }
    });
    ui.end_row();
    *value != before
}

fn stroke_ui(
    ui: &mut Ui,
    s: &mut StrokeAssessment,
    forms: &mut Forms,
    jump: &mut Option<Field>,
    glucose_measured: bool,
) -> bool {
    let mut changed = false;
    ui.label("BE-FAST: face, arms and speech always; balance and eyes when assessed");
    egui::Grid::new("befast-grid")
        .num_columns(2)
        .spacing([12.0, 8.0])
        .show(ui, |ui| {
            for item in BeFast::ALL {
                ui.label(item.label());
                ui.horizontal(|ui| {
                    let value = s.finding_mut(item);
                    for f in Finding::ALL {
                        let r = choice(ui, *value == Some(f), f.label());
                        name_widget(
                            &r,
                            egui::Role::Button,
                            &format!("{}: {}", item.label(), f.label().to_lowercase()),
                        );
                        if item == BeFast::Face && f == Finding::Normal {
                            jump_here(&r, jump, STROKE);
                        }
                        if r.clicked() && *value != Some(f) {
                            *value = Some(f);
                            changed = true;
                        }
                    }
                });
                ui.end_row();
            }
        });
    ui.add_space(6.0);
    changed |= pick(
        ui,
        "Onset",
        &mut s.onset,
        &OnsetKind::ALL,
        OnsetKind::label,
        jump,
        STROKE,
    );
    let name = match s.onset {
        Some(OnsetKind::LastKnownWell) => "Last known well",
        _ => "Onset time",
    };
    egui::Grid::new("stroke-times")
        .num_columns(2)
        .spacing([12.0, 8.0])
        .show(ui, |ui| {
            changed |= time_row(
                ui,
                name,
                &mut forms.stroke_onset,
                &mut s.onset_utc,
                jump,
                STROKE,
            );
        });
    if !glucose_measured {
        warning_text(
            ui,
            "No blood glucose recorded yet: hypoglycaemia can look like a stroke. Add one under Observations.",
        );
    }
    ui.add_space(6.0);
    changed |= pick(
        ui,
        "Stroke pathway",
        &mut s.pathway,
        &StrokePathway::ALL,
        StrokePathway::label,
        jump,
        STROKE,
    );
    if s.pathway == Some(StrokePathway::HyperacuteStrokeUnit) {
        egui::Grid::new("stroke-pre-alert")
            .num_columns(2)
            .spacing([12.0, 8.0])
            .show(ui, |ui| {
                changed |= time_row(
                    ui,
                    "Stroke unit pre-alerted",
                    &mut forms.stroke_pre_alert,
                    &mut s.pre_alert_utc,
                    jump,
                    STROKE,
                );
            });
    }
    changed
}

fn ecgs_ui(ui: &mut Ui, doc: &mut Encounter, forms: &mut Forms, jump: &mut Option<Field>) -> bool {
    let mut changed = false;
    ui.label(RichText::new("12-lead ECG").heading());
    let a = &mut doc.assessment;
    forms.ecg_times.resize_with(a.ecgs.len(), TimeText::default);
    let mut remove = None;
    let count = a.ecgs.len();
    for (i, (ecg, time)) in a
        .ecgs
        .iter_mut()
        .zip(forms.ecg_times.iter_mut())
        .enumerate()
    {
        let title = if count > 1 {
            format!("ECG {}", i + 1)
        } else {
            "ECG".to_owned()
        };
        egui::Frame::group(ui.style()).show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.horizontal(|ui| {
                ui.label(RichText::new(&title).strong());
                if ui.is_enabled() {
                    let r = ui.button("Remove");
                    name_widget(&r, egui::Role::Button, &format!("Remove {title}"));
                    if r.clicked() {
                        remove = Some(i);
                    }
                }
            });
            changed |= ecg_ui(ui, i, ecg, time, jump);
        });
    }
    if let Some(i) = remove {
        a.ecgs.remove(i);
        forms.ecg_times.remove(i);
        changed = true;
    }
    if a.ecgs.is_empty() && !ui.is_enabled() {
        ui.label("None recorded");
    }
    if ui.is_enabled() {
        let r = ui.button("Add 12-lead ECG");
        if a.ecgs.is_empty() {
            jump_here(&r, jump, ECG);
        }
        if r.clicked() {
            a.ecgs.push(Ecg12Lead::default());
            forms.ecg_times.push(TimeText::default());
            changed = true;
        }
    }
    if a.has(Presentation::ChestPain) && a.ecgs.is_empty() {
        ui.horizontal_wrapped(|ui| {
            changed |= text_field(
                ui,
                "No ECG taken because",
                &mut a.ecg_not_done_reason,
                300.0,
            )
            .changed();
            for p in NO_ECG_PICKS {
                if ui.is_enabled() && ui.button(p).clicked() {
                    a.ecg_not_done_reason = p.to_owned();
                    changed = true;
                }
            }
        });
    }
    changed
}

fn ecg_ui(
    ui: &mut Ui,
    index: usize,
    ecg: &mut Ecg12Lead,
    time: &mut TimeText,
    jump: &mut Option<Field>,
) -> bool {
    let mut changed = false;
    if time.text.is_empty() && time.error.is_none() && ecg.taken_utc.is_some() {
        *time = TimeText::from_time(ecg.taken_utc);
    }
    egui::Grid::new(("ecg-time", index))
        .num_columns(2)
        .spacing([12.0, 8.0])
        .show(ui, |ui| {
            changed |= time_row(ui, "ECG taken", time, &mut ecg.taken_utc, jump, ECG);
        });
    changed |= pick(
        ui,
        "Rhythm",
        &mut ecg.rhythm,
        &EcgRhythm::ALL,
        EcgRhythm::label,
        jump,
        ECG,
    );
    if ecg.rhythm == Some(EcgRhythm::Other) {
        changed |= text_field(ui, "Rhythm (other)", &mut ecg.rhythm_other, 260.0).changed();
    }
    egui::Grid::new(("ecg-grid", index))
        .num_columns(2)
        .spacing([12.0, 8.0])
        .show(ui, |ui| {
            changed |= yes_no(ui, "STEMI criteria met", &mut ecg.stemi).0;
            changed |= yes_no(ui, "Transmitted", &mut ecg.transmitted).0;
            if ecg.stemi == Some(true) {
                changed |= yes_no(ui, "Primary PCI pathway", &mut ecg.ppci).0;
            }
        });
    // Where it was sent: one tap also says it was transmitted.
    if ecg.transmitted != Some(false) {
        ui.horizontal_wrapped(|ui| {
            if ecg.transmitted == Some(true) {
                changed |=
                    text_field(ui, "Transmitted to", &mut ecg.transmitted_to, 300.0).changed();
            } else if ui.is_enabled() {
                ui.label("Sent to");
            }
            if ui.is_enabled() {
                for pick in quick_picks::ECG_SENT_TO {
                    if quick_pick(ui, "Transmitted to", pick).clicked() {
                        ecg.transmitted = Some(true);
                        ecg.transmitted_to = pick.to_owned();
                        changed = true;
                    }
                }
            }
        });
    }
    if ecg.stemi == Some(true) && ecg.ppci.is_none() {
        warning_text(ui, "STEMI: say whether the patient is on the PPCI pathway");
    }
    changed
}
