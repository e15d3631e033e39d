//! Saving a handover document to a folder (FHIR bundle or PDF) from the store worker.
//!
//! Owns: reading the chosen version, building the document, writing the file and auditing the
//! export. Runs only on the store worker thread, never on the UI thread.

use crate::model::Revision;
use std::path::PathBuf;

use uuid::Uuid;

use super::problem::StoreProblem;
/// Which handover document to save (the export room's format).
pub use crate::export::Format as ExportFormat;

/// Writes one version's handover document into `folder`; returns the file written or a
/// message saying what went wrong.
pub fn export_to_folder(
    store: &mut crate::store::Store,
    id: Uuid,
    revision: Option<Revision>,
    format: ExportFormat,
    folder: &str,
) -> Result<PathBuf, String> {
    use chrono::Offset;
    let (doc, meta) = store
        .version_for_export(id, revision)
        .map_err(|e| format!("Could not read the record: {}", StoreProblem::report(e)))?;
    let local = chrono::Local::now().offset().fix();
    let bytes = crate::export::document(format, &doc, &meta, chrono::Utc::now(), local)
        .map_err(|e| format!("Could not build the document: {e}"))?;
    let path = PathBuf::from(folder).join(crate::export::file_name(&doc, &meta, format));
    std::fs::write(&path, bytes).map_err(|e| format!("Could not save to {folder}: {e}"))?;
    store
        .record_access(crate::store::audit::Action::Exported, id)
        .map_err(|e| {
            format!(
                "Saved, but the export could not be audited: {}",
                StoreProblem::report(e)
            )
        })?;
    Ok(path)
}
