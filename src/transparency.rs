//! The server's append-only log as both sides see it: what a leaf is and how it is encoded,
//! RFC 6962 leaf and tree hashing, the signed checkpoint (a C2SP `tlog-checkpoint` body in a
//! C2SP `signed-note`), and checking inclusion and consistency proofs.
//!
//! `docs/integrity.md` specifies every byte made here, so that someone with that document and
//! standard libraries can check the log without this code. No I/O: the server keeps leaves
//! and subtree hashes (`server::storage`), the tablet keeps the last checkpoint it verified
//! (`sync`). The tree arithmetic is `tlog_tiles` (a port of Go's `sumdb/tlog`); this module
//! bounds every input before handing it over.

use std::cell::RefCell;
use std::collections::HashMap;

use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use tlog_tiles::tlog::{self, HashReader};
use uuid::Uuid;

use crate::crypto::DeviceSigningKey;

pub use tlog_tiles::tlog::Hash as LogHash;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Longest proof accepted, in hashes: a tree of 2^63 leaves needs at most 126; ours never
/// come near, and a longer one is refused before any hashing.
pub const MAX_PROOF_HASHES: usize = 128;

/// Longest signed checkpoint note accepted, in bytes.
pub const MAX_NOTE_BYTES: usize = 4096;

/// Longest leaf accepted, in bytes of canonical JSON.
pub const MAX_LEAF_BYTES: usize = 16 * 1024;

/// Most leaves or proofs served in one answer.
pub const MAX_LEAVES_PER_ANSWER: u64 = 1000;

/// The first line of every signature line in a signed note (U+2014, then a space).
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// Signature type byte of an Ed25519 note key (C2SP signed-note).
const ED25519_KEY_TYPE: u8 = 0x01;

/// Why a checkpoint, proof or leaf from a server was refused. Plain words: these reach the
/// crew's banner and the ops engineer's terminal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntegrityError {
    #[error("the server's checkpoint is malformed: {0}")]
    MalformedCheckpoint(&'static str),
    #[error("the server's checkpoint is not signed by the key this tablet trusts")]
    UnknownKey,
    #[error("the server's checkpoint signature does not verify")]
    BadSignature,
    #[error("the server's log names itself {found:?}, not {expected:?}")]
    WrongOrigin { expected: String, found: String },
    #[error(
        "the server's log is shorter than when this tablet last checked it ({now} entries, was {before}): history was removed"
    )]
    Shortened { before: u64, now: u64 },
    #[error(
        "the server's log no longer extends what this tablet checked before: history was rewritten"
    )]
    Inconsistent,
    #[error("the server could not prove that it holds a version it accepted")]
    NotIncluded,
    #[error("a proof from the server is malformed: {0}")]
    MalformedProof(&'static str),
    #[error("a log key is malformed: {0}")]
    MalformedKey(&'static str),
    #[error(
        "the server was rebuilt from an older checkpoint ({previous} entries) than this tablet verified ({before}): records it accepted since would be lost; the trust must rebuild it from its latest checkpoint"
    )]
    RebuiltFromOlder { before: u64, previous: u64 },
}

/// Formats a time the way leaves carry it: RFC 3339, UTC, microseconds, `Z`.
pub fn leaf_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// One entry of the log. Encoded as canonical JSON (keys sorted, no spaces) of this shape,
/// with `kind` naming the variant in snake case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Leaf {
    /// A record version the server accepted.
    Version {
        record_id: Uuid,
        revision: u64,
        status: String,
        content_sha256: String,
        signature: Option<String>,
        device_id: Uuid,
        saved_at_utc: String,
        /// The user whose own key signed (signature format 2); absent for format 1 and
        /// drafts, so leaves from before per-user keys keep their bytes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signer_user_id: Option<Uuid>,
    },
    /// A user's own signing key, registered through `device_id` (the server's id of the
    /// tablet); `tablet_id` is the tablet's own id, which format-2 signatures name. `proof`
    /// is the key's signature over its registration statement, `device_endorsement` the
    /// tablet's over its endorsement.
    SignerRegistered {
        device_id: Uuid,
        tablet_id: Uuid,
        user_id: Uuid,
        user_name: String,
        public_key: String,
        proof: String,
        /// The tablet's endorsement, by its enrolled key (see
        /// [`crate::crypto::SignerIdentity::endorsement_message`]).
        device_endorsement: String,
        registered_at_utc: String,
    },
    /// A device enrolled with this public key (base64 Ed25519).
    DeviceEnrolled {
        device_id: Uuid,
        public_key: String,
        enrolled_at_utc: String,
    },
    DeviceRevoked {
        device_id: Uuid,
        revoked_at_utc: String,
    },
    /// The newest entry of a device's own audit chain, as it reported it with a push.
    DeviceAuditHead {
        device_id: Uuid,
        seq: u64,
        hash: String,
    },
    /// The log's signing key was replaced; the statement (signed by the old key) is logged by
    /// its SHA-256.
    KeyRotated {
        new_key: String,
        statement_sha256: String,
        rotated_at_utc: String,
    },
    /// A supervisor's decision; the comment is logged by its SHA-256 only.
    Decision {
        record_id: Uuid,
        revision: u64,
        decision: String,
        comment_sha256: String,
        decided_by: String,
        decided_at_utc: String,
    },
    /// The first leaf of a log rebuilt from its tablets (`epr-server serve --recover`): the
    /// earlier log's last checkpoint the trust kept, by size, root (base64) and the SHA-256
    /// (hex) of its signed note.
    Recovery {
        previous_size: u64,
        previous_root: String,
        previous_checkpoint_sha256: String,
        recovered_at_utc: String,
    },
    /// A version of the trust's reference data (formulary, destinations, staff) was
    /// imported; the document is logged by the SHA-256 (hex) of its canonical JSON.
    ReferenceData {
        version: u64,
        document_sha256: String,
        imported_at_utc: String,
    },
}

impl Leaf {
    /// The leaf's bytes: canonical JSON.
    pub fn encode(&self) -> Vec<u8> {
        match serde_json::to_value(self) {
            Ok(v) => crate::crypto::canonical_json(&v),
            // A derived `Serialize` of strings and numbers cannot fail.
            Err(_) => Vec::new(),
        }
    }

    /// Parses leaf bytes (bounded), refusing unknown kinds and fields.
    pub fn decode(bytes: &[u8]) -> Result<Self, IntegrityError> {
        if bytes.len() > MAX_LEAF_BYTES {
            return Err(IntegrityError::MalformedProof("a leaf is too long"));
        }
        serde_json::from_slice(bytes).map_err(|_| IntegrityError::MalformedProof("a leaf"))
    }

    /// The stored kind text (`version`, `device_enrolled`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Leaf::Version { .. } => "version",
            Leaf::DeviceEnrolled { .. } => "device_enrolled",
            Leaf::SignerRegistered { .. } => "signer_registered",
            Leaf::DeviceRevoked { .. } => "device_revoked",
            Leaf::KeyRotated { .. } => "key_rotated",
            Leaf::DeviceAuditHead { .. } => "device_audit_head",
            Leaf::Decision { .. } => "decision",
            Leaf::Recovery { .. } => "recovery",
            Leaf::ReferenceData { .. } => "reference_data",
        }
    }
}

/// What a tablet signs, with its enrolled key, to take its place again in a log rebuilt from
/// its tablets: the log's name, the server's id of the tablet and the hash (hex) of the
/// rebuilt log's `recovery` leaf, so the statement opens that one rebuilt log only.
pub fn recovery_statement(origin: &str, device_id: Uuid, recovery_leaf: &LogHash) -> Vec<u8> {
    format!(
        "ambulance-epr/device-recovery/v1\n{origin}\n{device_id}\n{}\n",
        hash_hex(recovery_leaf)
    )
    .into_bytes()
}

/// RFC 6962 leaf hash: SHA-256 of 0x00 then the leaf bytes.
pub fn leaf_hash(leaf_bytes: &[u8]) -> LogHash {
    tlog::record_hash(leaf_bytes)
}

/// Hex form of a hash, as stored by the server.
pub fn hash_hex(h: &LogHash) -> String {
    hex::encode(h.0)
}

/// Parses [`hash_hex`].
pub fn hash_from_hex(text: &str) -> Option<LogHash> {
    let bytes = hex::decode(text).ok()?;
    <[u8; 32]>::try_from(bytes.as_slice()).ok().map(LogHash)
}

/// Base64 form of a hash, as in checkpoints and proofs on the wire.
pub fn hash_b64(h: &LogHash) -> String {
    B64.encode(h.0)
}

/// Parses [`hash_b64`].
pub fn hash_from_b64(text: &str) -> Option<LogHash> {
    let bytes = B64.decode(text).ok()?;
    <[u8; 32]>::try_from(bytes.as_slice()).ok().map(LogHash)
}

/// A log state: the tree of the first `size` leaves has root hash `root`.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// The log's name (also the signing key's name).
    pub origin: String,
    pub size: u64,
    pub root: LogHash,
}

impl Checkpoint {
    /// The C2SP tlog-checkpoint body: origin, size and base64 root, each on its own line.
    pub fn body(&self) -> String {
        format!("{}\n{}\n{}\n", self.origin, self.size, hash_b64(&self.root))
    }

    /// Parses a body; extension lines after the root are allowed and ignored.
    pub fn parse_body(body: &str) -> Result<Self, IntegrityError> {
        let mut lines = body.split('\n');
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or(IntegrityError::MalformedCheckpoint("no origin line"))?;
        let size_text = lines
            .next()
            .ok_or(IntegrityError::MalformedCheckpoint("no size line"))?;
        let canonical_number = size_text == "0"
            || (!size_text.is_empty()
                && !size_text.starts_with('0')
                && size_text.bytes().all(|b| b.is_ascii_digit()));
        let size = size_text
            .parse::<u64>()
            .ok()
            .filter(|_| canonical_number)
            .ok_or(IntegrityError::MalformedCheckpoint(
                "the size is not a number",
            ))?;
        let root =
            lines
                .next()
                .and_then(hash_from_b64)
                .ok_or(IntegrityError::MalformedCheckpoint(
                    "the root is not a 32-byte hash",
                ))?;
        if !body.ends_with('\n') {
            return Err(IntegrityError::MalformedCheckpoint(
                "the body does not end with a newline",
            ));
        }
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
        })
    }
}

/// A log's public key as a tablet pins it: the key's name (the log origin) and its 32 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPublicKey {
    pub name: String,
    pub key: [u8; 32],
}

impl LogPublicKey {
    /// The signed-note key id: the first four bytes of SHA-256(name, `\n`, 0x01, key).
    pub fn key_id(&self) -> [u8; 4] {
        let mut input = Vec::with_capacity(self.name.len() + 34);
        input.extend_from_slice(self.name.as_bytes());
        input.push(b'\n');
        input.push(ED25519_KEY_TYPE);
        input.extend_from_slice(&self.key);
        let digest = ring::digest::digest(&ring::digest::SHA256, &input);
        let mut id = [0u8; 4];
        id.copy_from_slice(&digest.as_ref()[..4]);
        id
    }

    /// The verifier key text, `NAME+KEYID+BASE64(0x01 || KEY)` (the form Go's `note` package
    /// and other signed-note tools read).
    pub fn to_vkey(&self) -> String {
        let mut typed = Vec::with_capacity(33);
        typed.push(ED25519_KEY_TYPE);
        typed.extend_from_slice(&self.key);
        format!(
            "{}+{}+{}",
            self.name,
            hex::encode(self.key_id()),
            B64.encode(typed)
        )
    }

    /// Parses [`LogPublicKey::to_vkey`], checking the key id.
    pub fn from_vkey(text: &str) -> Result<Self, IntegrityError> {
        let text = text.trim();
        if text.len() > 512 {
            return Err(IntegrityError::MalformedKey("too long"));
        }
        // The name never holds '+' (the key's base64 may).
        let mut parts = text.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(IntegrityError::MalformedKey("expected NAME+KEYID+KEY"));
        };
        let typed = B64
            .decode(key_b64)
            .map_err(|_| IntegrityError::MalformedKey("the key is not base64"))?;
        let [kind, rest @ ..] = typed.as_slice() else {
            return Err(IntegrityError::MalformedKey("empty key"));
        };
        if *kind != ED25519_KEY_TYPE {
            return Err(IntegrityError::MalformedKey("not an Ed25519 key"));
        }
        let key = <[u8; 32]>::try_from(rest)
            .map_err(|_| IntegrityError::MalformedKey("an Ed25519 key is 32 bytes"))?;
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(IntegrityError::MalformedKey("bad key name"));
        }
        let out = Self {
            name: name.to_owned(),
            key,
        };
        if hex::encode(out.key_id()) != id_hex.to_ascii_lowercase() {
            return Err(IntegrityError::MalformedKey(
                "the key id does not match the key",
            ));
        }
        Ok(out)
    }

    /// Short fingerprint for people to compare: the first 16 hex digits of SHA-256 of the key.
    pub fn fingerprint(&self) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, &self.key);
        hex::encode(&digest.as_ref()[..8])
    }
}

/// Signs `body` as a C2SP signed note under `name` with `key`.
fn sign_note(body: &str, name: &str, key: &DeviceSigningKey) -> String {
    let public = LogPublicKey {
        name: name.to_owned(),
        key: key.public_key_bytes(),
    };
    let mut blob = Vec::with_capacity(68);
    blob.extend_from_slice(&public.key_id());
    blob.extend_from_slice(&key.sign_bytes(body.as_bytes()));
    format!("{body}\n{SIGNATURE_PREFIX}{name} {}\n", B64.encode(blob))
}

/// Signs `checkpoint` as a signed note with `key` under the name `checkpoint.origin`.
pub fn sign_checkpoint(checkpoint: &Checkpoint, key: &DeviceSigningKey) -> String {
    sign_note(&checkpoint.body(), &checkpoint.origin, key)
}

/// Opens a signed checkpoint note: checks its size bound, finds the signature by `key` (others
/// are ignored), verifies it over the body, and checks the origin is the key's name.
pub fn open_checkpoint(note: &str, key: &LogPublicKey) -> Result<Checkpoint, IntegrityError> {
    // The origin is checked before the signature so a tablet pointed at another log hears
    // that, not "unknown key".
    if note.len() <= MAX_NOTE_BYTES
        && let Some(split) = note.rfind("\n\n")
        && let Ok(c) = Checkpoint::parse_body(&note[..=split])
        && c.origin != key.name
    {
        return Err(IntegrityError::WrongOrigin {
            expected: key.name.clone(),
            found: c.origin,
        });
    }
    let body = open_note(note, key)?;
    Checkpoint::parse_body(body)
}

/// First line of a key rotation statement.
const ROTATION_HEADER: &str = "ambulance-epr/log-key-rotation/v1";

/// Most rotations a tablet follows in one go.
pub const MAX_ROTATIONS: usize = 16;

/// A key rotation statement: a signed note, by the **old** key, whose body names the log and
/// the new verifier key. A tablet accepts a new key only through a chain of these from the
/// key it pinned.
pub fn sign_rotation(old: &DeviceSigningKey, origin: &str, new_key: &LogPublicKey) -> String {
    let body = format!("{ROTATION_HEADER}\n{origin}\n{}\n", new_key.to_vkey());
    sign_note(&body, origin, old)
}

/// First line of a reference data statement.
const REFERENCE_HEADER: &str = "ambulance-epr/reference-data/v1";

/// What the server's key says of a reference data set: its version, the SHA-256 (hex) of
/// its canonical JSON and when it was imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceStatement {
    pub version: u64,
    pub document_sha256: String,
    pub imported_at_utc: String,
}

/// Signs a reference data statement as a signed note under the log's name: a tablet takes a
/// reference set only with a statement its pinned log key opens.
pub fn sign_reference(key: &DeviceSigningKey, origin: &str, s: &ReferenceStatement) -> String {
    let body = format!(
        "{REFERENCE_HEADER}\n{origin}\n{}\n{}\n{}\n",
        s.version, s.document_sha256, s.imported_at_utc
    );
    sign_note(&body, origin, key)
}

/// Opens a reference data statement with `key`: the signature must be by that key and the
/// body must name its log.
pub fn open_reference(
    note: &str,
    key: &LogPublicKey,
) -> Result<ReferenceStatement, IntegrityError> {
    let body = open_note(note, key)?;
    let malformed = IntegrityError::MalformedCheckpoint("a reference data statement");
    let mut lines = body.lines();
    if lines.next() != Some(REFERENCE_HEADER) {
        return Err(malformed);
    }
    let origin = lines.next().ok_or(malformed.clone())?;
    if origin != key.name {
        return Err(IntegrityError::WrongOrigin {
            expected: key.name.clone(),
            found: origin.to_owned(),
        });
    }
    let version = lines
        .next()
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or(malformed.clone())?;
    let document_sha256 = lines
        .next()
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or(malformed.clone())?
        .to_owned();
    let imported_at_utc = lines.next().ok_or(malformed.clone())?.to_owned();
    if lines.next().is_some() {
        return Err(malformed);
    }
    Ok(ReferenceStatement {
        version,
        document_sha256,
        imported_at_utc,
    })
}

/// Splits a signed note into its body and checks one signature by `key` over it.
fn open_note<'a>(note: &'a str, key: &LogPublicKey) -> Result<&'a str, IntegrityError> {
    if note.len() > MAX_NOTE_BYTES {
        return Err(IntegrityError::MalformedCheckpoint("too long"));
    }
    let split = note
        .rfind("\n\n")
        .ok_or(IntegrityError::MalformedCheckpoint("no signature block"))?;
    let body = &note[..=split];
    let signatures = &note[split + 2..];
    if !signatures.ends_with('\n') {
        return Err(IntegrityError::MalformedCheckpoint(
            "the signature block does not end with a newline",
        ));
    }
    let wanted_id = key.key_id();
    for line in signatures.lines().take(16) {
        let Some(rest) = line.strip_prefix(SIGNATURE_PREFIX) else {
            return Err(IntegrityError::MalformedCheckpoint("a bad signature line"));
        };
        let Some((name, blob_b64)) = rest.split_once(' ') else {
            return Err(IntegrityError::MalformedCheckpoint("a bad signature line"));
        };
        let Ok(blob) = B64.decode(blob_b64) else {
            return Err(IntegrityError::MalformedCheckpoint(
                "a signature is not base64",
            ));
        };
        if name != key.name || blob.len() != 68 || blob[..4] != wanted_id {
            continue;
        }
        ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &key.key)
            .verify(body.as_bytes(), &blob[4..])
            .map_err(|_| IntegrityError::BadSignature)?;
        return Ok(body);
    }
    Err(IntegrityError::UnknownKey)
}

/// Follows rotation statements from `pinned` to `target`: each must be signed by the key
/// before it and name the next. Returns `target` when the chain reaches it; refuses a
/// statement not signed by the key it follows, a chain that does not reach `target`, and more
/// than [`MAX_ROTATIONS`] steps.
pub fn follow_rotations(
    pinned: &LogPublicKey,
    statements: &[String],
    target: &LogPublicKey,
) -> Result<LogPublicKey, IntegrityError> {
    let mut current = pinned.clone();
    for _ in 0..MAX_ROTATIONS {
        if current == *target {
            return Ok(current);
        }
        let next = statements.iter().take(4 * MAX_ROTATIONS).find_map(|s| {
            let body = open_note(s, &current).ok()?;
            let mut lines = body.lines();
            if lines.next()? != ROTATION_HEADER || lines.next()? != current.name {
                return None;
            }
            LogPublicKey::from_vkey(lines.next()?).ok()
        });
        match next {
            Some(k) if k.name == current.name => current = k,
            _ => return Err(IntegrityError::UnknownKey),
        }
    }
    if current == *target {
        Ok(current)
    } else {
        Err(IntegrityError::UnknownKey)
    }
}

/// Parses wire proof hashes (base64), bounded before any decoding.
pub fn parse_proof(hashes: &[String]) -> Result<Vec<LogHash>, IntegrityError> {
    if hashes.len() > MAX_PROOF_HASHES {
        return Err(IntegrityError::MalformedProof("too many hashes"));
    }
    hashes
        .iter()
        .map(|h| hash_from_b64(h).ok_or(IntegrityError::MalformedProof("a hash is not 32 bytes")))
        .collect()
}

/// Checks that leaf `index` with hash `leaf` is in the tree `checkpoint`.
pub fn check_inclusion(
    proof: &[LogHash],
    checkpoint: &Checkpoint,
    index: u64,
    leaf: LogHash,
) -> Result<(), IntegrityError> {
    if proof.len() > MAX_PROOF_HASHES {
        return Err(IntegrityError::MalformedProof("too many hashes"));
    }
    if index >= checkpoint.size {
        return Err(IntegrityError::NotIncluded);
    }
    tlog::check_record(
        &proof.to_vec(),
        checkpoint.size,
        checkpoint.root,
        index,
        leaf,
    )
    .map_err(|_| IntegrityError::NotIncluded)
}

/// Checks that `new` extends `old`: same origin, not shorter, and (when both are non-empty
/// and differ in size) the consistency proof holds. Equal sizes need equal roots.
pub fn check_consistency(
    proof: &[LogHash],
    old: &Checkpoint,
    new: &Checkpoint,
) -> Result<(), IntegrityError> {
    if proof.len() > MAX_PROOF_HASHES {
        return Err(IntegrityError::MalformedProof("too many hashes"));
    }
    if new.origin != old.origin {
        return Err(IntegrityError::WrongOrigin {
            expected: old.origin.clone(),
            found: new.origin.clone(),
        });
    }
    if new.size < old.size {
        return Err(IntegrityError::Shortened {
            before: old.size,
            now: new.size,
        });
    }
    if old.size == 0 {
        return Ok(());
    }
    if old.size == new.size {
        return if old.root == new.root && proof.is_empty() {
            Ok(())
        } else {
            Err(IntegrityError::Inconsistent)
        };
    }
    tlog::check_tree(&proof.to_vec(), new.size, new.root, old.size, old.root)
        .map_err(|_| IntegrityError::Inconsistent)
}

/// Records which stored hashes a `tlog` computation reads, answering zeros: the indexes a
/// computation needs depend only on sizes and positions, never on hash values, so the server
/// can learn them, read them in one query, and run the computation again for real.
#[derive(Default)]
struct IndexRecorder(RefCell<Vec<u64>>);

impl HashReader for IndexRecorder {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<LogHash>, tlog::Error> {
        self.0.borrow_mut().extend_from_slice(indexes);
        Ok(vec![LogHash::default(); indexes.len()])
    }
}

/// Stored hashes by stored-hash index (see `tlog::stored_hash_index`).
#[derive(Debug, Default, Clone)]
pub struct HashMapReader(pub HashMap<u64, LogHash>);

impl HashReader for HashMapReader {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<LogHash>, tlog::Error> {
        indexes
            .iter()
            .map(|i| self.0.get(i).copied().ok_or(tlog::Error::IndexesNotInTree))
            .collect()
    }
}

/// Why the server's own tree computation failed: a stored hash is missing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the log's stored hashes are incomplete: {0}")]
pub struct TreeError(String);

impl From<tlog::Error> for TreeError {
    fn from(e: tlog::Error) -> Self {
        TreeError(e.to_string())
    }
}

/// The stored-hash indexes the root of a tree of `size` leaves is made of: also exactly what
/// appending the next leaf needs.
pub fn frontier_indexes(size: u64) -> Vec<u64> {
    if size == 0 {
        return Vec::new();
    }
    tlog::sub_tree_index(0, size, Vec::new())
}

/// Appends leaves to a tree of `size` leaves whose frontier hashes are in `hashes`: returns
/// the `(stored index, hash)` pairs to store (also added to `hashes`) and the new root.
pub fn append(
    size: u64,
    leaf_hashes: &[LogHash],
    hashes: &mut HashMapReader,
) -> Result<(Vec<(u64, LogHash)>, LogHash), TreeError> {
    let mut out = Vec::new();
    for (n, h) in (size..).zip(leaf_hashes) {
        let stored = tlog::stored_hashes_for_record_hash(n, *h, hashes)?;
        let first = tlog::stored_hash_index(0, n);
        for (i, s) in (first..).zip(stored) {
            hashes.0.insert(i, s);
            out.push((i, s));
        }
    }
    let new_size = size + leaf_hashes.len() as u64;
    let root = tree_root(new_size, hashes)?;
    Ok((out, root))
}

/// The root of the tree of `size` leaves from stored hashes.
pub fn tree_root(size: u64, hashes: &HashMapReader) -> Result<LogHash, TreeError> {
    Ok(tlog::tree_hash(size, hashes)?)
}

/// The stored-hash indexes an inclusion proof for leaf `index` in a tree of `size` reads.
pub fn inclusion_indexes(size: u64, index: u64) -> Result<Vec<u64>, TreeError> {
    let recorder = IndexRecorder::default();
    tlog::prove_record(size, index, &recorder)?;
    Ok(recorder.0.into_inner())
}

/// The inclusion proof for leaf `index` in a tree of `size`, from stored hashes.
pub fn prove_inclusion(
    size: u64,
    index: u64,
    hashes: &HashMapReader,
) -> Result<Vec<LogHash>, TreeError> {
    Ok(tlog::prove_record(size, index, hashes)?)
}

/// The stored-hash indexes a consistency proof from `old_size` to `size` reads.
pub fn consistency_indexes(size: u64, old_size: u64) -> Result<Vec<u64>, TreeError> {
    let recorder = IndexRecorder::default();
    tlog::prove_tree(size, old_size, &recorder)?;
    Ok(recorder.0.into_inner())
}

/// The consistency proof from `old_size` to `size`, from stored hashes.
pub fn prove_consistency(
    size: u64,
    old_size: u64,
    hashes: &HashMapReader,
) -> Result<Vec<LogHash>, TreeError> {
    Ok(tlog::prove_tree(size, old_size, hashes)?)
}

/// The root of the tree over `leaf_hashes`, computed from the leaves alone (RFC 6962's MTH,
/// by a running frontier): what `verify` compares with the signed checkpoints, trusting no
/// stored interior hash.
#[derive(Debug, Default, Clone)]
pub struct RootBuilder {
    /// Perfect subtree roots, largest first, with their heights.
    stack: Vec<(u32, LogHash)>,
    size: u64,
}

impl RootBuilder {
    pub fn push(&mut self, leaf: LogHash) {
        let mut node = (0u32, leaf);
        while let Some(&(height, left)) = self.stack.last() {
            if height != node.0 {
                break;
            }
            self.stack.pop();
            node = (height + 1, tlog::node_hash(left, node.1));
        }
        self.stack.push(node);
        self.size += 1;
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The root of the leaves pushed so far (the empty tree's hash if none).
    pub fn root(&self) -> LogHash {
        let mut iter = self.stack.iter().rev();
        let Some(&(_, mut acc)) = iter.next() else {
            return tlog::EMPTY_HASH;
        };
        for &(_, left) in iter {
            acc = tlog::node_hash(left, acc);
        }
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> DeviceSigningKey {
        DeviceSigningKey::generate().unwrap()
    }

    fn leaves(n: u64) -> Vec<LogHash> {
        (0..n)
            .map(|i| leaf_hash(format!("leaf {i}").as_bytes()))
            .collect()
    }

    #[test]
    fn a_signed_checkpoint_opens_with_its_key_only() {
        let k = key();
        let cp = Checkpoint {
            origin: "epr.example/log".into(),
            size: 7,
            root: leaf_hash(b"x"),
        };
        let note = sign_checkpoint(&cp, &k);
        let public = LogPublicKey {
            name: cp.origin.clone(),
            key: k.public_key_bytes(),
        };
        assert_eq!(open_checkpoint(&note, &public).unwrap(), cp);
        let other = LogPublicKey {
            name: cp.origin.clone(),
            key: key().public_key_bytes(),
        };
        assert_eq!(
            open_checkpoint(&note, &other),
            Err(IntegrityError::UnknownKey)
        );
        let forged = note.replacen("\n7\n", "\n8\n", 1);
        assert_eq!(
            open_checkpoint(&forged, &public),
            Err(IntegrityError::BadSignature)
        );
        assert!(open_checkpoint(&"x".repeat(MAX_NOTE_BYTES + 1), &public).is_err());
        assert_eq!(LogPublicKey::from_vkey(&public.to_vkey()).unwrap(), public);
        let mut bad = public.to_vkey();
        bad.replace_range(cp.origin.len() + 1..cp.origin.len() + 3, "zz");
        assert!(LogPublicKey::from_vkey(&bad).is_err());
    }

    #[test]
    fn a_reference_statement_opens_with_its_log_key_only_and_names_its_log() {
        let (k, other) = (key(), key());
        let public = |k: &DeviceSigningKey, name: &str| LogPublicKey {
            name: name.into(),
            key: k.public_key_bytes(),
        };
        let statement = ReferenceStatement {
            version: 3,
            document_sha256: "ab".repeat(32),
            imported_at_utc: "2026-12-03T10:00:00.000000Z".into(),
        };
        let note = sign_reference(&k, "o/log", &statement);
        assert_eq!(open_reference(&note, &public(&k, "o/log")), Ok(statement));
        assert_eq!(
            open_reference(&note, &public(&other, "o/log")),
            Err(IntegrityError::UnknownKey)
        );
        let forged = note.replacen("\n3\n", "\n4\n", 1);
        assert_eq!(
            open_reference(&forged, &public(&k, "o/log")),
            Err(IntegrityError::BadSignature)
        );
        // A checkpoint by the same key is not a reference statement.
        let cp = sign_checkpoint(
            &Checkpoint {
                origin: "o/log".into(),
                size: 1,
                root: leaf_hash(b"x"),
            },
            &k,
        );
        assert!(matches!(
            open_reference(&cp, &public(&k, "o/log")),
            Err(IntegrityError::MalformedCheckpoint(_))
        ));
    }

    #[test]
    fn rotations_are_followed_only_when_each_is_signed_by_the_key_before_it() {
        let (k1, k2, k3, forger) = (key(), key(), key(), key());
        let public = |k: &DeviceSigningKey| LogPublicKey {
            name: "o/log".into(),
            key: k.public_key_bytes(),
        };
        let one_two = sign_rotation(&k1, "o/log", &public(&k2));
        let two_three = sign_rotation(&k2, "o/log", &public(&k3));
        // Two steps, given in any order.
        let statements = vec![two_three.clone(), one_two.clone()];
        assert_eq!(
            follow_rotations(&public(&k1), &statements, &public(&k3)).unwrap(),
            public(&k3)
        );
        // A statement naming the forger's key, signed by the forger: refused.
        let forged = sign_rotation(&forger, "o/log", &public(&forger));
        assert_eq!(
            follow_rotations(&public(&k1), &[forged], &public(&forger)),
            Err(IntegrityError::UnknownKey)
        );
        // A statement for another log's name does not count.
        let elsewhere = sign_rotation(&k1, "other/log", &public(&k2));
        assert!(follow_rotations(&public(&k1), &[elsewhere], &public(&k2)).is_err());
        // Missing the middle step: refused.
        assert!(follow_rotations(&public(&k1), &[two_three], &public(&k3)).is_err());
    }

    #[test]
    fn appended_tree_matches_the_leaf_only_root_and_proves() {
        let all = leaves(37);
        let mut hashes = HashMapReader::default();
        let mut builder = RootBuilder::default();
        let mut size = 0u64;
        let mut checkpoints = Vec::new();
        for chunk in all.chunks(5) {
            let (_, root) = append(size, chunk, &mut hashes).unwrap();
            size += chunk.len() as u64;
            for h in chunk {
                builder.push(*h);
            }
            assert_eq!(builder.root(), root);
            checkpoints.push(Checkpoint {
                origin: "o".into(),
                size,
                root,
            });
        }
        let last = checkpoints.last().unwrap().clone();
        for (i, h) in all.iter().enumerate() {
            let proof = prove_inclusion(size, i as u64, &hashes).unwrap();
            check_inclusion(&proof, &last, i as u64, *h).unwrap();
            assert!(check_inclusion(&proof, &last, i as u64, leaf_hash(b"other")).is_err());
        }
        for old in &checkpoints {
            let proof = prove_consistency(size, old.size, &hashes).unwrap();
            check_consistency(&proof, old, &last).unwrap();
        }
        let shorter = &checkpoints[0];
        assert!(matches!(
            check_consistency(&[], &last, shorter),
            Err(IntegrityError::Shortened { .. })
        ));
    }
}
