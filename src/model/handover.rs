//! The ATMIST(ER) handover, generated from the record (RCEM guidance, CLINICAL.md).
//!
//! Age and sex, Time of incident, Mechanism or complaint, Injuries or information, Signs
//! (latest observations with NEWS2 and its trend), Treatment; then ETA and Requirements for a
//! pre-alert. About 30 seconds read aloud: one short line per letter.

use chrono::{DateTime, FixedOffset, Offset, Utc};

use super::allergy::AllergyStatus;
use super::encounter::{CurrentNews2, Encounter, Outcome, Pregnancy};
use super::observations::{Inspired, ObservationSet};

/// One ATMIST line: the letter, its meaning, and the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandoverLine {
    pub letter: &'static str,
    pub heading: &'static str,
    pub text: String,
}

/// Formats a UTC time as the 24-hour clock crews use ("14:05"), in UTC.
pub fn clock(at: DateTime<Utc>) -> String {
    at.format("%H:%M").to_string()
}

/// Formats a time as the 24-hour clock in the given offset from UTC (the local time the crew
/// and the hospital read, e.g. UTC+01:00 in British Summer Time).
pub fn clock_in(at: DateTime<Utc>, offset: FixedOffset) -> String {
    at.with_timezone(&offset).format("%H:%M").to_string()
}

/// The observations of one set in the order crews read them; only what was measured.
pub fn observation_summary(o: &ObservationSet) -> String {
    let mut parts = Vec::new();
    if let Some(v) = o.resp_rate_per_min {
        parts.push(format!("RR {}", v.get()));
    }
    if let Some(v) = o.spo2_percent {
        let on = match o.inspired {
            Some(Inspired::Air) => " on air".to_owned(),
            Some(Inspired::Oxygen {
                flow_l_per_min: Some(f),
            }) => format!(" on {} L/min O2", f.get()),
            Some(Inspired::Oxygen {
                flow_l_per_min: None,
            }) => " on O2".to_owned(),
            None => String::new(),
        };
        parts.push(format!("SpO2 {}%{on}", v.get()));
    }
    match (o.systolic_mmhg, o.diastolic_mmhg) {
        (Some(s), Some(d)) => parts.push(format!("BP {}/{}", s.get(), d.get())),
        (Some(s), None) => parts.push(format!("BP {} systolic", s.get())),
        _ => {}
    }
    if let Some(v) = o.pulse_bpm {
        parts.push(format!("HR {}", v.get()));
    }
    if let Some(v) = o.temperature_celsius {
        parts.push(format!("temp {:.1}", v.get()));
    }
    if let Some(v) = o.acvpu {
        parts.push(format!("ACVPU {}", v.letter()));
    }
    if let Some(g) = o.gcs {
        parts.push(g.display());
    }
    if let Some(v) = o.glucose_mmol_per_l {
        parts.push(format!("BM {:.1}", v.get()));
    }
    if let Some(v) = o.pain_score {
        parts.push(format!("pain {}/10", v.get()));
    }
    parts.extend(o.more_text());
    if o.copied_from_utc.is_some() && !parts.is_empty() {
        parts.push("values copied from an earlier set".to_owned());
    }
    if parts.is_empty() {
        "no values recorded".to_owned()
    } else {
        parts.join(", ")
    }
}

/// ATMIST "S": the latest complete set with its NEWS2 and trend, then every later partial
/// recheck, so a glucose-only set never hides the vital signs read before it.
fn signs_line(e: &Encounter, clock: &impl Fn(DateTime<Utc>) -> String) -> String {
    let sets = e.observations_by_time();
    let Some(latest) = sets.last() else {
        return "no observations recorded".to_owned();
    };
    let CurrentNews2::Scored(complete) = e.current_news2() else {
        return format!(
            "at {}: {}. {}",
            clock(latest.taken_at_utc),
            observation_summary(latest),
            e.news2_for(latest).display()
        );
    };
    let mut text = format!(
        "at {}: {}. NEWS2 {} ({})",
        clock(complete.taken_at_utc),
        observation_summary(&complete.set),
        complete.score.total,
        complete.score.risk_and_scale()
    );
    let totals: Vec<u8> = sets.iter().filter_map(|o| e.news2_for(o).total()).collect();
    if totals.len() >= 2 {
        let first = totals.first().copied().unwrap_or_default();
        let last = totals.last().copied().unwrap_or_default();
        let trend = match last.cmp(&first) {
            std::cmp::Ordering::Less => "improving",
            std::cmp::Ordering::Equal => "unchanged",
            std::cmp::Ordering::Greater => "worsening",
        };
        text.push_str(&format!(", {trend} from {first}"));
    }
    if let Some(caveat) = e.news2_caveat() {
        text.push_str(&format!(" ({caveat})"));
    }
    for later in e.sets_after_latest_complete() {
        text.push_str(&format!(
            "; then at {}: {}",
            clock(later.taken_at_utc),
            observation_summary(later)
        ));
    }
    text
}

fn or_not_recorded(text: &str) -> String {
    let t = text.trim();
    if t.is_empty() {
        "not recorded".to_owned()
    } else {
        t.to_owned()
    }
}

/// The handover lines for `e`, times in UTC.
pub fn atmist(e: &Encounter) -> Vec<HandoverLine> {
    atmist_in(e, Utc.fix())
}

/// The handover lines for `e`, times shown at `offset` from UTC. The app passes the tablet's
/// local offset, so a handover read aloud in British Summer Time says the clock time everyone
/// in the room sees.
pub fn atmist_in(e: &Encounter, offset: FixedOffset) -> Vec<HandoverLine> {
    let clock = |at: DateTime<Utc>| clock_in(at, offset);
    let months = e.patient.date_of_birth.and_then(|dob| {
        super::paediatric::age_months_under_two(dob, e.created_at_utc.date_naive())
    });
    let age = match (e.patient_age_years(), e.patient.date_of_birth) {
        // Under two, years hide too much: "14 months".
        (_, Some(_)) if months.is_some() => {
            format!("{} months", months.unwrap_or_default())
        }
        (Some(a), Some(_)) => format!("{a} years"),
        (Some(a), None) => format!("about {a} years"),
        (None, _) => "age unknown".to_owned(),
    };
    let sex = e
        .patient
        .sex
        .map(|s| s.label().to_lowercase())
        .unwrap_or_else(|| "sex not recorded".to_owned());

    let mut time = match e.incident.times.first_recorded() {
        Some((m, at)) => format!("{} {}", m.label(), clock(at)),
        None => "not recorded".to_owned(),
    };
    // A stroke's clock starts at its onset (or when the patient was last known well), not
    // at the call: the receiving team decides on thrombolysis from it, so it is said first.
    if let Some(onset) = e.assessment.stroke().and_then(|s| s.onset_text(clock)) {
        time = format!("{onset}; {time}");
    }
    // So does an arrest's, at the collapse.
    if let Some(collapse) = e.assessment.arrest().and_then(|a| a.collapse_utc) {
        time = format!("Collapse {}; {time}", clock(collapse));
    }

    let mut mechanism = or_not_recorded(&e.history.presenting_complaint);
    if let Some(m) = e.assessment.trauma().and_then(|t| t.mechanism_text()) {
        mechanism = format!("{m}; {mechanism}");
    }

    let mut info = Vec::new();
    // Injuries (catastrophic haemorrhage first), and a fall's frailty, long lie and
    // anticoagulated head injury, come before the history.
    if let Some(trauma) = e.assessment.trauma() {
        let injuries = trauma.injuries_text(clock);
        if !injuries.is_empty() {
            info.push(injuries);
        }
    }
    if let Some(breathing) = e.assessment.breathing() {
        info.push(breathing.summary());
    }
    if let Some(m) = e.assessment.mental_health() {
        info.push(m.summary());
    }
    if let Some(fall) = e.assessment.fall() {
        info.push(fall.summary());
    }
    if let Some(maternity) = e.assessment.maternity() {
        info.push(maternity.summary());
    }
    if !e.history.history_of_complaint.trim().is_empty() {
        info.push(e.history.history_of_complaint.trim().to_owned());
    }
    if !e.history.past_medical_history.trim().is_empty() {
        info.push(format!("PMH {}", e.history.past_medical_history.trim()));
    }
    if !e.history.medications.trim().is_empty() {
        info.push(format!("medication {}", e.history.medications.trim()));
    }
    info.push(
        match AllergyStatus::of_record(&e.history.allergies, &e.history.allergy_classes) {
            AllergyStatus::NotRecorded => "allergies not recorded".to_owned(),
            AllergyStatus::NoKnownDrugAllergy => "no known drug allergy (NKDA)".to_owned(),
            AllergyStatus::NoKnownAllergy => "no known allergy".to_owned(),
            AllergyStatus::Unknown => "allergy status unknown".to_owned(),
            AllergyStatus::Recorded(text) => format!("ALLERGIES {text}"),
        },
    );
    if let Some(advance) = e.history.advance_decisions.summary() {
        info.push(advance);
    }
    // Said as a concern raised and referred, not its details: the handover is heard by
    // everyone in the bay; the referral is on the record.
    if e.history.safeguarding.concern_raised {
        let referred = if e.history.safeguarding.referred_to.trim().is_empty() {
            ""
        } else {
            " and referred"
        };
        info.push(format!("safeguarding concern raised{referred}"));
    }
    // Never empty: the allergy line is always said, even when it is "not recorded".
    let information = info.join("; ");

    let mut signs = signs_line(e, &clock);
    if let Some(arrest) = e.assessment.arrest() {
        // The arrest first: it is what the team waiting needs before any number.
        signs = format!("{}; {signs}", arrest.summary(clock));
    }
    if let Some(stroke) = e.assessment.stroke() {
        signs.push_str(&format!("; {}", stroke.findings_text()));
    }
    if let Some(sepsis) = e.assessment.sepsis() {
        signs.push_str(&format!("; {}", sepsis.summary(e, clock)));
    }
    for ecg in &e.assessment.ecgs {
        signs.push_str(&format!("; {}", ecg.summary(clock)));
    }

    let mut treatment: Vec<(DateTime<Utc>, String)> = Vec::new();
    for d in &e.drugs {
        treatment.push((d.at_utc, format!("{} at {}", d.summary(), clock(d.at_utc))));
    }
    for i in &e.interventions {
        treatment.push((i.at_utc, format!("{} at {}", i.what, clock(i.at_utc))));
    }
    if let Some(arrest) = e.assessment.arrest() {
        treatment.extend(arrest.shock_lines(clock));
    }
    if let Some(at) = e.assessment.trauma().and_then(|t| t.tourniquet_utc) {
        treatment.push((at, format!("Tourniquet at {}", clock(at))));
    }
    treatment.sort_by_key(|(t, _)| *t);
    let treatment = if treatment.is_empty() {
        "none".to_owned()
    } else {
        treatment
            .into_iter()
            .map(|(_, s)| s)
            .collect::<Vec<_>>()
            .join("; ")
    };

    let mut lines = vec![
        HandoverLine {
            letter: "A",
            heading: "Age and sex",
            text: {
                let mut a = match e.patient.pregnancy {
                    Some(p @ (Pregnancy::Pregnant { .. } | Pregnancy::PostPartum)) => {
                        format!("{age}, {sex}, {}", p.label().to_lowercase())
                    }
                    _ => format!("{age}, {sex}"),
                };
                // A child's weight is said with the age: every dose is worked out from it.
                if let Some(w) = e.assessment.paediatric().and_then(|p| p.weight_text()) {
                    a.push_str(&format!(", {w}"));
                }
                a
            },
        },
        HandoverLine {
            letter: "T",
            heading: "Time of incident",
            text: time,
        },
        HandoverLine {
            letter: "M",
            heading: "Mechanism or complaint",
            text: mechanism,
        },
        HandoverLine {
            letter: "I",
            heading: "Injuries or information",
            text: information,
        },
        HandoverLine {
            letter: "S",
            heading: "Signs",
            text: signs,
        },
        HandoverLine {
            letter: "T",
            heading: "Treatment",
            text: treatment,
        },
    ];
    // Said aloud: the hospital's name only (the PDF and FHIR document carry its ODS code).
    if let Some(Outcome::ConveyedTo { hospital, .. }) = &e.outcome {
        let eta = e
            .pre_alert
            .eta_utc
            .map(clock)
            .unwrap_or_else(|| "not given".to_owned());
        lines.push(HandoverLine {
            letter: "E",
            heading: "ETA",
            text: format!("{eta} to {}", or_not_recorded(hospital)),
        });
        lines.push(HandoverLine {
            letter: "R",
            heading: "Requirements",
            text: if e.pre_alert.requirements.trim().is_empty() {
                "none stated".to_owned()
            } else {
                e.pre_alert.requirements.trim().to_owned()
            },
        });
    }
    lines
}

/// The handover as plain text, one "A: ..." line per letter, times in UTC.
pub fn atmist_text(e: &Encounter) -> String {
    atmist_text_in(e, Utc.fix())
}

/// The handover as plain text, times shown at `offset` from UTC.
pub fn atmist_text_in(e: &Encounter, offset: FixedOffset) -> String {
    atmist_in(e, offset)
        .iter()
        .map(|l| format!("{}: {}", l.letter, l.text))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::complete_encounter;

    #[test]
    fn atmist_for_the_reference_record() {
        let text = atmist_text(&complete_encounter());
        let expected = "\
A: 68 years, male
T: Call connected 10:00
M: Central chest pain
I: Sudden onset at rest 40 minutes before call; PMH Hypertension; medication Ramipril; no known drug allergy (NKDA)
S: at 10:30: RR 18, SpO2 97% on air, BP 150/90, HR 92, temp 37.1, ACVPU A, GCS 15 (E4 V5 M6), BM 6.1, pain 3/10. NEWS2 1 (low), improving from 4
T: 12-lead ECG at 10:16; Aspirin 300 milligrams Oral at 10:18; GTN 400 micrograms Sublingual at 10:20
E: 11:05 to Test General Hospital
R: Cardiology review";
        assert_eq!(text, expected);
    }

    #[test]
    fn times_follow_the_given_offset() {
        let bst = FixedOffset::east_opt(3600).unwrap();
        let lines = atmist_in(&complete_encounter(), bst);
        assert_eq!(lines[1].text, "Call connected 11:00");
        assert!(lines[4].text.starts_with("at 11:30:"));
    }

    #[test]
    fn empty_record_says_what_is_not_recorded() {
        let e = Encounter::new_draft(chrono::Utc::now());
        let text = atmist_text(&e);
        assert!(text.contains("A: age unknown, sex not recorded"));
        assert!(text.contains("S: no observations recorded"));
        assert!(text.contains("T: none"));
        assert!(!text.contains("E:"), "no ETA line when not conveyed");
    }

    #[test]
    fn a_partial_recheck_follows_the_latest_complete_set() {
        let mut e = complete_encounter();
        let mut recheck = crate::model::ObservationSet::empty(
            e.observations_by_time().last().unwrap().taken_at_utc + chrono::Duration::minutes(10),
        );
        recheck.glucose_mmol_per_l = Some(crate::model::GlucoseMmolPerL::new(5.4).unwrap());
        e.observations.push(recheck);
        let s = &atmist(&e)[4].text;
        assert!(
            s.starts_with("at 10:30: RR 18, SpO2 97% on air, BP 150/90"),
            "the vital signs stay: {s}"
        );
        assert!(s.contains("NEWS2 1 (low), improving from 4"), "{s}");
        assert!(s.ends_with("; then at 10:40: BM 5.4"), "{s}");
    }

    #[test]
    fn pregnancy_and_an_unknown_age_reach_the_handover() {
        let mut e = complete_encounter();
        e.patient.sex = Some(crate::model::Sex::Female);
        e.patient.pregnancy = Some(Pregnancy::Pregnant {
            gestation_weeks: Some(32),
        });
        let lines = atmist(&e);
        assert_eq!(lines[0].text, "68 years, female, pregnant, 32 weeks");
        assert!(
            lines[4]
                .text
                .contains("NEWS2 1 (low), improving from 4 (NEWS2 not validated in pregnancy)"),
            "{}",
            lines[4].text
        );
        e.patient.pregnancy = None;
        e.patient.date_of_birth = None;
        let s = &atmist(&e)[4].text;
        assert!(s.contains("(adult chart assumed: no age recorded)"), "{s}");
    }

    #[test]
    fn no_complete_set_says_incomplete() {
        let mut e = complete_encounter();
        for o in &mut e.observations {
            o.temperature_celsius = None;
        }
        let text = atmist_text(&e);
        assert!(text.contains("NEWS2 incomplete (6/7)"), "{text}");
    }
}
