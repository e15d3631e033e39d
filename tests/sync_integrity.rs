//! The tablet against a server that lies about its log: a checkpoint signed by another key, a
//! malformed checkpoint, an oversized proof, an inclusion proof for someone else's leaf. Each is
//! refused with a plain reason; the pinned key and the last verified checkpoint stay as they
//! were, and every record stays queued. The server's answers are scripted by the test (the
//! real server's log is exercised in `integrity.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use ambulance_epr::crypto::{DeviceSigningKey, KdfParams};
use ambulance_epr::demo::complete_encounter;
use ambulance_epr::protocol::{
    CheckpointResponse, ConsistencyResponse, FeedbackResponse, InclusionResponse, PushItemResult,
    PushOutcome, PushRequest, PushResponse,
};
use ambulance_epr::store::{Store, migrate};
use ambulance_epr::sync::engine::{DEVICE_ID, DEVICE_TOKEN, SERVER_URL};
use ambulance_epr::sync::integrity::{INTEGRITY_FAILURE, LOG_CHECKPOINT, LOG_KEY};
use ambulance_epr::sync::{Engine, SyncConfig, SyncError};
use ambulance_epr::transparency::{
    Checkpoint, HashMapReader, Leaf, LogHash, LogPublicKey, append, hash_b64, leaf_hash, leaf_time,
    prove_consistency, prove_inclusion, sign_checkpoint,
};
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use uuid::Uuid;

const ORIGIN: &str = "test/log";

#[derive(Default)]
struct Script {
    /// Checkpoint notes to answer with, in turn (the last one repeats).
    checkpoints: VecDeque<String>,
    consistency: Vec<String>,
    inclusion: Vec<Vec<String>>,
    /// The leaf index each pushed item is said to have.
    leaf_index: u64,
    pushes: usize,
}

type Shared = Arc<Mutex<Script>>;

async fn checkpoint(State(s): State<Shared>) -> Json<CheckpointResponse> {
    let mut g = s.lock().unwrap();
    let note = if g.checkpoints.len() > 1 {
        g.checkpoints.pop_front().unwrap()
    } else {
        g.checkpoints.front().cloned().unwrap_or_default()
    };
    Json(CheckpointResponse {
        checkpoint: note,
        log_key: String::new(),
    })
}

async fn consistency(State(s): State<Shared>) -> Json<ConsistencyResponse> {
    let g = s.lock().unwrap();
    Json(ConsistencyResponse {
        old_size: 0,
        size: 0,
        proof: g.consistency.clone(),
    })
}

async fn inclusion(State(s): State<Shared>) -> Json<InclusionResponse> {
    let g = s.lock().unwrap();
    Json(InclusionResponse {
        size: 2,
        proofs: g.inclusion.clone(),
    })
}

async fn push(State(s): State<Shared>, Json(req): Json<PushRequest>) -> Json<PushResponse> {
    let mut g = s.lock().unwrap();
    g.pushes += 1;
    let results = req
        .items
        .iter()
        .map(|i| PushItemResult {
            record_id: i.record_id,
            revision: i.revision,
            outcome: PushOutcome::Stored,
            reject_reason: None,
            message: None,
            leaf_index: Some(g.leaf_index),
        })
        .collect();
    Json(PushResponse {
        results,
        checkpoint: None,
    })
}

async fn feedback() -> Json<FeedbackResponse> {
    Json(FeedbackResponse {
        items: vec![],
        next_cursor: 0,
    })
}

async fn start(script: Shared) -> String {
    let app = Router::new()
        .route("/api/v1/log/checkpoint", get(checkpoint))
        .route("/api/v1/log/consistency", get(consistency))
        .route("/api/v1/log/inclusion", post(inclusion))
        .route("/api/v1/sync/push", post(push))
        .route("/api/v1/sync/feedback", get(feedback))
        .with_state(script);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

/// A tablet with one signed record queued, enrolled with `url`, pinning `log`'s key.
fn tablet(dir: &std::path::Path, url: &str, log: &DeviceSigningKey) -> (Store, Uuid) {
    let mut store = Store::create_with(
        dir,
        "crew",
        "heron pebble maple drift",
        KdfParams::FAST_FOR_TESTS,
        migrate::latest_version(),
    )
    .unwrap();
    store.set_setting(SERVER_URL, url).unwrap();
    store.set_setting(DEVICE_TOKEN, "test-token").unwrap();
    store
        .set_setting(DEVICE_ID, &Uuid::now_v7().to_string())
        .unwrap();
    let key = LogPublicKey {
        name: ORIGIN.into(),
        key: log.public_key_bytes(),
    };
    store.set_setting(LOG_KEY, &key.to_vkey()).unwrap();
    // The clinician's key counts as registered: these scripted servers answer record pushes
    // only (registration is tested against the real server).
    let ids: Vec<Uuid> = store
        .unregistered_signers()
        .unwrap()
        .iter()
        .map(|p| p.identity.user_id)
        .collect();
    store.mark_signers_registered(&ids).unwrap();
    let mut e = complete_encounter();
    e.id = Uuid::now_v7();
    store.complete_and_sign(&e, "A. Paramedic", "PA1").unwrap();
    (store, e.id)
}

fn signed(size: u64, root: LogHash, key: &DeviceSigningKey) -> String {
    sign_checkpoint(
        &Checkpoint {
            origin: ORIGIN.into(),
            size,
            root,
        },
        key,
    )
}

/// Runs one cycle; returns the integrity failure's reason.
fn cycle_fails(store: &Store) -> String {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut engine = Engine::new(store.open_another().unwrap(), SyncConfig::default());
    match rt.block_on(engine.run_cycle()) {
        Err(SyncError::Integrity(reason)) => reason,
        other => panic!("expected an integrity failure, got {other:?}"),
    }
}

fn settings(store: &Store) -> (Option<String>, Option<String>) {
    (
        store.setting(LOG_KEY).unwrap(),
        store.setting(LOG_CHECKPOINT).unwrap(),
    )
}

#[test]
fn a_checkpoint_by_another_key_or_malformed_is_refused_before_anything_is_sent() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let log = DeviceSigningKey::generate().unwrap();
    let impostor = DeviceSigningKey::generate().unwrap();
    for (note, expected) in [
        (
            signed(3, leaf_hash(b"x"), &impostor),
            "not signed by the key this tablet trusts",
        ),
        ("not a checkpoint at all".to_owned(), "malformed"),
        ("x".repeat(10_000), "malformed"),
    ] {
        let script: Shared = Arc::default();
        script.lock().unwrap().checkpoints.push_back(note);
        let url = rt.block_on(start(script.clone()));
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = tablet(dir.path(), &url, &log);
        let before = settings(&store);
        let reason = cycle_fails(&store);
        assert!(reason.contains(expected), "{reason}");
        assert_eq!(
            settings(&store),
            before,
            "the pin and checkpoint are untouched"
        );
        assert_eq!(script.lock().unwrap().pushes, 0, "nothing was sent");
        assert_eq!(store.status_counts().unwrap().pending_sync, 1);
        assert!(store.setting(INTEGRITY_FAILURE).unwrap().is_some());
    }
}

#[test]
fn an_oversized_consistency_proof_is_refused() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let log = DeviceSigningKey::generate().unwrap();
    let script: Shared = Arc::default();
    {
        let mut g = script.lock().unwrap();
        g.checkpoints
            .push_back(signed(8, leaf_hash(b"later"), &log));
        g.consistency = vec![hash_b64(&leaf_hash(b"h")); 200];
    }
    let url = rt.block_on(start(script.clone()));
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = tablet(dir.path(), &url, &log);
    store
        .set_setting(LOG_CHECKPOINT, &signed(4, leaf_hash(b"earlier"), &log))
        .unwrap();
    let before = settings(&store);
    let reason = cycle_fails(&store);
    assert!(reason.contains("too many hashes"), "{reason}");
    assert_eq!(settings(&store), before);
    assert_eq!(store.status_counts().unwrap().pending_sync, 1);
}

#[test]
fn an_inclusion_proof_for_another_leaf_keeps_the_record_queued() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let log = DeviceSigningKey::generate().unwrap();
    // The log the server claims: an enrolment, then a leaf that is not the tablet's version.
    let first = Leaf::DeviceEnrolled {
        device_id: Uuid::now_v7(),
        public_key: "AAAA".into(),
        enrolled_at_utc: leaf_time(chrono::Utc::now()),
    };
    let hashes = [
        leaf_hash(&first.encode()),
        leaf_hash(b"someone else's leaf"),
    ];
    let mut tree = HashMapReader::default();
    let (_, root1) = append(0, &hashes[..1], &mut tree).unwrap();
    let (_, root2) = append(1, &hashes[1..], &mut tree).unwrap();
    let script: Shared = Arc::default();
    {
        let mut g = script.lock().unwrap();
        g.checkpoints.push_back(signed(1, root1, &log));
        g.checkpoints.push_back(signed(2, root2, &log));
        g.consistency = prove_consistency(2, 1, &tree)
            .unwrap()
            .iter()
            .map(hash_b64)
            .collect();
        g.inclusion = vec![
            prove_inclusion(2, 1, &tree)
                .unwrap()
                .iter()
                .map(hash_b64)
                .collect(),
        ];
        g.leaf_index = 1;
    }
    let url = rt.block_on(start(script.clone()));
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = tablet(dir.path(), &url, &log);
    let reason = cycle_fails(&store);
    assert!(
        reason.contains("could not prove that it holds a version it accepted"),
        "{reason}"
    );
    assert_eq!(script.lock().unwrap().pushes, 1);
    assert_eq!(
        store.status_counts().unwrap().pending_sync,
        1,
        "accepted but not proved: still queued"
    );
}
