//! The supervisor app's own check of a record, so a reviewer does not take the server's word
//! (`signature_valid`) for it: every version's content hash, its signature against the key
//! **as logged** (the signing clinician's at registration, or for older versions the device's
//! at enrolment), and the inclusion of that enrolment, those registrations and each version in
//! the server's log, under a checkpoint signed by the log key this computer pinned for that
//! server. Pure: the review service runs it off the UI thread.

use std::collections::HashMap;

use uuid::Uuid;

use crate::crypto::{SignedVersion, VersionKey, content_sha256_hex};
use crate::protocol::ReviewDetail;
use crate::transparency::{
    IntegrityError, Leaf, LogPublicKey, check_inclusion, leaf_hash, leaf_time, open_checkpoint,
    parse_proof,
};

/// What this computer could prove about one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureCheck {
    /// Hash, signature (by the key logged for its signer) and log inclusion hold.
    Proved {
        /// First 16 hex digits of SHA-256 of the key that signed.
        key_fingerprint: String,
        /// The clinician whose own key signed, by the name their registration logged; `None`
        /// for a version signed with the device's key (format 1).
        signer: Option<String>,
        /// The size of the checkpoint the proofs were checked against.
        log_size: u64,
    },
    /// Why not, in words for the reviewer.
    NotProved(String),
}

impl SignatureCheck {
    pub fn is_proved(&self) -> bool {
        matches!(self, SignatureCheck::Proved { .. })
    }
}

fn all(detail: &ReviewDetail, reason: impl Into<String>) -> Vec<SignatureCheck> {
    let reason = reason.into();
    detail
        .versions
        .iter()
        .map(|_| SignatureCheck::NotProved(reason.clone()))
        .collect()
}

fn key_fingerprint(public_key_b64: &str) -> String {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(public_key_b64)
        .unwrap_or_default();
    let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
    hex::encode(&digest.as_ref()[..8])
}

/// Checks every version of `detail` against the log key `pinned`; one result per version.
pub fn check_detail(detail: &ReviewDetail, pinned: &LogPublicKey) -> Vec<SignatureCheck> {
    let Some(proof) = &detail.proof else {
        return all(
            detail,
            "the server sent no proof that this record is in its log",
        );
    };
    let checkpoint = match open_checkpoint(&proof.checkpoint, pinned) {
        Ok(c) => c,
        Err(e) => return all(detail, e.to_string()),
    };
    // The device's key, as logged when it enrolled.
    let enrolled = Leaf::decode(proof.enrolment_leaf.as_bytes());
    let public_key = match enrolled {
        Ok(Leaf::DeviceEnrolled {
            device_id,
            public_key,
            ..
        }) if device_id == detail.device_id => public_key,
        _ => return all(detail, "the device's logged enrolment does not match it"),
    };
    let enrolment_included = parse_proof(&proof.enrolment_proof).and_then(|p| {
        check_inclusion(
            &p,
            &checkpoint,
            proof.enrolment_index,
            leaf_hash(proof.enrolment_leaf.as_bytes()),
        )
    });
    if enrolment_included.is_err() {
        return all(
            detail,
            "the device's enrolment is not proved to be in the server's log",
        );
    }
    let fingerprint = key_fingerprint(&public_key);
    // The clinicians' keys, as logged when registered through this device: each with its
    // own proof of possession and the device's endorsement by the key logged at enrolment, so
    // neither the server nor another tablet can have put a key in this device's name.
    let mut signers: HashMap<Uuid, crate::crypto::SignerIdentity> = HashMap::new();
    for registration in &proof.signers {
        let Ok(Leaf::SignerRegistered {
            device_id,
            tablet_id,
            user_id,
            user_name,
            public_key: signer_key,
            proof: possession,
            device_endorsement,
            ..
        }) = Leaf::decode(registration.leaf.as_bytes())
        else {
            continue;
        };
        let identity = crate::crypto::SignerIdentity {
            user_id,
            user_name,
            public_key: signer_key,
            tablet_id,
        };
        if !identity.check_proof(&possession)
            || !identity.check_endorsement(device_id, &public_key, &device_endorsement)
        {
            continue;
        }
        let included = parse_proof(&registration.proof).and_then(|p| {
            check_inclusion(
                &p,
                &checkpoint,
                registration.leaf_index,
                leaf_hash(registration.leaf.as_bytes()),
            )
        });
        if device_id == detail.device_id && included.is_ok() {
            // The first registration of a user stands, as for `verify`.
            signers.entry(user_id).or_insert(identity);
        }
    }
    detail
        .versions
        .iter()
        .map(|v| {
            if content_sha256_hex(&v.document) != v.content_sha256 {
                return SignatureCheck::NotProved(
                    "the document does not match its content hash".into(),
                );
            }
            let Some(signature) = v.signature.as_deref() else {
                return SignatureCheck::NotProved("this version is not signed".into());
            };
            let (key, signer, fingerprint) = match v.signer_user_id {
                None => (
                    VersionKey::Device {
                        public_key_b64: &public_key,
                    },
                    None,
                    fingerprint.clone(),
                ),
                Some(user_id) => match signers.get(&user_id) {
                    Some(signer) => (
                        VersionKey::User {
                            user_id,
                            public_key_b64: &signer.public_key,
                            tablet_id: signer.tablet_id,
                        },
                        Some(signer.user_name.clone()),
                        key_fingerprint(&signer.public_key),
                    ),
                    None => {
                        return SignatureCheck::NotProved(
                            "the signing clinician's key is not proved to be registered in the server's log".into(),
                        );
                    }
                },
            };
            let signed = SignedVersion {
                record_id: detail.record_id,
                revision: v.revision,
                status: v.status.as_str(),
                content_sha256: &v.content_sha256,
                saved_at_utc: v.saved_at_utc,
                signature_b64: signature,
            };
            if signed.verify(key).is_err() {
                return SignatureCheck::NotProved(match key {
                    VersionKey::Device { .. } => {
                        "the signature does not verify with the device's logged key".into()
                    }
                    VersionKey::User { .. } => {
                        "the signature does not verify with the clinician's logged key".into()
                    }
                });
            }
            let Some(place) = proof.versions.iter().find(|p| p.revision == v.revision) else {
                return SignatureCheck::NotProved(
                    "this version's place in the log is missing".into(),
                );
            };
            let leaf = Leaf::Version {
                record_id: detail.record_id,
                revision: v.revision.get(),
                status: v.status.as_str().to_owned(),
                content_sha256: v.content_sha256.clone(),
                signature: v.signature.clone(),
                device_id: detail.device_id,
                saved_at_utc: leaf_time(v.saved_at_utc),
                signer_user_id: v.signer_user_id,
            };
            let included = parse_proof(&place.proof).and_then(|p| {
                check_inclusion(&p, &checkpoint, place.leaf_index, leaf_hash(&leaf.encode()))
            });
            match included {
                Ok(()) => SignatureCheck::Proved {
                    key_fingerprint: fingerprint,
                    signer,
                    log_size: checkpoint.size,
                },
                Err(IntegrityError::NotIncluded) => SignatureCheck::NotProved(
                    "this version is not proved to be in the server's log".into(),
                ),
                Err(e) => SignatureCheck::NotProved(e.to_string()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::crypto::{DeviceSigningKey, UserSigner, signing_payload};
    use crate::model::{RecordStatus, Revision};
    use crate::protocol::{LeafProof, ReviewProof, ReviewVersion, VersionProof};
    use crate::transparency::{
        Checkpoint, HashMapReader, append, hash_b64, prove_inclusion, sign_checkpoint,
    };
    use chrono::Utc;

    /// A record of two signed versions, logged after the device's enrolment (and some other
    /// leaves), with the proof a server would send: the first signed with the device's key
    /// (format 1, as before per-user keys), the second by a clinician's own key (format 2)
    /// registered through the device.
    fn logged_detail(device: &DeviceSigningKey, log: &DeviceSigningKey) -> ReviewDetail {
        logged_detail_endorsed_by(device, device, log)
    }

    /// [`logged_detail`], with the clinician's registration vouched for by `endorser` (the
    /// device's own key, or one the server made up).
    fn logged_detail_endorsed_by(
        device: &DeviceSigningKey,
        endorser: &DeviceSigningKey,
        log: &DeviceSigningKey,
    ) -> ReviewDetail {
        let device_id = Uuid::now_v7();
        let clinician = UserSigner::generate("Sam Medic", Uuid::new_v4()).unwrap();
        let mut e = crate::demo::complete_encounter();
        let record_id = e.id;
        let mut leaves = vec![
            Leaf::DeviceEnrolled {
                device_id: Uuid::now_v7(),
                public_key: DeviceSigningKey::generate().unwrap().public_key_base64(),
                enrolled_at_utc: leaf_time(Utc::now()),
            },
            Leaf::DeviceEnrolled {
                device_id,
                public_key: device.public_key_base64(),
                enrolled_at_utc: leaf_time(Utc::now()),
            },
            Leaf::SignerRegistered {
                device_id,
                tablet_id: clinician.identity().tablet_id,
                user_id: clinician.user_id(),
                user_name: clinician.identity().user_name.clone(),
                public_key: clinician.identity().public_key.clone(),
                proof: clinician.registration_proof().unwrap(),
                device_endorsement: endorser
                    .sign_base64(&clinician.identity().endorsement_message(device_id).unwrap()),
                registered_at_utc: leaf_time(Utc::now()),
            },
        ];
        let mut versions = Vec::new();
        for (n, status) in [(1u64, RecordStatus::Completed), (2, RecordStatus::Amended)] {
            e.status = status;
            e.notes = format!("version {n}");
            let document = serde_json::to_value(&e).unwrap();
            let sha = content_sha256_hex(&document);
            let revision = Revision::new(n).unwrap();
            let saved = Utc::now();
            let (signature, signer_user_id) = if n == 1 {
                let payload = signing_payload(record_id, revision, status.as_str(), &sha);
                (device.sign_base64(&payload), None)
            } else {
                let sig = clinician
                    .sign_version(record_id, revision, status.as_str(), &sha, saved)
                    .unwrap();
                (sig, Some(clinician.user_id()))
            };
            leaves.push(Leaf::Version {
                record_id,
                revision: n,
                status: status.as_str().to_owned(),
                content_sha256: sha.clone(),
                signature: Some(signature.clone()),
                device_id,
                saved_at_utc: leaf_time(saved),
                signer_user_id,
            });
            versions.push(ReviewVersion {
                revision,
                status,
                document,
                content_sha256: sha,
                signature: Some(signature),
                signature_valid: true,
                saved_at_utc: saved,
                received_at_utc: saved,
                signer_user_id,
            });
        }
        let encoded: Vec<Vec<u8>> = leaves.iter().map(Leaf::encode).collect();
        let hashes: Vec<_> = encoded.iter().map(|b| leaf_hash(b)).collect();
        let mut store = HashMapReader::default();
        let (_, root) = append(0, &hashes, &mut store).unwrap();
        let size = hashes.len() as u64;
        let checkpoint = Checkpoint {
            origin: "test/log".into(),
            size,
            root,
        };
        let proof_of = |i: u64| -> Vec<String> {
            prove_inclusion(size, i, &store)
                .unwrap()
                .iter()
                .map(hash_b64)
                .collect()
        };
        ReviewDetail {
            record_id,
            device_id,
            device_name: "Tablet 7".into(),
            proof: Some(ReviewProof {
                checkpoint: sign_checkpoint(&checkpoint, log),
                log_key: String::new(),
                enrolment_leaf: String::from_utf8(encoded[1].clone()).unwrap(),
                enrolment_index: 1,
                enrolment_proof: proof_of(1),
                versions: versions
                    .iter()
                    .enumerate()
                    .map(|(i, v)| VersionProof {
                        revision: v.revision,
                        leaf_index: 3 + i as u64,
                        proof: proof_of(3 + i as u64),
                    })
                    .collect(),
                signers: vec![LeafProof {
                    leaf: String::from_utf8(encoded[2].clone()).unwrap(),
                    leaf_index: 2,
                    proof: proof_of(2),
                }],
            }),
            versions,
            decisions: vec![],
        }
    }

    fn pinned(log: &DeviceSigningKey) -> LogPublicKey {
        LogPublicKey {
            name: "test/log".into(),
            key: log.public_key_bytes(),
        }
    }

    #[test]
    fn a_logged_record_is_proved_and_every_forgery_is_not() {
        let device = DeviceSigningKey::generate().unwrap();
        let log = DeviceSigningKey::generate().unwrap();
        let detail = logged_detail(&device, &log);
        let checks = check_detail(&detail, &pinned(&log));
        assert_eq!(checks.len(), 2);
        assert!(checks.iter().all(SignatureCheck::is_proved), "{checks:?}");
        // The first by the device's key, the second by the clinician, named as logged.
        assert!(matches!(
            &checks[0],
            SignatureCheck::Proved { signer: None, .. }
        ));
        assert!(
            matches!(&checks[1], SignatureCheck::Proved { signer: Some(name), .. } if name == "Sam Medic")
        );

        // Another log key: nothing is proved, whatever the server says of itself.
        let other = DeviceSigningKey::generate().unwrap();
        assert!(
            check_detail(&detail, &pinned(&other))
                .iter()
                .all(|c| !c.is_proved())
        );

        // The document altered and re-signed with a key swapped in on the server: the
        // logged enrolment still names the old key.
        let forger = DeviceSigningKey::generate().unwrap();
        let mut forged = detail.clone();
        let v = &mut forged.versions[0];
        v.document["notes"] = serde_json::Value::String("altered".into());
        v.content_sha256 = content_sha256_hex(&v.document);
        v.signature = Some(forger.sign_base64(&signing_payload(
            forged.record_id,
            v.revision,
            v.status.as_str(),
            &v.content_sha256,
        )));
        let checks = check_detail(&forged, &pinned(&log));
        assert!(checks[1].is_proved());
        assert_eq!(
            checks[0],
            SignatureCheck::NotProved(
                "the signature does not verify with the device's logged key".into()
            )
        );

        // The clinician's version altered and signed by another clinician's key under the
        // same user id: the registration logged names the real key.
        let impostor = UserSigner::generate("Sam Medic", Uuid::new_v4()).unwrap();
        let mut forged = detail.clone();
        let v = &mut forged.versions[1];
        v.document["notes"] = serde_json::Value::String("altered".into());
        v.content_sha256 = content_sha256_hex(&v.document);
        v.signature = Some(
            impostor
                .sign_version(
                    forged.record_id,
                    v.revision,
                    v.status.as_str(),
                    &v.content_sha256,
                    v.saved_at_utc,
                )
                .unwrap(),
        );
        assert_eq!(
            check_detail(&forged, &pinned(&log))[1],
            SignatureCheck::NotProved(
                "the signature does not verify with the clinician's logged key".into()
            )
        );

        // A registration the server logged with a key of its own, which the device never
        // endorsed: the clinician's version is not proved, the device's still is.
        let server_made = DeviceSigningKey::generate().unwrap();
        let checks = check_detail(
            &logged_detail_endorsed_by(&device, &server_made, &log),
            &pinned(&log),
        );
        assert!(checks[0].is_proved());
        assert!(!checks[1].is_proved());

        // The clinician's registration withheld: their version is not proved.
        let mut unregistered = detail.clone();
        if let Some(p) = unregistered.proof.as_mut() {
            p.signers.clear();
        }
        let checks = check_detail(&unregistered, &pinned(&log));
        assert!(checks[0].is_proved());
        assert!(!checks[1].is_proved());

        // A version the log does not hold (its proof points at another leaf).
        let mut moved = detail.clone();
        if let Some(p) = moved.proof.as_mut() {
            p.versions[0].leaf_index = 4;
        }
        assert!(!check_detail(&moved, &pinned(&log))[0].is_proved());

        // No proof at all.
        let mut bare = detail;
        bare.proof = None;
        assert!(
            check_detail(&bare, &pinned(&log))
                .iter()
                .all(|c| !c.is_proved())
        );
    }
}
