//! The completion check run before "Complete and sign".
//!
//! It lists every missing mandatory item by name, each with a [`Field`] the UI can jump to.
//! It never blocks saving a draft: it is only consulted at sign-off.

use super::assessment::AssessmentPart;
use super::encounter::{Encounter, Milestone, Outcome};
use super::news2::News2;
use super::non_conveyance::{NonConveyance, NonConveyanceItem};

/// A place in the record the editor can jump to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    IncidentNumber,
    CallSign,
    Time(Milestone),
    PatientName,
    PatientAge,
    PatientSex,
    PresentingComplaint,
    Allergies,
    AdvanceDecisions,
    Safeguarding,
    /// A part of the presentations' assessments (stroke, 12-lead ECG).
    Assessment(AssessmentPart),
    Observations,
    Outcome,
    /// A part of the non-conveyance section.
    NonConveyance(NonConveyanceItem),
    Crew,
    SignOffClinician,
}

/// One missing mandatory item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingItem {
    pub field: Field,
    /// What is missing, in words ("Patient name").
    pub label: &'static str,
}

/// Every mandatory item the record lacks, in the order the editor shows its sections.
/// An empty list means the record can be signed.
pub fn missing_items(e: &Encounter) -> Vec<MissingItem> {
    let mut out = Vec::new();
    let mut need = |ok: bool, field: Field, label: &'static str| {
        if !ok {
            out.push(MissingItem { field, label });
        }
    };
    need(
        !e.incident.incident_number.trim().is_empty(),
        Field::IncidentNumber,
        "Incident number",
    );
    need(
        !e.incident.call_sign.trim().is_empty(),
        Field::CallSign,
        "Call sign",
    );
    need(
        e.incident.times.get(Milestone::CallConnected).is_some(),
        Field::Time(Milestone::CallConnected),
        "Time call connected",
    );
    need(
        e.incident.times.get(Milestone::AtPatient).is_some(),
        Field::Time(Milestone::AtPatient),
        "Time at patient",
    );
    need(
        !e.patient.display_name().is_empty(),
        Field::PatientName,
        "Patient name",
    );
    need(
        e.patient.date_of_birth.is_some() || e.patient.estimated_age_years.is_some(),
        Field::PatientAge,
        "Date of birth or estimated age",
    );
    need(e.patient.sex.is_some(), Field::PatientSex, "Sex");
    need(
        !e.history.presenting_complaint.trim().is_empty(),
        Field::PresentingComplaint,
        "Presenting complaint",
    );
    need(
        !e.history.allergies.trim().is_empty() || !e.history.allergy_classes.is_empty(),
        Field::Allergies,
        "Allergies (or NKDA)",
    );
    for label in e.history.advance_decisions.missing() {
        need(false, Field::AdvanceDecisions, label);
    }
    for label in e.history.safeguarding.missing() {
        need(false, Field::Safeguarding, label);
    }
    let glucose_measured = e
        .observations
        .iter()
        .any(|o| o.glucose_mmol_per_l.is_some());
    for (part, label) in e.assessment.missing(glucose_measured, e.patient.pregnancy) {
        need(false, Field::Assessment(part), label);
    }
    need(
        !e.observations.is_empty(),
        Field::Observations,
        "At least one set of observations",
    );
    if !e.observations.is_empty() {
        let any_whole = e
            .observations
            .iter()
            .any(|o| !matches!(e.news2_for(o), News2::Incomplete { .. }));
        need(
            any_whole,
            Field::Observations,
            "One observation set with all seven NEWS2 inputs",
        );
        let unconfirmed = e
            .observations
            .iter()
            .any(|o| !o.soft_limit_warnings().is_empty() && !o.unusual_values_confirmed);
        need(
            !unconfirmed,
            Field::Observations,
            "Confirmation of unusual observation values",
        );
    }
    match &e.outcome {
        None => need(false, Field::Outcome, "Outcome"),
        Some(Outcome::ConveyedTo { hospital, .. }) => need(
            !hospital.trim().is_empty(),
            Field::Outcome,
            "Destination hospital",
        ),
        Some(Outcome::Referred { to }) => {
            need(!to.trim().is_empty(), Field::Outcome, "Referral service")
        }
        Some(_) => {}
    }
    if e.outcome.as_ref().is_some_and(Outcome::is_non_conveyance) {
        let empty = NonConveyance::default();
        let section = e.non_conveyance.as_ref().unwrap_or(&empty);
        for (item, label) in section.missing() {
            need(false, Field::NonConveyance(item), label);
        }
    }
    need(!e.crew.is_empty(), Field::Crew, "Crew members");
    need(
        e.sign_off
            .as_ref()
            .is_some_and(|s| !s.clinician_name.trim().is_empty()),
        Field::SignOffClinician,
        "Signing clinician",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::complete_encounter;

    #[test]
    fn a_new_draft_lists_everything() {
        let e = Encounter::new_draft(chrono::Utc::now());
        let labels: Vec<_> = missing_items(&e).iter().map(|m| m.label).collect();
        assert_eq!(
            labels,
            [
                "Incident number",
                "Call sign",
                "Time call connected",
                "Time at patient",
                "Patient name",
                "Date of birth or estimated age",
                "Sex",
                "Presenting complaint",
                "Allergies (or NKDA)",
                "At least one set of observations",
                "Outcome",
                "Crew members",
                "Signing clinician",
            ]
        );
    }

    #[test]
    fn a_complete_record_lists_nothing() {
        assert_eq!(missing_items(&complete_encounter()), vec![]);
    }

    #[test]
    fn conveyed_without_hospital_is_missing_destination() {
        let mut e = complete_encounter();
        e.outcome = Some(Outcome::ConveyedTo {
            hospital: " ".into(),
            ods_code: None,
        });
        let m = missing_items(&e);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].field, Field::Outcome);
        assert_eq!(m[0].label, "Destination hospital");
    }

    #[test]
    fn a_non_conveyance_without_a_capacity_assessment_cannot_be_signed() {
        for outcome in [
            Outcome::NotConveyed {
                reason: "Treated at home".into(),
            },
            Outcome::Referred { to: "GP".into() },
            Outcome::Declined,
        ] {
            let mut e = complete_encounter();
            e.outcome = Some(outcome.clone());
            let labels: Vec<_> = missing_items(&e).iter().map(|m| m.label).collect();
            assert!(labels.contains(&"Mental capacity assessment"), "{labels:?}");
            let mut section = crate::demo::whole_non_conveyance(&outcome);
            e.non_conveyance = Some(section.clone());
            assert_eq!(missing_items(&e), vec![], "{outcome:?}");
            section.capacity = Default::default();
            e.non_conveyance = Some(section);
            let missing = missing_items(&e);
            assert_eq!(missing.len(), 1);
            assert_eq!(
                missing[0].field,
                Field::NonConveyance(NonConveyanceItem::Capacity)
            );
        }
        // Conveyed: the section is not asked for.
        let e = complete_encounter();
        assert!(e.non_conveyance.is_none());
        assert_eq!(missing_items(&e), vec![]);
    }

    #[test]
    fn an_advance_decision_said_to_exist_needs_its_details_at_sign_off() {
        use crate::model::advance_decisions::AdvanceStatus;
        let mut e = complete_encounter();
        e.history.advance_decisions.status = Some(AdvanceStatus::ReportedNotSeen);
        let m = missing_items(&e);
        assert_eq!(
            m.iter().map(|m| m.label).collect::<Vec<_>>(),
            [
                "Advance decision: document type",
                "Advance decision: where it is kept"
            ]
        );
        assert!(m.iter().all(|m| m.field == Field::AdvanceDecisions));
        e.history.advance_decisions.status = Some(AdvanceStatus::NoneKnown);
        assert_eq!(missing_items(&e), vec![]);
    }

    #[test]
    fn incomplete_observations_and_unconfirmed_values_are_listed() {
        let mut e = complete_encounter();
        for o in &mut e.observations {
            o.temperature_celsius = None;
        }
        let labels: Vec<_> = missing_items(&e).iter().map(|m| m.label).collect();
        assert_eq!(labels, ["One observation set with all seven NEWS2 inputs"]);

        let mut e = complete_encounter();
        e.observations[0].pulse_bpm = Some(crate::model::PulseBpm::new(250).unwrap());
        let labels: Vec<_> = missing_items(&e).iter().map(|m| m.label).collect();
        assert_eq!(labels, ["Confirmation of unusual observation values"]);
        e.observations[0].unusual_values_confirmed = true;
        assert!(missing_items(&e).is_empty());
    }
}
