//! The encrypted device store, through its public API, against real SQLCipher files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ambulance_epr::crypto::KdfParams;
use ambulance_epr::demo::complete_encounter;
use ambulance_epr::model::{Decision, Encounter, RecordStatus, Revision};
use ambulance_epr::store::{ListFilter, Store, StoreError, SyncState, migrate, store_path};
use proptest::prelude::*;

const PASS: &str = "correct horse 1234";

fn new_store(dir: &std::path::Path) -> Store {
    Store::create_with(
        dir,
        "crew",
        PASS,
        KdfParams::FAST_FOR_TESTS,
        migrate::latest_version(),
    )
    .unwrap()
}

/// Whether the file holds `needle`. A file that cannot be read fails the test: "no plaintext
/// found" must never mean "nothing was read".
fn file_contains(path: &std::path::Path, needle: &[u8]) -> bool {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {path:?}: {e}"));
    assert!(!bytes.is_empty(), "{path:?} is empty: nothing to check");
    bytes.windows(needle.len()).any(|w| w == needle)
}

#[cfg(unix)]
#[test]
fn the_data_directory_and_every_store_file_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("epr-data");
    let mut store = new_store(&dir);
    store.save_draft(&complete_encounter()).unwrap();
    let db = store_path(&dir);
    assert_eq!(mode(&dir), 0o700, "data directory");
    for path in [
        db.clone(),
        db.with_extension("db-wal"),
        db.with_extension("db-shm"),
        dir.join("keyring.json"),
    ] {
        assert!(path.exists(), "{path:?}");
        assert_eq!(mode(&path), 0o600, "{path:?}");
    }
}

#[test]
fn store_file_and_wal_contain_no_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = new_store(dir.path());
    assert!(
        !store.cipher_version().unwrap().is_empty(),
        "SQLCipher must be linked"
    );
    let mut e = complete_encounter();
    e.patient.family_name = "Zzyzxplaintextcheck".into();
    store.save_draft(&e).unwrap();
    store.complete_and_sign(&e, "A. Paramedic", "PA1").unwrap();
    let db = store_path(dir.path());
    let wal = db.with_extension("db-wal");
    assert!(wal.exists(), "WAL mode keeps a -wal file while open");
    for path in [&db, &wal] {
        assert!(
            !file_contains(path, b"Zzyzxplaintextcheck"),
            "{path:?} holds the surname"
        );
        assert!(
            !file_contains(path, b"INC-000123"),
            "{path:?} holds the incident number"
        );
        assert!(
            !file_contains(path, b"SQLite format 3"),
            "{path:?} has a plain header"
        );
    }
    drop(store);
    assert!(!file_contains(&db, b"Zzyzxplaintextcheck"));
    // A plain SQLite reader sees noise.
    let plain = rusqlite::Connection::open(&db).unwrap();
    let err = plain
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap_err();
    assert_eq!(
        err.sqlite_error_code(),
        Some(rusqlite::ErrorCode::NotADatabase)
    );
}

#[test]
fn wrong_passphrase_leaves_the_file_byte_for_byte_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = new_store(dir.path());
    store.save_draft(&complete_encounter()).unwrap();
    drop(store);
    let db = store_path(dir.path());
    let before = std::fs::read(&db).unwrap();
    let err = Store::unlock(dir.path(), None, "wrong").unwrap_err();
    assert!(matches!(err, StoreError::WrongPassphrase), "{err}");
    assert_eq!(err.to_string(), "wrong passphrase or PIN");
    assert_eq!(std::fs::read(&db).unwrap(), before);
    // And the right passphrase still works.
    let store = Store::unlock(dir.path(), None, PASS).unwrap();
    assert_eq!(store.status_counts().unwrap().encounters, 1);
}

#[test]
fn repeated_failures_are_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    drop(new_store(dir.path()));
    for _ in 0..3 {
        assert!(matches!(
            Store::unlock(dir.path(), None, "nope"),
            Err(StoreError::WrongPassphrase)
        ));
    }
    // The third failure starts a delay: even the right passphrase must wait.
    match Store::unlock(dir.path(), None, PASS) {
        Err(StoreError::RateLimited { wait_secs }) => assert!(wait_secs >= 1),
        other => panic!("expected a rate limit, got {other:?}"),
    }
}

#[test]
fn truncated_or_corrupted_store_is_reported_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = new_store(dir.path());
    for _ in 0..20 {
        store
            .save_draft(&Encounter::new_draft(chrono::Utc::now()))
            .unwrap();
    }
    drop(store);
    let db = store_path(dir.path());
    let original = std::fs::read(&db).unwrap();

    // Corrupt the first page (the salt and header): nothing can decrypt it.
    let mut bad = original.clone();
    for b in bad.iter_mut().take(64) {
        *b ^= 0xA5;
    }
    std::fs::write(&db, &bad).unwrap();
    let err = Store::unlock(dir.path(), None, PASS).unwrap_err();
    assert!(matches!(err, StoreError::Unreadable), "{err}");
    assert!(err.to_string().contains("left as it is"));
    assert_eq!(
        std::fs::read(&db).unwrap(),
        bad,
        "the damaged file is not touched"
    );

    // Truncated to half a page.
    std::fs::write(&db, &original[..2048]).unwrap();
    let err = Store::unlock(dir.path(), None, PASS).unwrap_err();
    assert!(matches!(err, StoreError::Unreadable), "{err}");
    assert_eq!(std::fs::read(&db).unwrap().len(), 2048);
    assert!(db.exists());
}

#[test]
fn store_from_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = new_store(dir.path());
    let future = migrate::latest_version() + 1;
    // What a future app would leave behind.
    store.set_user_version_for_tests(future).unwrap();
    drop(store);
    let before = std::fs::read(store_path(dir.path())).unwrap();
    let err = Store::unlock(dir.path(), None, PASS).unwrap_err();
    match err {
        StoreError::NewerVersion { found, supported } => {
            assert_eq!(found, future);
            assert_eq!(supported, migrate::latest_version());
        }
        other => panic!("expected NewerVersion, got {other}"),
    }
    assert_eq!(std::fs::read(store_path(dir.path())).unwrap(), before);
}

#[test]
fn a_store_created_by_the_first_migration_opens_and_upgrades() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create_with(dir.path(), "crew", PASS, KdfParams::FAST_FOR_TESTS, 1).unwrap();
    assert_eq!(store.schema_version().unwrap(), 1);
    store.set_setting("written_at_v1", "yes").unwrap();
    drop(store);
    let mut store = Store::unlock(dir.path(), None, PASS).unwrap();
    assert_eq!(store.schema_version().unwrap(), migrate::latest_version());
    assert_eq!(
        store.setting("written_at_v1").unwrap().as_deref(),
        Some("yes")
    );
    // The upgraded schema works end to end (sync columns from migration 2).
    let r = store.save_draft(&complete_encounter()).unwrap();
    assert_eq!(
        store.summary(r.record_id).unwrap().sync_state,
        SyncState::Queued
    );
    assert_eq!(store.status_counts().unwrap().pending_sync, 1);
}

#[test]
fn drafts_coalesce_in_the_outbox_and_signed_versions_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = new_store(dir.path());
    let mut e = complete_encounter();
    for i in 0..200 {
        e.notes = format!("edit {i}");
        store.save_draft(&e).unwrap();
    }
    assert_eq!(
        store.status_counts().unwrap().pending_sync,
        1,
        "200 edits, one push"
    );
    let batch = store.outbox_batch(100, 1 << 20).unwrap();
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].revision.get(), 200);

    let signed = store.complete_and_sign(&e, "A. Paramedic", "PA1").unwrap();
    assert_eq!(signed.revision.get(), 201);
    assert_eq!(signed.status, RecordStatus::Completed);
    assert_eq!(
        store.status_counts().unwrap().pending_sync,
        1,
        "the draft entry is superseded"
    );

    e.notes = "late correction".into();
    let amended = store
        .amend(&e, "Corrected notes", "A. Paramedic", "PA1")
        .unwrap();
    assert_eq!(amended.status, RecordStatus::Amended);
    assert_eq!(
        store.status_counts().unwrap().pending_sync,
        2,
        "every signed version is pushed"
    );

    let versions = store.versions(e.id).unwrap();
    assert_eq!(versions.len(), 202);
    let v201 = &versions[200];
    assert_eq!(v201.status, RecordStatus::Completed);
    assert!(v201.signature.is_some());
    assert_eq!(
        versions[201].amendment_reason.as_deref(),
        Some("Corrected notes")
    );
    // The completed version is unchanged by the amendment.
    assert_eq!(
        store
            .version(e.id, Revision::new(201).unwrap())
            .unwrap()
            .notes,
        "edit 199"
    );
    assert_eq!(store.get(e.id).unwrap().notes, "late correction");
}

#[test]
fn signed_records_cannot_be_saved_as_drafts_and_amendments_need_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = new_store(dir.path());
    let e = complete_encounter();
    store.complete_and_sign(&e, "A. Paramedic", "PA1").unwrap();
    assert!(matches!(store.save_draft(&e), Err(StoreError::Immutable)));
    assert!(matches!(
        store.amend(&e, "  ", "A. Paramedic", "PA1"),
        Err(StoreError::AmendmentNeedsReason)
    ));
}

#[test]
fn completing_an_incomplete_record_lists_what_is_missing_and_keeps_the_draft() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = new_store(dir.path());
    let mut e = Encounter::new_draft(chrono::Utc::now());
    e.incident.incident_number = "INC-1".into();
    store.save_draft(&e).unwrap();
    match store.complete_and_sign(&e, "A. Paramedic", "PA1") {
        Err(StoreError::Incomplete(items)) => {
            assert!(items.contains(&"Patient name".to_owned()));
            assert!(!items.contains(&"Incident number".to_owned()));
        }
        other => panic!("expected Incomplete, got {other:?}"),
    }
    assert_eq!(store.get(e.id).unwrap().status, RecordStatus::Draft);
}

#[test]
fn list_and_search_use_indexed_columns() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = new_store(dir.path());
    let summary = ambulance_epr::demo::add_demo_data(&mut store, 40, 3).unwrap();
    assert_eq!(summary.added, 40);
    let all = store.list(&ListFilter::default()).unwrap();
    assert_eq!(all.len(), 40);
    assert!(
        all.windows(2)
            .all(|w| w[0].updated_at_utc >= w[1].updated_at_utc),
        "newest first"
    );

    let target = store.get(all[7].id).unwrap();
    let by_incident = store
        .list(&ListFilter {
            text: Some(target.incident.incident_number.to_lowercase()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(by_incident.len(), 1);
    assert_eq!(by_incident[0].id, target.id);

    let nhs = target.patient.nhs_number.clone().unwrap();
    let by_nhs = store
        .list(&ListFilter {
            text: Some(nhs.formatted()),
            ..Default::default()
        })
        .unwrap();
    assert!(by_nhs.iter().any(|r| r.id == target.id));

    let by_name = store
        .list(&ListFilter {
            text: Some(target.patient.family_name.to_uppercase()),
            ..Default::default()
        })
        .unwrap();
    assert!(by_name.iter().any(|r| r.id == target.id));

    let drafts = store
        .list(&ListFilter {
            status: Some(RecordStatus::Draft),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(drafts.len() as u32, summary.drafts);
    let counts = store.status_counts().unwrap();
    assert_eq!(counts.encounters, 40);
    assert_eq!(counts.drafts as u32, summary.drafts);
    assert_eq!(counts.completed as u32, summary.completed);
    // Wildcards in search text are literal.
    let none = store
        .list(&ListFilter {
            text: Some("%".into()),
            ..Default::default()
        })
        .unwrap();
    assert!(none.is_empty());
}

#[test]
fn several_users_share_a_store_and_a_pin_change_rewraps() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = new_store(dir.path());
    store.save_draft(&complete_encounter()).unwrap();
    assert!(matches!(
        store.add_user("second", "1234", KdfParams::FAST_FOR_TESTS),
        Err(StoreError::WeakPassphrase(_))
    ));
    store
        .add_user(
            "second",
            "lantern otter quarry fig",
            KdfParams::FAST_FOR_TESTS,
        )
        .unwrap();
    assert!(matches!(
        store.add_user(
            "second",
            "another walnut meadow kite",
            KdfParams::FAST_FOR_TESTS
        ),
        Err(StoreError::UserExists(_))
    ));
    drop(store);
    assert!(matches!(
        Store::unlock(dir.path(), None, PASS),
        Err(StoreError::ChooseUser(_))
    ));
    let db_before = std::fs::read(store_path(dir.path())).unwrap().len();
    let mut second = Store::unlock(dir.path(), Some("second"), "lantern otter quarry fig").unwrap();
    assert_eq!(second.status_counts().unwrap().encounters, 1);
    assert!(matches!(
        second.change_passphrase("123456789012", KdfParams::FAST_FOR_TESTS),
        Err(StoreError::WeakPassphrase(_))
    ));
    second
        .change_passphrase("cobalt prairie juniper swan", KdfParams::FAST_FOR_TESTS)
        .unwrap();
    drop(second);
    assert!(Store::unlock(dir.path(), Some("second"), "lantern otter quarry fig").is_err());
    assert!(Store::unlock(dir.path(), Some("second"), "cobalt prairie juniper swan").is_ok());
    assert!(Store::unlock(dir.path(), Some("crew"), PASS).is_ok());
    assert!(std::fs::read(store_path(dir.path())).unwrap().len() >= db_before);
}

#[test]
fn every_save_is_audited_in_an_unbroken_chain() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = new_store(dir.path());
    let e = complete_encounter();
    store.save_draft(&e).unwrap();
    store.complete_and_sign(&e, "A. Paramedic", "PA1").unwrap();
    let entries = store.audit_for(e.id).unwrap();
    let actions: Vec<_> = entries.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(actions, ["draft_saved", "completed"]);
    assert!(entries.iter().all(|a| a.actor == "crew"));
    assert_eq!(store.audit_chain_break().unwrap(), None);
    assert!(store.integrity_problems().unwrap().is_empty());
}

#[test]
fn signatures_verify_against_the_signing_users_key_not_the_devices() {
    use ambulance_epr::crypto::{
        SignedVersion, VersionKey, content_sha256_hex, signing_payload, verify_signature,
    };
    let dir = tempfile::tempdir().unwrap();
    let mut store = new_store(dir.path());
    let e = complete_encounter();
    let r = store.complete_and_sign(&e, "A. Paramedic", "PA1").unwrap();
    let item = store.outbox_batch(10, 1 << 20).unwrap().pop().unwrap();
    let doc: serde_json::Value = serde_json::from_str(&item.document).unwrap();
    assert_eq!(content_sha256_hex(&doc), item.content_sha256);
    let signer = store.signer().unwrap().identity().clone();
    assert_eq!(item.signer_user_id, Some(signer.user_id));
    let signed = SignedVersion {
        record_id: r.record_id,
        revision: r.revision,
        status: "completed",
        content_sha256: &item.content_sha256,
        saved_at_utc: item.saved_at_utc,
        signature_b64: item.signature.as_deref().unwrap(),
    };
    assert_eq!(
        signed.verify(VersionKey::User {
            user_id: signer.user_id,
            public_key_b64: &signer.public_key,
            tablet_id: store.tablet_id().unwrap(),
        }),
        Ok(())
    );
    // Not the tablet's key, in either format.
    let device = store.signing_key().unwrap().public_key_base64();
    let v1 = signing_payload(r.record_id, r.revision, "completed", &item.content_sha256);
    assert!(verify_signature(&device, &v1, item.signature.as_deref().unwrap()).is_err());
    assert!(
        signed
            .verify(VersionKey::Device {
                public_key_b64: &device
            })
            .is_err()
    );
}

#[test]
fn missing_store_is_not_created_by_unlock() {
    let dir = tempfile::tempdir().unwrap();
    let err = Store::unlock(dir.path(), None, PASS).unwrap_err();
    assert!(matches!(err, StoreError::NotInitialised(_)));
    assert!(!store_path(dir.path()).exists());
}

#[test]
fn creating_over_an_existing_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(new_store(dir.path()));
    let before = std::fs::read(store_path(dir.path())).unwrap();
    let err =
        Store::create_with(dir.path(), "x", "yyyy", KdfParams::FAST_FOR_TESTS, 2).unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists(_)));
    assert_eq!(std::fs::read(store_path(dir.path())).unwrap(), before);
}

#[test]
fn a_late_acknowledgement_does_not_hide_a_newer_edit() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = new_store(dir.path());
    let mut e = Encounter::new_draft(chrono::Utc::now());
    let first = store.save_draft(&e).unwrap();
    let in_flight = store.outbox_batch(10, 1 << 20).unwrap();
    assert_eq!(in_flight[0].revision, first.revision);
    store.mark_sending(&[e.id]).unwrap();
    e.notes = "edited while the push was in flight".into();
    let second = store.save_draft(&e).unwrap();
    // The server's answer for the first revision arrives late.
    store.acknowledge(e.id, first.revision).unwrap();
    assert_ne!(store.summary(e.id).unwrap().sync_state, SyncState::Synced);
    let still = store.outbox_batch(10, 1 << 20).unwrap();
    assert_eq!(still.len(), 1);
    assert_eq!(still[0].revision, second.revision);
    store.acknowledge(e.id, second.revision).unwrap();
    assert_eq!(store.summary(e.id).unwrap().sync_state, SyncState::Synced);
    assert_eq!(store.status_counts().unwrap().pending_sync, 0);
}

#[test]
fn a_returned_record_signed_again_no_longer_counts_as_returned() {
    use ambulance_epr::store::FeedbackEntry;
    let dir = tempfile::tempdir().unwrap();
    let mut store = new_store(dir.path());
    let mut e = complete_encounter();
    store.complete_and_sign(&e, "A. Paramedic", "PA1").unwrap();
    store
        .apply_feedback(
            &[FeedbackEntry {
                cursor: 1,
                record_id: e.id,
                revision: Revision::new(1).unwrap(),
                decision: Decision::Returned,
                comment: "Please add the GCS".into(),
                decided_by: "sup".into(),
                decided_at_utc: chrono::Utc::now(),
            }],
            1,
        )
        .unwrap();
    assert_eq!(store.status_counts().unwrap().returned, 1);
    assert_eq!(
        store.review_of(e.id).unwrap().unwrap().0,
        Decision::Returned
    );
    // Editing an amendment in progress keeps it returned; signing it hands it back.
    e.notes = "GCS added".into();
    store.save_amendment_draft(&e).unwrap();
    assert_eq!(store.status_counts().unwrap().returned, 1);
    store
        .amend(&e, "Added GCS as asked", "A. Paramedic", "PA1")
        .unwrap();
    assert_eq!(store.status_counts().unwrap().returned, 0);
    assert_eq!(store.review_of(e.id).unwrap(), None);
    assert_eq!(
        store.feedback_for(e.id).unwrap().len(),
        1,
        "the decision stays in the history"
    );
}

/// The app's worker, its sync engine and the CLI write through separate connections. A
/// transaction that reads before it writes must wait for the other writer, never fail
/// with "database is locked" (which the crew would see as a record that would not open).
#[test]
fn writers_on_separate_connections_wait_for_each_other() {
    use ambulance_epr::store::audit::Action;
    let dir = tempfile::tempdir().unwrap();
    let mut first = new_store(dir.path());
    let e = complete_encounter();
    first.save_draft(&e).unwrap();
    let mut second = first.open_another().unwrap();
    let rounds = 150;
    let writer = std::thread::spawn(move || {
        for i in 0..rounds {
            let mut edit = e.clone();
            edit.notes = format!("edit {i}");
            second.save_draft(&edit).unwrap();
            second.mark_sending(&[edit.id]).unwrap();
        }
    });
    let id = complete_encounter().id;
    let mut failures = Vec::new();
    for _ in 0..rounds {
        // Reads the chain's last hash, then appends: the pattern that used to fail at once.
        if let Err(err) = first.record_access(Action::Viewed, id) {
            failures.push(err.to_string());
        }
    }
    writer.join().unwrap();
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        failures.first()
    );
    assert_eq!(first.audit_chain_break().unwrap(), None);
}

/// An older keyring (format 1: the seal bound to its purpose only) still unlocks, and the
/// unlock seals the key again bound to its user and parameters, under the policy's cost.
#[test]
fn an_older_or_weaker_seal_is_upgraded_on_unlock_and_a_newer_keyring_is_refused() {
    use ambulance_epr::crypto::WrappedKey;
    use ambulance_epr::store::keyring::{KEYRING_FORMAT, Keyring};
    let dir = tempfile::tempdir().unwrap();
    let store = new_store(dir.path());
    let key =
        ambulance_epr::crypto::DatabaseKey::from_bytes(*store.database_key().unwrap().as_bytes());
    drop(store);
    let kr_path = dir.path().join("keyring.json");
    let mut keyring = Keyring::load(&kr_path).unwrap().unwrap();
    keyring.format = 1;
    keyring.users[0].wrapped =
        WrappedKey::wrap_format_1_for_tests(&key, PASS, KdfParams::FAST_FOR_TESTS).unwrap();
    keyring.save(&kr_path).unwrap();

    let stronger = KdfParams {
        memory_kib: 256,
        iterations: 2,
        parallelism: 1,
    };
    Store::unlock_with_policy(dir.path(), None, PASS, stronger).unwrap();
    let upgraded = Keyring::load(&kr_path).unwrap().unwrap();
    assert_eq!(upgraded.format, KEYRING_FORMAT);
    assert_eq!(upgraded.users[0].wrapped.format, 2);
    assert_eq!(upgraded.users[0].wrapped.kdf, stronger);
    // It still unlocks, now under the new seal, and nothing is re-sealed again.
    Store::unlock_with_policy(dir.path(), None, PASS, stronger).unwrap();
    assert_eq!(Keyring::load(&kr_path).unwrap().unwrap(), upgraded);

    // A keyring written by a newer app is refused, and left as it is.
    let mut newer = upgraded.clone();
    newer.format = KEYRING_FORMAT + 1;
    newer.save(&kr_path).unwrap();
    let before = std::fs::read(&kr_path).unwrap();
    let err = Store::unlock(dir.path(), None, PASS).unwrap_err();
    assert!(err.to_string().contains("newer version"), "{err}");
    assert_eq!(std::fs::read(&kr_path).unwrap(), before);
}

/// A complete encounter with an id of its own.
fn fresh_encounter() -> Encounter {
    let mut e = complete_encounter();
    e.id = uuid::Uuid::now_v7();
    e
}

/// The signature of `record`'s version `revision`, checked as a reviewer would: format 2, by
/// the key the store registered for the user it names.
fn clinician_signature_holds(store: &Store, record: &Encounter, revision: Revision) -> String {
    use ambulance_epr::crypto::{SignedVersion, VersionKey};
    let info = store
        .versions(record.id)
        .unwrap()
        .into_iter()
        .find(|v| v.revision == revision)
        .unwrap();
    let user_id = info
        .signer_user_id
        .expect("signed by a clinician's own key");
    let signer = store.signer_identity(user_id).unwrap().unwrap();
    SignedVersion {
        record_id: record.id,
        revision,
        status: info.status.as_str(),
        content_sha256: &info.content_sha256,
        saved_at_utc: info.saved_at_utc,
        signature_b64: info.signature.as_deref().unwrap(),
    }
    .verify(VersionKey::User {
        user_id,
        public_key_b64: &signer.public_key,
        tablet_id: signer.tablet_id,
    })
    .unwrap();
    signer.user_name
}

#[test]
fn each_user_signs_with_their_own_key_registered_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = new_store(dir.path());
    let crew_id = store.signer().unwrap().user_id();
    let first = fresh_encounter();
    store.complete_and_sign(&first, "A Crew", "PA1").unwrap();
    assert_eq!(
        clinician_signature_holds(&store, &first, Revision::FIRST),
        "crew"
    );
    store
        .add_user(
            "second",
            "lantern copper heron vale",
            KdfParams::FAST_FOR_TESTS,
        )
        .unwrap();
    drop(store);

    // The second user unlocks with their own secret and signs with their own key.
    let mut second = Store::unlock_with_policy(
        dir.path(),
        Some("second"),
        "lantern copper heron vale",
        KdfParams::FAST_FOR_TESTS,
    )
    .unwrap();
    let second_id = second.signer().unwrap().user_id();
    assert_ne!(second_id, crew_id);
    let other = fresh_encounter();
    second.complete_and_sign(&other, "B Crew", "PA2").unwrap();
    assert_eq!(
        clinician_signature_holds(&second, &other, Revision::FIRST),
        "second"
    );

    // Both keys wait to be registered, each with a proof that holds; once acknowledged,
    // neither is sent again.
    let pending = second.unregistered_signers().unwrap();
    let ids: Vec<_> = pending.iter().map(|p| p.identity.user_id).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&crew_id) && ids.contains(&second_id));
    assert!(pending.iter().all(|p| p.identity.check_proof(&p.proof)));
    let tablet = second.tablet_id().unwrap();
    assert!(pending.iter().all(|p| p.identity.tablet_id == tablet));
    second.mark_signers_registered(&ids).unwrap();
    assert!(second.unregistered_signers().unwrap().is_empty());
    // A new enrolment must hear of them all again.
    second.forget_signer_registrations().unwrap();
    assert_eq!(second.unregistered_signers().unwrap().len(), 2);
    second.mark_signers_registered(&ids).unwrap();
    drop(second);

    // The first user's key survives a passphrase change and comes back at the next unlock.
    let mut crew =
        Store::unlock_with_policy(dir.path(), Some("crew"), PASS, KdfParams::FAST_FOR_TESTS)
            .unwrap();
    assert_eq!(crew.signer().unwrap().user_id(), crew_id);
    crew.change_passphrase("willow ember quartz harbour", KdfParams::FAST_FOR_TESTS)
        .unwrap();
    drop(crew);
    let crew = Store::unlock_with_policy(
        dir.path(),
        Some("crew"),
        "willow ember quartz harbour",
        KdfParams::FAST_FOR_TESTS,
    )
    .unwrap();
    assert_eq!(crew.signer().unwrap().user_id(), crew_id);
}

#[test]
fn a_keyring_from_before_user_keys_gets_one_at_the_next_unlock() {
    use ambulance_epr::store::keyring::{Keyring, KeyringUser};
    let dir = tempfile::tempdir().unwrap();
    drop(new_store(dir.path()));
    // As an older app wrote it: format 2, no sealed signing key.
    let path = ambulance_epr::store::keyring_path(dir.path());
    let mut keyring = Keyring::load(&path).unwrap().unwrap();
    keyring.format = 2;
    keyring.users = keyring
        .users
        .into_iter()
        .map(|u| KeyringUser { signer: None, ..u })
        .collect();
    keyring.save(&path).unwrap();

    let mut store =
        Store::unlock_with_policy(dir.path(), None, PASS, KdfParams::FAST_FOR_TESTS).unwrap();
    let made = store.signer().unwrap().user_id();
    let record = fresh_encounter();
    store.complete_and_sign(&record, "A Crew", "PA1").unwrap();
    clinician_signature_holds(&store, &record, Revision::FIRST);
    drop(store);
    let saved = Keyring::load(&path).unwrap().unwrap();
    assert_eq!(saved.format, ambulance_epr::store::keyring::KEYRING_FORMAT);
    assert!(saved.users[0].signer.is_some());
    let again =
        Store::unlock_with_policy(dir.path(), None, PASS, KdfParams::FAST_FOR_TESTS).unwrap();
    assert_eq!(
        again.signer().unwrap().user_id(),
        made,
        "the same key, kept"
    );
}

#[test]
fn without_the_users_key_open_signing_is_refused_and_the_draft_kept() {
    use ambulance_epr::crypto::WrappedKey;
    let dir = tempfile::tempdir().unwrap();
    let store = new_store(dir.path());
    // What the quick PIN keeps in memory: the store key and the user's signing key, both
    // sealed under the PIN with one key derivation.
    let owner = "quick-pin:crew";
    let (sealed_key, secret) = WrappedKey::wrap_with_secret(
        store.database_key().unwrap(),
        "97531",
        KdfParams::FAST_FOR_TESTS,
        owner,
    )
    .unwrap();
    let sealed_signer = store.signer().unwrap().seal(&secret, owner).unwrap();
    drop(store);

    let (key, secret) = sealed_key.open("97531", owner).unwrap();
    let signer = sealed_signer.open(&secret, owner).unwrap();
    let mut store = Store::open_with_key(dir.path(), "crew", key, Some(signer)).unwrap();
    let record = fresh_encounter();
    store.complete_and_sign(&record, "A Crew", "PA1").unwrap();
    clinician_signature_holds(&store, &record, Revision::FIRST);
    drop(store);

    // Opened with the store key alone, a record can still be drafted but not signed.
    let (key, _) = sealed_key.open("97531", owner).unwrap();
    let mut store = Store::open_with_key(dir.path(), "crew", key, None).unwrap();
    let mut draft = fresh_encounter();
    draft.notes = "kept while unsigned".into();
    store.save_draft(&draft).unwrap();
    assert!(matches!(
        store.complete_and_sign(&draft, "A Crew", "PA1"),
        Err(StoreError::SignerUnavailable)
    ));
    let kept = store.version(draft.id, Revision::FIRST).unwrap();
    assert_eq!(kept.notes, "kept while unsigned");
    assert_eq!(kept.status, RecordStatus::Draft);
}

/// A signed record of its own (fresh id) on `store`.
fn sign_new(store: &mut Store) -> (uuid::Uuid, Revision) {
    let mut e = complete_encounter();
    e.id = uuid::Uuid::now_v7();
    let r = store.complete_and_sign(&e, "A. Paramedic", "PA1").unwrap();
    (r.record_id, r.revision)
}

#[test]
fn a_signed_version_can_be_deleted_only_once_the_server_proved_it_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = new_store(dir.path());
    let delete = |store: &Store, id: uuid::Uuid| {
        store.execute_batch_for_tests(&format!(
            "DELETE FROM encounter_versions WHERE encounter_id = '{id}'"
        ))
    };
    let (queued, _) = sign_new(&mut store);
    assert!(delete(&store, queued).is_err(), "queued: kept");
    let (unproved, rev) = sign_new(&mut store);
    store.acknowledge_many(&[(unproved, rev)]).unwrap();
    assert!(
        delete(&store, unproved).is_err(),
        "acknowledged but never proved in a verified checkpoint: kept"
    );
    let (proved, rev) = sign_new(&mut store);
    store.acknowledge_proved(&[(proved, rev)], 12).unwrap();
    let (at, size) = store.acknowledgement_of(proved, rev).unwrap().unwrap();
    assert_eq!(size, Some(12));
    assert!(at <= chrono::Utc::now());
    // The acknowledgement is written once; the content never changes.
    assert!(
        store
            .execute_batch_for_tests(&format!(
                "UPDATE encounter_versions SET acknowledged_at_utc = '2020-01-01T00:00:00.000000Z'
                 WHERE encounter_id = '{proved}'"
            ))
            .is_err()
    );
    assert!(
        store
            .execute_batch_for_tests(&format!(
                "UPDATE encounter_versions SET document = '{{}}' WHERE encounter_id = '{proved}'"
            ))
            .is_err()
    );
    // A later proof of a version acknowledged before is recorded.
    store.acknowledge_proved(&[(unproved, rev)], 13).unwrap();
    assert_eq!(
        store.acknowledgement_of(unproved, rev).unwrap().unwrap().1,
        Some(13)
    );
    assert!(delete(&store, proved).is_ok(), "proved: may go");
}

#[test]
fn a_retiring_tablet_takes_no_new_record_but_finishes_the_ones_open() {
    use ambulance_epr::store::TabletState;
    let dir = tempfile::tempdir().unwrap();
    let mut store = new_store(dir.path());
    let mut open = complete_encounter();
    store.save_draft(&open).unwrap();
    store.set_tablet_state(TabletState::Retiring).unwrap();
    let mut fresh = complete_encounter();
    fresh.id = uuid::Uuid::now_v7();
    assert!(matches!(
        store.save_draft(&fresh),
        Err(StoreError::TabletRetiring)
    ));
    assert!(matches!(
        store.complete_and_sign(&fresh, "A. Paramedic", "PA1"),
        Err(StoreError::TabletRetiring)
    ));
    assert!(
        store.summary(fresh.id).is_err(),
        "nothing of it was written"
    );
    open.notes = "finished while the tablet is being retired".into();
    store.save_draft(&open).unwrap();
    store
        .complete_and_sign(&open, "A. Paramedic", "PA1")
        .unwrap();
    store.set_tablet_state(TabletState::Active).unwrap();
    store.save_draft(&fresh).unwrap();
}

#[test]
fn holdings_count_signed_versions_and_date_the_oldest_unacknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = new_store(dir.path());
    let empty = store.holdings().unwrap();
    assert_eq!((empty.held_versions, empty.pending), (0, 0));
    assert!(empty.oldest_unacknowledged_utc.is_none());
    let (first, rev) = sign_new(&mut store);
    let first_saved = store.versions(first).unwrap()[0].saved_at_utc;
    std::thread::sleep(std::time::Duration::from_millis(5));
    sign_new(&mut store);
    let held = store.holdings().unwrap();
    assert_eq!((held.held_versions, held.pending), (2, 2));
    assert_eq!(held.oldest_unacknowledged_utc, Some(first_saved));
    store.acknowledge_proved(&[(first, rev)], 3).unwrap();
    let held = store.holdings().unwrap();
    assert_eq!((held.held_versions, held.pending), (2, 1));
    assert!(held.oldest_unacknowledged_utc.unwrap() > first_saved);
}

#[test]
fn versions_acknowledged_before_retention_existed_are_kept_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let mut store =
        Store::create_with(dir.path(), "crew", PASS, KdfParams::FAST_FOR_TESTS, 4).unwrap();
    let mut e = complete_encounter();
    e.id = uuid::Uuid::now_v7();
    let acked = store.complete_and_sign(&e, "A. Paramedic", "PA1").unwrap();
    e.id = uuid::Uuid::now_v7();
    let queued = store.complete_and_sign(&e, "A. Paramedic", "PA1").unwrap();
    // Acknowledged the way schema 4 did: the outbox entry removed.
    store
        .execute_batch_for_tests(&format!(
            "DELETE FROM outbox WHERE encounter_id = '{}'",
            acked.record_id
        ))
        .unwrap();
    drop(store);
    let mut store = Store::unlock(dir.path(), None, PASS).unwrap();
    assert_eq!(store.schema_version().unwrap(), migrate::latest_version());
    let (_, size) = store
        .acknowledgement_of(acked.record_id, acked.revision)
        .unwrap()
        .expect("counted as acknowledged");
    assert_eq!(size, None, "never proved");
    assert!(
        store
            .acknowledgement_of(queued.record_id, queued.revision)
            .unwrap()
            .is_none()
    );
    let far = chrono::Utc::now() + chrono::Duration::days(3650);
    let purged = store.purge_expired(far, chrono::Duration::days(1)).unwrap();
    assert_eq!(purged.records, 0);
    assert_eq!(store.holdings().unwrap().held_versions, 2);
}

/// What one record in the retention property test went through.
#[derive(Debug, Clone)]
struct HeldRecord {
    /// Signed versions: 1 (completed) or 2 (and an amendment).
    versions: u8,
    /// Per version: 0 queued, 1 acknowledged without proof, 2 acknowledged and proved.
    acks: [u8; 2],
    quarantined: bool,
    amending: bool,
    returned: bool,
}

fn held_record() -> impl Strategy<Value = HeldRecord> {
    (
        1u8..=2,
        0u8..=2,
        0u8..=2,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(versions, a, b, quarantined, amending, returned)| HeldRecord {
                versions,
                acks: [a, b],
                quarantined,
                amending,
                returned,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    /// Whatever was acknowledged, proved, refused, amended or returned, and however far the
    /// clock has moved, a purge never removes a version the server has not acknowledged and
    /// proved, never removes a record in part, and does remove every record wholly proved
    /// before the window with nothing left to do on it.
    #[test]
    fn retention_never_drops_an_unacknowledged_version(
        records in proptest::collection::vec(held_record(), 1..7),
        days_later in prop::sample::select(vec![0i64, 10, 40, 100]),
        window_days in prop::sample::select(vec![5i64, 30, 60]),
    ) {
        use ambulance_epr::store::FeedbackEntry;
        let dir = tempfile::tempdir().unwrap();
        let mut store = new_store(dir.path());
        let mut expected_gone = Vec::new();
        let mut expected_kept = Vec::new();
        let mut feedback = Vec::new();
        for (i, r) in records.iter().enumerate() {
            let mut e = complete_encounter();
            e.id = uuid::Uuid::now_v7();
            let mut revs = vec![store.complete_and_sign(&e, "A. Paramedic", "PA1").unwrap().revision];
            if r.versions == 2 {
                e.notes = format!("amended {i}");
                revs.push(store.amend(&e, "a correction", "A. Paramedic", "PA1").unwrap().revision);
            }
            let mut all_proved = true;
            for (rev, ack) in revs.iter().zip(r.acks) {
                match ack {
                    1 => store.acknowledge_many(&[(e.id, *rev)]).unwrap(),
                    2 => store.acknowledge_proved(&[(e.id, *rev)], 100).unwrap(),
                    _ => {}
                }
                all_proved &= ack == 2;
            }
            let last = *revs.last().unwrap();
            let mut holds_back = false;
            if r.quarantined && r.acks[revs.len() - 1] == 0 {
                store.quarantine(e.id, last, "refused in the test").unwrap();
            }
            if r.amending {
                e.notes = format!("being amended {i}");
                store.save_amendment_draft(&e).unwrap();
                holds_back = true;
            }
            if r.returned {
                feedback.push(FeedbackEntry {
                    cursor: i as i64 + 1,
                    record_id: e.id,
                    revision: last,
                    decision: Decision::Returned,
                    comment: "please add the times".into(),
                    decided_by: "sup".into(),
                    decided_at_utc: chrono::Utc::now(),
                });
                holds_back = true;
            }
            let versions: Vec<_> = store.versions(e.id).unwrap();
            if all_proved && !holds_back && days_later > window_days {
                expected_gone.push(e.id);
            } else {
                expected_kept.push((e.id, versions));
            }
        }
        store.apply_feedback(&feedback, feedback.len() as i64).unwrap();
        let now = chrono::Utc::now() + chrono::Duration::days(days_later);
        let purged = store.purge_expired(now, chrono::Duration::days(window_days)).unwrap();
        prop_assert_eq!(purged.records, expected_gone.len() as u64);
        for id in &expected_gone {
            prop_assert!(store.summary(*id).is_err());
            prop_assert!(store.versions(*id).unwrap().is_empty());
        }
        for (id, versions) in &expected_kept {
            prop_assert_eq!(&store.versions(*id).unwrap(), versions, "kept whole");
            prop_assert!(store.summary(*id).is_ok());
        }
        // Every version still waiting is still here.
        let held = store.holdings().unwrap();
        prop_assert_eq!(held.pending, store.status_counts().unwrap().pending_sync
            + store.status_counts().unwrap().quarantined);
    }
}
