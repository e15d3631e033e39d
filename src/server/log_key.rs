//! The server's log signing key: the Ed25519 key that signs checkpoints, kept in a file
//! outside the database so that whoever can rewrite the database still cannot sign a
//! history the tablets will accept.
//!
//! The file (owner-only, created once and never replaced) is JSON:
//! `{"format": 1, "origin": "...", "private_key_pkcs8": "BASE64"}`. The origin names the log
//! in every checkpoint and is the key's name in the signed note. `epr-server key --public`
//! prints the verifier key (`NAME+KEYID+KEY`) for the trust to keep and publish.

use std::path::{Path, PathBuf};

use base64::Engine;
use serde::{Deserialize, Serialize};

use super::storage::LogHead;
use crate::crypto::DeviceSigningKey;
use crate::transparency::{Checkpoint, LogPublicKey, sign_checkpoint};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The key file's format number.
const KEY_FILE_FORMAT: u32 = 1;

/// Why the key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LogKeyError {
    #[error("cannot read the log signing key {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create the log signing key {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the log signing key {0} is not a key file this server can read (format 1 JSON with origin and private_key_pkcs8)"
    )]
    Malformed(PathBuf),
    #[error("could not make a new key: {0}")]
    Random(String),
    #[error("a log origin is 1 to 100 printable characters without spaces or '+'")]
    BadOrigin,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    format: u32,
    origin: String,
    private_key_pkcs8: String,
}

/// The server's checkpoint signer.
pub struct LogSigner {
    key: DeviceSigningKey,
    origin: String,
}

impl std::fmt::Debug for LogSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogSigner")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

fn check_origin(origin: &str) -> Result<(), LogKeyError> {
    let ok = !origin.is_empty()
        && origin.len() <= 100
        && origin.chars().all(|c| c.is_ascii_graphic() && c != '+');
    if ok {
        Ok(())
    } else {
        Err(LogKeyError::BadOrigin)
    }
}

/// The origin a new key gets when none is given: unique to the key, so two servers never
/// share a log name by accident.
fn default_origin(key: &DeviceSigningKey) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, &key.public_key_bytes());
    format!("ambulance-epr/log/{}", hex::encode(&digest.as_ref()[..6]))
}

impl LogSigner {
    /// A new random key (not saved): for tests and servers that do not need to outlive their
    /// process.
    pub fn generate(origin: Option<&str>) -> Result<Self, LogKeyError> {
        let key = DeviceSigningKey::generate().map_err(|e| LogKeyError::Random(e.to_string()))?;
        let origin = match origin {
            Some(o) => {
                check_origin(o)?;
                o.to_owned()
            }
            None => default_origin(&key),
        };
        Ok(Self { key, origin })
    }

    /// Rebuilds a signer from [`LogSigner::to_file_bytes`] output.
    pub fn from_file_bytes(bytes: &[u8], path: &Path) -> Result<Self, LogKeyError> {
        let malformed = || LogKeyError::Malformed(path.to_owned());
        let file: KeyFile = serde_json::from_slice(bytes).map_err(|_| malformed())?;
        if file.format != KEY_FILE_FORMAT {
            return Err(malformed());
        }
        check_origin(&file.origin).map_err(|_| malformed())?;
        let pkcs8 = zeroize::Zeroizing::new(
            B64.decode(file.private_key_pkcs8.trim())
                .map_err(|_| malformed())?,
        );
        let key = DeviceSigningKey::from_pkcs8(&pkcs8).map_err(|_| malformed())?;
        Ok(Self {
            key,
            origin: file.origin,
        })
    }

    /// The key file's bytes.
    pub fn to_file_bytes(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let file = KeyFile {
            format: KEY_FILE_FORMAT,
            origin: self.origin.clone(),
            private_key_pkcs8: B64.encode(self.key.pkcs8()),
        };
        zeroize::Zeroizing::new(serde_json::to_vec_pretty(&file).unwrap_or_default())
    }

    /// Reads the key at `path`.
    pub fn load(path: &Path) -> Result<Self, LogKeyError> {
        let bytes =
            zeroize::Zeroizing::new(std::fs::read(path).map_err(|source| LogKeyError::Read {
                path: path.to_owned(),
                source,
            })?);
        Self::from_file_bytes(&bytes, path)
    }

    /// Reads the key at `path`, first creating it (owner-only, never replacing a file) if
    /// there is none. Returns whether it was created.
    pub fn load_or_create(path: &Path, origin: Option<&str>) -> Result<(Self, bool), LogKeyError> {
        if path.exists() {
            return Ok((Self::load(path)?, false));
        }
        let signer = Self::generate(origin)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::fs_atomic::create_private_dir_all(dir).map_err(|source| LogKeyError::Write {
                path: path.to_owned(),
                source,
            })?;
        }
        match crate::fs_atomic::write_new(path, &signer.to_file_bytes()) {
            Ok(()) => Ok((signer, true)),
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Ok((Self::load(path)?, false))
            }
            Err(source) => Err(LogKeyError::Write {
                path: path.to_owned(),
                source,
            }),
        }
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The public half, as tablets pin it.
    pub fn public(&self) -> LogPublicKey {
        LogPublicKey {
            name: self.origin.clone(),
            key: self.key.public_key_bytes(),
        }
    }

    /// The checkpoint for `head`, unsigned.
    pub fn checkpoint(&self, head: &LogHead) -> Checkpoint {
        Checkpoint {
            origin: self.origin.clone(),
            size: head.size,
            root: head.root,
        }
    }

    /// The signed checkpoint note for `head`.
    pub fn sign(&self, head: &LogHead) -> String {
        sign_checkpoint(&self.checkpoint(head), &self.key)
    }

    /// The signed note a tablet checks before it takes a reference data set.
    pub fn sign_reference(&self, statement: &crate::transparency::ReferenceStatement) -> String {
        crate::transparency::sign_reference(&self.key, &self.origin, statement)
    }

    /// A new key for the same log, and the rotation statement this (old) key signs for it.
    pub fn successor(&self) -> Result<(LogSigner, String), LogKeyError> {
        let next = Self::generate(Some(&self.origin))?;
        let statement = crate::transparency::sign_rotation(&self.key, &self.origin, &next.public());
        Ok((next, statement))
    }
}

/// Where a rotated-out key is kept: beside the key file, named by its fingerprint.
pub fn retired_key_path(path: &Path, old: &LogPublicKey) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(format!(".retired-{}", old.fingerprint()));
    PathBuf::from(p)
}

/// Replaces the key file at `path` with `next`, keeping the old file beside it
/// ([`retired_key_path`]). The new key is written whole before anything is renamed.
pub fn install_successor(
    path: &Path,
    old: &LogSigner,
    next: &LogSigner,
) -> Result<(), LogKeyError> {
    let write_err = |source| LogKeyError::Write {
        path: path.to_owned(),
        source,
    };
    let mut staged = path.as_os_str().to_owned();
    staged.push(".next");
    let staged = PathBuf::from(staged);
    let _ = std::fs::remove_file(&staged);
    crate::fs_atomic::write_new(&staged, &next.to_file_bytes()).map_err(write_err)?;
    std::fs::rename(path, retired_key_path(path, &old.public())).map_err(write_err)?;
    std::fs::rename(&staged, path).map_err(write_err)?;
    Ok(())
}

/// Where the key lives when `--signing-key` is not given: beside a SQLite database file
/// (`server.db` → `server.db.signing-key`); for PostgreSQL, `epr-server-signing-key.json` in
/// the working directory.
pub fn default_key_path(database_url: &str) -> PathBuf {
    match database_url.strip_prefix("sqlite://") {
        Some(path) if !path.is_empty() => key_path_beside(Path::new(path)),
        _ => PathBuf::from("epr-server-signing-key.json"),
    }
}

/// The key file beside a SQLite database file: `server.db` → `server.db.signing-key`.
pub fn key_path_beside(database_file: &Path) -> PathBuf {
    let mut p = database_file.as_os_str().to_owned();
    p.push(".signing-key");
    PathBuf::from(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_is_created_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.json");
        let (a, created) = LogSigner::load_or_create(&path, Some("test.example/log")).unwrap();
        assert!(created);
        let (b, created) = LogSigner::load_or_create(&path, None).unwrap();
        assert!(!created);
        assert_eq!(a.public(), b.public());
        assert_eq!(b.origin(), "test.example/log");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "key file must be owner-only");
        }
        std::fs::write(&path, b"{\"format\":1}").unwrap();
        let err = LogSigner::load(&path).unwrap_err();
        assert!(err.to_string().contains("not a key file"), "{err}");
        assert!(LogSigner::generate(Some("has space")).is_err());
        assert_eq!(
            default_key_path("sqlite:///var/lib/epr/server.db"),
            PathBuf::from("/var/lib/epr/server.db.signing-key")
        );
    }
}
