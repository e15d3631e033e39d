//! The log at scale: ingests N signed versions (default 100,000) straight into a SQLite
//! server store, each batch appended to the log in its transaction, then times
//! `admin::verify` over all of them (every leaf re-hashed, the tree recomputed from the leaves,
//! every document re-hashed and every signature checked against the logged key), and prints
//! proof sizes for a log of that size.
//!
//! Run with `cargo bench --bench verify_log`. Knobs: `EPR_BENCH_VERSIONS` (100000),
//! `EPR_BENCH_BATCH_SIZE` (500), `EPR_BENCH_SIGNATURE_FORMAT` (2: each version signed by a
//! clinician's registered key over the JCS payload; 1: by the device key, as older tablets). Without `--bench` in argv (as under `cargo test`) it returns
//! at once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use ambulance_epr::crypto::{DeviceSigningKey, UserSigner, content_sha256_hex, signing_payload};
use ambulance_epr::demo::synthetic_encounter;
use ambulance_epr::model::{RecordStatus, Revision};
use ambulance_epr::protocol::{PushItem, SignerRegistration};
use ambulance_epr::server::ingest::{PushKeys, check_item};
use ambulance_epr::server::log_key::LogSigner;
use ambulance_epr::server::storage::{DeviceIdentity, NewDevice};
use ambulance_epr::server::{admin, open_storage};
use chrono::{TimeZone, Utc};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let total = knob("EPR_BENCH_VERSIONS", 100_000);
    let batch_size = knob("EPR_BENCH_BATCH_SIZE", 500).max(1);
    let format = knob("EPR_BENCH_SIGNATURE_FORMAT", 2);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(run(total, batch_size, format));
}

async fn run(total: usize, batch_size: usize, format: usize) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("server.db").display());
    let storage = open_storage(&url).await.unwrap();
    let signer = LogSigner::generate(Some("bench/log")).unwrap();

    let key = DeviceSigningKey::generate().unwrap();
    let code = admin::create_enrolment_code(storage.as_ref(), "Bench tablet")
        .await
        .unwrap();
    let device_id = uuid::Uuid::now_v7();
    let token = "bench-token";
    storage
        .enroll_device(
            &NewDevice {
                code_hash: ambulance_epr::crypto::token_hash_hex(&admin::normalise_enrolment_code(
                    &code.code,
                )),
                device_id,
                public_key_b64: key.public_key_base64(),
                token_hash: ambulance_epr::crypto::token_hash_hex(token),
            },
            Utc::now(),
        )
        .await
        .unwrap();
    let device = DeviceIdentity {
        device_id,
        device_name: "Bench tablet".into(),
        public_key_b64: key.public_key_base64(),
        revoked: false,
        last_seen_utc: None,
    };
    // The clinician who signs (format 2), registered and logged as a tablet's push would.
    let clinician = UserSigner::generate("Bench Paramedic", uuid::Uuid::new_v4()).unwrap();
    let registered = storage
        .register_signers(
            &device,
            &[SignerRegistration::new(
                clinician.identity(),
                &clinician.registration_proof().unwrap(),
                &key.sign_base64(&clinician.identity().endorsement_message(device_id).unwrap()),
            )],
            Utc::now(),
        )
        .await
        .unwrap();
    let signers: std::collections::HashMap<_, _> = registered
        .iter()
        .map(|r| (r.identity.user_id, r.key()))
        .collect();

    // Build and check every batch before the clock starts: the clock measures storage.
    let start = Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    let mut batches = Vec::new();
    let mut made = 0usize;
    while made < total {
        let n = batch_size.min(total - made);
        let batch: Vec<_> = (0..n)
            .map(|i| {
                let mut e = synthetic_encounter(&mut rng, start, (made + i) as u32);
                e.id = uuid::Uuid::now_v7();
                e.status = RecordStatus::Completed;
                let document = serde_json::to_value(&e).unwrap();
                let sha = content_sha256_hex(&document);
                let saved = Utc::now();
                let (sig, signer_user_id) = if format == 1 {
                    let payload = signing_payload(e.id, Revision::FIRST, "completed", &sha);
                    (key.sign_base64(&payload), None)
                } else {
                    let sig = clinician
                        .sign_version(e.id, Revision::FIRST, "completed", &sha, saved)
                        .unwrap();
                    (sig, Some(clinician.user_id()))
                };
                let item = PushItem {
                    record_id: e.id,
                    revision: Revision::FIRST,
                    status: RecordStatus::Completed,
                    document,
                    content_sha256: sha,
                    signature: Some(sig),
                    signer_user_id,
                    saved_at_utc: saved,
                };
                check_item(
                    &item,
                    &PushKeys {
                        device_public_key_b64: &device.public_key_b64,
                        signers: &signers,
                    },
                )
                .unwrap()
            })
            .collect();
        made += n;
        batches.push(batch);
    }

    let t = Instant::now();
    for batch in &batches {
        storage
            .push_versions(&device, batch, None, Utc::now())
            .await
            .unwrap();
    }
    let ingest = t.elapsed();
    let head = storage.log_head().await.unwrap();
    let note = signer.sign(&head);
    storage
        .save_checkpoint(head.size, &note, Utc::now())
        .await
        .unwrap();

    let t = Instant::now();
    let report = admin::verify(storage.as_ref(), &signer.public(), &[], None)
        .await
        .unwrap();
    let verify = t.elapsed();
    assert!(report.is_clean(), "{:?}", report.log_findings);
    assert_eq!(report.versions_checked as usize, total);

    let inclusion = storage
        .inclusion_proofs(head.size, &[0, head.size / 2, head.size - 1])
        .await
        .unwrap();
    let consistency = storage
        .consistency_proof(head.size / 2 + 1, head.size)
        .await
        .unwrap();
    let leaf_bytes = storage.log_leaves(2, 3).await.unwrap()[0].data.len();

    println!(
        "log of {} leaves ({} versions signed in format {format}, batches of {batch_size}, SQLite)",
        head.size, total
    );
    println!(
        "ingest straight to storage: {:.2} s, {:.0} versions/s",
        ingest.as_secs_f64(),
        total as f64 / ingest.as_secs_f64()
    );
    println!(
        "verify: {:.2} s, {:.0} versions/s",
        verify.as_secs_f64(),
        total as f64 / verify.as_secs_f64()
    );
    for (i, p) in inclusion.iter().enumerate() {
        println!(
            "inclusion proof {i}: {} hashes, {} bytes raw",
            p.len(),
            p.len() * 32
        );
    }
    println!(
        "consistency proof {} -> {}: {} hashes, {} bytes raw",
        head.size / 2 + 1,
        head.size,
        consistency.len(),
        consistency.len() * 32
    );
    println!(
        "a version leaf: {leaf_bytes} bytes; a signed checkpoint: {} bytes",
        note.len()
    );
}
