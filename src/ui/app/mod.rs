//! The app: [`EprApp`], a thin [`eframe::App`] after rerun's viewer, split by job.
//!
//! - [`state`]: the app's state and the accessors tests read.
//! - [`commands`]: the [`Command`]s screens push and [`EprApp::apply`], the one place they
//!   are carried out.
//! - [`replies`]: what background work answers and how it changes the state.
//! - [`frame`]: per-frame `logic` (replies, timers, idle lock) and `draw`.
//!
//! May import every screen room under `ui`; must never run SQL or block the UI thread: slow
//! work goes to the store worker or a background task and comes back as a reply.

pub mod commands;
pub mod frame;
pub mod replies;
pub mod state;

use std::path::PathBuf;
use std::time::Duration;

pub use commands::{Command, ConnectRequest, ExportFormat};
pub use state::{AppConfig, EprApp, Screen, Timings};

/// Opens the window and runs until it is closed.
pub fn run_app(data_dir: PathBuf) -> Result<(), String> {
    let mut config = AppConfig::default();
    if let Some(secs) = std::env::var("EPR_IDLE_LOCK_SECS")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|s| *s > 0)
    {
        config.idle_lock_after = Duration::from_secs(secs);
    }
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("Ambulance ePR")
            .with_inner_size([1280.0, 800.0])
            .with_min_inner_size([800.0, 560.0]),
        ..Default::default()
    };
    eframe::run_native(
        "Ambulance ePR",
        options,
        Box::new(move |_cc| Ok(Box::new(EprApp::new(data_dir, config)))),
    )
    .map_err(|e| e.to_string())
}
