//! The trust's own export of everything, FHIR Bulk Data style: one document Bundle per line
//! of `Bundle.ndjson` (the same bundles as hospital handover, one per record's latest signed
//! version) and a `manifest.json` saying when, how many and, from a server, the log's
//! checkpoint at that moment.
//!
//! Owns the export directory: it must be new or empty (an export never mixes with, or
//! replaces, anything); the bundles go to a temporary owner-only file that becomes
//! `Bundle.ndjson` only when complete ([`crate::fs_atomic::PendingFile`]), and the manifest is
//! written last, so a directory with a manifest holds a whole export and an interrupted one
//! leaves no `Bundle.ndjson` at all. Used
//! by `epr export --all` on a tablet and `epr-server export`; what to export is theirs.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};

use crate::export::VersionMeta;
use crate::model::Encounter;

/// The bundles' file name, as FHIR Bulk Data names files by resource type.
pub const BUNDLE_FILE: &str = "Bundle.ndjson";
/// The manifest's file name.
pub const MANIFEST_FILE: &str = "manifest.json";

/// Why an export could not be written. Messages name the directory, never a record.
#[derive(Debug, thiserror::Error)]
pub enum BulkExportError {
    #[error(
        "{0} is not empty; give a new or empty directory (an export never mixes with other files)"
    )]
    NotEmpty(PathBuf),
    #[error("cannot write the export in {path}: {source}; nothing usable was left there")]
    Io { path: PathBuf, source: io::Error },
}

/// An export being written. Dropped before [`BulkExport::finish`], it leaves nothing.
pub struct BulkExport {
    dir: PathBuf,
    pending: crate::fs_atomic::PendingFile,
    out: BufWriter<File>,
    count: u64,
}

impl BulkExport {
    /// Starts an export into `dir` (created owner-only if missing; refused if it holds
    /// anything).
    pub fn create(dir: &Path) -> Result<Self, BulkExportError> {
        let io_error = |source| BulkExportError::Io {
            path: dir.to_owned(),
            source,
        };
        crate::fs_atomic::create_private_dir_all(dir).map_err(io_error)?;
        if fs::read_dir(dir).map_err(io_error)?.next().is_some() {
            return Err(BulkExportError::NotEmpty(dir.to_owned()));
        }
        let pending =
            crate::fs_atomic::PendingFile::prepare(&dir.join(BUNDLE_FILE)).map_err(io_error)?;
        let file = fs::OpenOptions::new()
            .write(true)
            .open(pending.temporary_path())
            .map_err(io_error)?;
        Ok(Self {
            dir: dir.to_owned(),
            pending,
            out: BufWriter::new(file),
            count: 0,
        })
    }

    fn io_error(&self, source: io::Error) -> BulkExportError {
        BulkExportError::Io {
            path: self.dir.clone(),
            source,
        }
    }

    /// Appends one record's bundle as one line.
    pub fn add(
        &mut self,
        encounter: &Encounter,
        meta: &VersionMeta,
        generated_at: DateTime<Utc>,
    ) -> Result<(), BulkExportError> {
        let bundle = crate::export::fhir::bundle(encounter, meta, generated_at);
        let written = serde_json::to_writer(&mut self.out, &bundle)
            .map_err(io::Error::from)
            .and_then(|()| self.out.write_all(b"\n"));
        written.map_err(|e| self.io_error(e))?;
        self.count += 1;
        Ok(())
    }

    /// Bundles written so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Completes the export: the bundles file takes its name, then the manifest is written
    /// (with `checkpoint`, the server log's signed checkpoint, when there is one). Returns the
    /// number of bundles.
    pub fn finish(
        self,
        transaction_time: DateTime<Utc>,
        checkpoint: Option<&str>,
    ) -> Result<u64, BulkExportError> {
        let io_error = |source| BulkExportError::Io {
            path: self.dir.clone(),
            source,
        };
        // Flushed and closed here; `publish` fsyncs the file and gives it its name.
        self.out
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(|_| self.pending.publish())
            .map_err(io_error)?;
        let bundles = self.dir.join(BUNDLE_FILE);
        let manifest = serde_json::json!({
            "transactionTime": transaction_time.to_rfc3339_opts(SecondsFormat::Secs, true),
            "requiresAccessToken": false,
            "output": [{ "type": "Bundle", "url": BUNDLE_FILE, "count": self.count }],
            "error": [],
            "checkpoint": checkpoint,
        });
        let text = serde_json::to_vec_pretty(&manifest).map_err(|e| io_error(e.into()))?;
        if let Err(e) = crate::fs_atomic::write_new(&self.dir.join(MANIFEST_FILE), &text) {
            // Without its manifest the export is not whole: take the bundles away again.
            let _ = fs::remove_file(&bundles);
            return Err(io_error(e));
        }
        Ok(self.count)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::model::{RecordStatus, Revision};

    fn meta() -> VersionMeta {
        VersionMeta {
            revision: Revision::FIRST,
            status: RecordStatus::Completed,
            content_sha256: "ab".repeat(32),
            signature: Some("c2ln".into()),
            device_public_key: None,
            saved_at_utc: Utc::now(),
            signer: None,
        }
    }

    #[test]
    fn a_whole_export_has_one_bundle_per_line_and_a_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("export");
        let mut export = BulkExport::create(&out).unwrap();
        for _ in 0..3 {
            export
                .add(&crate::demo::complete_encounter(), &meta(), Utc::now())
                .unwrap();
        }
        assert_eq!(export.finish(Utc::now(), Some("note")).unwrap(), 3);
        let lines = fs::read_to_string(out.join(BUNDLE_FILE)).unwrap();
        assert_eq!(lines.lines().count(), 3);
        for line in lines.lines() {
            let b: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(b["resourceType"], "Bundle");
        }
        let manifest: serde_json::Value =
            serde_json::from_slice(&fs::read(out.join(MANIFEST_FILE)).unwrap()).unwrap();
        assert_eq!(manifest["output"][0]["count"], 3);
        assert_eq!(manifest["checkpoint"], "note");
        let names: Vec<_> = fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "no partial file left: {names:?}");
    }

    #[test]
    fn a_directory_holding_anything_is_refused_and_an_unfinished_export_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("other.txt"), "kept").unwrap();
        assert!(matches!(
            BulkExport::create(dir.path()),
            Err(BulkExportError::NotEmpty(_))
        ));
        assert_eq!(
            fs::read_to_string(dir.path().join("other.txt")).unwrap(),
            "kept"
        );

        let out = dir.path().join("export");
        let mut export = BulkExport::create(&out).unwrap();
        export
            .add(&crate::demo::complete_encounter(), &meta(), Utc::now())
            .unwrap();
        drop(export);
        assert_eq!(
            fs::read_dir(&out).unwrap().count(),
            0,
            "nothing half-written"
        );
    }
}
