//! The background sync engine: outbox drain, backoff, feedback pull and status events.
//!
//! Owns: pushing queued record versions to the hosted server, classifying failures
//! (transient, credentials, per-record), pulling supervisor decisions, and publishing a
//! [`SyncStatus`] the UI can draw. It runs on a tokio task with its own store connection and
//! never touches egui: the UI sees sync only through a [`SyncHandle`].
//!
//! [`review`] is the supervisor's client for the review API (sign in, queue, record,
//! decision); it shares the HTTP setup and keeps no state.

pub mod status;

pub use status::{ProblemKind, SyncCommand, SyncHandle, SyncProblem, SyncStatus};

pub mod client;
pub mod engine;
pub mod review;

pub use client::{ApiClient, RequestError};
pub use engine::{CycleReport, Engine, SyncConfig, SyncError, enroll, start, start_on};
pub use review::{ReviewClient, ReviewError};
