//! Fixed synthetic records for tests across rooms. Every value is invented; the NHS number is
//! from the 999 test range.

use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use super::*;

fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, h, m, 0)
        .single()
        .unwrap_or_default()
}

/// A complete, signable encounter with two observation sets, a drug and an intervention.
/// Its fixed id and times keep golden files stable.
pub fn complete_encounter() -> Encounter {
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
        nhs_number: NhsNumber::parse("9990000018").ok(),
        address: "1 Test Street, Testtown".into(),
        gp_practice: "Test Surgery".into(),
    };
    e.history = History {
        presenting_complaint: "Central chest pain".into(),
        history_of_complaint: "Sudden onset at rest 40 minutes before call".into(),
        past_medical_history: "Hypertension".into(),
        medications: "Ramipril".into(),
        allergies: "NKDA".into(),
        safeguarding: Safeguarding::default(),
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
        (Ok(eye), Ok(verbal), Ok(motor)) => Some(Gcs { eye, verbal, motor }),
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
            unit: "mg".into(),
            route: "Oral".into(),
            at_utc: at(10, 18),
            by: "A. Paramedic".into(),
        },
        DrugGiven {
            drug: "GTN".into(),
            dose: 400.0,
            unit: "micrograms".into(),
            route: "Sublingual".into(),
            at_utc: at(10, 20),
            by: "A. Paramedic".into(),
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
