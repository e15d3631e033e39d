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
    /// FHIR R4 document bundle (JSON: data times in UTC, the narrative in UK time).
    Fhir,
    /// Printable summary (UK time, the zone printed).
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
/// other caller turn a record into a file. People read them in UK time, the zone printed.
pub fn document(
    format: Format,
    e: &Encounter,
    meta: &VersionMeta,
    generated_at: DateTime<Utc>,
) -> Result<Vec<u8>, ExportError> {
    Ok(match format {
        Format::Fhir => serde_json::to_vec_pretty(&fhir::bundle(e, meta, generated_at))?,
        Format::Pdf => pdf::render_uk(e, meta, generated_at)?,
    })
}

/// UK time at `at`: the offset from UTC and the zone's name, "GMT" or "BST". Handover
/// documents give UK time with the zone printed, whatever zone the device is set to, so the
/// device and the server write the same document and the hospital reads its own clock.
pub fn uk_time_zone(at: DateTime<Utc>) -> (FixedOffset, &'static str) {
    use chrono::Offset;
    let offset = at.with_timezone(&chrono_tz::Europe::London).offset().fix();
    let name = if offset.local_minus_utc() == 0 {
        "GMT"
    } else {
        "BST"
    };
    (offset, name)
}

/// A file name that says what the file is without naming the patient, and that no other
/// record can share: `handover-INC-000123-3f9a1c2e-v2.pdf` (incident number, the record's
/// short id, revision), with `-DRAFT` for unsigned versions. In a multi-casualty incident
/// every patient has the same incident number; the short id (the last 8 hex digits of the
/// record's UUID, its random part) keeps their handovers apart.
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
        "handover-{}-{}-v{}{}.{}",
        if incident.is_empty() {
            "record"
        } else {
            &incident
        },
        short_id(e.id),
        meta.revision,
        if meta.is_draft() { "-DRAFT" } else { "" },
        format.extension()
    )
}

/// The last 8 hex digits of a record id: random in a UUIDv7 (the first digits are the
/// creation time, shared by records made in the same minute).
pub fn short_id(id: uuid::Uuid) -> String {
    let hex = id.simple().to_string();
    hex[hex.len().saturating_sub(8)..].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::complete_encounter;
    use crate::model::{RecordStatus, Revision};

    fn meta(revision: u64, status: RecordStatus) -> VersionMeta {
        VersionMeta {
            revision: Revision::new(revision).unwrap(),
            status,
            content_sha256: String::new(),
            signature: None,
            device_public_key: None,
            saved_at_utc: chrono::Utc::now(),
            signer: None,
        }
    }

    #[test]
    fn uk_time_is_gmt_in_winter_and_bst_in_summer() {
        use chrono::TimeZone;
        let winter = Utc
            .with_ymd_and_hms(2026, 12, 2, 10, 0, 0)
            .single()
            .unwrap();
        let summer = Utc.with_ymd_and_hms(2026, 7, 1, 10, 0, 0).single().unwrap();
        assert_eq!(uk_time_zone(winter).1, "GMT");
        assert_eq!(uk_time_zone(winter).0.local_minus_utc(), 0);
        assert_eq!(uk_time_zone(summer).1, "BST");
        assert_eq!(uk_time_zone(summer).0.local_minus_utc(), 3600);
    }

    #[test]
    fn two_patients_of_one_incident_never_share_a_file_name() {
        let a = complete_encounter();
        let mut b = complete_encounter();
        b.id = uuid::Uuid::now_v7();
        assert_eq!(a.incident.incident_number, b.incident.incident_number);
        let signed = meta(2, RecordStatus::Completed);
        let name_a = file_name(&a, &signed, Format::Pdf);
        assert_ne!(name_a, file_name(&b, &signed, Format::Pdf));
        assert_eq!(
            name_a,
            format!("handover-INC-000123-{}-v2.pdf", short_id(a.id))
        );
        // The same version always has the same name; another version another.
        assert_eq!(name_a, file_name(&a, &signed, Format::Pdf));
        assert_ne!(
            name_a,
            file_name(&a, &meta(3, RecordStatus::Amended), Format::Pdf)
        );
        assert!(
            file_name(&a, &meta(1, RecordStatus::Draft), Format::Fhir).ends_with("-v1-DRAFT.json")
        );
        // The short id is the random tail of the UUID, not its time-based head.
        assert!(a.id.simple().to_string().ends_with(&short_id(a.id)));
        assert_eq!(short_id(a.id).len(), 8);
    }
}
