//! The crew tablet app (eframe/egui): screens, widgets, theme and the one logic layer that
//! talks to the store.
//!
//! Shape (after rerun's viewer): [`EprApp`] is a thin [`eframe::App`]. Per-frame work that
//! is not drawing (worker replies, debounced autosave, idle lock) runs in `logic`; drawing
//! runs in `ui`. Screens are functions named `*_ui` that edit only the state they are given
//! and push [`Command`]s, which [`EprApp::apply`] carries out in one place.
//!
//! Nothing slow runs on the UI thread. The unlocked [`crate::store::Store`] lives on a
//! worker thread ([`worker`]); key derivation, saves and queries go there as requests and
//! come back over a channel with a repaint. This room never runs SQL and never imports
//! rusqlite (a test reads the source tree to keep it so).
//!
//! Seams for the sync engine and enrolment, which are wired in elsewhere:
//! - [`EprApp::attach_sync`] hands the app a [`SyncHandle`]; the status bar reads it every
//!   frame and "Sync now" / record completion send commands to it. Locking keeps it.
//! - [`EprApp::connect`] receives the first-run choice ([`ConnectRequest`]).
//! - [`app::replies`] applies what the store worker and connection tasks answer.
//!
//! Rooms: [`app`] (state, commands, replies, the frame), [`top_bar`], [`export`] (handover
//! files), [`worker`] (the store thread), [`connection`] (enrolment, demo server, sync start),
//! and one room per screen.

pub mod app;
pub mod connection;
pub mod editor;
pub mod export;
pub mod list;
pub mod prefs;
pub mod problem;
pub mod review;
pub mod shift;
pub mod status_bar;
pub mod tasks;
pub mod theme;
pub mod top_bar;
pub mod unlock;
pub mod widgets;
pub mod worker;

pub use app::{AppConfig, Command, ConnectRequest, EprApp, ExportFormat, Screen, Timings, run_app};
pub use editor::forms;
