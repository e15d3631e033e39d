//! The one home of synthetic records, for demos, tests and benchmarks.
//!
//! Owns two kinds of invented encounter: [`synthetic_encounter`], a seeded random job whose
//! observation series drift plausibly so NEWS2 trends look real (used by `epr demo-data`, demo
//! mode and the benchmarks), and [`complete_encounter`], one fixed, signable record whose ids
//! and times never change so golden files and tests across rooms stay stable.
//!
//! Every value is invented. NHS numbers come only from [`test_nhs_number`]: the
//! 999 000 0000 – 999 999 9999 range reserved for test data, with valid Modulus 11 check
//! digits. May use `model` and `store` (to fill a store with demo data); never `ui`, `sync` or
//! `server`. Nothing here belongs in the clinical model's API: `model` holds no test data.

use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use crate::model::*;
use crate::store::{Store, StoreError};

const GIVEN: &[&str] = &[
    "Alex", "Sam", "Jordan", "Morgan", "Casey", "Riley", "Jamie", "Taylor", "Robin", "Avery",
    "Zoë", "Siân", "Seán", "Aoife", "Chidi", "Priya", "Mateusz", "Olamide",
];
const FAMILY: &[&str] = &[
    "Testperson",
    "Sample",
    "Example",
    "Placeholder",
    "Dummy",
    "Mock",
    "Fixture",
    "O'Synthetic",
    "Demo-Patient",
    "Trial",
    "Specimen",
    "Fictional",
];
const COMPLAINTS: &[(&str, &str)] = &[
    ("Central chest pain", "Onset at rest, radiating to left arm"),
    (
        "Shortness of breath",
        "Worsening over two days, productive cough",
    ),
    (
        "Fall",
        "Tripped on stairs, no loss of consciousness reported",
    ),
    (
        "Collapse",
        "Witnessed collapse, brief loss of consciousness",
    ),
    ("Abdominal pain", "Right lower quadrant pain since morning"),
    ("Seizure", "Known epilepsy, single tonic-clonic seizure"),
    (
        "Stroke symptoms",
        "Facial droop and arm weakness noticed by family",
    ),
    (
        "Road traffic collision",
        "Restrained driver, low-speed impact",
    ),
    ("Hypoglycaemia", "Found confused by carer, known diabetic"),
    ("Sepsis query", "Fever and rigors, recent urinary symptoms"),
];
/// Destinations of synthetic conveyances, with their ODS codes in the sample reference data
/// (`None`: typed, not in the list).
const HOSPITALS: &[(&str, Option<&str>)] = &[
    ("Test General Hospital", Some("XX2BB")),
    ("Sample Royal Infirmary", Some("XX1AA")),
    ("Example University Hospital", None),
];
const CALL_SIGNS: &[&str] = &["RRV12", "AMB204", "AMB317", "AMB122", "RRV7"];

/// A valid NHS number in the reserved test range, derived from `n`: `999` then the last six
/// digits of `n`, then the Modulus 11 check digit. Where no check digit exists for that body
/// the next `n` is used, so every result parses.
pub fn test_nhs_number(mut n: u32) -> NhsNumber {
    loop {
        let body = format!("999{:06}", n % 1_000_000);
        let mut first_nine = [0u32; 9];
        for (slot, c) in first_nine.iter_mut().zip(body.chars()) {
            *slot = c.to_digit(10).unwrap_or(0);
        }
        if let Some(check) = NhsNumber::check_digit(&first_nine)
            && let Ok(nhs) = NhsNumber::parse(&format!("{body}{check}"))
        {
            return nhs;
        }
        n = n.wrapping_add(1);
    }
}

fn obs_at(
    rng: &mut StdRng,
    at: DateTime<Utc>,
    severity: f64,
    oxygen: bool,
    may_miss_a_value: bool,
) -> ObservationSet {
    let mut o = ObservationSet::empty(at);
    let jitter =
        |rng: &mut StdRng, base: f64, spread: f64| base + rng.random_range(-spread..=spread);
    o.resp_rate_per_min = RespRatePerMin::new(jitter(rng, 16.0 + severity * 10.0, 2.0) as i64).ok();
    o.spo2_percent =
        Spo2Percent::new(jitter(rng, 97.0 - severity * 7.0, 1.5).min(100.0) as i64).ok();
    o.inspired = Some(if oxygen {
        Inspired::Oxygen {
            flow_l_per_min: OxygenFlowLitresPerMin::new(15.0).ok(),
        }
    } else {
        Inspired::Air
    });
    let sys = jitter(rng, 130.0 - severity * 35.0, 10.0);
    o.systolic_mmhg = SystolicMmHg::new(sys as i64).ok();
    o.diastolic_mmhg = DiastolicMmHg::new((sys * 0.62) as i64).ok();
    o.pulse_bpm = PulseBpm::new(jitter(rng, 78.0 + severity * 40.0, 6.0) as i64).ok();
    o.temperature_celsius =
        TemperatureCelsius::new((jitter(rng, 36.9 + severity * 1.6, 0.3) * 10.0).round() / 10.0)
            .ok();
    o.acvpu = Some(if severity > 0.8 && rng.random_bool(0.5) {
        Acvpu::NewConfusion
    } else {
        Acvpu::Alert
    });
    let verbal = if o.acvpu == Some(Acvpu::NewConfusion) {
        4
    } else {
        5
    };
    if let (Ok(eye), Ok(verbal), Ok(motor)) =
        (GcsEye::new(4), GcsVerbal::new(verbal), GcsMotor::new(6))
    {
        o.gcs = Some(Gcs::scored(eye, verbal, motor));
    }
    o.glucose_mmol_per_l = GlucoseMmolPerL::new((jitter(rng, 6.0, 1.5) * 10.0).round() / 10.0).ok();
    o.pain_score = PainScore::new(rng.random_range(0..=8)).ok();
    // Some sets are taken in a hurry and miss a value, as on real jobs.
    if may_miss_a_value && rng.random_bool(0.1) {
        o.temperature_celsius = None;
    }
    o.unusual_values_confirmed = !o.soft_limit_warnings().is_empty();
    o
}

/// One synthetic encounter that started at `start`, fully filled in (signable).
pub fn synthetic_encounter(rng: &mut StdRng, start: DateTime<Utc>, serial: u32) -> Encounter {
    let mut e = Encounter::new_draft(start);
    e.incident.incident_number = format!("INC-{:06}", 100_000 + serial);
    e.incident.call_sign = CALL_SIGNS.choose(rng).copied().unwrap_or("AMB1").to_owned();
    e.incident.location = format!("{} Example Road, Testtown", rng.random_range(1..200));
    let mut t = start;
    let mut step = |rng: &mut StdRng, lo: i64, hi: i64| {
        t += Duration::minutes(rng.random_range(lo..=hi));
        t
    };
    let times = &mut e.incident.times;
    times.set(Milestone::CallConnected, Some(start));
    times.set(Milestone::Mobilised, Some(step(rng, 0, 3)));
    times.set(Milestone::EnRoute, Some(step(rng, 0, 1)));
    times.set(Milestone::OnScene, Some(step(rng, 4, 18)));
    let at_patient = step(rng, 1, 3);
    times.set(Milestone::AtPatient, Some(at_patient));
    let left = step(rng, 20, 50);
    times.set(Milestone::LeftScene, Some(left));

    let given = GIVEN.choose(rng).copied().unwrap_or("Alex");
    let family = FAMILY.choose(rng).copied().unwrap_or("Sample");
    let age_years: i64 = rng.random_range(18..=95);
    e.patient = Patient {
        given_name: given.to_owned(),
        family_name: family.to_owned(),
        date_of_birth: (start - Duration::days(age_years * 365 + rng.random_range(0..365)))
            .date_naive()
            .into(),
        estimated_age_years: None,
        sex: Some(if rng.random_bool(0.5) {
            Sex::Female
        } else {
            Sex::Male
        }),
        nhs_number: Some(test_nhs_number(serial.wrapping_mul(7919))),
        address: format!("{} Sample Street, Testtown", rng.random_range(1..300)),
        gp_practice: "Example Medical Centre".to_owned(),
        pregnancy: None,
    };
    let (complaint, history) = COMPLAINTS.choose(rng).copied().unwrap_or(("Fall", ""));
    e.history = History {
        presenting_complaint: complaint.to_owned(),
        history_of_complaint: history.to_owned(),
        past_medical_history: ["Hypertension", "Type 2 diabetes", "COPD", "Nil", "Asthma"]
            .choose(rng)
            .copied()
            .unwrap_or("Nil")
            .to_owned(),
        medications: "As per patient's list".to_owned(),
        allergies: if rng.random_bool(0.8) {
            "NKDA"
        } else {
            "Penicillin"
        }
        .to_owned(),
        allergy_classes: Vec::new(),
        safeguarding: Safeguarding::default(),
        advance_decisions: AdvanceDecisions::default(),
    };
    let severity: f64 = rng.random_range(0.0..1.0);
    let oxygen = severity > 0.6;
    let sets = rng.random_range(1..=4);
    let mut observations = Vec::new();
    for i in 0..sets {
        let at = at_patient + Duration::minutes(2 + i * 10);
        // Treatment usually helps: later sets drift towards normal.
        let s = (severity - i as f64 * 0.12).max(0.0);
        observations.push(obs_at(rng, at, s, oxygen, i > 0));
    }
    e.observations = observations;
    if severity > 0.5 {
        e.drugs.push(DrugGiven {
            drug: "Paracetamol".to_owned(),
            dose: 1000.0,
            unit: DoseUnit::Milligrams,
            route: "IV".to_owned(),
            at_utc: at_patient + Duration::minutes(8),
            by: "Demo Paramedic".to_owned(),
            formulary_id: Some("paracetamol".to_owned()),
            form: String::new(),
            overrides: Vec::new(),
            controlled: None,
        });
        e.interventions.push(Intervention {
            what: "IV cannula".to_owned(),
            at_utc: at_patient + Duration::minutes(6),
            by: "Demo Paramedic".to_owned(),
            details: "18G left antecubital fossa".to_owned(),
        });
    }
    e.outcome = Some(if rng.random_bool(0.7) {
        {
            let (hospital, code) = HOSPITALS
                .choose(rng)
                .copied()
                .unwrap_or(("Test General Hospital", Some("XX2BB")));
            Outcome::ConveyedTo {
                hospital: hospital.to_owned(),
                ods_code: code.map(str::to_owned),
            }
        }
    } else {
        // Each kind of non-conveyance in turn, with its section filled in.
        match serial % 4 {
            0 => Outcome::Referred {
                to: "GP out of hours".to_owned(),
            },
            1 => Outcome::NotConveyed {
                reason: "Treated at scene".to_owned(),
            },
            2 => Outcome::Declined,
            _ => Outcome::Referred {
                to: "Urgent community response".to_owned(),
            },
        }
    });
    if let Some(outcome) = e.outcome.as_ref().filter(|o| o.is_non_conveyance()) {
        let mut section = whole_non_conveyance(outcome);
        section.signature.name = e.patient.display_name();
        section.signature.signed_at_utc = Some(left);
        if serial % 4 == 3 {
            // A patient who lacks capacity for the decision, left in a carer's care.
            section.capacity = non_conveyance::CapacityAssessment {
                impairment: Some(true),
                can_understand: Some(false),
                can_retain: Some(false),
                can_weigh: Some(false),
                can_communicate: Some(true),
                best_interests: "Known dementia; settled at home with carer present; urgent \
                                 community response to visit within two hours"
                    .to_owned(),
            };
            section.consent = Some(non_conveyance::Consent::LacksCapacity);
            section.referral_service =
                Some(non_conveyance::ReferralService::UrgentCommunityResponse);
            section.referral_reference = format!("UCR-{:05}", 10_000 + serial);
            section.worsening_advice_to = Some(non_conveyance::AdviceGivenTo::Carer);
            section.signature = non_conveyance::DrawnSignature::default();
            section.no_signature_reason =
                "Patient lacks capacity; carer declined to sign".to_owned();
        }
        e.non_conveyance = Some(section);
    }
    e.pre_alert.eta_utc = Some(left + Duration::minutes(15));
    e.notes = "Synthetic demonstration record.".to_owned();
    e.crew = vec![
        CrewMember {
            name: "Demo Paramedic".to_owned(),
            role: "Paramedic".to_owned(),
            registration: "PA999999".to_owned(),
        },
        CrewMember {
            name: "Demo Technician".to_owned(),
            role: "EMT".to_owned(),
            registration: String::new(),
        },
    ];
    add_presentation(&mut e, serial, at_patient, left);
    // The cases every clinical rule needs to be seen in the demo, by serial number, so any
    // ten records in a row show each of them (and the rest of the record stays as drawn):
    // a glucose-only recheck after the last set (the current NEWS2 stays that of the latest
    // complete set), a child (no NEWS2 under 16), a patient with COPD and confirmed
    // hypercapnic respiratory failure (SpO2 scale 2, chosen per set), and a pregnant woman
    // (NEWS2 not validated in pregnancy).
    if serial % 5 == 1
        && let Some(last) = e.observations_by_time().last().map(|o| o.taken_at_utc)
    {
        let mut recheck = ObservationSet::empty(last + Duration::minutes(5));
        recheck.glucose_mmol_per_l =
            GlucoseMmolPerL::new(rng.random_range(40..=90) as f64 / 10.0).ok();
        e.observations.push(recheck);
    }
    match serial % 10 {
        3 => {
            if serial % 20 == 13 {
                use crate::model::safeguarding::*;
                e.history.safeguarding = Safeguarding {
                    concern_raised: true,
                    details: "Home cold, little food; child unkempt".to_owned(),
                    subject: Some(Subject::Child),
                    category: Some(Category::Neglect),
                    referred_to: "Trust safeguarding line".to_owned(),
                    reference: format!("SG-{:05}", serial % 100_000),
                    consent: Some(ReferralConsent::Given),
                    no_consent_reason: String::new(),
                };
            }
            let age_years: i64 = rng.random_range(1..=15);
            e.patient.date_of_birth = (start - Duration::days(age_years * 365 + 100))
                .date_naive()
                .into();
            // Every child's record carries a weight; the youngest are weighed.
            e.assessment.set(Presentation::Paediatric, true);
            e.assessment.paediatric = Some(crate::model::paediatric::PaediatricAssessment {
                weight_kg: Some((age_years as f64) * 2.0 + 8.0),
                weight_method: Some(if age_years < 2 {
                    crate::model::paediatric::WeightMethod::Measured
                } else {
                    crate::model::paediatric::WeightMethod::FromAge
                }),
            });
            e.history.past_medical_history = "Nil".to_owned();
            // The adult drugs above are not for children.
            e.drugs.clear();
        }
        7 => {
            e.history.past_medical_history = "COPD".to_owned();
            // Breathless with COPD; every other one also in a mental health crisis.
            e.assessment.set(Presentation::BreathingDifficulty, true);
            e.assessment.breathing = Some(crate::model::breathing::BreathingAssessment {
                speech: Some(crate::model::breathing::Speech::ShortPhrases),
                wheeze: Some(true),
                accessory_muscles: Some(true),
                known_condition: Some(crate::model::breathing::KnownCondition::Copd),
                life_threats: Vec::new(),
                no_life_threats: true,
            });
            if serial % 20 == 17 {
                use crate::model::mental_health::*;
                e.assessment.set(Presentation::MentalHealth, true);
                e.assessment.mental_health = Some(MentalHealthAssessment {
                    thoughts_of_suicide: Some(true),
                    self_harm: Some(false),
                    risk_to_others: Some(false),
                    legal_status: Some(LegalStatus::Informal),
                    police_present: Some(false),
                    contacted: Some(MentalHealthContact::CrisisTeam),
                });
            }
            for o in &mut e.observations {
                if o.spo2_percent.is_some() {
                    o.spo2_scale2 = Some(Scale2Choice::hypercapnic_failure("Demo Paramedic"));
                }
            }
        }
        5 => {
            // An older patient with a DNACPR decision the crew saw.
            e.patient.date_of_birth = (start - Duration::days(88 * 365 + 200)).date_naive().into();
            e.history.advance_decisions = advance_decisions::AdvanceDecisions {
                status: Some(advance_decisions::AdvanceStatus::Seen),
                document: Some(advance_decisions::AdvanceDocument::Respect),
                cpr: Some(advance_decisions::CprRecommendation::DoNotAttemptCpr),
                location: "Care home file".to_owned(),
                recommendation: "Ward-based care; not for intensive care".to_owned(),
                ..Default::default()
            };
        }
        0 => {
            e.history.advance_decisions.status = Some(advance_decisions::AdvanceStatus::NoneKnown);
        }
        9 => {
            e.patient.sex = Some(Sex::Female);
            e.patient.date_of_birth = (start - Duration::days(29 * 365 + 40)).date_naive().into();
            e.patient.pregnancy = Some(Pregnancy::Pregnant {
                gestation_weeks: Some(rng.random_range(12..=40)),
            });
            e.assessment.set(Presentation::Maternity, true);
            e.assessment.maternity = Some(crate::model::maternity::MaternityAssessment {
                findings: vec![crate::model::maternity::MaternityFinding::AbdominalPain],
                none_found: false,
                contractions_per_10_min: None,
                maternity_unit_contacted: Some(true),
            });
        }
        _ => {}
    }
    e
}

/// The presentation the complaint suggests, with its sections whole: a 12-lead ECG for chest
/// pain (a STEMI for the primary PCI pathway on every third), the stroke assessment for
/// stroke symptoms (witnessed onset or last known well in turn, and a blood glucose in the
/// first set), a sepsis screen with the red flags the observations show, a fall with its
/// frailty, injuries for a road collision, and the breathing section for shortness of breath.
/// Serials ending in 0 are road collisions, in 1 falls, in 2 sepsis, in 4 cardiac arrests,
/// in 6 chest pains, in 7 shortness of breath (with COPD) and in 8 strokes. Uses no
/// randomness, so the rest of the record is as drawn.
fn add_presentation(
    e: &mut Encounter,
    serial: u32,
    at_patient: DateTime<Utc>,
    left: DateTime<Utc>,
) {
    use crate::model::ecg::{Ecg12Lead, EcgRhythm};
    use crate::model::stroke::{Finding, OnsetKind, StrokeAssessment, StrokePathway};
    // Any ten records in a row hold a chest pain and a stroke.
    let named = |name: &str| COMPLAINTS.iter().find(|(c, _)| *c == name);
    let forced = match serial % 10 {
        0 => named("Road traffic collision"),
        1 => named("Fall"),
        2 => named("Sepsis query"),
        6 => COMPLAINTS.first(),
        7 => named("Shortness of breath"),
        8 => named("Stroke symptoms"),
        _ => None,
    };
    if let Some((complaint, history)) = forced {
        e.history.presenting_complaint = (*complaint).to_owned();
        e.history.history_of_complaint = (*history).to_owned();
    }
    if serial % 10 == 4 {
        add_arrest(e, serial, at_patient);
        return;
    }
    let presentation = match e.history.presenting_complaint.as_str() {
        "Central chest pain" => Presentation::ChestPain,
        "Shortness of breath" => Presentation::BreathingDifficulty,
        "Fall" => Presentation::Fall,
        "Stroke symptoms" => Presentation::Stroke,
        "Road traffic collision" => Presentation::Trauma,
        "Sepsis query" => Presentation::Sepsis,
        _ => Presentation::Other,
    };
    e.assessment.set(presentation, true);
    let conveyed = matches!(e.outcome, Some(Outcome::ConveyedTo { .. }));
    match presentation {
        Presentation::ChestPain => {
            let stemi = serial.is_multiple_of(3);
            e.assessment.ecgs.push(Ecg12Lead {
                taken_utc: Some(at_patient + Duration::minutes(4)),
                rhythm: Some(if stemi {
                    EcgRhythm::SinusRhythm
                } else {
                    EcgRhythm::SinusTachycardia
                }),
                stemi: Some(stemi),
                transmitted: Some(stemi),
                transmitted_to: if stemi {
                    "Cath lab, Sample Royal Infirmary".to_owned()
                } else {
                    String::new()
                },
                ppci: stemi.then_some(conveyed),
                ..Ecg12Lead::default()
            });
        }
        Presentation::Stroke => {
            let witnessed = serial.is_multiple_of(2);
            let onset = e
                .incident
                .times
                .get(Milestone::CallConnected)
                .unwrap_or(at_patient)
                - Duration::minutes(if witnessed { 35 } else { 150 });
            e.assessment.stroke = Some(StrokeAssessment {
                face: Some(Finding::Abnormal),
                arms: Some(Finding::Abnormal),
                speech: Some(if witnessed {
                    Finding::Abnormal
                } else {
                    Finding::Normal
                }),
                balance: witnessed.then_some(Finding::Normal),
                eyes: witnessed.then_some(Finding::Normal),
                onset: Some(if witnessed {
                    OnsetKind::Witnessed
                } else {
                    OnsetKind::LastKnownWell
                }),
                onset_utc: Some(onset),
                pathway: Some(if conveyed {
                    StrokePathway::HyperacuteStrokeUnit
                } else {
                    StrokePathway::NotOnPathway
                }),
                pre_alert_utc: conveyed.then_some(left - Duration::minutes(3)),
            });
            if let Some(first) = e.observations.first_mut()
                && first.glucose_mmol_per_l.is_none()
            {
                first.glucose_mmol_per_l = GlucoseMmolPerL::new(6.4).ok();
            }
        }
        Presentation::Sepsis => {
            use crate::model::sepsis::*;
            let mut screen = SepsisScreen {
                screened_utc: e.observations_by_time().first().map(|o| o.taken_at_utc),
                source: Some(if serial.is_multiple_of(2) {
                    SepsisSource::Urine
                } else {
                    SepsisSource::Chest
                }),
                ..SepsisScreen::default()
            };
            for flag in screen.flags_suggested(e) {
                screen.set_flag(flag, true);
            }
            screen.no_red_flags = screen.red_flags.is_empty();
            screen.pathway = Some(match (screen.no_red_flags, conveyed) {
                (false, _) => SepsisPathway::RedFlagPreAlert,
                (true, true) => SepsisPathway::ConveyForAssessment,
                (true, false) => SepsisPathway::NotSepsis,
            });
            if !screen.no_red_flags {
                screen.pre_alert_utc = Some(left - Duration::minutes(2));
            }
            e.assessment.sepsis = Some(screen);
        }
        Presentation::Trauma => {
            use crate::model::trauma::*;
            let serious = serial.is_multiple_of(2);
            let mut trauma = TraumaAssessment {
                mechanism: Some(Mechanism::VehicleOccupant),
                mechanism_details: "Restrained driver, low-speed impact".to_owned(),
                catastrophic_haemorrhage: Some(false),
                triage: Some(if serious {
                    TraumaTriage::MajorTraumaCentre
                } else {
                    TraumaTriage::TraumaUnit
                }),
                ..TraumaAssessment::default()
            };
            trauma.add_injury(Injury {
                region: BodyRegion::Neck,
                kind: InjuryKind::Tenderness,
            });
            if serious {
                trauma.add_injury(Injury {
                    region: BodyRegion::Chest,
                    kind: InjuryKind::Bruising,
                });
                trauma.add_injury(Injury {
                    region: BodyRegion::LeftLeg,
                    kind: InjuryKind::SuspectedFracture,
                });
            }
            e.assessment.trauma = Some(trauma);
        }
        Presentation::BreathingDifficulty => {
            use crate::model::breathing::*;
            let severe = serial.is_multiple_of(3);
            e.assessment.breathing = Some(BreathingAssessment {
                speech: Some(if severe {
                    Speech::SingleWords
                } else {
                    Speech::ShortPhrases
                }),
                wheeze: Some(true),
                accessory_muscles: Some(severe),
                known_condition: Some(KnownCondition::Asthma),
                life_threats: if severe {
                    vec![LifeThreat::Exhaustion]
                } else {
                    Vec::new()
                },
                no_life_threats: !severe,
            });
        }
        Presentation::Fall => {
            use crate::model::falls::*;
            let long_lie = serial.is_multiple_of(3);
            e.assessment.fall = Some(FallAssessment {
                frailty_scale: Some(if long_lie { 6 } else { 4 }),
                time_on_floor: Some(if long_lie {
                    TimeOnFloor::OneHourOrMore
                } else {
                    TimeOnFloor::UnderOneHour
                }),
                head_injury: Some(long_lie),
                anticoagulated: Some(serial.is_multiple_of(2)),
                mobility: Some(if conveyed {
                    Mobility::UnableToWeightBear
                } else {
                    Mobility::AsBefore
                }),
                referral: Some(if conveyed {
                    FallsReferral::NoneNeeded
                } else {
                    FallsReferral::FallsTeam
                }),
            });
        }
        _ => {}
    }
}

/// A cardiac arrest, in turn a bystander-witnessed VF arrest with ROSC conveyed to hospital,
/// and an unwitnessed asystolic arrest where resuscitation was stopped and death verified.
fn add_arrest(e: &mut Encounter, serial: u32, at_patient: DateTime<Utc>) {
    use crate::model::arrest::*;
    let rosc = serial % 20 == 4;
    let collapse = e
        .incident
        .times
        .get(Milestone::CallConnected)
        .unwrap_or(at_patient)
        - Duration::minutes(if rosc { 2 } else { 12 });
    e.history.presenting_complaint = "Cardiac arrest".to_owned();
    e.history.history_of_complaint = if rosc {
        "Collapsed while shopping; bystander CPR and public AED before crew arrival"
    } else {
        "Found collapsed at home by relative; last seen well an hour before"
    }
    .to_owned();
    e.assessment.set(Presentation::CardiacArrest, true);
    let mut shocks = Vec::new();
    if rosc {
        for (minutes, energy_joules) in [(2, 150), (4, 150), (6, 200)] {
            shocks.push(Shock {
                at_utc: at_patient + Duration::minutes(minutes),
                energy_joules,
            });
        }
    }
    e.assessment.arrest = Some(CardiacArrest {
        witnessed: Some(if rosc {
            Witness::Bystander
        } else {
            Witness::Unwitnessed
        }),
        bystander_cpr: Some(rosc),
        collapse_utc: Some(collapse),
        cpr_started_utc: Some(if rosc {
            collapse + Duration::minutes(1)
        } else {
            at_patient + Duration::minutes(1)
        }),
        first_rhythm: Some(if rosc {
            ArrestRhythm::Vf
        } else {
            ArrestRhythm::Asystole
        }),
        shocks,
        airway: Some(if rosc {
            ArrestAirway::Supraglottic
        } else {
            ArrestAirway::Intubated
        }),
        end: Some(if rosc {
            ArrestEnd::Rosc
        } else {
            ArrestEnd::ResuscitationStopped
        }),
        rosc_utc: rosc.then_some(at_patient + Duration::minutes(9)),
        death_verified_utc: (!rosc).then_some(at_patient + Duration::minutes(24)),
    });
    e.non_conveyance = None;
    e.outcome = Some(if rosc {
        Outcome::ConveyedTo {
            hospital: "Sample Royal Infirmary".to_owned(),
            ods_code: Some("XX1AA".to_owned()),
        }
    } else {
        Outcome::Deceased
    });
}

/// A whole non-conveyance section for `outcome`, signable as it is: a patient with capacity,
/// risks and worsening advice recorded, signed by the patient; a referral to the service the
/// outcome names (or the GP).
pub fn whole_non_conveyance(outcome: &Outcome) -> NonConveyance {
    use non_conveyance::*;
    let mut section = NonConveyance::for_outcome(outcome);
    if section.decision.is_none() {
        section.decision = Some(NonConveyanceDecision::SeeAndTreat);
    }
    section.capacity.impairment = Some(false);
    section.consent = Some(match section.decision {
        Some(NonConveyanceDecision::RefusedAgainstAdvice) => Consent::Refused,
        _ => Consent::Given,
    });
    section.risks_explained =
        "Risks of not attending hospital explained, including deterioration and death".to_owned();
    section.worsening_advice_to = Some(AdviceGivenTo::Patient);
    section.worsening_advice =
        "Call 999 if symptoms return or worsen; see GP within 48 hours".to_owned();
    if section.decision == Some(NonConveyanceDecision::Referral) {
        section.referral_service = Some(match outcome {
            Outcome::Referred { to } if to.to_lowercase().contains("community") => {
                ReferralService::UrgentCommunityResponse
            }
            _ => ReferralService::Gp,
        });
        section.referral_reference = "REF-2048".to_owned();
    }
    section.signature.signatory = Some(Signatory::Patient);
    section.signature.name = "Demo Patient".to_owned();
    // A short, plausible scrawl.
    let scrawl: Vec<(f32, f32)> = (0..40u8)
        .map(|i| {
            let t = f32::from(i) / 39.0;
            (0.1 + 0.8 * t, 0.5 + 0.25 * (t * 18.0).sin() * (1.0 - t))
        })
        .collect();
    section.signature.add_stroke(&scrawl);
    section
}

/// A time on the reference record's day (1 March 2026, UTC).
pub(crate) fn fixed_time(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, h, m, 0)
        .single()
        .unwrap_or_default()
}

/// A complete, signable encounter with two observation sets, two drugs and an intervention.
/// Its fixed id, times and NHS number (999 000 0018) keep golden files and the
/// "no patient data in logs" checks stable, so it must not change without updating them.
pub fn complete_encounter() -> Encounter {
    let at = fixed_time;
    let mut e = Encounter::new_draft(at(9, 58));
    e.id = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001);
    e.incident.incident_number = "INC-000123".into();
    e.incident.call_sign = "RRV42".into();
    e.incident.location = "Test Street, Testtown".into();
    let t = &mut e.incident.times;
    t.set(Milestone::CallConnected, Some(at(10, 0)));
    t.set(Milestone::Mobilised, Some(at(10, 1)));
    t.set(Milestone::EnRoute, Some(at(10, 2)));
    t.set(Milestone::OnScene, Some(at(10, 11)));
    t.set(Milestone::AtPatient, Some(at(10, 13)));
    t.set(Milestone::LeftScene, Some(at(10, 45)));
    e.patient = Patient {
        given_name: "Testy".into(),
        family_name: "McTestface".into(),
        date_of_birth: chrono::NaiveDate::from_ymd_opt(1957, 6, 14),
        estimated_age_years: None,
        sex: Some(Sex::Male),
        nhs_number: Some(test_nhs_number(1)),
        address: "1 Test Street, Testtown".into(),
        gp_practice: "Test Surgery".into(),
        pregnancy: None,
    };
    e.history = History {
        presenting_complaint: "Central chest pain".into(),
        history_of_complaint: "Sudden onset at rest 40 minutes before call".into(),
        past_medical_history: "Hypertension".into(),
        medications: "Ramipril".into(),
        allergies: "NKDA".into(),
        allergy_classes: Vec::new(),
        safeguarding: Safeguarding::default(),
        advance_decisions: AdvanceDecisions::default(),
    };
    let mut first = ObservationSet::empty(at(10, 15));
    first.resp_rate_per_min = RespRatePerMin::new(22).ok();
    first.spo2_percent = Spo2Percent::new(95).ok();
    first.inspired = Some(Inspired::Air);
    first.systolic_mmhg = SystolicMmHg::new(150).ok();
    first.diastolic_mmhg = DiastolicMmHg::new(90).ok();
    first.pulse_bpm = PulseBpm::new(104).ok();
    first.temperature_celsius = TemperatureCelsius::new(37.1).ok();
    first.acvpu = Some(Acvpu::Alert);
    first.gcs = match (GcsEye::new(4), GcsVerbal::new(5), GcsMotor::new(6)) {
        (Ok(eye), Ok(verbal), Ok(motor)) => Some(Gcs::scored(eye, verbal, motor)),
        _ => None,
    };
    first.glucose_mmol_per_l = GlucoseMmolPerL::new(6.1).ok();
    first.pain_score = PainScore::new(7).ok();
    let mut second = first.clone();
    second.taken_at_utc = at(10, 30);
    second.resp_rate_per_min = RespRatePerMin::new(18).ok();
    second.spo2_percent = Spo2Percent::new(97).ok();
    second.pulse_bpm = PulseBpm::new(92).ok();
    second.pain_score = PainScore::new(3).ok();
    e.observations = vec![first, second];
    e.drugs = vec![
        DrugGiven {
            drug: "Aspirin".into(),
            dose: 300.0,
            unit: DoseUnit::Milligrams,
            route: "Oral".into(),
            at_utc: at(10, 18),
            by: "A. Paramedic".into(),
            formulary_id: Some("aspirin".into()),
            form: String::new(),
            overrides: Vec::new(),
            controlled: None,
        },
        DrugGiven {
            drug: "GTN".into(),
            dose: 400.0,
            unit: DoseUnit::Micrograms,
            route: "Sublingual".into(),
            at_utc: at(10, 20),
            by: "A. Paramedic".into(),
            formulary_id: Some("gtn".into()),
            form: String::new(),
            overrides: Vec::new(),
            controlled: None,
        },
    ];
    e.interventions = vec![Intervention {
        what: "12-lead ECG".into(),
        at_utc: at(10, 16),
        by: "A. Paramedic".into(),
        details: "Sinus tachycardia, no ST elevation".into(),
    }];
    e.outcome = Some(Outcome::ConveyedTo {
        hospital: "Test General Hospital".into(),
        ods_code: Some("XX2BB".into()),
    });
    e.pre_alert = PreAlert {
        eta_utc: Some(at(11, 5)),
        requirements: "Cardiology review".into(),
    };
    e.notes = "Pain eased after GTN.".into();
    e.crew = vec![
        CrewMember {
            name: "A. Paramedic".into(),
            role: "Paramedic".into(),
            registration: "PA000001".into(),
        },
        CrewMember {
            name: "B. Technician".into(),
            role: "EMT".into(),
            registration: String::new(),
        },
    ];
    e.sign_off = Some(SignOff {
        clinician_name: "A. Paramedic".into(),
        registration: "PA000001".into(),
        signed_at_utc: at(11, 20),
    });
    e
}

/// What [`add_demo_data`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct DemoSummary {
    pub added: u32,
    pub completed: u32,
    pub drafts: u32,
}

/// Adds `count` synthetic encounters spread over the last few days: about 85 % completed and
/// signed, the rest drafts.
pub fn add_demo_data(store: &mut Store, count: u32, seed: u64) -> Result<DemoSummary, StoreError> {
    let mut rng = StdRng::seed_from_u64(seed);
    let now = Utc::now();
    let mut summary = DemoSummary {
        added: 0,
        completed: 0,
        drafts: 0,
    };
    for i in 0..count {
        let minutes_ago = rng.random_range(90..(60 * 24 * 5));
        let start = now - Duration::minutes(minutes_ago);
        let serial = (seed as u32).wrapping_mul(1_000_003).wrapping_add(i);
        let e = synthetic_encounter(&mut rng, start, serial % 900_000);
        if rng.random_bool(0.85) {
            store.complete_and_sign(&e, "Demo Paramedic", "PA999999")?;
            summary.completed += 1;
        } else {
            store.save_draft(&e)?;
            summary.drafts += 1;
        }
        summary.added += 1;
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_destinations_carry_the_sample_sets_ods_codes() {
        let sample = crate::model::reference::ReferenceData::sample().unwrap();
        for (name, code) in HOSPITALS {
            let listed = sample.destinations.iter().find(|d| d.name == *name);
            assert_eq!(listed.map(|d| d.ods_code.as_str()), *code, "{name}");
        }
    }

    #[test]
    fn synthetic_records_are_complete_and_in_test_range() {
        let mut rng = StdRng::seed_from_u64(7);
        for i in 0..200 {
            let e = synthetic_encounter(&mut rng, Utc::now(), i);
            // Sign-off is stamped at signing; everything else must already be there.
            let missing: Vec<_> = missing_items(&e)
                .into_iter()
                .filter(|m| m.field != Field::SignOffClinician)
                .collect();
            assert!(missing.is_empty(), "{missing:?}");
            assert!(
                e.patient
                    .nhs_number
                    .as_ref()
                    .is_some_and(NhsNumber::is_test_range)
            );
            assert!(e.incident.times.order_warnings().is_empty());
        }
    }

    #[test]
    fn a_few_hundred_records_hold_every_presentation() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut seen = std::collections::HashSet::new();
        for i in 0..200 {
            let e = synthetic_encounter(&mut rng, Utc::now(), i);
            seen.extend(e.assessment.presentations.iter().copied());
        }
        for p in Presentation::ALL {
            assert!(seen.contains(&p), "no demo record with {p:?}");
        }
    }

    #[test]
    fn same_seed_same_records() {
        let start = Utc::now();
        let a = synthetic_encounter(&mut StdRng::seed_from_u64(1), start, 1);
        let b = synthetic_encounter(&mut StdRng::seed_from_u64(1), start, 1);
        assert_eq!(a.patient, b.patient);
        assert_eq!(a.observations, b.observations);
    }

    #[test]
    fn test_nhs_numbers_are_valid_and_reserved() {
        for n in (0..2_000).chain([999_999, 1_000_000, u32::MAX - 1, u32::MAX]) {
            let nhs = test_nhs_number(n);
            assert!(nhs.is_test_range());
            // Parsing re-checks the Modulus 11 digit.
            assert_eq!(NhsNumber::parse(nhs.as_str()), Ok(nhs.clone()));
        }
    }

    #[test]
    fn the_fixed_record_is_signable_and_stable() {
        let e = complete_encounter();
        assert_eq!(missing_items(&e), vec![]);
        assert_eq!(e.id, complete_encounter().id);
        assert_eq!(
            e.patient.nhs_number.as_ref().map(NhsNumber::as_str),
            Some("9990000018")
        );
    }
}
