//! The review settings kept on disk: the review server's address, so a supervisor does not
//! retype it, and each server's log key as this computer first saw it (pinned, so the app can
//! check records against it: see `review_client::proof`). A small plain JSON file beside the
//! store; never a token, a username or any patient data.

use std::path::{Path, PathBuf};

/// Environment variable that prefills the address (takes precedence over the file).
pub const SERVER_ENV: &str = "EPR_REVIEW_SERVER";

/// The settings file's name in the data directory.
pub const FILE_NAME: &str = "review-server.json";

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct ReviewSettings {
    server_url: String,
    /// Log verifier key by server address.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    log_keys: std::collections::BTreeMap<String, String>,
}

fn load(data_dir: &Path) -> ReviewSettings {
    std::fs::read(path(data_dir))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<ReviewSettings>(&bytes).ok())
        .unwrap_or_default()
}

fn save(data_dir: &Path, settings: &ReviewSettings) -> std::io::Result<()> {
    std::fs::create_dir_all(data_dir)?;
    crate::fs_atomic::write_json(&path(data_dir), settings)
}

/// The log key pinned for `server_url`, if any.
pub fn pinned_log_key(data_dir: &Path, server_url: &str) -> Option<String> {
    load(data_dir).log_keys.get(server_url).cloned()
}

/// Pins (or, after a checked rotation, replaces) the log key for `server_url`.
pub fn pin_log_key(data_dir: &Path, server_url: &str, vkey: &str) -> std::io::Result<()> {
    let mut settings = load(data_dir);
    settings
        .log_keys
        .insert(server_url.to_owned(), vkey.to_owned());
    save(data_dir, &settings)
}

/// Where the address is kept.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

/// The address to prefill: `EPR_REVIEW_SERVER`, else the remembered one, else empty.
pub fn initial_server_url(data_dir: &Path) -> String {
    if let Ok(url) = std::env::var(SERVER_ENV)
        && !url.trim().is_empty()
    {
        return url.trim().to_owned();
    }
    load(data_dir).server_url
}

/// Remembers `server_url`, replacing the file atomically (see [`crate::fs_atomic`]).
pub fn save_server_url(data_dir: &Path, server_url: &str) -> std::io::Result<()> {
    let mut settings = load(data_dir);
    settings.server_url = server_url.to_owned();
    save(data_dir, &settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_round_trips_and_nothing_else_is_written() {
        let dir = tempfile::tempdir().unwrap();
        save_server_url(dir.path(), "https://epr.example").unwrap();
        let text = std::fs::read_to_string(path(dir.path())).unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            serde_json::json!({"server_url": "https://epr.example"})
        );
        if std::env::var(SERVER_ENV).is_err() {
            assert_eq!(initial_server_url(dir.path()), "https://epr.example");
        }
    }
}
