//! The headless `epr` commands, run as a real process.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use serde_json::Value;

const PASS: &str = "amber walrus tiptoe chimney";

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

    // A demo tablet works from the labelled sample reference data.
    let reference = json(&epr(dir.path(), PASS, &["reference", "--json"]));
    assert_eq!(reference["source"], "sample");
    assert_eq!(reference["sample"], true);
    assert!(reference["counts"]["drugs"].as_u64().unwrap() >= 5);
    assert!(reference["trust"].as_str().unwrap().contains("SAMPLE"));

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
            // The demo data includes children: NEWS2 is not used under 16.
            "not_applicable" => assert_eq!(news["display"], "NEWS2 not used under 16"),
            other => panic!("unexpected NEWS2 kind {other}"),
        }
        assert!(news["display"].as_str().unwrap().starts_with("NEWS2"));
    }

    // The current score is the latest complete set's, whatever partial rechecks follow it,
    // and says how many did; the demo data has such rechecks.
    let mut saw_partial_recheck = false;
    let (mut saw_child, mut saw_pregnancy, mut saw_scale2) = (false, false, false);
    let (mut saw_non_conveyance, mut saw_advance_decision) = (false, false);
    let (mut saw_stroke, mut saw_ecg, mut saw_arrest) = (false, false, false);
    let (mut saw_sepsis, mut saw_fall, mut saw_trauma) = (false, false, false);
    for row in rows {
        let id = row["id"].as_str().unwrap();
        let doc = json(&epr(dir.path(), PASS, &["show", "--id", id, "--json"]));
        // Every record that leaves the patient at home carries its non-conveyance section,
        // and no conveyed one does.
        let kind = doc["outcome"]["kind"].as_str().unwrap_or("");
        let left_at_home = matches!(kind, "not_conveyed" | "referred" | "declined");
        assert_eq!(doc["non_conveyance"].is_object(), left_at_home, "{kind}");
        if left_at_home {
            let section = &doc["non_conveyance"];
            assert!(section["decision"].is_string());
            assert!(section["capacity"]["impairment"].is_boolean());
            saw_non_conveyance = true;
        }
        saw_advance_decision |= doc["history"]["advance_decisions"]["status"] == "seen";
        // Every drug says whether it came from the formulary.
        for drug in doc["drugs"].as_array().unwrap() {
            assert!(drug.get("formulary_id").is_some(), "{drug}");
            assert_eq!(
                drug["not_in_formulary"].as_bool(),
                Some(drug["formulary_id"].is_null())
            );
        }
        // A stroke carries its onset; a chest pain its ECG.
        let presentations = &doc["assessment"]["presentations"];
        if presentations
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p == "stroke"))
        {
            assert!(doc["assessment"]["stroke"]["onset_utc"].is_string());
            saw_stroke = true;
        }
        saw_sepsis |= doc["assessment"]["sepsis"]["pathway"].is_string();
        saw_fall |= doc["assessment"]["fall"]["frailty_scale"].is_u64();
        saw_trauma |= doc["assessment"]["trauma"]["injuries"][0]["region"].is_string();
        if doc["patient"]["pregnancy"]["kind"] == "pregnant" {
            assert!(
                doc["assessment"]["maternity"].is_object(),
                "a pregnancy's findings"
            );
        }
        if presentations
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p == "cardiac_arrest"))
        {
            assert!(doc["assessment"]["arrest"]["end"].is_string());
            saw_arrest = true;
        }
        if presentations
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p == "chest_pain"))
        {
            assert!(doc["assessment"]["ecgs"][0]["rhythm"].is_string());
            saw_ecg = true;
        }
        let mut sets: Vec<&serde_json::Value> =
            doc["observations"].as_array().unwrap().iter().collect();
        sets.sort_by_key(|s| s["taken_at_utc"].as_str().unwrap().to_owned());
        let last_complete = sets.iter().rposition(|s| s["news2"]["kind"] == "complete");
        let latest = &doc["latest_complete_news2"];
        saw_child |= sets.iter().any(|s| s["news2"]["kind"] == "not_applicable");
        saw_pregnancy |= doc["patient"]["pregnancy"]["kind"] == "pregnant";
        saw_scale2 |= sets.iter().any(|s| {
            s["spo2_scale2"]["reason"] == "confirmed hypercapnic respiratory failure"
                && s["news2"]["scale"] == "scale2"
        });
        match last_complete {
            Some(i) => {
                let set = sets[i];
                assert_eq!(latest["taken_at_utc"], set["taken_at_utc"]);
                assert_eq!(latest["total"], set["news2"]["total"]);
                let newer = (sets.len() - i - 1) as u64;
                assert_eq!(latest["newer_partial_sets"].as_u64(), Some(newer));
                // Every demo record has an age and none is pregnant unless marked so.
                let pregnant = doc["patient"]["pregnancy"]["kind"] == "pregnant";
                assert_eq!(
                    latest["caveat"].as_str(),
                    pregnant.then_some("NEWS2 not validated in pregnancy")
                );
                saw_partial_recheck |= newer > 0;
                // The list's score follows the same rule.
                assert_eq!(row["latest_news2"], set["news2"]["total"]);
            }
            None => assert!(latest.is_null()),
        }
    }
    assert!(
        saw_partial_recheck,
        "the demo data includes a partial recheck"
    );
    assert!(saw_child, "the demo data includes a child");
    assert!(saw_stroke, "the demo data includes a stroke");
    assert!(saw_arrest, "the demo data includes a cardiac arrest");
    assert!(saw_sepsis, "the demo data includes a sepsis screen");
    assert!(saw_fall, "the demo data includes a fall");
    assert!(saw_trauma, "the demo data includes injuries");
    assert!(saw_ecg, "the demo data includes a chest pain with its ECG");
    assert!(
        saw_non_conveyance,
        "the demo data includes a patient not conveyed"
    );
    assert!(
        saw_advance_decision,
        "the demo data includes an advance decision seen"
    );
    assert!(saw_pregnancy, "the demo data includes a pregnant woman");
    assert!(
        saw_scale2,
        "the demo data includes a patient on SpO2 scale 2"
    );
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

/// The disk fills up mid-write: the command fails with a plain message, and everything saved
/// before is still there, intact. "Full" is the shell's file-size limit (`ulimit -f`), which
/// binds every user, root included, so the test needs no special file system. Several limits:
/// the write that fails may be a WAL frame or a checkpoint into the main file.
#[test]
fn a_full_disk_fails_the_write_plainly_and_keeps_what_was_saved() {
    let original = tempfile::tempdir().unwrap();
    assert!(
        epr(original.path(), PASS, &["--user", "crew", "init"])
            .status
            .success()
    );
    let out = epr(original.path(), PASS, &["demo-data", "--count", "20"]);
    assert!(out.status.success());
    let files: Vec<_> = std::fs::read_dir(original.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let biggest = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .max()
        .unwrap();

    for headroom_blocks in [1, 7, 80] {
        let dir = tempfile::tempdir().unwrap();
        for f in &files {
            std::fs::copy(f, dir.path().join(f.file_name().unwrap())).unwrap();
        }
        let limit_blocks = biggest / 512 + headroom_blocks;
        let out = Command::new("sh")
            .arg("-c")
            .arg(r#"ulimit -f "$1" && trap '' XFSZ && exec "$2" --data-dir "$3" demo-data --count 5000 --seed 9"#)
            .arg("sh")
            .arg(limit_blocks.to_string())
            .arg(env!("CARGO_BIN_EXE_epr"))
            .arg(dir.path())
            .env("EPR_PASSPHRASE", PASS)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "5,000 records cannot fit");
        assert!(
            stderr.contains("Free space and try again"),
            "a plain message, not a database code: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");

        // With space again: the store opens, passes its checks (a checkpoint cut short by
        // the full disk is completed first), and holds at least what it had.
        let check = epr(dir.path(), PASS, &["check"]);
        assert!(
            check.status.success(),
            "headroom {headroom_blocks}: {}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        let status = json(&epr(dir.path(), PASS, &["status", "--json"]));
        let kept = status["encounters"].as_u64().unwrap();
        assert!((20..5020).contains(&kept), "{kept}");
        // And it takes new records again.
        let out = epr(
            dir.path(),
            PASS,
            &["demo-data", "--count", "1", "--seed", "10"],
        );
        assert!(out.status.success());
        let status = json(&epr(dir.path(), PASS, &["status", "--json"]));
        assert_eq!(status["encounters"].as_u64().unwrap(), kept + 1);
    }
}

/// A lost tablet's disk can be copied and guessed at offline: `init` refuses a passphrase
/// that would fall quickly, says why, and creates nothing.
#[test]
fn init_refuses_a_weak_passphrase_and_creates_nothing() {
    for weak in ["2468", "Password1234", "crew crew crew"] {
        let dir = tempfile::tempdir().unwrap();
        let out = epr(dir.path(), weak, &["--user", "crew", "init"]);
        assert!(!out.status.success(), "{weak} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("not strong enough"), "{err}");
        assert!(!err.contains(weak), "the refusal repeats the passphrase");
        assert!(
            std::fs::read_dir(dir.path()).unwrap().next().is_none(),
            "{weak}: something was created"
        );
    }
}

/// Synthetic records and a trust server never meet: a store given demo records cannot be
/// enrolled (refused before any connection), and an enrolled store is not given them.
#[test]
fn demo_records_and_a_trust_server_never_share_a_store() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        epr(dir.path(), PASS, &["--user", "crew", "init"])
            .status
            .success()
    );
    assert!(
        epr(
            dir.path(),
            PASS,
            &["demo-data", "--count", "2", "--seed", "3"]
        )
        .status
        .success()
    );
    let trust = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    trust.set_nonblocking(true).unwrap();
    let server = format!("http://{}", trust.local_addr().unwrap());
    let out = epr(
        dir.path(),
        PASS,
        &["enroll", "--server", &server, "--code", "ABCD-EFGH"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("demo records"), "{err}");
    assert!(trust.accept().is_err(), "a connection was made");

    // A store already enrolled with a trust server is not given synthetic records.
    let enrolled = tempfile::tempdir().unwrap();
    assert!(
        epr(enrolled.path(), PASS, &["--user", "crew", "init"])
            .status
            .success()
    );
    let store = ambulance_epr::store::Store::unlock(enrolled.path(), None, PASS).unwrap();
    store
        .set_setting(
            ambulance_epr::sync::engine::SERVER_URL,
            "https://epr.example.nhs.uk",
        )
        .unwrap();
    drop(store);
    let out = epr(enrolled.path(), PASS, &["demo-data", "--count", "2"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("enrolled with a trust server"), "{err}");
    let status = json(&epr(enrolled.path(), PASS, &["status", "--json"]));
    assert_eq!(status["encounters"], 0, "{status}");
}

/// A store made when a 4-digit PIN was accepted still opens, says its passphrase is too weak,
/// and `epr passwd` replaces it (refusing a weak new one and changing nothing then).
#[test]
fn a_weak_old_passphrase_is_flagged_and_passwd_replaces_it() {
    let dir = tempfile::tempdir().unwrap();
    drop(
        ambulance_epr::store::Store::create_with(
            dir.path(),
            "crew",
            "2468",
            ambulance_epr::crypto::KdfParams::FAST_FOR_TESTS,
            ambulance_epr::store::migrate::latest_version(),
        )
        .unwrap(),
    );
    let out = epr(dir.path(), "2468", &["status", "--json"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("change it with `epr passwd`"));

    let passwd = |new: &str| {
        Command::new(env!("CARGO_BIN_EXE_epr"))
            .arg("--data-dir")
            .arg(dir.path())
            .arg("passwd")
            .env("EPR_PASSPHRASE", "2468")
            .env("EPR_NEW_PASSPHRASE", new)
            .output()
            .unwrap()
    };
    let weak = passwd("13571357");
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("not strong enough"));
    assert!(
        epr(dir.path(), "2468", &["status", "--json"])
            .status
            .success()
    );

    let changed = passwd(PASS);
    assert!(
        changed.status.success(),
        "{}",
        String::from_utf8_lossy(&changed.stderr)
    );
    let out = epr(dir.path(), PASS, &["status", "--json"]);
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("warning"));
    assert!(
        !epr(dir.path(), "2468", &["status", "--json"])
            .status
            .success()
    );
}

#[test]
fn another_user_is_added_with_their_own_passphrase() {
    const SAM: &str = "otter quarry velvet ninety";
    let dir = tempfile::tempdir().unwrap();
    assert!(
        epr(dir.path(), PASS, &["--user", "crew", "init"])
            .status
            .success()
    );
    let add = |new: &str| {
        Command::new(env!("CARGO_BIN_EXE_epr"))
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--user", "crew", "add-user", "--name", "sam"])
            .env("EPR_PASSPHRASE", PASS)
            .env("EPR_NEW_PASSPHRASE", new)
            .output()
            .unwrap()
    };
    let weak = add("sam");
    assert!(!weak.status.success(), "a weak passphrase is refused");
    let out = add(SAM);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let again = add(SAM);
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already exists"),
        "the name is taken: {}",
        String::from_utf8_lossy(&again.stderr)
    );
    // Sam unlocks with their own passphrase, and not with crew's.
    let status = json(&epr(
        dir.path(),
        SAM,
        &["--user", "sam", "status", "--json"],
    ));
    assert_eq!(status["encounters"], 0);
    assert!(
        !epr(dir.path(), PASS, &["--user", "sam", "status", "--json"])
            .status
            .success()
    );
}
