//! The HTTP API against a real server on 127.0.0.1:0: enrolment, the access-rule matrix, every
//! kind of bad input, login throttling, audit of reads, and a property test that fires
//! thousands of generated bodies at the push endpoint. Every test runs on SQLite and on
//! PostgreSQL (`name::sqlite`, `name::postgres`; see `both_backends!`), each on a fresh
//! database.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod server_common;

use std::io::{Read, Write};
use std::time::Duration;

use ambulance_epr::model::RecordStatus;
use ambulance_epr::protocol::*;
use ambulance_epr::server::{ServerConfig, admin};
use chrono::Utc;
use proptest::prelude::*;
use server_common::*;

both_backends!(
    async: enrolment_end_to_end,
    one_code_enrols_one_device_when_used_at_once,
    access_rule_matrix,
    bad_input_gets_json_4xx,
    bad_items_are_rejected_per_item_inside_a_200,
    clinician_keys_are_registered_logged_and_hold_their_signatures,
    stalled_body_times_out_with_408,
    failed_logins_are_throttled,
    tablets_report_what_they_hold_and_retirement_waits_for_nothing_unsent,
    a_rebuilt_server_takes_back_only_the_tablets_its_lost_log_enrolled,
    the_review_queue_filters_by_destination,
);
both_backends!(blocking: generated_push_bodies_never_get_a_5xx);

async fn enrolment_end_to_end(backend: Backend) {
    let srv = start_on(backend).await;
    let code = admin::create_enrolment_code(srv.storage.as_ref(), "Tablet 7")
        .await
        .unwrap();
    assert!(code.expires_at_utc > Utc::now() + chrono::Duration::hours(23));
    // Codes are typed by people: case and separators do not matter.
    let typed = code.code.to_lowercase().replace('-', " ");
    let dev = enroll_with_code(&srv.http, &srv.base, &typed, "Tablet 7").await;

    let enroll_again = |code: String| {
        let thief = ambulance_epr::crypto::DeviceSigningKey::generate().unwrap();
        srv.http
            .post(srv.url("/devices/enroll"))
            .json(&EnrollRequest::signed(&code, &thief))
            .send()
    };
    expect_error(
        enroll_again(code.code.clone()).await.unwrap(),
        403,
        "enrolment_code_used",
    )
    .await;
    expect_error(
        enroll_again("NOT-A-REAL-CODE".into()).await.unwrap(),
        403,
        "enrolment_code_unknown",
    )
    .await;
    let expired = admin::create_enrolment_code_expiring(
        srv.storage.as_ref(),
        "Old tablet",
        Utc::now() - chrono::Duration::minutes(1),
    )
    .await
    .unwrap();
    expect_error(
        enroll_again(expired.code).await.unwrap(),
        403,
        "enrolment_code_expired",
    )
    .await;

    // A bad public key, a proof signed by another key, a proof for another code, and a key
    // that is already an active device's are all refused before the code is spent.
    let fresh = admin::create_enrolment_code(srv.storage.as_ref(), "T8")
        .await
        .unwrap();
    let post =
        |body: serde_json::Value| srv.http.post(srv.url("/devices/enroll")).json(&body).send();
    let resp = post(serde_json::json!({"code": fresh.code, "public_key": "c2hvcnQ=", "proof": ""}))
        .await
        .unwrap();
    expect_error(resp, 422, "invalid_public_key").await;
    let mine = ambulance_epr::crypto::DeviceSigningKey::generate().unwrap();
    let other = ambulance_epr::crypto::DeviceSigningKey::generate().unwrap();
    let mut borrowed = EnrollRequest::signed(&fresh.code, &other);
    borrowed.public_key = mine.public_key_base64();
    let resp = post(serde_json::to_value(&borrowed).unwrap())
        .await
        .unwrap();
    expect_error(resp, 422, "invalid_proof").await;
    let mut replayed = EnrollRequest::signed("SOME-OTHER-CODE", &mine);
    replayed.code = fresh.code.clone();
    let resp = post(serde_json::to_value(&replayed).unwrap())
        .await
        .unwrap();
    expect_error(resp, 422, "invalid_proof").await;
    let resp = post(serde_json::to_value(EnrollRequest::signed(&fresh.code, &dev.key)).unwrap())
        .await
        .unwrap();
    expect_error(resp, 403, "key_already_enrolled").await;
    // The name the client would like is not its to choose: the field is refused.
    let mut with_name = serde_json::to_value(EnrollRequest::signed(&fresh.code, &mine)).unwrap();
    with_name["device_name"] = "Chosen by the client".into();
    assert_eq!(post(with_name).await.unwrap().status(), 422);
    enroll_with_code(&srv.http, &srv.base, &fresh.code, "T8").await;

    // The token works, and stops working when the device is revoked.
    let e = encounter(RecordStatus::Completed);
    let r = push(&srv, &dev.token, &[item(&dev.key, &e, 1)]).await;
    assert_eq!(r.results[0].outcome, PushOutcome::Stored);
    assert!(
        admin::revoke_device(srv.storage.as_ref(), dev.id)
            .await
            .unwrap()
    );
    let resp = srv
        .http
        .post(srv.url("/sync/push"))
        .bearer_auth(&dev.token)
        .json(&PushRequest {
            items: vec![],
            verified_checkpoint: None,
            device_audit_head: None,
            signers: Vec::new(),
        })
        .send()
        .await
        .unwrap();
    expect_error(resp, 401, "device_revoked").await;
    // The log's endpoints say the same to a revoked tablet, not "unknown session".
    let resp = srv
        .http
        .get(srv.url("/log/checkpoint"))
        .bearer_auth(&dev.token)
        .send()
        .await
        .unwrap();
    expect_error(resp, 401, "device_revoked").await;
}

/// Tablets set up side by side with the same code, at the same moment: exactly one is
/// enrolled, every other one hears the code is used, and only one device exists.
async fn one_code_enrols_one_device_when_used_at_once(backend: Backend) {
    let srv = start_on(backend).await;
    let code = admin::create_enrolment_code(srv.storage.as_ref(), "Shared code")
        .await
        .unwrap();
    let attempts: Vec<_> = (0..8)
        .map(|_| {
            let http = srv.http.clone();
            let url = srv.url("/devices/enroll");
            let code = code.code.clone();
            tokio::spawn(async move {
                let key = ambulance_epr::crypto::DeviceSigningKey::generate().unwrap();
                http.post(url)
                    .json(&EnrollRequest::signed(&code, &key))
                    .send()
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut enrolled = 0;
    for attempt in attempts {
        let resp = attempt.await.unwrap();
        if resp.status() == 200 {
            enrolled += 1;
        } else {
            expect_error(resp, 403, "enrolment_code_used").await;
        }
    }
    assert_eq!(enrolled, 1);
    let stats = admin::stats(srv.storage.as_ref()).await.unwrap();
    assert_eq!(stats.devices, 1);
}

async fn access_rule_matrix(backend: Backend) {
    let srv = start_on(backend).await;
    let owner = enroll(&srv, "Owner").await;
    let other = enroll(&srv, "Other").await;
    let revoked = enroll(&srv, "Revoked").await;
    let sup = supervisor(&srv, "matrix.sup").await;
    let e = encounter(RecordStatus::Completed);
    push(&srv, &owner.token, &[item(&owner.key, &e, 1)]).await;
    let d = srv
        .http
        .post(srv.url(&format!("/review/encounters/{}/decision", e.id)))
        .bearer_auth(&sup)
        .json(&serde_json::json!({"decision": "approved", "revision": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(d.status(), 201);
    admin::revoke_device(srv.storage.as_ref(), revoked.id)
        .await
        .unwrap();

    #[derive(Clone, Copy, Debug)]
    enum Who {
        Nobody,
        Revoked,
        OtherDevice,
        Supervisor,
    }
    let token = |w: Who| match w {
        Who::Nobody => None,
        Who::Revoked => Some(revoked.token.clone()),
        Who::OtherDevice => Some(other.token.clone()),
        Who::Supervisor => Some(sup.clone()),
    };
    let push_body = PushRequest {
        items: vec![item(&other.key, &e, 2)],
        verified_checkpoint: None,
        device_audit_head: None,
        signers: Vec::new(),
    };
    let decision = serde_json::json!({"decision": "flagged", "comment": "audit", "revision": 1});
    for who in [Who::Nobody, Who::Revoked, Who::OtherDevice, Who::Supervisor] {
        let send = |req: reqwest::RequestBuilder| {
            let req = match token(who) {
                Some(t) => req.bearer_auth(t),
                None => req,
            };
            req.send()
        };
        let push = send(srv.http.post(srv.url("/sync/push")).json(&push_body))
            .await
            .unwrap();
        let feedback = send(srv.http.get(srv.url("/sync/feedback?since=0")))
            .await
            .unwrap();
        let list = send(srv.http.get(srv.url("/review/encounters")))
            .await
            .unwrap();
        let detail = send(
            srv.http
                .get(srv.url(&format!("/review/encounters/{}", e.id))),
        )
        .await
        .unwrap();
        let decide = send(
            srv.http
                .post(srv.url(&format!("/review/encounters/{}/decision", e.id)))
                .json(&decision),
        )
        .await
        .unwrap();
        let health = send(srv.http.get(srv.url("/health"))).await.unwrap();
        assert_eq!(health.status(), 200, "{who:?}");
        let h: Health = health.json().await.unwrap();
        assert_eq!(h.status, "ok");

        match who {
            Who::Nobody | Who::Revoked => {
                let code = if matches!(who, Who::Revoked) {
                    "device_revoked"
                } else {
                    "unauthorized"
                };
                expect_error(push, 401, code).await;
                expect_error(feedback, 401, code).await;
                expect_error(list, 401, "unauthorized").await;
                expect_error(detail, 401, "unauthorized").await;
                expect_error(decide, 401, "unauthorized").await;
            }
            Who::OtherDevice => {
                let r: PushResponse = push.json().await.unwrap();
                assert_eq!(r.results[0].reject_reason, Some(RejectReason::NotOwner));
                let f: FeedbackResponse = feedback.json().await.unwrap();
                assert!(f.items.is_empty(), "another device's feedback leaked");
                expect_error(list, 401, "unauthorized").await;
                expect_error(detail, 401, "unauthorized").await;
                expect_error(decide, 401, "unauthorized").await;
            }
            Who::Supervisor => {
                expect_error(push, 401, "unauthorized").await;
                expect_error(feedback, 401, "unauthorized").await;
                let l: ReviewList = list.json().await.unwrap();
                assert_eq!(l.total, 1);
                let d: ReviewDetail = detail.json().await.unwrap();
                assert_eq!(d.record_id, e.id);
                assert_eq!(decide.status(), 201);
            }
        }
    }
    // The owner sees both decisions on its record, in order.
    let f: FeedbackResponse = srv
        .http
        .get(srv.url("/sync/feedback"))
        .bearer_auth(&owner.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let decisions: Vec<_> = f.items.iter().map(|i| i.decision).collect();
    assert_eq!(decisions, vec![Decision::Approved, Decision::Flagged]);
    assert!(f.items[0].cursor < f.items[1].cursor);

    // Reads of patient data are audited with who and which record; the audit holds no
    // clinical text.
    let audit = srv.storage.audit_entries_after(0, 10_000).await.unwrap();
    assert!(audit.iter().any(|a| a.action == "version_read"
        && a.actor == "user:matrix.sup"
        && a.record_id == Some(e.id)));
    assert!(
        audit
            .iter()
            .any(|a| a.action == "feedback_read" && a.actor == format!("device:{}", owner.id))
    );
    let text = format!("{audit:?}");
    assert!(!text.contains("McTestface") && !text.contains("9990000018"));
}

async fn bad_input_gets_json_4xx(backend: Backend) {
    let srv = start_on(backend).await;
    let dev = enroll(&srv, "Bad input").await;
    let sup = supervisor(&srv, "bad.sup").await;
    let post = |path: &str| srv.http.post(srv.url(path)).bearer_auth(&dev.token);

    // Every answer, refusals and patient data alike, is never cached and never sniffed.
    let r = srv
        .http
        .get(srv.url("/review/encounters"))
        .bearer_auth(&sup)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for resp in [r, post("/sync/push").body("{").send().await.unwrap()] {
        assert_eq!(resp.headers()["cache-control"], "no-store");
        assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    }
    // Malformed JSON.
    let r = post("/sync/push")
        .header("content-type", "application/json")
        .body("{\"items\": [")
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "malformed_json").await;
    // Wrong content type.
    let r = post("/sync/push")
        .header("content-type", "text/plain")
        .body("{\"items\": []}")
        .send()
        .await
        .unwrap();
    expect_error(r, 415, "unsupported_media_type").await;
    // Unknown field.
    let r = post("/sync/push")
        .json(&serde_json::json!({"items": [], "everything": true}))
        .send()
        .await
        .unwrap();
    expect_error(r, 422, "invalid_body").await;
    // A revision beyond what either database can store is refused as a body error, before
    // storage sees it, and nothing is stored.
    let key = ambulance_epr::crypto::DeviceSigningKey::generate().unwrap();
    let mut too_far = serde_json::to_value(item(&key, &encounter(RecordStatus::Draft), 1)).unwrap();
    too_far["revision"] = serde_json::json!(1u64 << 63);
    let before = srv.storage.stats().await.unwrap().versions;
    let r = post("/sync/push")
        .json(&serde_json::json!({ "items": [too_far] }))
        .send()
        .await
        .unwrap();
    expect_error(r, 422, "invalid_body").await;
    assert_eq!(srv.storage.stats().await.unwrap().versions, before);
    // Oversized body, with the limit stated.
    let big = format!(
        "{{\"items\": [], \"pad\": \"{}\"}}",
        "x".repeat(MAX_PUSH_BODY_BYTES)
    );
    let r = post("/sync/push")
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    let body = expect_error(r, 413, "body_too_large").await;
    assert!(body.message.contains(&MAX_PUSH_BODY_BYTES.to_string()));
    // Too many items.
    let e = encounter(RecordStatus::Draft);
    let one = item(&dev.key, &e, 1);
    let r = post("/sync/push")
        .json(&PushRequest {
            items: vec![one; MAX_PUSH_ITEMS + 1],
            verified_checkpoint: None,
            device_audit_head: None,
            signers: Vec::new(),
        })
        .send()
        .await
        .unwrap();
    expect_error(r, 413, "too_many_items").await;
    // Missing and wrong tokens.
    let r = srv
        .http
        .post(srv.url("/sync/push"))
        .json(&PushRequest {
            items: vec![],
            verified_checkpoint: None,
            device_audit_head: None,
            signers: Vec::new(),
        })
        .send()
        .await
        .unwrap();
    expect_error(r, 401, "unauthorized").await;
    let r = srv
        .http
        .post(srv.url("/sync/push"))
        .bearer_auth("not-a-token")
        .json(&PushRequest {
            items: vec![],
            verified_checkpoint: None,
            device_audit_head: None,
            signers: Vec::new(),
        })
        .send()
        .await
        .unwrap();
    expect_error(r, 401, "unauthorized").await;
    let r = srv
        .http
        .get(srv.url("/sync/feedback"))
        .header("authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    expect_error(r, 401, "unauthorized").await;
    // Bad query and path.
    let r = srv
        .http
        .get(srv.url("/sync/feedback?since=abc"))
        .bearer_auth(&dev.token)
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "bad_query").await;
    let r = srv
        .http
        .get(srv.url("/review/encounters/not-a-uuid"))
        .bearer_auth(&sup)
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "bad_path").await;
    let r = srv
        .http
        .get(srv.url("/review/encounters?page_size=100000"))
        .bearer_auth(&sup)
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "bad_query").await;
    let r = srv
        .http
        .get(srv.url("/review/encounters?decision=maybe"))
        .bearer_auth(&sup)
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "bad_query").await;
    // Unknown route and wrong method.
    expect_error(
        srv.http.get(srv.url("/nothing")).send().await.unwrap(),
        404,
        "not_found",
    )
    .await;
    expect_error(
        srv.http.get(srv.url("/sync/push")).send().await.unwrap(),
        405,
        "method_not_allowed",
    )
    .await;
    // Decisions: comment required, the revision must exist, the record must exist.
    let c = encounter(RecordStatus::Completed);
    push(&srv, &dev.token, &[item(&dev.key, &c, 3)]).await;
    let decide = |id: uuid::Uuid, body: serde_json::Value| {
        srv.http
            .post(srv.url(&format!("/review/encounters/{id}/decision")))
            .bearer_auth(&sup)
            .json(&body)
            .send()
    };
    expect_error(
        decide(
            c.id,
            serde_json::json!({"decision": "returned", "comment": "  ", "revision": 3}),
        )
        .await
        .unwrap(),
        422,
        "comment_required",
    )
    .await;
    expect_error(
        decide(
            c.id,
            serde_json::json!({"decision": "flagged", "revision": 3}),
        )
        .await
        .unwrap(),
        422,
        "comment_required",
    )
    .await;
    expect_error(
        decide(
            c.id,
            serde_json::json!({"decision": "approved", "revision": 9}),
        )
        .await
        .unwrap(),
        422,
        "unknown_revision",
    )
    .await;
    expect_error(
        decide(c.id, serde_json::json!({"decision": "approved"}))
            .await
            .unwrap(),
        422,
        "invalid_body",
    )
    .await;
    expect_error(
        decide(
            uuid::Uuid::now_v7(),
            serde_json::json!({"decision": "approved", "revision": 1}),
        )
        .await
        .unwrap(),
        404,
        "not_found",
    )
    .await;
    // Drafts are not reviewable.
    let draft = encounter(RecordStatus::Draft);
    push(&srv, &dev.token, &[item(&dev.key, &draft, 1)]).await;
    expect_error(
        srv.http
            .get(srv.url(&format!("/review/encounters/{}", draft.id)))
            .bearer_auth(&sup)
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
}

async fn bad_items_are_rejected_per_item_inside_a_200(backend: Backend) {
    let srv = start_on(backend).await;
    let dev = enroll(&srv, "Items").await;
    let good = item(&dev.key, &encounter(RecordStatus::Completed), 1);
    let mut bad_sig = item(&dev.key, &encounter(RecordStatus::Completed), 1);
    bad_sig.signature = Some(good.signature.clone().unwrap());
    let mut no_sig = item(&dev.key, &encounter(RecordStatus::Amended), 2);
    no_sig.signature = None;
    let mut bad_hash = item(&dev.key, &encounter(RecordStatus::Completed), 1);
    bad_hash.document["notes"] = "changed after hashing".into();
    let mut schema = item(&dev.key, &encounter(RecordStatus::Draft), 1);
    schema.document = serde_json::json!({"id": "nope"});
    let mut wrong_id = item(&dev.key, &encounter(RecordStatus::Draft), 1);
    wrong_id.record_id = uuid::Uuid::now_v7();
    // Hashed and signed properly, but carrying a field this server does not know.
    let mut unknown_field = encounter(RecordStatus::Completed);
    unknown_field.notes = "with an extra field".into();
    let mut unknown_field = item(&dev.key, &unknown_field, 1);
    unknown_field.document["patient"]["blood_group"] = "O+".into();
    unknown_field.content_sha256 =
        ambulance_epr::crypto::content_sha256_hex(&unknown_field.document);
    unknown_field.signature = Some(dev.key.sign_base64(&ambulance_epr::crypto::signing_payload(
        unknown_field.record_id,
        unknown_field.revision,
        "completed",
        &unknown_field.content_sha256,
    )));
    let r = push(
        &srv,
        &dev.token,
        &[
            good,
            bad_sig,
            no_sig,
            bad_hash,
            schema,
            wrong_id,
            unknown_field,
        ],
    )
    .await;
    assert_eq!(
        outcomes(&r),
        vec![
            (PushOutcome::Stored, None),
            (PushOutcome::Rejected, Some(RejectReason::BadSignature)),
            (PushOutcome::Rejected, Some(RejectReason::BadSignature)),
            (PushOutcome::Rejected, Some(RejectReason::BadHash)),
            (PushOutcome::Rejected, Some(RejectReason::Schema)),
            (PushOutcome::Rejected, Some(RejectReason::Schema)),
            (PushOutcome::Rejected, Some(RejectReason::Schema)),
        ]
    );
    assert!(
        r.results[6]
            .message
            .as_deref()
            .is_some_and(|m| m.contains("does not know"))
    );
    for res in &r.results[1..] {
        let m = res.message.as_deref().unwrap();
        assert!(!m.contains("McTestface") && !m.contains("Testy"));
    }
    let stats = admin::stats(srv.storage.as_ref()).await.unwrap();
    assert_eq!(stats.versions, 1);
}

/// A push of `items` registering `signers`, answered with its status and body.
async fn push_with_signers(
    srv: &TestServer,
    token: &str,
    items: Vec<PushItem>,
    signers: Vec<SignerRegistration>,
) -> reqwest::Response {
    srv.http
        .post(srv.url("/sync/push"))
        .bearer_auth(token)
        .json(&PushRequest {
            items,
            verified_checkpoint: None,
            device_audit_head: None,
            signers,
        })
        .send()
        .await
        .unwrap()
}

/// `e` signed in format 2 by `signer`.
fn clinician_item(
    signer: &ambulance_epr::crypto::UserSigner,
    e: &ambulance_epr::model::Encounter,
) -> PushItem {
    let document = serde_json::to_value(e).unwrap();
    let sha = ambulance_epr::crypto::content_sha256_hex(&document);
    let at = Utc::now();
    let revision = ambulance_epr::model::Revision::FIRST;
    PushItem {
        record_id: e.id,
        revision,
        status: e.status,
        document,
        signature: Some(
            signer
                .sign_version(e.id, revision, e.status.as_str(), &sha, at)
                .unwrap(),
        ),
        content_sha256: sha,
        signer_user_id: Some(signer.user_id()),
        saved_at_utc: at,
    }
}

async fn clinician_keys_are_registered_logged_and_hold_their_signatures(backend: Backend) {
    use ambulance_epr::crypto::UserSigner;
    let srv = start_on(backend).await;
    let dev = enroll(&srv, "Clinicians").await;
    let tablet = uuid::Uuid::new_v4();
    let sam = UserSigner::generate("Sam Medic", tablet).unwrap();
    let endorse = |key: &ambulance_epr::crypto::DeviceSigningKey,
                   identity: &ambulance_epr::crypto::SignerIdentity,
                   device: uuid::Uuid| {
        key.sign_base64(&identity.endorsement_message(device).unwrap())
    };
    let registration = SignerRegistration::new(
        sam.identity(),
        &sam.registration_proof().unwrap(),
        &endorse(&dev.key, sam.identity(), dev.id),
    );

    // Signed by a key not registered: refused per item, with a reason the tablet acts on (it
    // registers the key again and keeps the version queued).
    let first = encounter(RecordStatus::Completed);
    let r: PushResponse = json_body(
        push_with_signers(&srv, &dev.token, vec![clinician_item(&sam, &first)], vec![]).await,
    )
    .await;
    assert_eq!(
        outcomes(&r),
        vec![(PushOutcome::Rejected, Some(RejectReason::UnknownSigner))]
    );

    // Not endorsed by this device's own key (the server, or another tablet, putting a key
    // in its name): refused whole, nothing logged.
    let before = srv.storage.log_head().await.unwrap().size;
    let stranger = ambulance_epr::crypto::DeviceSigningKey::generate().unwrap();
    let mut unendorsed = registration.clone();
    unendorsed.device_endorsement = endorse(&stranger, sam.identity(), dev.id);
    let resp = push_with_signers(&srv, &dev.token, vec![], vec![unendorsed]).await;
    expect_error(resp, 422, "invalid_signer").await;
    assert_eq!(srv.storage.log_head().await.unwrap().size, before);

    // Registered in the same push: logged first, then the version holds, and a format-1
    // version from the device's own key is still accepted beside it.
    let before = srv.storage.log_head().await.unwrap().size;
    let old_style = item(&dev.key, &encounter(RecordStatus::Completed), 1);
    let r: PushResponse = json_body(
        push_with_signers(
            &srv,
            &dev.token,
            vec![clinician_item(&sam, &first), old_style],
            vec![registration.clone()],
        )
        .await,
    )
    .await;
    assert_eq!(
        outcomes(&r),
        vec![(PushOutcome::Stored, None), (PushOutcome::Stored, None)]
    );
    let logged = srv.storage.log_leaves(before, before + 1).await.unwrap();
    assert_eq!(logged[0].kind, "signer_registered");
    let held = srv.storage.device_signers(dev.id).await.unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].identity, *sam.identity());
    assert_eq!(held[0].leaf_idx, before);

    // Sent again (the tablet had not heard the answer): nothing new is logged.
    let size = srv.storage.log_head().await.unwrap().size;
    let r: PushResponse =
        json_body(push_with_signers(&srv, &dev.token, vec![], vec![registration.clone()]).await)
            .await;
    assert!(r.results.is_empty());
    assert_eq!(srv.storage.log_head().await.unwrap().size, size);

    // The same user id with another key (its own proof in order): refused whole as a
    // conflict, nothing stored.
    let impostor = ambulance_epr::crypto::DeviceSigningKey::generate().unwrap();
    let claimed = ambulance_epr::crypto::SignerIdentity {
        public_key: impostor.public_key_base64(),
        ..sam.identity().clone()
    };
    let proof = impostor.sign_base64(&claimed.registration_message().unwrap());
    let resp = push_with_signers(
        &srv,
        &dev.token,
        vec![],
        vec![SignerRegistration::new(
            &claimed,
            &proof,
            &endorse(&dev.key, &claimed, dev.id),
        )],
    )
    .await;
    expect_error(resp, 409, "signer_conflict").await;

    // A second user naming another tablet through this device: refused as a conflict too
    // (one device is one tablet).
    let elsewhere = UserSigner::generate("Alex Medic", uuid::Uuid::new_v4()).unwrap();
    let resp = push_with_signers(
        &srv,
        &dev.token,
        vec![],
        vec![SignerRegistration::new(
            elsewhere.identity(),
            &elsewhere.registration_proof().unwrap(),
            &endorse(&dev.key, elsewhere.identity(), dev.id),
        )],
    )
    .await;
    expect_error(resp, 409, "signer_conflict").await;

    // A proof by another key than the one registered: refused whole.
    let mut forged = registration.clone();
    forged.public_key = impostor.public_key_base64();
    let resp = push_with_signers(&srv, &dev.token, vec![], vec![forged]).await;
    expect_error(resp, 422, "invalid_signer").await;
    assert_eq!(srv.storage.log_head().await.unwrap().size, size);

    // Another device cannot use Sam's registration on this one.
    let other = enroll(&srv, "Other tablet").await;
    let second = encounter(RecordStatus::Completed);
    let r: PushResponse = json_body(
        push_with_signers(
            &srv,
            &other.token,
            vec![clinician_item(&sam, &second)],
            vec![],
        )
        .await,
    )
    .await;
    assert_eq!(
        outcomes(&r),
        vec![(PushOutcome::Rejected, Some(RejectReason::UnknownSigner))]
    );

    // Verify holds the stored versions to the keys as logged, and finds nothing wrong.
    let report = admin::verify(
        srv.storage.as_ref(),
        &srv_log_key(&srv, &dev.token).await,
        &[],
        None,
    )
    .await
    .unwrap();
    assert!(report.is_clean(), "{:?}", report.log_findings);
    assert_eq!(report.versions_checked, 2);
}

async fn json_body<T: serde::de::DeserializeOwned>(resp: reqwest::Response) -> T {
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// The server's log key, as a tablet pins it at enrolment.
async fn srv_log_key(srv: &TestServer, token: &str) -> ambulance_epr::transparency::LogPublicKey {
    let body = json(
        srv.http
            .get(srv.url("/log/checkpoint"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    ambulance_epr::transparency::LogPublicKey::from_vkey(body["log_key"].as_str().unwrap()).unwrap()
}

async fn stalled_body_times_out_with_408(backend: Backend) {
    let srv = start_on(backend).await;
    let dev = enroll(&srv, "Staller").await;
    let addr = srv.addr;
    let token = dev.token.clone();
    let response = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        write!(
            s,
            "POST /api/v1/sync/push HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"items\": ["
        )
        .unwrap();
        s.flush().unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        // Read until the server answers and closes, or the body is complete.
        while let Ok(n) = s.read(&mut chunk) {
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            if String::from_utf8_lossy(&buf).contains("\"message\"") {
                break;
            }
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
    .await
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(response.contains("\"error\":\"timeout\""), "{response}");
}

async fn failed_logins_are_throttled(backend: Backend) {
    let srv = start_on(backend).await;
    supervisor(&srv, "throttled").await;
    let attempt = |pw: &str| {
        srv.http
            .post(srv.url("/auth/login"))
            .json(&LoginRequest {
                username: "throttled".into(),
                password: pw.into(),
            })
            .send()
    };
    for _ in 0..5 {
        expect_error(
            attempt("wrong password").await.unwrap(),
            401,
            "invalid_credentials",
        )
        .await;
    }
    let r = attempt(SUPERVISOR_PASSWORD).await.unwrap();
    assert!(r.headers().contains_key("retry-after"));
    expect_error(r, 429, "too_many_attempts").await;
    // Unknown users get the same answer as a wrong password.
    let r = srv
        .http
        .post(srv.url("/auth/login"))
        .json(&LoginRequest {
            username: "nobody".into(),
            password: "whatever".into(),
        })
        .send()
        .await
        .unwrap();
    expect_error(r, 401, "invalid_credentials").await;
    // A device-style login body with extra fields is a client error, not a crash.
    let r = srv
        .http
        .post(srv.url("/auth/login"))
        .json(&serde_json::json!({"username": "x", "password": "y", "otp": 1}))
        .send()
        .await
        .unwrap();
    expect_error(r, 422, "invalid_body").await;
}

fn arb_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        ".{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("items".to_owned()),
                    Just("record_id".to_owned()),
                    Just("revision".to_owned()),
                    Just("status".to_owned()),
                    Just("document".to_owned()),
                    ".{0,6}"
                ],
                inner,
                0..4
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_item() -> impl Strategy<Value = serde_json::Value> {
    (
        prop_oneof![
            Just(serde_json::Value::from(uuid::Uuid::now_v7().to_string())),
            arb_json()
        ],
        prop_oneof![
            any::<u64>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            arb_json()
        ],
        prop_oneof![
            Just(serde_json::Value::from("draft")),
            Just(serde_json::Value::from("completed")),
            Just(serde_json::Value::from("amended")),
            arb_json()
        ],
        arb_json(),
        prop_oneof![".{0,70}".prop_map(serde_json::Value::from), arb_json()],
        prop_oneof![
            Just(serde_json::Value::Null),
            ".{0,90}".prop_map(serde_json::Value::from)
        ],
        prop_oneof![
            Just(serde_json::Value::from("2026-03-01T10:00:00Z")),
            arb_json()
        ],
    )
        .prop_map(|(id, rev, status, doc, sha, sig, at)| {
            serde_json::json!({
                "record_id": id, "revision": rev, "status": status, "document": doc,
                "content_sha256": sha, "signature": sig, "saved_at_utc": at,
            })
        })
}

/// A body: random bytes, random JSON, a push with generated items, or a valid push with
/// one byte changed.
fn arb_body(valid: String) -> impl Strategy<Value = Vec<u8>> {
    let len = valid.len();
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        arb_json().prop_map(|v| v.to_string().into_bytes()),
        prop::collection::vec(arb_item(), 0..4).prop_map(|items| {
            serde_json::json!({ "items": items })
                .to_string()
                .into_bytes()
        }),
        (0..len, any::<u8>()).prop_map(move |(at, b)| {
            let mut bytes = valid.clone().into_bytes();
            bytes[at] = b;
            bytes
        }),
    ]
}

fn generated_push_bodies_never_get_a_5xx(backend: Backend) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (srv, dev) = rt.block_on(async {
        let srv = start_on(backend).await;
        let dev = enroll(&srv, "Fuzz").await;
        (srv, dev)
    });
    let e = encounter(RecordStatus::Completed);
    let valid = serde_json::to_string(&PushRequest {
        items: vec![item(&dev.key, &e, 1)],
        verified_checkpoint: None,
        device_audit_head: None,
        signers: Vec::new(),
    })
    .unwrap();
    let config = ProptestConfig {
        cases: 3000,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(body in arb_body(valid))| {
        let (status, text) = rt.block_on(async {
            let r = srv
                .http
                .post(srv.url("/sync/push"))
                .bearer_auth(&dev.token)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        });
        prop_assert!(status < 500, "{} {}", status, text);
        if status >= 400 {
            let e: Result<ErrorBody, _> = serde_json::from_str(&text);
            prop_assert!(e.is_ok(), "not a JSON error body: {}", text);
        } else {
            prop_assert_eq!(status, 200);
            let r: Result<PushResponse, _> = serde_json::from_str(&text);
            prop_assert!(r.is_ok(), "not a push response: {}", text);
        }
    });
    drop(srv);
}

/// Each tablet reports what it still holds; supervisors see it, with anything unsent for more
/// than a day marked; a retiring tablet is told so until it reports nothing unsent, and is
/// then retired and refused. Malformed reports are refused and change nothing.
async fn tablets_report_what_they_hold_and_retirement_waits_for_nothing_unsent(backend: Backend) {
    let config = ServerConfig {
        device_retention_days: 45,
        ..test_config()
    };
    let srv = start_on_with(backend, config).await;
    let old = enroll(&srv, "Tablet old").await;
    let spare = enroll(&srv, "Tablet spare").await;
    let sup = supervisor(&srv, "sup.tablets").await;
    let tablets = || async {
        let resp = srv
            .http
            .get(srv.url("/review/tablets"))
            .bearer_auth(&sup)
            .send()
            .await
            .unwrap();
        let answer: TabletsResponse = resp.json().await.unwrap();
        answer.tablets
    };
    let before = tablets().await;
    assert_eq!(before.len(), 2);
    assert!(before.iter().all(|t| t.state == "active"
        && t.pending.is_none()
        && t.reported_at_utc.is_none()
        && !t.unsent_over_24h));

    let report = |device: &Device, body: serde_json::Value| {
        srv.http
            .post(srv.url("/sync/report"))
            .bearer_auth(&device.token)
            .json(&body)
            .send()
    };
    let held_since = Utc::now() - chrono::Duration::hours(30);
    let r = report(
        &old,
        serde_json::json!({
            "pending": 3, "oldest_pending_utc": held_since, "held_versions": 10,
            "app_version": "1.2.3", "verified_tree_size": 7
        }),
    )
    .await
    .unwrap();
    let answer: DeviceReportResponse = serde_json::from_value(json(r).await).unwrap();
    assert_eq!(answer.state, DeviceState::Active);
    assert_eq!(
        answer.retention_days, 45,
        "the trust's window reaches the tablet"
    );
    let r = report(
        &spare,
        serde_json::json!({"pending": 0, "held_versions": 0, "app_version": "1.2.4"}),
    )
    .await
    .unwrap();
    json(r).await;

    for (body, why) in [
        (
            serde_json::json!({"pending": 0, "held_versions": 0, "app_version": ""}),
            "an empty app version",
        ),
        (
            serde_json::json!({"pending": 0, "held_versions": 0, "app_version": "x".repeat(65)}),
            "a long app version",
        ),
        (
            serde_json::json!({"pending": 0, "held_versions": 0, "app_version": "1\n2"}),
            "a control character",
        ),
        (
            serde_json::json!({"pending": 0, "oldest_pending_utc": held_since,
                               "held_versions": 0, "app_version": "1"}),
            "an oldest time with nothing pending",
        ),
        (
            serde_json::json!({"pending": u64::MAX, "held_versions": 0, "app_version": "1"}),
            "a count out of range",
        ),
    ] {
        let r = report(&old, body).await.unwrap();
        assert_eq!(r.status(), 422, "{why}");
    }
    let r = report(
        &old,
        serde_json::json!({"pending": 0, "held_versions": 0, "app_version": "1", "patient": "x"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 422, "unknown fields are refused");
    let r = srv
        .http
        .post(srv.url("/sync/report"))
        .json(&serde_json::json!({"pending": 0, "held_versions": 0, "app_version": "1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a report needs a device token");
    let r = srv
        .http
        .get(srv.url("/review/tablets"))
        .bearer_auth(&old.token)
        .send()
        .await
        .unwrap();
    assert!(
        r.status() == 401 || r.status() == 403,
        "a device cannot read the tablets"
    );

    let now = tablets().await;
    let old_row = now.iter().find(|t| t.device_id == old.id).unwrap();
    assert_eq!(
        old_row.pending,
        Some(3),
        "the refused reports changed nothing"
    );
    assert_eq!(old_row.held_versions, Some(10));
    assert_eq!(old_row.app_version.as_deref(), Some("1.2.3"));
    assert_eq!(old_row.verified_tree_size, Some(7));
    assert!(old_row.unsent_over_24h, "30 hours unsent is marked");
    assert!(old_row.last_seen_utc.is_some());
    let spare_row = now.iter().find(|t| t.device_id == spare.id).unwrap();
    assert_eq!(spare_row.pending, Some(0));
    assert!(!spare_row.unsent_over_24h);

    // Retire: the tablet keeps syncing while it still holds something.
    assert!(
        admin::retire_device(srv.storage.as_ref(), old.id)
            .await
            .unwrap()
    );
    let r = report(
        &old,
        serde_json::json!({"pending": 1, "oldest_pending_utc": held_since,
                           "held_versions": 12, "app_version": "1.2.3"}),
    )
    .await
    .unwrap();
    let answer: DeviceReportResponse = serde_json::from_value(json(r).await).unwrap();
    assert_eq!(answer.state, DeviceState::Retiring);
    let pushed = push(
        &srv,
        &old.token,
        &[item(&old.key, &encounter(RecordStatus::Completed), 1)],
    )
    .await;
    assert_eq!(
        pushed.results[0].outcome,
        PushOutcome::Stored,
        "a retiring tablet still pushes"
    );
    assert_eq!(
        tablets()
            .await
            .iter()
            .find(|t| t.device_id == old.id)
            .unwrap()
            .state,
        "retiring"
    );
    let r = report(
        &old,
        serde_json::json!({"pending": 0, "held_versions": 13, "app_version": "1.2.3"}),
    )
    .await
    .unwrap();
    let answer: DeviceReportResponse = serde_json::from_value(json(r).await).unwrap();
    assert_eq!(
        answer.state,
        DeviceState::Retired,
        "nothing unsent: retired"
    );
    let r = report(
        &old,
        serde_json::json!({"pending": 0, "held_versions": 13, "app_version": "1.2.3"}),
    )
    .await
    .unwrap();
    expect_error(r, 401, "device_revoked").await;
    let retired = tablets().await;
    let old_row = retired.iter().find(|t| t.device_id == old.id).unwrap();
    assert_eq!(old_row.state, "retired");
    assert_eq!(old_row.pending, Some(0));
    assert!(matches!(
        admin::retire_device(srv.storage.as_ref(), old.id).await,
        Err(admin::AdminError::Storage(
            ambulance_epr::server::storage::StorageError::DeviceNotActive
        ))
    ));
    assert!(
        !admin::retire_device(srv.storage.as_ref(), uuid::Uuid::now_v7())
            .await
            .unwrap(),
        "an unknown device"
    );
    assert!(
        admin::revoke_device(srv.storage.as_ref(), spare.id)
            .await
            .unwrap()
    );
    assert!(
        admin::retire_device(srv.storage.as_ref(), spare.id)
            .await
            .is_err(),
        "a revoked tablet cannot be retired"
    );
    let listed = admin::device_listing(srv.storage.as_ref(), Utc::now())
        .await
        .unwrap();
    let states: Vec<&str> = listed.iter().map(|d| d.state).collect();
    assert_eq!(states, ["retired", "revoked"]);
}

/// A server rebuilt from the lost log's checkpoint and entries: it shows returning tablets
/// what they must check, and takes back a tablet only with a signature by the key the lost log
/// enrolled for it, never one the lost log revoked or never knew; the version a tablet sends
/// back is the lost log's leaf again, which the report counts.
async fn a_rebuilt_server_takes_back_only_the_tablets_its_lost_log_enrolled(backend: Backend) {
    use ambulance_epr::transparency::{Leaf, leaf_hash, recovery_statement};
    let lost = start_on(backend).await;
    let signer = test_log_signer();
    let kept = enroll(&lost, "Tablet kept").await;
    let revoked = enroll(&lost, "Tablet revoked").await;
    let e = encounter(RecordStatus::Completed);
    let version = item(&kept.key, &e, 1);
    let answer = push(&lost, &kept.token, std::slice::from_ref(&version)).await;
    assert_eq!(answer.results[0].outcome, PushOutcome::Stored);
    admin::revoke_device(lost.storage.as_ref(), revoked.id)
        .await
        .unwrap();
    let sup = supervisor(&lost, "sup.lost").await;
    let decided: DecisionRecord = serde_json::from_value(
        json(
            lost.http
                .post(lost.url(&format!("/review/encounters/{}/decision", e.id)))
                .bearer_auth(&sup)
                .json(
                    &serde_json::json!({"decision": "flagged", "comment": "audit", "revision": 1}),
                )
                .send()
                .await
                .unwrap(),
        )
        .await,
    )
    .unwrap();
    let note = admin::current_checkpoint(lost.storage.as_ref(), &signer)
        .await
        .unwrap();
    let size = ambulance_epr::transparency::open_checkpoint(&note, &signer.public())
        .unwrap()
        .size;
    let entries = admin::log_leaves_text(lost.storage.as_ref(), size)
        .await
        .unwrap();

    // Not a rebuilt server: nothing to show, no one to take back.
    let resp = lost.http.get(lost.url("/recovery")).send().await.unwrap();
    expect_error(resp, 404, "not_recovered").await;

    let db = TestDb::fresh(backend).await;
    let storage = db.open().await;
    let expected = admin::begin_recovery(storage.as_ref(), &signer, &note, &entries)
        .await
        .unwrap();
    assert_eq!(expected, size);
    // The same checkpoint again changes nothing; another is refused.
    admin::begin_recovery(storage.as_ref(), &signer, &note, &entries)
        .await
        .unwrap();
    let err = admin::begin_recovery(storage.as_ref(), &signer, "another checkpoint", "")
        .await
        .unwrap_err();
    assert!(
        matches!(err, admin::AdminError::RecoveredFromAnother),
        "{err}"
    );
    let srv = start(storage, Some(db)).await;

    let info: RecoveryInfo = serde_json::from_value(
        json(
            srv.http
                .get(srv.url("/recovery?verified_size=2"))
                .send()
                .await
                .unwrap(),
        )
        .await,
    )
    .unwrap();
    assert_eq!(info.previous_checkpoint, note);
    assert!(
        !info.previous_consistency.is_empty(),
        "2 entries to {size} needs a proof"
    );
    assert!(matches!(
        Leaf::decode(info.recovery_leaf.as_bytes()).unwrap(),
        Leaf::Recovery { previous_size, .. } if previous_size == size
    ));
    let recover =
        |device: &Device, key: &ambulance_epr::crypto::DeviceSigningKey, id: uuid::Uuid| {
            let statement = recovery_statement(
                signer.origin(),
                id,
                &leaf_hash(info.recovery_leaf.as_bytes()),
            );
            srv.http
                .post(srv.url("/devices/recover"))
                .json(&RecoverRequest {
                    device_id: id,
                    public_key: device.key.public_key_base64(),
                    signature: key.sign_base64(&statement),
                    device_name: Some("Tablet kept".into()),
                })
                .send()
        };
    // Another key, a device the lost log revoked, a device it never knew: refused.
    let stranger = ambulance_epr::crypto::DeviceSigningKey::generate().unwrap();
    expect_error(
        recover(&kept, &stranger, kept.id).await.unwrap(),
        403,
        "invalid_proof",
    )
    .await;
    expect_error(
        recover(&revoked, &revoked.key, revoked.id).await.unwrap(),
        403,
        "device_revoked",
    )
    .await;
    expect_error(
        recover(&kept, &kept.key, uuid::Uuid::now_v7())
            .await
            .unwrap(),
        403,
        "device_not_in_lost_log",
    )
    .await;
    let back: EnrollResponse =
        serde_json::from_value(json(recover(&kept, &kept.key, kept.id).await.unwrap()).await)
            .unwrap();
    assert_eq!(back.device_id, kept.id);
    assert_ne!(back.device_token, kept.token);
    let report = ambulance_epr::server::recovery::report_for(srv.storage.as_ref())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.versions.expected, 1);
    assert_eq!(report.versions.back, 0);
    assert_eq!(
        report.enrolments.back, 1,
        "the same enrolment leaf, byte for byte"
    );
    assert!(
        report.devices_missing.is_empty(),
        "the revoked one is not missed"
    );

    // The version comes back with its original signature: the lost log's leaf again.
    let answer = push(&srv, &back.device_token, &[version]).await;
    assert_eq!(answer.results[0].outcome, PushOutcome::Stored);
    let report = ambulance_epr::server::recovery::report_for(srv.storage.as_ref())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.versions.back, 1);
    assert!(!report.complete, "the decision is not back yet");
    // The decision comes back with its author and time; one the lost log never held does
    // not, and a second copy is a duplicate.
    let forged = DecisionRecord {
        decided_by: "someone.else".into(),
        ..decided.clone()
    };
    let restore = |decisions: Vec<DecisionRecord>| {
        srv.http
            .post(srv.url("/recovery/decisions"))
            .bearer_auth(&back.device_token)
            .json(&RestoreDecisionsRequest { decisions })
            .send()
    };
    let answer: RestoreDecisionsResponse = serde_json::from_value(
        json(
            restore(vec![forged, decided.clone(), decided.clone()])
                .await
                .unwrap(),
        )
        .await,
    )
    .unwrap();
    assert_eq!(
        answer.results,
        [
            DecisionRestore::NotInLostLog,
            DecisionRestore::Restored,
            DecisionRestore::Duplicate
        ]
    );
    let report = ambulance_epr::server::recovery::report_for(srv.storage.as_ref())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.decisions.back, 1);
    assert!(report.complete);
    // The old token died with the lost database.
    let resp = srv
        .http
        .get(srv.url("/sync/feedback?cursor=0"))
        .bearer_auth(&kept.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
}

async fn the_review_queue_filters_by_destination(backend: Backend) {
    use ambulance_epr::model::Outcome;
    let srv = start_on(backend).await;
    let dev = enroll(&srv, "Tablet 3").await;
    let conveyed = |hospital: &str, ods: Option<&str>| {
        let mut e = encounter(RecordStatus::Completed);
        e.outcome = Some(Outcome::ConveyedTo {
            hospital: hospital.to_owned(),
            ods_code: ods.map(str::to_owned),
        });
        e
    };
    let royal = conveyed("Sample Royal Infirmary", Some("XX1AA"));
    let general = conveyed("Test General Hospital", Some("XX2BB"));
    let typed = conveyed("Somewhere typed", None);
    let items: Vec<_> = [&royal, &general, &typed]
        .iter()
        .map(|e| item(&dev.key, e, 1))
        .collect();
    push(&srv, &dev.token, &items).await;
    let token = supervisor(&srv, "sup.dest").await;
    let list = |query: &'static str| {
        let (srv, token) = (&srv, token.clone());
        async move {
            srv.http
                .get(srv.url(&format!("/review/encounters{query}")))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
        }
    };
    let all: ReviewList = list("").await.json().await.unwrap();
    assert_eq!(all.total, 3);
    let names: Vec<(&str, &str)> = all
        .destinations
        .iter()
        .map(|d| (d.ods_code.as_str(), d.name.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("XX1AA", "Sample Royal Infirmary"),
            ("XX2BB", "Test General Hospital")
        ]
    );
    let to_royal: ReviewList = list("?destination=xx1aa").await.json().await.unwrap();
    assert_eq!(to_royal.total, 1);
    assert_eq!(to_royal.items[0].record_id, royal.id);
    assert_eq!(
        to_royal.counts.pending, 1,
        "the tab counts follow the filter"
    );
    let bad = list("?destination=XX1%25").await;
    assert_eq!(bad.status(), 400);
}
