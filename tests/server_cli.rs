//! The `epr-server` binary as ops run it: admin subcommands, `serve` with graceful shutdown
//! on SIGTERM, `verify` catching a document altered in the database, and scale-out (two
//! `serve` processes on one database receiving the same batches at once). Each test runs
//! with `--database` a fresh `sqlite://` file and a fresh-schema `postgres://` URL
//! (`name::sqlite`, `name::postgres`; see `both_backends!`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod server_common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ambulance_epr::model::RecordStatus;
use ambulance_epr::protocol::*;
use ambulance_epr::server::storage::check_audit_chain;
use server_common::*;

both_backends!(
    async: admin_commands_serve_and_verify,
    reference_import_takes_a_file_whole_or_not_at_all,
    two_replicas_on_one_store_each_version_once,
);

fn epr_server(args: &[&str], db: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_epr-server"))
        .args(args)
        .arg("--database")
        .arg(db)
        .env("EPR_SIGNING_KEY", test_key_path(db))
        .env("EPR_PASSWORD", SUPERVISOR_PASSWORD)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A `serve` process on an ephemeral loopback port; killed if the test fails early.
struct ServeProcess {
    child: Child,
    base: String,
    log: std::path::PathBuf,
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_serve(db: &str, log_dir: &std::path::Path, name: &str) -> ServeProcess {
    let log = log_dir.join(format!("{name}.log"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_epr-server"))
        .args(["serve", "--listen", "127.0.0.1:0", "--database", db])
        .env("EPR_SIGNING_KEY", test_key_path(db))
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| {
            let _ = child.wait();
            panic!(
                "serve did not start: {line:?}; its log: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        })
        .to_owned();
    assert!(addr.starts_with("127.0.0.1:"));
    ServeProcess {
        child,
        base: format!("http://{addr}/api/v1"),
        log,
    }
}

/// Sends SIGTERM and waits (bounded) for a clean exit.
fn terminate(p: &mut ServeProcess) {
    let pid = p.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = p.child.try_wait().unwrap() {
            assert!(status.success(), "serve exited with {status}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A handle on a server started as a process, for the shared helpers.
async fn client_for(base: &str, db: &str) -> TestServer {
    let storage = ambulance_epr::server::open_storage(db).await.unwrap();
    let mut srv = start(storage, None).await;
    // Point the helpers at the process, not the in-process server they started.
    srv.base = base.to_owned();
    srv
}

async fn admin_commands_serve_and_verify(backend: Backend) {
    let test_db = TestDb::fresh(backend).await;
    let db = test_db.url.clone();
    let dir = test_db.dir.path();

    let out = epr_server(&["enroll-device", "--name", "Tablet 1"], &db);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let code = stdout(&out).lines().last().unwrap().trim().to_owned();
    assert_eq!(code.len(), 24, "{code}");

    let out = epr_server(
        &["add-user", "--username", "cli.sup", "--role", "supervisor"],
        &db,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = epr_server(
        &["add-user", "--username", "cli.sup", "--role", "supervisor"],
        &db,
    );
    assert!(!out.status.success(), "a duplicate username is refused");

    let mut serve = spawn_serve(&db, dir, "serve");
    let srv = client_for(&serve.base, &db).await;
    let dev = enroll_with_code(&srv.http, &serve.base, &code, "Tablet 1").await;
    let completed: Vec<_> = (0..3).map(|_| encounter(RecordStatus::Completed)).collect();
    let mut items: Vec<_> = completed.iter().map(|e| item(&dev.key, e, 1)).collect();
    items.push(item(&dev.key, &encounter(RecordStatus::Draft), 1));
    let r = push(&srv, &dev.token, &items).await;
    assert!(r.results.iter().all(|x| x.outcome == PushOutcome::Stored));
    let token = login(&srv, "cli.sup", SUPERVISOR_PASSWORD).await;
    let list: ReviewList = srv
        .http
        .get(format!("{}/review/encounters?q=mctest", serve.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.total, 3);
    terminate(&mut serve);

    // Logs carry request ids and outcomes, never patient data.
    let log = std::fs::read_to_string(&serve.log).unwrap();
    assert!(log.contains("request_id"), "{log}");
    assert!(log.contains("stored=4"), "{log}");
    for secret in ["McTestface", "Testy", "9990000018", "INC-000123", "mctest"] {
        assert!(!log.contains(secret), "log leaks patient data: {secret}");
    }

    let out = epr_server(&["stats", "--json"], &db);
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["encounters"], 4);
    assert_eq!(stats["versions"], 4);
    assert_eq!(stats["devices"], 1);
    assert_eq!(stats["completed"], 3);

    let out = epr_server(&["verify"], &db);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("4 versions verified"),
        "{}",
        stdout(&out)
    );

    // A backup, restored, verifies with the same log key: SQLite through `backup`, PostgreSQL
    // through the pg_dump procedure the README gives (`backup` refuses it and writes nothing).
    let key = test_key_path(&db);
    let key = key.to_str().unwrap();
    let copy = dir.join("backup.db");
    let out = epr_server(&["backup", "--out", copy.to_str().unwrap()], &db);
    let restored = match backend {
        Backend::Sqlite => {
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            format!("sqlite://{}", copy.display())
        }
        Backend::Postgres => {
            assert_eq!(out.status.code(), Some(1));
            assert!(String::from_utf8_lossy(&out.stderr).contains("pg_dump"));
            assert!(!copy.exists(), "nothing written");
            let schema = test_db.postgres_schema().unwrap();
            let base = postgres_base_url().unwrap();
            let dump = dir.join("epr.dump");
            let run = |program: &str, args: &[&str]| {
                let out = Command::new(program)
                    .args(args)
                    .output()
                    .unwrap_or_else(|e| {
                        panic!("{program} is needed for the PostgreSQL backup procedure: {e}")
                    });
                assert!(
                    out.status.success(),
                    "{program}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            };
            run(
                "pg_dump",
                &[
                    "--dbname",
                    &base,
                    "--schema",
                    schema,
                    "--format=custom",
                    "--file",
                    dump.to_str().unwrap(),
                ],
            );
            // The database is lost, then restored from the dump.
            test_db
                .execute_behind_the_servers_back(&format!("DROP SCHEMA {schema} CASCADE"))
                .await;
            assert_eq!(
                epr_server(&["verify", "--signing-key", key], &db)
                    .status
                    .code(),
                Some(1),
                "gone before the restore"
            );
            run(
                "pg_restore",
                &["--no-owner", "--dbname", &base, dump.to_str().unwrap()],
            );
            db.clone()
        }
    };
    let out = epr_server(&["verify", "--signing-key", key], &restored);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("4 versions verified"),
        "{}",
        stdout(&out)
    );

    // The trust's own export: one document Bundle per signed record, counts matching stats,
    // and a manifest naming a checkpoint signed with the log key.
    let export = dir.join("export");
    let export_args = [
        "export",
        "--format",
        "fhir-ndjson",
        "--out",
        export.to_str().unwrap(),
    ];
    let out = epr_server(&export_args, &db);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = std::fs::read_to_string(export.join("Bundle.ndjson")).unwrap();
    let bundles: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(bundles.len(), stats["completed"].as_u64().unwrap() as usize);
    for b in &bundles {
        assert_eq!(b["resourceType"], "Bundle");
        assert_eq!(b["type"], "document");
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(export.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["output"][0]["count"], 3);
    let vkey = stdout(&epr_server(&["key", "--public"], &db))
        .trim()
        .to_owned();
    let log_key = ambulance_epr::transparency::LogPublicKey::from_vkey(&vkey).unwrap();
    ambulance_epr::transparency::open_checkpoint(
        manifest["checkpoint"].as_str().unwrap(),
        &log_key,
    )
    .unwrap();
    // Never into a directory holding anything; --since leaves older records out.
    let out = epr_server(&export_args, &db);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));
    let later = dir.join("export-later");
    let out = epr_server(
        &[
            "export",
            "--format",
            "fhir-ndjson",
            "--out",
            later.to_str().unwrap(),
            "--since",
            "2999-01-01T00:00:00Z",
        ],
        &db,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(later.join("Bundle.ndjson")).unwrap(),
        ""
    );

    // Someone edits a signed document directly in the database.
    let victim = completed[1].id;
    let n = test_db
        .execute_behind_the_servers_back(&format!(
            "UPDATE versions SET document = replace(document, 'McTestface', 'McAltered')
             WHERE record_id = '{victim}'"
        ))
        .await;
    assert_eq!(n, 1);
    let out = epr_server(&["verify"], &db);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains(&victim.to_string()), "{text}");
    assert!(!text.contains(&completed[0].id.to_string()), "{text}");
    assert!(text.contains("1 of 4"), "{text}");

    // Editing the audit trail breaks its chain, and verify says so.
    let n = test_db
        .execute_behind_the_servers_back(
            "UPDATE audit SET actor = 'admin' WHERE action = 'version_stored'",
        )
        .await;
    assert!(n > 0);
    let out = epr_server(&["verify"], &db);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("BAD audit chain"), "{}", stdout(&out));

    // Revocation from the command line.
    let out = epr_server(&["revoke-device", &dev.id.to_string()], &db);
    assert!(out.status.success());
    let out = epr_server(&["revoke-device", &uuid::Uuid::now_v7().to_string()], &db);
    assert_eq!(out.status.code(), Some(1));
    let out = epr_server(&["stats", "--json"], &db);
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["revoked_devices"], 1);
}

async fn two_replicas_on_one_store_each_version_once(backend: Backend) {
    let test_db = TestDb::fresh(backend).await;
    let db = test_db.url.clone();
    let dir = &test_db.dir;
    // Both start together: migrations must not race.
    let (mut a, mut b) = std::thread::scope(|s| {
        let a = s.spawn(|| spawn_serve(&db, dir.path(), "a"));
        let b = s.spawn(|| spawn_serve(&db, dir.path(), "b"));
        (a.join().unwrap(), b.join().unwrap())
    });
    let srv_a = client_for(&a.base, &db).await;
    let srv_b = client_for(&b.base, &db).await;

    const DEVICES: usize = 4;
    const BATCHES: usize = 3;
    const PER_BATCH: usize = 20;
    let mut tasks = Vec::new();
    for d in 0..DEVICES {
        let dev = enroll(&srv_a, &format!("Scale {d}")).await;
        let (base_a, base_b) = (a.base.clone(), b.base.clone());
        let http = srv_a.http.clone();
        tasks.push(tokio::spawn(async move {
            let mut stored = 0usize;
            for _ in 0..BATCHES {
                let items: Vec<PushItem> = (0..PER_BATCH)
                    .map(|i| {
                        let status = if i % 4 == 0 {
                            RecordStatus::Draft
                        } else {
                            RecordStatus::Completed
                        };
                        item(&dev.key, &encounter(status), 1)
                    })
                    .collect();
                let body = PushRequest {
                    items,
                    verified_checkpoint: None,
                    device_audit_head: None,
                    signers: Vec::new(),
                };
                let send = |base: String| {
                    http.post(format!("{base}/sync/push"))
                        .bearer_auth(&dev.token)
                        .json(&body)
                        .send()
                };
                let (ra, rb) = tokio::join!(send(base_a.clone()), send(base_b.clone()));
                let ra: PushResponse = ra.unwrap().json().await.unwrap();
                let rb: PushResponse = rb.unwrap().json().await.unwrap();
                for (x, y) in ra.results.iter().zip(&rb.results) {
                    let pair = [x.outcome, y.outcome];
                    assert!(
                        pair.contains(&PushOutcome::Stored)
                            && pair.contains(&PushOutcome::Duplicate),
                        "each version is stored by exactly one replica: {pair:?}"
                    );
                    stored += 1;
                }
            }
            stored
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    assert_eq!(total, DEVICES * BATCHES * PER_BATCH);

    let stats = ambulance_epr::server::admin::stats(srv_a.storage.as_ref())
        .await
        .unwrap();
    assert_eq!(stats.versions as usize, total);
    assert_eq!(stats.encounters as usize, total);
    check_audit_chain(srv_a.storage.as_ref()).await.unwrap();

    // A decision taken on one replica reaches the device through the other.
    let dev = enroll(&srv_b, "Feedback").await;
    let e = encounter(RecordStatus::Completed);
    push(&srv_a, &dev.token, &[item(&dev.key, &e, 1)]).await;
    let token = supervisor(&srv_b, "scale.sup").await;
    let resp = srv_b
        .http
        .post(format!("{}/review/encounters/{}/decision", b.base, e.id))
        .bearer_auth(&token)
        .json(&serde_json::json!({"decision": "approved", "revision": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let f: FeedbackResponse = srv_a
        .http
        .get(format!("{}/sync/feedback", a.base))
        .bearer_auth(&dev.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(f.items.len(), 1);

    terminate(&mut a);
    terminate(&mut b);
    let out = epr_server(&["verify"], &db);
    assert!(out.status.success(), "{}", stdout(&out));
    check_audit_chain(srv_a.storage.as_ref()).await.unwrap();
}

/// The sample set with `change` made to it, written to a file.
fn reference_file(
    dir: &std::path::Path,
    name: &str,
    change: impl FnOnce(&mut serde_json::Value),
) -> String {
    let mut doc: serde_json::Value =
        serde_json::from_str(ambulance_epr::model::reference::SAMPLE_JSON).unwrap();
    change(&mut doc);
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    path.to_str().unwrap().to_owned()
}

async fn reference_import_takes_a_file_whole_or_not_at_all(backend: Backend) {
    let test_db = TestDb::fresh(backend).await;
    let db = test_db.url.clone();
    let dir = test_db.dir.path();
    let show = |db: &str| -> serde_json::Value {
        let out = epr_server(&["reference", "show", "--json"], db);
        assert!(out.status.success());
        serde_json::from_slice(&out.stdout).unwrap()
    };
    assert!(show(&db).is_null(), "nothing imported yet");

    let v1 = reference_file(dir, "v1.json", |d| d["sample"] = false.into());
    let out = epr_server(&["reference", "import", "--file", &v1], &db);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let held = show(&db);
    assert_eq!(held["version"], 1);
    assert_eq!(held["sample"], false);
    assert!(held["counts"]["drugs"].as_u64().unwrap() >= 5);
    assert!(held["counts"]["destinations"].as_u64().unwrap() >= 3);
    assert!(held["counts"]["staff"].as_u64().unwrap() >= 3);
    assert!(held["signed_at_utc"].is_string());

    // Each bad file is refused whole, naming the path of its first problem; version 1 stays.
    type Change = Box<dyn FnOnce(&mut serde_json::Value)>;
    let bad: Vec<(&str, Change, &str)> = vec![
        (
            "duplicate id",
            Box::new(|d| d["formulary"][1]["id"] = d["formulary"][0]["id"].clone()),
            "formulary[1].id",
        ),
        (
            "unknown unit",
            Box::new(|d| d["formulary"][0]["unit"] = "mcg".into()),
            "formulary[0].unit",
        ),
        (
            "minimum above maximum",
            Box::new(|d| {
                d["formulary"][0]["adult_dose"] = serde_json::json!({ "min": 10, "max": 5 })
            }),
            "formulary[0].adult_dose",
        ),
        (
            "destination without a code",
            Box::new(|d| d["destinations"][1]["ods_code"] = "".into()),
            "destinations[1].ods_code",
        ),
        (
            "not newer",
            Box::new(|d| d["sample"] = false.into()),
            "version 1 is not newer",
        ),
    ];
    for (i, (what, change, path)) in bad.into_iter().enumerate() {
        let file = reference_file(dir, &format!("bad{i}.json"), |d| {
            d["version"] = 2.into();
            change(d);
            if what == "not newer" {
                d["version"] = 1.into();
            }
        });
        let out = epr_server(&["reference", "import", "--file", &file], &db);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{what}: accepted");
        assert!(err.contains(path), "{what}: {err}");
        assert!(err.contains("nothing changed"), "{what}: {err}");
        assert_eq!(show(&db)["version"], 1, "{what}: the held version changed");
    }
    let malformed = dir.join("malformed.json");
    std::fs::write(&malformed, b"{\"version\": 2, \"trust\": ").unwrap();
    let out = epr_server(
        &["reference", "import", "--file", malformed.to_str().unwrap()],
        &db,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("document"));
    assert_eq!(show(&db)["version"], 1);

    let v2 = reference_file(dir, "v2.json", |d| d["version"] = 2.into());
    let out = epr_server(&["reference", "import", "--file", &v2], &db);
    assert!(out.status.success());
    assert!(stdout(&out).contains("SAMPLE"), "{}", stdout(&out));
    assert_eq!(show(&db)["version"], 2);

    // Each import is a log entry and an audit entry; the whole still verifies.
    let storage = ambulance_epr::server::open_storage(&db).await.unwrap();
    let head = storage.log_head().await.unwrap();
    let leaves = storage.log_leaves(0, head.size).await.unwrap();
    let logged: Vec<&str> = leaves
        .iter()
        .filter(|l| l.kind == "reference_data")
        .map(|l| l.data.as_str())
        .collect();
    assert_eq!(logged.len(), 2);
    assert!(logged[1].contains("\"version\":2"));
    let audit = storage.audit_entries_after(0, 100).await.unwrap();
    assert_eq!(
        audit
            .iter()
            .filter(|a| a.action == "reference_imported")
            .count(),
        2
    );
    check_audit_chain(storage.as_ref()).await.unwrap();
    let out = epr_server(&["verify"], &db);
    assert!(out.status.success(), "{}", stdout(&out));

    // After a key rotation the set is signed again by the new key, and still served.
    let signer = ambulance_epr::server::log_key::LogSigner::load(&test_key_path(&db)).unwrap();
    let served = ambulance_epr::server::reference::for_tablets(storage.as_ref(), &signer)
        .await
        .unwrap();
    assert_eq!(served.map(|v| v.version), Some(2));
    let out = epr_server(&["key", "--rotate"], &db);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout(&out).contains("version 2 signed again"),
        "{}",
        stdout(&out)
    );
    let rotated = ambulance_epr::server::log_key::LogSigner::load(&test_key_path(&db)).unwrap();
    assert_ne!(rotated.public(), signer.public());
    let served = ambulance_epr::server::reference::for_tablets(storage.as_ref(), &rotated)
        .await
        .unwrap()
        .unwrap();
    assert!(
        ambulance_epr::transparency::open_reference(&served.signed_note, &rotated.public()).is_ok()
    );
    // A statement the server's key did not make is never served.
    storage
        .set_reference_note(2, "not a statement")
        .await
        .unwrap();
    assert!(
        ambulance_epr::server::reference::for_tablets(storage.as_ref(), &rotated)
            .await
            .unwrap()
            .is_none()
    );
}
