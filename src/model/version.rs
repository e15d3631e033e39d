//! Metadata of one stored version of a record: what was signed, by which clinician's key (or,
//! before per-user signatures, which device key).
//!
//! Exports (FHIR, PDF) and the review view carry it so a reader can check the signature.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{RecordStatus, Revision};

/// Which version is being handed over or reviewed, and its proof of origin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionMeta {
    pub revision: Revision,
    pub status: RecordStatus,
    /// Hex SHA-256 of the version's canonical document.
    pub content_sha256: String,
    /// Base64 Ed25519 signature over the signing payload; `None` for drafts. Format 1 (no
    /// `signer`): by the device's key. Format 2: by `signer`'s own key (`docs/integrity.md`).
    pub signature: Option<String>,
    /// The device's public key (base64), so a reader can check a format-1 signature.
    pub device_public_key: Option<String>,
    pub saved_at_utc: DateTime<Utc>,
    /// The clinician whose own key made a format-2 signature, with that key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<crate::crypto::SignerIdentity>,
}

impl VersionMeta {
    /// Drafts are exported only with a visible "DRAFT – not signed" mark.
    pub fn is_draft(&self) -> bool {
        !self.status.is_signed()
    }
}
