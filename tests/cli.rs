//! The headless `epr` commands, run as a real process.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use serde_json::Value;

const PASS: &str = "cli test passphrase";

fn epr(dir: &std::path::Path, pass: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_epr"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("EPR_PASSPHRASE", pass)
        .output()
        .unwrap()
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn init_demo_status_list_show() {
    let dir = tempfile::tempdir().unwrap();
    let out = epr(dir.path(), PASS, &["--user", "crew", "init"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let status = json(&epr(dir.path(), PASS, &["status", "--json"]));
    assert_eq!(status["encounters"], 0);
    assert_eq!(status["pending_sync"], 0);

    let out = epr(
        dir.path(),
        PASS,
        &["demo-data", "--count", "12", "--seed", "5"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let status = json(&epr(dir.path(), PASS, &["status", "--json"]));
    assert_eq!(status["encounters"], 12);
    let drafts = status["drafts"].as_u64().unwrap();
    let completed = status["completed"].as_u64().unwrap();
    assert_eq!(drafts + completed, 12);
    assert!(completed > drafts, "most demo records are completed");
    assert_eq!(status["pending_sync"], 12);
    assert!(status["last_sync_utc"].is_null());

    let list = json(&epr(dir.path(), PASS, &["list", "--json"]));
    let rows = list.as_array().unwrap();
    assert_eq!(rows.len(), 12);
    for key in [
        "id",
        "incident_number",
        "status",
        "updated_at_utc",
        "latest_news2",
    ] {
        assert!(rows[0].get(key).is_some(), "list rows have {key}");
    }
    let times: Vec<&str> = rows
        .iter()
        .map(|r| r["updated_at_utc"].as_str().unwrap())
        .collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "newest first");

    let id = rows[0]["id"].as_str().unwrap();
    let doc = json(&epr(dir.path(), PASS, &["show", "--id", id, "--json"]));
    assert_eq!(doc["id"], id);
    let sets = doc["observations"].as_array().unwrap();
    assert!(!sets.is_empty());
    for set in sets {
        let news = &set["news2"];
        match news["kind"].as_str().unwrap() {
            "complete" => {
                assert!(news["total"].as_u64().unwrap() <= 20);
                assert!(news["parameters"]["pulse"].is_u64());
                assert!(news["risk"].is_string());
            }
            "incomplete" => assert!(news["present"].as_u64().unwrap() < 7),
            other => panic!("unexpected NEWS2 kind {other}"),
        }
        assert!(news["display"].as_str().unwrap().starts_with("NEWS2"));
    }
}

#[test]
fn wrong_passphrase_is_a_clear_error_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        epr(dir.path(), PASS, &["--user", "crew", "init"])
            .status
            .success()
    );
    let db = dir.path().join("epr.db");
    let before = std::fs::read(&db).unwrap();
    let out = epr(dir.path(), "not the passphrase", &["status", "--json"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("wrong passphrase or PIN"), "{stderr}");
    assert!(out.stdout.is_empty());
    assert_eq!(std::fs::read(&db).unwrap(), before);
}

#[test]
fn commands_on_a_missing_store_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = epr(dir.path(), PASS, &["status", "--json"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("run `epr init` first"));
    assert!(!dir.path().join("epr.db").exists());
}

#[test]
fn corrupt_store_is_named_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        epr(dir.path(), PASS, &["--user", "crew", "init"])
            .status
            .success()
    );
    let db = dir.path().join("epr.db");
    std::fs::write(&db, b"this is not a database at all, just some bytes").unwrap();
    let out = epr(dir.path(), PASS, &["status", "--json"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot be read"), "{stderr}");
    assert_eq!(
        std::fs::read(&db).unwrap(),
        b"this is not a database at all, just some bytes"
    );
}
