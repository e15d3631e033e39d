//! The crew's display preferences (theme, idle-lock time), kept between runs.
//!
//! A small plain JSON file, `ui-preferences.json`, beside the store. It holds no patient data
//! and nothing secret, so it lives outside the encrypted store and can be read before unlock
//! (the unlock screen already uses the chosen theme). A damaged file is ignored.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::theme::ThemeChoice;

/// File name inside the data directory.
pub const PREFS_FILE: &str = "ui-preferences.json";

/// What is remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UiPrefs {
    pub dark_theme: bool,
    pub idle_lock_minutes: u64,
}

impl UiPrefs {
    /// The theme as the app uses it.
    pub fn theme(self) -> ThemeChoice {
        if self.dark_theme {
            ThemeChoice::Dark
        } else {
            ThemeChoice::Light
        }
    }

    /// The idle-lock time, 1 to 15 minutes however the file was set: a tablet left unlocked
    /// for longer shows patient data to whoever picks it up.
    pub fn idle_lock_after(self) -> Duration {
        Duration::from_secs(self.idle_lock_minutes.clamp(1, 15) * 60)
    }
}

fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(PREFS_FILE)
}

/// The saved preferences, if there are any readable ones.
pub fn load(data_dir: &Path) -> Option<UiPrefs> {
    let text = std::fs::read_to_string(path(data_dir)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Saves the preferences atomically (see [`crate::fs_atomic`]). Failures are logged, never
/// shown: losing a theme choice is harmless.
pub fn save(data_dir: &Path, prefs: UiPrefs) {
    let result = std::fs::create_dir_all(data_dir)
        .and_then(|()| crate::fs_atomic::write_json(&path(data_dir), &prefs));
    if let Err(e) = result {
        tracing::warn!("display preferences not saved: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damaged_file_ignored() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()), None);
        let p = UiPrefs {
            dark_theme: true,
            idle_lock_minutes: 10,
        };
        save(dir.path(), p);
        assert_eq!(load(dir.path()), Some(p));
        assert_eq!(p.theme(), ThemeChoice::Dark);
        assert_eq!(p.idle_lock_after(), Duration::from_secs(600));
        // A hand-edited file cannot stretch the lock beyond 15 minutes or below 1.
        for (minutes, applied) in [(0, 1), (600, 15), (u64::MAX, 15)] {
            let p = UiPrefs {
                dark_theme: false,
                idle_lock_minutes: minutes,
            };
            assert_eq!(p.idle_lock_after(), Duration::from_secs(applied * 60));
        }
        std::fs::write(dir.path().join(PREFS_FILE), "{broken").unwrap();
        assert_eq!(load(dir.path()), None);
    }
}
