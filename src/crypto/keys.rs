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
    #[error("the wrapped key is in format {0}, which this version of the app does not know")]
    UnknownFormat(u32),
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

/// The database key sealed under one user's passphrase. Safe to store in the clear.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedKey {
    /// What the seal is bound to: 1, its purpose only (older keyrings); 2, its purpose, its
    /// owner and its KDF parameters, so an entry copied to another user, or whose parameters
    /// were lowered in the file, does not open.
    #[serde(default = "WrappedKey::first_format")]
    pub format: u32,
    pub kdf: KdfParams,
    /// Hex, 16 bytes.
    pub salt_hex: String,
    /// Hex, 12 bytes.
    pub nonce_hex: String,
    /// Hex: the 32-byte key plus the 16-byte GCM tag.
    pub sealed_hex: String,
}

/// Format 1's binding: the purpose only.
const WRAP_AAD_V1: &[u8] = b"ambulance-epr database key v1";

/// The format [`WrappedKey::wrap`] writes.
pub const WRAP_FORMAT: u32 = 2;

/// Format 2's binding: the purpose, the owner and the KDF parameters.
fn wrap_aad_v2(owner: &str, kdf: KdfParams) -> Vec<u8> {
    format!(
        "ambulance-epr database key v2\nowner={owner}\nkdf=argon2id,m={},t={},p={}",
        kdf.memory_kib, kdf.iterations, kdf.parallelism
    )
    .into_bytes()
}

/// A second key derived from the same Argon2id run that opens a user's database key: it seals
/// that user's own signing key (see [`super::signer`]), so unlocking opens both with one
/// key derivation. Wiped from memory when dropped.
pub struct UnlockSecret(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for UnlockSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnlockSecret(..)")
    }
}

impl UnlockSecret {
    /// HKDF-SHA256 of the Argon2id output, with its own label: the AES key that seals the
    /// database key and this secret are independent, and neither reveals the other.
    fn derive(kek: &[u8; 32]) -> Result<Self, KeyError> {
        use ring::hkdf::{HKDF_SHA256, Salt};
        let prk = Salt::new(HKDF_SHA256, b"ambulance-epr unlock secret v1").extract(kek);
        let mut out = Zeroizing::new([0u8; 32]);
        prk.expand(&[b"user signing key seal"], HKDF_SHA256)
            .and_then(|okm| okm.fill(out.as_mut()))
            .map_err(|_| KeyError::Malformed)?;
        Ok(Self(out))
    }

    /// The 32 secret bytes (an AES-256-GCM key).
    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A secret from raw bytes, for tests of the sealing alone.
    #[doc(hidden)]
    pub fn from_bytes_for_tests(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }
}

/// A seal's nonce and sealed bytes (key plus GCM tag) from their hex, in a wiping buffer.
pub(crate) fn sealed_parts(
    nonce_hex: &str,
    sealed_hex: &str,
) -> Result<([u8; 12], Zeroizing<Vec<u8>>), KeyError> {
    let nonce: [u8; 12] = hex::decode(nonce_hex)
        .ok()
        .and_then(|n| n.try_into().ok())
        .ok_or(KeyError::Malformed)?;
    let sealed = Zeroizing::new(hex::decode(sealed_hex).map_err(|_| KeyError::Malformed)?);
    Ok((nonce, sealed))
}

/// The AES key that seals the database key, and the [`UnlockSecret`] beside it, from one
/// Argon2id run.
fn sealing_key(
    passphrase: &str,
    salt: &[u8],
    kdf: KdfParams,
) -> Result<(LessSafeKey, UnlockSecret), KeyError> {
    let kek = argon2id(passphrase.as_bytes(), salt, kdf)?;
    let unbound = UnboundKey::new(&AES_256_GCM, kek.as_slice()).map_err(|_| KeyError::Malformed)?;
    Ok((LessSafeKey::new(unbound), UnlockSecret::derive(&kek)?))
}

impl WrappedKey {
    fn first_format() -> u32 {
        1
    }

    /// Seals `key` under `passphrase` for `owner` (a user's name, or another purpose such as
    /// an in-memory PIN) with a fresh salt and nonce, in [`WRAP_FORMAT`].
    pub fn wrap(
        key: &DatabaseKey,
        passphrase: &str,
        kdf: KdfParams,
        owner: &str,
    ) -> Result<Self, KeyError> {
        Ok(Self::wrap_with_secret(key, passphrase, kdf, owner)?.0)
    }

    /// [`WrappedKey::wrap`], also returning the [`UnlockSecret`] the same passphrase opens
    /// (to seal the user's signing key beside it).
    pub fn wrap_with_secret(
        key: &DatabaseKey,
        passphrase: &str,
        kdf: KdfParams,
        owner: &str,
    ) -> Result<(Self, UnlockSecret), KeyError> {
        Self::seal(key, passphrase, kdf, WRAP_FORMAT, &wrap_aad_v2(owner, kdf))
    }

    /// Seals in format 1, as older keyrings were written: for tests of the upgrade only.
    #[doc(hidden)]
    pub fn wrap_format_1_for_tests(
        key: &DatabaseKey,
        passphrase: &str,
        kdf: KdfParams,
    ) -> Result<Self, KeyError> {
        Ok(Self::seal(key, passphrase, kdf, 1, WRAP_AAD_V1)?.0)
    }

    fn seal(
        key: &DatabaseKey,
        passphrase: &str,
        kdf: KdfParams,
        format: u32,
        aad: &[u8],
    ) -> Result<(Self, UnlockSecret), KeyError> {
        let salt: [u8; 16] = random_bytes()?;
        let nonce: [u8; 12] = random_bytes()?;
        let (sealing, secret) = sealing_key(passphrase, &salt, kdf)?;
        let mut buf = Zeroizing::new(key.as_bytes().to_vec());
        sealing
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut *buf,
            )
            .map_err(|_| KeyError::Malformed)?;
        Ok((
            Self {
                format,
                kdf,
                salt_hex: hex::encode(salt),
                nonce_hex: hex::encode(nonce),
                sealed_hex: hex::encode(&*buf),
            },
            secret,
        ))
    }

    /// Recovers the database key sealed for `owner`; a wrong passphrase (or owner, or altered
    /// parameters) fails GCM authentication. An unknown format is refused before any work.
    pub fn unwrap_key(&self, passphrase: &str, owner: &str) -> Result<DatabaseKey, KeyError> {
        Ok(self.open(passphrase, owner)?.0)
    }

    /// [`WrappedKey::unwrap_key`], also returning the [`UnlockSecret`] that opens the user's
    /// sealed signing key: one key derivation for both.
    pub fn open(
        &self,
        passphrase: &str,
        owner: &str,
    ) -> Result<(DatabaseKey, UnlockSecret), KeyError> {
        let aad = match self.format {
            1 => WRAP_AAD_V1.to_vec(),
            2 => wrap_aad_v2(owner, self.kdf),
            other => return Err(KeyError::UnknownFormat(other)),
        };
        let salt = hex::decode(&self.salt_hex).map_err(|_| KeyError::Malformed)?;
        let (nonce, mut sealed) = sealed_parts(&self.nonce_hex, &self.sealed_hex)?;
        let (opening, secret) = sealing_key(passphrase, &salt, self.kdf)?;
        let plain = opening
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_slice()),
                &mut sealed,
            )
            .map_err(|_| KeyError::WrongPassphrase)?;
        let bytes: [u8; 32] = plain.try_into().map_err(|_| KeyError::Malformed)?;
        Ok((DatabaseKey(Zeroizing::new(bytes)), secret))
    }

    /// True when this seal should be redone on the next unlock: an older format, or KDF
    /// parameters weaker than `policy` in memory or passes.
    pub fn needs_rewrap(&self, policy: KdfParams) -> bool {
        self.format < WRAP_FORMAT
            || self.kdf.memory_kib < policy.memory_kib
            || self.kdf.iterations < policy.iterations
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_and_unwrap() {
        let key = DatabaseKey::generate().unwrap();
        let w = WrappedKey::wrap(&key, "1234", KdfParams::FAST_FOR_TESTS, "alex").unwrap();
        let back = w.unwrap_key("1234", "alex").unwrap();
        assert_eq!(back.as_bytes(), key.as_bytes());
        assert_eq!(w.format, WRAP_FORMAT);
    }

    #[test]
    fn wrong_passphrase_is_refused() {
        let key = DatabaseKey::generate().unwrap();
        let w = WrappedKey::wrap(&key, "1234", KdfParams::FAST_FOR_TESTS, "alex").unwrap();
        assert_eq!(
            w.unwrap_key("1235", "alex").unwrap_err(),
            KeyError::WrongPassphrase
        );
    }

    #[test]
    fn two_users_share_one_key_with_different_salts() {
        let key = DatabaseKey::generate().unwrap();
        let a = WrappedKey::wrap(&key, "alpha", KdfParams::FAST_FOR_TESTS, "a").unwrap();
        let b = WrappedKey::wrap(&key, "bravo", KdfParams::FAST_FOR_TESTS, "b").unwrap();
        assert_ne!(a.salt_hex, b.salt_hex);
        assert_eq!(
            a.unwrap_key("alpha", "a").unwrap().as_bytes(),
            key.as_bytes()
        );
        assert_eq!(
            b.unwrap_key("bravo", "b").unwrap().as_bytes(),
            key.as_bytes()
        );
        assert!(a.unwrap_key("bravo", "a").is_err());
    }

    #[test]
    fn tampered_wrap_is_refused() {
        let key = DatabaseKey::generate().unwrap();
        let mut w = WrappedKey::wrap(&key, "1234", KdfParams::FAST_FOR_TESTS, "alex").unwrap();
        let mut sealed = hex::decode(&w.sealed_hex).unwrap();
        sealed[0] ^= 1;
        w.sealed_hex = hex::encode(sealed);
        assert!(w.unwrap_key("1234", "alex").is_err());
    }

    #[test]
    fn the_seal_is_bound_to_its_owner_and_parameters() {
        let key = DatabaseKey::generate().unwrap();
        let w = WrappedKey::wrap(&key, "1234", KdfParams::FAST_FOR_TESTS, "alex").unwrap();
        // Another user's entry copied over this one does not open as theirs.
        assert_eq!(
            w.unwrap_key("1234", "sam").unwrap_err(),
            KeyError::WrongPassphrase
        );
        // Parameters edited in the file (to make guessing cheaper) do not open either.
        let mut cheaper = w.clone();
        cheaper.kdf.iterations += 1;
        assert!(cheaper.unwrap_key("1234", "alex").is_err());
        let mut future = w.clone();
        future.format = 9;
        assert_eq!(
            future.unwrap_key("1234", "alex").unwrap_err(),
            KeyError::UnknownFormat(9)
        );
    }

    #[test]
    fn format_1_still_opens_and_asks_to_be_rewrapped() {
        let key = DatabaseKey::generate().unwrap();
        let old =
            WrappedKey::wrap_format_1_for_tests(&key, "1234", KdfParams::FAST_FOR_TESTS).unwrap();
        let json = serde_json::to_value(&old).unwrap();
        let mut without_format = json.clone();
        without_format.as_object_mut().unwrap().remove("format");
        let read: WrappedKey = serde_json::from_value(without_format).unwrap();
        assert_eq!(read.format, 1);
        assert_eq!(
            read.unwrap_key("1234", "anyone").unwrap().as_bytes(),
            key.as_bytes()
        );
        assert!(read.needs_rewrap(KdfParams::FAST_FOR_TESTS));
        let new = WrappedKey::wrap(&key, "1234", KdfParams::FAST_FOR_TESTS, "alex").unwrap();
        assert!(!new.needs_rewrap(KdfParams::FAST_FOR_TESTS));
        assert!(new.needs_rewrap(KdfParams::INTERACTIVE));
    }

    #[test]
    fn the_unlock_secret_comes_with_the_key_and_differs_per_seal() {
        let key = DatabaseKey::generate().unwrap();
        let (w, made) =
            WrappedKey::wrap_with_secret(&key, "1234", KdfParams::FAST_FOR_TESTS, "alex").unwrap();
        let (opened, secret) = w.open("1234", "alex").unwrap();
        assert_eq!(opened.as_bytes(), key.as_bytes());
        assert_eq!(secret.as_bytes(), made.as_bytes());
        assert_ne!(secret.as_bytes(), key.as_bytes());
        let (_, other) =
            WrappedKey::wrap_with_secret(&key, "1234", KdfParams::FAST_FOR_TESTS, "alex").unwrap();
        assert_ne!(
            other.as_bytes(),
            secret.as_bytes(),
            "a fresh salt gives a fresh secret"
        );
    }

    #[test]
    fn literal_is_sqlcipher_raw_key_syntax() {
        let key = DatabaseKey::generate().unwrap();
        let lit = key.sqlcipher_literal();
        assert_eq!(lit.len(), 67);
        assert!(lit.starts_with("x'") && lit.ends_with('\''));
    }
}
