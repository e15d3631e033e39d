//! Keys, wrapping, signing and hashing.
//!
//! Owns: the device store's random 256-bit database key and its per-user wrapping under
//! Argon2id (PIN or passphrase) with AES-256-GCM; the device's Ed25519 signing key and each
//! user's own signing key sealed beside their database key; the
//! canonical serialisation and SHA-256 content hash that signatures cover; password hashing
//! for server accounts and token hashing. Uses `ring`, `argon2` and `zeroize` only, never
//! touches disk or the network: callers decide where wrapped keys live.
//! Secrets live in [`zeroize::Zeroizing`] buffers and are wiped when dropped.

pub mod canonical;
pub mod keys;
pub mod secret;
pub mod signer;
pub mod signing;
pub mod strength;

pub use canonical::{canonical_json, content_sha256_hex, signing_payload};
pub use keys::{DatabaseKey, KdfParams, KeyError, UnlockSecret, WrappedKey};
pub use secret::SecretText;
pub use signer::{
    SealedSigner, SignedVersion, SignerIdentity, UserSigner, VersionKey, VersionSignedFields,
    signed_time,
};
pub use signing::{DeviceSigningKey, SignatureError, verify_signature};
pub use strength::{WeakSecret, check_secret};

use ring::rand::{SecureRandom, SystemRandom};

/// Fills a buffer from the operating system's secure random source.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], KeyError> {
    let mut out = [0u8; N];
    SystemRandom::new()
        .fill(&mut out)
        .map_err(|_| KeyError::RandomUnavailable)?;
    Ok(out)
}

/// A new random bearer token (256 bits, URL-safe base64), for device and session tokens.
pub fn new_token() -> Result<String, KeyError> {
    use base64::Engine;
    let bytes: [u8; 32] = random_bytes()?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// SHA-256 of a token, hex: what a server stores instead of the token itself.
pub fn token_hash_hex(token: &str) -> String {
    hex::encode(ring::digest::digest(
        &ring::digest::SHA256,
        token.as_bytes(),
    ))
}

/// Hex SHA-256 of arbitrary bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Hashes a server account password with Argon2id into a self-describing string
/// (`argon2id$v=19$m=..,t=..,p=..$salt$hash`, base64 without padding).
pub fn hash_password(password: &str, params: KdfParams) -> Result<String, KeyError> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    let salt: [u8; 16] = random_bytes()?;
    let hash = keys::argon2id(password.as_bytes(), &salt, params)?;
    Ok(format!(
        "argon2id$v=19$m={},t={},p={}${}${}",
        params.memory_kib,
        params.iterations,
        params.parallelism,
        b64.encode(salt),
        b64.encode(hash.as_slice())
    ))
}

/// Checks a password against [`hash_password`] output. A malformed stored hash is `false`.
pub fn verify_password(password: &str, stored: &str) -> bool {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    let parts: Vec<&str> = stored.split('$').collect();
    let [alg, _version, params, salt, hash] = parts.as_slice() else {
        return false;
    };
    if *alg != "argon2id" {
        return false;
    }
    let mut m = None;
    let mut t = None;
    let mut p = None;
    for kv in params.split(',') {
        match kv.split_once('=') {
            Some(("m", v)) => m = v.parse().ok(),
            Some(("t", v)) => t = v.parse().ok(),
            Some(("p", v)) => p = v.parse().ok(),
            _ => {}
        }
    }
    let (Some(memory_kib), Some(iterations), Some(parallelism)) = (m, t, p) else {
        return false;
    };
    let (Ok(salt), Ok(expected)) = (b64.decode(salt), b64.decode(hash)) else {
        return false;
    };
    let params = KdfParams {
        memory_kib,
        iterations,
        parallelism,
    };
    match keys::argon2id(password.as_bytes(), &salt, params) {
        Ok(actual) => constant_time_eq(actual.as_slice(), &expected),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_hash_round_trip() {
        let h = hash_password("correct horse", KdfParams::FAST_FOR_TESTS).unwrap();
        assert!(h.starts_with("argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!verify_password("correct horse", "garbage"));
    }

    #[test]
    fn tokens_are_random_and_hashes_stable() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_ne!(a, b);
        assert_eq!(token_hash_hex(&a), token_hash_hex(&a));
        assert_eq!(token_hash_hex(&a).len(), 64);
    }
}
