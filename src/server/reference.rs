//! The trust's reference data on the server: importing a new version (checked whole, signed
//! with the log key, stored, logged and audited), describing the version held, and handing
//! tablets the latest with a statement their pinned log key opens.
//!
//! The document's shape and checks are `model::reference`; the signed statement is
//! `transparency::sign_reference`; the tablet's side is `sync`.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::log_key::LogSigner;
use super::storage::{ReferenceVersion, Storage, StorageError};
use crate::model::reference::{ReferenceCounts, ReferenceData, ReferenceError};
use crate::transparency::{ReferenceStatement, leaf_time};

/// Largest reference data document accepted, in bytes (a formulary of hundreds of drugs and
/// a staff list of thousands fit many times over).
pub const MAX_REFERENCE_BYTES: usize = 8 * 1024 * 1024;

/// Why an import changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the file was refused and nothing changed: {0}")]
    Invalid(#[from] ReferenceError),
    #[error(
        "the file was refused and nothing changed: it is larger than {MAX_REFERENCE_BYTES} bytes"
    )]
    TooLarge,
    #[error(
        "the file was refused and nothing changed: version {offered} is not newer than version {held} already imported (raise \"version\" in the file)"
    )]
    NotNewer { offered: u64, held: u64 },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What `reference show --json` prints, and what `reference import` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReferenceSummary {
    pub version: u64,
    pub trust: String,
    /// The labelled sample set, not a trust's own.
    pub sample: bool,
    pub counts: ReferenceCounts,
    pub document_sha256: String,
    /// When the import signed it with the log key.
    pub signed_at_utc: DateTime<Utc>,
}

impl ReferenceSummary {
    fn of(held: &ReferenceVersion) -> Result<Self, StorageError> {
        let data = ReferenceData::from_json(&held.document)
            .map_err(|e| StorageError::Corrupt(format!("reference data: {e}")))?;
        Ok(Self {
            version: held.version,
            trust: data.trust.clone(),
            sample: data.sample,
            counts: data.counts(),
            document_sha256: held.document_sha256.clone(),
            signed_at_utc: held.imported_at_utc,
        })
    }
}

/// Checks `text` whole and stores it as the new version, signed with `signer`. A bad file,
/// or one whose version is not above the one held, changes nothing.
pub async fn import(
    storage: &dyn Storage,
    signer: &LogSigner,
    text: &str,
    now: DateTime<Utc>,
) -> Result<ReferenceSummary, ImportError> {
    if text.len() > MAX_REFERENCE_BYTES {
        return Err(ImportError::TooLarge);
    }
    let data = ReferenceData::from_json(text)?;
    let offered = u64::from(data.version);
    let held = storage.latest_reference().await?.map(|h| h.version);
    if let Some(held) = held
        && held >= offered
    {
        return Err(ImportError::NotNewer { offered, held });
    }
    let document = canonical(&data)?;
    let document_sha256 = crate::crypto::sha256_hex(document.as_bytes());
    let imported_at_utc = super::storage::to_micros(now);
    let statement = ReferenceStatement {
        version: offered,
        document_sha256: document_sha256.clone(),
        imported_at_utc: leaf_time(imported_at_utc),
    };
    let version = ReferenceVersion {
        version: offered,
        document,
        document_sha256,
        signed_note: signer.sign_reference(&statement),
        imported_at_utc,
    };
    if !storage.add_reference_version(&version).await? {
        // Another import took this version number between the check and the write.
        let held = storage
            .latest_reference()
            .await?
            .map_or(offered, |h| h.version);
        return Err(ImportError::NotNewer { offered, held });
    }
    Ok(ReferenceSummary::of(&version)?)
}

/// The version held, if any.
pub async fn show(storage: &dyn Storage) -> Result<Option<ReferenceSummary>, StorageError> {
    storage
        .latest_reference()
        .await?
        .as_ref()
        .map(ReferenceSummary::of)
        .transpose()
}

/// The latest version as a tablet receives it, when its statement is signed by `signer` (the
/// key the server signs checkpoints with) and its document still hashes to what the statement
/// names. Anything else is not served (and logged): a row written into the database without
/// the key, or a document changed after it was signed, never reaches a tablet. After a key
/// rotation, `key --rotate` signs the statement again with the new key
/// ([`sign_again_after_rotation`]).
pub async fn for_tablets(
    storage: &dyn Storage,
    signer: &LogSigner,
) -> Result<Option<ReferenceVersion>, StorageError> {
    let Some(held) = storage.latest_reference().await? else {
        return Ok(None);
    };
    match vouched_for(&held, &signer.public()) {
        Ok(()) => Ok(Some(held)),
        Err(why) => {
            tracing::error!(version = held.version, %why, "the stored reference data is not served");
            Ok(None)
        }
    }
}

/// Checks a stored version against `key`: its statement opens with it and names this
/// version and this document's hash.
fn vouched_for(
    held: &ReferenceVersion,
    key: &crate::transparency::LogPublicKey,
) -> Result<(), &'static str> {
    let statement = crate::transparency::open_reference(&held.signed_note, key)
        .map_err(|_| "its statement is not signed by this server's log key")?;
    let hash = crate::crypto::sha256_hex(held.document.as_bytes());
    if statement.version != held.version
        || statement.document_sha256 != held.document_sha256
        || hash != held.document_sha256
    {
        return Err("the document or its version differs from what its statement names");
    }
    Ok(())
}

/// After `key --rotate`: the latest version's statement, checked with the `old` key, signed
/// again with the `new` one, so tablets that follow the rotation keep receiving it. A
/// statement the old key does not vouch for is left alone (and reported).
pub async fn sign_again_after_rotation(
    storage: &dyn Storage,
    old: &LogSigner,
    new: &LogSigner,
) -> Result<Option<u64>, ImportError> {
    let Some(held) = storage.latest_reference().await? else {
        return Ok(None);
    };
    if let Err(why) = vouched_for(&held, &old.public()) {
        return Err(ImportError::Storage(StorageError::Corrupt(format!(
            "reference data version {}: {why}",
            held.version
        ))));
    }
    let note = new.sign_reference(&ReferenceStatement {
        version: held.version,
        document_sha256: held.document_sha256.clone(),
        imported_at_utc: leaf_time(held.imported_at_utc),
    });
    storage.set_reference_note(held.version, &note).await?;
    Ok(Some(held.version))
}

/// The document's canonical JSON: what its hash and the signed statement cover, and what
/// tablets receive.
fn canonical(data: &ReferenceData) -> Result<String, StorageError> {
    let value = serde_json::to_value(data)
        .map_err(|e| StorageError::Corrupt(format!("reference data: {e}")))?;
    String::from_utf8(crate::crypto::canonical_json(&value))
        .map_err(|e| StorageError::Corrupt(format!("reference data: {e}")))
}
