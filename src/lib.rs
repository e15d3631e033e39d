//! Offline-first electronic patient record for ambulance crews.
//!
//! Rooms (see `DESIGN.md`): [`model`] (clinical rules, no I/O), [`crypto`] (keys, signing,
//! hashing), [`protocol`] (device-server messages), [`store`] (the encrypted device store),
//! `sync` (background push/pull), `server` (the hosted replica) and `ui` (the egui app).

pub mod crypto;
pub mod demo;
pub mod export;
pub mod fs_atomic;
#[cfg(all(feature = "app", feature = "server"))]
pub mod local_server;
pub mod model;
pub mod protocol;
#[cfg(feature = "app")]
pub mod review_client;
#[cfg(feature = "server")]
pub mod server;
pub mod store;
#[cfg(feature = "app")]
pub mod sync;
#[cfg(feature = "app")]
pub mod ui;
