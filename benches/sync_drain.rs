//! Backlog drain benchmark: 10,000 realistic queued records drained by the sync engine to a
//! server on loopback, beside the same server ingesting the same versions in direct batches
//! (its own limit). Prints both times and their ratio.
//!
//! Run with `cargo bench --bench sync_drain`. Without `--bench` (as under `cargo test`) it
//! returns at once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use ambulance_epr::crypto::KdfParams;
use ambulance_epr::protocol::{EnrollRequest, PushItem, PushRequest};
use ambulance_epr::server::{self, ServerConfig, admin};
use ambulance_epr::store::{Store, migrate};
use ambulance_epr::sync::{ApiClient, Engine, SyncConfig};
use rand::SeedableRng;

const RECORDS: u32 = 10_000;

async fn start_server(
    dir: &std::path::Path,
    name: &str,
) -> (
    String,
    Arc<dyn server::Storage>,
    tokio::sync::oneshot::Sender<()>,
) {
    let url = format!("sqlite://{}", dir.join(name).display());
    let storage = server::open_storage(&url).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = ServerConfig {
        password_kdf: KdfParams::FAST_FOR_TESTS,
        ..ServerConfig::default()
    };
    let s = storage.clone();
    tokio::spawn(async move {
        let _ = server::serve(s, config, listener, async {
            let _ = stopped.await;
        })
        .await;
    });
    (format!("http://{addr}"), storage, stop)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("sync_drain: run with `cargo bench --bench sync_drain`");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    let mut store = Store::create_with(
        &dir.path().join("device"),
        "bench",
        "bench pass",
        KdfParams::FAST_FOR_TESTS,
        migrate::latest_version(),
    )
    .unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let start = chrono::Utc::now();
    let t = Instant::now();
    for i in 0..RECORDS {
        let e = ambulance_epr::demo::synthetic_encounter(&mut rng, start, i);
        store
            .complete_and_sign(&e, "Bench Paramedic", "PA000000")
            .unwrap();
    }
    println!(
        "queued {RECORDS} signed records in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // Direct ingest first: the same versions, read once, pushed in batches of 200 by a bare
    // client to a fresh server.
    let items: Vec<PushItem> = store
        .outbox_batch(RECORDS as usize, usize::MAX)
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
    let pending_signers = store.unregistered_signers().unwrap();
    let signing_key = store.signing_key().unwrap();
    let direct = rt.block_on(async {
        let (url, storage, stop) = start_server(dir.path(), "direct.db").await;
        let code = admin::create_enrolment_code(storage.as_ref(), "direct")
            .await
            .unwrap()
            .code;
        let client = ApiClient::new(&url, Duration::from_secs(60)).unwrap();
        let enrolled = client
            .enroll(&EnrollRequest::signed(&code, signing_key))
            .await
            .unwrap();
        let token = enrolled.device_token;
        // The clinician's key, registered as the engine would before its first batch.
        let signers: Vec<ambulance_epr::protocol::SignerRegistration> = pending_signers
            .iter()
            .map(|p| {
                let endorsement = signing_key
                    .sign_base64(&p.identity.endorsement_message(enrolled.device_id).unwrap());
                ambulance_epr::protocol::SignerRegistration::new(
                    &p.identity,
                    &p.proof,
                    &endorsement,
                )
            })
            .collect();
        let t = Instant::now();
        client
            .push(
                &token,
                &PushRequest {
                    items: Vec::new(),
                    verified_checkpoint: None,
                    device_audit_head: None,
                    signers,
                },
            )
            .await
            .unwrap();
        for chunk in items.chunks(200) {
            let r = client
                .push(
                    &token,
                    &PushRequest {
                        items: chunk.to_vec(),
                        verified_checkpoint: None,
                        device_audit_head: None,
                        signers: Vec::new(),
                    },
                )
                .await
                .unwrap();
            assert_eq!(r.results.len(), chunk.len());
        }
        let elapsed = t.elapsed();
        let _ = stop.send(());
        elapsed
    });

    // The engine draining the device's real queue.
    let drain = rt.block_on(async {
        let (url, storage, stop) = start_server(dir.path(), "drain.db").await;
        let code = admin::create_enrolment_code(storage.as_ref(), "drain")
            .await
            .unwrap()
            .code;
        ambulance_epr::sync::enroll(&store, &url, &code)
            .await
            .unwrap();
        let mut engine = Engine::new(store.open_another().unwrap(), SyncConfig::default());
        let t = Instant::now();
        let report = engine.run_cycle().await.unwrap();
        let elapsed = t.elapsed();
        assert_eq!(report.pending, 0);
        assert_eq!(report.pushed, u64::from(RECORDS));
        let stats = storage.stats().await.unwrap();
        assert_eq!(stats.versions, u64::from(RECORDS));
        let _ = stop.send(());
        elapsed
    });
    println!("{:<34} {:>10}", "", "seconds");
    println!(
        "{:<34} {:>10.2}",
        "direct ingest (batches of 200)",
        direct.as_secs_f64()
    );
    println!(
        "{:<34} {:>10.2}",
        "engine drain of the device queue",
        drain.as_secs_f64()
    );
    println!(
        "ratio drain/direct: {:.2}",
        drain.as_secs_f64() / direct.as_secs_f64()
    );
}
