//! Checks on one pushed record version before storage sees it: schema, content hash and
//! device signature. Pure CPU work, no I/O, so it runs on a blocking thread per batch and is
//! tested on its own. Also the re-check that `epr-server verify` runs on stored versions.

use serde::Deserialize;

use crate::crypto::{canonical_json, content_sha256_hex, signing_payload, verify_signature};
use crate::model::{Encounter, RecordStatus};
use crate::protocol::{PushItem, RejectReason};

use super::storage::{NewVersion, StoredVersion};

/// Why an item was refused, with a message that names the problem but no patient data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: RejectReason,
    pub message: &'static str,
}

fn reject(reason: RejectReason, message: &'static str) -> Rejection {
    Rejection { reason, message }
}

/// Checks one item against the pushing device's public key and derives the review columns.
pub fn check_item(item: &PushItem, device_public_key_b64: &str) -> Result<NewVersion, Rejection> {
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
        let payload = signing_payload(
            item.record_id,
            item.revision,
            item.status.as_str(),
            &computed,
        );
        if verify_signature(device_public_key_b64, &payload, sig).is_err() {
            return Err(reject(
                RejectReason::BadSignature,
                "the signature does not verify against this device's key",
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
        signature,
        saved_at_utc: super::storage::to_micros(item.saved_at_utc),
        incident_number: encounter.incident.incident_number.clone(),
        patient_name: encounter.patient.display_name(),
        latest_news2: encounter.latest_news2().and_then(|n| n.total()),
    })
}

/// What is wrong with a stored version, found by [`recheck_stored`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredProblem {
    /// The stored document no longer hashes to the stored content hash.
    HashMismatch,
    /// The signature does not verify (or is missing) for a signed version.
    BadSignature,
    /// The document does not parse, or its id or status disagree with the row.
    Inconsistent,
}

impl StoredProblem {
    /// In words, for `verify` output.
    pub fn describe(self) -> &'static str {
        match self {
            StoredProblem::HashMismatch => "document does not match its content hash",
            StoredProblem::BadSignature => "device signature does not verify",
            StoredProblem::Inconsistent => "document disagrees with its stored id or status",
        }
    }
}

/// Re-checks a stored version: the document against its hash, the hash against the device's
/// signature, and the document's own id and status against the row.
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
        let payload = signing_payload(v.record_id, v.revision, status.as_str(), &v.content_sha256);
        verify_signature(&v.public_key_b64, &payload, sig)
            .map_err(|_| StoredProblem::BadSignature)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::crypto::DeviceSigningKey;
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
            saved_at_utc: chrono::Utc::now(),
        }
    }

    #[test]
    fn a_good_signed_item_passes_and_derives_review_columns() {
        let key = DeviceSigningKey::generate().unwrap();
        let v = check_item(&signed_item(&key), &key.public_key_base64()).unwrap();
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
        assert_eq!(
            check_item(&i, &pk).unwrap_err().reason,
            RejectReason::BadHash
        );

        let mut i = signed_item(&key);
        i.signature = None;
        assert_eq!(
            check_item(&i, &pk).unwrap_err().reason,
            RejectReason::BadSignature
        );

        let other = DeviceSigningKey::generate().unwrap();
        let i = signed_item(&other);
        assert_eq!(
            check_item(&i, &pk).unwrap_err().reason,
            RejectReason::BadSignature
        );

        let mut i = signed_item(&key);
        i.status = RecordStatus::Amended;
        assert_eq!(
            check_item(&i, &pk).unwrap_err().reason,
            RejectReason::Schema
        );

        let mut i = signed_item(&key);
        i.document = serde_json::json!({"not": "an encounter"});
        assert_eq!(
            check_item(&i, &pk).unwrap_err().reason,
            RejectReason::Schema
        );
    }
}
