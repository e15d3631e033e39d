//! Supervisor review end to end: a real server on loopback, a crew tablet (its store, its
//! sync engine and its app) and a supervisor using the same app, both driven through the
//! accessibility tree the way people use them. Plus the access cases: a tablet's token on
//! the review API, a decision on a superseded version, an expired session, no server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ambulance_epr::crypto::KdfParams;
use ambulance_epr::demo::complete_encounter;
use ambulance_epr::model::Milestone;
use ambulance_epr::protocol::{Decision, ReviewQuery};
use ambulance_epr::review_client::{ReviewClient, ReviewError};
use ambulance_epr::server::{self, ServerConfig, Storage, admin};
use ambulance_epr::store::{Store, migrate};
use ambulance_epr::sync::{Engine, SyncConfig};
use ambulance_epr::ui::{AppConfig, EprApp};
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use support::ui::settle;
use tokio::runtime::Runtime;

const CREW: &str = "crew";
const PIN: &str = "2468";
const SUPERVISOR: &str = "sup.jones";
const PASSWORD: &str = "copper kettle marsh lantern";
const INCIDENT: &str = "INC-000123";

struct TestServer {
    base_url: String,
    storage: Arc<dyn Storage>,
    _stop: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn start_server(rt: &Runtime, session_ttl_secs: u64) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("server.db").display());
    let storage = rt.block_on(server::open_storage(&url)).unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = ServerConfig {
        password_kdf: KdfParams::FAST_FOR_TESTS,
        session_ttl_secs,
        ..ServerConfig::default()
    };
    rt.spawn(server::serve(
        Arc::clone(&storage),
        config,
        listener,
        async {
            let _ = stopped.await;
        },
    ));
    rt.block_on(admin::add_user(
        storage.as_ref(),
        SUPERVISOR,
        admin::Role::Supervisor,
        PASSWORD,
        KdfParams::FAST_FOR_TESTS,
    ))
    .unwrap();
    TestServer {
        base_url: format!("http://{addr}"),
        storage,
        _stop: stop,
        _dir: dir,
    }
}

/// A crew tablet enrolled with the server, holding some demo records and one signed record
/// (incident INC-000123), everything pushed.
struct Crew {
    dir: tempfile::TempDir,
    store: Store,
    engine: Engine,
    record_id: uuid::Uuid,
}

fn crew_tablet(rt: &Runtime, srv: &TestServer) -> Crew {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::create_with(
        dir.path(),
        CREW,
        PIN,
        KdfParams::FAST_FOR_TESTS,
        migrate::latest_version(),
    )
    .unwrap();
    let code = rt
        .block_on(admin::create_enrolment_code(
            srv.storage.as_ref(),
            "Tablet 7",
        ))
        .unwrap()
        .code;
    rt.block_on(ambulance_epr::sync::enroll(&store, &srv.base_url, &code))
        .unwrap();
    ambulance_epr::demo::add_demo_data(&mut store, 8, 5).unwrap();
    let receipt = store
        .complete_and_sign(&complete_encounter(), "A. Paramedic", "PA000001")
        .unwrap();
    let engine = Engine::new(store.open_another().unwrap(), SyncConfig::default());
    let mut crew = Crew {
        dir,
        store,
        engine,
        record_id: receipt.record_id,
    };
    let report = crew.sync(rt);
    assert_eq!(report.pending, 0, "everything pushed");
    crew
}

impl Crew {
    fn sync(&mut self, rt: &Runtime) -> ambulance_epr::sync::CycleReport {
        rt.block_on(self.engine.run_cycle()).unwrap()
    }
}

fn harness(dir: &Path) -> Harness<'static, EprApp> {
    harness_with_idle(dir, AppConfig::default().idle_lock_after)
}

fn harness_with_idle(dir: &Path, idle_lock_after: Duration) -> Harness<'static, EprApp> {
    support::ui::harness(
        dir,
        AppConfig {
            autosave_quiet: Duration::from_millis(40),
            autosave_max_wait: Duration::from_millis(120),
            idle_lock_after,
            kdf: KdfParams::FAST_FOR_TESTS,
        },
    )
}

fn type_into(h: &mut Harness<'_, EprApp>, label: &str, text: &str) {
    let node = h.get_by_label(label);
    node.focus();
    node.type_text(text);
    settle(h);
}

fn replace_text(h: &mut Harness<'_, EprApp>, label: &str, text: &str) {
    h.get_by_label(label).focus();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.get_by_label(label).type_text(text);
    settle(h);
}

fn click(h: &mut Harness<'_, EprApp>, label: &str) {
    h.get_by_label(label).click();
    settle(h);
}

fn click_button(h: &mut Harness<'_, EprApp>, label: &str) {
    h.get_by_role_and_label(Role::Button, label).click();
    settle(h);
}

fn screen(h: &Harness<'_, EprApp>) -> &'static str {
    h.state().screen().name()
}

/// From the first-run screen of an empty data directory to the review queue.
fn supervisor_signs_in(h: &mut Harness<'_, EprApp>, srv: &TestServer) {
    assert_eq!(screen(h), "first run");
    click(h, "Supervisor sign-in…");
    assert_eq!(screen(h), "review sign-in");
    replace_text(h, "Server address", &srv.base_url);
    type_into(h, "Username", SUPERVISOR);
    type_into(h, "Password", PASSWORD);
    click_button(h, "Sign in");
    assert_eq!(
        screen(h),
        "review queue",
        "{:?}",
        h.state().review().unwrap().sign_in.error
    );
}

fn queue_total(h: &Harness<'_, EprApp>) -> u64 {
    h.state()
        .review()
        .unwrap()
        .queue
        .list
        .as_ref()
        .unwrap()
        .total
}

fn crew_unlocks(h: &mut Harness<'_, EprApp>) {
    type_into(h, "Passphrase", PIN);
    click_button(h, "Unlock");
    settle(h);
    assert_eq!(screen(h), "records");
}

#[test]
fn return_amend_and_approve_between_a_crew_and_a_supervisor() {
    let rt = runtime();
    let srv = start_server(&rt, 3600);
    let mut crew = crew_tablet(&rt, &srv);

    // The supervisor signs in from a computer that has no crew store at all.
    let sup_dir = tempfile::tempdir().unwrap();
    let mut sup = harness(sup_dir.path());
    supervisor_signs_in(&mut sup, &srv);
    let remembered = std::fs::read_to_string(sup_dir.path().join("review-server.json")).unwrap();
    assert!(remembered.contains(&srv.base_url));
    assert!(!remembered.contains(PASSWORD) && !remembered.contains(SUPERVISOR));
    let everything = queue_total(&sup);
    assert!(everything > 1, "the demo records are in the queue too");

    // Find it with a filter: pending, and the incident number.
    click(&mut sup, &format!("Pending ({everything})"));
    type_into(&mut sup, "Search", INCIDENT);
    click_button(&mut sup, "Apply filters");
    assert_eq!(queue_total(&sup), 1);
    sup.get_by_label("Pending (1)");
    sup.get_by_label_contains(INCIDENT).click();
    settle(&mut sup);
    assert_eq!(screen(&sup), "review record");
    sup.get_by_label("Signature checked here");
    sup.get_by_label("From Tablet 7");
    // Read-only: the times are shown, with nothing offering to stamp or clear them.
    sup.get_by_label("Times (24-hour clock)");
    for m in Milestone::ALL {
        assert!(sup.query_by_label(&format!("{} now", m.label())).is_none());
    }
    click(&mut sup, "Handover (ATMIST)");
    sup.get_by_label("Read aloud at handover. Generated from the record; it updates as you type.");
    click_button(&mut sup, "Observations");
    sup.get_by_label("All sets");

    // Returning needs a comment.
    assert!(
        sup.get_by_role_and_label(Role::Button, "Return to crew")
            .accesskit_node()
            .is_disabled()
    );
    let comment = "Please record the pain score after morphine";
    type_into(&mut sup, "Comment for the crew", comment);
    click_button(&mut sup, "Return to crew");
    sup.get_by_label_contains("Returned version 1 to the crew");
    let r = sup.state().review().unwrap().record.as_ref().unwrap();
    assert_eq!(r.decisions.len(), 1);
    assert_eq!(r.decisions[0].decision, Decision::Returned);
    assert_eq!(r.decisions[0].decided_by, SUPERVISOR);

    // The crew's next sync brings the comment; the record is easy to find.
    assert_eq!(crew.sync(&rt).feedback, 1);
    assert_eq!(
        crew.store.review_of(crew.record_id).unwrap(),
        Some((Decision::Returned, comment.to_owned()))
    );
    let mut tablet = harness(crew.dir.path());
    crew_unlocks(&mut tablet);
    click(&mut tablet, "Returned (1)");
    tablet.get_by_label_contains(INCIDENT).click();
    settle(&mut tablet);
    tablet.get_by_label("Returned by a supervisor");
    assert!(tablet.get_all_by_label_contains(comment).count() >= 1);

    // The crew amends with a reason and signs again.
    click(&mut tablet, "Amend…");
    click(&mut tablet, "Notes");
    type_into(
        &mut tablet,
        "Clinical notes",
        "Pain score 3/10 after morphine.",
    );
    click(&mut tablet, "Sign amendment…");
    type_into(
        &mut tablet,
        "Reason for amendment",
        "Pain score added as asked",
    );
    click_button(&mut tablet, "Sign amendment");
    settle(&mut tablet);
    {
        let ed = tablet.state().editor().unwrap();
        assert_eq!(
            ed.versions.len(),
            2,
            "dialog error {:?}, notice {:?}, mode {:?}",
            ed.dialog.as_ref().map(|d| d.error.clone()),
            ed.notice,
            ed.mode
        );
    }
    tablet.get_by_label("Returned by a supervisor; amended since");
    let report = crew.sync(&rt);
    assert_eq!(report.pending, 0);

    // Back in the queue the record is pending again, at its new version.
    click(&mut sup, "Back to queue");
    assert_eq!(queue_total(&sup), 1, "still under the pending filter");
    let row = &sup
        .state()
        .review()
        .unwrap()
        .queue
        .list
        .as_ref()
        .unwrap()
        .items[0];
    assert_eq!(row.decision, None);
    assert_eq!(row.revision.get(), 2);
    sup.get_by_label_contains(INCIDENT).click();
    settle(&mut sup);
    sup.get_by_label("Version 2 (newest)");
    click(&mut sup, "Versions and changes");
    sup.get_by_label("Reason for amendment: Pain score added as asked");
    let change = sup.get_by_label_contains("Pain score 3/10 after morphine.");
    let change = change.accesskit_node();
    let change = change.label().or(change.value()).unwrap_or_default();
    assert!(change.starts_with("– Notes: "), "{change}");
    click_button(&mut sup, "Approve");
    sup.get_by_label_contains("Approved version 2");

    // The crew sees it approved.
    assert_eq!(crew.sync(&rt).feedback, 1);
    click(&mut tablet, "Back to records");
    settle(&mut tablet);
    click(&mut tablet, "All (9)");
    let row = tablet.get_by_label_contains(INCIDENT);
    let label = row.accesskit_node().label().unwrap_or_default();
    assert!(label.ends_with("approved"), "{label}");
    row.click();
    settle(&mut tablet);
    tablet.get_by_label("Approved by a supervisor");

    // Signing out drops every record from memory.
    click_button(&mut sup, "Back to queue");
    click_button(&mut sup, "Sign out");
    assert_eq!(screen(&sup), "first run");
    assert!(sup.state().review().is_none());
}

#[test]
fn a_decision_on_a_superseded_version_is_refused_plainly_and_the_newest_is_shown() {
    let rt = runtime();
    let srv = start_server(&rt, 3600);
    let mut crew = crew_tablet(&rt, &srv);
    let mut sup = harness(tempfile::tempdir().unwrap().path());
    supervisor_signs_in(&mut sup, &srv);
    type_into(&mut sup, "Search", INCIDENT);
    click_button(&mut sup, "Apply filters");
    sup.get_by_label_contains(INCIDENT).click();
    settle(&mut sup);
    let comment = "The handover time is missing";
    type_into(&mut sup, "Comment for the crew", comment);

    // Meanwhile the crew amends and syncs.
    let mut e = crew.store.get(crew.record_id).unwrap();
    e.notes = "Handed over at 10:40.".into();
    crew.store
        .amend(&e, "Handover time added", "A. Paramedic", "PA000001")
        .unwrap();
    assert_eq!(crew.sync(&rt).pending, 0);

    click_button(&mut sup, "Flag for clinical audit");
    sup.get_by_label_contains("Not recorded: the crew amended this record after version 1");
    let review = sup.state().review().unwrap();
    let r = review.record.as_ref().unwrap();
    assert_eq!(r.versions.len(), 2, "the view reloaded");
    assert_eq!(
        r.shown_revision().map(|r| r.get()),
        Some(2),
        "the newest version is shown"
    );
    assert!(r.decisions.is_empty());
    assert_eq!(review.draft_comment(), Some(comment), "the comment is kept");
    click_button(&mut sup, "Flag for clinical audit");
    sup.get_by_label_contains("Flagged version 2 for clinical audit");
}

#[test]
fn an_expired_session_returns_to_sign_in_and_keeps_the_comment() {
    let rt = runtime();
    let session_ttl_secs = 3;
    let srv = start_server(&rt, session_ttl_secs);
    let _crew = crew_tablet(&rt, &srv);
    let mut sup = harness(tempfile::tempdir().unwrap().path());
    supervisor_signs_in(&mut sup, &srv);
    let signed_in = Instant::now();
    type_into(&mut sup, "Search", INCIDENT);
    click_button(&mut sup, "Apply filters");
    sup.get_by_label_contains(INCIDENT).click();
    settle(&mut sup);
    assert_eq!(screen(&sup), "review record");
    let comment = "Please add the time the patient was handed over";
    type_into(&mut sup, "Comment for the crew", comment);

    // Let the session run out, then try to return the record.
    let expired = signed_in + Duration::from_millis(session_ttl_secs * 1000 + 500);
    std::thread::sleep(expired.saturating_duration_since(Instant::now()));
    click_button(&mut sup, "Return to crew");
    assert_eq!(screen(&sup), "review sign-in");
    sup.get_by_label("Your session has ended. Sign in again: your unsent comment has been kept.");
    assert!(
        sup.state().review().unwrap().record.is_none(),
        "no record is held while signed out"
    );
    assert_eq!(sup.state().review().unwrap().draft_comment(), Some(comment));

    // Signing in again returns to the record with the comment in place.
    type_into(&mut sup, "Password", PASSWORD);
    click_button(&mut sup, "Sign in");
    assert_eq!(screen(&sup), "review record");
    assert_eq!(
        sup.get_by_label("Comment for the crew").value().as_deref(),
        Some(comment)
    );
    click_button(&mut sup, "Return to crew");
    sup.get_by_label_contains("Returned version 1 to the crew");
}

#[test]
fn a_tablet_token_cannot_review_and_an_unreachable_server_offers_retry() {
    let rt = runtime();
    let srv = start_server(&rt, 3600);
    let crew = crew_tablet(&rt, &srv);
    let device_token = crew
        .store
        .setting(ambulance_epr::sync::engine::DEVICE_TOKEN)
        .unwrap()
        .unwrap();
    let client = ReviewClient::new(&srv.base_url).unwrap();
    let refused = rt
        .block_on(client.list(&device_token, &ReviewQuery::default()))
        .unwrap_err();
    assert_eq!(refused, ReviewError::SessionEnded);
    assert!(refused.to_string().contains("not a supervisor sign-in"));
    let refused = rt
        .block_on(client.detail(&device_token, crew.record_id))
        .unwrap_err();
    assert_eq!(refused, ReviewError::SessionEnded);
    assert_eq!(
        rt.block_on(client.login(SUPERVISOR, "wrong password"))
            .unwrap_err(),
        ReviewError::WrongCredentials
    );

    // No server at this address: said plainly, with "Retry".
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let mut sup = harness(tempfile::tempdir().unwrap().path());
    click(&mut sup, "Supervisor sign-in…");
    replace_text(&mut sup, "Server address", &nowhere);
    type_into(&mut sup, "Username", SUPERVISOR);
    type_into(&mut sup, "Password", PASSWORD);
    click_button(&mut sup, "Sign in");
    assert_eq!(screen(&sup), "review sign-in");
    sup.get_by_label_contains("Cannot reach the review server");
    click_button(&mut sup, "Retry");
    sup.get_by_label_contains("Cannot reach the review server");
    // The right address works from the same form.
    replace_text(&mut sup, "Server address", &srv.base_url);
    click_button(&mut sup, "Sign in");
    assert_eq!(screen(&sup), "review queue");
}

#[test]
fn an_idle_supervisor_is_signed_out_and_the_comment_is_kept() {
    let rt = runtime();
    let srv = start_server(&rt, 3600);
    let _crew = crew_tablet(&rt, &srv);
    let mut sup = harness_with_idle(tempfile::tempdir().unwrap().path(), Duration::from_secs(2));
    supervisor_signs_in(&mut sup, &srv);
    type_into(&mut sup, "Search", INCIDENT);
    click_button(&mut sup, "Apply filters");
    sup.get_by_label_contains(INCIDENT).click();
    settle(&mut sup);
    assert_eq!(screen(&sup), "review record");
    let comment = "Left half-written when called away";
    type_into(&mut sup, "Comment for the crew", comment);

    // No touch or key for the idle time.
    support::ui::advance(Duration::from_millis(1999));
    sup.run();
    assert_eq!(
        screen(&sup),
        "review record",
        "still signed in before the idle time"
    );
    support::ui::advance(Duration::from_millis(1));
    sup.run();
    assert_eq!(
        screen(&sup),
        "review sign-in",
        "the idle supervisor is signed out"
    );
    sup.get_by_label(
        "Signed out after 1 minute without use. Sign in again: your unsent comment has been kept.",
    );
    assert!(
        sup.state().review().unwrap().record.is_none(),
        "no record is held while signed out"
    );
    assert_eq!(sup.state().review().unwrap().draft_comment(), Some(comment));
    // The server was told: the session no longer exists there either.
    let live_sessions = || {
        rt.block_on(admin::list_users(srv.storage.as_ref()))
            .unwrap()
            .iter()
            .find(|u| u.username == SUPERVISOR)
            .map(|u| u.live_sessions)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while live_sessions() != Some(0) {
        assert!(
            std::time::Instant::now() < deadline,
            "the session was not ended on the server"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    type_into(&mut sup, "Password", PASSWORD);
    click_button(&mut sup, "Sign in");
    assert_eq!(screen(&sup), "review record");
    assert_eq!(
        sup.get_by_label("Comment for the crew").value().as_deref(),
        Some(comment)
    );
}

#[test]
fn the_tablets_page_shows_what_each_tablet_has_not_sent_and_marks_a_day_old_record() {
    let rt = runtime();
    let srv = start_server(&rt, 3600);
    let crew = crew_tablet(&rt, &srv);
    let mut sup = harness(tempfile::tempdir().unwrap().path());
    supervisor_signs_in(&mut sup, &srv);
    click_button(&mut sup, "Tablets");
    assert_eq!(screen(&sup), "review tablets");
    sup.get_by_label("Tablet 7");
    sup.get_by_label("Nothing unsent");
    sup.get_by_label(env!("CARGO_PKG_VERSION"));
    assert!(
        sup.query_by_label_contains("over 24 hours").is_none()
            && sup.query_by_label_contains("held a record").is_none(),
        "nothing is overdue"
    );

    // The tablet then reports two versions waiting since yesterday (as one out of coverage
    // would on its next contact).
    let token = crew
        .store
        .setting(ambulance_epr::sync::engine::DEVICE_TOKEN)
        .unwrap()
        .unwrap();
    let report = serde_json::json!({
        "pending": 2,
        "oldest_pending_utc": chrono::Utc::now() - chrono::Duration::hours(30),
        "held_versions": 9,
        "app_version": "9.9.9",
    });
    let status = rt.block_on(async {
        reqwest::Client::new()
            .post(format!("{}/api/v1/sync/report", srv.base_url))
            .bearer_auth(token.as_str())
            .json(&report)
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 200);
    click_button(&mut sup, "Refresh");
    sup.get_by_label("2 unsent · over 24 hours");
    sup.get_by_label("1 tablet has held a record for more than 24 hours");
    sup.get_by_label("9.9.9");
    click_button(&mut sup, "Back to the queue");
    assert_eq!(screen(&sup), "review queue");
}

#[test]
fn the_supervisor_filters_the_queue_by_destination() {
    use ambulance_epr::model::Outcome;
    let rt = runtime();
    let srv = start_server(&rt, 3600);
    let crew = crew_tablet(&rt, &srv);
    // What the tablet signed, by destination code.
    let to_royal = crew
        .store
        .list(&Default::default())
        .unwrap()
        .iter()
        .map(|row| crew.store.get(row.id).unwrap())
        .filter(|e| e.status.is_signed())
        .filter(|e| {
            matches!(&e.outcome, Some(Outcome::ConveyedTo { ods_code: Some(c), .. }) if c == "XX1AA")
        })
        .count() as u64;
    let sup_dir = tempfile::tempdir().unwrap();
    let mut sup = harness(sup_dir.path());
    supervisor_signs_in(&mut sup, &srv);
    let everything = queue_total(&sup);
    sup.get_by_label("Destination").click();
    settle(&mut sup);
    sup.get_by_label("Sample Royal Infirmary (XX1AA)").click();
    settle(&mut sup);
    let start = Instant::now();
    while queue_total(&sup) == everything && start.elapsed() < Duration::from_secs(10) {
        settle(&mut sup);
    }
    assert_eq!(
        sup.state()
            .review()
            .unwrap()
            .queue
            .filters
            .destination
            .as_deref(),
        Some("XX1AA")
    );
    assert_eq!(queue_total(&sup), to_royal);
    assert!(to_royal < everything);
}
