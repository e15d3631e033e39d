//! The database key and its wrapping under a user's PIN or passphrase.
//!
//! The store is encrypted with one random 256-bit key. That key is never stored in the clear:
//! each user has a [`WrappedKey`], the database key sealed with AES-256-GCM under a key
//! derived from their PIN with Argon2id and a per-user salt. Several users can therefore
//! unlock the same tablet, and changing a PIN re-wraps the key without re-encrypting data.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::random_bytes;

/// Errors from key generation, derivation and unwrapping. None of them carries secret data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the passphrase or PIN is not correct")]
    WrongPassphrase,
    #[error("the operating system's random number source is unavailable")]
    RandomUnavailable,
    #[error("the key derivation parameters are invalid")]
    BadKdfParams,
    #[error("the wrapped key is malformed")]
    Malformed,
}

/// Argon2id cost parameters, stored beside each wrapped key so they can be raised later
/// without locking anyone out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl KdfParams {
    /// The default for unlocking a tablet: 128 MiB, 3 passes, 1 lane. Measured at about
    /// 0.3 s on the reference machine (see BENCHMARKS.md): slow for a guesser with a stolen
    /// tablet, fast enough for a crew member at the roadside.
    pub const INTERACTIVE: KdfParams = KdfParams {
        memory_kib: 128 * 1024,
        iterations: 3,
        parallelism: 1,
    };

    /// Cheap parameters for tests that create many stores; never used by the binaries.
    pub const FAST_FOR_TESTS: KdfParams = KdfParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };
}

/// Runs Argon2id and returns a 32-byte key in a zeroizing buffer.
pub(crate) fn argon2id(
    secret: &[u8],
    salt: &[u8],
    params: KdfParams,
) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let p = argon2::Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        Some(32),
    )
    .map_err(|_| KeyError::BadKdfParams)?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p);
    let mut out = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(secret, salt, out.as_mut())
        .map_err(|_| KeyError::BadKdfParams)?;
    Ok(out)
}

/// The store's 256-bit encryption key. Wiped from memory when dropped.
pub struct DatabaseKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for DatabaseKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DatabaseKey(..)")
    }
}

impl DatabaseKey {
    /// A new random key.
    pub fn generate() -> Result<Self, KeyError> {
        Ok(Self(Zeroizing::new(random_bytes()?)))
    }

    /// Wraps raw key bytes (from a second connection's copy of an unlocked key).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The raw key bytes, for handing to SQLCipher.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The SQLCipher raw-key literal `x'<64 hex digits>'`, in a zeroizing string.
    pub fn sqlcipher_literal(&self) -> Zeroizing<String> {
        let mut s = Zeroizing::new(String::with_capacity(67));
        s.push_str("x'");
        for b in self.0.iter() {
            s.push_str(&format!("{b:02x}"));
        }
        s.push('\'');
        s
    }
}

/// The database key sealed under one user's PIN. Safe to store in the clear.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedKey {
    pub kdf: KdfParams,
    /// Hex, 16 bytes.
    pub salt_hex: String,
    /// Hex, 12 bytes.
    pub nonce_hex: String,
    /// Hex: the 32-byte key plus the 16-byte GCM tag.
    pub sealed_hex: String,
}

/// Binds a wrapped key to its purpose, so it cannot be replayed as anything else.
const WRAP_AAD: &[u8] = b"ambulance-epr database key v1";

fn sealing_key(passphrase: &str, salt: &[u8], kdf: KdfParams) -> Result<LessSafeKey, KeyError> {
    let kek = argon2id(passphrase.as_bytes(), salt, kdf)?;
    let unbound = UnboundKey::new(&AES_256_GCM, kek.as_slice()).map_err(|_| KeyError::Malformed)?;
    Ok(LessSafeKey::new(unbound))
}

impl WrappedKey {
    /// Seals `key` under `passphrase` with a fresh salt and nonce.
    pub fn wrap(key: &DatabaseKey, passphrase: &str, kdf: KdfParams) -> Result<Self, KeyError> {
        let salt: [u8; 16] = random_bytes()?;
        let nonce: [u8; 12] = random_bytes()?;
        let sealing = sealing_key(passphrase, &salt, kdf)?;
        let mut buf = Zeroizing::new(key.as_bytes().to_vec());
        sealing
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(WRAP_AAD),
                &mut *buf,
            )
            .map_err(|_| KeyError::Malformed)?;
        Ok(Self {
            kdf,
            salt_hex: hex::encode(salt),
            nonce_hex: hex::encode(nonce),
            sealed_hex: hex::encode(&*buf),
        })
    }

    /// Recovers the database key; a wrong passphrase fails GCM authentication.
    pub fn unwrap_key(&self, passphrase: &str) -> Result<DatabaseKey, KeyError> {
        let salt = hex::decode(&self.salt_hex).map_err(|_| KeyError::Malformed)?;
        let nonce: [u8; 12] = hex::decode(&self.nonce_hex)
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or(KeyError::Malformed)?;
        let mut sealed =
            Zeroizing::new(hex::decode(&self.sealed_hex).map_err(|_| KeyError::Malformed)?);
        let opening = sealing_key(passphrase, &salt, self.kdf)?;
        let plain = opening
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(WRAP_AAD),
                &mut sealed,
            )
            .map_err(|_| KeyError::WrongPassphrase)?;
        let bytes: [u8; 32] = plain.try_into().map_err(|_| KeyError::Malformed)?;
        Ok(DatabaseKey(Zeroizing::new(bytes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_and_unwrap() {
        let key = DatabaseKey::generate().unwrap();
        let w = WrappedKey::wrap(&key, "1234", KdfParams::FAST_FOR_TESTS).unwrap();
        let back = w.unwrap_key("1234").unwrap();
        assert_eq!(back.as_bytes(), key.as_bytes());
    }

    #[test]
    fn wrong_passphrase_is_refused() {
        let key = DatabaseKey::generate().unwrap();
        let w = WrappedKey::wrap(&key, "1234", KdfParams::FAST_FOR_TESTS).unwrap();
        assert_eq!(w.unwrap_key("1235").unwrap_err(), KeyError::WrongPassphrase);
    }

    #[test]
    fn two_users_share_one_key_with_different_salts() {
        let key = DatabaseKey::generate().unwrap();
        let a = WrappedKey::wrap(&key, "alpha", KdfParams::FAST_FOR_TESTS).unwrap();
        let b = WrappedKey::wrap(&key, "bravo", KdfParams::FAST_FOR_TESTS).unwrap();
        assert_ne!(a.salt_hex, b.salt_hex);
        assert_eq!(a.unwrap_key("alpha").unwrap().as_bytes(), key.as_bytes());
        assert_eq!(b.unwrap_key("bravo").unwrap().as_bytes(), key.as_bytes());
        assert!(a.unwrap_key("bravo").is_err());
    }

    #[test]
    fn tampered_wrap_is_refused() {
        let key = DatabaseKey::generate().unwrap();
        let mut w = WrappedKey::wrap(&key, "1234", KdfParams::FAST_FOR_TESTS).unwrap();
        let mut sealed = hex::decode(&w.sealed_hex).unwrap();
        sealed[0] ^= 1;
        w.sealed_hex = hex::encode(sealed);
        assert!(w.unwrap_key("1234").is_err());
    }

    #[test]
    fn literal_is_sqlcipher_raw_key_syntax() {
        let key = DatabaseKey::generate().unwrap();
        let lit = key.sqlcipher_literal();
        assert_eq!(lit.len(), 67);
        assert!(lit.starts_with("x'") && lit.ends_with('\''));
    }
}
