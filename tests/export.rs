//! Hospital handover exports: the FHIR R4 bundle's structure and golden file, the PDF's text,
//! and the headless `epr export` command.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::process::Command;

use ambulance_epr::crypto::KdfParams;
use ambulance_epr::demo::complete_encounter;
use ambulance_epr::export::{DRAFT_MARK, fhir, pdf};
use ambulance_epr::model::handover::{atmist, clock, observation_summary};
use ambulance_epr::model::{RecordStatus, Revision, VersionMeta};
use ambulance_epr::store::{Store, migrate};
use chrono::{TimeZone, Utc};
use serde_json::Value;

fn fixed_meta(status: RecordStatus) -> VersionMeta {
    VersionMeta {
        revision: Revision::new(2).unwrap(),
        status,
        content_sha256: "0f".repeat(32),
        signature: status
            .is_signed()
            .then(|| "c2lnbmF0dXJlLWZvci1nb2xkZW4tZmlsZQ==".to_owned()),
        device_public_key: Some("cHVibGljLWtleS1mb3ItZ29sZGVu".to_owned()),
        saved_at_utc: Utc
            .with_ymd_and_hms(2026, 3, 1, 11, 21, 0)
            .single()
            .unwrap(),
        signer: None,
    }
}

/// Checks the rules a FHIR R4 reader would check; returns every problem found.
fn fhir_problems(bundle: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let mut p = |s: String| problems.push(s);
    if bundle["resourceType"] != "Bundle" {
        p("not a Bundle".into());
    }
    if bundle["type"] != "document" {
        p("Bundle.type is not document".into());
    }
    if bundle["identifier"]["value"].as_str().is_none() {
        p("document Bundle needs an identifier (bdl-9)".into());
    }
    if bundle["timestamp"].as_str().is_none() {
        p("document Bundle needs a timestamp (bdl-10)".into());
    }
    let entries = bundle["entry"].as_array().cloned().unwrap_or_default();
    if entries
        .first()
        .map(|e| e["resource"]["resourceType"].clone())
        != Some(Value::from("Composition"))
    {
        p("the first entry must be the Composition (bdl-11)".into());
    }
    let mut urls = HashSet::new();
    for e in &entries {
        let url = e["fullUrl"].as_str().unwrap_or("");
        if !url.starts_with("urn:uuid:") {
            p(format!("entry fullUrl {url:?} is not a urn:uuid"));
        }
        if !urls.insert(url.to_owned()) {
            p(format!("duplicate fullUrl {url}"));
        }
        let id = e["resource"]["id"].as_str().unwrap_or("");
        if !url.ends_with(id) || id.is_empty() {
            p(format!("resource id {id:?} does not match fullUrl {url}"));
        }
    }
    // Every reference resolves inside the bundle.
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    if k == "reference" {
                        if let Some(s) = x.as_str() {
                            out.push(s.to_owned());
                        }
                    } else {
                        refs(x, out);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let mut all_refs = Vec::new();
    refs(bundle, &mut all_refs);
    for r in &all_refs {
        if !urls.contains(r) {
            p(format!("reference {r} does not resolve inside the bundle"));
        }
    }
    // Required elements per resource type (FHIR R4 cardinalities).
    for e in &entries {
        let r = &e["resource"];
        let t = r["resourceType"].as_str().unwrap_or("");
        let need = |path: &[&str]| {
            let mut v = r;
            for k in path {
                v = &v[*k];
            }
            !v.is_null()
        };
        let required: &[&[&str]] = match t {
            "Composition" => &[
                &["status"],
                &["type"],
                &["date"],
                &["author"],
                &["title"],
                &["subject"],
            ],
            "Patient" => &[],
            "Encounter" => &[&["status"], &["class"]],
            "Observation" => &[&["status"], &["code"], &["subject"], &["effectiveDateTime"]],
            "MedicationAdministration" => &[
                &["status"],
                &["medicationCodeableConcept"],
                &["subject"],
                &["effectiveDateTime"],
            ],
            "Procedure" => &[&["status"], &["subject"]],
            "AllergyIntolerance" => &[&["patient"]],
            "Practitioner" => &[],
            "Provenance" => &[&["target"], &["recorded"], &["agent"]],
            other => {
                p(format!("unexpected resource type {other}"));
                &[]
            }
        };
        for path in required {
            if !need(path) {
                p(format!("{t} lacks {}", path.join(".")));
            }
        }
        if t == "Observation" {
            for coding in r["code"]["coding"].as_array().into_iter().flatten() {
                let system = coding["system"].as_str().unwrap_or("");
                if system != fhir::LOINC && system != fhir::SNOMED {
                    p(format!("Observation code system {system}"));
                }
            }
            for q in [&r["valueQuantity"]].into_iter().chain(
                r["component"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| &c["valueQuantity"]),
            ) {
                if !q.is_null() && q["system"] != fhir::UCUM {
                    p("a quantity is not UCUM".into());
                }
            }
        }
    }
    problems
}

fn find<'a>(bundle: &'a Value, resource_type: &str) -> Vec<&'a Value> {
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == resource_type)
        .collect()
}

fn codes(bundle: &Value) -> HashSet<String> {
    let mut out = HashSet::new();
    for obs in find(bundle, "Observation") {
        for c in obs["code"]["coding"].as_array().into_iter().flatten() {
            out.insert(c["code"].as_str().unwrap().to_owned());
        }
        for comp in obs["component"].as_array().into_iter().flatten() {
            for c in comp["code"]["coding"].as_array().into_iter().flatten() {
                out.insert(c["code"].as_str().unwrap().to_owned());
            }
        }
    }
    out
}

#[test]
fn fhir_bundle_is_structurally_valid_and_carries_the_codes() {
    let e = complete_encounter();
    let b = fhir::bundle(&e, &fixed_meta(RecordStatus::Completed), Utc::now());
    assert_eq!(fhir_problems(&b), Vec::<String>::new());
    let patient = find(&b, "Patient")[0];
    assert_eq!(patient["identifier"][0]["system"], fhir::NHS_NUMBER_SYSTEM);
    assert_eq!(patient["identifier"][0]["value"], "9990000018");
    let c = codes(&b);
    for code in [
        "85353-1",
        "8867-4",
        "9279-1",
        "2708-6",
        "59408-5",
        "85354-9",
        "8480-6",
        "8462-4",
        "8310-5",
        "9269-2",
        "9267-6",
        "9270-0",
        "9268-4",
        "15074-8",
        "72514-3",
        "1104051000000101",
    ] {
        assert!(c.contains(code), "missing code {code}");
    }
    assert_eq!(find(&b, "MedicationAdministration").len(), 2);
    assert_eq!(find(&b, "Procedure").len(), 1);
    assert_eq!(find(&b, "AllergyIntolerance").len(), 1);
    assert_eq!(find(&b, "Practitioner").len(), 1);
    let prov = find(&b, "Provenance");
    assert_eq!(prov.len(), 1);
    assert_eq!(
        prov[0]["signature"][0]["data"],
        "c2lnbmF0dXJlLWZvci1nb2xkZW4tZmlsZQ=="
    );
    // One panel and one NEWS2 per complete set.
    let panels = find(&b, "Observation")
        .into_iter()
        .filter(|o| o["code"]["coding"][0]["code"] == "85353-1")
        .count();
    assert_eq!(panels, e.observations.len());
}

#[test]
fn fhir_bundle_matches_the_golden_file() {
    let e = complete_encounter();
    let generated = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).single().unwrap();
    let b = fhir::bundle(&e, &fixed_meta(RecordStatus::Completed), generated);
    let text = serde_json::to_string_pretty(&b).unwrap() + "\n";
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/fhir_bundle.json");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let golden =
        std::fs::read_to_string(&path).expect("golden file (regenerate with UPDATE_GOLDEN=1)");
    assert_eq!(
        text, golden,
        "FHIR output changed; review and regenerate with UPDATE_GOLDEN=1"
    );
}

fn pdf_text(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.pdf");
    std::fs::write(&path, bytes).unwrap();
    let out = Command::new("pdftotext")
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext (Debian package poppler-utils) is needed to read PDFs in tests");
    assert!(
        out.status.success(),
        "pdftotext failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn pdf_contains_the_atmist_lines_and_every_observation_set() {
    let e = complete_encounter();
    let bytes = pdf::render(&e, &fixed_meta(RecordStatus::Completed), Utc::now()).unwrap();
    assert!(bytes.starts_with(b"%PDF"));
    let text = squash(&pdf_text(&bytes));
    for line in atmist(&e) {
        let expected = squash(&format!(
            "{} – {}: {}",
            line.letter, line.heading, line.text
        ));
        assert!(text.contains(&expected), "missing ATMIST line {expected:?}");
    }
    for o in &e.observations {
        let expected = squash(&format!(
            "{}: {}",
            clock(o.taken_at_utc),
            observation_summary(o)
        ));
        assert!(
            text.contains(&expected),
            "missing observation set {expected:?}"
        );
    }
    assert!(
        text.contains("943") || text.contains("999 000 0018"),
        "NHS number printed"
    );
    assert!(text.contains(&e.id.to_string()), "record id in the footer");
    assert!(text.contains("version 2"));
    assert!(!text.contains(DRAFT_MARK));
}

#[test]
fn every_pdf_page_names_the_patient_and_allergies_are_boxed_at_the_top() {
    let mut e = complete_encounter();
    e.history.allergies = "Penicillin – anaphylaxis".into();
    // Enough observation sets for the summary to run onto further pages.
    let first_set = e.observations[0].clone();
    for i in 0..80 {
        let mut o = first_set.clone();
        o.taken_at_utc += chrono::Duration::minutes(i);
        e.observations.push(o);
    }
    let bytes = pdf::render(&e, &fixed_meta(RecordStatus::Completed), Utc::now()).unwrap();
    let text = pdf_text(&bytes);
    let pages: Vec<String> = text
        .split('\x0c')
        .map(squash)
        .filter(|p| !p.is_empty())
        .collect();
    assert!(pages.len() >= 2, "{} pages", pages.len());
    let name = e.patient.display_name();
    let nhs = e.patient.nhs_number.as_ref().unwrap().formatted();
    for (i, page) in pages.iter().enumerate() {
        assert!(
            page.contains(&name) && page.contains(&nhs),
            "page {} names the patient",
            i + 1
        );
    }
    // The observations table runs onto page 2 and repeats its headings there.
    assert!(pages[1].contains("Time RR SpO2 Air/O2 BP HR Temp ACVPU GCS BM Pain NEWS2"));
    let allergy = pages[0]
        .find("ALLERGIES: Penicillin – anaphylaxis")
        .expect("the allergies line on page 1");
    let details = pages[0].find("NHS number:").unwrap();
    assert!(
        allergy < details,
        "allergies come before the patient details"
    );
}

#[test]
fn draft_exports_are_marked_in_both_formats() {
    let mut e = complete_encounter();
    e.sign_off = None;
    let meta = fixed_meta(RecordStatus::Draft);
    let text = pdf_text(&pdf::render(&e, &meta, Utc::now()).unwrap());
    assert!(text.contains(DRAFT_MARK), "{text}");
    let b = fhir::bundle(&e, &meta, Utc::now());
    assert!(
        b["entry"][0]["resource"]["title"]
            .as_str()
            .unwrap()
            .contains(DRAFT_MARK)
    );
    assert_eq!(fhir_problems(&b), Vec::<String>::new());
}

#[test]
fn unusual_names_render_and_long_ones_wrap() {
    let mut e = complete_encounter();
    e.patient.given_name = "Zoë-Siân".into();
    e.patient.family_name = "O'Brien-Łukasiewicz Ångström Ñúñez".into();
    e.notes = "x".repeat(30) + " " + &"Lorem ipsum dolor sit amet ".repeat(60);
    let bytes = pdf::render(&e, &fixed_meta(RecordStatus::Completed), Utc::now()).unwrap();
    let text = pdf_text(&bytes);
    assert!(
        text.contains("Zoë-Siân O'Brien-Łukasiewicz Ångström Ñúñez"),
        "{text}"
    );
    // Long text wraps instead of running off the page: no line is absurdly long.
    assert!(text.lines().all(|l| l.chars().count() < 160));
}

#[test]
fn epr_export_writes_both_formats_and_reports_an_unwritable_destination() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::create_with(
        dir.path(),
        "crew",
        "saffron timber quiver meadow",
        KdfParams::FAST_FOR_TESTS,
        migrate::latest_version(),
    )
    .unwrap();
    let e = complete_encounter();
    store
        .complete_and_sign(&e, "A. Paramedic", "PA000001")
        .unwrap();
    drop(store);
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_epr"))
            .arg("--data-dir")
            .arg(dir.path())
            .args(args)
            .env("EPR_PASSPHRASE", "saffron timber quiver meadow")
            .output()
            .unwrap()
    };
    let id = e.id.to_string();
    let fhir_path = dir.path().join("bundle.json");
    let out = run(&[
        "export",
        "--id",
        &id,
        "--format",
        "fhir",
        "--out",
        fhir_path.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let b: Value = serde_json::from_slice(&std::fs::read(&fhir_path).unwrap()).unwrap();
    assert_eq!(fhir_problems(&b), Vec::<String>::new());
    // The clinician's signature in the bundle verifies, over the version-2 payload, with the
    // key and the facts the bundle names.
    let prov = find(&b, "Provenance")[0];
    let ext = prov["extension"].as_array().unwrap();
    let get = |url: &str| {
        ext.iter()
            .find(|x| x["url"] == url)
            .unwrap_or_else(|| panic!("{url} missing"))
    };
    let text = |url: &str| get(url)["valueString"].as_str().unwrap().to_owned();
    assert_eq!(get("urn:ambulance-epr:signature-format")["valueInteger"], 2);
    let saved = chrono::DateTime::parse_from_rfc3339(&text("urn:ambulance-epr:saved-at"))
        .unwrap()
        .with_timezone(&Utc);
    let signed = ambulance_epr::crypto::SignedVersion {
        record_id: e.id,
        revision: Revision::FIRST,
        status: "completed",
        content_sha256: &text("urn:ambulance-epr:content-sha256"),
        saved_at_utc: saved,
        signature_b64: prov["signature"][0]["data"].as_str().unwrap(),
    };
    let key = text("urn:ambulance-epr:signer-public-key");
    let holds = |user_id: uuid::Uuid, tablet_id: uuid::Uuid| {
        signed
            .verify(ambulance_epr::crypto::VersionKey::User {
                user_id,
                public_key_b64: &key,
                tablet_id,
            })
            .is_ok()
    };
    let user = uuid::Uuid::parse_str(&text("urn:ambulance-epr:signer-user-id")).unwrap();
    let tablet = uuid::Uuid::parse_str(&text("urn:ambulance-epr:device-id")).unwrap();
    assert!(holds(user, tablet));
    assert!(!holds(uuid::Uuid::new_v4(), tablet), "another signer");
    assert!(!holds(user, uuid::Uuid::new_v4()), "another tablet");

    let pdf_path = dir.path().join("handover.pdf");
    let out = run(&[
        "export",
        "--id",
        &id,
        "--format",
        "pdf",
        "--out",
        pdf_path.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::read(&pdf_path).unwrap().starts_with(b"%PDF"));
    // A file already at the path is never replaced: the same document again is harmless,
    // a different one (another patient's handover) is refused and kept as it was.
    let first = std::fs::read(&pdf_path).unwrap();
    // The printout is in UK time with the zone named (March: GMT), whatever the device's.
    assert!(
        squash(&pdf_text(&first)).contains("Incident and times (UK time, GMT)"),
        "zone printed"
    );
    std::fs::write(&pdf_path, b"another patient's handover").unwrap();
    let out = run(&[
        "export",
        "--id",
        &id,
        "--format",
        "pdf",
        "--out",
        pdf_path.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("it was not replaced"), "{stderr}");
    assert_eq!(
        std::fs::read(&pdf_path).unwrap(),
        b"another patient's handover"
    );
    assert!(first.starts_with(b"%PDF"));

    let out = run(&[
        "export",
        "--id",
        &id,
        "--format",
        "pdf",
        "--out",
        "/nonexistent-dir/handover.pdf",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot write /nonexistent-dir/handover.pdf"),
        "{stderr}"
    );

    let store = Store::unlock(dir.path(), None, "saffron timber quiver meadow").unwrap();
    let actions: Vec<String> = store
        .audit_for(e.id)
        .unwrap()
        .into_iter()
        .map(|a| a.action)
        .collect();
    assert_eq!(
        actions.iter().filter(|a| *a == "exported").count(),
        2,
        "each export is audited"
    );
}

#[test]
fn epr_export_all_writes_every_signed_record_as_ndjson_with_no_server() {
    let dir = tempfile::tempdir().unwrap();
    let passphrase = "saffron timber quiver meadow";
    let mut store = Store::create_with(
        dir.path(),
        "crew",
        passphrase,
        KdfParams::FAST_FOR_TESTS,
        migrate::latest_version(),
    )
    .unwrap();
    // A few hundred signed records, one of them amended, and drafts that must not go.
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(21);
    let start = Utc::now();
    let mut signed = Vec::new();
    for i in 0..300 {
        let e = ambulance_epr::demo::synthetic_encounter(&mut rng, start, i);
        store
            .complete_and_sign(&e, "A. Paramedic", "PA000001")
            .unwrap();
        signed.push(e);
    }
    let mut amended = signed[7].clone();
    amended.notes = "amended after review".into();
    store
        .amend(&amended, "added a note", "A. Paramedic", "PA000001")
        .unwrap();
    for i in 300..305 {
        let e = ambulance_epr::demo::synthetic_encounter(&mut rng, start, i);
        store.save_draft(&e).unwrap();
    }
    drop(store);

    let out = dir.path().join("export");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_epr"))
            .arg("--data-dir")
            .arg(dir.path())
            .args(args)
            .env("EPR_PASSPHRASE", passphrase)
            .output()
            .unwrap()
    };
    let args = [
        "export",
        "--all",
        "--format",
        "fhir-ndjson",
        "--out",
        out.to_str().unwrap(),
    ];
    let o = run(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let lines = std::fs::read_to_string(out.join("Bundle.ndjson")).unwrap();
    let bundles: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(bundles.len(), 300, "every signed record once, no drafts");
    for b in &bundles {
        assert_eq!(fhir_problems(b), Vec::<String>::new());
    }
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["output"][0]["count"], 300);
    assert_eq!(manifest["output"][0]["url"], "Bundle.ndjson");
    // The amended record goes at its amended revision.
    let amended_bundle = bundles
        .iter()
        .find(|b| {
            find(b, "Provenance").iter().any(|p| {
                p["extension"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|x| x["url"] == "urn:ambulance-epr:revision" && x["valueInteger"] == 2)
            })
        })
        .expect("the amended record, at revision 2");
    assert!(amended_bundle.to_string().contains("amended after review"));

    // A second export into the same directory is refused and changes nothing.
    let o = run(&args);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not empty"));
    assert_eq!(
        std::fs::read_to_string(out.join("Bundle.ndjson")).unwrap(),
        lines
    );
}

/// A refusal by a patient who was first thought to lack capacity and then found to have it,
/// and a patient who lacks capacity, referred in their best interests.
fn non_conveyed(lacks_capacity: bool) -> ambulance_epr::model::Encounter {
    use ambulance_epr::model::Outcome;
    use ambulance_epr::model::non_conveyance::*;
    let mut e = complete_encounter();
    let outcome = if lacks_capacity {
        Outcome::Referred {
            to: "Urgent community response".into(),
        }
    } else {
        Outcome::Declined
    };
    let mut n = ambulance_epr::demo::whole_non_conveyance(&outcome);
    if lacks_capacity {
        n.capacity = CapacityAssessment {
            impairment: Some(true),
            can_understand: Some(false),
            can_retain: Some(true),
            can_weigh: Some(false),
            can_communicate: Some(true),
            best_interests: "Stays home with carer; community team to visit".into(),
        };
        n.consent = Some(Consent::LacksCapacity);
        n.referral_reference = "UCR-4411".into();
        n.signature = DrawnSignature::default();
        n.no_signature_reason = "Patient lacks capacity; carer declined".into();
    }
    e.outcome = Some(outcome);
    e.non_conveyance = Some(n);
    assert_eq!(ambulance_epr::model::missing_items(&e), vec![]);
    e
}

#[test]
fn a_non_conveyance_prints_its_decision_capacity_advice_and_signature() {
    let e = non_conveyed(false);
    let bytes = pdf::render(&e, &fixed_meta(RecordStatus::Completed), Utc::now()).unwrap();
    let text = squash(&pdf_text(&bytes));
    for expected in [
        "Non-conveyance",
        "Decision: Refused against advice",
        "Mental capacity: Has capacity for this decision (impairment of mind or brain: no)",
        "Consent: Refused advice",
        "Risks explained: Risks of not attending hospital explained",
        "Worsening advice to patient: Call 999 if symptoms return or worsen",
        "Signed by the patient (Demo Patient)",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in {text}");
    }

    let e = non_conveyed(true);
    let bytes = pdf::render(&e, &fixed_meta(RecordStatus::Completed), Utc::now()).unwrap();
    let text = squash(&pdf_text(&bytes));
    for expected in [
        "Decision: Referral",
        "Mental capacity: Lacks capacity for this decision (impairment of mind or brain: yes)",
        "Understand: no; retain: yes; use or weigh: no; communicate: yes",
        "Best interests: Stays home with carer; community team to visit",
        "Consent: Cannot consent (lacks capacity)",
        "Referred to: Urgent community response (reference UCR-4411)",
        "Not signed: Patient lacks capacity; carer declined",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in {text}");
    }
    // A conveyed record has no such section.
    let bytes = pdf::render(
        &complete_encounter(),
        &fixed_meta(RecordStatus::Completed),
        Utc::now(),
    )
    .unwrap();
    assert!(!pdf_text(&bytes).contains("Non-conveyance"));
}

#[test]
fn a_non_conveyance_is_one_observation_in_the_fhir_document_and_a_section_of_it() {
    let e = non_conveyed(true);
    let b = fhir::bundle(&e, &fixed_meta(RecordStatus::Completed), Utc::now());
    assert_eq!(fhir_problems(&b), Vec::<String>::new());
    let observation = find(&b, "Observation")
        .into_iter()
        .find(|o| o["code"]["text"] == "Non-conveyance assessment")
        .expect("the non-conveyance observation");
    assert_eq!(observation["valueCodeableConcept"]["text"], "Referral");
    assert_eq!(observation["category"][0]["coding"][0]["code"], "survey");
    let component = |name: &str| {
        observation["component"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["code"]["text"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no component {name}"))
    };
    assert_eq!(
        component("Mental capacity")["valueCodeableConcept"]["text"],
        "Lacks capacity for this decision"
    );
    assert_eq!(
        component("Impairment of mind or brain")["valueBoolean"],
        true
    );
    assert_eq!(
        component("Can use or weigh it to make the decision")["valueBoolean"],
        false
    );
    assert_eq!(
        component("Referred to")["valueString"],
        "Urgent community response"
    );
    assert_eq!(component("Referral reference")["valueString"], "UCR-4411");
    let composition = &b["entry"][0]["resource"];
    let section = composition["section"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["title"] == "Non-conveyance")
        .expect("a Non-conveyance section");
    assert_eq!(
        section["entry"][0]["reference"],
        format!("urn:uuid:{}", observation["id"].as_str().unwrap())
    );
    assert!(
        section["text"]["div"]
            .as_str()
            .unwrap()
            .contains("Best interests: Stays home with carer")
    );
    // Conveyed: none.
    let b = fhir::bundle(
        &complete_encounter(),
        &fixed_meta(RecordStatus::Completed),
        Utc::now(),
    );
    assert!(
        find(&b, "Observation")
            .iter()
            .all(|o| o["code"]["text"] != "Non-conveyance assessment")
    );
}

#[test]
fn an_advance_decision_is_said_at_handover_printed_and_coded_as_seen_or_not() {
    use ambulance_epr::model::advance_decisions::*;
    let mut e = complete_encounter();
    e.history.advance_decisions = AdvanceDecisions {
        status: Some(AdvanceStatus::Seen),
        document: Some(AdvanceDocument::Dnacpr),
        cpr: Some(CprRecommendation::DoNotAttemptCpr),
        location: "Care home file".into(),
        recommendation: "Comfort care".into(),
        ..AdvanceDecisions::default()
    };
    assert_eq!(ambulance_epr::model::missing_items(&e), vec![]);
    let said = "DNACPR seen (Care home file): NOT for CPR; Comfort care";
    let information = atmist(&e)
        .into_iter()
        .find(|l| l.heading == "Injuries or information")
        .unwrap();
    assert!(information.text.contains(said), "{}", information.text);
    let bytes = pdf::render(&e, &fixed_meta(RecordStatus::Completed), Utc::now()).unwrap();
    assert!(squash(&pdf_text(&bytes)).contains(said));
    let b = fhir::bundle(&e, &fixed_meta(RecordStatus::Completed), Utc::now());
    assert_eq!(fhir_problems(&b), Vec::<String>::new());
    let observation = find(&b, "Observation")
        .into_iter()
        .find(|o| o["code"]["text"] == "Advance decisions (DNACPR, ReSPECT)")
        .expect("the advance decisions observation");
    assert_eq!(observation["valueString"], said);
    let sections = b["entry"][0]["resource"]["section"].as_array().unwrap();
    assert!(sections.iter().any(|s| s["title"] == "Advance decisions"));

    // Only told of: the handover says it was not seen.
    e.history.advance_decisions.status = Some(AdvanceStatus::ReportedNotSeen);
    let information = atmist(&e)
        .into_iter()
        .find(|l| l.heading == "Injuries or information")
        .unwrap();
    assert!(
        information
            .text
            .contains("DNACPR reported, NOT SEEN (Care home file)"),
        "{}",
        information.text
    );

    // Not asked: no section, so nothing reads as "none known".
    let b = fhir::bundle(
        &complete_encounter(),
        &fixed_meta(RecordStatus::Completed),
        Utc::now(),
    );
    let sections = b["entry"][0]["resource"]["section"].as_array().unwrap();
    assert!(!sections.iter().any(|s| s["title"] == "Advance decisions"));
}

/// The reference record as a stroke: BE-FAST positive, last known well at 08:30 UTC, taken
/// to a hyperacute stroke unit pre-alerted at 10:44, with a 12-lead ECG in atrial
/// fibrillation.
fn stroke_record() -> ambulance_epr::model::Encounter {
    use ambulance_epr::model::Presentation;
    use ambulance_epr::model::ecg::{Ecg12Lead, EcgRhythm};
    use ambulance_epr::model::stroke::*;
    let mut e = complete_encounter();
    let at = |h, m| Utc.with_ymd_and_hms(2026, 3, 1, h, m, 0).unwrap();
    e.history.presenting_complaint = "Left arm weakness and slurred speech".into();
    e.assessment.set(Presentation::Stroke, true);
    e.assessment.stroke = Some(StrokeAssessment {
        balance: Some(Finding::Normal),
        eyes: Some(Finding::Normal),
        face: Some(Finding::Abnormal),
        arms: Some(Finding::Abnormal),
        speech: Some(Finding::Abnormal),
        onset: Some(OnsetKind::LastKnownWell),
        onset_utc: Some(at(8, 30)),
        pathway: Some(StrokePathway::HyperacuteStrokeUnit),
        pre_alert_utc: Some(at(10, 44)),
    });
    e.assessment.ecgs.push(Ecg12Lead {
        taken_utc: Some(at(10, 16)),
        rhythm: Some(EcgRhythm::AtrialFibrillation),
        stemi: Some(false),
        transmitted: Some(false),
        ..Ecg12Lead::default()
    });
    e
}

#[test]
fn a_stroke_says_its_onset_as_t_prints_its_findings_and_codes_its_ecg() {
    let e = stroke_record();
    assert_eq!(
        e.incident.times.call_connected_utc.map(|t| t.date_naive()),
        Some(chrono::NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()),
        "the reference record's day"
    );
    assert_eq!(ambulance_epr::model::missing_items(&e), vec![]);
    let lines = atmist(&e);
    let time = lines.iter().find(|l| l.letter == "T").unwrap();
    assert_eq!(time.text, "Last known well 08:30; Call connected 10:00");
    let signs = lines.iter().find(|l| l.heading == "Signs").unwrap();
    assert!(
        signs.text.contains(
            "BE-FAST positive: face, arm, speech; 12-lead at 10:16: atrial fibrillation, no STEMI"
        ),
        "{}",
        signs.text
    );

    let bytes = pdf::render(&e, &fixed_meta(RecordStatus::Completed), Utc::now()).unwrap();
    let text = squash(&pdf_text(&bytes));
    for said in [
        "Stroke / TIA",
        "BE-FAST positive: face, arm, speech",
        "Last known well 01/03 08:30",
        "Pathway: Hyperacute stroke unit, pre-alerted 01/03 10:44",
        "12-lead at 01/03 10:16: atrial fibrillation, no STEMI",
    ] {
        assert!(text.contains(said), "the PDF says {said:?}");
    }

    let b = fhir::bundle(&e, &fixed_meta(RecordStatus::Completed), Utc::now());
    assert_eq!(fhir_problems(&b), Vec::<String>::new());
    let observations = find(&b, "Observation");
    let ecg = observations
        .iter()
        .find(|o| o["code"]["coding"][0]["code"] == "268400002")
        .expect("the ECG coded as a 12-lead ECG (SNOMED CT)");
    assert_eq!(ecg["code"]["coding"][0]["system"], "http://snomed.info/sct");
    assert_eq!(ecg["valueCodeableConcept"]["coding"][0]["code"], "49436004");
    assert_eq!(ecg["effectiveDateTime"], "2026-03-01T10:16:00Z");
    assert!(
        ecg["component"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["code"]["text"] == "STEMI criteria met" && c["valueBoolean"] == false)
    );
    let stroke = observations
        .iter()
        .find(|o| o["code"]["text"] == "Stroke assessment (BE-FAST)")
        .expect("the stroke observation");
    assert_eq!(stroke["valueString"], "BE-FAST positive: face, arm, speech");
    assert!(
        stroke["component"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["code"]["text"] == "Last known well"
                && c["valueDateTime"] == "2026-03-01T08:30:00Z")
    );
    let sections = b["entry"][0]["resource"]["section"].as_array().unwrap();
    let section = sections
        .iter()
        .find(|s| s["title"] == "Presentation and assessments")
        .expect("the presentation section");
    assert_eq!(section["entry"].as_array().map(Vec::len), Some(2));
    assert!(
        section["text"]["div"]
            .as_str()
            .unwrap()
            .contains("Presentation: Stroke / TIA")
    );

    // Without a presentation picked there is no such section and T is the call.
    let b = fhir::bundle(
        &complete_encounter(),
        &fixed_meta(RecordStatus::Completed),
        Utc::now(),
    );
    let sections = b["entry"][0]["resource"]["section"].as_array().unwrap();
    assert!(
        !sections
            .iter()
            .any(|s| s["title"] == "Presentation and assessments")
    );
}

#[test]
fn stroke_and_chest_pain_cannot_be_signed_without_their_items() {
    use ambulance_epr::model::{AssessmentPart, Field, Presentation, missing_items};
    let mut e = stroke_record();
    let stroke = e.assessment.stroke.as_mut().unwrap();
    stroke.onset_utc = None;
    stroke.pre_alert_utc = None;
    for o in &mut e.observations {
        o.glucose_mmol_per_l = None;
    }
    let missing: Vec<_> = missing_items(&e)
        .into_iter()
        .filter(|m| m.field == Field::Assessment(AssessmentPart::Stroke))
        .map(|m| m.label)
        .collect();
    assert_eq!(
        missing,
        [
            "Stroke: onset or last-known-well time",
            "Stroke: blood glucose (in an observation set)",
            "Stroke: time the stroke unit was pre-alerted",
        ]
    );

    let mut e = complete_encounter();
    e.assessment.set(Presentation::ChestPain, true);
    let labels: Vec<_> = missing_items(&e).into_iter().map(|m| m.label).collect();
    assert_eq!(labels, ["Chest pain: a 12-lead ECG, or why none was taken"]);
    e.assessment.ecg_not_done_reason = "Patient declined".into();
    assert_eq!(missing_items(&e), vec![]);
    let text = squash(&pdf_text(
        &pdf::render(&e, &fixed_meta(RecordStatus::Completed), Utc::now()).unwrap(),
    ));
    assert!(text.contains("Not taken: Patient declined"));
}

#[test]
fn an_arrest_says_its_collapse_first_lists_its_shocks_and_prints_its_outcome() {
    use ambulance_epr::model::arrest::*;
    use ambulance_epr::model::{AssessmentPart, Field, Presentation, missing_items};
    let at = |h, m| Utc.with_ymd_and_hms(2026, 3, 1, h, m, 0).unwrap();
    let mut e = complete_encounter();
    e.history.presenting_complaint = "Cardiac arrest".into();
    e.assessment.set(Presentation::CardiacArrest, true);
    let missing: Vec<_> = missing_items(&e)
        .into_iter()
        .filter(|m| m.field == Field::Assessment(AssessmentPart::Arrest))
        .map(|m| m.label)
        .collect();
    assert!(
        missing.contains(&"Cardiac arrest: first rhythm"),
        "{missing:?}"
    );
    assert!(missing.contains(&"Cardiac arrest: time of collapse"));
    e.assessment.arrest = Some(CardiacArrest {
        witnessed: Some(Witness::Bystander),
        bystander_cpr: Some(true),
        collapse_utc: Some(at(9, 57)),
        cpr_started_utc: Some(at(9, 58)),
        first_rhythm: Some(ArrestRhythm::Vf),
        shocks: vec![
            Shock {
                at_utc: at(10, 15),
                energy_joules: 150,
            },
            Shock {
                at_utc: at(10, 17),
                energy_joules: 200,
            },
        ],
        airway: Some(ArrestAirway::Supraglottic),
        end: Some(ArrestEnd::Rosc),
        rosc_utc: Some(at(10, 22)),
        death_verified_utc: None,
    });
    assert_eq!(missing_items(&e), vec![]);
    let summary = "Cardiac arrest at 09:57, bystander witnessed, bystander CPR, first rhythm VF, \
                   2 shocks, supraglottic airway, ROSC 10:22";
    let lines = atmist(&e);
    assert_eq!(
        lines[1].text, "Collapse 09:57; Call connected 10:00",
        "T says the collapse first"
    );
    let signs = lines.iter().find(|l| l.heading == "Signs").unwrap();
    assert!(signs.text.starts_with(summary), "{}", signs.text);
    let treatment = lines.iter().find(|l| l.heading == "Treatment").unwrap();
    assert!(
        treatment
            .text
            .contains("Shock 150 J at 10:15; 12-lead ECG at 10:16; Shock 200 J at 10:17"),
        "in time order: {}",
        treatment.text
    );

    let text = squash(&pdf_text(
        &pdf::render(&e, &fixed_meta(RecordStatus::Completed), Utc::now()).unwrap(),
    ));
    assert!(text.contains("Cardiac arrest at 01/03 09:57, bystander witnessed"));
    assert!(text.contains("ROSC 01/03 10:22"));
    assert!(text.contains("Shock 200 J at 01/03 10:17"));

    let b = fhir::bundle(&e, &fixed_meta(RecordStatus::Completed), Utc::now());
    assert_eq!(fhir_problems(&b), Vec::<String>::new());
    let observation = find(&b, "Observation")
        .into_iter()
        .find(|o| o["code"]["text"] == "Cardiac arrest (Utstein core)")
        .expect("the arrest observation");
    let components = observation["component"].as_array().unwrap();
    assert!(
        components
            .iter()
            .any(|c| c["code"]["text"] == "ROSC" && c["valueDateTime"] == "2026-03-01T10:22:00Z")
    );
    let shocks: Vec<_> = components
        .iter()
        .filter_map(|c| c["valueQuantity"]["value"].as_f64())
        .collect();
    assert_eq!(shocks, [150.0, 200.0]);
    assert_eq!(observation["effectiveDateTime"], "2026-03-01T09:57:00Z");
}

#[test]
fn a_sepsis_screen_and_a_fall_are_said_at_handover_printed_and_in_the_fhir_document() {
    use ambulance_epr::model::falls::*;
    use ambulance_epr::model::sepsis::*;
    use ambulance_epr::model::{AssessmentPart, Field, Presentation, missing_items};
    let at = |h, m| Utc.with_ymd_and_hms(2026, 3, 1, h, m, 0).unwrap();
    let mut e = complete_encounter();
    e.assessment.set(Presentation::Sepsis, true);
    e.assessment.set(Presentation::Fall, true);
    let parts: HashSet<_> = missing_items(&e).into_iter().map(|m| m.field).collect();
    assert!(parts.contains(&Field::Assessment(AssessmentPart::Sepsis)));
    assert!(parts.contains(&Field::Assessment(AssessmentPart::Fall)));
    let mut screen = SepsisScreen {
        screened_utc: Some(at(10, 20)),
        source: Some(SepsisSource::Chest),
        pathway: Some(SepsisPathway::RedFlagPreAlert),
        pre_alert_utc: Some(at(10, 40)),
        ..SepsisScreen::default()
    };
    screen.set_flag(RedFlag::AlteredMentalState, true);
    e.assessment.sepsis = Some(screen);
    e.assessment.fall = Some(FallAssessment {
        frailty_scale: Some(6),
        time_on_floor: Some(TimeOnFloor::OneHourOrMore),
        head_injury: Some(true),
        anticoagulated: Some(true),
        mobility: Some(Mobility::UnableToWeightBear),
        referral: Some(FallsReferral::NoneNeeded),
    });
    assert_eq!(missing_items(&e), vec![]);
    let news2 = e.news2_for(&e.observations[0]).total().unwrap();
    let sepsis = format!(
        "Sepsis screen 10:20; source chest; NEWS2 {news2} at screening; RED FLAGS: new altered \
         mental state; pre-alerted 10:40"
    );
    let fall = "Fall: CFS 6 (living with moderate frailty), LONG LIE (an hour or more), HEAD \
                INJURY ON ANTICOAGULANT, unable to weight-bear";
    let lines = atmist(&e);
    let signs = lines.iter().find(|l| l.heading == "Signs").unwrap();
    assert!(signs.text.ends_with(&sepsis), "{}", signs.text);
    let information = lines
        .iter()
        .find(|l| l.heading == "Injuries or information")
        .unwrap();
    assert!(information.text.starts_with(fall), "{}", information.text);

    let text = squash(&pdf_text(
        &pdf::render(&e, &fixed_meta(RecordStatus::Completed), Utc::now()).unwrap(),
    ));
    assert!(text.contains("Sepsis screen 01/03 10:20; source chest"));
    assert!(text.contains(fall));

    let b = fhir::bundle(&e, &fixed_meta(RecordStatus::Completed), Utc::now());
    assert_eq!(fhir_problems(&b), Vec::<String>::new());
    let observations = find(&b, "Observation");
    let screen = observations
        .iter()
        .find(|o| o["code"]["text"] == "Sepsis screen")
        .expect("the sepsis observation");
    assert_eq!(screen["effectiveDateTime"], "2026-03-01T10:20:00Z");
    assert!(screen["component"].as_array().unwrap().iter().any(|c| {
        c["code"]["text"] == "NEWS2 at screening" && c["valueInteger"] == u64::from(news2)
    }));
    let fall = observations
        .iter()
        .find(|o| o["code"]["text"] == "Fall and frailty assessment")
        .expect("the fall observation");
    assert!(
        fall["component"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| { c["code"]["text"] == "Clinical Frailty Scale" && c["valueInteger"] == 6 })
    );
}

#[test]
fn trauma_says_its_mechanism_and_haemorrhage_first_and_its_tourniquet_time() {
    use ambulance_epr::model::trauma::*;
    use ambulance_epr::model::{AssessmentPart, Field, Presentation, missing_items};
    let at = |h, m| Utc.with_ymd_and_hms(2026, 3, 1, h, m, 0).unwrap();
    let mut e = complete_encounter();
    e.history.presenting_complaint = "Stab wound".into();
    e.assessment.set(Presentation::Trauma, true);
    assert!(
        missing_items(&e)
            .iter()
            .any(|m| m.field == Field::Assessment(AssessmentPart::Trauma))
    );
    let mut trauma = TraumaAssessment {
        mechanism: Some(Mechanism::Stabbing),
        mechanism_details: "Single wound".into(),
        catastrophic_haemorrhage: Some(true),
        haemorrhage_control: Some(HaemorrhageControl::Tourniquet),
        tourniquet_utc: Some(at(10, 14)),
        triage: Some(TraumaTriage::MajorTraumaCentre),
        ..TraumaAssessment::default()
    };
    trauma.add_injury(Injury {
        region: BodyRegion::LeftLeg,
        kind: InjuryKind::Penetrating,
    });
    e.assessment.trauma = Some(trauma);
    assert_eq!(missing_items(&e), vec![]);
    let lines = atmist(&e);
    assert_eq!(lines[2].text, "Stabbing: Single wound; Stab wound");
    assert!(
        lines[3].text.starts_with(
            "CATASTROPHIC HAEMORRHAGE, tourniquet on at 10:14; injuries: Left leg: penetrating \
             wound; Triage positive: major trauma centre"
        ),
        "{}",
        lines[3].text
    );
    let treatment = lines.iter().find(|l| l.heading == "Treatment").unwrap();
    assert!(
        treatment
            .text
            .starts_with("Tourniquet at 10:14; 12-lead ECG at 10:16"),
        "{}",
        treatment.text
    );
    let text = squash(&pdf_text(
        &pdf::render(&e, &fixed_meta(RecordStatus::Completed), Utc::now()).unwrap(),
    ));
    assert!(text.contains("Mechanism: Stabbing: Single wound"));
    assert!(text.contains("tourniquet on at 01/03 10:14"));
    let b = fhir::bundle(&e, &fixed_meta(RecordStatus::Completed), Utc::now());
    assert_eq!(fhir_problems(&b), Vec::<String>::new());
    let observation = find(&b, "Observation")
        .into_iter()
        .find(|o| o["code"]["text"] == "Trauma assessment")
        .expect("the trauma observation");
    let components = observation["component"].as_array().unwrap();
    assert!(components.iter().any(|c| c["code"]["text"] == "Left leg"
        && c["valueCodeableConcept"]["text"] == "Penetrating wound"));
    assert!(
        components
            .iter()
            .any(|c| c["code"]["text"] == "Tourniquet on"
                && c["valueDateTime"] == "2026-03-01T10:14:00Z")
    );
}

#[test]
fn a_safeguarding_referral_is_printed_but_only_its_fact_is_said_at_handover() {
    use ambulance_epr::model::safeguarding::*;
    let mut e = complete_encounter();
    e.history.safeguarding = Safeguarding {
        concern_raised: true,
        details: "Bruises of different ages".into(),
        subject: Some(Subject::Adult),
        category: Some(Category::DomesticAbuse),
        referred_to: "Police".into(),
        reference: "SG-0042".into(),
        consent: Some(ReferralConsent::Given),
        no_consent_reason: String::new(),
    };
    assert_eq!(ambulance_epr::model::missing_items(&e), vec![]);
    let information = atmist(&e)
        .into_iter()
        .find(|l| l.heading == "Injuries or information")
        .unwrap();
    assert!(
        information
            .text
            .ends_with("safeguarding concern raised and referred"),
        "{}",
        information.text
    );
    assert!(!information.text.contains("domestic"));
    let text = squash(&pdf_text(
        &pdf::render(&e, &fixed_meta(RecordStatus::Completed), Utc::now()).unwrap(),
    ));
    assert!(text.contains(
        "Safeguarding concern (adult, domestic abuse): referred to Police, ref SG-0042, consent given"
    ));
    assert!(text.contains("Bruises of different ages"));
}

#[test]
fn a_childs_months_and_weight_and_a_pregnancys_findings_are_said_and_coded() {
    use ambulance_epr::model::maternity::*;
    use ambulance_epr::model::paediatric::*;
    use ambulance_epr::model::{Pregnancy, Presentation, missing_items};
    let mut child = complete_encounter();
    // Fourteen months old when the record was made (1 March 2026).
    child.patient.date_of_birth = chrono::NaiveDate::from_ymd_opt(2025, 1, 1);
    child.assessment.set(Presentation::Paediatric, true);
    let labels: Vec<_> = missing_items(&child).into_iter().map(|m| m.label).collect();
    assert_eq!(
        labels,
        ["Paediatric: weight", "Paediatric: how the weight was found"]
    );
    child.assessment.paediatric = Some(PaediatricAssessment {
        weight_kg: Some(10.5),
        weight_method: Some(WeightMethod::Measured),
    });
    assert_eq!(missing_items(&child), vec![]);
    assert_eq!(
        atmist(&child)[0].text,
        "14 months, male, 10.5 kg (measured)"
    );
    let text = squash(&pdf_text(
        &pdf::render(&child, &fixed_meta(RecordStatus::Completed), Utc::now()).unwrap(),
    ));
    assert!(text.contains("Weight: 10.5 kg (measured)"));
    let b = fhir::bundle(&child, &fixed_meta(RecordStatus::Completed), Utc::now());
    assert_eq!(fhir_problems(&b), Vec::<String>::new());
    let weight = find(&b, "Observation")
        .into_iter()
        .find(|o| o["code"]["coding"][0]["code"] == "29463-7")
        .expect("the body weight, LOINC 29463-7");
    assert_eq!(weight["valueQuantity"]["value"], 10.5);
    assert_eq!(weight["valueQuantity"]["code"], "kg");

    let mut mother = complete_encounter();
    mother.patient.sex = Some(ambulance_epr::model::Sex::Female);
    mother.assessment.set(Presentation::Maternity, true);
    let mut m = MaternityAssessment {
        maternity_unit_contacted: Some(true),
        ..MaternityAssessment::default()
    };
    m.set(MaternityFinding::VaginalBleeding, true);
    mother.assessment.maternity = Some(m);
    let labels: Vec<_> = missing_items(&mother)
        .into_iter()
        .map(|m| m.label)
        .collect();
    assert_eq!(
        labels,
        ["Maternity: pregnant with gestation, or post-partum (under Patient)"]
    );
    mother.patient.pregnancy = Some(Pregnancy::Pregnant {
        gestation_weeks: Some(30),
    });
    assert_eq!(missing_items(&mother), vec![]);
    let information = atmist(&mother)
        .into_iter()
        .find(|l| l.heading == "Injuries or information")
        .unwrap();
    assert!(
        information
            .text
            .starts_with("Maternity: vaginal bleeding; maternity unit contacted"),
        "{}",
        information.text
    );
    let b = fhir::bundle(&mother, &fixed_meta(RecordStatus::Completed), Utc::now());
    assert_eq!(fhir_problems(&b), Vec::<String>::new());
    assert!(
        find(&b, "Observation")
            .iter()
            .any(|o| o["code"]["text"] == "Maternity assessment")
    );
}

#[test]
fn a_copied_observation_set_says_so_in_the_fhir_document_and_the_pdf() {
    let mut e = complete_encounter();
    let mut copied = e.observations[1].clone();
    copied.taken_at_utc = Utc.with_ymd_and_hms(2026, 3, 1, 10, 40, 0).unwrap();
    copied.copied_from_utc = Some(e.observations[1].taken_at_utc);
    e.observations.push(copied);
    let b = fhir::bundle(&e, &fixed_meta(RecordStatus::Completed), Utc::now());
    assert_eq!(fhir_problems(&b), Vec::<String>::new());
    let notes: Vec<_> = find(&b, "Observation")
        .into_iter()
        .filter(|o| o["effectiveDateTime"] == "2026-03-01T10:40:00Z")
        .map(|o| o["note"][0]["text"].as_str().unwrap_or("").to_owned())
        .collect();
    assert!(!notes.is_empty());
    assert!(
        notes
            .iter()
            .all(|n| n.contains("copied from the set taken at 2026-03-01T10:30:00Z"))
    );
    let text = squash(&pdf_text(
        &pdf::render(&e, &fixed_meta(RecordStatus::Completed), Utc::now()).unwrap(),
    ));
    assert!(text.contains("values copied from an earlier set"));
}

#[test]
fn observations_beyond_the_vital_signs_are_printed_and_in_the_fhir_document() {
    use ambulance_epr::model::ecg::EcgRhythm;
    use ambulance_epr::model::observations::*;
    let mut e = complete_encounter();
    let set = &mut e.observations[1];
    set.pupils = Some(Pupils {
        left_mm: PupilMm::new(4).ok(),
        right_mm: PupilMm::new(4).ok(),
        reaction: Some(PupilReaction::Both),
    });
    set.capillary_refill_s = CapillaryRefillSeconds::new(2).ok();
    set.etco2_kpa = Etco2Kpa::new(4.8).ok();
    set.peak_flow_l_per_min = PeakFlowLitresPerMin::new(350).ok();
    set.rhythm = Some(EcgRhythm::AtrialFibrillation);
    assert!(PupilMm::new(10).is_err(), "pupils are 1 to 9 mm");
    let said = "pupils L 4 R 4 mm, both react, CRT 2 s, ETCO2 4.8 kPa, PEFR 350 L/min, atrial fibrillation";
    assert!(observation_summary(&e.observations[1]).ends_with(said));
    let text = squash(&pdf_text(
        &pdf::render(&e, &fixed_meta(RecordStatus::Completed), Utc::now()).unwrap(),
    ));
    assert!(text.contains(said));
    let b = fhir::bundle(&e, &fixed_meta(RecordStatus::Completed), Utc::now());
    assert_eq!(fhir_problems(&b), Vec::<String>::new());
    let observations = find(&b, "Observation");
    let by_text = |t: &str| {
        observations
            .iter()
            .find(|o| o["code"]["text"] == t)
            .unwrap_or_else(|| panic!("{t}"))
    };
    assert_eq!(by_text("End-tidal CO2")["valueQuantity"]["value"], 4.8);
    assert_eq!(
        by_text("Capillary refill time")["valueQuantity"]["code"],
        "s"
    );
    assert_eq!(
        by_text("Cardiac rhythm on the monitor")["valueCodeableConcept"]["coding"][0]["code"],
        "49436004"
    );
    assert_eq!(
        by_text("Pupils")["valueString"],
        "pupils L 4 R 4 mm, both react"
    );
}

#[test]
fn breathing_difficulty_and_a_mental_health_crisis_are_said_at_handover_printed_and_in_fhir() {
    use ambulance_epr::model::breathing::*;
    use ambulance_epr::model::mental_health::*;
    use ambulance_epr::model::{AssessmentPart, Field, Presentation, missing_items};
    let mut e = complete_encounter();
    e.assessment.set(Presentation::BreathingDifficulty, true);
    e.assessment.set(Presentation::MentalHealth, true);
    let parts: HashSet<_> = missing_items(&e).into_iter().map(|m| m.field).collect();
    assert!(parts.contains(&Field::Assessment(AssessmentPart::Breathing)));
    assert!(parts.contains(&Field::Assessment(AssessmentPart::MentalHealth)));
    let mut breathing = BreathingAssessment {
        speech: Some(Speech::SingleWords),
        wheeze: Some(false),
        accessory_muscles: Some(true),
        known_condition: Some(KnownCondition::Asthma),
        ..BreathingAssessment::default()
    };
    breathing.set_threat(LifeThreat::SilentChest, true);
    e.assessment.breathing = Some(breathing);
    e.assessment.mental_health = Some(MentalHealthAssessment {
        thoughts_of_suicide: Some(true),
        self_harm: Some(true),
        risk_to_others: Some(false),
        legal_status: Some(LegalStatus::Section136),
        police_present: Some(true),
        contacted: Some(MentalHealthContact::ControlRoomClinician),
    });
    assert_eq!(missing_items(&e), vec![]);
    let breathing = "LIFE-THREATENING: silent chest. Breathing: speaking in single words, no \
                     wheeze, using accessory muscles, known asthma";
    let mental = "Mental health: thoughts of suicide, self-harm; no risk to others; Section 136; \
                  police present; control room mental health clinician contacted";
    let lines = atmist(&e);
    let information = lines
        .iter()
        .find(|l| l.heading == "Injuries or information")
        .unwrap();
    assert!(
        information
            .text
            .starts_with(&format!("{breathing}; {mental}")),
        "{}",
        information.text
    );

    let text = squash(&pdf_text(
        &pdf::render(&e, &fixed_meta(RecordStatus::Completed), Utc::now()).unwrap(),
    ));
    assert!(text.contains(breathing), "{text}");
    assert!(text.contains(mental), "{text}");

    let b = fhir::bundle(&e, &fixed_meta(RecordStatus::Completed), Utc::now());
    assert_eq!(fhir_problems(&b), Vec::<String>::new());
    let observations = find(&b, "Observation");
    let seen = observations
        .iter()
        .find(|o| o["code"]["text"] == "Breathing difficulty assessment")
        .expect("the breathing observation");
    assert!(seen["component"].as_array().unwrap().iter().any(|c| {
        c["code"]["text"] == "Life-threatening feature"
            && c["valueCodeableConcept"]["text"] == "Silent chest"
    }));
    let mh = observations
        .iter()
        .find(|o| o["code"]["text"] == "Mental health assessment")
        .expect("the mental health observation");
    assert!(
        mh["component"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| { c["code"]["text"] == "Thoughts of suicide" && c["valueBoolean"] == true })
    );
    assert_eq!(mh["valueString"], mental);
}
