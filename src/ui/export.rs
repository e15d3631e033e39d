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
    let (doc, meta) = store
        .version_for_export(id, revision)
        .map_err(|e| format!("Could not read the record: {}", StoreProblem::report(e)))?;
    let bytes = crate::export::document(format, &doc, &meta, chrono::Utc::now())
        .map_err(|e| format!("Could not build the document: {e}"))?;
    let path = PathBuf::from(folder).join(crate::export::file_name(&doc, &meta, format));
    // Never over another file: a different document under this name (an earlier export
    // of this version, made at another time) is left as it was and the crew are told.
    match crate::fs_atomic::write_new_or_same(&path, &bytes) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(format!(
                "{} is already saved in {folder}; it was not replaced",
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ));
        }
        Err(e) => return Err(format!("Could not save to {folder}: {e}")),
    }
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
