//! One behaviour suite, run against each storage backend through a real server:
//! SQLite always, PostgreSQL when `EPR_TEST_POSTGRES_URL` is set (a fresh schema per test;
//! under CI an unset variable fails the PostgreSQL tests). See `both_backends!`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod server_common;

use ambulance_epr::model::RecordStatus;
use ambulance_epr::protocol::*;
use ambulance_epr::server::admin;
use ambulance_epr::server::storage::check_audit_chain;
use server_common::*;

both_backends!(
    async: behaviour_suite,
    writers_on_separate_connections_wait_for_each_other,
);

async fn behaviour_suite(backend: Backend) {
    let srv = start_on(backend).await;
    idempotent_push(&srv).await;
    conflict_and_stale(&srv).await;
    ownership_and_feedback(&srv).await;
    review_filters_and_decisions(&srv).await;
    let n = check_audit_chain(srv.storage.as_ref()).await.unwrap();
    assert!(n > 10, "audit entries: {n}");
    let report = admin::verify(srv.storage.as_ref(), &test_log_signer().public(), &[], None)
        .await
        .unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert!(report.versions_checked > 5);
}

async fn idempotent_push(srv: &TestServer) {
    let dev = enroll(srv, "Idem tablet").await;
    let before = admin::stats(srv.storage.as_ref()).await.unwrap();
    let items: Vec<PushItem> = (0..5)
        .map(|_| item(&dev.key, &encounter(RecordStatus::Completed), 2))
        .chain([item(&dev.key, &encounter(RecordStatus::Draft), 1)])
        .collect();
    let first = push(srv, &dev.token, &items).await;
    assert!(
        first
            .results
            .iter()
            .all(|r| r.outcome == PushOutcome::Stored)
    );
    for _ in 0..2 {
        let again = push(srv, &dev.token, &items).await;
        assert!(
            again
                .results
                .iter()
                .all(|r| r.outcome == PushOutcome::Duplicate),
            "{again:?}"
        );
        // One result per item, in request order.
        let ids: Vec<_> = again.results.iter().map(|r| r.record_id).collect();
        let sent: Vec<_> = items.iter().map(|i| i.record_id).collect();
        assert_eq!(ids, sent);
    }
    let after = admin::stats(srv.storage.as_ref()).await.unwrap();
    assert_eq!(after.versions - before.versions, 6);
    assert_eq!(after.encounters - before.encounters, 6);
    assert_eq!(after.completed - before.completed, 5);
}

async fn conflict_and_stale(srv: &TestServer) {
    let dev = enroll(srv, "Conflict tablet").await;
    let mut e = encounter(RecordStatus::Completed);
    let original = item(&dev.key, &e, 4);
    assert_eq!(
        outcomes(&push(srv, &dev.token, std::slice::from_ref(&original)).await),
        vec![(PushOutcome::Stored, None)]
    );
    e.notes = "different content".into();
    let changed = item(&dev.key, &e, 4);
    assert_eq!(
        outcomes(&push(srv, &dev.token, &[changed]).await),
        vec![(PushOutcome::Rejected, Some(RejectReason::Conflict))]
    );

    // Drafts: rev 5 stored, then rev 3 is stale, an identical rev 5 is a duplicate.
    let mut d = encounter(RecordStatus::Draft);
    let d5 = item(&dev.key, &d, 5);
    d.notes = "older edit".into();
    let d3 = item(&dev.key, &d, 3);
    let r = push(srv, &dev.token, &[d5.clone(), d3, d5]).await;
    assert_eq!(
        outcomes(&r),
        vec![
            (PushOutcome::Stored, None),
            (PushOutcome::Stale, None),
            (PushOutcome::Duplicate, None)
        ]
    );
}

async fn ownership_and_feedback(srv: &TestServer) {
    let a = enroll(srv, "Tablet A").await;
    let b = enroll(srv, "Tablet B").await;
    let e = encounter(RecordStatus::Completed);
    push(srv, &a.token, &[item(&a.key, &e, 1)]).await;
    // B pushes a version of A's record, correctly signed with B's own key.
    let r = push(srv, &b.token, &[item(&b.key, &e, 2)]).await;
    assert_eq!(
        outcomes(&r),
        vec![(PushOutcome::Rejected, Some(RejectReason::NotOwner))]
    );

    let sup = supervisor(srv, "own.sup").await;
    let resp = srv
        .http
        .post(srv.url(&format!("/review/encounters/{}/decision", e.id)))
        .bearer_auth(&sup)
        .json(&serde_json::json!({"decision": "returned", "comment": "add a pain score", "revision": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);

    let fa = feedback(srv, &a.token, 0).await;
    assert_eq!(fa.items.len(), 1);
    assert_eq!(fa.items[0].record_id, e.id);
    assert_eq!(fa.items[0].decision, Decision::Returned);
    assert_eq!(fa.items[0].comment, "add a pain score");
    assert_eq!(fa.next_cursor, fa.items[0].cursor);
    let fb = feedback(srv, &b.token, 0).await;
    assert!(fb.items.is_empty(), "B must not see A's feedback");
    let again = feedback(srv, &a.token, fa.next_cursor).await;
    assert!(again.items.is_empty());
    assert_eq!(again.next_cursor, fa.next_cursor);
}

async fn feedback(srv: &TestServer, token: &str, since: i64) -> FeedbackResponse {
    let resp = srv
        .http
        .get(srv.url(&format!("/sync/feedback?since={since}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

async fn review_filters_and_decisions(srv: &TestServer) {
    let dev = enroll(srv, "Review tablet").await;
    let sup = supervisor(srv, "review.sup").await;
    let mut high = encounter(RecordStatus::Completed);
    high.incident.incident_number = "INC-REVIEW-1".into();
    high.patient.family_name = "Filtertest".into();
    let mut draft_only = encounter(RecordStatus::Draft);
    draft_only.incident.incident_number = "INC-REVIEW-2".into();
    push(
        srv,
        &dev.token,
        &[item(&dev.key, &high, 1), item(&dev.key, &draft_only, 1)],
    )
    .await;

    let list = |q: &str| {
        srv.http
            .get(srv.url(&format!("/review/encounters?{q}")))
            .bearer_auth(&sup)
            .send()
    };
    let all: ReviewList = list("q=inc-review").await.unwrap().json().await.unwrap();
    assert_eq!(all.total, 1, "drafts are not in the review queue");
    assert_eq!(all.items[0].record_id, high.id);
    assert_eq!(all.items[0].decision, None);
    assert_eq!(all.items[0].device_name, "Review tablet");
    let by_name: ReviewList = list("q=FILTERTEST").await.unwrap().json().await.unwrap();
    assert_eq!(by_name.total, 1);
    let news2 = all.items[0].latest_news2.unwrap();
    let above: ReviewList = list(&format!("q=inc-review&min_news2={}", news2 + 1))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(above.total, 0);
    let pending: ReviewList = list("q=inc-review&decision=pending")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(pending.total, 1);
    let future: ReviewList = list("from=2999-01-01T00:00:00Z")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(future.total, 0);

    // Amend to revision 2, then a decision on revision 1 is refused with 409.
    let mut amended = high.clone();
    amended.status = RecordStatus::Amended;
    amended.amendment_reason = Some("late observation added".into());
    push(srv, &dev.token, &[item(&dev.key, &amended, 2)]).await;
    let decide = |rev: u64, decision: &str| {
        srv.http
            .post(srv.url(&format!("/review/encounters/{}/decision", high.id)))
            .bearer_auth(&sup)
            .json(&serde_json::json!({"decision": decision, "comment": "", "revision": rev}))
            .send()
    };
    let body = expect_error(decide(1, "approved").await.unwrap(), 409, "superseded").await;
    assert!(body.message.contains("amended"));
    assert_eq!(decide(2, "approved").await.unwrap().status(), 201);
    let approved: ReviewList = list("q=inc-review&decision=approved")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(approved.total, 1);
    assert_eq!(approved.items[0].revision.get(), 2);
    assert_eq!(approved.counts.approved, 1);
    assert_eq!(approved.counts.pending, 0);

    let detail: ReviewDetail = srv
        .http
        .get(srv.url(&format!("/review/encounters/{}", high.id)))
        .bearer_auth(&sup)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(detail.versions.len(), 2);
    assert!(detail.versions.iter().all(|v| v.signature_valid));
    // The reviewer's own check, from the proofs this backend built: every version is signed by
    // the device's logged key and included in the log.
    let checks =
        ambulance_epr::review_client::proof::check_detail(&detail, &test_log_signer().public());
    assert_eq!(checks.len(), 2);
    assert!(
        checks
            .iter()
            .all(ambulance_epr::review_client::proof::SignatureCheck::is_proved),
        "{checks:?}"
    );
    assert_eq!(detail.decisions.len(), 1);
    assert_eq!(detail.device_id, dev.id);
    assert_eq!(
        detail.versions[1].document["amendment_reason"],
        "late observation added"
    );
}

/// `serve` and the ops commands (`enroll-device`, `add-user`, `verify`) open the same database
/// on their own connections (the same SQLite file, or the same PostgreSQL schema from several
/// replicas). A write that reads first (the audit chain's last hash) must wait for the other
/// writer, never fail with "database is locked" nor fork the chain.
async fn writers_on_separate_connections_wait_for_each_other(backend: Backend) {
    use ambulance_epr::server::storage::{Actor, AuditAction, AuditEvent, ReviewFilter};
    let db = TestDb::fresh(backend).await;
    let serving = db.open().await;
    let ops = db.open().await;
    let rounds = 200;
    let a = {
        let serving = serving.clone();
        tokio::spawn(async move {
            // A supervisor paging the queue: a read, then the audit entry for that read.
            let filter = ReviewFilter {
                limit: 50,
                ..ReviewFilter::default()
            };
            let supervisor = Actor::Supervisor("sup".to_owned());
            for _ in 0..rounds {
                serving
                    .review_list(&filter, &supervisor, chrono::Utc::now())
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok::<(), String>(())
        })
    };
    let b = tokio::spawn(async move {
        for i in 0..rounds {
            admin::create_enrolment_code(ops.as_ref(), &format!("Tablet {i}"))
                .await
                .map_err(|e| e.to_string())?;
            let event = AuditEvent::new(&Actor::Admin, AuditAction::Verified, format!("ops {i}"));
            ops.append_audit(&[event], chrono::Utc::now())
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok::<(), String>(())
    });
    a.await.unwrap().unwrap();
    b.await.unwrap().unwrap();
    check_audit_chain(serving.as_ref()).await.unwrap();
}

/// SQLite only (PostgreSQL keeps its own files): the server's database and its WAL are
/// readable by their owner only.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_database_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let db = TestDb::fresh(Backend::Sqlite).await;
    let storage = db.open().await;
    admin::create_enrolment_code(storage.as_ref(), "Mode check")
        .await
        .unwrap();
    let path = std::path::PathBuf::from(db.url.strip_prefix("sqlite://").unwrap());
    let wal = std::path::PathBuf::from(format!("{}-wal", path.display()));
    for p in [&path, &wal] {
        let mode = std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{p:?}");
    }
}
