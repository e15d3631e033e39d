//! The log proving the server's integrity, against a real `epr-server serve` process and the
//! real `epr` and `epr-server` commands, with the database tampered with behind the server's
//! back the way an administrator (or an attacker holding the host) could:
//!
//! - a version row deleted: `verify --expect-checkpoint` names it; the log truncated too, to
//!   hide it: the tablet's next `epr sync --once` exits 76 and keeps its queue;
//! - a device's key and the signing clinician's key replaced and a document re-signed with the
//!   new key: `verify` exits 1;
//! - the whole database rolled back to an earlier copy: the tablet notices the shorter log.
//!
//! And the trust's side of recovery: backups, the bulk export, and tablets retired (after
//! sending everything) or revoked (keeping what they had not sent).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ambulance_epr::crypto::{
    DeviceSigningKey, KdfParams, VersionSignedFields, canonical_json, content_sha256_hex,
    signed_time, signing_payload,
};
use ambulance_epr::model::Revision;
use ambulance_epr::store::{Store, migrate};
use rand::SeedableRng;
use serde_json::Value;
use uuid::Uuid;

const PASS: &str = "heron pebble maple drift";

/// A `serve` process on an ephemeral loopback port; killed when dropped.
struct Serve {
    child: Child,
    url: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(db: &str) -> Serve {
    serve_on(db, "127.0.0.1:0")
}

/// Serves again at the address a stopped server had, so enrolled tablets find it.
fn serve_again(db: &str, before: &str) -> Serve {
    serve_on(db, before.trim_start_matches("http://"))
}

fn serve_on(db: &str, listen: &str) -> Serve {
    let mut child = Command::new(env!("CARGO_BIN_EXE_epr-server"))
        .args(["serve", "--listen", listen, "--database", db])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("serve did not start: {line:?}"))
        .to_owned();
    Serve {
        child,
        url: format!("http://{addr}"),
    }
}

/// Stops a server and waits (bounded) for it to go.
fn stop(mut s: Serve) {
    let _ = Command::new("kill")
        .args(["-TERM", &s.child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while s.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "serve did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn epr_server(db: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_epr-server"))
        .args(args)
        .arg("--database")
        .arg(db)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn epr(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_epr"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("EPR_PASSPHRASE", PASS)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn status_json(dir: &Path) -> Value {
    let out = epr(dir, &["status", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn sync_once(dir: &Path) -> Output {
    epr(dir, &["sync", "--once"])
}

fn enrolment_code(db: &str, name: &str) -> String {
    let out = epr_server(db, &["enroll-device", "--name", name]);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_owned()
}

/// A tablet store enrolled with the server at `url`.
fn enrolled_tablet(dir: &Path, url: &str, code: &str) {
    let store = Store::create_with(
        dir,
        "crew",
        PASS,
        KdfParams::FAST_FOR_TESTS,
        migrate::latest_version(),
    )
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(ambulance_epr::sync::enroll(&store, url, code))
        .unwrap();
}

/// Adds `n` completed, signed records to the tablet.
fn add_records(dir: &Path, n: u32, seed: u64) -> Vec<Uuid> {
    let mut store = Store::unlock(dir, Some("crew"), PASS).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let e = ambulance_epr::demo::synthetic_encounter(&mut rng, chrono::Utc::now(), i);
            store
                .complete_and_sign(&e, "Test Paramedic", "PA000000")
                .unwrap()
                .record_id
        })
        .collect()
}

fn db_file(dir: &Path) -> PathBuf {
    dir.join("server.db")
}

fn sql(dir: &Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(db_file(dir)).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    c
}

fn server_versions(dir: &Path) -> i64 {
    sql(dir)
        .query_row("SELECT COUNT(*) FROM versions", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_deleted_version_is_named_and_a_truncated_log_stops_the_tablet() {
    let tmp = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", db_file(tmp.path()).display());
    let server = serve(&db);
    let tablet = tmp.path().join("tablet");
    enrolled_tablet(&tablet, &server.url, &enrolment_code(&db, "Tablet 1"));
    add_records(&tablet, 3, 1);

    let out = sync_once(&tablet);
    assert!(out.status.success(), "{}", text(&out));
    let status = status_json(&tablet);
    assert_eq!(status["server_integrity"]["state"], "ok", "{status}");
    assert_eq!(status["pending_sync"], 0);
    // Enrolment, the clinician's key registration, three versions and the tablet's audit head.
    assert_eq!(status["server_checkpoint"]["size"], 6, "{status}");

    // The trust keeps a checkpoint elsewhere.
    let published = tmp.path().join("published.checkpoint");
    let out = epr_server(&db, &["checkpoint", "--out", published.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let out = epr_server(
        &db,
        &["verify", "--expect-checkpoint", published.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "a clean server verifies: {}",
        text(&out)
    );

    // Someone deletes the newest version row.
    let (record, revision): (String, i64) = sql(tmp.path())
        .query_row(
            "SELECT record_id, revision FROM versions ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    sql(tmp.path())
        .execute("DELETE FROM versions WHERE record_id = ?1", [&record])
        .unwrap();
    let out = epr_server(
        &db,
        &["verify", "--expect-checkpoint", published.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains(&format!(
            "record {record} revision {revision}: in the log (leaf 4) but missing"
        )),
        "{report}"
    );

    // They truncate the log too, to hide it, and the checkpoints kept in the database.
    let c = sql(tmp.path());
    c.execute("DELETE FROM log_leaves WHERE idx >= 4", [])
        .unwrap();
    c.execute("DELETE FROM log_checkpoints", []).unwrap();
    drop(c);
    let out = epr_server(&db, &["verify"]);
    assert!(
        out.status.success(),
        "without a published checkpoint the server alone cannot tell: {}",
        text(&out)
    );
    let out = epr_server(
        &db,
        &["verify", "--expect-checkpoint", published.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("entries were removed"),
        "{}",
        text(&out)
    );

    // The tablet, with a new record queued, refuses to go on and keeps everything.
    let before = server_versions(tmp.path());
    add_records(&tablet, 1, 2);
    let out = sync_once(&tablet);
    assert_eq!(out.status.code(), Some(76), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("could not prove"),
        "{}",
        text(&out)
    );
    let status = status_json(&tablet);
    assert_eq!(status["server_integrity"]["state"], "failed", "{status}");
    assert!(
        status["server_integrity"]["reason"]
            .as_str()
            .unwrap()
            .contains("shorter"),
        "{status}"
    );
    assert_eq!(status["pending_sync"], 1, "the new record stays queued");
    assert_eq!(server_versions(tmp.path()), before, "nothing more was sent");
    // And it stays stopped on the next try.
    let out = sync_once(&tablet);
    assert_eq!(out.status.code(), Some(76), "{}", text(&out));
    stop(server);
}

#[test]
fn a_replaced_key_and_a_re_signed_document_fail_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", db_file(tmp.path()).display());
    let server = serve(&db);
    let tablet = tmp.path().join("tablet");
    enrolled_tablet(&tablet, &server.url, &enrolment_code(&db, "Tablet 1"));
    add_records(&tablet, 2, 3);
    let out = sync_once(&tablet);
    assert!(out.status.success(), "{}", text(&out));
    let out = epr_server(&db, &["verify"]);
    assert!(out.status.success(), "{}", text(&out));

    // Swap the device's key and the signing clinician's registered key, and re-sign an
    // altered document with the new one: the tables' keys and the row agree with each other,
    // as the old `verify` required.
    let forger = DeviceSigningKey::generate().unwrap();
    let c = sql(tmp.path());
    let (device, record, revision, status, document, saved, signer, tablet): (
        String,
        String,
        i64,
        String,
        String,
        String,
        String,
        String,
    ) = c
        .query_row(
            "SELECT v.device_id, v.record_id, v.revision, v.status, v.document, v.saved_at_utc,
                    v.signer_user_id, s.tablet_id
             FROM versions v JOIN signers s
               ON s.device_id = v.device_id AND s.user_id = v.signer_user_id
             LIMIT 1",
            [],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                ))
            },
        )
        .unwrap();
    let mut doc: Value = serde_json::from_str(&document).unwrap();
    doc["notes"] = Value::String("altered after signing".into());
    let sha = content_sha256_hex(&doc);
    let record_id = Uuid::parse_str(&record).unwrap();
    let saved = chrono::DateTime::parse_from_rfc3339(&saved)
        .unwrap()
        .with_timezone(&chrono::Utc);
    let payload = VersionSignedFields {
        record_id,
        revision: Revision::new(u64::try_from(revision).unwrap()).unwrap(),
        status: &status,
        content_sha256: &sha,
        device_id: Uuid::parse_str(&tablet).unwrap(),
        saved_at_utc: signed_time(saved),
        signer_user_id: Uuid::parse_str(&signer).unwrap(),
    }
    .payload()
    .unwrap();
    let signature = forger.sign_base64(&payload);
    let canonical = String::from_utf8(canonical_json(&doc)).unwrap();
    c.execute(
        "UPDATE devices SET public_key = ?1 WHERE device_id = ?2",
        [&forger.public_key_base64(), &device],
    )
    .unwrap();
    c.execute(
        "UPDATE signers SET public_key = ?1 WHERE device_id = ?2 AND user_id = ?3",
        [&forger.public_key_base64(), &device, &signer],
    )
    .unwrap();
    c.execute(
        "UPDATE versions SET document = ?1, content_sha256 = ?2, signature = ?3
         WHERE record_id = ?4 AND revision = ?5",
        rusqlite::params![canonical, sha, signature, record, revision],
    )
    .unwrap();
    drop(c);

    let out = epr_server(&db, &["verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains(&format!(
            "device {device}: its public key in the database differs from the key logged at enrolment"
        )),
        "{report}"
    );
    assert!(
        report.contains(&format!(
            "record {record} revision {revision}: the stored row differs from its logged entry"
        )),
        "{report}"
    );
    assert!(
        report.contains(&format!(
            "signer {signer} on device {device}: its key in the database differs from the key logged at registration"
        )),
        "{report}"
    );
    assert!(
        report.contains(&format!(
            "BAD record {record} revision {revision}: signature does not verify"
        )),
        "checked against the logged key, the forged signature fails: {report}"
    );
    // An independent verifier holding only the public log key reaches the same verdict.
    let key = epr_server(&db, &["key", "--public"]);
    assert!(key.status.success(), "{}", text(&key));
    let vkey = String::from_utf8_lossy(&key.stdout).trim().to_owned();
    let out = epr_server(
        &db,
        &[
            "verify",
            "--log-key",
            &vkey,
            "--signing-key",
            "/nonexistent/key",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    stop(server);
}

#[test]
fn a_database_rolled_back_to_an_old_copy_is_noticed_by_the_tablet() {
    let tmp = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", db_file(tmp.path()).display());
    let server = serve(&db);
    let tablet = tmp.path().join("tablet");
    enrolled_tablet(&tablet, &server.url, &enrolment_code(&db, "Tablet 1"));
    add_records(&tablet, 2, 4);
    let out = sync_once(&tablet);
    assert!(out.status.success(), "{}", text(&out));

    // An old copy of the database, taken while it ran.
    let backup = tmp.path().join("backup.db");
    sql(tmp.path())
        .execute("VACUUM INTO ?1", [backup.to_str().unwrap()])
        .unwrap();

    add_records(&tablet, 2, 5);
    let out = sync_once(&tablet);
    assert!(out.status.success(), "{}", text(&out));
    let size = status_json(&tablet)["server_checkpoint"]["size"].clone();
    assert_eq!(
        size, 8,
        "enrolment, a key registration, four versions and two audit heads"
    );

    // The database is restored from the copy (the key file is untouched).
    let url = server.url.clone();
    stop(server);
    for suffix in ["", "-wal", "-shm"] {
        let mut p = db_file(tmp.path()).into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
    std::fs::copy(&backup, db_file(tmp.path())).unwrap();
    let server = serve_again(&db, &url);
    let out = epr_server(&db, &["verify"]);
    assert!(
        out.status.success(),
        "the restored copy is self-consistent: {}",
        text(&out)
    );

    add_records(&tablet, 1, 6);
    let out = sync_once(&tablet);
    assert_eq!(out.status.code(), Some(76), "{}", text(&out));
    let status = status_json(&tablet);
    assert_eq!(status["server_integrity"]["state"], "failed", "{status}");
    assert_eq!(status["pending_sync"], 1);

    // Ops revokes the old enrolment and enrols the tablet again: the clinician's key is
    // registered again through the new enrolment (the one logged in the restored copy names
    // the old device), and the queued record goes through, signature and all.
    let old_device = Store::unlock(&tablet, Some("crew"), PASS)
        .unwrap()
        .setting("device_id")
        .unwrap()
        .unwrap();
    let out = epr_server(&db, &["revoke-device", &old_device]);
    assert!(out.status.success(), "{}", text(&out));
    {
        let store = Store::unlock(&tablet, Some("crew"), PASS).unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(ambulance_epr::sync::enroll(
            &store,
            &server.url,
            &enrolment_code(&db, "Tablet 1 again"),
        ))
        .unwrap();
    }
    let out = sync_once(&tablet);
    assert!(out.status.success(), "{}", text(&out));
    let status = status_json(&tablet);
    assert_eq!(status["server_integrity"]["state"], "ok", "{status}");
    assert_eq!(status["pending_sync"], 0, "{status}");
    assert_eq!(status["quarantined"], 0, "{status}");
    let out = epr_server(&db, &["verify"]);
    assert!(out.status.success(), "{}", text(&out));
    stop(server);
}

#[test]
fn a_server_that_lost_a_clinicians_key_hears_it_again_and_nothing_is_quarantined() {
    let tmp = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", db_file(tmp.path()).display());
    let server = serve(&db);
    let tablet = tmp.path().join("tablet");
    enrolled_tablet(&tablet, &server.url, &enrolment_code(&db, "Tablet 1"));
    add_records(&tablet, 1, 8);
    let out = sync_once(&tablet);
    assert!(out.status.success(), "{}", text(&out));

    // The server's table of registered keys loses its row (a restore gone wrong, say).
    sql(tmp.path()).execute("DELETE FROM signers", []).unwrap();
    add_records(&tablet, 1, 9);
    let out = sync_once(&tablet);
    let status = status_json(&tablet);
    assert_eq!(
        status["pending_sync"],
        1,
        "kept queued: {status} {}",
        text(&out)
    );
    assert_eq!(status["quarantined"], 0, "nothing quarantined: {status}");

    // The next sync registers the key again and the record goes through.
    let out = sync_once(&tablet);
    assert!(out.status.success(), "{}", text(&out));
    let status = status_json(&tablet);
    assert_eq!(status["pending_sync"], 0, "{status}");
    assert_eq!(status["quarantined"], 0, "{status}");
    assert_eq!(server_versions(tmp.path()), 2);
    stop(server);
}

#[test]
fn an_online_backup_is_whole_private_never_replaces_and_verifies_once_restored() {
    let tmp = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", db_file(tmp.path()).display());
    let server = serve(&db);
    let tablet = tmp.path().join("tablet");
    enrolled_tablet(&tablet, &server.url, &enrolment_code(&db, "Tablet 1"));
    add_records(&tablet, 3, 12);
    let out = sync_once(&tablet);
    assert!(out.status.success(), "{}", text(&out));

    // Taken while the server serves.
    let backup = tmp.path().join("backups").join("epr-backup.db");
    std::fs::create_dir(backup.parent().unwrap()).unwrap();
    let out = epr_server(&db, &["backup", "--out", backup.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&backup).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "records are readable by the owner only"
        );
    }
    let taken = std::fs::read(&backup).unwrap();

    // Never replaces a file, and leaves nothing behind when refused.
    let out = epr_server(&db, &["backup", "--out", backup.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("already exists"), "{}", text(&out));
    assert_eq!(std::fs::read(&backup).unwrap(), taken);
    let nowhere = tmp.path().join("no-such-dir").join("b.db");
    let out = epr_server(&db, &["backup", "--out", nowhere.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("nothing was written"), "{}", text(&out));
    let names: Vec<_> = std::fs::read_dir(backup.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "no temporary file left: {names:?}");

    // Restored, it verifies against the log key and holds every record.
    let vkey = String::from_utf8_lossy(&epr_server(&db, &["key", "--public"]).stdout)
        .trim()
        .to_owned();
    stop(server);
    let restored = format!("sqlite://{}", backup.display());
    let out = epr_server(
        &restored,
        &[
            "verify",
            "--log-key",
            &vkey,
            "--signing-key",
            "/nonexistent/key",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("3 versions verified"),
        "{}",
        text(&out)
    );
}

#[test]
fn the_trust_exports_every_signed_record_from_the_server_as_ndjson() {
    let tmp = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", db_file(tmp.path()).display());
    let server = serve(&db);
    let tablet = tmp.path().join("tablet");
    enrolled_tablet(&tablet, &server.url, &enrolment_code(&db, "Tablet 1"));
    let ids = add_records(&tablet, 300, 31);
    let out = sync_once(&tablet);
    assert!(out.status.success(), "{}", text(&out));

    let dir = tmp.path().join("export");
    let out = epr_server(
        &db,
        &[
            "export",
            "--format",
            "fhir-ndjson",
            "--out",
            dir.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let stats: Value =
        serde_json::from_slice(&epr_server(&db, &["stats", "--json"]).stdout).unwrap();
    let lines = std::fs::read_to_string(dir.join("Bundle.ndjson")).unwrap();
    let mut exported = std::collections::HashSet::new();
    for line in lines.lines() {
        let b: Value = serde_json::from_str(line).unwrap();
        assert_eq!(b["resourceType"], "Bundle");
        assert_eq!(b["type"], "document");
        let first = &b["entry"][0]["resource"];
        assert_eq!(
            first["resourceType"], "Composition",
            "a document starts with its Composition"
        );
        let encounter = b["entry"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["resource"]["resourceType"] == "Encounter")
            .expect("an Encounter entry");
        exported.insert(encounter["resource"]["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(exported.len() as u64, stats["completed"].as_u64().unwrap());
    assert_eq!(exported.len(), ids.len(), "each signed record once");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["output"][0]["count"], 300);
    stop(server);
}

fn pinned_key(tablet: &Path) -> String {
    Store::unlock(tablet, Some("crew"), PASS)
        .unwrap()
        .setting(ambulance_epr::sync::integrity::LOG_KEY)
        .unwrap()
        .unwrap()
}

fn public_key(db: &str) -> String {
    let out = epr_server(db, &["key", "--public"]);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn a_rotation_signed_by_the_old_key_is_followed_and_an_unsigned_one_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", db_file(tmp.path()).display());
    let server = serve(&db);
    let tablet = tmp.path().join("tablet");
    enrolled_tablet(&tablet, &server.url, &enrolment_code(&db, "Tablet 1"));
    add_records(&tablet, 1, 7);
    let out = sync_once(&tablet);
    assert!(out.status.success(), "{}", text(&out));
    let first_key = public_key(&db);
    assert_eq!(pinned_key(&tablet), first_key, "pinned at enrolment");

    // A proper rotation: the old key signs the new one.
    let url = server.url.clone();
    stop(server);
    let out = epr_server(&db, &["key", "--rotate"]);
    assert!(out.status.success(), "{}", text(&out));
    let second_key = public_key(&db);
    assert_ne!(second_key, first_key);
    let server = serve_again(&db, &url);
    add_records(&tablet, 1, 8);
    let out = sync_once(&tablet);
    assert!(out.status.success(), "rotation followed: {}", text(&out));
    assert_eq!(pinned_key(&tablet), second_key);
    assert_eq!(status_json(&tablet)["server_integrity"]["state"], "ok");
    let out = epr_server(&db, &["verify"]);
    assert!(out.status.success(), "{}", text(&out));

    // An impostor key for the same log name, with no statement from the pinned key.
    stop(server);
    let origin = second_key.split('+').next().unwrap().to_owned();
    let key_file = {
        let mut p = db_file(tmp.path()).into_os_string();
        p.push(".signing-key");
        PathBuf::from(p)
    };
    std::fs::remove_file(&key_file).unwrap();
    let out = epr_server(&db, &["key", "--log-origin", &origin]);
    assert!(out.status.success(), "{}", text(&out));
    let server = serve_again(&db, &url);
    add_records(&tablet, 1, 9);
    let out = sync_once(&tablet);
    assert_eq!(out.status.code(), Some(76), "{}", text(&out));
    let status = status_json(&tablet);
    assert!(
        status["server_integrity"]["reason"]
            .as_str()
            .unwrap()
            .contains("not signed by the key this tablet trusts"),
        "{status}"
    );
    assert_eq!(status["pending_sync"], 1);
    assert_eq!(pinned_key(&tablet), second_key, "the pin is unchanged");
    stop(server);
}

/// An independent check of an evidence pack, written from `docs/integrity.md` alone: SHA-256
/// and Ed25519 from `ring`, base64, and JSON only to split lines into fields. It shares no
/// code with the server.
mod independent {
    use base64::Engine;
    use std::path::Path;

    const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

    fn sha256(parts: &[&[u8]]) -> [u8; 32] {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        for p in parts {
            ctx.update(p);
        }
        ctx.finish().as_ref().try_into().unwrap()
    }

    fn ed25519_ok(key: &[u8], message: &[u8], signature: &[u8]) -> bool {
        ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, key)
            .verify(message, signature)
            .is_ok()
    }

    /// RFC 6962 MTH.
    fn mth(leaf_hashes: &[[u8; 32]]) -> [u8; 32] {
        match leaf_hashes.len() {
            0 => sha256(&[]),
            1 => leaf_hashes[0],
            n => {
                let mut k = 1;
                while k * 2 < n {
                    k *= 2;
                }
                sha256(&[&[1], &mth(&leaf_hashes[..k]), &mth(&leaf_hashes[k..])])
            }
        }
    }

    fn json_string(s: &str) -> String {
        serde_json::to_string(s).unwrap()
    }

    /// What the pack proved: versions checked, and how many of them a clinician's own key
    /// signed (signature version 2).
    #[derive(Debug, PartialEq, Eq)]
    pub struct Checked {
        pub versions: u64,
        pub clinician_signed: u64,
    }

    /// Checks the pack; `Err` names the first problem.
    pub fn check(dir: &Path) -> Result<Checked, String> {
        // The verifier key: NAME+KEYID+BASE64(0x01 || KEY).
        let vkey = std::fs::read_to_string(dir.join("log-key.txt")).map_err(|e| e.to_string())?;
        let mut parts = vkey.trim().splitn(3, '+');
        let (name, id_hex, typed) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let typed = B64.decode(typed).map_err(|_| "key not base64")?;
        if typed.len() != 33 || typed[0] != 1 {
            return Err("not an Ed25519 verifier key".into());
        }
        let key = &typed[1..];
        let id = &sha256(&[name.as_bytes(), b"\n", &[1], key])[..4];
        if hex::encode(id) != id_hex {
            return Err("key id does not match".into());
        }

        // The checkpoint: body, blank line, "— NAME BASE64(ID || SIG)".
        let note =
            std::fs::read_to_string(dir.join("latest.checkpoint")).map_err(|e| e.to_string())?;
        let split = note.rfind("\n\n").ok_or("no signature block")?;
        let body = &note[..=split];
        let sig_line = note[split + 2..].lines().next().ok_or("no signature")?;
        let rest = sig_line
            .strip_prefix("\u{2014} ")
            .ok_or("bad signature line")?;
        let (sig_name, blob) = rest.split_once(' ').ok_or("bad signature line")?;
        let blob = B64.decode(blob).map_err(|_| "signature not base64")?;
        if sig_name != name || blob.len() != 68 || &blob[..4] != id {
            return Err("checkpoint not signed by the log key".into());
        }
        if !ed25519_ok(key, body.as_bytes(), &blob[4..]) {
            return Err("checkpoint signature does not verify".into());
        }
        let lines: Vec<&str> = body.lines().collect();
        if lines[0] != name {
            return Err("checkpoint origin is not the key's name".into());
        }
        let size: usize = lines[1].parse().map_err(|_| "bad size")?;
        let root = B64.decode(lines[2]).map_err(|_| "bad root")?;

        // The leaves: each line exactly the bytes hashed.
        let leaves_text =
            std::fs::read_to_string(dir.join("leaves.jsonl")).map_err(|e| e.to_string())?;
        let leaves: Vec<&str> = leaves_text.lines().collect();
        if leaves.len() < size {
            return Err("fewer leaves than the checkpoint covers".into());
        }
        let hashes: Vec<[u8; 32]> = leaves
            .iter()
            .map(|l| sha256(&[&[0], l.as_bytes()]))
            .collect();
        if mth(&hashes[..size]).as_slice() != root.as_slice() {
            return Err("the leaves do not hash to the checkpoint's root".into());
        }

        // Every clinician's key registration: its proof, over the registration statement
        // (context line, then JCS of four strings) by the key it registers, and the device's
        // endorsement (the same with the device id) by the key its enrolment logged.
        let mut enrolled = std::collections::HashMap::new();
        let mut registered = std::collections::HashMap::new();
        for leaf in &leaves {
            let l: serde_json::Value = serde_json::from_str(leaf).map_err(|e| e.to_string())?;
            if l["kind"] == "device_enrolled" {
                let key = B64
                    .decode(l["public_key"].as_str().unwrap_or_default())
                    .map_err(|_| "device key not base64")?;
                enrolled
                    .entry(l["device_id"].as_str().unwrap_or_default().to_owned())
                    .or_insert(key);
                continue;
            }
            if l["kind"] != "signer_registered" {
                continue;
            }
            let f = |k: &str| l[k].as_str().unwrap_or_default().to_owned();
            let statement = format!(
                "ambulance-epr/signer-registration/v1\n{{\"public_key\":{},\"tablet_id\":{},\"user_id\":{},\"user_name\":{}}}",
                json_string(&f("public_key")),
                json_string(&f("tablet_id")),
                json_string(&f("user_id")),
                json_string(&f("user_name")),
            );
            let key = B64
                .decode(f("public_key"))
                .map_err(|_| "signer key not base64")?;
            let proof = B64.decode(f("proof")).map_err(|_| "proof not base64")?;
            if !ed25519_ok(&key, statement.as_bytes(), &proof) {
                return Err("a clinician's key registration proof does not verify".into());
            }
            let endorsement_statement = format!(
                "ambulance-epr/signer-endorsement/v1\n{{\"device_id\":{},\"public_key\":{},\"tablet_id\":{},\"user_id\":{},\"user_name\":{}}}",
                json_string(&f("device_id")),
                json_string(&f("public_key")),
                json_string(&f("tablet_id")),
                json_string(&f("user_id")),
                json_string(&f("user_name")),
            );
            let device_key = enrolled
                .get(&f("device_id"))
                .ok_or("a clinician's key is registered through a device never enrolled")?;
            let endorsement = B64
                .decode(f("device_endorsement"))
                .map_err(|_| "endorsement not base64")?;
            if !ed25519_ok(device_key, endorsement_statement.as_bytes(), &endorsement) {
                return Err("a clinician's key registration is not endorsed by its device".into());
            }
            registered.insert((f("device_id"), f("user_id")), (key, f("tablet_id")));
        }

        // Every version: its leaf, written out by hand in canonical form, and its signature
        // against the key logged for it: version 1, the device's enrolment key over the
        // version-1 payload; version 2, the clinician's registered key over the version-2
        // payload.
        let versions =
            std::fs::read_to_string(dir.join("versions.jsonl")).map_err(|e| e.to_string())?;
        let mut checked = 0;
        let mut clinician_signed = 0;
        for line in versions.lines() {
            let v: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
            let signature = match v["signature"].as_str() {
                Some(sig) => json_string(sig),
                None => "null".to_owned(),
            };
            let signer_field = match v["signer_user_id"].as_str() {
                Some(u) => format!(",\"signer_user_id\":{}", json_string(u)),
                None => String::new(),
            };
            let expected_leaf = format!(
                "{{\"content_sha256\":{},\"device_id\":{},\"kind\":\"version\",\"record_id\":{},\"revision\":{},\"saved_at_utc\":{},\"signature\":{}{signer_field},\"status\":{}}}",
                json_string(&s("content_sha256")),
                json_string(&s("device_id")),
                json_string(&s("record_id")),
                v["revision"],
                json_string(&s("saved_at_utc")),
                signature,
                json_string(&s("status")),
            );
            let index = v["leaf_index"].as_u64().ok_or("a version has no leaf")? as usize;
            if leaves.get(index) != Some(&expected_leaf.as_str()) {
                return Err(format!("version leaf {index} does not match its row"));
            }
            let device_key = s("logged_device_key");
            let enrolment = format!(
                "\"kind\":\"device_enrolled\",\"public_key\":{}}}",
                json_string(&device_key)
            );
            let device_field = format!("{{\"device_id\":{},", json_string(&s("device_id")));
            if !leaves
                .iter()
                .any(|l| l.starts_with(&device_field) && l.ends_with(&enrolment))
            {
                return Err("a version's key is not the one logged at enrolment".into());
            }
            if let Some(user) = v["signer_user_id"].as_str() {
                let (key, tablet) = registered
                    .get(&(s("device_id"), user.to_owned()))
                    .ok_or("a version's signer has no registration in the log")?;
                let payload = format!(
                    "ambulance-epr/version-signature/v2\n{{\"content_sha256\":{},\"device_id\":{},\"record_id\":{},\"revision\":{},\"saved_at_utc\":{},\"signer_user_id\":{},\"status\":{}}}",
                    json_string(&s("content_sha256")),
                    json_string(tablet),
                    json_string(&s("record_id")),
                    v["revision"],
                    json_string(&s("saved_at_utc")),
                    json_string(user),
                    json_string(&s("status")),
                );
                let sig = B64
                    .decode(v["signature"].as_str().ok_or("unsigned")?)
                    .map_err(|_| "signature not base64")?;
                if !ed25519_ok(key, payload.as_bytes(), &sig) {
                    return Err("a clinician's signature does not verify".into());
                }
                clinician_signed += 1;
            } else if s("status") != "draft" {
                let payload = format!(
                    "{{\"content_sha256\":{},\"record_id\":{},\"revision\":{},\"status\":{}}}",
                    json_string(&s("content_sha256")),
                    json_string(&s("record_id")),
                    v["revision"],
                    json_string(&s("status")),
                );
                let key = B64
                    .decode(&device_key)
                    .map_err(|_| "device key not base64")?;
                let sig = B64
                    .decode(v["signature"].as_str().ok_or("unsigned")?)
                    .map_err(|_| "signature not base64")?;
                if !ed25519_ok(&key, payload.as_bytes(), &sig) {
                    return Err("a version's signature does not verify".into());
                }
            }
            checked += 1;
        }
        Ok(Checked {
            versions: checked,
            clinician_signed,
        })
    }
}

#[test]
fn the_evidence_pack_checks_out_with_an_independent_checker() {
    let tmp = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", db_file(tmp.path()).display());
    let server = serve(&db);
    let tablet = tmp.path().join("tablet");
    enrolled_tablet(&tablet, &server.url, &enrolment_code(&db, "Tablet 1"));
    add_records(&tablet, 5, 11);
    let out = sync_once(&tablet);
    assert!(out.status.success(), "{}", text(&out));

    let pack = tmp.path().join("pack");
    let out = epr_server(&db, &["verify", "--report", pack.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    // Every version here was signed by the clinician's own key (signature version 2).
    assert_eq!(
        independent::check(&pack),
        Ok(independent::Checked {
            versions: 5,
            clinician_signed: 5
        })
    );
    let summary = std::fs::read_to_string(pack.join("summary.txt")).unwrap();
    assert!(summary.contains("Result: no problem found."), "{summary}");

    // A pack into a directory that holds something is refused, and nothing is written.
    let out = epr_server(&db, &["verify", "--report", pack.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));

    // The checker is not a rubber stamp: an altered leaf fails it.
    let leaves = std::fs::read_to_string(pack.join("leaves.jsonl")).unwrap();
    std::fs::write(
        pack.join("leaves.jsonl"),
        leaves.replacen("\"revision\":1", "\"revision\":2", 1),
    )
    .unwrap();
    assert!(independent::check(&pack).is_err());
    stop(server);
}

/// Opens the tablet's encrypted store file directly, as someone holding its passphrase could,
/// bypassing the app.
fn raw_store(tablet: &Path) -> rusqlite::Connection {
    let keyring =
        ambulance_epr::store::keyring::Keyring::load(&ambulance_epr::store::keyring_path(tablet))
            .unwrap()
            .unwrap();
    let user = &keyring.users[0];
    let key = user.wrapped.unwrap_key(PASS, &user.name).unwrap();
    let conn = rusqlite::Connection::open(ambulance_epr::store::store_path(tablet)).unwrap();
    conn.execute_batch(&format!("PRAGMA key = \"{}\";", &*key.sqlcipher_literal()))
        .unwrap();
    conn
}

#[test]
fn a_device_audit_cut_short_after_a_sync_no_longer_holds_the_logged_head() {
    let tmp = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", db_file(tmp.path()).display());
    let server = serve(&db);
    let tablet = tmp.path().join("tablet");
    enrolled_tablet(&tablet, &server.url, &enrolment_code(&db, "Tablet 1"));
    add_records(&tablet, 2, 12);
    let out = sync_once(&tablet);
    assert!(out.status.success(), "{}", text(&out));

    // The server logged the device's audit head with the push.
    let leaf: String = sql(tmp.path())
        .query_row(
            "SELECT data FROM log_leaves WHERE kind = 'device_audit_head' ORDER BY idx DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let leaf: Value = serde_json::from_str(&leaf).unwrap();
    let head = format!("{}:{}", leaf["seq"], leaf["hash"].as_str().unwrap());
    let out = epr(&tablet, &["check", "--audit-head", &head]);
    assert!(out.status.success(), "{}", text(&out));

    // Someone with the store cuts the audit short from that entry on: what is left is still a
    // valid chain, so the store's own check passes, but the logged head is gone.
    let seq = leaf["seq"].as_i64().unwrap();
    raw_store(&tablet)
        .execute("DELETE FROM audit_log WHERE seq >= ?1", [seq])
        .unwrap();
    let out = epr(&tablet, &["check"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = epr(&tablet, &["check", "--audit-head", &head]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!(
            "no longer holds entry {seq} as reported to the server"
        )),
        "{}",
        text(&out)
    );
    stop(server);
}

#[test]
fn a_database_from_before_the_log_is_logged_once_when_first_opened() {
    use ambulance_epr::crypto::token_hash_hex;
    use ambulance_epr::model::RecordStatus;
    use ambulance_epr::protocol::PushItem;
    use ambulance_epr::server::storage::{DeviceIdentity, NewDevice};
    use ambulance_epr::server::{
        admin,
        ingest::{PushKeys, check_item},
        open_storage,
    };

    let tmp = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", db_file(tmp.path()).display());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let key = DeviceSigningKey::generate().unwrap();
    let device_id = Uuid::now_v7();
    rt.block_on(async {
        let storage = open_storage(&url).await.unwrap();
        let code = admin::create_enrolment_code(storage.as_ref(), "Old tablet")
            .await
            .unwrap();
        storage
            .enroll_device(
                &NewDevice {
                    code_hash: token_hash_hex(&admin::normalise_enrolment_code(&code.code)),
                    device_id,
                    public_key_b64: key.public_key_base64(),
                    token_hash: token_hash_hex("old-token"),
                },
                chrono::Utc::now(),
            )
            .await
            .unwrap();
        let device = DeviceIdentity {
            device_id,
            device_name: "Old tablet".into(),
            public_key_b64: key.public_key_base64(),
            revoked: false,
            last_seen_utc: None,
        };
        let items: Vec<_> = (0..3)
            .map(|_| {
                let mut e = ambulance_epr::demo::complete_encounter();
                e.id = Uuid::now_v7();
                e.status = RecordStatus::Completed;
                let document = serde_json::to_value(&e).unwrap();
                let sha = content_sha256_hex(&document);
                let signature =
                    key.sign_base64(&signing_payload(e.id, Revision::FIRST, "completed", &sha));
                let item = PushItem {
                    record_id: e.id,
                    revision: Revision::FIRST,
                    status: RecordStatus::Completed,
                    document,
                    content_sha256: sha,
                    signature: Some(signature),
                    signer_user_id: None,
                    saved_at_utc: chrono::Utc::now(),
                };
                check_item(
                    &item,
                    &PushKeys {
                        device_public_key_b64: &device.public_key_b64,
                        signers: &std::collections::HashMap::new(),
                    },
                )
                .unwrap()
            })
            .collect();
        storage
            .push_versions(&device, &items, None, chrono::Utc::now())
            .await
            .unwrap();
        admin::revoke_device(storage.as_ref(), device_id)
            .await
            .unwrap();
    });
    // As a database written before the log existed: no leaves, hashes or checkpoints.
    let c = sql(tmp.path());
    c.execute_batch("DELETE FROM log_leaves; DELETE FROM log_hashes; DELETE FROM log_checkpoints;")
        .unwrap();
    drop(c);

    let signer = ambulance_epr::server::log_key::LogSigner::generate(Some("test/log")).unwrap();
    for _ in 0..2 {
        let report = rt.block_on(async {
            let storage = open_storage(&url).await.unwrap();
            admin::verify(storage.as_ref(), &signer.public(), &[], None)
                .await
                .unwrap()
        });
        assert!(report.is_clean(), "{:?}", report.log_findings);
        assert_eq!(report.versions_checked, 3);
        // The enrolment, three versions and the revocation, logged once however often the
        // database is opened.
        assert_eq!(report.log_size, 5);
    }
}

/// `list-devices --json`, as rows.
fn list_devices(db: &str) -> Vec<Value> {
    let out = epr_server(db, &["list-devices", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn device_named<'a>(devices: &'a [Value], name: &str) -> &'a Value {
    devices
        .iter()
        .find(|d| d["name"] == name)
        .unwrap_or_else(|| panic!("no device {name}"))
}

#[test]
fn a_retired_tablet_sends_everything_first_and_a_revoked_one_keeps_what_it_has_not_sent() {
    let tmp = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", db_file(tmp.path()).display());
    let server = serve(&db);
    let old = tmp.path().join("old");
    let lost = tmp.path().join("lost");
    enrolled_tablet(&old, &server.url, &enrolment_code(&db, "Tablet old"));
    enrolled_tablet(&lost, &server.url, &enrolment_code(&db, "Tablet lost"));
    add_records(&old, 2, 1);
    add_records(&lost, 1, 2);
    for tablet in [&old, &lost] {
        let out = sync_once(tablet);
        assert!(out.status.success(), "{}", text(&out));
    }
    // Each sync reports what the tablet holds.
    let devices = list_devices(&db);
    for name in ["Tablet old", "Tablet lost"] {
        let d = device_named(&devices, name);
        assert_eq!(d["pending"], 0, "{d}");
        assert!(d["oldest_pending_utc"].is_null(), "{d}");
        assert!(d["last_seen_utc"].is_string(), "{d}");
        assert_eq!(d["app_version"], env!("CARGO_PKG_VERSION"), "{d}");
        assert_eq!(d["state"], "active", "{d}");
        assert_eq!(d["unsent_over_24h"], false, "{d}");
    }
    assert_eq!(device_named(&devices, "Tablet old")["held_versions"], 2);
    let status = status_json(&old);
    assert_eq!(status["held_versions"], 2, "{status}");
    assert!(status["oldest_unacknowledged_utc"].is_null(), "{status}");
    assert_eq!(status["retention_days"], 30, "{status}");

    // Retire the old tablet while it holds three records the server has not seen.
    add_records(&old, 3, 3);
    let status = status_json(&old);
    assert!(status["oldest_unacknowledged_utc"].is_string(), "{status}");
    let old_id = device_named(&devices, "Tablet old")["device_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = epr_server(&db, &["retire-device", &old_id]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        device_named(&list_devices(&db), "Tablet old")["state"],
        "retiring"
    );
    let out = sync_once(&old);
    assert!(
        out.status.success(),
        "the retiring tablet drains: {}",
        text(&out)
    );
    assert_eq!(
        server_versions(tmp.path()),
        6,
        "all five of its records and the other's"
    );
    let devices = list_devices(&db);
    let retired = device_named(&devices, "Tablet old");
    assert_eq!(retired["state"], "retired", "{retired}");
    assert_eq!(retired["pending"], 0);
    assert_eq!(retired["held_versions"], 5);
    let status = status_json(&old);
    assert_eq!(status["tablet_state"], "retired", "{status}");
    assert_eq!(status["pending_sync"], 0);
    let out = sync_once(&old);
    assert!(!out.status.success());
    assert!(text(&out).contains("retired"), "{}", text(&out));
    let mut store = Store::unlock(&old, Some("crew"), PASS).unwrap();
    let mut fresh = ambulance_epr::demo::complete_encounter();
    fresh.id = Uuid::now_v7();
    assert!(matches!(
        store.save_draft(&fresh),
        Err(ambulance_epr::store::StoreError::TabletRetiring)
    ));
    drop(store);
    let out = epr_server(&db, &["retire-device", &old_id]);
    assert!(!out.status.success(), "already retired");

    // Revoke the lost tablet: refused at once, and what it had not sent stays on it.
    add_records(&lost, 2, 4);
    let lost_id = device_named(&devices, "Tablet lost")["device_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = epr_server(&db, &["revoke-device", &lost_id]);
    assert!(out.status.success(), "{}", text(&out));
    for _ in 0..2 {
        let out = sync_once(&lost);
        assert!(!out.status.success());
        assert!(
            text(&out).contains("2 unsent record version(s) stay on this tablet"),
            "{}",
            text(&out)
        );
        let status = status_json(&lost);
        assert_eq!(status["pending_sync"], 2, "{status}");
        assert_eq!(status["held_versions"], 3, "{status}");
        assert!(status["oldest_unacknowledged_utc"].is_string(), "{status}");
    }
    assert_eq!(
        server_versions(tmp.path()),
        6,
        "nothing from the revoked tablet"
    );
    assert_eq!(
        device_named(&list_devices(&db), "Tablet lost")["state"],
        "revoked"
    );
    let out = epr_server(&db, &["verify"]);
    assert!(out.status.success(), "{}", text(&out));
}

/// `serve` with extra arguments that must fail before it listens: its error output.
fn serve_refuses(db: &str, extra: &[&str]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_epr-server"))
        .args(["serve", "--listen", "127.0.0.1:0", "--database", db])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(!status.success());
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve --recover did not refuse");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn recovery_report(db: &str) -> Value {
    let out = epr_server(db, &["recovery-report", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn device_id_of(tablet: &Path) -> String {
    Store::unlock(tablet, Some("crew"), PASS)
        .unwrap()
        .setting("device_id")
        .unwrap()
        .unwrap()
}

#[test]
fn a_lost_server_is_rebuilt_from_its_tablets_and_the_report_names_the_one_not_back() {
    let tmp = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", db_file(tmp.path()).display());
    let server = serve(&db);
    let tablets: Vec<PathBuf> = (1..=3)
        .map(|i| tmp.path().join(format!("tablet{i}")))
        .collect();
    let mut records = Vec::new();
    for (i, t) in tablets.iter().enumerate() {
        enrolled_tablet(
            t,
            &server.url,
            &enrolment_code(&db, &format!("Tablet {}", i + 1)),
        );
        records.push(add_records(t, 2 + i as u32, 10 + i as u64));
        let out = sync_once(t);
        assert!(out.status.success(), "{}", text(&out));
    }
    // A supervisor decides on a record of the first tablet and one of the third, and the
    // decisions reach them.
    let out = Command::new(env!("CARGO_BIN_EXE_epr-server"))
        .args([
            "add-user",
            "--username",
            "sup.rebuild",
            "--role",
            "supervisor",
        ])
        .args(["--database", &db])
        .env("EPR_PASSWORD", "kestrel harbour lantern 42")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use ambulance_epr::protocol::{Decision, DecisionRequest};
        let review = ambulance_epr::review_client::ReviewClient::new(&server.url).unwrap();
        let session = review
            .login("sup.rebuild", "kestrel harbour lantern 42")
            .await
            .unwrap();
        for (record, decision, comment) in [
            (records[0][0], Decision::Approved, ""),
            (records[2][1], Decision::Flagged, "audit the drug timings"),
        ] {
            let request = DecisionRequest {
                decision,
                comment: comment.to_owned(),
                revision: Revision::new(1).unwrap(),
            };
            review
                .decide(&session.token, record, &request)
                .await
                .unwrap();
        }
    });
    for t in [&tablets[0], &tablets[2]] {
        let out = sync_once(t);
        assert!(out.status.success(), "{}", text(&out));
    }
    // The trust keeps a checkpoint and the log's entries elsewhere, then one more tablet
    // joins and syncs: it has seen more of the log than the trust kept.
    let early = tmp.path().join("early.checkpoint");
    let early_entries = tmp.path().join("early.entries");
    let out = epr_server(
        &db,
        &[
            "checkpoint",
            "--out",
            early.to_str().unwrap(),
            "--leaves-out",
            early_entries.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    add_records(&tablets[0], 1, 20);
    let out = sync_once(&tablets[0]);
    assert!(out.status.success(), "{}", text(&out));
    let kept = tmp.path().join("kept.checkpoint");
    let entries = tmp.path().join("kept.entries");
    let out = epr_server(
        &db,
        &[
            "checkpoint",
            "--out",
            kept.to_str().unwrap(),
            "--leaves-out",
            entries.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let late = tmp.path().join("late");
    enrolled_tablet(&late, &server.url, &enrolment_code(&db, "Tablet late"));
    add_records(&late, 1, 30);
    let out = sync_once(&late);
    assert!(out.status.success(), "{}", text(&out));
    let versions_kept = 2 + 3 + 4 + 1;
    assert_eq!(server_versions(tmp.path()), versions_kept + 1);

    // The database is lost; the key file survives.
    let url = server.url.clone();
    stop(server);
    for suffix in ["", "-wal", "-shm"] {
        let mut p = db_file(tmp.path()).into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
    assert!(tmp.path().join("server.db.signing-key").exists());

    // Entries that are not the checkpoint's log are refused, and nothing is started.
    let text_entries = std::fs::read_to_string(&entries).unwrap();
    let short = tmp.path().join("short.entries");
    let lines: Vec<&str> = text_entries.lines().collect();
    std::fs::write(&short, lines[..lines.len() - 1].join("\n")).unwrap();
    let err = serve_refuses(
        &db,
        &[
            "--recover",
            "--expect-checkpoint",
            kept.to_str().unwrap(),
            "--log-entries",
            short.to_str().unwrap(),
        ],
    );
    assert!(err.contains("the checkpoint covers"), "{err}");
    let edited = tmp.path().join("edited.entries");
    std::fs::write(
        &edited,
        text_entries.replacen("\"revision\":1", "\"revision\":9", 1),
    )
    .unwrap();
    let err = serve_refuses(
        &db,
        &[
            "--recover",
            "--expect-checkpoint",
            kept.to_str().unwrap(),
            "--log-entries",
            edited.to_str().unwrap(),
        ],
    );
    assert!(
        err.contains("do not hash to the expected checkpoint"),
        "{err}"
    );

    // Rebuilt from the kept checkpoint, at the same address.
    let mut child = Command::new(env!("CARGO_BIN_EXE_epr-server"))
        .args([
            "serve",
            "--listen",
            url.trim_start_matches("http://"),
            "--database",
            &db,
        ])
        .args(["--recover", "--expect-checkpoint", kept.to_str().unwrap()])
        .args(["--log-entries", entries.to_str().unwrap()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("listening on "), "{line:?}");
    let server = Serve { child, url };
    // Rebuilt once: not again from another checkpoint.
    let err = serve_refuses(
        &db,
        &[
            "--recover",
            "--expect-checkpoint",
            early.to_str().unwrap(),
            "--log-entries",
            early_entries.to_str().unwrap(),
        ],
    );
    assert!(
        err.contains("already rebuilt from another checkpoint"),
        "{err}"
    );

    // Two tablets come back on their own at their next sync; the third stays away.
    for t in &tablets[..2] {
        let out = sync_once(t);
        assert!(out.status.success(), "{}", text(&out));
        let status = status_json(t);
        assert_eq!(status["server_integrity"]["state"], "ok", "{status}");
        assert_eq!(status["pending_sync"], 0, "{status}");
        assert_eq!(status["quarantined"], 0, "{status}");
    }
    let report = recovery_report(&db);
    assert_eq!(report["complete"], false, "{report}");
    assert_eq!(report["versions"]["expected"], versions_kept, "{report}");
    assert_eq!(report["versions"]["back"], versions_kept - 4, "{report}");
    let missing = report["devices_missing"].as_array().unwrap();
    assert_eq!(missing.len(), 1, "{report}");
    assert_eq!(missing[0]["device_id"], device_id_of(&tablets[2]).as_str());
    assert_eq!(missing[0]["versions"]["expected"], 4, "{report}");
    let back: Vec<&str> = report["devices_reported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        back,
        ["Tablet 1", "Tablet 2"],
        "they come back under their names"
    );

    // The third comes back: everything the kept checkpoint covered is back.
    let out = sync_once(&tablets[2]);
    assert!(out.status.success(), "{}", text(&out));
    let report = recovery_report(&db);
    assert_eq!(report["complete"], true, "{report}");
    assert_eq!(report["versions"]["back"], versions_kept, "{report}");
    assert_eq!(report["enrolments"]["back"], 3, "{report}");
    assert_eq!(report["decisions"]["expected"], 2, "{report}");
    assert_eq!(report["decisions"]["back"], 2, "{report}");
    // Each tablet holds each decision once, though the rebuilt server sent it again.
    let store = Store::unlock(&tablets[2], Some("crew"), PASS).unwrap();
    let held = store.feedback_for(records[2][1]).unwrap();
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0].comment, "audit the drug timings");
    drop(store);
    assert!(report["devices_missing"].as_array().unwrap().is_empty());
    assert_eq!(server_versions(tmp.path()), versions_kept);
    let out = epr_server(
        &db,
        &[
            "verify",
            "--expect-checkpoint",
            kept.to_str().unwrap(),
            "--expect-checkpoint",
            early.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));

    // The tablet that saw more of the log than the trust kept refuses the rebuilt server:
    // its record would be lost, and it stays on the tablet.
    let out = sync_once(&late);
    assert_eq!(out.status.code(), Some(76), "{}", text(&out));
    let status = status_json(&late);
    assert!(
        status["server_integrity"]["reason"]
            .as_str()
            .unwrap()
            .contains("older checkpoint"),
        "{status}"
    );
    assert_eq!(status["held_versions"], 1, "{status}");

    // Life goes on: a new record from a returned tablet syncs as before.
    add_records(&tablets[1], 1, 40);
    let out = sync_once(&tablets[1]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(server_versions(tmp.path()), versions_kept + 1);
    let out = epr_server(&db, &["verify"]);
    assert!(out.status.success(), "{}", text(&out));
    stop(server);
}
