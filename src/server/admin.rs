//! Administration from Rust: enrolment codes, accounts (add, disable, reset, sessions),
//! devices (list, revoke), counts and `verify`.
//!
//! The `epr-server` subcommands are thin wrappers over these, and the app's "try it on this
//! computer" mode and the sync tests call them directly against an in-process server.

use crate::model::Revision;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::ingest::{StoredProblem, recheck_stored};
use super::storage::{
    Actor, AuditAction, AuditChainBreak, AuditChainCheckError, AuditEvent, DeviceSummary,
    SessionScope, Stats, Storage, StorageError, UserChange, UserSummary, check_audit_chain,
};
use crate::crypto::{KdfParams, WeakSecret, check_secret, token_hash_hex};

/// How long an enrolment code works.
pub const ENROLMENT_CODE_TTL_HOURS: i64 = 24;

/// Why an administrative action failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("could not make a random code: {0}")]
    Random(String),
    #[error("usernames are 1 to 64 characters: letters, digits, '.', '_' or '-'")]
    InvalidUsername,
    #[error("that password is not strong enough: {0}")]
    WeakPassword(WeakSecret),
    #[error("there is no account called {0}")]
    NoSuchUser(String),
    #[error("device names are 1 to 100 characters")]
    InvalidDeviceName,
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

pub use super::storage::Role;

/// A one-time enrolment code, shown once to the administrator; only its hash is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolmentCode {
    /// Grouped for reading aloud, e.g. `K7QM-4XWD-9PHT-2RBN-C6FJ`.
    pub code: String,
    pub expires_at_utc: DateTime<Utc>,
}

/// Crockford-style alphabet: no I, L, O or U, so codes survive being read over a radio.
const CODE_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

pub use crate::protocol::normalise_enrolment_code;

/// Creates an enrolment code for a device called `device_name`, valid for 24 hours.
pub async fn create_enrolment_code(
    storage: &dyn Storage,
    device_name: &str,
) -> Result<EnrolmentCode, AdminError> {
    create_enrolment_code_expiring(
        storage,
        device_name,
        Utc::now() + Duration::hours(ENROLMENT_CODE_TTL_HOURS),
    )
    .await
}

/// As [`create_enrolment_code`] with an explicit expiry (tests use one in the past).
pub async fn create_enrolment_code_expiring(
    storage: &dyn Storage,
    device_name: &str,
    expires_at_utc: DateTime<Utc>,
) -> Result<EnrolmentCode, AdminError> {
    let name = device_name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AdminError::InvalidDeviceName);
    }
    let bytes: [u8; 20] =
        crate::crypto::random_bytes().map_err(|e| AdminError::Random(e.to_string()))?;
    let chars: Vec<char> = bytes
        .iter()
        .map(|b| char::from(CODE_ALPHABET[usize::from(b % 32)]))
        .collect();
    let code = chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-");
    storage
        .create_enrolment_code(
            &token_hash_hex(&normalise_enrolment_code(&code)),
            name,
            Utc::now(),
            expires_at_utc,
        )
        .await?;
    Ok(EnrolmentCode {
        code,
        expires_at_utc,
    })
}

/// Checks a username's shape.
pub fn valid_username(username: &str) -> bool {
    !username.is_empty()
        && username.len() <= 64
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Adds an account with an Argon2id password hash. The binary passes
/// [`KdfParams::INTERACTIVE`]; tests may pass cheaper parameters.
pub async fn add_user(
    storage: &dyn Storage,
    username: &str,
    role: Role,
    password: &str,
    kdf: KdfParams,
) -> Result<(), AdminError> {
    if !valid_username(username) {
        return Err(AdminError::InvalidUsername);
    }
    let hash = strong_password_hash(username, password, kdf).await?;
    storage.add_user(username, role, &hash, Utc::now()).await?;
    Ok(())
}

/// Checks a new password's strength (the username counts against it) and hashes it.
async fn strong_password_hash(
    username: &str,
    password: &str,
    kdf: KdfParams,
) -> Result<String, AdminError> {
    check_secret(password, &[username]).map_err(AdminError::WeakPassword)?;
    let password = zeroize::Zeroizing::new(password.to_owned());
    tokio::task::spawn_blocking(move || crate::crypto::hash_password(&password, kdf))
        .await
        .map_err(|e| AdminError::Hashing(e.to_string()))?
        .map_err(|e| AdminError::Hashing(e.to_string()))
}

/// Sets a new password: every session of the account ends and its failed-login counts clear.
pub async fn reset_password(
    storage: &dyn Storage,
    username: &str,
    password: &str,
    kdf: KdfParams,
) -> Result<(), AdminError> {
    let hash = strong_password_hash(username, password, kdf).await?;
    change_user(storage, username, UserChange::Password(hash)).await
}

/// Disables an account (a leaver): its sessions end at once and logins are refused.
pub async fn disable_user(storage: &dyn Storage, username: &str) -> Result<(), AdminError> {
    change_user(storage, username, UserChange::Disable).await
}

/// Lets a disabled account log in again.
pub async fn enable_user(storage: &dyn Storage, username: &str) -> Result<(), AdminError> {
    change_user(storage, username, UserChange::Enable).await
}

async fn change_user(
    storage: &dyn Storage,
    username: &str,
    change: UserChange,
) -> Result<(), AdminError> {
    if storage.change_user(username, &change, Utc::now()).await? {
        Ok(())
    } else {
        Err(AdminError::NoSuchUser(username.to_owned()))
    }
}

/// Ends every session of an account (a lost laptop); returns how many ended.
pub async fn revoke_sessions(storage: &dyn Storage, username: &str) -> Result<u64, AdminError> {
    if storage.user_by_name(username).await?.is_none() {
        return Err(AdminError::NoSuchUser(username.to_owned()));
    }
    Ok(storage
        .end_sessions(
            &SessionScope::User(username.to_owned()),
            &Actor::Admin,
            Utc::now(),
        )
        .await?)
}

/// Every account, without password hashes.
pub async fn list_users(storage: &dyn Storage) -> Result<Vec<UserSummary>, AdminError> {
    Ok(storage.list_users(Utc::now()).await?)
}

/// Every enrolled device, revoked or not.
pub async fn list_devices(storage: &dyn Storage) -> Result<Vec<DeviceSummary>, AdminError> {
    Ok(storage.list_devices().await?)
}

/// Revokes a device: its token stops working at once; its records stay. False if unknown.
pub async fn revoke_device(storage: &dyn Storage, device_id: Uuid) -> Result<bool, AdminError> {
    Ok(storage.revoke_device(device_id, Utc::now()).await?)
}

/// Whole-database counts.
pub async fn stats(storage: &dyn Storage) -> Result<Stats, AdminError> {
    Ok(storage.stats().await?)
}

/// One stored version that failed its re-check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadVersion {
    pub record_id: Uuid,
    pub revision: Revision,
    pub problem: &'static str,
}

/// The result of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub versions_checked: u64,
    pub bad_versions: Vec<BadVersion>,
    pub audit_entries_checked: u64,
    /// Where the audit chain breaks, if it does.
    pub audit_chain_break: Option<String>,
}

impl VerifyReport {
    /// True when every version and the audit chain hold.
    pub fn is_clean(&self) -> bool {
        self.bad_versions.is_empty() && self.audit_chain_break.is_none()
    }
}

/// Re-checks every stored version's content hash and device signature, and the audit chain.
/// Reads every document, so the run itself is audited.
pub async fn verify(storage: &dyn Storage) -> Result<VerifyReport, AdminError> {
    let mut after = 0i64;
    let mut checked = 0u64;
    let mut bad = Vec::new();
    loop {
        let page = storage.versions_after(after, 500).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        checked += page.len() as u64;
        let page_bad = tokio::task::spawn_blocking(move || {
            page.iter()
                .filter_map(|v| {
                    recheck_stored(v).err().map(|p: StoredProblem| BadVersion {
                        record_id: v.record_id,
                        revision: v.revision,
                        problem: p.describe(),
                    })
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| AdminError::Hashing(e.to_string()))?;
        bad.extend(page_bad);
    }
    let versions_checked = checked;
    let (audit_entries_checked, audit_chain_break) = match check_audit_chain(storage).await {
        Ok(n) => (n, None),
        Err(AuditChainCheckError::Broken(AuditChainBreak { seq, problem })) => {
            (0, Some(format!("entry {seq}: {problem}")))
        }
        Err(AuditChainCheckError::Storage(e)) => return Err(e.into()),
    };
    storage
        .append_audit(
            &[AuditEvent::new(
                &Actor::Admin,
                AuditAction::Verified,
                format!("versions={versions_checked} bad={}", bad.len()),
            )],
            Utc::now(),
        )
        .await?;
    Ok(VerifyReport {
        versions_checked,
        bad_versions: bad,
        audit_entries_checked,
        audit_chain_break,
    })
}
