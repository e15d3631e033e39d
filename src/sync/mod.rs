//! The background sync engine: outbox drain, backoff, feedback pull and status events.
//!
//! Owns: pushing queued record versions to the hosted server, classifying failures
//! (transient, credentials, per-record), pulling supervisor decisions, and publishing a
//! [`SyncStatus`] the UI can draw. It runs on a tokio task with its own store connection and
//! never touches egui: the UI sees sync only through a [`SyncHandle`].
//!
//! The supervisor's review client is not sync: it lives in [`crate::review_client`].

pub mod status;

pub use status::{ProblemKind, SyncCommand, SyncHandle, SyncProblem, SyncStatus};

pub mod client;
pub mod engine;
pub mod integrity;

pub use client::{ApiClient, RequestError};
pub use engine::{CycleReport, Engine, SyncConfig, SyncError, enroll, start, start_on};
