//! Hospital handover without a server: a FHIR R4 document Bundle and a printable PDF.
//!
//! Owns: turning one version of a record into the documents a receiving hospital can take
//! there and then, on the device, with no network. Pure functions of the record and its
//! version metadata (plus the generation time), so the device and the server produce the same
//! bundle for the same version. May use `model`, serde and printpdf; never the store, the
//! network or the UI. Writing files is the caller's job.

pub mod fhir;
pub mod pdf;

pub use crate::model::VersionMeta;

/// The mark every draft export carries.
pub const DRAFT_MARK: &str = "DRAFT – not signed";

use chrono::{DateTime, FixedOffset, Utc};

use crate::model::Encounter;

/// Which handover document to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// FHIR R4 document bundle (JSON, times in UTC).
    Fhir,
    /// Printable summary (times at the given offset, which is printed).
    Pdf,
}

impl Format {
    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Fhir => "json",
            Format::Pdf => "pdf",
        }
    }
}

/// Why a document could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("the FHIR bundle could not be written: {0}")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Pdf(#[from] pdf::PdfError),
}

/// The bytes of one version's handover document: the one place the CLI, the app and any
/// other caller turn a record into a file.
pub fn document(
    format: Format,
    e: &Encounter,
    meta: &VersionMeta,
    generated_at: DateTime<Utc>,
    local_offset: FixedOffset,
) -> Result<Vec<u8>, ExportError> {
    Ok(match format {
        Format::Fhir => serde_json::to_vec_pretty(&fhir::bundle(e, meta, generated_at))?,
        Format::Pdf => pdf::render_in(e, meta, generated_at, local_offset)?,
    })
}

/// A file name that says what the file is without naming the patient:
/// `handover-INC-000123-v2.pdf`, with `-DRAFT` for unsigned versions.
pub fn file_name(e: &Encounter, meta: &VersionMeta, format: Format) -> String {
    let incident: String = e
        .incident
        .incident_number
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "handover-{}-v{}{}.{}",
        if incident.is_empty() {
            "record"
        } else {
            &incident
        },
        meta.revision,
        if meta.is_draft() { "-DRAFT" } else { "" },
        format.extension()
    )
}
