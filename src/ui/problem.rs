//! What the screens say when the store fails: the one mapping from the store's internal
//! [`StoreError`] to a short [`StoreProblem`] a crew member can act on.
//!
//! Owns: the user-facing store error and its log line. Every store error that reaches a
//! screen passes through [`StoreProblem::report`] exactly once, at the worker boundary; the
//! detail (SQLite's codes, serde's category and position) goes to the log there and the
//! screen gets only the problem's fixed sentence. Must never put serde or SQL text, or any
//! stored value, into a problem's message; never logs a document's content.

use crate::store::StoreError;

/// A store failure in words a crew member can act on. Messages are fixed sentences (plus
/// user names, field labels and counts, never patient data).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreProblem {
    /// No store on this tablet yet: first run.
    #[error("there is no record store on this tablet yet")]
    NotInitialised,
    /// Creating a store where one exists; the old one was left alone.
    #[error("a record store already exists on this tablet; it has not been touched")]
    AlreadyExists,
    /// The crew user name is not on this tablet.
    #[error("unknown user {0:?}")]
    UnknownUser(String),
    /// Several users can unlock this tablet: the crew member must pick one.
    #[error("this store has several users ({0}): choose one")]
    ChooseUser(String),
    /// Adding a user whose name is taken.
    #[error("a user named {0:?} already exists")]
    UserExists(String),
    /// The passphrase or PIN did not unlock the key.
    #[error("wrong passphrase or PIN")]
    WrongPassphrase,
    /// Too many wrong attempts: wait before trying again.
    #[error("too many wrong attempts: try again in {wait_secs} s")]
    RateLimited { wait_secs: i64 },
    /// The store file itself cannot be read (wrong key for the file, damage, not a store).
    #[error(
        "the store file cannot be read: it is damaged, truncated or not an ePR store. It has been left as it is"
    )]
    StoreUnreadable,
    /// The store was written by a newer app.
    #[error(
        "the store was written by a newer version of this app (schema {found}, this app knows {supported}); update the app. The file has been left as it is"
    )]
    NewerVersion { found: i64, supported: i64 },
    /// The storage is read-only or write-protected.
    #[error("the store is on read-only storage or its file is write-protected; nothing was saved")]
    ReadOnly,
    /// The disk is full.
    #[error("the disk is full; nothing was saved. Free space and try again")]
    DiskFull,
    /// The storage refused a read or write.
    #[error(
        "the tablet's storage failed while reading or writing the store (it may be full or failing); this change was not saved and earlier saves are kept. Free space and try again"
    )]
    StorageFailed,
    /// The record asked for is not on this tablet.
    #[error("record not found")]
    RecordNotFound,
    /// A signed record can change only by amendment.
    #[error("this record is signed; changes must be made as an amendment with a reason")]
    Immutable,
    /// An amendment was signed without a reason.
    #[error("an amendment needs a reason")]
    NeedsReason,
    /// The tablet is being retired: no new record may start on it.
    #[error(
        "this tablet is being retired and takes no new records: start the record on another tablet"
    )]
    TabletRetiring,
    /// Signing refused: these items (field labels, not their values) are missing.
    #[error("the record is not complete: {}", .0.join(", "))]
    Incomplete(Vec<String>),
    /// A stored record (or a value in it) cannot be read; it was left as it is.
    #[error(
        "this record is damaged and cannot be read; it has been left as it is. Tell your IT team"
    )]
    RecordDamaged,
    /// The tablet was locked while a request was on its way.
    #[error("the tablet is locked: unlock it and try again")]
    Locked,
    /// The user's own signing key is not open: signing needs a passphrase unlock. The record
    /// is kept as it was.
    #[error(
        "your signing key is not open on this tablet: lock it and unlock with your passphrase, then sign again (the record is kept as it was)"
    )]
    SignerUnavailable,
    /// The data directory cannot be created; the sentence names the folder and the
    /// operating system's reason only.
    #[error("{0}")]
    DataDir(String),
    /// The keyring or the build is not as the app needs; the sentence names files and
    /// operating-system errors only.
    #[error("{0}")]
    Setup(String),
    /// Anything else: a fault in the app, nothing a crew can fix. The detail is in the log.
    #[error(
        "something went wrong inside the app and nothing was changed. If it happens again, tell your IT team"
    )]
    Internal,
}

impl StoreProblem {
    /// Maps a store error for the screen and writes its detail to the log, once. The log line
    /// holds the store's own description, which keeps serde's category and position and
    /// SQLite's codes but never a document's text.
    pub fn report(error: StoreError) -> Self {
        let problem = Self::from_error(&error);
        match &problem {
            StoreProblem::WrongPassphrase
            | StoreProblem::RateLimited { .. }
            | StoreProblem::UnknownUser(_)
            | StoreProblem::ChooseUser(_)
            | StoreProblem::UserExists(_)
            | StoreProblem::NotInitialised
            | StoreProblem::AlreadyExists
            | StoreProblem::RecordNotFound
            | StoreProblem::Immutable
            | StoreProblem::NeedsReason
            | StoreProblem::TabletRetiring
            | StoreProblem::Incomplete(_)
            | StoreProblem::SignerUnavailable
            | StoreProblem::Locked => tracing::info!(error = %error, "store request refused"),
            StoreProblem::ReadOnly | StoreProblem::DiskFull | StoreProblem::StorageFailed => {
                tracing::warn!(error = %error, "store storage failure")
            }
            StoreProblem::StoreUnreadable
            | StoreProblem::NewerVersion { .. }
            | StoreProblem::RecordDamaged
            | StoreProblem::DataDir(_)
            | StoreProblem::Setup(_)
            | StoreProblem::Internal => tracing::error!(error = %error, "store failure"),
        }
        problem
    }

    /// The mapping itself, without logging.
    fn from_error(error: &StoreError) -> Self {
        match error {
            StoreError::NotInitialised(_) => StoreProblem::NotInitialised,
            StoreError::AlreadyExists(_) => StoreProblem::AlreadyExists,
            StoreError::UnknownUser(name) => StoreProblem::UnknownUser(name.clone()),
            StoreError::ChooseUser(names) => StoreProblem::ChooseUser(names.clone()),
            StoreError::UserExists(name) => StoreProblem::UserExists(name.clone()),
            StoreError::WrongPassphrase => StoreProblem::WrongPassphrase,
            StoreError::RateLimited { wait_secs } => StoreProblem::RateLimited {
                wait_secs: *wait_secs,
            },
            StoreError::Unreadable => StoreProblem::StoreUnreadable,
            StoreError::NewerVersion { found, supported } => StoreProblem::NewerVersion {
                found: *found,
                supported: *supported,
            },
            StoreError::ReadOnly => StoreProblem::ReadOnly,
            StoreError::DiskFull => StoreProblem::DiskFull,
            StoreError::StorageFailed => StoreProblem::StorageFailed,
            StoreError::NotFound => StoreProblem::RecordNotFound,
            StoreError::Immutable => StoreProblem::Immutable,
            StoreError::AmendmentNeedsReason => StoreProblem::NeedsReason,
            StoreError::TabletRetiring => StoreProblem::TabletRetiring,
            StoreError::Incomplete(labels) => StoreProblem::Incomplete(labels.clone()),
            StoreError::Document(_) => StoreProblem::RecordDamaged,
            StoreError::Locked => StoreProblem::Locked,
            StoreError::SignerUnavailable => StoreProblem::SignerUnavailable,
            StoreError::DataDir { .. } => StoreProblem::DataDir(error.to_string()),
            StoreError::WeakPassphrase(_) => StoreProblem::Setup(error.to_string()),
            StoreError::KeyringMissing(_) | StoreError::Keyring(_) | StoreError::NotEncrypted => {
                StoreProblem::Setup(error.to_string())
            }
            StoreError::Key(crate::crypto::KeyError::WrongPassphrase) => {
                StoreProblem::WrongPassphrase
            }
            StoreError::Key(_) | StoreError::Sql(_) => StoreProblem::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_error_reads_as_a_damaged_record_without_serde_text() {
        let err = serde_json::from_str::<crate::model::Encounter>(r#"{"notes": "Zebedee"#)
            .map_err(StoreError::from)
            .unwrap_err();
        let problem = StoreProblem::report(err);
        assert_eq!(problem, StoreProblem::RecordDamaged);
        assert!(!problem.to_string().contains("Zebedee"));
    }

    #[test]
    fn faults_inside_the_app_read_as_internal() {
        let err = StoreError::Key(crate::crypto::KeyError::RandomUnavailable);
        assert_eq!(StoreProblem::report(err), StoreProblem::Internal);
    }
}
