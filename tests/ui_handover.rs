//! "Hand over…" in the record view: the ATMIST text, and the FHIR bundle and PDF saved to a
//! chosen folder with no server, through the accessibility tree.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use ambulance_epr::crypto::KdfParams;
use ambulance_epr::demo::complete_encounter;
use ambulance_epr::store::{Store, migrate};
use ambulance_epr::ui::{AppConfig, EprApp};
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use support::ui::{harness, settle};

fn notice(h: &Harness<'_, EprApp>) -> Option<String> {
    h.state().editor().and_then(|e| e.notice.clone())
}

fn wait_for_notice(h: &mut Harness<'_, EprApp>, starts_with: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        settle(h);
        if let Some(n) = notice(h).filter(|n| n.starts_with(starts_with)) {
            return n;
        }
        assert!(
            Instant::now() < deadline,
            "no notice starting {starts_with:?}; got {:?}",
            notice(h)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn set_folder(h: &mut Harness<'_, EprApp>, folder: &str) {
    let node = h.get_by_label("Save to folder");
    node.focus();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.get_by_label("Save to folder").type_text(folder);
    h.run();
}

#[test]
fn hand_over_saves_fhir_and_pdf_to_a_chosen_folder_and_reports_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::create_with(
        dir.path(),
        "alex",
        "2468",
        KdfParams::FAST_FOR_TESTS,
        migrate::latest_version(),
    )
    .unwrap();
    let e = complete_encounter();
    store.complete_and_sign(&e, "Dr Test", "PA000001").unwrap();
    drop(store);
    let out = tempfile::tempdir().unwrap();

    let mut h = harness(dir.path(), AppConfig::default());
    let node = h.get_by_label("Passphrase");
    node.focus();
    node.type_text("2468");
    h.run();
    h.get_by_role_and_label(Role::Button, "Unlock").click();
    settle(&mut h);
    h.get_by_label_contains("INC-000123").click();
    settle(&mut h);
    h.get_by_label("Handover (ATMIST)").click();
    settle(&mut h);
    // The ATMIST text, large, for reading aloud.
    h.get_by_label("Central chest pain");

    set_folder(&mut h, out.path().to_str().unwrap());
    h.get_by_role_and_label(Role::Button, "Save PDF").click();
    // Named by incident, the record's short id and the version: in a multi-casualty incident
    // every patient shares the incident number.
    let short = ambulance_epr::export::short_id(e.id);
    let pdf_name = format!("handover-INC-000123-{short}-v1.pdf");
    let n = wait_for_notice(&mut h, "Saved");
    assert!(n.ends_with(&pdf_name), "{n}");
    let pdf = std::fs::read(out.path().join(&pdf_name)).unwrap();
    assert!(pdf.starts_with(b"%PDF"));

    // Saving the same version again is harmless (the same document within the minute) or
    // refused; a different file under the name is never replaced.
    std::fs::write(out.path().join(&pdf_name), b"another document").unwrap();
    h.get_by_role_and_label(Role::Button, "Save PDF").click();
    let n = wait_for_notice(&mut h, &pdf_name);
    assert!(n.contains("it was not replaced"), "{n}");
    assert_eq!(
        std::fs::read(out.path().join(&pdf_name)).unwrap(),
        b"another document"
    );

    h.get_by_role_and_label(Role::Button, "Save FHIR bundle")
        .click();
    wait_for_notice(&mut h, "Saved /");
    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            out.path()
                .join(format!("handover-INC-000123-{short}-v1.json")),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(json["type"], "document");
    assert_eq!(json["entry"][0]["resource"]["status"], "final");

    set_folder(&mut h, "/nonexistent-folder");
    h.get_by_role_and_label(Role::Button, "Save PDF").click();
    let n = wait_for_notice(&mut h, "Could not save");
    assert!(n.contains("/nonexistent-folder"), "{n}");

    drop(h);
    let store = Store::unlock(dir.path(), None, "2468").unwrap();
    let exports = store
        .audit_for(e.id)
        .unwrap()
        .into_iter()
        .filter(|a| a.action == "exported")
        .count();
    assert_eq!(exports, 2, "each export is audited; the failed one is not");
}
