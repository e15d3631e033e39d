//! Connecting the crew app to a server through its screens: enrolment with a real server on
//! loopback, and "Try it on this computer" with its in-process demo server, outage switch and
//! restart. Driven through the accessibility tree with the real app state.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use ambulance_epr::crypto::KdfParams;
use ambulance_epr::server::{self, ServerConfig, admin};
use ambulance_epr::sync::SyncStatus;
use ambulance_epr::ui::{AppConfig, EprApp};
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use support::ui::{harness, wait_until};

fn status(h: &Harness<'_, EprApp>) -> SyncStatus {
    h.state()
        .sync_handle()
        .map(|s| s.status())
        .unwrap_or_default()
}

fn first_run(h: &mut Harness<'_, EprApp>) {
    for (label, text) in [
        ("Your name", "Sam"),
        ("Passphrase", "heron pebble maple drift"),
        ("Repeat passphrase", "heron pebble maple drift"),
    ] {
        let node = h.get_by_label(label);
        node.focus();
        node.type_text(text);
        h.step();
    }
    h.get_by_role_and_label(Role::Button, "Create encrypted store")
        .click();
    wait_until(h, "the store to be created", |a| {
        a.screen().name() == "connect"
    });
}

#[test]
fn try_it_on_this_computer_syncs_simulates_an_outage_and_comes_back_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = harness(dir.path(), AppConfig::default());
    first_run(&mut h);
    h.get_by_role_and_label(Role::Button, "Try it on this computer")
        .click();
    h.step();
    wait_until(&mut h, "the demo server", |a| {
        a.sync_handle().is_some() && a.screen().name() == "records"
    });
    h.get_by_label_contains("supervisor sign-in: supervisor /");
    wait_until(&mut h, "the demo records to sync", |a| {
        let s = a.sync_handle().map(|s| s.status()).unwrap_or_default();
        s.reachable == Some(true) && s.queued == 0 && !s.sending && s.last_success_utc.is_some()
    });
    wait_until(&mut h, "the list", |a| a.list().all.len() == 30);

    // Locked, the demo supervisor's password is nowhere on screen (it would open every
    // synced record); unlocked, it is back.
    let password = h
        .state()
        .demo_supervisor_password()
        .expect("demo mode knows its supervisor password");
    h.get_by_role_and_label(Role::Button, "Lock").click();
    support::ui::settle(&mut h);
    assert_eq!(h.state().screen().name(), "unlock");
    assert!(h.query_by_label_contains(&password).is_none());
    h.get_by_label_contains("unlock to see the supervisor sign-in");
    let node = h.get_by_label("Passphrase");
    node.focus();
    node.type_text("heron pebble maple drift");
    h.step();
    h.get_by_role_and_label(Role::Button, "Unlock").click();
    wait_until(&mut h, "unlock", |a| a.screen().name() == "records");
    assert!(h.query_all_by_label_contains(&password).next().is_some());

    // Outage: the crew's workflow does not change, the banner does.
    h.get_by_label("Simulate server outage").click();
    h.step();
    wait_until(&mut h, "the outage switch", |a| a.background_tasks() == 0);
    h.get_by_role_and_label(Role::Button, "Sync now").click();
    wait_until(&mut h, "the outage to show", |a| {
        a.sync_handle().map(|s| s.status().reachable) == Some(Some(false))
    });
    assert!(status(&h).banner().starts_with("Offline"));
    // A record saved during the outage shows as queued at once, from the store's own outbox,
    // not "all synced" until the next timed attempt.
    h.get_by_role_and_label(Role::Button, "New record").click();
    support::ui::settle(&mut h);
    let node = h.get_by_label("Incident number");
    node.focus();
    node.type_text("INC-OUTAGE-1");
    support::ui::settle(&mut h);
    wait_until(&mut h, "the draft to be saved", |a| {
        a.editor().is_some_and(|e| !e.is_new)
    });
    // At once: the engine has not tried again since the save.
    let banner = h.state().status_banner().unwrap_or_default();
    assert!(banner.starts_with("Offline · 1 queued"), "{banner}");
    h.get_by_label_contains("Offline · 1 queued");
    h.get_by_label("Simulate server outage").click();
    h.step();
    wait_until(&mut h, "the outage switch", |a| a.background_tasks() == 0);
    h.get_by_role_and_label(Role::Button, "Sync now").click();
    wait_until(&mut h, "the server to be back", |a| {
        a.sync_handle().map(|s| s.status().reachable) == Some(Some(true))
    });
    let url = h.state().status_demo_url().unwrap();
    drop(h);

    // This store has held demo records: enrolling it with a real trust server is refused
    // before any connection, so no demo record can reach one.
    let trust = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    trust.set_nonblocking(true).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_epr"))
        .arg("--data-dir")
        .arg(dir.path())
        .args([
            "enroll",
            "--server",
            &format!("http://{}", trust.local_addr().unwrap()),
            "--code",
            "ABCD-EFGH",
        ])
        .env("EPR_PASSPHRASE", "heron pebble maple drift")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("demonstration"), "{err}");
    assert!(trust.accept().is_err(), "a connection was made");

    // A new launch: unlock brings the same demo server back on the same address.
    let mut h = harness(dir.path(), AppConfig::default());
    let node = h.get_by_label("Passphrase");
    node.focus();
    node.type_text("heron pebble maple drift");
    h.step();
    h.get_by_role_and_label(Role::Button, "Unlock").click();
    wait_until(&mut h, "sync after unlock", |a| {
        a.sync_handle().is_some() && a.status_demo_url().is_some()
    });
    assert_eq!(h.state().status_demo_url().unwrap(), url);
    wait_until(&mut h, "a sync after restart", |a| {
        a.sync_handle().map(|s| s.status().reachable) == Some(Some(true))
    });

    // The demo server's database is encrypted like the store: no SQLite header, no record.
    let demo_db = dir.path().join(ambulance_epr::local_server::DEMO_DB_FILE);
    let bytes = std::fs::read(&demo_db).unwrap();
    assert!(bytes.len() > 4096);
    assert!(!bytes.starts_with(b"SQLite format 3"));
    assert!(!bytes.windows(10).any(|w| w == b"INC-OUTAGE"));

    // Leaving the demo asks first, then deletes the demo store, its keyring and the demo
    // server's database, stops that server, and starts again at set-up.
    h.get_by_role_and_label(Role::Button, "Leave the demo…")
        .click();
    support::ui::settle(&mut h);
    h.get_by_role_and_label(Role::Button, "Keep trying it")
        .click();
    support::ui::settle(&mut h);
    assert_eq!(h.state().screen().name(), "records");
    h.get_by_role_and_label(Role::Button, "Leave the demo…")
        .click();
    support::ui::settle(&mut h);
    h.get_by_role_and_label(Role::Button, "Delete the demo and start again")
        .click();
    wait_until(&mut h, "set-up after the demo", |a| {
        a.screen().name() == "first run"
    });
    for gone in [
        "epr.db",
        "keyring.json",
        ambulance_epr::local_server::DEMO_DB_FILE,
    ] {
        assert!(!dir.path().join(gone).exists(), "{gone} is still there");
    }
    assert!(h.state().status_demo_url().is_none());
    let port: std::net::SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::net::TcpStream::connect(port).is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "the demo server still answers"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn enrol_with_a_trust_server_by_code() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let srv_dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", srv_dir.path().join("server.db").display());
    let storage = rt.block_on(server::open_storage(&url)).unwrap();
    let code = rt
        .block_on(admin::create_enrolment_code(storage.as_ref(), "Tablet 3"))
        .unwrap()
        .code;
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = ServerConfig {
        password_kdf: KdfParams::FAST_FOR_TESTS,
        ..ServerConfig::default()
    };
    let s = storage.clone();
    rt.spawn(async move {
        let _ = server::serve(s, config, listener, async {
            let _ = stopped.await;
        })
        .await;
    });

    let dir = tempfile::tempdir().unwrap();
    let mut h = harness(dir.path(), AppConfig::default());
    first_run(&mut h);
    h.get_by_label("Enrol with a trust server…").click();
    h.step();
    // A wrong code is refused with a plain message, and the form stays.
    for (label, text) in [
        ("Server address", format!("http://{addr}")),
        ("Enrolment code", "WRONG-CODE".to_owned()),
    ] {
        let node = h.get_by_label(label);
        node.focus();
        node.type_text(&text);
        h.step();
    }
    h.get_by_role_and_label(Role::Button, "Enrol").click();
    h.step();
    wait_until(&mut h, "the refusal", |a| {
        a.screen().name() == "connect"
            && a.connect_message()
                .is_some_and(|m| m.contains("enrolment failed"))
    });
    assert!(h.state().sync_handle().is_none());
    // Replace the code with the right one.
    let node = h.get_by_label("Enrolment code");
    node.focus();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.get_by_label("Enrolment code").type_text(&code);
    h.step();
    h.get_by_role_and_label(Role::Button, "Enrol").click();
    h.step();
    wait_until(&mut h, "enrolment", |a| {
        a.sync_handle().is_some() && a.screen().name() == "records"
    });
    wait_until(&mut h, "a first sync", |a| {
        a.sync_handle().map(|s| s.status().reachable) == Some(Some(true))
    });
    let stats = rt.block_on(admin::stats(storage.as_ref())).unwrap();
    assert_eq!(stats.devices, 1);
    let _ = stop.send(());
}
