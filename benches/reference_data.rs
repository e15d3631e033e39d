//! The trust's reference data at a large trust's size: a formulary of N drugs (default 600),
//! N/2 destinations and 10N staff, as one document. Times the whole-document check
//! (`ReferenceData::from_json`), the server's import into SQLite (check, canonical JSON, sign,
//! store, log, audit), the tablet reading its cached set back from the encrypted store (what
//! the store worker does each time a record opens), the formulary checks for one dose against
//! a record holding 40 drugs, and ordering the destinations for a stroke.
//!
//! Run with `cargo bench --bench reference_data`. Knob: `EPR_BENCH_DRUGS` (600). Without
//! `--bench` in argv (as under `cargo test`) it returns at once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use ambulance_epr::crypto::KdfParams;
use ambulance_epr::model::formulary::{PatientFacts, dose_concerns};
use ambulance_epr::model::reference::{Capability, ReferenceData};
use ambulance_epr::model::{DoseUnit, DrugGiven, Presentation};
use ambulance_epr::server::log_key::LogSigner;
use ambulance_epr::server::{open_storage, reference};
use ambulance_epr::store::{Store, migrate};
use chrono::Utc;
use serde_json::json;

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A document of `drugs` drugs, `drugs / 2` destinations and `10 * drugs` staff.
fn large_document(drugs: usize) -> String {
    let formulary: Vec<_> = (0..drugs)
        .map(|i| {
            json!({
                "id": format!("drug-{i}"),
                "name": format!("Drug number {i}"),
                "forms": ["10 mg in 1 mL injection", "5 mg tablet"],
                "routes": ["IV", "IM", "Oral"],
                "unit": "milligrams",
                "adult_dose": { "min": 1, "max": 10 },
                "paediatric_dose_per_kg": { "min": 0.05, "max": 0.1 },
                "max_cumulative": 20,
                "min_interval_minutes": 5,
                "controlled": i % 10 == 0,
                "allergy_classes": [format!("class-{}", i % 40)],
            })
        })
        .collect();
    let capabilities = [
        "emergency_department",
        "hyperacute_stroke_unit",
        "ppci",
        "major_trauma_centre",
        "maternity",
        "paediatric",
    ];
    let destinations: Vec<_> = (0..drugs / 2)
        .map(|i| {
            json!({
                "id": format!("dest-{i}"),
                "name": format!("Hospital number {i}"),
                "ods_code": format!("XX{i:04}"),
                "kind": "acute_hospital",
                "capabilities": [capabilities[i % 6], "emergency_department"],
            })
        })
        .collect();
    let staff: Vec<_> = (0..drugs * 10)
        .map(|i| {
            json!({
                "id": format!("s-{i}"),
                "name": format!("Staff member {i}"),
                "role": "Paramedic",
                "registration": format!("PA{i:06}"),
                "user_id": format!("user{i}"),
            })
        })
        .collect();
    json!({
        "version": 1,
        "trust": "Bench Ambulance Service",
        "formulary": formulary,
        "destinations": destinations,
        "staff": staff,
        "presenting_complaints": ["Chest pain"],
        "referral_services": ["GP"],
    })
    .to_string()
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let drugs = knob("EPR_BENCH_DRUGS", 600);
    let document = large_document(drugs);
    println!(
        "reference data: {drugs} drugs, {} destinations, {} staff, {} bytes of JSON",
        drugs / 2,
        drugs * 10,
        document.len()
    );

    let checks: Vec<Duration> = (0..20)
        .map(|_| {
            let t = Instant::now();
            ReferenceData::from_json(&document).unwrap();
            t.elapsed()
        })
        .collect();
    println!("check the whole document: median {:?}", median(checks));

    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("server.db").display());
    let storage = rt.block_on(open_storage(&url)).unwrap();
    let signer = LogSigner::generate(Some("bench/log")).unwrap();
    let t = Instant::now();
    rt.block_on(reference::import(
        storage.as_ref(),
        &signer,
        &document,
        Utc::now(),
    ))
    .unwrap();
    println!(
        "server import (check, sign, store, log, audit): {:?}",
        t.elapsed()
    );
    let held = rt
        .block_on(reference::for_tablets(storage.as_ref(), &signer))
        .unwrap()
        .unwrap();

    let tablet = dir.path().join("tablet");
    let store = Store::create_with(
        &tablet,
        "bench",
        "2468",
        KdfParams::FAST_FOR_TESTS,
        migrate::latest_version(),
    )
    .unwrap();
    store
        .keep_server_reference(held.version, &held.document, &held.signed_note, Utc::now())
        .unwrap();
    let reads: Vec<Duration> = (0..20)
        .map(|_| {
            let t = Instant::now();
            store.active_reference(true).unwrap();
            t.elapsed()
        })
        .collect();
    println!(
        "tablet reads its cached set (each record opened, on the store worker): median {:?}",
        median(reads)
    );

    let data = ReferenceData::from_json(&document).unwrap();
    let drug = &data.formulary[7];
    let given: Vec<DrugGiven> = (0..40)
        .map(|i| DrugGiven {
            drug: data.formulary[i % data.formulary.len()].name.clone(),
            dose: 1.0,
            unit: DoseUnit::Milligrams,
            route: "IV".into(),
            at_utc: Utc::now(),
            by: String::new(),
            formulary_id: Some(data.formulary[i % data.formulary.len()].id.clone()),
            form: String::new(),
            overrides: Vec::new(),
            controlled: None,
        })
        .collect();
    let classes = vec!["class-7".to_owned()];
    let facts = PatientFacts {
        age_years: Some(60),
        weight_kg: None,
        allergies_text: "penicillin - rash",
        allergy_classes: &classes,
        given: &given,
        paediatric: false,
    };
    let t = Instant::now();
    let rounds = 10_000u32;
    for _ in 0..rounds {
        std::hint::black_box(dose_concerns(drug, 15.0, Utc::now(), &facts));
    }
    println!(
        "formulary checks for one dose (record of 40 drugs): {:?} each",
        t.elapsed() / rounds
    );
    let needs = Capability::needed_for(&[Presentation::Stroke]);
    let t = Instant::now();
    for _ in 0..1000 {
        std::hint::black_box(data.destinations_for(&needs));
    }
    println!(
        "destinations ordered for a stroke ({} destinations): {:?} each",
        data.destinations.len(),
        t.elapsed() / 1000
    );
}
