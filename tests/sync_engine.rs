//! The sync engine against a scripted server on loopback: error classes, backoff,
//! credentials, quarantine, the in-flight edit and a refused clinician key registration. The real server is exercised in
//! `sync_server.rs`; here the server's answers are chosen by the test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ambulance_epr::crypto::KdfParams;
use ambulance_epr::demo::complete_encounter;
use ambulance_epr::model::{Encounter, Revision};
use ambulance_epr::protocol::{
    FeedbackResponse, PushItemResult, PushOutcome, PushRequest, PushResponse, RejectReason,
};
use ambulance_epr::store::{Store, SyncState, migrate};
use ambulance_epr::sync::engine::{DEVICE_ID, DEVICE_TOKEN, SERVER_URL};
use ambulance_epr::sync::{Engine, ProblemKind, SyncCommand, SyncConfig, SyncStatus};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use uuid::Uuid;

#[derive(Default)]
struct Script {
    /// Status codes to answer the next pushes with; empty = answer normally.
    statuses: VecDeque<u16>,
    /// Answer 401 to every push.
    always_unauthorized: bool,
    /// Records to reject.
    reject: HashSet<Uuid>,
    /// Delay before answering a push.
    delay: Duration,
    /// Every push received: (record, revision) pairs.
    pushes: Vec<Vec<(Uuid, Revision)>>,
}

type Shared = Arc<Mutex<Script>>;

async fn push(
    State(s): State<Shared>,
    Json(req): Json<PushRequest>,
) -> Result<Json<PushResponse>, StatusCode> {
    let (status, delay) = {
        let mut g = s.lock().unwrap();
        g.pushes.push(
            req.items
                .iter()
                .map(|i| (i.record_id, i.revision))
                .collect(),
        );
        let status = if g.always_unauthorized {
            Some(401)
        } else {
            g.statuses.pop_front()
        };
        (status, g.delay)
    };
    tokio::time::sleep(delay).await;
    if let Some(code) = status {
        return Err(StatusCode::from_u16(code).unwrap());
    }
    let reject = s.lock().unwrap().reject.clone();
    let results = req
        .items
        .iter()
        .map(|i| {
            let rejected = reject.contains(&i.record_id);
            PushItemResult {
                record_id: i.record_id,
                revision: i.revision,
                outcome: if rejected {
                    PushOutcome::Rejected
                } else {
                    PushOutcome::Stored
                },
                reject_reason: rejected.then_some(RejectReason::BadSignature),
                message: rejected.then(|| "the signature does not match".to_owned()),
                leaf_index: None,
            }
        })
        .collect();
    Ok(Json(PushResponse {
        results,
        checkpoint: None,
    }))
}

async fn feedback() -> Json<FeedbackResponse> {
    Json(FeedbackResponse {
        items: vec![],
        next_cursor: 0,
    })
}

async fn start_mock(script: Shared) -> String {
    let app = Router::new()
        .route("/api/v1/sync/push", post(push))
        .route("/api/v1/sync/feedback", get(feedback))
        .route("/api/v1/health", get(|| async { "ok" }))
        .with_state(script);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

fn store_with(dir: &std::path::Path, url: &str, records: usize) -> (Store, Vec<Uuid>) {
    let mut store = Store::create_with(
        dir,
        "crew",
        "pass",
        KdfParams::FAST_FOR_TESTS,
        migrate::latest_version(),
    )
    .unwrap();
    store.set_setting(SERVER_URL, url).unwrap();
    store.set_setting(DEVICE_TOKEN, "test-token").unwrap();
    // The clinician's key counts as registered: this scripted server answers record pushes
    // only (registration is tested against the real server).
    let signers: Vec<Uuid> = store
        .unregistered_signers()
        .unwrap()
        .iter()
        .map(|p| p.identity.user_id)
        .collect();
    store.mark_signers_registered(&signers).unwrap();
    let mut ids = Vec::new();
    for i in 0..records {
        let mut e = complete_encounter();
        e.id = Uuid::now_v7();
        e.incident.incident_number = format!("INC-{i}");
        store.complete_and_sign(&e, "A. Paramedic", "PA1").unwrap();
        ids.push(e.id);
    }
    (store, ids)
}

fn fast_config() -> SyncConfig {
    SyncConfig {
        batch_max_items: 3,
        backoff_initial: Duration::from_millis(40),
        backoff_cap: Duration::from_millis(200),
        periodic: Duration::from_secs(30),
        probe_interval: Duration::from_millis(100),
        request_timeout: Duration::from_secs(5),
        ..SyncConfig::default()
    }
}

async fn wait_for(
    rx: &mut tokio::sync::watch::Receiver<SyncStatus>,
    what: impl Fn(&SyncStatus) -> bool,
) -> SyncStatus {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            {
                let s = rx.borrow_and_update().clone();
                if what(&s) {
                    return s;
                }
            }
            if rx.changed().await.is_err() {
                panic!("engine stopped");
            }
        }
    })
    .await
    .expect("status within 20 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_500_429_503_are_retried_with_backoff() {
    let script: Shared = Arc::default();
    script.lock().unwrap().statuses = VecDeque::from([500, 429, 503]);
    let url = start_mock(script.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let (store, ids) = store_with(dir.path(), &url, 5);
    let handle = ambulance_epr::sync::start(&store, fast_config(), Arc::new(|| {})).unwrap();
    let mut rx = handle.status_receiver();
    // It fails first, with a retry scheduled, then drains without anyone pressing anything.
    let failing = wait_for(&mut rx, |s| s.last_problem.is_some()).await;
    assert_eq!(
        failing.last_problem.as_ref().unwrap().kind,
        ProblemKind::Transient
    );
    let done = wait_for(&mut rx, |s| {
        s.queued == 0 && s.reachable == Some(true) && !s.sending
    })
    .await;
    assert!(done.last_success_utc.is_some());
    let pushes = script.lock().unwrap().pushes.clone();
    assert!(
        pushes.len() >= 5,
        "three refused batches then the drain: {}",
        pushes.len()
    );
    for id in ids {
        assert_eq!(store.summary(id).unwrap().sync_state, SyncState::Synced);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthorized_stops_the_engine_with_a_clear_status() {
    let script: Shared = Arc::default();
    script.lock().unwrap().always_unauthorized = true;
    let url = start_mock(script.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = store_with(dir.path(), &url, 2);
    let handle = ambulance_epr::sync::start(&store, fast_config(), Arc::new(|| {})).unwrap();
    let mut rx = handle.status_receiver();
    let s = wait_for(&mut rx, |s| s.stopped).await;
    let problem = s.last_problem.clone().unwrap();
    assert_eq!(problem.kind, ProblemKind::Credentials);
    assert!(
        problem.message.contains("credentials"),
        "{}",
        problem.message
    );
    assert!(s.banner().starts_with("Sync stopped"));
    assert_eq!(s.queued, 2, "nothing is dropped");
    let attempts = script.lock().unwrap().pushes.len();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        script.lock().unwrap().pushes.len(),
        attempts,
        "a stopped engine does not retry by itself"
    );
    // "Sync now" tries again (for example after re-enrolment).
    handle.send(SyncCommand::SyncNow);
    tokio::time::timeout(Duration::from_secs(5), async {
        while script.lock().unwrap().pushes.len() == attempts {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_record_is_quarantined_while_the_others_go_through() {
    let script: Shared = Arc::default();
    let url = start_mock(script.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let (store, ids) = store_with(dir.path(), &url, 7);
    script.lock().unwrap().reject.insert(ids[2]);
    let mut engine = Engine::new(store.open_another().unwrap(), fast_config());
    let report = engine.run_cycle().await.unwrap();
    assert_eq!(report.pushed, 6);
    assert_eq!(report.newly_quarantined, 1);
    assert_eq!(report.pending, 0);
    assert_eq!(report.quarantined, 1);
    assert_eq!(
        store.summary(ids[2]).unwrap().sync_state,
        SyncState::NeedsAttention
    );
    let q = store.quarantined().unwrap();
    assert_eq!(q.len(), 1);
    assert!(q[0].2.contains("signature"));
    for (i, id) in ids.iter().enumerate() {
        if i != 2 {
            assert_eq!(store.summary(*id).unwrap().sync_state, SyncState::Synced);
        }
    }
    // A second cycle does not resend the quarantined version.
    let before = script.lock().unwrap().pushes.len();
    engine.run_cycle().await.unwrap();
    assert_eq!(script.lock().unwrap().pushes.len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_during_an_in_flight_push_is_not_marked_synced_by_the_late_ack() {
    let script: Shared = Arc::default();
    script.lock().unwrap().delay = Duration::from_millis(700);
    let url = start_mock(script.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = store_with(dir.path(), &url, 0);
    let mut e = Encounter::new_draft(chrono::Utc::now());
    e.notes = "first".into();
    let first = store.save_draft(&e).unwrap();
    let mut engine = Engine::new(store.open_another().unwrap(), fast_config());
    let cycle = tokio::spawn(async move { engine.run_cycle().await.map(|r| r.pending) });
    // Wait until the push is in flight, then edit.
    tokio::time::timeout(Duration::from_secs(5), async {
        while script.lock().unwrap().pushes.is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    e.notes = "second".into();
    let second = store.save_draft(&e).unwrap();
    assert_eq!(Some(second.revision), first.revision.next());
    let pending_after = cycle.await.unwrap().unwrap();
    // The late ack for the old revision did not retire the new one: the engine went on to
    // push the new revision in a later request, and only then shows the record as synced.
    let pushes = script.lock().unwrap().pushes.clone();
    assert!(
        pushes.len() >= 2,
        "the new revision needed a push of its own"
    );
    assert!(
        pushes[1..]
            .iter()
            .flatten()
            .any(|p| *p == (e.id, second.revision))
    );
    assert_eq!(pending_after, 0);
    assert_eq!(store.summary(e.id).unwrap().sync_state, SyncState::Synced);
    assert!(
        pushes[0].contains(&(e.id, first.revision)),
        "the first push carried the old revision"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_key_registration_ends_the_sync_and_quarantines_nothing() {
    let script: Shared = Arc::default();
    // The server refuses the registration (an older server, say), then accepts everything.
    script.lock().unwrap().statuses = VecDeque::from([422]);
    let url = start_mock(script.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let (store, ids) = store_with(dir.path(), &url, 3);
    store
        .set_setting(DEVICE_ID, &Uuid::now_v7().to_string())
        .unwrap();
    store.forget_signer_registrations().unwrap();
    let mut engine = Engine::new(store.open_another().unwrap(), fast_config());
    assert!(engine.run_cycle().await.is_err());
    let counts = store.status_counts().unwrap();
    assert_eq!(counts.quarantined, 0, "nothing quarantined");
    assert_eq!(counts.pending_sync, 3, "every record still queued");
    assert_eq!(store.unregistered_signers().unwrap().len(), 1);
    assert_eq!(
        script.lock().unwrap().pushes,
        vec![Vec::<(Uuid, Revision)>::new()],
        "the only push was the registration, with no records in it"
    );

    // The next sync registers the key, then the records go.
    let report = engine.run_cycle().await.unwrap();
    assert_eq!(report.pending, 0);
    assert!(store.unregistered_signers().unwrap().is_empty());
    for id in ids {
        assert_eq!(store.summary(id).unwrap().sync_state, SyncState::Synced);
    }
}
