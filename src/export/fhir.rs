//! A FHIR R4 document Bundle of one encounter version.
//!
//! Resources: Composition (first, as a document requires), Patient (NHS number identifier),
//! Encounter, Practitioner (the signing clinician), one vital-signs panel Observation per
//! observation set with one Observation per measured value (LOINC codes and UCUM units from
//! CLINICAL.md), the NEWS2 total (SNOMED CT 1104051000000101) when the set is complete,
//! MedicationAdministration per drug, Procedure per intervention, AllergyIntolerance, and a
//! Provenance carrying the device signature. Resource ids are UUIDv5 derived from the record
//! id, so the same version always yields the same bundle apart from its generation time.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{DRAFT_MARK, VersionMeta};
use crate::model::{
    Acvpu, AllergyStatus, Encounter, GcsEyeResponse, GcsVerbalResponse, Inspired, Milestone, News2,
    ObservationSet, Outcome, Sex,
};

/// NHS organisation (ODS) codes, which name a destination.
pub const ODS_SYSTEM: &str = "https://fhir.nhs.uk/Id/ods-organization-code";

/// The trust formulary's code system: a drug given from it is coded with its formulary id.
pub const FORMULARY_SYSTEM: &str = "urn:ambulance-epr:trust-formulary";

/// A drug as a CodeableConcept: coded with its formulary id, or, for a drug not in the
/// formulary, text only and marked so.
fn medication(d: &crate::model::DrugGiven) -> Value {
    match &d.formulary_id {
        Some(id) => json!({
            "coding": [{ "system": FORMULARY_SYSTEM, "code": id, "display": d.drug }],
            "text": d.drug,
        }),
        None => json!({ "text": format!("{} (not in formulary)", d.drug) }),
    }
}

/// A drug's notes: its form, a controlled drug's witness, batch and waste, and each check
/// the clinician went on through.
fn drug_notes(d: &crate::model::DrugGiven) -> Vec<Value> {
    let mut out = Vec::new();
    if !d.form.is_empty() {
        out.push(json!({ "text": format!("Form: {}", d.form) }));
    }
    if let Some(c) = &d.controlled {
        out.push(json!({ "text": format!(
            "Controlled drug: witnessed by {}, batch {}, wasted {}",
            c.witness_name,
            c.batch,
            d.unit.amount(c.wasted)
        ) }));
    }
    for o in &d.overrides {
        let mut text = format!("Given despite a check ({}): {}", o.check.label(), o.said);
        if !o.reason.is_empty() {
            text.push_str(&format!(". Reason: {}", o.reason));
        }
        out.push(json!({ "text": text }));
    }
    out
}

/// The NHS number identifier system.
pub const NHS_NUMBER_SYSTEM: &str = "https://fhir.nhs.uk/Id/nhs-number";
/// LOINC.
pub const LOINC: &str = "http://loinc.org";
/// SNOMED CT.
pub const SNOMED: &str = "http://snomed.info/sct";
/// UCUM units.
pub const UCUM: &str = "http://unitsofmeasure.org";
/// Identifier system for incident numbers issued by the trust's dispatch system.
pub const INCIDENT_SYSTEM: &str = "urn:ambulance-epr:incident-number";
const CATEGORY_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/observation-category";

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Stable per-record resource ids.
struct Ids {
    record: Uuid,
}

impl Ids {
    fn id(&self, name: &str) -> Uuid {
        Uuid::new_v5(&self.record, name.as_bytes())
    }
    fn url(&self, name: &str) -> String {
        format!("urn:uuid:{}", self.id(name))
    }
    fn reference(&self, name: &str) -> Value {
        json!({ "reference": self.url(name) })
    }
}

fn vital_category() -> Value {
    json!([{ "coding": [{ "system": CATEGORY_SYSTEM, "code": "vital-signs", "display": "Vital Signs" }] }])
}

fn loinc(code: &str, display: &str) -> Value {
    json!({ "coding": [{ "system": LOINC, "code": code, "display": display }], "text": display })
}

fn quantity(value: f64, unit: &str) -> Value {
    json!({ "value": value, "unit": unit, "system": UCUM, "code": unit })
}

/// Builds the bundle. `generated_at` is the only input that differs between two exports of
/// the same version.
pub fn bundle(e: &Encounter, meta: &VersionMeta, generated_at: DateTime<Utc>) -> Value {
    let ids = Ids { record: e.id };
    let draft = meta.is_draft();
    let obs_status = if draft { "preliminary" } else { "final" };
    let mut entries: Vec<(String, Value)> = Vec::new();
    let mut section_entries: Vec<(&'static str, Vec<Value>)> = Vec::new();

    // Patient.
    let mut patient = json!({
        "resourceType": "Patient",
        "id": ids.id("patient").to_string(),
    });
    if let Some(nhs) = &e.patient.nhs_number {
        patient["identifier"] = json!([{ "system": NHS_NUMBER_SYSTEM, "value": nhs.as_str() }]);
    }
    let mut name = json!({});
    if !e.patient.family_name.trim().is_empty() {
        name["family"] = json!(e.patient.family_name.trim());
    }
    if !e.patient.given_name.trim().is_empty() {
        name["given"] = json!([e.patient.given_name.trim()]);
    }
    if name.as_object().is_some_and(|o| !o.is_empty()) {
        patient["name"] = json!([name]);
    }
    if let Some(sex) = e.patient.sex {
        patient["gender"] = json!(match sex {
            Sex::Female => "female",
            Sex::Male => "male",
            Sex::Other => "other",
            Sex::Unknown => "unknown",
        });
    }
    if let Some(dob) = e.patient.date_of_birth {
        patient["birthDate"] = json!(dob.format("%Y-%m-%d").to_string());
    } else if let Some(age) = e.patient.estimated_age_years {
        patient["extension"] = json!([{
            "url": "urn:ambulance-epr:estimated-age-years",
            "valueInteger": age
        }]);
    }
    if !e.patient.address.trim().is_empty() {
        patient["address"] = json!([{ "text": e.patient.address.trim() }]);
    }
    if !e.patient.gp_practice.trim().is_empty() {
        patient["generalPractitioner"] = json!([{ "display": e.patient.gp_practice.trim() }]);
    }
    entries.push((ids.url("patient"), patient));

    // Practitioner: the signing clinician (or the first crew member of a draft).
    let (clinician, registration) = match (&e.sign_off, e.crew.first()) {
        (Some(s), _) => (s.clinician_name.clone(), s.registration.clone()),
        (None, Some(c)) => (c.name.clone(), c.registration.clone()),
        (None, None) => ("Unknown clinician".to_owned(), String::new()),
    };
    let mut practitioner = json!({
        "resourceType": "Practitioner",
        "id": ids.id("practitioner").to_string(),
        "name": [{ "text": clinician }],
    });
    if !registration.trim().is_empty() {
        practitioner["identifier"] = json!([{
            "type": { "text": "Professional registration number" },
            "value": registration.trim()
        }]);
    }
    entries.push((ids.url("practitioner"), practitioner));

    // Encounter.
    let times = &e.incident.times;
    let start = times
        .get(Milestone::AtPatient)
        .or_else(|| times.first_recorded().map(|(_, t)| t))
        .unwrap_or(e.created_at_utc);
    let end = times
        .get(Milestone::Handover)
        .or_else(|| times.get(Milestone::Clear))
        .or_else(|| times.get(Milestone::LeftScene));
    let mut period = json!({ "start": time(start) });
    if let Some(end) = end.filter(|end| *end >= start) {
        period["end"] = json!(time(end));
    }
    let mut encounter = json!({
        "resourceType": "Encounter",
        "id": ids.id("encounter").to_string(),
        "status": if draft { "in-progress" } else { "finished" },
        "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "EMER",
            "display": "emergency"
        },
        "subject": ids.reference("patient"),
        "period": period,
        "participant": [{ "individual": ids.reference("practitioner") }],
    });
    if !e.incident.incident_number.trim().is_empty() {
        encounter["identifier"] =
            json!([{ "system": INCIDENT_SYSTEM, "value": e.incident.incident_number.trim() }]);
    }
    if !e.history.presenting_complaint.trim().is_empty() {
        encounter["reasonCode"] = json!([{ "text": e.history.presenting_complaint.trim() }]);
    }
    if let Some(Outcome::ConveyedTo { hospital, ods_code }) = &e.outcome {
        let mut destination = json!({ "display": hospital });
        if let Some(code) = ods_code {
            destination["identifier"] = json!({ "system": ODS_SYSTEM, "value": code });
        }
        encounter["hospitalization"] = json!({ "destination": destination });
    }
    entries.push((ids.url("encounter"), encounter));

    // Observations, one panel per set.
    let mut obs_refs = Vec::new();
    for (index, set) in e.observations_by_time().into_iter().enumerate() {
        let refs = observation_set(&ids, e, set, index, obs_status, &mut entries);
        obs_refs.extend(refs);
    }
    section_entries.push(("Observations", obs_refs));

    // Allergies. NKDA and "no known allergy" are different SNOMED codes; "unknown" is not
    // an allergy and not the absence of one, so it gets no AllergyIntolerance at all (the
    // section's narrative says so).
    let mut allergy_refs = Vec::new();
    let allergy_status = AllergyStatus::of_record(&e.history.allergies, &e.history.allergy_classes);
    let allergy_code = match &allergy_status {
        AllergyStatus::NotRecorded | AllergyStatus::Unknown => None,
        AllergyStatus::NoKnownDrugAllergy | AllergyStatus::NoKnownAllergy => {
            allergy_status.snomed().map(|(code, display)| {
                json!({
                    "coding": [{ "system": SNOMED, "code": code, "display": display }],
                    "text": e.history.allergies.trim()
                })
            })
        }
        AllergyStatus::Recorded(text) => Some(json!({ "text": text })),
    };
    if let Some(code) = allergy_code {
        entries.push((
            ids.url("allergy"),
            json!({
                "resourceType": "AllergyIntolerance",
                "id": ids.id("allergy").to_string(),
                "clinicalStatus": { "coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                    "code": "active"
                }]},
                "code": code,
                "patient": ids.reference("patient"),
                "recorder": ids.reference("practitioner"),
            }),
        ));
        allergy_refs.push(ids.reference("allergy"));
    }
    section_entries.push(("Allergies", allergy_refs));

    // Drugs.
    let mut drug_refs = Vec::new();
    for (i, d) in e.drugs.iter().enumerate() {
        let name = format!("drug-{i}");
        let mut dosage = json!({ "dose": { "value": d.dose, "unit": d.unit.label() } });
        if let Some(code) = d.unit.ucum() {
            dosage["dose"]["system"] = json!("http://unitsofmeasure.org");
            dosage["dose"]["code"] = json!(code);
        }
        if !d.route.trim().is_empty() {
            dosage["route"] = json!({ "text": d.route.trim() });
        }
        let mut ma = json!({
            "resourceType": "MedicationAdministration",
            "id": ids.id(&name).to_string(),
            "status": "completed",
            "medicationCodeableConcept": medication(d),
            "subject": ids.reference("patient"),
            "context": ids.reference("encounter"),
            "effectiveDateTime": time(d.at_utc),
            "dosage": dosage,
        });
        if !d.by.trim().is_empty() {
            ma["performer"] = json!([{ "actor": { "display": d.by.trim() } }]);
        }
        let notes = drug_notes(d);
        if !notes.is_empty() {
            ma["note"] = json!(notes);
        }
        entries.push((ids.url(&name), ma));
        drug_refs.push(ids.reference(&name));
    }
    section_entries.push(("Medications administered", drug_refs));

    // Interventions.
    let mut proc_refs = Vec::new();
    for (i, p) in e.interventions.iter().enumerate() {
        let name = format!("procedure-{i}");
        let mut pr = json!({
            "resourceType": "Procedure",
            "id": ids.id(&name).to_string(),
            "status": "completed",
            "code": { "text": p.what },
            "subject": ids.reference("patient"),
            "encounter": ids.reference("encounter"),
            "performedDateTime": time(p.at_utc),
        });
        if !p.details.trim().is_empty() {
            pr["note"] = json!([{ "text": p.details.trim() }]);
        }
        if !p.by.trim().is_empty() {
            pr["performer"] = json!([{ "actor": { "display": p.by.trim() } }]);
        }
        entries.push((ids.url(&name), pr));
        proc_refs.push(ids.reference(&name));
    }
    section_entries.push(("Procedures", proc_refs));

    // Non-conveyance: the decision, capacity, consent, advice, referral and signature, as
    // one Observation whose parts are components. None of these has a code the record can
    // be sure of, so each carries its meaning as text.
    let mut non_conveyance_refs = Vec::new();
    if let Some(section) = e
        .non_conveyance
        .as_ref()
        .filter(|_| e.outcome.as_ref().is_some_and(Outcome::is_non_conveyance))
    {
        let observation = non_conveyance_observation(&ids, e, section, obs_status);
        entries.push((ids.url("non-conveyance"), observation));
        non_conveyance_refs.push(ids.reference("non-conveyance"));
    }
    // Advance decisions (DNACPR, ReSPECT, ...), when the crew recorded any: one Observation,
    // its parts as components, in the history's section.
    let mut advance_refs = Vec::new();
    if let Some(observation) = advance_decisions_observation(&ids, e, obs_status) {
        entries.push((ids.url("advance-decisions"), observation));
        advance_refs.push(ids.reference("advance-decisions"));
    }
    // Left out when not asked: an empty section would read as "none known".
    if !advance_refs.is_empty() {
        section_entries.push(("Advance decisions", advance_refs));
    }

    // Each presentation's section and each 12-lead ECG, as Observations in their own
    // section (with the presentations in its narrative).
    // Each as (resource name, Observation); entered and referenced together below.
    let mut assessed: Vec<(String, Value)> = Vec::new();
    if let Some(arrest) = e.assessment.arrest() {
        assessed.push((
            "cardiac-arrest".to_owned(),
            arrest_observation(&ids, e, arrest, obs_status),
        ));
    }
    if let Some(stroke) = e.assessment.stroke() {
        assessed.push((
            "stroke".to_owned(),
            stroke_observation(&ids, e, stroke, obs_status),
        ));
    }
    if let Some(trauma) = e.assessment.trauma() {
        assessed.push((
            "trauma".to_owned(),
            trauma_observation(&ids, e, trauma, obs_status),
        ));
    }
    // A child's weight: the vital-signs body weight (LOINC 29463-7), how it was found as its
    // method in words.
    if let Some((kg, p)) = e
        .assessment
        .paediatric()
        .and_then(|p| p.weight_kg.map(|kg| (kg, p)))
    {
        let mut weight = json!({
            "resourceType": "Observation",
            "id": ids.id("body-weight").to_string(),
            "status": obs_status,
            "category": vital_category(),
            "code": loinc("29463-7", "Body weight"),
            "subject": ids.reference("patient"),
            "encounter": ids.reference("encounter"),
            "effectiveDateTime": time(at_patient(e)),
            "valueQuantity": quantity(kg, "kg"),
        });
        if let Some(m) = p.weight_method {
            weight["method"] = json!({ "text": m.label() });
        }
        assessed.push(("body-weight".to_owned(), weight));
    }
    if let Some(m) = e.assessment.maternity() {
        let text = |t: &str| json!({ "text": t });
        let mut components: Vec<Value> = m
            .findings
            .iter()
            .map(|f| json!({ "code": text(f.label()), "valueBoolean": true }))
            .collect();
        if let Some(n) = m.contractions_per_10_min {
            components
                .push(json!({ "code": text("Contractions in 10 minutes"), "valueInteger": n }));
        }
        if let Some(c) = m.maternity_unit_contacted {
            components.push(json!({ "code": text("Maternity unit contacted"), "valueBoolean": c }));
        }
        assessed.push((
            "maternity".to_owned(),
            exam_observation(
                &ids,
                "maternity",
                obs_status,
                "Maternity assessment",
                at_patient(e),
                m.summary(),
                components,
            ),
        ));
    }
    if let Some(sepsis) = e.assessment.sepsis() {
        assessed.push((
            "sepsis-screen".to_owned(),
            sepsis_observation(&ids, e, sepsis, obs_status),
        ));
    }
    if let Some(b) = e.assessment.breathing() {
        assessed.push((
            "breathing".to_owned(),
            breathing_observation(&ids, e, b, obs_status),
        ));
    }
    if let Some(m) = e.assessment.mental_health() {
        assessed.push((
            "mental-health".to_owned(),
            mental_health_observation(&ids, e, m, obs_status),
        ));
    }
    if let Some(fall) = e.assessment.fall() {
        assessed.push((
            "fall".to_owned(),
            fall_observation(&ids, e, fall, obs_status),
        ));
    }
    for (i, ecg) in e.assessment.ecgs.iter().enumerate() {
        let name = format!("ecg-{i}");
        let observation = ecg_observation(&ids, e, &name, ecg, obs_status);
        assessed.push((name, observation));
    }
    let mut assessment_refs = Vec::new();
    for (name, observation) in assessed {
        entries.push((ids.url(&name), observation));
        assessment_refs.push(ids.reference(&name));
    }

    // Provenance with the device signature (signed versions only).
    if let (false, Some(signature)) = (draft, &meta.signature) {
        let recorded = e
            .sign_off
            .as_ref()
            .map(|s| s.signed_at_utc)
            .unwrap_or(meta.saved_at_utc);
        let mut prov = json!({
            "resourceType": "Provenance",
            "id": ids.id("provenance").to_string(),
            "target": [ids.reference("composition")],
            "recorded": time(recorded),
            "agent": [{ "who": ids.reference("practitioner") }],
            "signature": [{
                "type": [{
                    "system": "urn:iso-astm:E1762-95:2013",
                    "code": "1.2.840.10065.1.12.1.1",
                    "display": "Author's Signature"
                }],
                "when": time(recorded),
                "who": ids.reference("practitioner"),
                "sigFormat": "application/octet-stream",
                "data": signature,
            }],
            "extension": [
                { "url": "urn:ambulance-epr:content-sha256", "valueString": meta.content_sha256 },
                { "url": "urn:ambulance-epr:revision", "valueInteger": meta.revision },
                { "url": "urn:ambulance-epr:signature-algorithm", "valueString": "Ed25519" },
            ],
        });
        if let Some(ext) = prov["extension"].as_array_mut() {
            match &meta.signer {
                // Format 2: the clinician's own key signed; a reader checks with it.
                Some(signer) => {
                    ext.push(
                        json!({ "url": "urn:ambulance-epr:signature-format", "valueInteger": 2 }),
                    );
                    ext.push(json!({ "url": "urn:ambulance-epr:signer-user-id", "valueString": signer.user_id.to_string() }));
                    ext.push(json!({ "url": "urn:ambulance-epr:signer-public-key", "valueString": signer.public_key }));
                    ext.push(json!({ "url": "urn:ambulance-epr:device-id", "valueString": signer.tablet_id.to_string() }));
                    ext.push(json!({ "url": "urn:ambulance-epr:saved-at", "valueString": crate::crypto::signed_time(meta.saved_at_utc) }));
                }
                None => {
                    if let Some(key) = &meta.device_public_key {
                        ext.push(json!({ "url": "urn:ambulance-epr:device-public-key", "valueString": key }));
                    }
                }
            }
        }
        entries.push((ids.url("provenance"), prov));
    }

    // Composition: the document's header and table of contents.
    // The narrative is read by people: UK time, with the zone said.
    let (offset, zone) = super::uk_time_zone(e.created_at_utc);
    let handover_text = format!(
        "Times are UK time ({zone}).\n{}",
        crate::model::handover::atmist_text_in(e, offset)
    );
    let mut sections = vec![json!({
        "title": "Handover (ATMIST)",
        "text": narrative(&handover_text),
    })];
    for (title, refs) in section_entries {
        if refs.is_empty() {
            // An allergy status that is unknown or not recorded is not "nil known".
            let (text, code, display) = match (title, &allergy_status) {
                ("Allergies", AllergyStatus::Unknown) => (
                    "Allergy status unknown (unable to establish)",
                    "unavailable",
                    "Unavailable",
                ),
                ("Allergies", AllergyStatus::NotRecorded) => {
                    ("Allergies not recorded", "notasked", "Not Asked")
                }
                _ => ("None recorded", "nilknown", "Nil Known"),
            };
            sections.push(json!({
                "title": title,
                "text": narrative(text),
                "emptyReason": { "coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/list-empty-reason",
                    "code": code,
                    "display": display
                }]},
            }));
        } else {
            sections.push(json!({ "title": title, "entry": refs }));
        }
    }
    if !e.assessment.is_empty() {
        let clock = |at: DateTime<Utc>| {
            format!(
                "{} ({zone})",
                at.with_timezone(&offset).format("%d/%m/%Y %H:%M")
            )
        };
        let mut lines = Vec::new();
        if let Some(p) = e.assessment.presentations_text() {
            lines.push(format!("Presentation: {p}"));
        }
        if let Some(arrest) = e.assessment.arrest() {
            lines.push(arrest.summary(clock));
            lines.extend(arrest.shock_lines(clock).into_iter().map(|(_, l)| l));
        }
        if let Some(stroke) = e.assessment.stroke() {
            lines.extend(stroke.summary_lines(clock));
        }
        if let Some(trauma) = e.assessment.trauma() {
            if let Some(m) = trauma.mechanism_text() {
                lines.push(format!("Mechanism: {m}"));
            }
            lines.push(trauma.injuries_text(clock));
        }
        if let Some(w) = e.assessment.paediatric().and_then(|p| p.weight_text()) {
            lines.push(format!("Weight: {w}"));
        }
        if let Some(m) = e.assessment.maternity() {
            lines.push(m.summary());
        }
        if let Some(sepsis) = e.assessment.sepsis() {
            lines.push(sepsis.summary(e, clock));
        }
        if let Some(b) = e.assessment.breathing() {
            lines.push(b.summary());
        }
        if let Some(m) = e.assessment.mental_health() {
            lines.push(m.summary());
        }
        if let Some(fall) = e.assessment.fall() {
            lines.push(fall.summary());
        }
        for ecg in &e.assessment.ecgs {
            lines.push(ecg.summary(clock));
        }
        if e.assessment.ecgs.is_empty() && !e.assessment.ecg_not_done_reason.trim().is_empty() {
            lines.push(format!(
                "12-lead ECG not taken: {}",
                e.assessment.ecg_not_done_reason.trim()
            ));
        }
        let mut section = json!({
            "title": "Presentation and assessments",
            "text": narrative(&lines.join("\n")),
        });
        if !assessment_refs.is_empty() {
            section["entry"] = json!(assessment_refs);
        }
        sections.push(section);
    }
    if !e.notes.trim().is_empty() {
        sections.push(json!({ "title": "Clinical notes", "text": narrative(e.notes.trim()) }));
    }
    if let Some(outcome) = &e.outcome {
        sections.push(json!({ "title": "Outcome", "text": narrative(&outcome.summary()) }));
    }
    if !non_conveyance_refs.is_empty()
        && let Some(section) = &e.non_conveyance
    {
        let when = |at: DateTime<Utc>| {
            format!(
                "{} ({zone})",
                at.with_timezone(&offset).format("%d/%m/%Y %H:%M")
            )
        };
        sections.push(json!({
            "title": "Non-conveyance",
            "text": narrative(&section.summary_lines(when).join("\n")),
            "entry": non_conveyance_refs,
        }));
    }
    let title = if draft {
        format!("{DRAFT_MARK}: ambulance patient care record")
    } else {
        "Ambulance patient care record".to_owned()
    };
    let composition_date = e
        .sign_off
        .as_ref()
        .map(|s| s.signed_at_utc)
        .unwrap_or(meta.saved_at_utc);
    let composition = json!({
        "resourceType": "Composition",
        "id": ids.id("composition").to_string(),
        "identifier": { "system": "urn:ietf:rfc:3986", "value": format!("urn:uuid:{}", e.id) },
        "status": if draft { "preliminary" } else { "final" },
        "type": { "coding": [{ "system": LOINC, "code": "67796-3", "display": "EMS patient care report - version 3 Document NEMSIS" }] },
        "subject": ids.reference("patient"),
        "encounter": ids.reference("encounter"),
        "date": time(composition_date),
        "author": [ids.reference("practitioner")],
        "title": title,
        "extension": [{ "url": "urn:ambulance-epr:revision", "valueInteger": meta.revision }],
        "section": sections,
    });

    let mut all = vec![(ids.url("composition"), composition)];
    all.extend(entries);
    json!({
        "resourceType": "Bundle",
        "id": Uuid::new_v5(&e.id, format!("bundle-r{}", meta.revision).as_bytes()).to_string(),
        "meta": { "lastUpdated": time(generated_at) },
        "identifier": { "system": "urn:ietf:rfc:3986", "value": format!("urn:uuid:{}", Uuid::new_v5(&e.id, format!("document-r{}", meta.revision).as_bytes())) },
        "type": "document",
        "timestamp": time(generated_at),
        "entry": all.into_iter().map(|(url, resource)| json!({ "fullUrl": url, "resource": resource })).collect::<Vec<_>>(),
    })
}

fn narrative(text: &str) -> Value {
    let escaped = text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\n', "<br/>");
    json!({ "status": "generated", "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{escaped}</div>") })
}

/// When the crew reached the patient, or the record's creation when that was not stamped:
/// the time an assessment made at the scene is said to be effective.
fn at_patient(e: &Encounter) -> DateTime<Utc> {
    e.incident
        .times
        .get(crate::model::Milestone::AtPatient)
        .unwrap_or(e.created_at_utc)
}

/// An examination Observation whose meaning is carried as text (none of its parts has a code
/// the record can be sure of): `summary` as its value, its parts as `components`.
fn exam_observation(
    ids: &Ids,
    name: &str,
    status: &str,
    code_text: &str,
    effective: DateTime<Utc>,
    summary: impl Into<String>,
    components: Vec<Value>,
) -> Value {
    json!({
        "resourceType": "Observation",
        "id": ids.id(name).to_string(),
        "status": status,
        "category": [{ "coding": [{ "system": CATEGORY_SYSTEM, "code": "exam", "display": "Exam" }] }],
        "code": { "text": code_text },
        "subject": ids.reference("patient"),
        "encounter": ids.reference("encounter"),
        "effectiveDateTime": time(effective),
        "performer": [ids.reference("practitioner")],
        "valueString": summary.into(),
        "component": components,
    })
}

/// The cardiac arrest as one Observation: its summary as the value, the witness, bystander
/// CPR, first rhythm, airway, how it ended, each time and each shock as components (the
/// shock's energy in joules, UCUM "J").
fn arrest_observation(
    ids: &Ids,
    e: &Encounter,
    a: &crate::model::arrest::CardiacArrest,
    status: &str,
) -> Value {
    use crate::model::arrest::ArrestTime;
    let mut c = Components::default();
    c.text("Witnessed", a.witnessed.map(|w| w.label()));
    c.text("First rhythm", a.first_rhythm.map(|r| r.label()));
    c.text("Airway", a.airway.map(|r| r.label()));
    c.text("Arrest ended", a.end.map(|r| r.label()));
    c.boolean("Bystander CPR", a.bystander_cpr);
    for t in ArrestTime::ALL {
        c.date_time(t.label(), a.time(t));
    }
    for shock in &a.shocks {
        c.0.push(json!({
            "code": { "text": format!("Shock at {}", time(shock.at_utc)) },
            "valueQuantity": quantity(f64::from(shock.energy_joules), "J"),
        }));
    }
    let components = c.0;
    let (offset, zone) = super::uk_time_zone(e.created_at_utc);
    let clock = |at: DateTime<Utc>| format!("{} {zone}", at.with_timezone(&offset).format("%H:%M"));
    exam_observation(
        ids,
        "cardiac-arrest",
        status,
        "Cardiac arrest (Utstein core)",
        a.collapse_utc.unwrap_or(e.created_at_utc),
        a.summary(clock),
        components,
    )
}

/// The trauma section as one Observation: the mechanism as its value, each injury ("Left
/// leg" with "Suspected fracture"), the haemorrhage, its control, the tourniquet time and the
/// triage result as components.
fn trauma_observation(
    ids: &Ids,
    e: &Encounter,
    t: &crate::model::trauma::TraumaAssessment,
    status: &str,
) -> Value {
    let text = |s: &str| json!({ "text": s });
    let mut components = Vec::new();
    for injury in &t.injuries {
        components.push(json!({
            "code": text(injury.region.label()),
            "valueCodeableConcept": text(injury.kind.label()),
        }));
    }
    if t.no_injuries_found {
        components
            .push(json!({ "code": text("Injuries"), "valueCodeableConcept": text("None found") }));
    }
    if let Some(h) = t.catastrophic_haemorrhage {
        components.push(json!({ "code": text("Catastrophic haemorrhage"), "valueBoolean": h }));
    }
    if let Some(c) = t
        .haemorrhage_control
        .filter(|_| t.catastrophic_haemorrhage == Some(true))
    {
        components.push(
            json!({ "code": text("Haemorrhage control"), "valueCodeableConcept": text(c.label()) }),
        );
    }
    if let Some(at) = t.tourniquet_utc {
        components.push(json!({ "code": text("Tourniquet on"), "valueDateTime": time(at) }));
    }
    if let Some(r) = t.triage {
        components.push(
            json!({ "code": text("Major trauma triage"), "valueCodeableConcept": text(r.label()) }),
        );
    }
    exam_observation(
        ids,
        "trauma",
        status,
        "Trauma assessment",
        at_patient(e),
        t.mechanism_text()
            .unwrap_or_else(|| "Mechanism not recorded".to_owned()),
        components,
    )
}

/// The sepsis screen as one Observation, effective at the screening: its summary as the
/// value, the source, each red flag, the NEWS2 at screening and the pathway as components.
fn sepsis_observation(
    ids: &Ids,
    e: &Encounter,
    s: &crate::model::sepsis::SepsisScreen,
    status: &str,
) -> Value {
    let text = |t: &str| json!({ "text": t });
    let mut components = Vec::new();
    if let Some(source) = s.source {
        components.push(
            json!({ "code": text("Suspected source"), "valueCodeableConcept": text(source.label()) }),
        );
    }
    for flag in &s.red_flags {
        components.push(json!({ "code": text(flag.label()), "valueBoolean": true }));
    }
    if s.no_red_flags {
        components
            .push(json!({ "code": text("Red flags"), "valueCodeableConcept": text("None found") }));
    }
    if let Some((score, _)) = s.news2_at_screening(e) {
        components.push(json!({ "code": text("NEWS2 at screening"), "valueInteger": score }));
    }
    if let Some(p) = s.pathway {
        components.push(
            json!({ "code": text("Sepsis pathway"), "valueCodeableConcept": text(p.label()) }),
        );
    }
    if let Some(at) = s.pre_alert_utc {
        components
            .push(json!({ "code": text("Department pre-alerted"), "valueDateTime": time(at) }));
    }
    let (offset, zone) = super::uk_time_zone(e.created_at_utc);
    let clock = |at: DateTime<Utc>| format!("{} {zone}", at.with_timezone(&offset).format("%H:%M"));
    exam_observation(
        ids,
        "sepsis-screen",
        status,
        "Sepsis screen",
        s.screened_utc.unwrap_or(e.created_at_utc),
        s.summary(e, clock),
        components,
    )
}

/// The components of an examination Observation, each named by its meaning as text (none
/// has a code the record can be sure of); an unanswered item is left out.
#[derive(Default)]
struct Components(Vec<Value>);

impl Components {
    fn text(&mut self, name: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.0.push(json!({
                "code": { "text": name },
                "valueCodeableConcept": { "text": v },
            }));
        }
    }

    fn boolean(&mut self, name: &str, value: Option<bool>) {
        if let Some(v) = value {
            self.0
                .push(json!({ "code": { "text": name }, "valueBoolean": v }));
        }
    }

    fn integer(&mut self, name: &str, value: Option<u8>) {
        if let Some(v) = value {
            self.0
                .push(json!({ "code": { "text": name }, "valueInteger": v }));
        }
    }

    /// Free text, left out when blank.
    fn string(&mut self, name: &str, value: &str) {
        if !value.trim().is_empty() {
            self.0
                .push(json!({ "code": { "text": name }, "valueString": value.trim() }));
        }
    }

    fn date_time(&mut self, name: &str, value: Option<DateTime<Utc>>) {
        if let Some(at) = value {
            self.0
                .push(json!({ "code": { "text": name }, "valueDateTime": time(at) }));
        }
    }
}

/// The breathing difficulty section as one Observation: its summary as the value; speech,
/// the known condition and each life-threatening feature as text components, wheeze and
/// accessory muscle use as booleans.
fn breathing_observation(
    ids: &Ids,
    e: &Encounter,
    b: &crate::model::breathing::BreathingAssessment,
    status: &str,
) -> Value {
    let mut c = Components::default();
    c.text("Speech in one breath", b.speech.map(|s| s.label()));
    c.text("Known condition", b.known_condition.map(|k| k.label()));
    for threat in &b.life_threats {
        c.text("Life-threatening feature", Some(threat.label()));
    }
    c.boolean("Wheeze", b.wheeze);
    c.boolean("Accessory muscle use", b.accessory_muscles);
    exam_observation(
        ids,
        "breathing",
        status,
        "Breathing difficulty assessment",
        at_patient(e),
        b.summary(),
        c.0,
    )
}

/// The mental health section as one Observation: its summary as the value; the three risks
/// and police presence as booleans, the Mental Health Act status and the service contacted as
/// text.
fn mental_health_observation(
    ids: &Ids,
    e: &Encounter,
    m: &crate::model::mental_health::MentalHealthAssessment,
    status: &str,
) -> Value {
    let mut c = Components::default();
    c.boolean("Thoughts of suicide", m.thoughts_of_suicide);
    c.boolean("Self-harm in this episode", m.self_harm);
    c.boolean("Risk to others", m.risk_to_others);
    c.boolean("Police present", m.police_present);
    c.text(
        "Mental Health Act status",
        m.legal_status.map(|s| s.label()),
    );
    c.text(
        "Mental health service contacted",
        m.contacted.map(|k| k.label()),
    );
    exam_observation(
        ids,
        "mental-health",
        status,
        "Mental health assessment",
        at_patient(e),
        m.summary(),
        c.0,
    )
}

/// The falls section as one Observation: its summary as the value, the Clinical Frailty
/// Scale as an integer component, the rest as text or booleans.
fn fall_observation(
    ids: &Ids,
    e: &Encounter,
    f: &crate::model::falls::FallAssessment,
    status: &str,
) -> Value {
    let mut c = Components::default();
    c.integer("Clinical Frailty Scale", f.frailty_scale);
    c.text("Time on the floor", f.time_on_floor.map(|t| t.label()));
    c.text("Mobility", f.mobility.map(|m| m.label()));
    c.text("Falls referral", f.referral.map(|r| r.label()));
    c.boolean("Head injury", f.head_injury);
    c.boolean("On an anticoagulant", f.anticoagulated);
    exam_observation(
        ids,
        "fall",
        status,
        "Fall and frailty assessment",
        at_patient(e),
        f.summary(),
        c.0,
    )
}

/// The stroke assessment as one Observation: the BE-FAST summary as its value, each finding,
/// the onset (or last-known-well) time, the pathway and the pre-alert as components. None of
/// these has a code the record can be sure of, so each carries its meaning as text.
fn stroke_observation(
    ids: &Ids,
    e: &Encounter,
    s: &crate::model::stroke::StrokeAssessment,
    status: &str,
) -> Value {
    use crate::model::stroke::BeFast;
    let text = |t: &str| json!({ "text": t });
    let mut components = Vec::new();
    for item in BeFast::ALL {
        if let Some(f) = s.finding(item) {
            components.push(
                json!({ "code": text(item.label()), "valueCodeableConcept": text(f.label()) }),
            );
        }
    }
    if let (Some(kind), Some(at)) = (s.onset, s.onset_utc) {
        components.push(json!({ "code": text(kind.label()), "valueDateTime": time(at) }));
    }
    if let Some(p) = s.pathway {
        components.push(
            json!({ "code": text("Stroke pathway"), "valueCodeableConcept": text(p.label()) }),
        );
    }
    if let Some(at) = s.pre_alert_utc {
        components
            .push(json!({ "code": text("Stroke unit pre-alerted"), "valueDateTime": time(at) }));
    }
    exam_observation(
        ids,
        "stroke",
        status,
        "Stroke assessment (BE-FAST)",
        at_patient(e),
        s.findings_text(),
        components,
    )
}

/// One 12-lead ECG as an Observation coded as SNOMED CT's 12-lead ECG, its rhythm as the
/// value (with a SNOMED CT code where one is known), the STEMI reading, transmission and PPCI
/// decision as components.
fn ecg_observation(
    ids: &Ids,
    e: &Encounter,
    name: &str,
    ecg: &crate::model::ecg::Ecg12Lead,
    status: &str,
) -> Value {
    let text = |t: &str| json!({ "text": t });
    let mut components = Vec::new();
    let mut flag = |label: &str, value: Option<bool>| {
        if let Some(v) = value {
            components.push(json!({ "code": text(label), "valueBoolean": v }));
        }
    };
    flag("STEMI criteria met", ecg.stemi);
    flag("Transmitted", ecg.transmitted);
    flag("Primary PCI pathway", ecg.ppci);
    if ecg.transmitted == Some(true) && !ecg.transmitted_to.trim().is_empty() {
        components.push(
            json!({ "code": text("Transmitted to"), "valueString": ecg.transmitted_to.trim() }),
        );
    }
    let rhythm = ecg
        .rhythm_text()
        .unwrap_or_else(|| "Not recorded".to_owned());
    let value = match ecg.rhythm.and_then(|r| r.snomed()) {
        Some((code, display)) => {
            json!({ "coding": [{ "system": SNOMED, "code": code, "display": display }], "text": rhythm })
        }
        None => text(&rhythm),
    };
    json!({
        "resourceType": "Observation",
        "id": ids.id(name).to_string(),
        "status": status,
        "category": [{ "coding": [{ "system": CATEGORY_SYSTEM, "code": "procedure", "display": "Procedure" }] }],
        "code": { "coding": [{ "system": SNOMED, "code": crate::model::ecg::SNOMED_12_LEAD_ECG, "display": "12-Lead ECG" }], "text": "12-lead ECG" },
        "subject": ids.reference("patient"),
        "encounter": ids.reference("encounter"),
        "effectiveDateTime": time(ecg.taken_utc.unwrap_or(e.created_at_utc)),
        "performer": [ids.reference("practitioner")],
        "valueCodeableConcept": value,
        "component": components,
    })
}

/// The advance decisions as one Observation (`None` when nothing was recorded): the summary
/// line as its value, each part as a component with its meaning as text.
fn advance_decisions_observation(ids: &Ids, e: &Encounter, status: &str) -> Option<Value> {
    let a = &e.history.advance_decisions;
    let summary = a.summary()?;
    let text = |t: &str| json!({ "text": t });
    let mut components = Vec::new();
    if let Some(s) = a.status {
        components.push(
            json!({ "code": text("Document seen"), "valueCodeableConcept": text(s.label()) }),
        );
    }
    if let Some(d) = a.document_text() {
        components.push(json!({ "code": text("Document type"), "valueCodeableConcept": text(&d) }));
    }
    if let Some(c) = a.cpr {
        components.push(json!({ "code": text("CPR"), "valueCodeableConcept": text(c.label()) }));
    }
    for (name, value) in [
        ("Where it is kept", a.location.trim()),
        ("Recommendation", a.recommendation.trim()),
    ] {
        if !value.is_empty() {
            components.push(json!({ "code": text(name), "valueString": value }));
        }
    }
    Some(json!({
        "resourceType": "Observation",
        "id": ids.id("advance-decisions").to_string(),
        "status": status,
        "category": [{ "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "survey",
            "display": "Survey"
        }]}],
        "code": text("Advance decisions (DNACPR, ReSPECT)"),
        "subject": ids.reference("patient"),
        "encounter": ids.reference("encounter"),
        "effectiveDateTime": time(e.created_at_utc),
        "performer": [ids.reference("practitioner")],
        "valueString": summary,
        "component": components,
    }))
}

/// The non-conveyance section as one Observation: the decision as its value, the rest as
/// components (a yes/no as a boolean, a choice as text, what was said as a string).
fn non_conveyance_observation(
    ids: &Ids,
    e: &Encounter,
    n: &crate::model::NonConveyance,
    status: &str,
) -> Value {
    use crate::model::non_conveyance::Ability;
    let text = |t: &str| json!({ "text": t });
    let mut c = Components::default();
    c.text("Mental capacity", Some(n.capacity.finding().label()));
    c.text("Consent", n.consent.map(|c| c.label()));
    c.text(
        "Worsening advice given to",
        n.worsening_advice_to.map(|a| a.label()),
    );
    c.text(
        "Signed by",
        n.signature
            .signatory
            .filter(|_| n.signature.is_drawn())
            .map(|s| s.label()),
    );
    c.boolean("Impairment of mind or brain", n.capacity.impairment);
    if n.capacity.impairment == Some(true) {
        for a in Ability::ALL {
            c.boolean(a.question(), n.capacity.ability(a));
        }
    }
    let referral = n.referral_service_text();
    let signatory_name = if n.signature.is_drawn() {
        n.signature.name.as_str()
    } else {
        ""
    };
    for (name, value) in [
        (
            "Best-interests decision",
            n.capacity.best_interests.as_str(),
        ),
        ("Risks explained", n.risks_explained.as_str()),
        ("Worsening advice", n.worsening_advice.as_str()),
        ("Referred to", referral.as_deref().unwrap_or("")),
        ("Referral reference", n.referral_reference.as_str()),
        ("Name of signatory", signatory_name),
        ("No signature because", n.no_signature_reason.as_str()),
    ] {
        c.string(name, value);
    }
    let components = c.0;
    let at = n
        .signature
        .signed_at_utc
        .or_else(|| e.sign_off.as_ref().map(|s| s.signed_at_utc))
        .unwrap_or(e.created_at_utc);
    let mut observation = json!({
        "resourceType": "Observation",
        "id": ids.id("non-conveyance").to_string(),
        "status": status,
        "category": [{ "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "survey",
            "display": "Survey"
        }]}],
        "code": text("Non-conveyance assessment"),
        "subject": ids.reference("patient"),
        "encounter": ids.reference("encounter"),
        "effectiveDateTime": time(at),
        "performer": [ids.reference("practitioner")],
        "component": components,
    });
    if let Some(d) = n.decision {
        observation["valueCodeableConcept"] = text(d.label());
    }
    observation
}

/// Adds the Observations of one set to `entries`; returns the references for the section.
/// A set started from "Same as last set" carries a note saying so on each of them.
fn observation_set(
    ids: &Ids,
    e: &Encounter,
    set: &ObservationSet,
    index: usize,
    status: &str,
    entries: &mut Vec<(String, Value)>,
) -> Vec<Value> {
    let at = time(set.taken_at_utc);
    let copied = set.copied_from_utc.map(|from| {
        json!([{ "text": format!("Values copied from the set taken at {} and checked by the crew", time(from)) }])
    });
    let base = |name: &str, code: Value| {
        let mut r = json!({
            "resourceType": "Observation",
            "id": ids.id(name).to_string(),
            "status": status,
            "category": vital_category(),
            "code": code,
            "subject": ids.reference("patient"),
            "encounter": ids.reference("encounter"),
            "effectiveDateTime": at,
            "performer": [ids.reference("practitioner")],
        });
        if let Some(note) = &copied {
            r["note"] = note.clone();
        }
        r
    };
    let mut members = Vec::new();
    let mut add = |entries: &mut Vec<(String, Value)>, key: &str, resource: Value| {
        let name = format!("obs-{index}-{key}");
        let mut r = resource;
        r["id"] = json!(ids.id(&name).to_string());
        entries.push((ids.url(&name), r));
        members.push(ids.reference(&name));
    };
    if let Some(v) = set.resp_rate_per_min {
        let mut r = base("", loinc("9279-1", "Respiratory rate"));
        r["valueQuantity"] = quantity(f64::from(v.get()), "/min");
        add(entries, "rr", r);
    }
    if let Some(v) = set.spo2_percent {
        let mut r = base(
            "",
            json!({
                "coding": [
                    { "system": LOINC, "code": "2708-6", "display": "Oxygen saturation in Arterial blood" },
                    { "system": LOINC, "code": "59408-5", "display": "Oxygen saturation in Arterial blood by Pulse oximetry" }
                ],
                "text": "SpO2"
            }),
        );
        r["valueQuantity"] = quantity(f64::from(v.get()), "%");
        add(entries, "spo2", r);
    }
    if let Some(inspired) = set.inspired {
        let mut r = base("", json!({ "text": "Air or supplemental oxygen" }));
        match inspired {
            Inspired::Air => r["valueCodeableConcept"] = json!({ "text": "Air" }),
            Inspired::Oxygen { flow_l_per_min } => {
                r["valueCodeableConcept"] = json!({ "text": "Supplemental oxygen" });
                if let Some(flow) = flow_l_per_min {
                    r["component"] = json!([{
                        "code": loinc("3151-8", "Inhaled oxygen flow rate"),
                        "valueQuantity": quantity(flow.get(), "L/min"),
                    }]);
                }
            }
        }
        add(entries, "inspired", r);
    }
    if set.systolic_mmhg.is_some() || set.diastolic_mmhg.is_some() {
        let mut r = base(
            "",
            loinc("85354-9", "Blood pressure panel with all children optional"),
        );
        let mut components = Vec::new();
        if let Some(s) = set.systolic_mmhg {
            components.push(json!({ "code": loinc("8480-6", "Systolic blood pressure"), "valueQuantity": quantity(f64::from(s.get()), "mm[Hg]") }));
        }
        if let Some(d) = set.diastolic_mmhg {
            components.push(json!({ "code": loinc("8462-4", "Diastolic blood pressure"), "valueQuantity": quantity(f64::from(d.get()), "mm[Hg]") }));
        }
        r["component"] = json!(components);
        add(entries, "bp", r);
    }
    if let Some(v) = set.pulse_bpm {
        let mut r = base("", loinc("8867-4", "Heart rate"));
        r["valueQuantity"] = quantity(f64::from(v.get()), "/min");
        add(entries, "hr", r);
    }
    if let Some(v) = set.temperature_celsius {
        let mut r = base("", loinc("8310-5", "Body temperature"));
        r["valueQuantity"] = quantity(v.get(), "Cel");
        add(entries, "temp", r);
    }
    if let Some(v) = set.acvpu {
        let mut r = base("", json!({ "text": "Level of consciousness (ACVPU)" }));
        r["valueCodeableConcept"] = json!({ "text": match v {
            Acvpu::Alert => "Alert",
            Acvpu::NewConfusion => "New confusion",
            Acvpu::Voice => "Responds to voice",
            Acvpu::Pain => "Responds to pain",
            Acvpu::Unresponsive => "Unresponsive",
        }});
        add(entries, "acvpu", r);
    }
    if let Some(g) = set.gcs {
        // A component that could not be tested (eyes closed by swelling, intubated) is
        // absent with its reason, and then so is the total: never a 1 standing in for it.
        let not_testable = |why: &str| {
            json!({
                "coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                    "code": "not-performed",
                    "display": "Not Performed"
                }],
                "text": why
            })
        };
        let mut r = base("", loinc("9269-2", "Glasgow coma score total"));
        match g.total() {
            Some(t) => r["valueQuantity"] = quantity(f64::from(t), "{score}"),
            None => {
                r["dataAbsentReason"] = not_testable(&format!(
                    "No total: {} (a component not testable)",
                    g.components()
                ))
            }
        }
        let mut eye = json!({ "code": loinc("9267-6", "Glasgow coma score eye opening") });
        match g.eye {
            GcsEyeResponse::Score(v) => {
                eye["valueQuantity"] = quantity(f64::from(v.get()), "{score}")
            }
            GcsEyeResponse::ClosedBySwelling => {
                eye["dataAbsentReason"] = not_testable("C: eyes closed by swelling")
            }
        }
        let mut verbal = json!({ "code": loinc("9270-0", "Glasgow coma score verbal") });
        match g.verbal {
            GcsVerbalResponse::Score(v) => {
                verbal["valueQuantity"] = quantity(f64::from(v.get()), "{score}")
            }
            GcsVerbalResponse::Intubated => {
                verbal["dataAbsentReason"] = not_testable("T: intubated or tracheostomy")
            }
        }
        r["component"] = json!([
            eye,
            verbal,
            { "code": loinc("9268-4", "Glasgow coma score motor"), "valueQuantity": quantity(f64::from(g.motor.get()), "{score}") },
        ]);
        add(entries, "gcs", r);
    }
    if let Some(v) = set.glucose_mmol_per_l {
        let mut r = base("", loinc("15074-8", "Glucose [Moles/volume] in Blood"));
        r["valueQuantity"] = quantity(v.get(), "mmol/L");
        add(entries, "glucose", r);
    }
    if let Some(v) = set.pain_score {
        let mut r = base(
            "",
            loinc(
                "72514-3",
                "Pain severity - 0-10 verbal numeric rating [Score] - Reported",
            ),
        );
        r["valueQuantity"] = quantity(f64::from(v.get()), "{score}");
        add(entries, "pain", r);
    }
    // The observations beyond the vital signs carry their meaning as text: no code here the
    // record can be sure of.
    let exam = |code_text: &str| {
        let mut r = base("", json!({ "text": code_text }));
        r["category"] = json!([{ "coding": [{ "system": CATEGORY_SYSTEM, "code": "exam", "display": "Exam" }] }]);
        r
    };
    if let Some(text) = set.pupils.and_then(|p| p.text()) {
        let mut r = exam("Pupils");
        r["valueString"] = json!(text);
        add(entries, "pupils", r);
    }
    if let Some(v) = set.capillary_refill_s {
        let mut r = exam("Capillary refill time");
        r["valueQuantity"] = quantity(f64::from(v.get()), "s");
        add(entries, "crt", r);
    }
    if let Some(v) = set.etco2_kpa {
        let mut r = exam("End-tidal CO2");
        r["valueQuantity"] = quantity(v.get(), "kPa");
        add(entries, "etco2", r);
    }
    if let Some(v) = set.peak_flow_l_per_min {
        let mut r = exam("Peak expiratory flow");
        r["valueQuantity"] = quantity(f64::from(v.get()), "L/min");
        add(entries, "pefr", r);
    }
    if let Some(rhythm) = set.rhythm {
        let mut r = exam("Cardiac rhythm on the monitor");
        r["valueCodeableConcept"] = match rhythm.snomed() {
            Some((code, display)) => {
                json!({ "coding": [{ "system": SNOMED, "code": code, "display": display }], "text": rhythm.label() })
            }
            None => json!({ "text": rhythm.label() }),
        };
        add(entries, "rhythm", r);
    }
    let panel_name = format!("obs-{index}-panel");
    let mut panel = base(
        &panel_name,
        loinc(
            "85353-1",
            "Vital signs, weight, height, head circumference, oxygen saturation and BMI panel",
        ),
    );
    panel["id"] = json!(ids.id(&panel_name).to_string());
    panel["hasMember"] = json!(members);
    entries.push((ids.url(&panel_name), panel));
    let mut refs = vec![ids.reference(&panel_name)];
    if let News2::Complete(score) = e.news2_for(set) {
        let name = format!("obs-{index}-news2");
        let mut r = base(
            &name,
            json!({
                "coding": [{ "system": SNOMED, "code": "1104051000000101", "display": "Royal College of Physicians NEWS2 (National Early Warning Score 2) total score" }],
                "text": "NEWS2 total"
            }),
        );
        r["id"] = json!(ids.id(&name).to_string());
        r["category"] = json!([{ "coding": [{ "system": CATEGORY_SYSTEM, "code": "survey", "display": "Survey" }] }]);
        r["valueQuantity"] = quantity(f64::from(score.total), "{score}");
        r["interpretation"] = json!([{ "text": format!("{} clinical risk: {}", score.risk.label(), score.risk.response()) }]);
        r["derivedFrom"] = json!([ids.reference(&panel_name)]);
        if score.scale == crate::model::Spo2Scale::Scale2 {
            let by = set
                .spo2_scale2
                .as_ref()
                .map(|c| format!(", chosen by {} for {}", c.chosen_by, c.reason))
                .unwrap_or_default();
            r["note"] = json!([{ "text": format!("Scored on SpO2 scale 2{by}") }]);
        }
        entries.push((ids.url(&name), r));
        refs.push(ids.reference(&name));
    }
    refs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::complete_encounter;
    use chrono::TimeZone;

    fn meta(status: crate::model::RecordStatus) -> VersionMeta {
        VersionMeta {
            revision: crate::model::revision::rev(3),
            status,
            content_sha256: "ab".repeat(32),
            signature: status.is_signed().then(|| "c2lnbmF0dXJl".to_owned()),
            device_public_key: Some("cHVibGlj".to_owned()),
            saved_at_utc: Utc
                .with_ymd_and_hms(2026, 3, 1, 11, 20, 0)
                .single()
                .unwrap(),
            signer: None,
        }
    }

    #[test]
    fn same_version_same_bundle_apart_from_generation_time() {
        let e = complete_encounter();
        let m = meta(crate::model::RecordStatus::Completed);
        let mut a = bundle(&e, &m, Utc::now());
        let mut b = bundle(&e, &m, Utc::now() + chrono::Duration::hours(3));
        for v in [&mut a, &mut b] {
            v["timestamp"] = Value::Null;
            v["meta"] = Value::Null;
        }
        assert_eq!(a, b);
    }

    #[test]
    fn draft_is_marked_and_unsigned() {
        let e = complete_encounter();
        let b = bundle(&e, &meta(crate::model::RecordStatus::Draft), Utc::now());
        let comp = &b["entry"][0]["resource"];
        assert_eq!(comp["status"], "preliminary");
        assert!(comp["title"].as_str().unwrap().starts_with(DRAFT_MARK));
        let has_provenance = b["entry"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["resource"]["resourceType"] == "Provenance");
        assert!(!has_provenance);
    }

    #[test]
    fn the_narrative_is_in_uk_time_with_the_zone_named() {
        let m = meta(crate::model::RecordStatus::Completed);
        let narrative = |e: &Encounter| {
            let b = bundle(e, &m, Utc::now());
            b["entry"][0]["resource"]["section"][0]["text"]["div"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        // 1 March: GMT, the same clock as UTC.
        let mut e = complete_encounter();
        let text = narrative(&e);
        assert!(text.contains("Times are UK time (GMT).<br/>"), "{text}");
        assert!(text.contains("T: Call connected 10:00"), "{text}");
        // The same record in July: BST, an hour ahead of UTC.
        let shift = chrono::Duration::days(150);
        e.created_at_utc += shift;
        for ms in crate::model::Milestone::ALL {
            let t = e.incident.times.get(ms).map(|t| t + shift);
            e.incident.times.set(ms, t);
        }
        let text = narrative(&e);
        assert!(text.contains("Times are UK time (BST).<br/>"), "{text}");
        assert!(text.contains("T: Call connected 11:00"), "{text}");
    }

    #[test]
    fn a_gcs_component_not_testable_is_absent_with_its_reason_and_so_is_the_total() {
        let mut e = complete_encounter();
        let first = e.observations_by_time()[0].taken_at_utc;
        for o in &mut e.observations {
            if o.taken_at_utc == first {
                o.gcs = Some(crate::model::Gcs {
                    verbal: GcsVerbalResponse::Intubated,
                    ..o.gcs.unwrap()
                });
            }
        }
        let b = bundle(&e, &meta(crate::model::RecordStatus::Completed), Utc::now());
        let gcs: Vec<&Value> = b["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| &x["resource"])
            .filter(|r| r["code"]["coding"][0]["code"] == "9269-2")
            .collect();
        assert_eq!(gcs.len(), 2, "one GCS per set");
        let (absent, scored): (Vec<&Value>, Vec<&Value>) = gcs
            .into_iter()
            .partition(|r| r.get("valueQuantity").is_none());
        assert_eq!((absent.len(), scored.len()), (1, 1));
        assert_eq!(
            absent[0]["dataAbsentReason"]["coding"][0]["code"],
            "not-performed"
        );
        let verbal = &absent[0]["component"][1];
        assert!(verbal.get("valueQuantity").is_none());
        assert_eq!(
            verbal["dataAbsentReason"]["text"],
            "T: intubated or tracheostomy"
        );
        assert!(
            absent[0]["component"][0]["valueQuantity"].is_object(),
            "the eye was scored"
        );
        assert_eq!(scored[0]["valueQuantity"]["value"], 15.0);
    }

    #[test]
    fn nkda_nka_and_unknown_allergies_are_coded_apart() {
        let m = meta(crate::model::RecordStatus::Completed);
        // (allergies field, SNOMED code of the AllergyIntolerance, empty-section reason)
        for (text, code, empty_reason) in [
            ("NKDA", Some("409137002"), None),
            ("No known allergies", Some("716186003"), None),
            ("Unknown", None, Some("unavailable")),
            ("", None, Some("notasked")),
            ("Penicillin", None, None),
        ] {
            let mut e = complete_encounter();
            e.history.allergies = text.to_owned();
            let b = bundle(&e, &m, Utc::now());
            let entries = b["entry"].as_array().unwrap();
            let allergy = entries
                .iter()
                .map(|x| &x["resource"])
                .find(|r| r["resourceType"] == "AllergyIntolerance");
            let section = entries[0]["resource"]["section"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["title"] == "Allergies")
                .unwrap();
            match (allergy, empty_reason) {
                (Some(a), None) => {
                    assert_eq!(a["code"]["coding"][0]["code"].as_str(), code, "{text:?}");
                    if code.is_none() {
                        assert_eq!(a["code"]["text"], text, "{text:?}");
                    }
                }
                (None, Some(reason)) => {
                    assert_eq!(
                        section["emptyReason"]["coding"][0]["code"], reason,
                        "{text:?}"
                    );
                }
                other => panic!("{text:?}: unexpected {other:?}"),
            }
        }
    }
}
