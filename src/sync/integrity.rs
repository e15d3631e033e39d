//! What this tablet knows of the server's log, kept in the encrypted store: the log key it
//! pinned at enrolment, the last checkpoint it verified, and whether the server has failed to
//! prove its integrity. The checks themselves are in [`crate::transparency`]; the engine runs
//! them each sync (`super::engine`).
//!
//! A failure is kept until the tablet is enrolled again: a server that once showed a rewritten
//! or shortened history is not trusted again by this tablet on its own say-so.

use serde::Serialize;

use crate::store::{Store, StoreError};
use crate::transparency::{Checkpoint, LogPublicKey, hash_b64, open_checkpoint};

/// The server's log key (`NAME+KEYID+KEY`), pinned at enrolment.
pub const LOG_KEY: &str = "server_log_key";
/// The last checkpoint (signed note) this tablet verified.
pub const LOG_CHECKPOINT: &str = "server_log_checkpoint";
/// Why the server failed its integrity check, once it has.
pub const INTEGRITY_FAILURE: &str = "server_integrity_failure";

/// Whether the server has proved it keeps every record, as `epr status --json` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ServerIntegrity {
    /// The last checkpoint verified, extends every earlier one, and includes every version
    /// this tablet pushed.
    Ok,
    /// A check failed: sync stops, every record stays queued on this tablet.
    Failed { reason: String },
    /// Not checked yet (not enrolled, or no sync since enrolment).
    Unknown,
}

/// The last verified checkpoint as `status --json` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckpointSummary {
    pub size: u64,
    /// Base64 root hash.
    pub root: String,
}

/// The pinned log key, if any.
pub fn pinned_key(store: &Store) -> Result<Option<LogPublicKey>, StoreError> {
    Ok(store
        .setting(LOG_KEY)?
        .and_then(|k| LogPublicKey::from_vkey(&k).ok()))
}

/// The last checkpoint this tablet verified (re-opened with the pinned key).
pub fn verified_checkpoint(store: &Store) -> Result<Option<Checkpoint>, StoreError> {
    let (Some(key), Some(note)) = (pinned_key(store)?, store.setting(LOG_CHECKPOINT)?) else {
        return Ok(None);
    };
    Ok(open_checkpoint(&note, &key).ok())
}

/// The server's integrity as this tablet last found it.
pub fn integrity(store: &Store) -> Result<ServerIntegrity, StoreError> {
    if let Some(reason) = store.setting(INTEGRITY_FAILURE)? {
        return Ok(ServerIntegrity::Failed { reason });
    }
    Ok(if verified_checkpoint(store)?.is_some() {
        ServerIntegrity::Ok
    } else {
        ServerIntegrity::Unknown
    })
}

/// The last verified checkpoint's size and root.
pub fn checkpoint_summary(store: &Store) -> Result<Option<CheckpointSummary>, StoreError> {
    Ok(verified_checkpoint(store)?.map(|c| CheckpointSummary {
        size: c.size,
        root: hash_b64(&c.root),
    }))
}

/// Records that the server failed a check (kept until the tablet is enrolled again).
pub fn record_failure(store: &mut Store, reason: &str) -> Result<(), StoreError> {
    if store.setting(INTEGRITY_FAILURE)?.is_none() {
        store.set_setting(INTEGRITY_FAILURE, reason)?;
        store.record_integrity_failure()?;
    }
    Ok(())
}

/// At enrolment: pins the new server's key and forgets everything about any earlier server.
pub fn start_fresh(store: &Store, log_key: Option<&str>) -> Result<(), StoreError> {
    store.delete_setting(LOG_CHECKPOINT)?;
    store.delete_setting(INTEGRITY_FAILURE)?;
    match log_key.and_then(|k| LogPublicKey::from_vkey(k).ok()) {
        Some(k) => store.set_setting(LOG_KEY, &k.to_vkey()),
        None => store.delete_setting(LOG_KEY),
    }
}

/// The reference data the app works from: the trust's set once the server delivered it;
/// before that, the labelled sample on a tablet not enrolled with a trust (or a
/// demonstration), and nothing on an enrolled one.
pub fn reference_in_use(
    store: &Store,
) -> Result<crate::store::reference::ActiveReference, StoreError> {
    let enrolled = store.setting(super::engine::SERVER_URL)?.is_some()
        && store.setting(super::engine::DEMO_PORT)?.is_none();
    store.active_reference(enrolled)
}

/// Why a reference data set the server offered was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceRefused {
    #[error("this tablet has no pinned server key to check it with")]
    NoPinnedKey,
    #[error("its statement is not signed by the server key this tablet trusts: {0}")]
    Signature(crate::transparency::IntegrityError),
    #[error("its statement names version {statement}, the set says {offered}")]
    VersionMismatch { statement: u64, offered: u64 },
    #[error("the document is not the one the signed statement names (its hash differs)")]
    HashMismatch,
    #[error("the document does not pass the reference data checks: {0}")]
    Invalid(crate::model::reference::ReferenceError),
}

/// Checks a reference data set the server offered against the pinned log key: the statement
/// must open with that key, name this version and this document's SHA-256, and the document
/// must pass the same checks the server's import made and carry the same version.
pub fn check_reference(
    set: &crate::protocol::SignedReference,
    key: Option<&LogPublicKey>,
) -> Result<crate::model::reference::ReferenceData, ReferenceRefused> {
    let key = key.ok_or(ReferenceRefused::NoPinnedKey)?;
    let statement = crate::transparency::open_reference(&set.signed_note, key)
        .map_err(ReferenceRefused::Signature)?;
    if statement.version != set.version {
        return Err(ReferenceRefused::VersionMismatch {
            statement: statement.version,
            offered: set.version,
        });
    }
    if crate::crypto::sha256_hex(set.document.as_bytes()) != statement.document_sha256 {
        return Err(ReferenceRefused::HashMismatch);
    }
    let data = crate::model::reference::ReferenceData::from_json(&set.document)
        .map_err(ReferenceRefused::Invalid)?;
    if u64::from(data.version) != set.version {
        return Err(ReferenceRefused::VersionMismatch {
            statement: statement.version,
            offered: u64::from(data.version),
        });
    }
    Ok(data)
}

#[cfg(test)]
mod reference_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::crypto::DeviceSigningKey;
    use crate::protocol::SignedReference;
    use crate::transparency::{ReferenceStatement, sign_reference};

    fn offered(key: &DeviceSigningKey, version: u64, document: &str) -> SignedReference {
        let statement = ReferenceStatement {
            version,
            document_sha256: crate::crypto::sha256_hex(document.as_bytes()),
            imported_at_utc: "2026-12-03T10:00:00.000000Z".into(),
        };
        SignedReference {
            version,
            document: document.to_owned(),
            signed_note: sign_reference(key, "o/log", &statement),
        }
    }

    fn pinned(key: &DeviceSigningKey) -> LogPublicKey {
        LogPublicKey {
            name: "o/log".into(),
            key: key.public_key_bytes(),
        }
    }

    #[test]
    fn a_reference_set_is_taken_only_signed_by_the_pinned_key_and_whole() {
        let (server, other) = (
            DeviceSigningKey::generate().unwrap(),
            DeviceSigningKey::generate().unwrap(),
        );
        let document = crate::model::reference::SAMPLE_JSON;
        let good = offered(&server, 1, document);
        assert!(check_reference(&good, Some(&pinned(&server))).is_ok());
        assert_eq!(
            check_reference(&good, None),
            Err(ReferenceRefused::NoPinnedKey)
        );
        assert!(matches!(
            check_reference(&good, Some(&pinned(&other))),
            Err(ReferenceRefused::Signature(_))
        ));
        let swapped = SignedReference {
            document: document.replace("Aspirin", "Asprin"),
            ..good.clone()
        };
        assert_eq!(
            check_reference(&swapped, Some(&pinned(&server))),
            Err(ReferenceRefused::HashMismatch)
        );
        let renumbered = SignedReference {
            version: 2,
            ..good.clone()
        };
        assert!(matches!(
            check_reference(&renumbered, Some(&pinned(&server))),
            Err(ReferenceRefused::VersionMismatch { .. })
        ));
        // Signed, but not a document the import would take.
        let bad = offered(&server, 1, "{\"version\": 1}");
        assert!(matches!(
            check_reference(&bad, Some(&pinned(&server))),
            Err(ReferenceRefused::Invalid(_))
        ));
    }
}
