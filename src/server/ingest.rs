//! Checks on one pushed record version before storage sees it: schema (no field this server
//! does not know), content hash and signature (format 1 by the device's key, format 2 by the
//! signing clinician's registered key). Pure CPU work, no I/O, so it runs on a blocking thread
//! per batch and is tested on its own. Also the re-check that `epr-server verify` runs on
//! stored versions.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::crypto::{SignedVersion, VersionKey, canonical_json, content_sha256_hex};
use crate::model::{Encounter, RecordStatus};
use crate::protocol::{PushItem, RejectReason};

use super::storage::{NewVersion, SignerKey, StoredVersion};

/// The keys a device's push is checked with: its own (format 1) and its users' registered
/// keys by user id (format 2).
#[derive(Debug, Clone, Copy)]
pub struct PushKeys<'a> {
    pub device_public_key_b64: &'a str,
    pub signers: &'a HashMap<Uuid, SignerKey>,
}

impl<'a> PushKeys<'a> {
    /// The key a version signed by `signer_user_id` (or, without one, by the device) must
    /// verify with; `None` for a user this device never registered.
    fn key_for(&self, signer_user_id: Option<Uuid>) -> Option<VersionKey<'a>> {
        match signer_user_id {
            None => Some(VersionKey::Device {
                public_key_b64: self.device_public_key_b64,
            }),
            Some(user_id) => self.signers.get(&user_id).map(|k| VersionKey::User {
                user_id,
                public_key_b64: &k.public_key_b64,
                tablet_id: k.tablet_id,
            }),
        }
    }
}

/// True when `sent` holds something `understood` (the same document read into the model and
/// written back) does not: a field this server does not know, at any depth. A key sent as
/// `null` and dropped carries nothing, so it is not counted.
fn has_unknown_field(sent: &Value, understood: &Value) -> bool {
    match (sent, understood) {
        (Value::Object(sent), Value::Object(understood)) => {
            sent.iter().any(|(k, v)| match understood.get(k) {
                Some(u) => has_unknown_field(v, u),
                None => !v.is_null(),
            })
        }
        (Value::Array(sent), Value::Array(understood)) => {
            sent.len() != understood.len()
                || sent
                    .iter()
                    .zip(understood)
                    .any(|(s, u)| has_unknown_field(s, u))
        }
        (Value::Object(_) | Value::Array(_), _) => true,
        _ => false,
    }
}

/// Why an item was refused, with a message that names the problem but no patient data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: RejectReason,
    pub message: &'static str,
}

fn reject(reason: RejectReason, message: &'static str) -> Rejection {
    Rejection { reason, message }
}

/// Checks one item against the pushing device's keys and derives the review columns.
pub fn check_item(item: &PushItem, keys: &PushKeys<'_>) -> Result<NewVersion, Rejection> {
    if !item.document.is_object() {
        return Err(reject(
            RejectReason::Schema,
            "the document is not a JSON object",
        ));
    }
    let encounter = Encounter::deserialize(&item.document).map_err(|_| {
        reject(
            RejectReason::Schema,
            "the document is not a valid encounter",
        )
    })?;
    // A field the model does not know would be stored, hashed and signed, yet shown to no
    // reviewer and carried by no export: refused, so what is kept is what can be read.
    let understood = serde_json::to_value(&encounter).map_err(|_| {
        reject(
            RejectReason::Schema,
            "the document is not a valid encounter",
        )
    })?;
    if has_unknown_field(&item.document, &understood) {
        return Err(reject(
            RejectReason::Schema,
            "the document has a field this server does not know; update the server before this record can be kept",
        ));
    }
    if encounter.id != item.record_id {
        return Err(reject(
            RejectReason::Schema,
            "the document's id differs from the item's record_id",
        ));
    }
    if encounter.status != item.status {
        return Err(reject(
            RejectReason::Schema,
            "the document's status differs from the item's status",
        ));
    }
    let canonical = canonical_json(&item.document);
    let computed = crate::crypto::sha256_hex(&canonical);
    if computed != item.content_sha256 {
        return Err(reject(
            RejectReason::BadHash,
            "content_sha256 does not match the document",
        ));
    }
    let signature = if item.status.is_signed() {
        let Some(sig) = item.signature.as_deref() else {
            return Err(reject(
                RejectReason::BadSignature,
                "a signed status needs a signature",
            ));
        };
        let Some(key) = keys.key_for(item.signer_user_id) else {
            return Err(reject(
                RejectReason::UnknownSigner,
                "the signing user's key is not registered through this device",
            ));
        };
        let signed = SignedVersion {
            record_id: item.record_id,
            revision: item.revision,
            status: item.status.as_str(),
            content_sha256: &computed,
            saved_at_utc: item.saved_at_utc,
            signature_b64: sig,
        };
        if signed.verify(key).is_err() {
            return Err(reject(
                RejectReason::BadSignature,
                match key {
                    VersionKey::Device { .. } => {
                        "the signature does not verify against this device's key"
                    }
                    VersionKey::User { .. } => {
                        "the signature does not verify against the signing user's registered key"
                    }
                },
            ));
        }
        Some(sig.to_owned())
    } else {
        // Drafts are not signed; anything sent is not kept, so nothing unverified is stored.
        None
    };
    let document_canonical = String::from_utf8(canonical)
        .map_err(|_| reject(RejectReason::Schema, "the document is not valid UTF-8"))?;
    Ok(NewVersion {
        record_id: item.record_id,
        revision: item.revision,
        status: item.status,
        document_canonical,
        content_sha256: computed,
        // Kept only with the signature it names: a draft names no signer.
        signer_user_id: signature.as_ref().and(item.signer_user_id),
        signature,
        saved_at_utc: super::storage::to_micros(item.saved_at_utc),
        incident_number: encounter.incident.incident_number.clone(),
        patient_name: encounter.patient.display_name(),
        latest_news2: encounter.latest_news2().and_then(|n| n.total()),
        destination: match &encounter.outcome {
            Some(crate::model::Outcome::ConveyedTo {
                hospital,
                ods_code: Some(code),
            }) => Some((code.trim().to_uppercase(), hospital.trim().to_owned())),
            _ => None,
        },
    })
}

/// What is wrong with a stored version, found by [`recheck_stored`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredProblem {
    /// The stored document no longer hashes to the stored content hash.
    HashMismatch,
    /// The signature does not verify (or is missing) for a signed version.
    BadSignature,
    /// A format-2 signature names a user with no registered key.
    UnknownSigner,
    /// The document does not parse, or its id or status disagree with the row.
    Inconsistent,
}

impl StoredProblem {
    /// In words, for `verify` output.
    pub fn describe(self) -> &'static str {
        match self {
            StoredProblem::HashMismatch => "document does not match its content hash",
            StoredProblem::BadSignature => "signature does not verify",
            StoredProblem::UnknownSigner => "signed by a user whose key is not registered",
            StoredProblem::Inconsistent => "document disagrees with its stored id or status",
        }
    }
}

/// Re-checks a stored version: the document against its hash, the hash against its signature
/// (the device's key for format 1; for format 2 the signing user's key in `v.signer`, which
/// `verify` fills from the log), and the document's own id and status against the row.
pub fn recheck_stored(v: &StoredVersion) -> Result<(), StoredProblem> {
    let doc: serde_json::Value =
        serde_json::from_str(&v.document).map_err(|_| StoredProblem::Inconsistent)?;
    if content_sha256_hex(&doc) != v.content_sha256 {
        return Err(StoredProblem::HashMismatch);
    }
    let status = v.status.ok_or(StoredProblem::Inconsistent)?;
    let encounter: Encounter =
        serde_json::from_value(doc).map_err(|_| StoredProblem::Inconsistent)?;
    if encounter.id != v.record_id || encounter.status != status {
        return Err(StoredProblem::Inconsistent);
    }
    if status != RecordStatus::Draft {
        let sig = v.signature.as_deref().ok_or(StoredProblem::BadSignature)?;
        let key = match (v.signer_user_id, &v.signer) {
            (None, _) => VersionKey::Device {
                public_key_b64: &v.public_key_b64,
            },
            (Some(user_id), Some(k)) => VersionKey::User {
                user_id,
                public_key_b64: &k.public_key_b64,
                tablet_id: k.tablet_id,
            },
            (Some(_), None) => return Err(StoredProblem::UnknownSigner),
        };
        SignedVersion {
            record_id: v.record_id,
            revision: v.revision,
            status: status.as_str(),
            content_sha256: &v.content_sha256,
            saved_at_utc: v.saved_at_utc,
            signature_b64: sig,
        }
        .verify(key)
        .map_err(|_| StoredProblem::BadSignature)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::crypto::{DeviceSigningKey, signing_payload};
    use crate::demo::complete_encounter;
    use crate::model::revision::rev;

    fn signed_item(key: &DeviceSigningKey) -> PushItem {
        let mut e = complete_encounter();
        e.status = RecordStatus::Completed;
        let doc = serde_json::to_value(&e).unwrap();
        let sha = content_sha256_hex(&doc);
        let sig = key.sign_base64(&signing_payload(e.id, rev(3), "completed", &sha));
        PushItem {
            record_id: e.id,
            revision: rev(3),
            status: RecordStatus::Completed,
            document: doc,
            content_sha256: sha,
            signature: Some(sig),
            signer_user_id: None,
            saved_at_utc: chrono::Utc::now(),
        }
    }

    fn check(item: &PushItem, device_key: &str) -> Result<NewVersion, Rejection> {
        check_item(
            item,
            &PushKeys {
                device_public_key_b64: device_key,
                signers: &HashMap::new(),
            },
        )
    }

    /// A completed item signed in format 2 by `signer`.
    fn user_signed_item(signer: &crate::crypto::UserSigner) -> PushItem {
        let mut e = complete_encounter();
        e.status = RecordStatus::Completed;
        let doc = serde_json::to_value(&e).unwrap();
        let sha = content_sha256_hex(&doc);
        let at = chrono::Utc::now();
        let sig = signer
            .sign_version(e.id, rev(2), "completed", &sha, at)
            .unwrap();
        PushItem {
            record_id: e.id,
            revision: rev(2),
            status: RecordStatus::Completed,
            document: doc,
            content_sha256: sha,
            signature: Some(sig),
            signer_user_id: Some(signer.user_id()),
            saved_at_utc: at,
        }
    }

    #[test]
    fn a_clinician_signed_item_needs_that_clinicians_registered_key() {
        let device = DeviceSigningKey::generate().unwrap();
        let tablet = Uuid::new_v4();
        let signer = crate::crypto::UserSigner::generate("Sam Medic", tablet).unwrap();
        let registered = |s: &crate::crypto::UserSigner| {
            HashMap::from([(
                s.user_id(),
                SignerKey {
                    public_key_b64: s.identity().public_key.clone(),
                    tablet_id: s.identity().tablet_id,
                    user_name: s.identity().user_name.clone(),
                },
            )])
        };
        let keys = registered(&signer);
        let pk = device.public_key_base64();
        let push_keys = PushKeys {
            device_public_key_b64: &pk,
            signers: &keys,
        };
        let item = user_signed_item(&signer);
        let v = check_item(&item, &push_keys).unwrap();
        assert_eq!(v.signer_user_id, Some(signer.user_id()));

        // Not registered through this device: refused, with its reason.
        let refused = check(&item, &pk).unwrap_err();
        assert_eq!(refused.reason, RejectReason::UnknownSigner);
        assert!(refused.message.contains("not registered"));

        // Another clinician's key claiming this one's id: refused.
        let impostor = crate::crypto::UserSigner::generate("Sam Medic", tablet).unwrap();
        let mut forged = user_signed_item(&impostor);
        forged.signer_user_id = Some(signer.user_id());
        assert_eq!(
            check_item(&forged, &push_keys).unwrap_err().reason,
            RejectReason::BadSignature
        );

        // The save time is covered: moved, the signature no longer holds.
        let mut moved = item.clone();
        moved.saved_at_utc += chrono::Duration::seconds(60);
        assert_eq!(
            check_item(&moved, &push_keys).unwrap_err().reason,
            RejectReason::BadSignature
        );
    }

    #[test]
    fn a_document_with_a_field_the_server_does_not_know_is_refused() {
        let key = DeviceSigningKey::generate().unwrap();
        let pk = key.public_key_base64();
        let resign = |i: &mut PushItem| {
            i.content_sha256 = content_sha256_hex(&i.document);
            i.signature = Some(key.sign_base64(&crate::crypto::signing_payload(
                i.record_id,
                i.revision,
                "completed",
                &i.content_sha256,
            )));
        };
        // At the top level.
        let mut i = signed_item(&key);
        i.document["triage_colour"] = serde_json::json!("red");
        resign(&mut i);
        let refused = check(&i, &pk).unwrap_err();
        assert_eq!(refused.reason, RejectReason::Schema);
        assert!(refused.message.contains("does not know"));
        // Deep inside (the patient object).
        let mut i = signed_item(&key);
        i.document["patient"]["shoe_size"] = serde_json::json!(9);
        resign(&mut i);
        assert_eq!(check(&i, &pk).unwrap_err().reason, RejectReason::Schema);
        // A field sent as null carries nothing and is not refused.
        let mut i = signed_item(&key);
        i.document["patient"]["shoe_size"] = serde_json::Value::Null;
        resign(&mut i);
        assert!(check(&i, &pk).is_ok());
    }

    #[test]
    fn a_good_signed_item_passes_and_derives_review_columns() {
        let key = DeviceSigningKey::generate().unwrap();
        let v = check(&signed_item(&key), &key.public_key_base64()).unwrap();
        assert_eq!(v.incident_number, "INC-000123");
        assert!(!v.patient_name.is_empty());
        assert!(v.latest_news2.is_some());
    }

    #[test]
    fn each_defect_has_its_reason() {
        let key = DeviceSigningKey::generate().unwrap();
        let pk = key.public_key_base64();
        let mut i = signed_item(&key);
        i.content_sha256 = "00".repeat(32);
        assert_eq!(check(&i, &pk).unwrap_err().reason, RejectReason::BadHash);

        let mut i = signed_item(&key);
        i.signature = None;
        assert_eq!(
            check(&i, &pk).unwrap_err().reason,
            RejectReason::BadSignature
        );

        let other = DeviceSigningKey::generate().unwrap();
        let i = signed_item(&other);
        assert_eq!(
            check(&i, &pk).unwrap_err().reason,
            RejectReason::BadSignature
        );

        let mut i = signed_item(&key);
        i.status = RecordStatus::Amended;
        assert_eq!(check(&i, &pk).unwrap_err().reason, RejectReason::Schema);

        let mut i = signed_item(&key);
        i.document = serde_json::json!({"not": "an encounter"});
        assert_eq!(check(&i, &pk).unwrap_err().reason, RejectReason::Schema);
    }
}
