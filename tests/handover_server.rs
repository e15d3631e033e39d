//! The server's FHIR export matches the device's for the same version, and only supervisors
//! can read it. On SQLite and on PostgreSQL (see `both_backends!`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod server_common;

use ambulance_epr::crypto::KdfParams;
use ambulance_epr::demo::complete_encounter;
use ambulance_epr::export::fhir;
use ambulance_epr::model::Revision;
use ambulance_epr::store::{Store, migrate};
use ambulance_epr::sync::{Engine, SyncConfig};
use serde_json::Value;
use server_common::*;

both_backends!(
    async: device_and_server_bundles_for_one_version_are_identical_apart_from_generation
);

fn without_generation_metadata(mut b: Value) -> Value {
    b["timestamp"] = Value::Null;
    b["meta"] = Value::Null;
    b
}

async fn device_and_server_bundles_for_one_version_are_identical_apart_from_generation(
    backend: Backend,
) {
    let srv = start_on(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::create_with(
        dir.path(),
        "crew",
        "pass",
        KdfParams::FAST_FOR_TESTS,
        migrate::latest_version(),
    )
    .unwrap();
    let code =
        ambulance_epr::server::admin::create_enrolment_code(srv.storage.as_ref(), "Tablet F")
            .await
            .unwrap()
            .code;
    let base = srv.base.trim_end_matches("/api/v1").to_owned();
    ambulance_epr::sync::enroll(&store, &base, &code)
        .await
        .unwrap();
    let mut e = complete_encounter();
    store
        .complete_and_sign(&e, "A. Paramedic", "PA000001")
        .unwrap();
    e.notes = "Amended after handover.".into();
    store
        .amend(&e, "Added a note", "A. Paramedic", "PA000001")
        .unwrap();
    let mut engine = Engine::new(store.open_another().unwrap(), SyncConfig::default());
    let report = engine.run_cycle().await.unwrap();
    assert_eq!(report.pending, 0);
    // The server's Date header was read: both clocks here are this machine's.
    let skew = engine
        .clock_skew_secs()
        .expect("the server's clock was read");
    assert!(skew.abs() <= 2, "skew {skew} s on one machine");

    let token = supervisor(&srv, "sup").await;
    for revision in [1u64, 2] {
        let (doc, meta) = store
            .version_for_export(e.id, Some(Revision::new(revision).unwrap()))
            .unwrap();
        let device = fhir::bundle(&doc, &meta, chrono::Utc::now());
        let resp = srv
            .http
            .get(srv.url(&format!(
                "/review/encounters/{}/fhir?revision={revision}",
                e.id
            )))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let server: Value = resp.json().await.unwrap();
        assert_eq!(
            without_generation_metadata(server),
            without_generation_metadata(device),
            "revision {revision}"
        );
    }
    // Default: the latest signed version.
    let latest: Value = srv
        .http
        .get(srv.url(&format!("/review/encounters/{}/fhir", e.id)))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ext = latest["entry"][0]["resource"]["extension"][0]["valueInteger"].clone();
    assert_eq!(ext, 2);

    // A device token cannot use the review API; no token gets 401; unknown revision 404.
    let device_token = store
        .setting(ambulance_epr::sync::engine::DEVICE_TOKEN)
        .unwrap()
        .unwrap();
    let resp = srv
        .http
        .get(srv.url(&format!("/review/encounters/{}/fhir", e.id)))
        .bearer_auth(&device_token)
        .send()
        .await
        .unwrap();
    assert!(
        resp.status() == 401 || resp.status() == 403,
        "{}",
        resp.status()
    );
    let resp = srv
        .http
        .get(srv.url(&format!("/review/encounters/{}/fhir", e.id)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = srv
        .http
        .get(srv.url(&format!("/review/encounters/{}/fhir?revision=9", e.id)))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    expect_error(resp, 404, "not_found").await;
}
