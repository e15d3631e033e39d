//! Server ingest load benchmark: N simulated devices (default 50) push batches of realistic,
//! signed, completed records concurrently to a server on loopback. Prints records/s and
//! p50/p99 push latency for SQLite and, when `EPR_TEST_POSTGRES_URL` is set, PostgreSQL
//! (in a fresh schema), side by side.
//!
//! Run with `cargo bench --bench server_load`. Knobs: `EPR_BENCH_DEVICES` (50),
//! `EPR_BENCH_BATCHES` per device (10), `EPR_BENCH_BATCH_SIZE` (100),
//! `EPR_BENCH_SIGNATURE_FORMAT` (2: each device's clinician registers a key and signs with it;
//! 1: signed by the device key, as older tablets). Without `--bench` in
//! argv (as under `cargo test`) it returns at once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use ambulance_epr::crypto::{DeviceSigningKey, UserSigner, content_sha256_hex, signing_payload};
use ambulance_epr::demo::synthetic_encounter;
use ambulance_epr::model::{RecordStatus, Revision};
use ambulance_epr::protocol::{
    EnrollRequest, EnrollResponse, PushItem, PushOutcome, PushRequest, PushResponse,
    SignerRegistration,
};
use ambulance_epr::server::{self, ServerConfig, Storage, admin};
use chrono::{TimeZone, Utc};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// The paced phase offers the SQLite target rate.
const PACED_RECORDS_PER_SEC: usize = 5000;

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Figures {
    backend: &'static str,
    mode: String,
    records: usize,
    wall: Duration,
    p50: Duration,
    p99: Duration,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Signed push bodies for one device, serialised ahead of time so the clock measures the
/// server, not the client.
/// With `clinician`, each version is signed by that clinician's registered key (signature
/// version 2); without, by the device key (version 1).
fn device_bodies(
    key: &DeviceSigningKey,
    clinician: Option<&UserSigner>,
    device: usize,
    batches: usize,
    batch_size: usize,
) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(device as u64);
    let start = Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap();
    (0..batches)
        .map(|b| {
            let items: Vec<PushItem> = (0..batch_size)
                .map(|i| {
                    let serial = (device * batches * batch_size + b * batch_size + i) as u32;
                    let mut e = synthetic_encounter(&mut rng, start, serial);
                    e.id = uuid::Uuid::now_v7();
                    e.status = RecordStatus::Completed;
                    let document = serde_json::to_value(&e).unwrap();
                    let sha = content_sha256_hex(&document);
                    let saved = Utc::now();
                    let (sig, signer_user_id) = match clinician {
                        Some(c) => (
                            c.sign_version(e.id, Revision::FIRST, "completed", &sha, saved)
                                .unwrap(),
                            Some(c.user_id()),
                        ),
                        None => (
                            key.sign_base64(&signing_payload(
                                e.id,
                                Revision::FIRST,
                                "completed",
                                &sha,
                            )),
                            None,
                        ),
                    };
                    PushItem {
                        record_id: e.id,
                        revision: Revision::FIRST,
                        status: RecordStatus::Completed,
                        document,
                        content_sha256: sha,
                        signature: Some(sig),
                        signer_user_id,
                        saved_at_utc: saved,
                    }
                })
                .collect();
            serde_json::to_string(&PushRequest {
                items,
                verified_checkpoint: None,
                device_audit_head: None,
                signers: Vec::new(),
            })
            .unwrap()
        })
        .collect()
}

/// `offered_records_per_sec`: `None` pushes as fast as the server answers (saturation);
/// `Some(rate)` spreads each device's batches evenly so the devices together offer `rate`.
async fn run(
    backend: &'static str,
    storage: Arc<dyn Storage>,
    offered_records_per_sec: Option<usize>,
) -> Figures {
    let devices = knob("EPR_BENCH_DEVICES", 50);
    let batches = knob("EPR_BENCH_BATCHES", 10);
    let batch_size = knob("EPR_BENCH_BATCH_SIZE", 100);
    let signature_format = knob("EPR_BENCH_SIGNATURE_FORMAT", 2);
    let interval = offered_records_per_sec
        .map(|rate| Duration::from_secs_f64((devices * batch_size) as f64 / rate as f64));

    let versions_before = storage.stats().await.unwrap().versions as usize;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/api/v1", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    // Every simulated device enrols from 127.0.0.1: lift the per-address limit on
    // enrolments, which would otherwise refuse all but the first ten.
    let config = ServerConfig {
        auth_attempts_per_minute: 100_000,
        auth_attempts_burst: 10_000,
        ..ServerConfig::default()
    };
    let server_task = tokio::spawn(server::serve(
        Arc::clone(&storage),
        config,
        listener,
        async {
            let _ = stopped.await;
        },
    ));
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(devices)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();

    // Enrol every device and prepare its bodies.
    let mut prepared = Vec::new();
    for d in 0..devices {
        let key = DeviceSigningKey::generate().unwrap();
        let code = admin::create_enrolment_code(storage.as_ref(), &format!("Bench {d}"))
            .await
            .unwrap();
        let r: EnrollResponse = http
            .post(format!("{base}/devices/enroll"))
            .json(&EnrollRequest::signed(&code.code, &key))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        // Format 2: the device's clinician registers their key first, as a tablet does.
        let clinician = if signature_format == 2 {
            let c = UserSigner::generate(&format!("Bench Paramedic {d}"), uuid::Uuid::new_v4())
                .unwrap();
            let endorsement =
                key.sign_base64(&c.identity().endorsement_message(r.device_id).unwrap());
            let registration = SignerRegistration::new(
                c.identity(),
                &c.registration_proof().unwrap(),
                &endorsement,
            );
            let resp = http
                .post(format!("{base}/sync/push"))
                .bearer_auth(&r.device_token)
                .json(&PushRequest {
                    items: Vec::new(),
                    verified_checkpoint: None,
                    device_audit_head: None,
                    signers: vec![registration],
                })
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            Some(c)
        } else {
            None
        };
        let bodies = tokio::task::spawn_blocking(move || {
            device_bodies(&key, clinician.as_ref(), d, batches, batch_size)
        })
        .await
        .unwrap();
        prepared.push((r.device_token, bodies));
    }

    let started = Instant::now();
    let mut tasks = Vec::new();
    for (d, (token, bodies)) in prepared.into_iter().enumerate() {
        let http = http.clone();
        let base = base.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(bodies.len());
            for (k, body) in bodies.into_iter().enumerate() {
                if let Some(interval) = interval {
                    let offset = interval.mul_f64(d as f64 / devices as f64);
                    let due = started + offset + interval * k as u32;
                    tokio::time::sleep_until(due.into()).await;
                }
                let t = Instant::now();
                let resp = http
                    .post(format!("{base}/sync/push"))
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200);
                let r: PushResponse = resp.json().await.unwrap();
                latencies.push(t.elapsed());
                assert!(r.results.iter().all(|x| x.outcome == PushOutcome::Stored));
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let wall = started.elapsed();
    latencies.sort();
    let _ = stop.send(());
    server_task.await.unwrap().unwrap();
    let records = devices * batches * batch_size;
    let versions_after = storage.stats().await.unwrap().versions as usize;
    assert_eq!(versions_after - versions_before, records);
    Figures {
        backend,
        mode: offered_records_per_sec.map_or("saturation".to_owned(), |r| format!("paced {r}/s")),
        records,
        wall,
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut all = Vec::new();
        let dir = tempfile::tempdir().unwrap();
        for (i, pace) in [None, Some(PACED_RECORDS_PER_SEC)].into_iter().enumerate() {
            let url = format!(
                "sqlite://{}",
                dir.path().join(format!("bench{i}.db")).display()
            );
            let storage = server::open_storage(&url).await.unwrap();
            all.push(run("sqlite", storage, pace).await);
        }

        if let Ok(base) = std::env::var("EPR_TEST_POSTGRES_URL") {
            let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
            let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            client
                .batch_execute(&format!("CREATE SCHEMA {schema}"))
                .await
                .unwrap();
            let sep = if base.contains('?') { '&' } else { '?' };
            let url = format!("{base}{sep}options=-csearch_path%3D{schema}");
            let storage = server::open_storage(&url).await.unwrap();
            all.push(run("postgres", Arc::clone(&storage), None).await);
            // The rate earlier figures were paced at (comparable p99), then SQLite's.
            all.push(
                run(
                    "postgres",
                    Arc::clone(&storage),
                    Some(PACED_RECORDS_PER_SEC / 4),
                )
                .await,
            );
            all.push(run("postgres", storage, Some(PACED_RECORDS_PER_SEC)).await);
            client
                .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
                .await
                .unwrap();
        } else {
            println!("(EPR_TEST_POSTGRES_URL not set: PostgreSQL skipped)");
        }

        println!(
            "devices={} batches/device={} batch size={}",
            knob("EPR_BENCH_DEVICES", 50),
            knob("EPR_BENCH_BATCHES", 10),
            knob("EPR_BENCH_BATCH_SIZE", 100)
        );
        println!(
            "{:<10} {:<16} {:>9} {:>10} {:>12} {:>10} {:>10}",
            "backend", "mode", "records", "wall s", "records/s", "p50 ms", "p99 ms"
        );
        for f in &all {
            println!(
                "{:<10} {:<16} {:>9} {:>10.2} {:>12.0} {:>10.1} {:>10.1}",
                f.backend,
                f.mode,
                f.records,
                f.wall.as_secs_f64(),
                f.records as f64 / f.wall.as_secs_f64(),
                f.p50.as_secs_f64() * 1000.0,
                f.p99.as_secs_f64() * 1000.0
            );
        }
        let saturation = |backend: &str| {
            all.iter()
                .find(|f| f.backend == backend && f.mode == "saturation")
                .map(|f| f.records as f64 / f.wall.as_secs_f64())
        };
        if let (Some(sqlite), Some(postgres)) = (saturation("sqlite"), saturation("postgres")) {
            println!(
                "postgres/sqlite records/s at saturation: {:.2}",
                postgres / sqlite
            );
        }
    });
}
