//! The encrypted device store: the tablet's source of truth while it is offline.
//!
//! Owns: opening and unlocking the SQLCipher file, migrations, encounters and their versions,
//! the sync outbox, supervisor feedback, device settings and the hash-chained audit log. This
//! is the only room with device SQL. It may use `model` and `crypto`, never the network or UI.
//!
//! Rules it keeps:
//! - The whole file is encrypted with a random 256-bit key handed to SQLCipher as a raw key;
//!   the key is stored only wrapped per user in `keyring.json` (see [`keyring`]).
//! - `journal_mode=WAL`, `synchronous=FULL`: a save that returned survives a power cut.
//! - One save is one transaction: current state, new version, outbox entry and audit entry.
//! - A file that will not open is never deleted, recreated or repaired: the error says what
//!   is wrong and the file is left as it was.

pub mod audit;
pub mod encounters;
pub mod keyring;
pub mod migrate;
pub mod outbox;
pub mod recent;
pub mod reference;
pub mod retention;
pub mod shift;

use crate::model::Revision;
use std::path::{Path, PathBuf};

use chrono::Utc;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};
use zeroize::Zeroizing;

use crate::crypto::{DatabaseKey, DeviceSigningKey, KdfParams, KeyError, UserSigner, WrappedKey};
use keyring::{Keyring, KeyringError, KeyringUser};

pub use encounters::{
    EncounterSummary, ListFilter, SaveReceipt, StatusCounts, SyncState, VersionInfo,
};
pub use outbox::{FeedbackEntry, OutboxItem, OutboxPosition, PendingSigner};
pub use recent::RecentChoices;
pub use retention::{DEFAULT_RETENTION_DAYS, Holdings, PurgeReport, TabletState};

/// File name of the encrypted store inside the data directory.
pub const STORE_FILE: &str = "epr.db";
/// File name of the keyring inside the data directory.
pub const KEYRING_FILE: &str = "keyring.json";

/// Everything that can go wrong with the store, in words a crew member or ops engineer can act
/// on. No variant carries patient data.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no store found in {0}: run `epr init` first")]
    NotInitialised(PathBuf),
    #[error("a store already exists in {0}; it has not been touched")]
    AlreadyExists(PathBuf),
    #[error(
        "the keyring is missing from {0} although the store exists; the store has been left as it is"
    )]
    KeyringMissing(PathBuf),
    #[error("unknown user {0:?}")]
    UnknownUser(String),
    #[error("this store has several users ({0}): choose one")]
    ChooseUser(String),
    #[error("a user named {0:?} already exists")]
    UserExists(String),
    #[error("wrong passphrase or PIN")]
    WrongPassphrase,
    #[error(
        "this tablet is being retired and takes no new records: start the record on another tablet"
    )]
    TabletRetiring,
    #[error("that passphrase is not strong enough: {0}")]
    WeakPassphrase(crate::crypto::WeakSecret),
    #[error("too many wrong attempts: try again in {wait_secs} s")]
    RateLimited { wait_secs: i64 },
    #[error(
        "the store file cannot be read: it is damaged, truncated or not an ePR store. It has been left as it is"
    )]
    Unreadable,
    #[error(
        "the store was written by a newer version of this app (schema {found}, this app knows {supported}); update the app. The file has been left as it is"
    )]
    NewerVersion { found: i64, supported: i64 },
    #[error("the store is on read-only storage or its file is write-protected; nothing was saved")]
    ReadOnly,
    #[error("the disk is full; nothing was saved. Free space and try again")]
    DiskFull,
    /// SQLite's I/O errors: a write the storage refused (a file-size limit, a failing card).
    /// SQLite rolled the transaction back, so earlier saves are intact.
    #[error(
        "the tablet's storage failed while reading or writing the store (it may be full or failing); this change was not saved and earlier saves are kept. Free space and try again"
    )]
    StorageFailed,
    #[error("the SQLite library in this build has no encryption (SQLCipher missing)")]
    NotEncrypted,
    #[error("record not found")]
    NotFound,
    #[error("this record is signed; changes must be made as an amendment with a reason")]
    Immutable,
    #[error("an amendment needs a reason")]
    AmendmentNeedsReason,
    #[error("the record is not complete: {}", .0.join(", "))]
    Incomplete(Vec<String>),
    #[error("the stored record could not be read: {0}")]
    Document(DocumentError),
    /// A request reached the store worker while no one had unlocked the store.
    #[error("the store is locked")]
    Locked,
    /// A version was to be signed while the user's own signing key is not open.
    #[error(
        "your signing key is not open on this tablet: lock it and unlock with your passphrase, then sign again (the record is kept as it was)"
    )]
    SignerUnavailable,
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    #[error("key error: {0}")]
    Key(#[from] KeyError),
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database error: {}", describe_sql(.0))]
    Sql(rusqlite::Error),
}

/// Why a stored document or value could not be read or written, without its text.
///
/// serde's messages can quote the value they choke on, and a stored value is patient data,
/// so only serde's category and position are kept. The other variant is a fixed sentence
/// naming which stored item is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    /// serde_json refused a document: its error category and where, never its message.
    #[error("{} error at line {line}, column {column}", json_category(.category))]
    Json {
        category: serde_json::error::Category,
        line: usize,
        column: usize,
    },
    /// A stored column or setting is malformed; the text names which, never its value.
    #[error("{0}")]
    Malformed(&'static str),
}

impl From<serde_json::Error> for DocumentError {
    fn from(e: serde_json::Error) -> Self {
        DocumentError::Json {
            category: e.classify(),
            line: e.line(),
            column: e.column(),
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Document(e.into())
    }
}

impl StoreError {
    /// A stored item is malformed: `what` is a fixed description, never a stored value.
    pub(crate) fn malformed(what: &'static str) -> Self {
        StoreError::Document(DocumentError::Malformed(what))
    }
}

fn json_category(c: &serde_json::error::Category) -> &'static str {
    match c {
        serde_json::error::Category::Io => "JSON I/O",
        serde_json::error::Category::Syntax => "JSON syntax",
        serde_json::error::Category::Data => "JSON data",
        serde_json::error::Category::Eof => "JSON end-of-input",
    }
}

/// rusqlite's error in words fit for a log: SQLite's own message (about the schema, never a
/// row's values) and codes, but not the text of a value that failed to convert.
fn describe_sql(e: &rusqlite::Error) -> String {
    use rusqlite::Error as E;
    match e {
        E::SqliteFailure(code, message) => format!(
            "{:?} (extended code {}){}",
            code.code,
            code.extended_code,
            message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        ),
        E::FromSqlConversionFailure(column, ty, _) => {
            format!("column {column} ({ty}) holds a value that cannot be converted")
        }
        E::ToSqlConversionFailure(_) => "a value could not be converted for SQLite".to_owned(),
        E::IntegralValueOutOfRange(column, _) => {
            format!("column {column} holds an integer out of range")
        }
        E::Utf8Error(..) => "a stored text is not valid UTF-8".to_owned(),
        other => other.to_string(),
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(ErrorCode::NotADatabase) | Some(ErrorCode::DatabaseCorrupt) => {
                StoreError::Unreadable
            }
            Some(ErrorCode::ReadOnly) => StoreError::ReadOnly,
            Some(ErrorCode::DiskFull) => StoreError::DiskFull,
            Some(ErrorCode::SystemIoFailure) => StoreError::StorageFailed,
            _ => StoreError::Sql(e),
        }
    }
}

// Revisions are INTEGER (`i64`) columns in SQLite. `Revision` holds only values an `i64` can,
// so writing one cannot fail; a stored value out of range (negative) is refused on reading
// rather than wrapped. The server's SQLite backend uses these impls too.
impl rusqlite::ToSql for Revision {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.to_i64().into())
    }
}

impl rusqlite::types::FromSql for Revision {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let stored = i64::column_result(value)?;
        Revision::from_i64(stored).map_err(|_| rusqlite::types::FromSqlError::OutOfRange(stored))
    }
}

/// A revision column read as a plain integer; a negative one means damage.
pub(crate) fn revision_from_sql(stored: i64) -> Result<Revision> {
    Revision::from_i64(stored).map_err(|_| StoreError::malformed("a stored revision is negative"))
}

/// Result alias for this room.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Device setting: the tablet's own id, made with its store.
pub const TABLET_ID: &str = "device_uuid";

/// The schema version that keeps users' signing keys (the `signers` table).
const SIGNERS_SCHEMA: i64 = 4;

/// The tablet's own id; made now for a store that never kept one.
fn tablet_id_from(conn: &Connection) -> Result<uuid::Uuid> {
    let stored: Option<String> = conn
        .query_row(
            "SELECT value FROM device_settings WHERE key = ?1",
            params![TABLET_ID],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(text) = stored {
        return uuid::Uuid::parse_str(&text)
            .map_err(|_| StoreError::malformed("the tablet id is damaged"));
    }
    let id = uuid::Uuid::new_v4();
    conn.execute(
        "INSERT INTO device_settings (key, value) VALUES (?1, ?2)",
        params![TABLET_ID, id.to_string()],
    )?;
    Ok(id)
}

/// Keeps a user's signer registration (public key and proof) in the store, to be sent to the
/// server (before any record is pushed) until it is logged there.
fn record_signer(conn: &Connection, signer: &UserSigner) -> Result<()> {
    let identity = signer.identity();
    conn.execute(
        "INSERT OR IGNORE INTO signers (user_id, user_name, public_key, tablet_id, proof, created_at_utc)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            identity.user_id.to_string(),
            identity.user_name,
            identity.public_key,
            identity.tablet_id.to_string(),
            signer.registration_proof()?,
            Utc::now().to_rfc3339(),
        ],
    )?;
    Ok(())
}

/// An unlocked store: one connection, the key that opened it, and who is using it.
pub struct Store {
    conn: Connection,
    data_dir: PathBuf,
    key: Option<DatabaseKey>,
    user: String,
    signing_key: Option<DeviceSigningKey>,
    /// The unlocked user's own signing key: what signs their completed records.
    signer: Option<UserSigner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("data_dir", &self.data_dir)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// The store file path in `data_dir`.
pub fn store_path(data_dir: &Path) -> PathBuf {
    data_dir.join(STORE_FILE)
}

/// The keyring file path in `data_dir`.
pub fn keyring_path(data_dir: &Path) -> PathBuf {
    data_dir.join(KEYRING_FILE)
}

/// True when `data_dir` holds a store (whether or not it can be opened).
pub fn exists(data_dir: &Path) -> bool {
    store_path(data_dir).exists()
}

/// The users who can unlock the store in `data_dir`, for a picker. Reads only the keyring.
pub fn user_names(data_dir: &Path) -> Result<Vec<String>> {
    match Keyring::load(&keyring_path(data_dir))? {
        Some(k) => Ok(k.user_names()),
        None if exists(data_dir) => Err(StoreError::KeyringMissing(data_dir.to_owned())),
        None => Err(StoreError::NotInitialised(data_dir.to_owned())),
    }
}

/// Page cache per connection, in KiB.
const PAGE_CACHE_KIB: u32 = 16 * 1024;

/// Opens a connection and, if `key` is given, keys it. Checks the file is readable before
/// anything writes to it, so a wrong key or damaged file is left untouched.
/// How many times a connection is keyed before a keying failure is reported.
const KEYING_ATTEMPTS: u32 = 3;

/// True for SQLCipher's answer when `PRAGMA key` itself could not be applied (not a wrong
/// key, which only shows at the first read).
fn is_keying_failure(e: &rusqlite::Error) -> bool {
    e.to_string().contains("PRAGMA key or rekey")
}

fn open_connection(path: &Path, key: Option<&DatabaseKey>, create: bool) -> Result<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let mut conn = Connection::open_with_flags(path, flags)?;
    if let Some(key) = key {
        let mut pragma = Zeroizing::new(String::with_capacity(80));
        pragma.push_str("PRAGMA key = \"");
        pragma.push_str(&key.sqlcipher_literal());
        pragma.push_str("\";");
        // Keying can fail transiently while SQLCipher's crypto provider is first set up by
        // several threads at once (seen when many stores are created in parallel): such a
        // failure changes nothing on disk, so the connection is opened again, a bounded
        // number of times, before the error is reported.
        let mut attempts_left = KEYING_ATTEMPTS;
        loop {
            // SQLCipher logs decryption failures to stderr by default; the caller reports them.
            conn.execute_batch("PRAGMA cipher_log_level = NONE;")?;
            match conn.execute_batch(&pragma) {
                Ok(()) => break,
                Err(e) if attempts_left > 1 && is_keying_failure(&e) => {
                    attempts_left -= 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    conn = Connection::open_with_flags(path, flags)?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let version: Option<String> = conn
            .query_row("PRAGMA cipher_version", [], |r| r.get(0))
            .optional()?;
        if version.is_none_or(|v| v.is_empty()) {
            return Err(StoreError::NotEncrypted);
        }
    }
    // The first read decrypts page 1: a wrong key or damaged file fails here, before any write.
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })?;
    let found = migrate::current_version(&conn)?;
    if found > migrate::latest_version() {
        return Err(StoreError::NewerVersion {
            found,
            supported: migrate::latest_version(),
        });
    }
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // The app's worker, its sync engine and the CLI each hold a connection. A deferred
    // transaction that reads first and then writes cannot wait for another writer (SQLite
    // answers "database is locked" at once instead of calling the busy handler), so every
    // transaction on this connection takes the write lock at BEGIN and waits its turn.
    conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::ReadOnly);
    }
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")?;
    // Every page read from the file is decrypted and its HMAC checked, so a page kept in
    // memory saves real work: a sync drain revisits the same pages for every batch, and
    // SQLite's default cache (2 MiB) holds too few of them.
    conn.execute_batch(&format!("PRAGMA cache_size = -{PAGE_CACHE_KIB};"))?;
    Ok(conn)
}

impl Store {
    /// Creates a new store in `data_dir` for its first user, with the interactive KDF cost.
    pub fn create(data_dir: &Path, user: &str, passphrase: &str) -> Result<Self> {
        Self::create_with(
            data_dir,
            user,
            passphrase,
            KdfParams::INTERACTIVE,
            migrate::latest_version(),
        )
    }

    /// Creates a new store with explicit KDF parameters and schema version. Tests use this to
    /// make many stores quickly and to build stores at an old schema.
    #[doc(hidden)]
    pub fn create_with(
        data_dir: &Path,
        user: &str,
        passphrase: &str,
        kdf: KdfParams,
        schema_version: i64,
    ) -> Result<Self> {
        let db = store_path(data_dir);
        let kr = keyring_path(data_dir);
        if db.exists() || kr.exists() {
            return Err(StoreError::AlreadyExists(data_dir.to_owned()));
        }
        // Owner-only on disk: the directory (when created here), the store and its WAL.
        crate::fs_atomic::create_private_dir_all(data_dir)
            .and_then(|()| crate::fs_atomic::create_private_file(&db))
            .map_err(|source| StoreError::DataDir {
                path: data_dir.to_owned(),
                source,
            })?;
        let key = DatabaseKey::generate()?;
        let (wrapped, secret) = WrappedKey::wrap_with_secret(&key, passphrase, kdf, user)?;
        let mut conn = open_connection(&db, Some(&key), true)?;
        migrate::migrate_to(&mut conn, schema_version)?;
        let signing = DeviceSigningKey::generate()?;
        let tablet_id = uuid::Uuid::new_v4();
        conn.execute(
            "INSERT INTO device_settings (key, value) VALUES ('signing_key_pkcs8', ?1), (?2, ?3)",
            params![
                hex::encode(signing.pkcs8()),
                TABLET_ID,
                tablet_id.to_string()
            ],
        )?;
        // A store made at an older schema (tests of upgrades) gets its user's key when it is
        // first unlocked at the current one, as a real older store does.
        let signer = if schema_version >= SIGNERS_SCHEMA {
            let signer = UserSigner::generate(user, tablet_id)?;
            record_signer(&conn, &signer)?;
            Some(signer)
        } else {
            None
        };
        Keyring::new(KeyringUser {
            name: user.to_owned(),
            wrapped,
            failed_attempts: 0,
            locked_until_utc: None,
            signer: signer.as_ref().map(|s| s.seal(&secret, user)).transpose()?,
        })
        .save(&kr)?;
        let mut store = Self {
            conn,
            data_dir: data_dir.to_owned(),
            key: Some(key),
            user: user.to_owned(),
            signing_key: Some(signing),
            signer,
        };
        store.audit(audit::Action::StoreCreated, None, None)?;
        Ok(store)
    }

    /// Unlocks the store in `data_dir`. `user` may be omitted when there is only one.
    /// Failed attempts are counted in the keyring and rate-limited; the store file itself is
    /// not opened until the passphrase has been proven right. A key sealed in an older format
    /// or under weaker parameters than [`KdfParams::INTERACTIVE`] is sealed again.
    pub fn unlock(data_dir: &Path, user: Option<&str>, passphrase: &str) -> Result<Self> {
        Self::unlock_with_policy(data_dir, user, passphrase, KdfParams::INTERACTIVE)
    }

    /// [`Store::unlock`], re-sealing the key under `policy` when the stored seal is older or
    /// weaker.
    pub fn unlock_with_policy(
        data_dir: &Path,
        user: Option<&str>,
        passphrase: &str,
        policy: KdfParams,
    ) -> Result<Self> {
        let kr_path = keyring_path(data_dir);
        let db = store_path(data_dir);
        let mut keyring = match Keyring::load(&kr_path)? {
            Some(k) => k,
            None if db.exists() => return Err(StoreError::KeyringMissing(data_dir.to_owned())),
            None => return Err(StoreError::NotInitialised(data_dir.to_owned())),
        };
        if !db.exists() {
            return Err(StoreError::NotInitialised(data_dir.to_owned()));
        }
        let name = match user {
            Some(u) => u.to_owned(),
            None => match keyring.users.as_slice() {
                [only] => only.name.clone(),
                _ => return Err(StoreError::ChooseUser(keyring.user_names().join(", "))),
            },
        };
        let now = Utc::now();
        let entry = keyring
            .user_mut(&name)
            .ok_or_else(|| StoreError::UnknownUser(name.clone()))?;
        if let Some(wait_secs) = entry.wait_secs(now) {
            return Err(StoreError::RateLimited { wait_secs });
        }
        let (key, mut secret) = match entry.wrapped.open(passphrase, &name) {
            Ok(k) => k,
            Err(KeyError::WrongPassphrase) => {
                entry.record_failure(now);
                keyring.save(&kr_path)?;
                return Err(StoreError::WrongPassphrase);
            }
            Err(e) => return Err(e.into()),
        };
        // The user's own signing key opens with the same secret. One that will not open (the
        // entry damaged or edited) is replaced below by a new key: signatures made with the
        // old one keep verifying against its logged registration.
        let mut signer = match entry.signer.as_ref().map(|s| s.open(&secret, &name)) {
            Some(Ok(s)) => Some(s),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "a user's sealed signing key did not open; a new one is made");
                None
            }
            None => None,
        };
        let rewrap = entry.wrapped.needs_rewrap(policy);
        if rewrap {
            let stronger = KdfParams {
                memory_kib: entry.wrapped.kdf.memory_kib.max(policy.memory_kib),
                iterations: entry.wrapped.kdf.iterations.max(policy.iterations),
                parallelism: entry.wrapped.kdf.parallelism.max(policy.parallelism),
            };
            let (wrapped, new_secret) =
                WrappedKey::wrap_with_secret(&key, passphrase, stronger, &name)?;
            entry.wrapped = wrapped;
            secret = new_secret;
            entry.signer = signer
                .as_ref()
                .map(|s| s.seal(&secret, &name))
                .transpose()?;
        }
        if entry.failed_attempts > 0 || rewrap {
            entry.record_success();
            keyring.format = keyring::KEYRING_FORMAT;
            keyring.save(&kr_path)?;
        }
        let mut conn = open_connection(&db, Some(&key), false)?;
        migrate::migrate_to(&mut conn, migrate::latest_version())?;
        // Kept in the store on every unlock (a no-op when it is): a store restored from a copy
        // older than the keyring still sends this key for registration.
        if let Some(s) = &signer {
            record_signer(&conn, s)?;
        }
        if signer.is_none() {
            let made = UserSigner::generate(&name, tablet_id_from(&conn)?)?;
            record_signer(&conn, &made)?;
            if let Some(entry) = keyring.user_mut(&name) {
                entry.signer = Some(made.seal(&secret, &name)?);
                entry.record_success();
            }
            keyring.format = keyring::KEYRING_FORMAT;
            keyring.save(&kr_path)?;
            signer = Some(made);
        }
        drop(secret);
        let mut store = Self {
            conn,
            data_dir: data_dir.to_owned(),
            key: Some(key),
            user: name,
            signing_key: None,
            signer,
        };
        store.signing_key = Some(store.load_signing_key()?);
        store.audit(audit::Action::Unlocked, None, None)?;
        Ok(store)
    }

    /// Opens the store with a key already recovered (the crew's in-memory quick PIN after an
    /// idle lock), for a user the keyring names, with that user's signing key if it was kept
    /// beside the key. No key derivation from the passphrase.
    pub fn open_with_key(
        data_dir: &Path,
        user: &str,
        key: DatabaseKey,
        signer: Option<UserSigner>,
    ) -> Result<Self> {
        let keyring = match Keyring::load(&keyring_path(data_dir))? {
            Some(k) => k,
            None => return Err(StoreError::KeyringMissing(data_dir.to_owned())),
        };
        if !keyring.users.iter().any(|u| u.name == user) {
            return Err(StoreError::UnknownUser(user.to_owned()));
        }
        let conn = open_connection(&store_path(data_dir), Some(&key), false)?;
        let mut store = Self {
            conn,
            data_dir: data_dir.to_owned(),
            key: Some(key),
            user: user.to_owned(),
            signing_key: None,
            signer,
        };
        store.signing_key = Some(store.load_signing_key()?);
        store.audit(audit::Action::UnlockedWithPin, None, None)?;
        Ok(store)
    }

    /// The database key, to seal under an in-memory PIN. Never written anywhere.
    pub fn database_key(&self) -> Result<&DatabaseKey> {
        self.key.as_ref().ok_or(StoreError::NotEncrypted)
    }

    /// A second connection to the same store for another thread (the sync engine), keyed
    /// with the key already in memory: no second key derivation.
    pub fn open_another(&self) -> Result<Self> {
        let conn = open_connection(&store_path(&self.data_dir), self.key.as_ref(), false)?;
        let signing = self.load_signing_key_from(&conn)?;
        Ok(Self {
            conn,
            data_dir: self.data_dir.clone(),
            key: self
                .key
                .as_ref()
                .map(|k| DatabaseKey::from_bytes(*k.as_bytes())),
            user: self.user.clone(),
            signing_key: Some(signing),
            signer: self
                .signer
                .as_ref()
                .map(UserSigner::try_clone)
                .transpose()?,
        })
    }

    /// An unencrypted store at `path`, for the benchmark that measures SQLCipher's overhead.
    /// Never used by the app.
    #[doc(hidden)]
    pub fn create_plain_for_benchmark(path: &Path) -> Result<Self> {
        let mut conn = open_connection(path, None, true)?;
        migrate::migrate_to(&mut conn, migrate::latest_version())?;
        let signing = DeviceSigningKey::generate()?;
        conn.execute(
            "INSERT INTO device_settings (key, value) VALUES ('signing_key_pkcs8', ?1)",
            params![hex::encode(signing.pkcs8())],
        )?;
        let signer = UserSigner::generate("benchmark", tablet_id_from(&conn)?)?;
        record_signer(&conn, &signer)?;
        Ok(Self {
            conn,
            data_dir: path.parent().map(Path::to_owned).unwrap_or_default(),
            key: None,
            user: "benchmark".into(),
            signing_key: Some(signing),
            signer: Some(signer),
        })
    }

    fn load_signing_key(&self) -> Result<DeviceSigningKey> {
        self.load_signing_key_from(&self.conn)
    }

    fn load_signing_key_from(&self, conn: &Connection) -> Result<DeviceSigningKey> {
        let hex_key: String = conn
            .query_row(
                "SELECT value FROM device_settings WHERE key = 'signing_key_pkcs8'",
                [],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| StoreError::malformed("device signing key missing"))?;
        let bytes = Zeroizing::new(
            hex::decode(hex_key)
                .map_err(|_| StoreError::malformed("device signing key damaged"))?,
        );
        Ok(DeviceSigningKey::from_pkcs8(&bytes)?)
    }

    /// The device's signing key (for enrolment: its public half goes to the server).
    pub fn signing_key(&self) -> Result<&DeviceSigningKey> {
        self.signing_key
            .as_ref()
            .ok_or_else(|| StoreError::malformed("device signing key missing"))
    }

    /// The unlocked user's own signing key, if open (to keep beside a quick PIN).
    pub fn signer(&self) -> Option<&UserSigner> {
        self.signer.as_ref()
    }

    /// The tablet's own id, made with its store: version signatures (format 2) and signer
    /// registrations name it.
    pub fn tablet_id(&self) -> Result<uuid::Uuid> {
        tablet_id_from(&self.conn)
    }

    /// The user who unlocked this store; recorded as the actor in the audit log.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Adds another user who can unlock this store with their own passphrase, which must be
    /// strong enough to resist offline guessing ([`crate::crypto::check_secret`]).
    pub fn add_user(&mut self, name: &str, passphrase: &str, kdf: KdfParams) -> Result<()> {
        crate::crypto::check_secret(passphrase, &[name]).map_err(StoreError::WeakPassphrase)?;
        let kr_path = keyring_path(&self.data_dir);
        let mut keyring = Keyring::load(&kr_path)?
            .ok_or_else(|| StoreError::KeyringMissing(self.data_dir.clone()))?;
        if keyring.users.iter().any(|u| u.name == name) {
            return Err(StoreError::UserExists(name.to_owned()));
        }
        let key = self.key.as_ref().ok_or(StoreError::NotEncrypted)?;
        let (wrapped, secret) = WrappedKey::wrap_with_secret(key, passphrase, kdf, name)?;
        let signer = UserSigner::generate(name, tablet_id_from(&self.conn)?)?;
        record_signer(&self.conn, &signer)?;
        keyring.users.push(KeyringUser {
            name: name.to_owned(),
            wrapped,
            failed_attempts: 0,
            locked_until_utc: None,
            signer: Some(signer.seal(&secret, name)?),
        });
        keyring.format = keyring::KEYRING_FORMAT;
        keyring.save(&kr_path)?;
        self.audit(audit::Action::UserAdded, None, None)?;
        Ok(())
    }

    /// Changes the unlocked user's passphrase (which must be strong enough, as for
    /// [`Store::add_user`]): the database key is re-wrapped, the data is not re-encrypted.
    pub fn change_passphrase(&mut self, new_passphrase: &str, kdf: KdfParams) -> Result<()> {
        crate::crypto::check_secret(new_passphrase, &[self.user.as_str()])
            .map_err(StoreError::WeakPassphrase)?;
        let kr_path = keyring_path(&self.data_dir);
        let mut keyring = Keyring::load(&kr_path)?
            .ok_or_else(|| StoreError::KeyringMissing(self.data_dir.clone()))?;
        let key = self.key.as_ref().ok_or(StoreError::NotEncrypted)?;
        let (wrapped, secret) = WrappedKey::wrap_with_secret(key, new_passphrase, kdf, &self.user)?;
        // The signing key is sealed again under the new secret (without it open, the entry
        // is cleared and a new key made at the next passphrase unlock).
        let signer = self
            .signer
            .as_ref()
            .map(|s| s.seal(&secret, &self.user))
            .transpose()?;
        let user = self.user.clone();
        let entry = keyring
            .user_mut(&user)
            .ok_or(StoreError::UnknownUser(user))?;
        entry.wrapped = wrapped;
        entry.signer = signer;
        entry.record_success();
        keyring.format = keyring::KEYRING_FORMAT;
        keyring.save(&kr_path)?;
        self.audit(audit::Action::PassphraseChanged, None, None)?;
        Ok(())
    }

    /// Reads a device setting.
    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT value FROM device_settings WHERE key = ?1",
                params![key],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Writes a device setting.
    pub fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO device_settings (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    /// Audits that the server failed its integrity check.
    pub fn record_integrity_failure(&mut self) -> Result<()> {
        self.audit(audit::Action::ServerIntegrityFailed, None, None)
    }

    /// Removes a device setting (nothing happens if it is not set).
    pub fn delete_setting(&self, key: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM device_settings WHERE key = ?1", params![key])?;
        Ok(())
    }

    /// Runs SQLite's and SQLCipher's integrity checks; returns the problems found (empty when
    /// the file is sound).
    ///
    /// Checkpoints the WAL first. A checkpoint cut short (a full disk, power loss) can leave a
    /// torn page in the main file whose good copy is still in the WAL; SQLite reads the WAL
    /// copy and rewrites the page at the next checkpoint, so it is not damage. SQLCipher's
    /// check reads the main file directly and would report it.
    pub fn integrity_problems(&self) -> Result<Vec<String>> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(FULL)", [], |_| Ok(()))?;
        let mut problems = Vec::new();
        let mut stmt = self.conn.prepare("PRAGMA integrity_check")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        for row in rows {
            let row = row?;
            if row != "ok" {
                problems.push(row);
            }
        }
        if self.key.is_some() {
            let mut stmt = self.conn.prepare("PRAGMA cipher_integrity_check")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            for row in rows {
                problems.push(row?);
            }
        }
        Ok(problems)
    }

    /// The SQLCipher version linked into this build (empty if none).
    pub fn cipher_version(&self) -> Result<String> {
        Ok(self
            .conn
            .query_row("PRAGMA cipher_version", [], |r| {
                r.get::<_, Option<String>>(0)
            })
            .optional()?
            .flatten()
            .unwrap_or_default())
    }

    /// Overwrites the schema version, to simulate a store written by a future app.
    #[doc(hidden)]
    pub fn set_user_version_for_tests(&self, version: i64) -> Result<()> {
        self.conn.pragma_update(None, "user_version", version)?;
        Ok(())
    }

    /// Runs raw SQL on this connection, to damage a store on purpose in tests (a document
    /// that no longer parses). Never used by the app.
    #[doc(hidden)]
    pub fn execute_batch_for_tests(&self, sql: &str) -> Result<()> {
        self.conn.execute_batch(sql)?;
        Ok(())
    }

    /// The schema version of the open store.
    pub fn schema_version(&self) -> Result<i64> {
        Ok(migrate::current_version(&self.conn)?)
    }

    /// Audits an action taken by `actor`, a user of this tablet other than the one who
    /// unlocked it (a crew member signing on to the shift).
    pub(crate) fn audit_by(&mut self, actor: &str, action: audit::Action) -> Result<()> {
        let mac = self.audit_mac();
        let tx = self.conn.transaction()?;
        audit::append(&tx, &mac, actor, action, None, None)?;
        tx.commit()?;
        Ok(())
    }

    pub(crate) fn audit(
        &mut self,
        action: audit::Action,
        encounter_id: Option<uuid::Uuid>,
        revision: Option<Revision>,
    ) -> Result<()> {
        let mac = self.audit_mac();
        let tx = self.conn.transaction()?;
        audit::append(&tx, &mac, &self.user, action, encounter_id, revision)?;
        tx.commit()?;
        Ok(())
    }
}
