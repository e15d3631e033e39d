//! Offline-first electronic patient record for ambulance crews.
//!
//! Rooms (see `DESIGN.md`), one line each on what they own:
//!
//! - [`model`]: the clinical record, NEWS2, GCS, NHS number, validation and handover text;
//!   no I/O and no test data.
//! - [`crypto`]: key derivation and wrapping, record signing, canonical hashing.
//! - [`protocol`]: the versioned JSON messages between device and server.
//! - [`store`]: the encrypted device store, the only place with device SQL.
//! - [`fs_atomic`]: atomic, fsynced, owner-only replacement of the small JSON files beside the
//!   store (keyring, display preferences, review address).
//! - [`demo`]: the one generator of synthetic records (999 test-range NHS numbers) for
//!   `epr demo-data`, demo mode, tests and benchmarks.
//! - [`transparency`]: the server's append-only log as server and tablets both see it: leaves,
//!   RFC 6962 hashing, signed checkpoints, inclusion and consistency proofs; no I/O.
//! - [`export`]: hospital handover documents (FHIR R4 bundle, PDF) from one record version.
//! - [`bulk_export`]: the trust's export of everything (FHIR NDJSON and a manifest) into a new
//!   directory, whole or not at all, for the tablet and the server alike.
//! - `sync` (feature `app`): the background sync engine, outbox drain, feedback pull and
//!   status events.
//! - `review_client` (feature `app`): the supervisor's HTTP client for the review API.
//! - `server` (feature `server`): the hosted replica: API, credentials, SQLite and PostgreSQL
//!   storage, audit and admin actions.
//! - `ui` (feature `app`): the egui app, its screens and the one logic layer over the store.
//! - `no_core_dumps` (feature `app`): no core file of a crashed app (decrypted records).
//! - `local_server` (features `app` and `server`): the in-process server behind "Try it on
//!   this computer".

pub mod bulk_export;
pub mod crypto;
pub mod demo;
pub mod export;
pub mod fs_atomic;
#[cfg(all(feature = "app", feature = "server"))]
pub mod local_server;
pub mod model;
#[cfg(feature = "app")]
pub mod no_core_dumps;
pub mod protocol;
#[cfg(feature = "app")]
pub mod review_client;
#[cfg(feature = "server")]
pub mod server;
pub mod store;
#[cfg(feature = "app")]
pub mod sync;
pub mod transparency;
#[cfg(feature = "app")]
pub mod ui;
