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
