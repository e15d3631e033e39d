//! Each clinician's own signing key, and the bytes a version-2 signature covers.
//!
//! A record version signed with the tablet's key proves which tablet signed it, not who. Each
//! user of a tablet therefore has their own Ed25519 key ([`UserSigner`]), made when they are
//! added, sealed in the keyring under their own unlock secret ([`SealedSigner`], opened by the
//! same Argon2id run that opens the database key) and registered with the server through the
//! tablet, where the registration is a log leaf. The signer's id is made with the key: it
//! names this clinician's key on this tablet.
//!
//! Version-2 signature payload: the ASCII context `ambulance-epr/version-signature/v2`, a line
//! feed, then the RFC 8785 (JCS) canonical JSON of the record id, revision, status, content
//! hash, the tablet's id, the save time (RFC 3339, UTC, microseconds, `Z`) and the signer's
//! user id. `docs/integrity.md` specifies every byte.

use chrono::{DateTime, SecondsFormat, Utc};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::keys::UnlockSecret;
use super::{DeviceSigningKey, KeyError, random_bytes};
use crate::model::Revision;

/// The context line of a version-2 signature payload.
pub const VERSION_SIGNATURE_V2: &str = "ambulance-epr/version-signature/v2";

/// The context line of a signer registration statement.
pub const SIGNER_REGISTRATION_V1: &str = "ambulance-epr/signer-registration/v1";

/// The context line of a tablet's endorsement of a signer registration.
pub const SIGNER_ENDORSEMENT_V1: &str = "ambulance-epr/signer-endorsement/v1";

/// The format [`SealedSigner::seal`] writes.
pub const SEALED_SIGNER_FORMAT: u32 = 1;

/// Formats a save time as version-2 signatures cover it: RFC 3339, UTC, exactly six
/// fractional digits (truncated), `Z`.
pub fn signed_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// RFC 8785 canonical JSON of `value`, after `context` and a line feed.
fn domain_separated(context: &str, value: &impl Serialize) -> Result<Vec<u8>, KeyError> {
    let body = serde_json_canonicalizer::to_vec(value).map_err(|_| KeyError::Malformed)?;
    let mut out = Vec::with_capacity(context.len() + 1 + body.len());
    out.extend_from_slice(context.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(&body);
    Ok(out)
}

/// What a version-2 signature covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionSignedFields<'a> {
    pub record_id: Uuid,
    pub revision: Revision,
    pub status: &'a str,
    pub content_sha256: &'a str,
    /// The tablet's own id (made with its store), as its signer registration names it.
    pub device_id: Uuid,
    /// [`signed_time`] of the save.
    pub saved_at_utc: String,
    pub signer_user_id: Uuid,
}

impl VersionSignedFields<'_> {
    /// The exact bytes signed.
    pub fn payload(&self) -> Result<Vec<u8>, KeyError> {
        domain_separated(VERSION_SIGNATURE_V2, self)
    }
}

/// What a signer registration statement covers: this key belongs to this user on this tablet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignerIdentity {
    pub user_id: Uuid,
    /// The user's name on the tablet (staff, never patient data).
    pub user_name: String,
    /// Base64 Ed25519 public key.
    pub public_key: String,
    /// The tablet's own id.
    pub tablet_id: Uuid,
}

impl SignerIdentity {
    /// The bytes the user's key signs to register itself (proof of possession).
    pub fn registration_message(&self) -> Result<Vec<u8>, KeyError> {
        domain_separated(SIGNER_REGISTRATION_V1, self)
    }

    /// Checks a registration proof (base64 signature by this identity's key).
    pub fn check_proof(&self, proof_b64: &str) -> bool {
        self.registration_message()
            .is_ok_and(|m| super::verify_signature(&self.public_key, &m, proof_b64).is_ok())
    }

    /// The bytes a tablet's own (enrolled) key signs to vouch that this user is registered
    /// through it as server device `device_id`: neither another tablet nor the server can
    /// register a key in a tablet's name.
    pub fn endorsement_message(&self, device_id: Uuid) -> Result<Vec<u8>, KeyError> {
        #[derive(Serialize)]
        struct Endorsed<'a> {
            device_id: Uuid,
            #[serde(flatten)]
            identity: &'a SignerIdentity,
        }
        domain_separated(
            SIGNER_ENDORSEMENT_V1,
            &Endorsed {
                device_id,
                identity: self,
            },
        )
    }

    /// Checks a tablet's endorsement (base64 signature by its enrolled key).
    pub fn check_endorsement(
        &self,
        device_id: Uuid,
        device_public_key_b64: &str,
        endorsement_b64: &str,
    ) -> bool {
        self.endorsement_message(device_id).is_ok_and(|m| {
            super::verify_signature(device_public_key_b64, &m, endorsement_b64).is_ok()
        })
    }
}

/// One user's signing key, unsealed: held by an unlocked store while that user works.
pub struct UserSigner {
    identity: SignerIdentity,
    key: DeviceSigningKey,
}

impl std::fmt::Debug for UserSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UserSigner({})", self.identity.user_id)
    }
}

impl UserSigner {
    /// A new key for `user_name` on tablet `tablet_id`, with a new user id.
    pub fn generate(user_name: &str, tablet_id: Uuid) -> Result<Self, KeyError> {
        let key = DeviceSigningKey::generate()?;
        Ok(Self {
            identity: SignerIdentity {
                user_id: Uuid::new_v4(),
                user_name: user_name.to_owned(),
                public_key: key.public_key_base64(),
                tablet_id,
            },
            key,
        })
    }

    /// The signer's public identity.
    pub fn identity(&self) -> &SignerIdentity {
        &self.identity
    }

    /// The user id signatures name.
    pub fn user_id(&self) -> Uuid {
        self.identity.user_id
    }

    /// The base64 proof of possession over [`SignerIdentity::registration_message`].
    pub fn registration_proof(&self) -> Result<String, KeyError> {
        Ok(self.key.sign_base64(&self.identity.registration_message()?))
    }

    /// Signs a version (the save time is truncated to microseconds, as stored and logged).
    pub fn sign_version(
        &self,
        record_id: Uuid,
        revision: Revision,
        status: &str,
        content_sha256: &str,
        saved_at_utc: DateTime<Utc>,
    ) -> Result<String, KeyError> {
        let fields = VersionSignedFields {
            record_id,
            revision,
            status,
            content_sha256,
            device_id: self.identity.tablet_id,
            saved_at_utc: signed_time(saved_at_utc),
            signer_user_id: self.identity.user_id,
        };
        Ok(self.key.sign_base64(&fields.payload()?))
    }

    /// A second copy (for another connection to the same store).
    pub fn try_clone(&self) -> Result<Self, KeyError> {
        Ok(Self {
            identity: self.identity.clone(),
            key: DeviceSigningKey::from_pkcs8(self.key.pkcs8())?,
        })
    }

    /// Seals this key under `secret` for keyring user `owner`.
    pub fn seal(&self, secret: &UnlockSecret, owner: &str) -> Result<SealedSigner, KeyError> {
        let nonce: [u8; 12] = random_bytes()?;
        let mut buf = Zeroizing::new(self.key.pkcs8().to_vec());
        let aad = sealed_signer_aad(owner, &self.identity);
        cipher(secret)?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_slice()),
                &mut *buf,
            )
            .map_err(|_| KeyError::Malformed)?;
        Ok(SealedSigner {
            format: SEALED_SIGNER_FORMAT,
            identity: self.identity.clone(),
            nonce_hex: hex::encode(nonce),
            sealed_hex: hex::encode(&*buf),
        })
    }
}

fn cipher(secret: &UnlockSecret) -> Result<LessSafeKey, KeyError> {
    let unbound =
        UnboundKey::new(&AES_256_GCM, secret.as_bytes()).map_err(|_| KeyError::Malformed)?;
    Ok(LessSafeKey::new(unbound))
}

/// What a sealed signing key is bound to: its purpose, its keyring owner and its identity, so
/// an entry copied to another user, or with its name or key edited, does not open.
fn sealed_signer_aad(owner: &str, identity: &SignerIdentity) -> Vec<u8> {
    format!(
        "ambulance-epr user signing key v1\nowner={owner}\nuser_id={}\nuser_name={}\npublic_key={}\ntablet_id={}",
        identity.user_id, identity.user_name, identity.public_key, identity.tablet_id
    )
    .into_bytes()
}

/// A user's signing key sealed under their unlock secret: safe to keep in the keyring file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSigner {
    pub format: u32,
    pub identity: SignerIdentity,
    /// Hex, 12 bytes.
    pub nonce_hex: String,
    /// Hex: the PKCS#8 key document plus the 16-byte GCM tag.
    pub sealed_hex: String,
}

impl SealedSigner {
    /// Opens the key; a wrong secret, owner or edited identity fails authentication, and a key
    /// whose public half differs from the identity is refused.
    pub fn open(&self, secret: &UnlockSecret, owner: &str) -> Result<UserSigner, KeyError> {
        if self.format != SEALED_SIGNER_FORMAT {
            return Err(KeyError::UnknownFormat(self.format));
        }
        let (nonce, mut sealed) = super::keys::sealed_parts(&self.nonce_hex, &self.sealed_hex)?;
        let aad = sealed_signer_aad(owner, &self.identity);
        let plain = cipher(secret)?
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_slice()),
                &mut sealed,
            )
            .map_err(|_| KeyError::WrongPassphrase)?;
        let key = DeviceSigningKey::from_pkcs8(plain)?;
        if key.public_key_base64() != self.identity.public_key {
            return Err(KeyError::Malformed);
        }
        Ok(UserSigner {
            identity: self.identity.clone(),
            key,
        })
    }
}

/// The key a version's signature is checked with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionKey<'a> {
    /// Format 1: the device's own key (base64).
    Device { public_key_b64: &'a str },
    /// Format 2: a user's registered key (base64), on the tablet `tablet_id`.
    User {
        user_id: Uuid,
        public_key_b64: &'a str,
        tablet_id: Uuid,
    },
}

/// One version's signed facts.
#[derive(Debug, Clone, Copy)]
pub struct SignedVersion<'a> {
    pub record_id: Uuid,
    pub revision: Revision,
    pub status: &'a str,
    pub content_sha256: &'a str,
    pub saved_at_utc: DateTime<Utc>,
    pub signature_b64: &'a str,
}

impl SignedVersion<'_> {
    /// Verifies the signature with `key`, in that key's format. The one place a version's
    /// signature is checked: the server on push, `verify`, and the reviewer's app.
    pub fn verify(&self, key: VersionKey<'_>) -> Result<(), super::SignatureError> {
        match key {
            VersionKey::Device { public_key_b64 } => {
                let payload = super::signing_payload(
                    self.record_id,
                    self.revision,
                    self.status,
                    self.content_sha256,
                );
                super::verify_signature(public_key_b64, &payload, self.signature_b64)
            }
            VersionKey::User {
                user_id,
                public_key_b64,
                tablet_id,
            } => {
                let payload = VersionSignedFields {
                    record_id: self.record_id,
                    revision: self.revision,
                    status: self.status,
                    content_sha256: self.content_sha256,
                    device_id: tablet_id,
                    saved_at_utc: signed_time(self.saved_at_utc),
                    signer_user_id: user_id,
                }
                .payload()
                .map_err(|_| super::SignatureError::Mismatch)?;
                super::verify_signature(public_key_b64, &payload, self.signature_b64)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn secret(byte: u8) -> UnlockSecret {
        UnlockSecret::from_bytes_for_tests([byte; 32])
    }

    #[test]
    fn seal_and_open_keep_the_key_and_refuse_the_wrong_secret_or_owner() {
        let signer = UserSigner::generate("Sam Medic", Uuid::new_v4()).unwrap();
        let sealed = signer.seal(&secret(1), "sam").unwrap();
        let opened = sealed.open(&secret(1), "sam").unwrap();
        assert_eq!(opened.identity(), signer.identity());
        assert_eq!(
            sealed.open(&secret(2), "sam").unwrap_err(),
            KeyError::WrongPassphrase
        );
        assert_eq!(
            sealed.open(&secret(1), "alex").unwrap_err(),
            KeyError::WrongPassphrase
        );
        let mut renamed = sealed.clone();
        renamed.identity.user_name = "Alex Medic".into();
        assert!(renamed.open(&secret(1), "sam").is_err());
        let mut future = sealed;
        future.format = 7;
        assert_eq!(
            future.open(&secret(1), "sam").unwrap_err(),
            KeyError::UnknownFormat(7)
        );
    }

    #[test]
    fn the_registration_proof_binds_key_user_and_tablet() {
        let signer = UserSigner::generate("Sam Medic", Uuid::new_v4()).unwrap();
        let proof = signer.registration_proof().unwrap();
        assert!(signer.identity().check_proof(&proof));
        let mut other_tablet = signer.identity().clone();
        other_tablet.tablet_id = Uuid::new_v4();
        assert!(!other_tablet.check_proof(&proof));
        let mut other_name = signer.identity().clone();
        other_name.user_name = "Someone Else".into();
        assert!(!other_name.check_proof(&proof));
        assert!(!signer.identity().check_proof("not base64!"));
    }

    #[test]
    fn the_endorsement_binds_the_registration_to_one_enrolled_device() {
        let tablet_key = DeviceSigningKey::generate().unwrap();
        let signer = UserSigner::generate("Sam Medic", Uuid::new_v4()).unwrap();
        let device_id = Uuid::new_v4();
        let message = signer.identity().endorsement_message(device_id).unwrap();
        let text = String::from_utf8(message.clone()).unwrap();
        assert!(text.starts_with("ambulance-epr/signer-endorsement/v1\n{\"device_id\":"));
        assert!(text.ends_with("\"user_name\":\"Sam Medic\"}"));
        let endorsement = tablet_key.sign_base64(&message);
        let key = tablet_key.public_key_base64();
        assert!(
            signer
                .identity()
                .check_endorsement(device_id, &key, &endorsement)
        );
        // Through another device, or vouched for by another key: refused.
        assert!(
            !signer
                .identity()
                .check_endorsement(Uuid::new_v4(), &key, &endorsement)
        );
        let other = DeviceSigningKey::generate().unwrap().public_key_base64();
        assert!(
            !signer
                .identity()
                .check_endorsement(device_id, &other, &endorsement)
        );
    }

    #[test]
    fn a_v2_signature_verifies_only_with_its_own_facts() {
        let tablet = Uuid::new_v4();
        let signer = UserSigner::generate("Sam Medic", tablet).unwrap();
        let (record, at) = (Uuid::new_v4(), Utc::now());
        let rev = Revision::new(2).unwrap();
        let sig = signer
            .sign_version(record, rev, "completed", "ab", at)
            .unwrap();
        let version = SignedVersion {
            record_id: record,
            revision: rev,
            status: "completed",
            content_sha256: "ab",
            saved_at_utc: at,
            signature_b64: &sig,
        };
        let key = VersionKey::User {
            user_id: signer.user_id(),
            public_key_b64: &signer.identity().public_key,
            tablet_id: tablet,
        };
        assert_eq!(version.verify(key), Ok(()));
        // Another tablet, user, save time, status or key: each refused.
        let other_tablet = VersionKey::User {
            user_id: signer.user_id(),
            public_key_b64: &signer.identity().public_key,
            tablet_id: Uuid::new_v4(),
        };
        assert!(version.verify(other_tablet).is_err());
        let other_user = VersionKey::User {
            user_id: Uuid::new_v4(),
            public_key_b64: &signer.identity().public_key,
            tablet_id: tablet,
        };
        assert!(version.verify(other_user).is_err());
        let later = SignedVersion {
            saved_at_utc: at + chrono::Duration::seconds(1),
            ..version
        };
        assert!(later.verify(key).is_err());
        let amended = SignedVersion {
            status: "amended",
            ..version
        };
        assert!(amended.verify(key).is_err());
        // Read as format 1 with the same key bytes: a different payload, refused.
        let as_v1 = VersionKey::Device {
            public_key_b64: &signer.identity().public_key,
        };
        assert!(version.verify(as_v1).is_err());
    }

    #[test]
    fn the_v2_payload_is_the_context_line_then_jcs() {
        let fields = VersionSignedFields {
            record_id: Uuid::parse_str("7d1f2c3e-0000-4000-8000-000000000001").unwrap(),
            revision: Revision::new(3).unwrap(),
            status: "completed",
            content_sha256: "ab",
            device_id: Uuid::parse_str("7d1f2c3e-0000-4000-8000-000000000002").unwrap(),
            saved_at_utc: signed_time(
                DateTime::parse_from_rfc3339("2026-12-02T03:04:05.123456789Z")
                    .unwrap()
                    .with_timezone(&Utc),
            ),
            signer_user_id: Uuid::parse_str("7d1f2c3e-0000-4000-8000-000000000003").unwrap(),
        };
        assert_eq!(
            String::from_utf8(fields.payload().unwrap()).unwrap(),
            "ambulance-epr/version-signature/v2\n\
             {\"content_sha256\":\"ab\",\
             \"device_id\":\"7d1f2c3e-0000-4000-8000-000000000002\",\
             \"record_id\":\"7d1f2c3e-0000-4000-8000-000000000001\",\
             \"revision\":3,\
             \"saved_at_utc\":\"2026-12-02T03:04:05.123456Z\",\
             \"signer_user_id\":\"7d1f2c3e-0000-4000-8000-000000000003\",\
             \"status\":\"completed\"}"
        );
    }
}
