//! The keyring file: each user's wrapped database key, their own signing key sealed beside it,
//! and their failed-unlock counter.
//!
//! It sits beside the store as `keyring.json` because the store itself cannot be read before
//! it is unlocked. It holds no patient data and no usable key: only keys sealed under each
//! user's PIN (see [`crate::crypto::keys`]). Writes go through [`crate::fs_atomic`] (temp file,
//! fsync, rename, mode 0600) so a flat battery mid-write leaves the old keyring intact.

use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::crypto::{SealedSigner, WrappedKey};

/// The keyring format this app writes; a higher one is refused (written by a newer app).
/// Format 3 added each user's sealed signing key: an older app would drop it on saving.
pub const KEYRING_FORMAT: u32 = 3;

/// Failed attempts allowed before each further attempt must wait.
pub const FREE_ATTEMPTS: u32 = 3;
/// The longest wait between attempts.
pub const MAX_LOCKOUT_SECS: i64 = 300;

/// One user who can unlock this store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyringUser {
    pub name: String,
    pub wrapped: WrappedKey,
    #[serde(default)]
    pub failed_attempts: u32,
    #[serde(default)]
    pub locked_until_utc: Option<DateTime<Utc>>,
    /// The user's own signing key, sealed under the same unlock secret as `wrapped`. Absent
    /// in keyrings from before per-user signatures: made at the user's next passphrase unlock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<SealedSigner>,
}

impl KeyringUser {
    /// Seconds until another attempt is allowed, if the user is locked out at `now`.
    pub fn wait_secs(&self, now: DateTime<Utc>) -> Option<i64> {
        self.locked_until_utc
            .filter(|until| *until > now)
            .map(|until| (until - now).num_seconds().max(1))
    }

    /// Records a failed attempt: after [`FREE_ATTEMPTS`] the wait doubles each time
    /// (1 s, 2 s, 4 s ...) up to [`MAX_LOCKOUT_SECS`].
    pub fn record_failure(&mut self, now: DateTime<Utc>) {
        self.failed_attempts = self.failed_attempts.saturating_add(1);
        if self.failed_attempts >= FREE_ATTEMPTS {
            let exp = (self.failed_attempts - FREE_ATTEMPTS).min(16);
            let secs = (1i64 << exp).min(MAX_LOCKOUT_SECS);
            self.locked_until_utc = Some(now + Duration::seconds(secs));
        }
    }

    /// Clears the counter after a successful unlock.
    pub fn record_success(&mut self) {
        self.failed_attempts = 0;
        self.locked_until_utc = None;
    }
}

/// The keyring document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Keyring {
    pub format: u32,
    pub users: Vec<KeyringUser>,
}

/// Problems reading or writing the keyring. Messages name the file, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("cannot read the keyring {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the keyring {path} is damaged and cannot be read (it has been left as it is)")]
    Damaged { path: PathBuf },
    #[error(
        "the keyring {path} is in format {format}, written by a newer version of this app; update the app (the keyring has been left as it is)"
    )]
    NewerFormat { path: PathBuf, format: u32 },
    #[error("cannot write the keyring {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Keyring {
    /// A keyring with one user.
    pub fn new(user: KeyringUser) -> Self {
        Self {
            format: KEYRING_FORMAT,
            users: vec![user],
        }
    }

    /// Loads the keyring, or `Ok(None)` if the file does not exist.
    pub fn load(path: &Path) -> Result<Option<Self>, KeyringError> {
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(KeyringError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let keyring: Self = serde_json::from_str(&text).map_err(|_| KeyringError::Damaged {
            path: path.to_owned(),
        })?;
        if keyring.format > KEYRING_FORMAT || keyring.format == 0 {
            return Err(KeyringError::NewerFormat {
                path: path.to_owned(),
                format: keyring.format,
            });
        }
        Ok(Some(keyring))
    }

    /// Writes the keyring atomically and readable by its owner only (see [`crate::fs_atomic`]),
    /// so a flat battery mid-write leaves the old keyring intact.
    pub fn save(&self, path: &Path) -> Result<(), KeyringError> {
        crate::fs_atomic::write_json(path, self).map_err(|source| KeyringError::Write {
            path: path.to_owned(),
            source,
        })
    }

    /// The user named `name`.
    pub fn user_mut(&mut self, name: &str) -> Option<&mut KeyringUser> {
        self.users.iter_mut().find(|u| u.name == name)
    }

    /// Users' names, for the unlock screen's picker.
    pub fn user_names(&self) -> Vec<String> {
        self.users.iter().map(|u| u.name.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{DatabaseKey, KdfParams};

    fn user() -> KeyringUser {
        let key = DatabaseKey::generate().unwrap();
        KeyringUser {
            name: "crew".into(),
            wrapped: WrappedKey::wrap(&key, "1234", KdfParams::FAST_FOR_TESTS, "x").unwrap(),
            failed_attempts: 0,
            locked_until_utc: None,
            signer: None,
        }
    }

    #[test]
    fn delay_grows_after_free_attempts_and_is_capped() {
        let now = Utc::now();
        let mut u = user();
        u.record_failure(now);
        u.record_failure(now);
        assert_eq!(u.wait_secs(now), None, "two free failures");
        u.record_failure(now);
        assert_eq!(u.wait_secs(now), Some(1));
        u.record_failure(now);
        assert_eq!(u.wait_secs(now), Some(2));
        u.record_failure(now);
        assert_eq!(u.wait_secs(now), Some(4));
        for _ in 0..30 {
            u.record_failure(now);
        }
        assert_eq!(u.wait_secs(now), Some(MAX_LOCKOUT_SECS));
        u.record_success();
        assert_eq!(u.wait_secs(now), None);
    }

    #[test]
    fn save_and_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        assert!(Keyring::load(&path).unwrap().is_none());
        let k = Keyring::new(user());
        k.save(&path).unwrap();
        assert_eq!(Keyring::load(&path).unwrap(), Some(k));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(
                mode & 0o777,
                0o600,
                "wrapped keys are readable by the owner only"
            );
        }
        std::fs::write(&path, "{not json").unwrap();
        assert!(matches!(
            Keyring::load(&path),
            Err(KeyringError::Damaged { .. })
        ));
    }
}
