//! The device's Ed25519 signing key.
//!
//! Each tablet has its own key pair, made at `init` and kept (PKCS#8) inside the encrypted
//! store. Every completed or amended version is signed over [`super::signing_payload`]; the
//! server holds the public key from enrolment, so anyone can later check that a stored
//! record is exactly what the crew signed.

use base64::Engine;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use zeroize::Zeroizing;

use super::KeyError;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A signature that does not verify, or a key that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature is not valid base64 or has the wrong length")]
    Malformed,
    #[error("the public key is not a valid Ed25519 key")]
    BadPublicKey,
    #[error("the signature does not match the content")]
    Mismatch,
}

/// This device's Ed25519 key pair.
pub struct DeviceSigningKey {
    pair: Ed25519KeyPair,
    pkcs8: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for DeviceSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeviceSigningKey({})", self.public_key_base64())
    }
}

impl DeviceSigningKey {
    /// A new random key pair.
    pub fn generate() -> Result<Self, KeyError> {
        let rng = ring::rand::SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| KeyError::RandomUnavailable)?;
        Self::from_pkcs8(doc.as_ref())
    }

    /// Loads a key pair saved with [`DeviceSigningKey::pkcs8`].
    pub fn from_pkcs8(bytes: &[u8]) -> Result<Self, KeyError> {
        let pair = Ed25519KeyPair::from_pkcs8(bytes).map_err(|_| KeyError::Malformed)?;
        Ok(Self {
            pair,
            pkcs8: Zeroizing::new(bytes.to_vec()),
        })
    }

    /// The private key document, for storing inside the encrypted store only.
    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The public key, base64: what the server keeps at enrolment.
    pub fn public_key_base64(&self) -> String {
        B64.encode(self.pair.public_key().as_ref())
    }

    /// Signs `message`; the signature is base64.
    pub fn sign_base64(&self, message: &[u8]) -> String {
        B64.encode(self.pair.sign(message).as_ref())
    }

    /// The public key's 32 bytes.
    pub fn public_key_bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.pair.public_key().as_ref());
        out
    }

    /// Signs `message`; the signature's 64 bytes.
    pub fn sign_bytes(&self, message: &[u8]) -> [u8; 64] {
        let mut out = [0u8; 64];
        out.copy_from_slice(self.pair.sign(message).as_ref());
        out
    }
}

/// Verifies a base64 Ed25519 signature against a base64 public key.
pub fn verify_signature(
    public_key_base64: &str,
    message: &[u8],
    signature_base64: &str,
) -> Result<(), SignatureError> {
    let public = B64
        .decode(public_key_base64)
        .map_err(|_| SignatureError::BadPublicKey)?;
    if public.len() != 32 {
        return Err(SignatureError::BadPublicKey);
    }
    let sig = B64
        .decode(signature_base64)
        .map_err(|_| SignatureError::Malformed)?;
    if sig.len() != 64 {
        return Err(SignatureError::Malformed);
    }
    UnparsedPublicKey::new(&ED25519, public)
        .verify(message, &sig)
        .map_err(|_| SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let k = DeviceSigningKey::generate().unwrap();
        let sig = k.sign_base64(b"hello");
        assert_eq!(
            verify_signature(&k.public_key_base64(), b"hello", &sig),
            Ok(())
        );
        assert_eq!(
            verify_signature(&k.public_key_base64(), b"hellp", &sig),
            Err(SignatureError::Mismatch)
        );
        let other = DeviceSigningKey::generate().unwrap();
        assert!(verify_signature(&other.public_key_base64(), b"hello", &sig).is_err());
        assert_eq!(
            verify_signature(&k.public_key_base64(), b"hello", "!!"),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn pkcs8_round_trip_keeps_the_public_key() {
        let k = DeviceSigningKey::generate().unwrap();
        let k2 = DeviceSigningKey::from_pkcs8(k.pkcs8()).unwrap();
        assert_eq!(k.public_key_base64(), k2.public_key_base64());
    }
}
