//! Metadata of one stored version of a record: what was signed, by which device key.
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
    /// Base64 Ed25519 device signature over the signing payload; `None` for drafts.
    pub signature: Option<String>,
    /// The device's public key (base64), so a reader can check the signature.
    pub device_public_key: Option<String>,
    pub saved_at_utc: DateTime<Utc>,
}

impl VersionMeta {
    /// Drafts are exported only with a visible "DRAFT – not signed" mark.
    pub fn is_draft(&self) -> bool {
        !self.status.is_signed()
    }
}
