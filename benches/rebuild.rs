//! Rebuild benchmark: a server lost and rebuilt from its tablets (`serve --recover`), timed
//! from the rebuilt server's start until it holds every version again, beside the direct
//! ingest of the same versions by a fresh server.
//!
//! 50 tablet stores (`EPR_BENCH_DEVICES`) of 2,000 signed records each
//! (`EPR_BENCH_RECORDS_PER_DEVICE`) are drained to a first server, whose checkpoint and log
//! entries are kept and whose database is then dropped. Direct ingest: the same versions pushed
//! by a bare client per tablet in batches of 200 (the server's limit) to a fresh server. Rebuild:
//! a new database rebuilt from the kept checkpoint, each tablet's engine running one cycle
//! (refused token, rebuilt log checked, tablet taken back, every held version sent and proved).
//! Tablets go one after another in both, so the two are compared on the same footing.
//!
//! Run with `cargo bench --bench rebuild`. Without `--bench` (as under `cargo test`) it
//! returns at once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use ambulance_epr::crypto::KdfParams;
use ambulance_epr::protocol::{EnrollRequest, PushItem, PushRequest, SignerRegistration};
use ambulance_epr::server::log_key::LogSigner;
use ambulance_epr::server::{self, ServerConfig, admin};
use ambulance_epr::store::{PendingSigner, Store, migrate};
use ambulance_epr::sync::{ApiClient, Engine, SyncConfig};
use rand::SeedableRng;

fn env_count(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Running {
    url: String,
    storage: Arc<dyn server::Storage>,
    stop: tokio::sync::oneshot::Sender<()>,
}

async fn start_server(storage: Arc<dyn server::Storage>, signer: &Arc<LogSigner>) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = ServerConfig {
        password_kdf: KdfParams::FAST_FOR_TESTS,
        log_signer: Some(Arc::clone(signer)),
        // Fifty tablets on one loopback address enrol and come back within a minute.
        auth_attempts_per_minute: 10_000,
        auth_attempts_burst: 10_000,
        ..ServerConfig::default()
    };
    let s = storage.clone();
    tokio::spawn(async move {
        let _ = server::serve(s, config, listener, async {
            let _ = stopped.await;
        })
        .await;
    });
    Running {
        url: format!("http://{addr}"),
        storage,
        stop,
    }
}

async fn open(dir: &std::path::Path, name: &str) -> Arc<dyn server::Storage> {
    let url = format!("sqlite://{}", dir.join(name).display());
    server::open_storage(&url).await.unwrap()
}

/// One tablet: its store, and what a bare client sends for it.
struct Tablet {
    store: Store,
    items: Vec<PushItem>,
    signers: Vec<PendingSigner>,
}

fn make_tablet(dir: &std::path::Path, n: u32, records: u32) -> Tablet {
    let mut store = Store::create_with(
        &dir.join(format!("tablet-{n}")),
        "bench",
        "bench pass",
        KdfParams::FAST_FOR_TESTS,
        migrate::latest_version(),
    )
    .unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(u64::from(n));
    let start = chrono::Utc::now();
    for i in 0..records {
        let e = ambulance_epr::demo::synthetic_encounter(&mut rng, start, i);
        store
            .complete_and_sign(&e, "Bench Paramedic", "PA000000")
            .unwrap();
    }
    let items = store
        .outbox_batch(records as usize, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|o| PushItem {
            record_id: o.record_id,
            revision: o.revision,
            status: o.status,
            document: serde_json::from_str(&o.document).unwrap(),
            content_sha256: o.content_sha256,
            signature: o.signature,
            signer_user_id: o.signer_user_id,
            saved_at_utc: o.saved_at_utc,
        })
        .collect();
    let signers = store.unregistered_signers().unwrap();
    Tablet {
        store,
        items,
        signers,
    }
}

/// Pushes a tablet's versions as a bare client: enrol, register its clinician's key, then
/// batches of 200.
async fn direct_push(server: &Running, tablet: &Tablet, n: u32) {
    let code = admin::create_enrolment_code(server.storage.as_ref(), &format!("direct {n}"))
        .await
        .unwrap()
        .code;
    let client = ApiClient::new(&server.url, Duration::from_secs(60)).unwrap();
    let key = tablet.store.signing_key().unwrap();
    let enrolled = client
        .enroll(&EnrollRequest::signed(&code, key))
        .await
        .unwrap();
    let signers: Vec<SignerRegistration> = tablet
        .signers
        .iter()
        .map(|p| {
            let endorsement =
                key.sign_base64(&p.identity.endorsement_message(enrolled.device_id).unwrap());
            SignerRegistration::new(&p.identity, &p.proof, &endorsement)
        })
        .collect();
    let push = |items: Vec<PushItem>, signers: Vec<SignerRegistration>| PushRequest {
        items,
        verified_checkpoint: None,
        device_audit_head: None,
        signers,
    };
    client
        .push(&enrolled.device_token, &push(Vec::new(), signers))
        .await
        .unwrap();
    for chunk in tablet.items.chunks(200) {
        let r = client
            .push(&enrolled.device_token, &push(chunk.to_vec(), Vec::new()))
            .await
            .unwrap();
        assert_eq!(r.results.len(), chunk.len());
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("rebuild: run with `cargo bench --bench rebuild`");
        return;
    }
    let devices = env_count("EPR_BENCH_DEVICES", 50);
    let per_device = env_count("EPR_BENCH_RECORDS_PER_DEVICE", 2_000);
    let total = u64::from(devices) * u64::from(per_device);
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let signer = Arc::new(LogSigner::generate(Some("ambulance-epr/log/bench")).unwrap());

    let t = Instant::now();
    let tablets: Vec<Tablet> = (0..devices)
        .map(|n| make_tablet(dir.path(), n, per_device))
        .collect();
    println!(
        "{devices} tablets with {per_device} signed records each ({total} versions) made in {:.0} s",
        t.elapsed().as_secs_f64()
    );

    // The first server: every tablet enrols and drains; the trust keeps a checkpoint and the
    // entries; then the database is lost.
    let (note, entries) = rt.block_on(async {
        let lost = start_server(open(dir.path(), "lost.db").await, &signer).await;
        let t = Instant::now();
        for (n, tablet) in tablets.iter().enumerate() {
            let code = admin::create_enrolment_code(lost.storage.as_ref(), &format!("Tablet {n}"))
                .await
                .unwrap()
                .code;
            ambulance_epr::sync::enroll(&tablet.store, &lost.url, &code)
                .await
                .unwrap();
            let mut engine =
                Engine::new(tablet.store.open_another().unwrap(), SyncConfig::default());
            let report = engine.run_cycle().await.unwrap();
            assert_eq!(report.pending, 0);
        }
        println!(
            "first server: {total} versions drained in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let note = admin::current_checkpoint(lost.storage.as_ref(), &signer)
            .await
            .unwrap();
        let size = ambulance_epr::transparency::open_checkpoint(&note, &signer.public())
            .unwrap()
            .size;
        let entries = admin::log_leaves_text(lost.storage.as_ref(), size)
            .await
            .unwrap();
        let _ = lost.stop.send(());
        (note, entries)
    });

    // Direct ingest of the same versions by a fresh server.
    let direct = rt.block_on(async {
        let fresh = start_server(open(dir.path(), "direct.db").await, &signer).await;
        let t = Instant::now();
        for (n, tablet) in (0u32..).zip(&tablets) {
            direct_push(&fresh, tablet, n).await;
        }
        let elapsed = t.elapsed();
        assert_eq!(fresh.storage.stats().await.unwrap().versions, total);
        let _ = fresh.stop.send(());
        elapsed
    });

    // The rebuild: from the start of `serve --recover` until every version is back.
    let rebuild = rt.block_on(async {
        let t = Instant::now();
        let storage = open(dir.path(), "rebuilt.db").await;
        admin::begin_recovery(storage.as_ref(), &signer, &note, &entries)
            .await
            .unwrap();
        let rebuilt = start_server(storage, &signer).await;
        for tablet in &tablets {
            // The trust points the server's name at the new host.
            tablet
                .store
                .set_setting(ambulance_epr::sync::engine::SERVER_URL, &rebuilt.url)
                .unwrap();
            let mut engine =
                Engine::new(tablet.store.open_another().unwrap(), SyncConfig::default());
            let report = engine.run_cycle().await.unwrap();
            assert_eq!(report.pending, 0);
        }
        let elapsed = t.elapsed();
        assert_eq!(rebuilt.storage.stats().await.unwrap().versions, total);
        let report = server::recovery::report_for(rebuilt.storage.as_ref())
            .await
            .unwrap()
            .unwrap();
        assert!(report.complete, "{report:?}");
        let _ = rebuilt.stop.send(());
        elapsed
    });

    println!("{:<44} {:>10}", "", "seconds");
    println!(
        "{:<44} {:>10.2}",
        format!("direct ingest ({devices} clients, batches of 200)"),
        direct.as_secs_f64()
    );
    println!(
        "{:<44} {:>10.2}",
        "rebuild from the tablets (serve --recover)",
        rebuild.as_secs_f64()
    );
    println!(
        "ratio rebuild/direct: {:.2}",
        rebuild.as_secs_f64() / direct.as_secs_f64()
    );
}
