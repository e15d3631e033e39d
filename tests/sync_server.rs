//! Sync against the real server on loopback, through the fault-injecting proxy: outages,
//! lost answers, server crashes, a device crash mid-sync, and random operation sequences.
//! Every check is the same: no record lost, no (record, revision) stored twice.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ambulance_epr::crypto::KdfParams;
use ambulance_epr::model::{Encounter, Revision};
use ambulance_epr::server::{self, ServerConfig, admin};
use ambulance_epr::store::{Store, SyncState, migrate};
use ambulance_epr::sync::{Engine, SyncConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::proxy::{FaultProxy, Faults};
use uuid::Uuid;

const PASS: &str = "granite puffin lagoon beacon";

fn free_port() -> u16 {
    support::net::free_port_below_ephemeral()
}

/// An `epr-server serve` child process on a fixed port, restartable.
struct ServerProcess {
    db_url: String,
    port: u16,
    child: Option<Child>,
}

impl ServerProcess {
    fn start(db_path: &Path, port: u16) -> Self {
        let mut s = Self {
            db_url: format!("sqlite://{}", db_path.display()),
            port,
            child: None,
        };
        s.restart();
        s
    }

    fn restart(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_epr-server"))
            .args([
                "serve",
                "--database",
                &self.db_url,
                "--listen",
                &format!("127.0.0.1:{}", self.port),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("the server exited at start-up: {status}");
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the server did not start listening within 20 s");
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn admin(&self, args: &[&str]) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_epr-server"))
            .args(args)
            .args(["--database", &self.db_url])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Every (record, revision) the server holds, with a count per pair.
async fn server_versions(db_url: &str) -> BTreeMap<(Uuid, Revision), u32> {
    let storage = server::open_storage(db_url).await.unwrap();
    let mut out = BTreeMap::new();
    let mut after = 0;
    loop {
        let page = storage.versions_after(after, 1000).await.unwrap();
        if page.is_empty() {
            break;
        }
        for v in &page {
            *out.entry((v.record_id, v.revision)).or_insert(0) += 1;
            after = after.max(v.seq);
        }
    }
    out
}

fn epr(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_epr"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("EPR_PASSPHRASE", PASS)
        .output()
        .unwrap()
}

fn new_store(dir: &Path) -> Store {
    Store::create_with(
        dir,
        "crew",
        PASS,
        KdfParams::FAST_FOR_TESTS,
        migrate::latest_version(),
    )
    .unwrap()
}

fn add_signed_records(store: &mut Store, count: u32, seed: u64) -> Vec<Uuid> {
    let mut rng = StdRng::seed_from_u64(seed);
    let start = chrono::Utc::now();
    (0..count)
        .map(|i| {
            let e = ambulance_epr::demo::synthetic_encounter(&mut rng, start, i);
            store
                .complete_and_sign(&e, "Test Paramedic", "PA000000")
                .unwrap()
                .record_id
        })
        .collect()
}

/// Every version the device made that must reach the server: all signed versions and the
/// latest draft of each record still in draft.
fn device_expected(store: &Store, ids: &[Uuid]) -> HashSet<(Uuid, Revision)> {
    let mut out = HashSet::new();
    for id in ids {
        let versions = store.versions(*id).unwrap();
        for v in &versions {
            if v.status.is_signed() {
                out.insert((*id, v.revision));
            }
        }
        if let Some(last) = versions.last() {
            out.insert((*id, last.revision));
        }
    }
    out
}

fn reference_json(device: &Path) -> serde_json::Value {
    let out = epr(device, &["reference", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The sample set with another version and trust name: a stand-in for a trust's own file.
fn trust_reference_file(dir: &Path, version: u32) -> std::path::PathBuf {
    let mut doc: serde_json::Value =
        serde_json::from_str(ambulance_epr::model::reference::SAMPLE_JSON).unwrap();
    doc["version"] = version.into();
    doc["sample"] = false.into();
    doc["trust"] = "Test Ambulance Service".into();
    let path = dir.join(format!("reference-v{version}.json"));
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    path
}

#[test]
fn reference_data_reaches_the_tablet_through_a_sync_and_a_tampered_set_never_does() {
    let dir = tempfile::tempdir().unwrap();
    let device = dir.path().join("device");
    let db_path = dir.path().join("server.db");
    let mut server = ServerProcess::start(&db_path, free_port());
    let code = server.admin(&["enroll-device", "--name", "Tablet 9"]);
    let code = code.lines().last().unwrap().trim().to_owned();
    drop(new_store(&device));

    // Before enrolment and before any set arrives: the labelled sample.
    let before = reference_json(&device);
    assert_eq!(before["source"], "sample");
    assert_eq!(before["sample"], true);
    let out = epr(
        &device,
        &["enroll", "--server", &server.url(), "--code", &code],
    );
    assert!(out.status.success());

    let v1 = trust_reference_file(dir.path(), 1);
    server.admin(&["reference", "import", "--file", v1.to_str().unwrap()]);
    let out = epr(&device, &["sync", "--once", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let got = reference_json(&device);
    assert_eq!(got["source"], "server");
    assert_eq!(got["version"], 1);
    assert_eq!(got["trust"], "Test Ambulance Service");
    assert_eq!(got["counts"]["drugs"], before["counts"]["drugs"]);
    assert!(got["last_refused"].is_null());

    // The server gone: every command is a fresh process on the store, and the set stays.
    server.kill();
    let offline = reference_json(&device);
    assert_eq!(offline["source"], "server");
    assert_eq!(offline["version"], 1);

    // Version 2, then its document altered in the database after the key signed it: the
    // server no longer vouches for it and does not serve it, so the tablet keeps version 1.
    // (A tablet offered such a set refuses it too: `sync::integrity` tests.)
    let v2 = trust_reference_file(dir.path(), 2);
    server.admin(&["reference", "import", "--file", v2.to_str().unwrap()]);
    {
        let conn = rusqlite::Connection::open(&db_path).unwrap();
        let changed = conn
            .execute(
                "UPDATE reference_versions SET document = replace(document, 'Test Ambulance', 'Forged Ambulance') WHERE version = 2",
                [],
            )
            .unwrap();
        assert_eq!(changed, 1);
        // A row written straight into the database, with no statement from the key.
        conn.execute(
            "INSERT INTO reference_versions (version, document, document_sha256, signed_note, imported_at_utc) \
             SELECT 3, document, document_sha256, 'not signed', imported_at_utc FROM reference_versions WHERE version = 2",
            [],
        )
        .unwrap();
    }
    server.restart();
    let out = epr(&device, &["sync", "--once", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "records still sync: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kept = reference_json(&device);
    assert_eq!(kept["version"], 1);
    assert_eq!(kept["trust"], "Test Ambulance Service");

    // Version 4, imported properly, is taken.
    let v4 = trust_reference_file(dir.path(), 4);
    server.admin(&["reference", "import", "--file", v4.to_str().unwrap()]);
    let out = epr(&device, &["sync", "--once", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let now = reference_json(&device);
    assert_eq!(now["version"], 4);
    assert!(now["last_refused"].is_null());
}

#[test]
fn server_down_from_the_start_queues_then_drains() {
    let dir = tempfile::tempdir().unwrap();
    let device = dir.path().join("device");
    let port = free_port();
    let mut server = ServerProcess::start(&dir.path().join("server.db"), port);
    let code = server.admin(&["enroll-device", "--name", "Tablet 7"]);
    let code = code.lines().last().unwrap().trim().to_owned();
    drop(new_store(&device));
    let out = epr(
        &device,
        &["enroll", "--server", &server.url(), "--code", &code],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.kill();

    let mut store = Store::unlock(&device, None, PASS).unwrap();
    let ids = add_signed_records(&mut store, 25, 1);
    drop(store);

    let out = epr(&device, &["sync", "--once", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(75),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["reachable"], false);
    assert_eq!(report["pending"], 25);
    assert_eq!(report["pushed"], 0);
    let status: serde_json::Value =
        serde_json::from_slice(&epr(&device, &["status", "--json"]).stdout).unwrap();
    assert_eq!(status["pending_sync"], 25, "nothing lost while offline");

    server.restart();
    let out = epr(&device, &["sync", "--once", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["pushed"], 25);
    assert_eq!(report["pending"], 0);
    assert_eq!(report["reachable"], true);
    let status: serde_json::Value =
        serde_json::from_slice(&epr(&device, &["status", "--json"]).stdout).unwrap();
    assert_eq!(status["pending_sync"], 0);
    assert!(status["last_sync_utc"].is_string());

    server.kill();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let held = rt.block_on(server_versions(&server.db_url));
    assert_eq!(held.len(), 25);
    assert!(held.values().all(|n| *n == 1));
    for id in ids {
        assert!(held.contains_key(&(id, Revision::FIRST)));
    }
}

#[test]
fn ten_thousand_records_through_faults_and_two_server_crashes_arrive_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let device = dir.path().join("device");
    let port = free_port();
    let server = ServerProcess::start(&dir.path().join("server.db"), port);
    let code = server.admin(&["enroll-device", "--name", "Tablet 10k"]);
    let code = code.lines().last().unwrap().trim().to_owned();
    let mut store = new_store(&device);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let proxy = rt.block_on(FaultProxy::start(
        format!("127.0.0.1:{port}").parse().unwrap(),
        42,
    ));
    rt.block_on(ambulance_epr::sync::enroll(&store, &proxy.url(), &code))
        .unwrap();

    let mut ids = add_signed_records(&mut store, 10_000, 7);
    // Some drafts too, edited several times (only the latest must arrive).
    let mut drafts = Vec::new();
    for i in 0..50 {
        let mut e = Encounter::new_draft(chrono::Utc::now());
        for n in 0..3 {
            e.notes = format!("draft {i} edit {n}");
            store.save_draft(&e).unwrap();
        }
        drafts.push(e.id);
    }
    ids.extend(&drafts);

    proxy.set(Faults {
        cut_request: 0.03,
        cut_response: 0.05,
        latency: Duration::from_millis(1),
        ..Faults::default()
    });
    let config = SyncConfig {
        batch_max_items: 100,
        request_timeout: Duration::from_secs(10),
        ..SyncConfig::default()
    };
    let mut engine = Engine::new(store.open_another().unwrap(), config);
    // Crash the server twice in the middle of the drain, from another thread, restarting it
    // after a short outage each time.
    let server = Arc::new(std::sync::Mutex::new(server));
    let crasher = {
        let server = server.clone();
        std::thread::spawn(move || {
            for delay_ms in [1_500u64, 2_500] {
                std::thread::sleep(Duration::from_millis(delay_ms));
                server.lock().unwrap().kill();
                std::thread::sleep(Duration::from_millis(400));
                server.lock().unwrap().restart();
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut amended = false;
    let mut failed_cycles = 0;
    loop {
        assert!(
            Instant::now() < deadline,
            "the drain did not finish in 5 minutes"
        );
        match rt.block_on(engine.run_cycle()) {
            Ok(_) => {}
            Err(_) => failed_cycles += 1,
        }
        if !amended && failed_cycles > 0 {
            // Amend records that were already pushed, while the server is (or was) down.
            for id in ids.iter().take(100) {
                let e = store.get(*id).unwrap();
                store
                    .amend(&e, "Corrected after handover", "Test Paramedic", "PA000000")
                    .unwrap();
            }
            amended = true;
        }
        if crasher.is_finished() && amended && store.status_counts().unwrap().pending_sync == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    crasher.join().unwrap();
    assert!(failed_cycles >= 1, "the crashes were felt by the device");
    // A last clean cycle without faults pulls feedback and confirms nothing is left.
    proxy.set(Faults::default());
    let report = rt.block_on(engine.run_cycle()).unwrap();
    assert_eq!(report.pending, 0);
    assert_eq!(report.quarantined, 0);
    assert!(
        proxy
            .stats
            .responses_cut
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0,
        "answers were lost on the way"
    );
    assert!(
        proxy
            .stats
            .requests_cut
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0,
        "requests were cut"
    );

    let db_url = server.lock().unwrap().db_url.clone();
    server.lock().unwrap().kill();
    let held = rt.block_on(server_versions(&db_url));
    let expected = device_expected(&store, &ids);
    let duplicated: Vec<_> = held.iter().filter(|(_, n)| **n != 1).collect();
    assert!(duplicated.is_empty(), "stored twice: {}", duplicated.len());
    let missing: Vec<_> = expected.iter().filter(|k| !held.contains_key(k)).collect();
    assert!(
        missing.is_empty(),
        "{} versions missing on the server",
        missing.len()
    );
    // Every record's latest revision is on the server.
    for id in &ids {
        let latest = store.summary(*id).unwrap().revision;
        assert!(
            held.contains_key(&(*id, latest)),
            "latest revision of a record missing"
        );
        assert_eq!(store.summary(*id).unwrap().sync_state, SyncState::Synced);
    }
    // Nothing on the server that the device did not push.
    let device_versions: HashSet<(Uuid, Revision)> = ids
        .iter()
        .flat_map(|id| {
            store
                .versions(*id)
                .unwrap()
                .into_iter()
                .map(move |v| (*id, v.revision))
        })
        .collect();
    assert!(held.keys().all(|k| device_versions.contains(k)));
    let out = Command::new(env!("CARGO_BIN_EXE_epr-server"))
        .args(["verify", "--database", &db_url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "verify: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn the_device_killed_mid_sync_resumes_without_loss_or_duplication() {
    let dir = tempfile::tempdir().unwrap();
    let device = dir.path().join("device");
    let port = free_port();
    let server = ServerProcess::start(&dir.path().join("server.db"), port);
    let code = server.admin(&["enroll-device", "--name", "Tablet K"]);
    let code = code.lines().last().unwrap().trim().to_owned();
    let mut store = new_store(&device);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let proxy = rt.block_on(FaultProxy::start(
        format!("127.0.0.1:{port}").parse().unwrap(),
        9,
    ));
    rt.block_on(ambulance_epr::sync::enroll(&store, &proxy.url(), &code))
        .unwrap();
    let ids = add_signed_records(&mut store, 1_500, 3);
    drop(store);
    // Slow the link so the kill lands mid-drain.
    proxy.set(Faults {
        latency: Duration::from_millis(30),
        ..Faults::default()
    });
    let mut rng = StdRng::seed_from_u64(11);
    for _ in 0..3 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_epr"))
            .arg("--data-dir")
            .arg(&device)
            .args(["sync", "--once"])
            .env("EPR_PASSPHRASE", PASS)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.random_range(150..600)));
        let _ = child.kill();
        let _ = child.wait();
    }
    proxy.set(Faults::default());
    let out = epr(&device, &["sync", "--once", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = Store::unlock(&device, None, PASS).unwrap();
    assert_eq!(store.status_counts().unwrap().pending_sync, 0);
    assert!(store.integrity_problems().unwrap().is_empty());
    let held = rt.block_on(server_versions(&server.db_url));
    assert_eq!(held.len(), ids.len());
    assert!(held.values().all(|n| *n == 1));
    for id in &ids {
        assert!(held.contains_key(&(*id, Revision::FIRST)));
        assert_eq!(store.summary(*id).unwrap().sync_state, SyncState::Synced);
    }
}

/// The operations a property test strings together.
#[derive(Debug, Clone)]
enum Op {
    NewDraft,
    Edit(usize),
    Complete(usize),
    Amend(usize),
    ServerDown,
    ServerUp,
    LoseAnswers,
    Sync,
    RestartClient,
}

fn op_strategy() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        3 => Just(Op::NewDraft),
        3 => (0usize..8).prop_map(Op::Edit),
        2 => (0usize..8).prop_map(Op::Complete),
        1 => (0usize..8).prop_map(Op::Amend),
        1 => Just(Op::ServerDown),
        1 => Just(Op::ServerUp),
        1 => Just(Op::LoseAnswers),
        3 => Just(Op::Sync),
        1 => Just(Op::RestartClient),
    ]
}

struct InProcessServer {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

async fn start_in_process(
    storage: Arc<dyn server::Storage>,
    listener: tokio::net::TcpListener,
) -> InProcessServer {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = ServerConfig {
        password_kdf: KdfParams::FAST_FOR_TESTS,
        ..ServerConfig::default()
    };
    let task = tokio::spawn(async move {
        let _ = server::serve(storage, config, listener, async {
            let _ = stopped.await;
        })
        .await;
    });
    InProcessServer {
        stop: Some(stop),
        task,
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 12, .. proptest::prelude::ProptestConfig::default() })]
    #[test]
    fn random_sequences_never_lose_or_duplicate(ops in proptest::collection::vec(op_strategy(), 5..40)) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let device = dir.path().join("device");
        let db_url = format!("sqlite://{}", dir.path().join("server.db").display());
        let storage = rt.block_on(server::open_storage(&db_url)).unwrap();
        let code = rt.block_on(admin::create_enrolment_code(storage.as_ref(), "Prop")).unwrap().code;
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let upstream = listener.local_addr().unwrap();
        let srv = rt.block_on(async { start_in_process(storage.clone(), listener).await });
        let proxy = rt.block_on(FaultProxy::start(upstream, 5));
        let mut store = new_store(&device);
        rt.block_on(ambulance_epr::sync::enroll(&store, &proxy.url(), &code)).unwrap();
        let config = SyncConfig { request_timeout: Duration::from_secs(5), ..SyncConfig::default() };
        let mut engine = Engine::new(store.open_another().unwrap(), config.clone());
        let mut records: Vec<Encounter> = Vec::new();
        let mut rng = StdRng::seed_from_u64(ops.len() as u64);
        for op in &ops {
            match op {
                Op::NewDraft => {
                    let e = ambulance_epr::demo::synthetic_encounter(&mut rng, chrono::Utc::now(), records.len() as u32);
                    store.save_draft(&e).unwrap();
                    records.push(e);
                }
                Op::Edit(i) => {
                    let n = records.len().max(1);
                    if let Some(e) = records.get_mut(i % n) {
                        e.notes.push('+');
                        if store.get(e.id).unwrap().status.is_signed() {
                            store.save_amendment_draft(e).unwrap();
                        } else {
                            store.save_draft(e).unwrap();
                        }
                    }
                }
                Op::Complete(i) => {
                    if let Some(e) = records.get(i % records.len().max(1))
                        && !store.get(e.id).unwrap().status.is_signed() {
                            store.complete_and_sign(e, "P", "PA1").unwrap();
                        }
                }
                Op::Amend(i) => {
                    let n = records.len().max(1);
                    if let Some(e) = records.get_mut(i % n)
                        && store.get(e.id).unwrap().status.is_signed() {
                            e.notes.push('*');
                            store.amend(e, "correction", "P", "PA1").unwrap();
                        }
                }
                Op::ServerDown => proxy.set(Faults { refuse: true, ..Faults::default() }),
                Op::ServerUp => proxy.set(Faults::default()),
                Op::LoseAnswers => proxy.set(Faults { cut_response: 1.0, ..Faults::default() }),
                Op::Sync => { let _ = rt.block_on(engine.run_cycle()); }
                Op::RestartClient => {
                    drop(engine);
                    drop(store);
                    store = Store::unlock(&device, None, PASS).unwrap();
                    engine = Engine::new(store.open_another().unwrap(), config.clone());
                }
            }
        }
        proxy.set(Faults::default());
        let report = rt.block_on(engine.run_cycle()).unwrap();
        proptest::prop_assert_eq!(report.pending, 0);
        proptest::prop_assert_eq!(report.quarantined, 0);
        let ids: Vec<Uuid> = records.iter().map(|e| e.id).collect();
        let held = rt.block_on(server_versions(&db_url));
        proptest::prop_assert!(held.values().all(|n| *n == 1));
        for k in device_expected(&store, &ids) {
            proptest::prop_assert!(held.contains_key(&k), "missing {:?}", k);
        }
        for id in &ids {
            proptest::prop_assert_eq!(store.summary(*id).unwrap().sync_state, SyncState::Synced);
        }
        let mut srv = srv;
        if let Some(stop) = srv.stop.take() { let _ = stop.send(()); }
        let _ = rt.block_on(srv.task);
    }
}
