//! SQLite server storage: the embedded default (`sqlite://PATH`).
//!
//! One connection in WAL mode behind a mutex, used from `spawn_blocking` so no SQLite call
//! ever runs on an async worker. One writer is what SQLite allows anyway, and a batch of a
//! hundred versions commits in one transaction, so this is not the bottleneck. The file is a
//! plain SQLite database (no SQLCipher key): the server's disk encryption is the host's job.
//!
//! This file holds SQL text and row mapping only; the rules are in [`super::core`]. The core's
//! operations are `async` so PostgreSQL can await its round trips; here every step is a
//! synchronous call, so each operation's future completes in one poll on the blocking thread.

use std::future::Future;
use std::path::Path;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, named_params, params};
use uuid::Uuid;

use super::core::{self, EnrolmentCodeRow, RecordHead, Tx, TxKind};
use super::core::{count_col, decision_col, log_index_col, log_index_value, rev_col, status_col};
use super::*;
use crate::protocol::{DecisionRecord, FeedbackItem, ReviewSummary};

const MIGRATIONS: &[(u32, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("../../../migrations/server/sqlite/0001_initial.sql"),
    ),
    (
        2,
        "accounts_and_limits",
        include_str!("../../../migrations/server/sqlite/0002_accounts_and_limits.sql"),
    ),
    (
        3,
        "transparency_log",
        include_str!("../../../migrations/server/sqlite/0003_transparency_log.sql"),
    ),
    (
        4,
        "user_signers",
        include_str!("../../../migrations/server/sqlite/0004_user_signers.sql"),
    ),
    (
        5,
        "device_reports",
        include_str!("../../../migrations/server/sqlite/0005_device_reports.sql"),
    ),
    (
        6,
        "recovery",
        include_str!("../../../migrations/server/sqlite/0006_recovery.sql"),
    ),
    (
        7,
        "reference_data",
        include_str!("../../../migrations/server/sqlite/0007_reference_data.sql"),
    ),
    (
        8,
        "review_destination",
        include_str!("../../../migrations/server/sqlite/0008_review_destination.sql"),
    ),
];

/// The SQLite implementation of [`Storage`].
#[derive(Debug, Clone)]
pub struct SqliteStorage {
    conn: Arc<Mutex<Connection>>,
}

fn uuid_col(text: &str) -> Result<Uuid, StorageError> {
    Uuid::parse_str(text).map_err(|_| StorageError::Corrupt("uuid".into()))
}

/// Runs a core operation whose every step is synchronous. A step that waited would be a
/// programming error here, reported as such rather than hung on.
fn complete<T>(fut: impl Future<Output = Result<T, StorageError>>) -> Result<T, StorageError> {
    match pin!(fut).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => Err(StorageError::Task("a SQLite step did not complete".into())),
    }
}

/// Collects mapped rows, with the mapping free to fail with a [`StorageError`].
fn collect<T>(
    mut rows: rusqlite::Rows<'_>,
    mut map: impl FnMut(&Row<'_>) -> Result<T, StorageError>,
) -> Result<Vec<T>, StorageError> {
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(map(r)?);
    }
    Ok(out)
}

/// One transaction on the shared connection. A writer begins `IMMEDIATE`: it takes the write
/// lock at `BEGIN` and waits its turn (busy timeout) instead of failing with "database is
/// locked" when it upgrades from reading; this matters because `serve` and the ops commands
/// (`enroll-device`, `add-user`, `verify`) each open the file. A reader runs in autocommit.
/// Dropped without [`SqliteTx::commit`], it rolls back.
struct SqliteTx<'c> {
    conn: &'c Connection,
    open: bool,
}

impl<'c> SqliteTx<'c> {
    fn begin(conn: &'c Connection, kind: TxKind) -> Result<Self, StorageError> {
        let open = kind == TxKind::Write;
        if open {
            conn.execute_batch("BEGIN IMMEDIATE")?;
        }
        Ok(Self { conn, open })
    }

    fn commit(mut self) -> Result<(), StorageError> {
        if self.open {
            self.conn.execute_batch("COMMIT")?;
            self.open = false;
        }
        Ok(())
    }
}

impl Drop for SqliteTx<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

impl SqliteStorage {
    /// Opens (creating if needed) the database file and applies migrations.
    pub async fn open(path: &Path) -> Result<Self, StorageError> {
        Self::open_with_key(path, None).await
    }

    /// [`SqliteStorage::open`] encrypted with SQLCipher under `key` (the demo server in the
    /// crew app, whose database must be as well protected as the tablet's store). A wrong key
    /// or a plain file fails here, before anything is written.
    pub async fn open_encrypted(
        path: &Path,
        key: &crate::crypto::DatabaseKey,
    ) -> Result<Self, StorageError> {
        Self::open_with_key(path, Some(key.sqlcipher_literal())).await
    }

    async fn open_with_key(
        path: &Path,
        key_literal: Option<zeroize::Zeroizing<String>>,
    ) -> Result<Self, StorageError> {
        let path = path.to_owned();
        let conn = tokio::task::spawn_blocking(move || -> Result<Connection, StorageError> {
            // Two processes opening one new file at once (replicas starting together, or `serve`
            // and an admin command) can meet SQLite's immediate "database is locked" while one
            // switches the file to WAL or migrates it: that is a turn to wait, not a fault, so
            // the open is tried again for up to ten seconds.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                match open_once(&path, key_literal.as_ref()) {
                    Err(StorageError::Sqlite(e))
                        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                            && std::time::Instant::now() < deadline =>
                    {
                        std::thread::sleep(std::time::Duration::from_millis(50));
                    }
                    other => return other,
                }
            }
        })
        .await
        .map_err(|e| StorageError::Task(e.to_string()))??;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `op` in one transaction on the blocking pool; commits if it returns `Ok`.
    async fn run<T, F>(&self, kind: TxKind, op: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&mut SqliteTx<'_>) -> Result<T, StorageError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let guard = conn
                .lock()
                .map_err(|_| StorageError::Task("database lock poisoned".into()))?;
            let mut tx = SqliteTx::begin(&guard, kind)?;
            let out = op(&mut tx)?;
            tx.commit()?;
            Ok(out)
        })
        .await
        .map_err(|e| StorageError::Task(e.to_string()))?
    }
}

/// One attempt at opening the file: key, pragmas, migrations, and logging what a database from
/// before the log holds. See [`SqliteStorage::open_with_key`].
fn open_once(
    path: &Path,
    key_literal: Option<&zeroize::Zeroizing<String>>,
) -> Result<Connection, StorageError> {
    // Owner-only on disk: SQLite gives the WAL and shared-memory files the same mode.
    crate::fs_atomic::create_private_file(path).map_err(|e| StorageError::File(e.to_string()))?;
    let conn = Connection::open(path)?;
    if let Some(literal) = key_literal {
        conn.execute_batch("PRAGMA cipher_log_level = NONE;")?;
        let mut pragma = zeroize::Zeroizing::new(String::with_capacity(80));
        pragma.push_str("PRAGMA key = \"");
        pragma.push_str(literal);
        pragma.push_str("\";");
        conn.execute_batch(&pragma)?;
        // The first read decrypts page 1: a wrong key fails here.
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })?;
    }
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // In a write transaction from the start: in autocommit the statement would read
    // first and then upgrade to a write, and a second process migrating the same file
    // at that moment makes the upgrade fail at once ("database is locked") instead of
    // waiting its turn.
    let tx = SqliteTx::begin(&conn, TxKind::Write)?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS server_migrations (
                     version INTEGER PRIMARY KEY,
                     name TEXT NOT NULL,
                     applied_at_utc TEXT NOT NULL
                 )",
    )?;
    tx.commit()?;
    for &migration in MIGRATIONS {
        let mut tx = SqliteTx::begin(&conn, TxKind::Write)?;
        complete(core::migrate_one(&mut tx, migration, Utc::now()))?;
        tx.commit()?;
    }
    let mut tx = SqliteTx::begin(&conn, TxKind::Write)?;
    complete(core::backfill_log(&mut tx))?;
    tx.commit()?;
    Ok(conn)
}

fn signer_row(r: &Row<'_>) -> Result<SignerRow, StorageError> {
    Ok(SignerRow {
        device_id: uuid_col(&r.get::<_, String>(0)?)?,
        identity: crate::crypto::SignerIdentity {
            user_id: uuid_col(&r.get::<_, String>(1)?)?,
            tablet_id: uuid_col(&r.get::<_, String>(2)?)?,
            user_name: r.get(3)?,
            public_key: r.get(4)?,
        },
        proof: r.get(5)?,
        device_endorsement: r.get(6)?,
        leaf_idx: log_index_col(r.get(7)?)?,
        registered_at_utc: parse_utc(&r.get::<_, String>(8)?)?,
    })
}

fn stored_version(r: &Row<'_>) -> Result<StoredVersion, StorageError> {
    let status_text: String = r.get(3)?;
    Ok(StoredVersion {
        seq: r.get(0)?,
        record_id: uuid_col(&r.get::<_, String>(1)?)?,
        revision: rev_col(r.get(2)?)?,
        status: RecordStatus::parse(&status_text),
        status_text,
        document: r.get(4)?,
        content_sha256: r.get(5)?,
        signature: r.get(6)?,
        saved_at_utc: parse_utc(&r.get::<_, String>(7)?)?,
        received_at_utc: parse_utc(&r.get::<_, String>(8)?)?,
        device_id: uuid_col(&r.get::<_, String>(9)?)?,
        public_key_b64: r.get::<_, Option<String>>(10)?.unwrap_or_default(),
        signer_user_id: r
            .get::<_, Option<String>>(11)?
            .as_deref()
            .map(uuid_col)
            .transpose()?,
        signer: SignerKey::from_join(
            r.get(12)?,
            r.get::<_, Option<String>>(13)?
                .as_deref()
                .map(uuid_col)
                .transpose()?,
            r.get(14)?,
        ),
    })
}

const REVIEW_WHERE: &str = "r.signed_revision IS NOT NULL
     AND (:from IS NULL OR r.signed_saved_at_utc >= :from)
     AND (:to IS NULL OR r.signed_saved_at_utc < :to)
     AND (:min_news2 IS NULL OR r.latest_news2 >= :min_news2)
     AND (:q IS NULL OR r.search_text LIKE :q ESCAPE '\\')
     AND (:dest IS NULL OR r.destination_ods = :dest)";

impl Tx for SqliteTx<'_> {
    async fn lock_for_ordering(&mut self) -> Result<(), StorageError> {
        // Every writer already holds SQLite's one write lock from BEGIN IMMEDIATE.
        Ok(())
    }

    async fn migration_applied(&mut self, version: u32) -> Result<bool, StorageError> {
        let sql = "SELECT 1 FROM server_migrations WHERE version = ?1";
        let row: Option<i64> = self
            .conn
            .query_row(sql, params![version], |r| r.get(0))
            .optional()?;
        Ok(row.is_some())
    }

    async fn apply_migration(
        &mut self,
        version: u32,
        name: &str,
        sql: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        self.conn.execute_batch(sql)?;
        self.conn.execute(
            "INSERT INTO server_migrations (version, name, applied_at_utc) VALUES (?1, ?2, ?3)",
            params![version, name, utc_text(now)],
        )?;
        Ok(())
    }

    async fn insert_enrolment_code(
        &mut self,
        code_hash: &str,
        device_name: &str,
        now: DateTime<Utc>,
        expires_at_utc: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        self.conn.execute(
            "INSERT INTO enrolment_codes (code_hash, device_name, created_at_utc, expires_at_utc)
             VALUES (?1, ?2, ?3, ?4)",
            params![
                code_hash,
                device_name,
                utc_text(now),
                utc_text(expires_at_utc)
            ],
        )?;
        Ok(())
    }

    async fn enrolment_code(
        &mut self,
        code_hash: &str,
    ) -> Result<Option<EnrolmentCodeRow>, StorageError> {
        let sql = "SELECT expires_at_utc, used_at_utc, device_name FROM enrolment_codes
                   WHERE code_hash = ?1";
        let row: Option<(String, Option<String>, String)> = self
            .conn
            .query_row(sql, params![code_hash], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        row.map(|(expires, used, device_name)| {
            Ok(EnrolmentCodeRow {
                device_name,
                expires_at_utc: parse_utc(&expires)?,
                used: used.is_some(),
            })
        })
        .transpose()
    }

    async fn claim_enrolment_code(
        &mut self,
        code_hash: &str,
        device_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        let n = self.conn.execute(
            "UPDATE enrolment_codes SET used_at_utc = ?2, device_id = ?3
             WHERE code_hash = ?1 AND used_at_utc IS NULL",
            params![code_hash, utc_text(now), device_id.to_string()],
        )?;
        Ok(n == 1)
    }

    async fn insert_device(
        &mut self,
        d: &NewDevice,
        device_name: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        self.conn.execute(
            "INSERT INTO devices (device_id, name, public_key, token_hash, enrolled_at_utc)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                d.device_id.to_string(),
                device_name,
                d.public_key_b64,
                d.token_hash,
                utc_text(now)
            ],
        )?;
        Ok(())
    }

    async fn device_by_token_hash(
        &mut self,
        token_hash: &str,
    ) -> Result<Option<DeviceIdentity>, StorageError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT device_id, name, public_key, revoked_at_utc, last_seen_utc FROM devices
             WHERE token_hash = ?1",
        )?;
        let found = collect(stmt.query(params![token_hash])?, |r| {
            Ok(DeviceIdentity {
                device_id: uuid_col(&r.get::<_, String>(0)?)?,
                device_name: r.get(1)?,
                public_key_b64: r.get(2)?,
                revoked: r.get::<_, Option<String>>(3)?.is_some(),
                last_seen_utc: opt_utc(r.get(4)?)?,
            })
        })?;
        Ok(found.into_iter().next())
    }

    async fn active_device_has_key(&mut self, public_key_b64: &str) -> Result<bool, StorageError> {
        let sql = "SELECT 1 FROM devices WHERE public_key = ?1 AND revoked_at_utc IS NULL";
        Ok(self
            .conn
            .query_row(sql, params![public_key_b64], |_| Ok(()))
            .optional()?
            .is_some())
    }

    async fn touch_device(
        &mut self,
        device_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let sql = "UPDATE devices SET last_seen_utc = ?2 WHERE device_id = ?1";
        self.conn
            .execute(sql, params![device_id.to_string(), utc_text(now)])?;
        Ok(())
    }

    async fn list_devices(&mut self) -> Result<Vec<DeviceSummary>, StorageError> {
        let mut stmt = self.conn.prepare(
            "SELECT device_id, name, enrolled_at_utc, last_seen_utc, revoked_at_utc, public_key,
                    pending, oldest_pending_utc, held_versions, app_version, verified_tree_size,
                    reported_at_utc, retiring_at_utc, retired_at_utc
             FROM devices ORDER BY enrolled_at_utc, device_id",
        )?;
        let count = |v: Option<i64>| v.and_then(|n| u64::try_from(n).ok());
        collect(stmt.query([])?, |r| {
            let revoked_at_utc = opt_utc(r.get(4)?)?;
            Ok(DeviceSummary {
                device_id: uuid_col(&r.get::<_, String>(0)?)?,
                name: r.get(1)?,
                public_key: r.get(5)?,
                enrolled_at_utc: parse_utc(&r.get::<_, String>(2)?)?,
                last_seen_utc: opt_utc(r.get(3)?)?,
                revoked: revoked_at_utc.is_some(),
                revoked_at_utc,
                pending: count(r.get(6)?),
                oldest_pending_utc: opt_utc(r.get(7)?)?,
                held_versions: count(r.get(8)?),
                app_version: r.get(9)?,
                verified_tree_size: count(r.get(10)?),
                reported_at_utc: opt_utc(r.get(11)?)?,
                retiring_at_utc: opt_utc(r.get(12)?)?,
                retired_at_utc: opt_utc(r.get(13)?)?,
            })
        })
    }

    async fn record_device_report(
        &mut self,
        device_id: Uuid,
        report: &crate::protocol::DeviceReport,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let signed = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.conn.execute(
            "UPDATE devices SET pending = ?2, oldest_pending_utc = ?3, held_versions = ?4,
                    app_version = ?5, verified_tree_size = ?6, reported_at_utc = ?7,
                    last_seen_utc = ?7
             WHERE device_id = ?1",
            params![
                device_id.to_string(),
                signed(report.pending),
                report.oldest_pending_utc.map(utc_text),
                signed(report.held_versions),
                report.app_version,
                report.verified_tree_size.map(signed),
                utc_text(now),
            ],
        )?;
        Ok(())
    }

    async fn device_lifecycle(
        &mut self,
        device_id: Uuid,
    ) -> Result<Option<core::DeviceLifecycle>, StorageError> {
        Ok(self
            .conn
            .query_row(
                "SELECT retiring_at_utc IS NOT NULL, retired_at_utc IS NOT NULL,
                        revoked_at_utc IS NOT NULL
                 FROM devices WHERE device_id = ?1",
                params![device_id.to_string()],
                |r| {
                    Ok(core::DeviceLifecycle {
                        retiring: r.get(0)?,
                        retired: r.get(1)?,
                        revoked: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    async fn mark_device_retiring(
        &mut self,
        device_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        self.conn.execute(
            "UPDATE devices SET retiring_at_utc = coalesce(retiring_at_utc, ?2) WHERE device_id = ?1",
            params![device_id.to_string(), utc_text(now)],
        )?;
        Ok(())
    }

    async fn mark_device_retired(
        &mut self,
        device_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        self.conn.execute(
            "UPDATE devices SET retired_at_utc = coalesce(retired_at_utc, ?2),
                    revoked_at_utc = coalesce(revoked_at_utc, ?2)
             WHERE device_id = ?1",
            params![device_id.to_string(), utc_text(now)],
        )?;
        Ok(())
    }

    async fn set_device_token(
        &mut self,
        device_id: Uuid,
        token_hash: &str,
    ) -> Result<(), StorageError> {
        self.conn.execute(
            "UPDATE devices SET token_hash = ?2 WHERE device_id = ?1",
            params![device_id.to_string(), token_hash],
        )?;
        Ok(())
    }

    async fn insert_recovery(&mut self, record: &RecoveryRecord) -> Result<(), StorageError> {
        self.conn.execute(
            "INSERT INTO recovery (id, expected_checkpoint, recovered_at_utc) VALUES (1, ?1, ?2)",
            params![
                record.expected_checkpoint,
                utc_text(record.recovered_at_utc)
            ],
        )?;
        let mut stmt = self
            .conn
            .prepare_cached("INSERT INTO recovery_leaves (leaf_index, data) VALUES (?1, ?2)")?;
        for (i, leaf) in record.leaves.iter().enumerate() {
            stmt.execute(params![i64::try_from(i).unwrap_or(i64::MAX), leaf])?;
        }
        Ok(())
    }

    async fn recovery(&mut self) -> Result<Option<RecoveryRecord>, StorageError> {
        let head: Option<(String, String)> = self
            .conn
            .query_row(
                "SELECT expected_checkpoint, recovered_at_utc FROM recovery WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((expected_checkpoint, at)) = head else {
            return Ok(None);
        };
        let mut stmt = self
            .conn
            .prepare("SELECT data FROM recovery_leaves ORDER BY leaf_index")?;
        let leaves = collect(stmt.query([])?, |r| Ok(r.get(0)?))?;
        Ok(Some(RecoveryRecord {
            expected_checkpoint,
            leaves,
            recovered_at_utc: parse_utc(&at)?,
        }))
    }

    async fn mark_device_revoked(
        &mut self,
        device_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        let n = self.conn.execute(
            "UPDATE devices SET revoked_at_utc = COALESCE(revoked_at_utc, ?2) WHERE device_id = ?1",
            params![device_id.to_string(), utc_text(now)],
        )?;
        Ok(n == 1)
    }

    async fn insert_user(
        &mut self,
        username: &str,
        role: Role,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        let n = self.conn.execute(
            "INSERT INTO users (username, role, password_hash, created_at_utc)
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (username) DO NOTHING",
            params![username, role.as_str(), password_hash, utc_text(now)],
        )?;
        Ok(n == 1)
    }

    async fn user_by_name(&mut self, username: &str) -> Result<Option<UserRecord>, StorageError> {
        let sql = "SELECT username, role, password_hash, disabled_at_utc FROM users
                   WHERE username = ?1";
        Ok(self
            .conn
            .query_row(sql, params![username], |r| {
                Ok(UserRecord {
                    username: r.get(0)?,
                    role: Role::parse(&r.get::<_, String>(1)?),
                    password_hash: r.get(2)?,
                    disabled: r.get::<_, Option<String>>(3)?.is_some(),
                })
            })
            .optional()?)
    }

    async fn set_user_disabled(
        &mut self,
        username: &str,
        disabled_at_utc: Option<DateTime<Utc>>,
    ) -> Result<bool, StorageError> {
        let n = self.conn.execute(
            "UPDATE users SET disabled_at_utc = ?2 WHERE username = ?1",
            params![username, disabled_at_utc.map(utc_text)],
        )?;
        Ok(n == 1)
    }

    async fn set_user_password(
        &mut self,
        username: &str,
        password_hash: &str,
    ) -> Result<bool, StorageError> {
        let n = self.conn.execute(
            "UPDATE users SET password_hash = ?2 WHERE username = ?1",
            params![username, password_hash],
        )?;
        Ok(n == 1)
    }

    async fn list_users(&mut self, now: DateTime<Utc>) -> Result<Vec<UserSummary>, StorageError> {
        let mut stmt = self.conn.prepare(
            "SELECT u.username, u.role, u.created_at_utc, u.disabled_at_utc,
                    (SELECT COUNT(*) FROM sessions s
                      WHERE s.username = u.username AND s.expires_at_utc > ?1)
             FROM users u ORDER BY u.username",
        )?;
        collect(stmt.query(params![utc_text(now)])?, |r| {
            let disabled_at_utc = opt_utc(r.get(3)?)?;
            Ok(UserSummary {
                username: r.get(0)?,
                role: r.get(1)?,
                created_at_utc: parse_utc(&r.get::<_, String>(2)?)?,
                disabled: disabled_at_utc.is_some(),
                disabled_at_utc,
                live_sessions: u64::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
            })
        })
    }

    async fn delete_session(&mut self, token_hash: &str) -> Result<u64, StorageError> {
        let n = self.conn.execute(
            "DELETE FROM sessions WHERE token_hash = ?1",
            params![token_hash],
        )?;
        Ok(n as u64)
    }

    async fn delete_user_sessions(&mut self, username: &str) -> Result<u64, StorageError> {
        let n = self.conn.execute(
            "DELETE FROM sessions WHERE username = ?1",
            params![username],
        )?;
        Ok(n as u64)
    }

    async fn touch_session(
        &mut self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        self.conn.execute(
            "UPDATE sessions SET last_used_at_utc = ?2 WHERE token_hash = ?1",
            params![token_hash, utc_text(now)],
        )?;
        Ok(())
    }

    async fn login_failures(
        &mut self,
        username: &str,
        client: &str,
    ) -> Result<Option<LoginFailures>, StorageError> {
        let sql = "SELECT failures, last_failure_at_utc FROM login_failures
                   WHERE username = ?1 AND client = ?2";
        let row: Option<(i64, String)> = self
            .conn
            .query_row(sql, params![username, client], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        row.map(|(n, at)| {
            Ok(LoginFailures {
                failures: u32::try_from(n).unwrap_or(u32::MAX),
                last_failure_at_utc: parse_utc(&at)?,
            })
        })
        .transpose()
    }

    async fn increment_login_failures(
        &mut self,
        username: &str,
        client: &str,
        now: DateTime<Utc>,
    ) -> Result<i64, StorageError> {
        Ok(self.conn.query_row(
            "INSERT INTO login_failures (username, client, failures, last_failure_at_utc)
             VALUES (?1, ?2, 1, ?3)
             ON CONFLICT (username, client) DO UPDATE
                 SET failures = failures + 1, last_failure_at_utc = excluded.last_failure_at_utc
             RETURNING failures",
            params![username, client, utc_text(now)],
            |r| r.get(0),
        )?)
    }

    async fn clear_login_failures(
        &mut self,
        username: &str,
        client: Option<&str>,
    ) -> Result<(), StorageError> {
        match client {
            Some(c) => self.conn.execute(
                "DELETE FROM login_failures WHERE username = ?1 AND client = ?2",
                params![username, c],
            )?,
            None => self.conn.execute(
                "DELETE FROM login_failures WHERE username = ?1",
                params![username],
            )?,
        };
        Ok(())
    }

    async fn delete_expired_sessions(&mut self, now: DateTime<Utc>) -> Result<(), StorageError> {
        let sql = "DELETE FROM sessions WHERE expires_at_utc <= ?1";
        self.conn.execute(sql, params![utc_text(now)])?;
        Ok(())
    }

    async fn insert_session(
        &mut self,
        token_hash: &str,
        user: &UserRecord,
        role: Role,
        now: DateTime<Utc>,
        expires_at_utc: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        self.conn.execute(
            "INSERT INTO sessions (token_hash, username, role, created_at_utc, expires_at_utc)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                token_hash,
                user.username,
                role.as_str(),
                utc_text(now),
                utc_text(expires_at_utc)
            ],
        )?;
        Ok(())
    }

    async fn session_by_token_hash(
        &mut self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionIdentity>, StorageError> {
        let sql = "SELECT username, role, COALESCE(last_used_at_utc, created_at_utc) FROM sessions
                   WHERE token_hash = ?1 AND expires_at_utc > ?2";
        let row: Option<(String, String, String)> = self
            .conn
            .prepare_cached(sql)?
            .query_row(params![token_hash, utc_text(now)], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        row.map(|(username, role, last_used)| {
            Ok(SessionIdentity {
                username,
                role: Role::parse(&role),
                last_used_at_utc: parse_utc(&last_used)?,
            })
        })
        .transpose()
    }

    async fn claim_records(
        &mut self,
        device_id: Uuid,
        new: &[(Uuid, Revision)],
    ) -> Result<(), StorageError> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO records (record_id, device_id, latest_revision) VALUES (?1, ?2, ?3)
             ON CONFLICT (record_id) DO NOTHING",
        )?;
        let device_id = device_id.to_string();
        for (id, revision) in new {
            stmt.execute(params![id.to_string(), device_id, revision])?;
        }
        Ok(())
    }

    async fn record_heads(&mut self, ids: &[Uuid]) -> Result<Vec<RecordHead>, StorageError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT device_id, latest_revision FROM records WHERE record_id = ?1",
        )?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let row: Option<(String, i64)> = stmt
                .query_row(params![id.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            if let Some((device_id, latest_revision)) = row {
                out.push(RecordHead {
                    record_id: *id,
                    device_id: uuid_col(&device_id)?,
                    latest_revision: rev_col(latest_revision)?,
                });
            }
        }
        Ok(out)
    }

    async fn version_hashes(
        &mut self,
        keys: &[(Uuid, Revision)],
    ) -> Result<Vec<((Uuid, Revision), String)>, StorageError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT content_sha256 FROM versions WHERE record_id = ?1 AND revision = ?2",
        )?;
        let mut out = Vec::new();
        for &(id, revision) in keys {
            let hash: Option<String> = stmt
                .query_row(params![id.to_string(), revision], |r| r.get(0))
                .optional()?;
            if let Some(hash) = hash {
                out.push(((id, revision), hash));
            }
        }
        Ok(out)
    }

    async fn insert_versions(
        &mut self,
        device_id: Uuid,
        versions: &[&NewVersion],
        received_at_utc: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO versions (record_id, revision, status, document, content_sha256,
                 signature, device_id, saved_at_utc, received_at_utc, signer_user_id)
             VALUES (:record_id, :revision, :status, :document, :sha, :sig, :device_id, :saved,
                     :received, :signer)",
        )?;
        let (device_id, received) = (device_id.to_string(), utc_text(received_at_utc));
        for v in versions {
            stmt.execute(named_params! {
                ":record_id": v.record_id.to_string(),
                ":revision": v.revision,
                ":status": v.status.as_str(),
                ":document": v.document_canonical,
                ":sha": v.content_sha256,
                ":sig": v.signature,
                ":device_id": device_id,
                ":saved": utc_text(v.saved_at_utc),
                ":received": received,
                ":signer": v.signer_user_id.map(|u| u.to_string()),
            })?;
        }
        Ok(())
    }

    async fn raise_latest_revisions(
        &mut self,
        heads: &[(Uuid, Revision)],
    ) -> Result<(), StorageError> {
        let mut stmt = self.conn.prepare_cached(
            "UPDATE records SET latest_revision = MAX(latest_revision, ?2) WHERE record_id = ?1",
        )?;
        for (id, revision) in heads {
            stmt.execute(params![id.to_string(), revision])?;
        }
        Ok(())
    }

    async fn set_signed_heads(&mut self, versions: &[&NewVersion]) -> Result<(), StorageError> {
        let mut stmt = self.conn.prepare_cached(
            "UPDATE records SET signed_revision = :revision, signed_status = :status,
                 signed_saved_at_utc = :saved, incident_number = :incident,
                 patient_name = :name, search_text = :search, latest_news2 = :news2,
                 destination_ods = :dest_ods, destination_name = :dest_name,
                 latest_decision = NULL
             WHERE record_id = :record_id
               AND (signed_revision IS NULL OR signed_revision < :revision)",
        )?;
        for v in versions {
            stmt.execute(named_params! {
                ":record_id": v.record_id.to_string(),
                ":revision": v.revision,
                ":status": v.status.as_str(),
                ":saved": utc_text(v.saved_at_utc),
                ":incident": v.incident_number,
                ":name": v.patient_name,
                ":search": v.search_text(),
                ":news2": v.latest_news2,
                ":dest_ods": v.destination.as_ref().map(|d| d.0.as_str()),
                ":dest_name": v.destination.as_ref().map(|d| d.1.as_str()),
            })?;
        }
        Ok(())
    }

    async fn feedback_after(
        &mut self,
        device_id: Uuid,
        since_cursor: i64,
        limit: u32,
    ) -> Result<Vec<FeedbackItem>, StorageError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT cursor, record_id, revision, decision, comment, decided_by, decided_at_utc
             FROM decisions WHERE device_id = ?1 AND cursor > ?2 ORDER BY cursor LIMIT ?3",
        )?;
        let rows = stmt.query(params![device_id.to_string(), since_cursor, limit])?;
        collect(rows, |r| {
            Ok(FeedbackItem {
                cursor: r.get(0)?,
                record_id: uuid_col(&r.get::<_, String>(1)?)?,
                revision: rev_col(r.get(2)?)?,
                decision: decision_col(&r.get::<_, String>(3)?)?,
                comment: r.get(4)?,
                decided_by: r.get(5)?,
                decided_at_utc: parse_utc(&r.get::<_, String>(6)?)?,
            })
        })
    }

    async fn review_items(
        &mut self,
        filter: &ReviewFilter,
    ) -> Result<Vec<ReviewSummary>, StorageError> {
        let sql = format!(
            "SELECT r.record_id, r.signed_revision, r.signed_status, r.incident_number,
                    r.patient_name, r.latest_news2, r.signed_saved_at_utc, d.name,
                    r.latest_decision
             FROM records r JOIN devices d ON d.device_id = r.device_id
             WHERE {REVIEW_WHERE}
               AND (:decision IS NULL OR COALESCE(r.latest_decision, 'pending') = :decision)
             ORDER BY r.signed_saved_at_utc DESC, r.record_id DESC
             LIMIT :limit OFFSET :offset"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query(named_params! {
            ":from": filter.from_utc.map(utc_text),
            ":to": filter.to_utc.map(utc_text),
            ":min_news2": filter.min_news2,
            ":q": filter.like_pattern(),
            ":dest": filter.destination,
            ":decision": filter.decision_text(),
            ":limit": filter.limit,
            ":offset": i64::try_from(filter.offset).unwrap_or(i64::MAX),
        })?;
        collect(rows, |r| {
            Ok(ReviewSummary {
                record_id: uuid_col(&r.get::<_, String>(0)?)?,
                revision: rev_col(r.get(1)?)?,
                status: status_col(&r.get::<_, String>(2)?)?,
                incident_number: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                patient_name: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
                latest_news2: r
                    .get::<_, Option<i64>>(5)?
                    .and_then(|n| u8::try_from(n).ok()),
                saved_at_utc: parse_utc(&r.get::<_, String>(6)?)?,
                device_name: r.get(7)?,
                decision: r
                    .get::<_, Option<String>>(8)?
                    .as_deref()
                    .map(decision_col)
                    .transpose()?,
            })
        })
    }

    async fn review_counts(
        &mut self,
        filter: &ReviewFilter,
    ) -> Result<Vec<(String, i64)>, StorageError> {
        let sql = format!(
            "SELECT COALESCE(r.latest_decision, 'pending'), COUNT(*) FROM records r
             WHERE {REVIEW_WHERE} GROUP BY 1"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query(named_params! {
            ":from": filter.from_utc.map(utc_text),
            ":to": filter.to_utc.map(utc_text),
            ":min_news2": filter.min_news2,
            ":q": filter.like_pattern(),
            ":dest": filter.destination,
        })?;
        collect(rows, |r| Ok((r.get(0)?, r.get(1)?)))
    }

    async fn review_destinations(
        &mut self,
    ) -> Result<Vec<crate::protocol::DestinationChoice>, StorageError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT destination_ods, MAX(destination_name) FROM records
             WHERE signed_revision IS NOT NULL AND destination_ods IS NOT NULL
             GROUP BY destination_ods ORDER BY 2, 1",
        )?;
        collect(stmt.query([])?, |r| {
            Ok(crate::protocol::DestinationChoice {
                ods_code: r.get(0)?,
                name: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
            })
        })
    }

    async fn signed_record_owner(
        &mut self,
        record_id: Uuid,
    ) -> Result<Option<(Uuid, String)>, StorageError> {
        let row: Option<(String, String)> = self
            .conn
            .query_row(
                "SELECT r.device_id, d.name FROM records r JOIN devices d ON d.device_id = r.device_id
                 WHERE r.record_id = ?1 AND r.signed_revision IS NOT NULL",
                params![record_id.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        row.map(|(id, name)| Ok((uuid_col(&id)?, name))).transpose()
    }

    async fn signed_versions(
        &mut self,
        record_id: Uuid,
    ) -> Result<Vec<StoredVersion>, StorageError> {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM versions v JOIN devices d ON d.device_id = v.device_id {SIGNER_JOIN}
             WHERE v.record_id = ?1 AND v.status <> 'draft' ORDER BY v.revision"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        collect(stmt.query(params![record_id.to_string()])?, stored_version)
    }

    async fn decisions_on(&mut self, record_id: Uuid) -> Result<Vec<DecisionRecord>, StorageError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT revision, decision, comment, decided_by, decided_at_utc FROM decisions
             WHERE record_id = ?1 ORDER BY cursor",
        )?;
        collect(stmt.query(params![record_id.to_string()])?, |r| {
            Ok(DecisionRecord {
                record_id,
                revision: rev_col(r.get(0)?)?,
                decision: decision_col(&r.get::<_, String>(1)?)?,
                comment: r.get(2)?,
                decided_by: r.get(3)?,
                decided_at_utc: parse_utc(&r.get::<_, String>(4)?)?,
            })
        })
    }

    async fn decision_head(
        &mut self,
        record_id: Uuid,
    ) -> Result<Option<(Uuid, Option<Revision>)>, StorageError> {
        let row: Option<(String, Option<Revision>)> = self
            .conn
            .query_row(
                "SELECT device_id, signed_revision FROM records WHERE record_id = ?1",
                params![record_id.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        row.map(|(id, signed)| Ok((uuid_col(&id)?, signed)))
            .transpose()
    }

    async fn is_signed_version(
        &mut self,
        record_id: Uuid,
        revision: Revision,
    ) -> Result<bool, StorageError> {
        let row: Option<i64> = self
            .conn
            .query_row(
                "SELECT 1 FROM versions WHERE record_id = ?1 AND revision = ?2 AND status <> 'draft'",
                params![record_id.to_string(), revision],
                |r| r.get(0),
            )
            .optional()?;
        Ok(row.is_some())
    }

    async fn insert_decision(
        &mut self,
        d: &NewDecision,
        device_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let id = d.record_id.to_string();
        self.conn.execute(
            "INSERT INTO decisions (record_id, revision, device_id, decision, comment,
                 decided_by, decided_at_utc)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                id,
                d.revision,
                device_id.to_string(),
                d.decision.as_str(),
                d.comment,
                d.decided_by,
                utc_text(now)
            ],
        )?;
        self.conn.execute(
            "UPDATE records SET latest_decision = ?2 WHERE record_id = ?1",
            params![id, d.decision.as_str()],
        )?;
        Ok(())
    }

    async fn versions_after(
        &mut self,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<StoredVersion>, StorageError> {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM versions v LEFT JOIN devices d ON d.device_id = v.device_id {SIGNER_JOIN}
             WHERE v.seq > ?1 ORDER BY v.seq LIMIT ?2"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        collect(stmt.query(params![after_seq, limit])?, stored_version)
    }

    async fn stats(&mut self) -> Result<Stats, StorageError> {
        let count = |sql: &str| -> Result<u64, StorageError> {
            Ok(count_col(self.conn.query_row(sql, [], |r| r.get(0))?))
        };
        Ok(Stats {
            encounters: count("SELECT COUNT(*) FROM records")?,
            versions: count("SELECT COUNT(*) FROM versions")?,
            devices: count("SELECT COUNT(*) FROM devices")?,
            revoked_devices: count(
                "SELECT COUNT(*) FROM devices WHERE revoked_at_utc IS NOT NULL",
            )?,
            completed: count("SELECT COUNT(*) FROM records WHERE signed_revision IS NOT NULL")?,
            decisions: count("SELECT COUNT(*) FROM decisions")?,
            users: count("SELECT COUNT(*) FROM users")?,
            audit_entries: count("SELECT COUNT(*) FROM audit")?,
        })
    }

    async fn all_decisions(&mut self) -> Result<Vec<DecisionRecord>, StorageError> {
        let mut stmt = self.conn.prepare(
            "SELECT record_id, revision, decision, comment, decided_by, decided_at_utc
             FROM decisions ORDER BY cursor",
        )?;
        collect(stmt.query([])?, |r| {
            Ok(DecisionRecord {
                record_id: uuid_col(&r.get::<_, String>(0)?)?,
                revision: rev_col(r.get(1)?)?,
                decision: decision_col(&r.get::<_, String>(2)?)?,
                comment: r.get(3)?,
                decided_by: r.get(4)?,
                decided_at_utc: parse_utc(&r.get::<_, String>(5)?)?,
            })
        })
    }

    async fn log_size(&mut self) -> Result<u64, StorageError> {
        let n: i64 = self.conn.query_row(
            "SELECT COALESCE(MAX(idx) + 1, 0) FROM log_leaves",
            [],
            |r| r.get(0),
        )?;
        log_index_col(n)
    }

    async fn log_hashes(&mut self, indexes: &[u64]) -> Result<Vec<(u64, String)>, StorageError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT hash FROM log_hashes WHERE idx = ?1")?;
        let mut out = Vec::with_capacity(indexes.len());
        for &i in indexes {
            let hash: Option<String> = stmt
                .query_row(params![log_index_value(i)?], |r| r.get(0))
                .optional()?;
            if let Some(hash) = hash {
                out.push((i, hash));
            }
        }
        Ok(out)
    }

    async fn insert_log(
        &mut self,
        leaves: &[LogLeafRow],
        hashes: &[(u64, String)],
    ) -> Result<(), StorageError> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO log_leaves (idx, kind, record_id, revision, data)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for l in leaves {
            stmt.execute(params![
                log_index_value(l.idx)?,
                l.kind,
                l.record_id.map(|r| r.to_string()),
                l.revision,
                l.data
            ])?;
        }
        let mut stmt = self
            .conn
            .prepare_cached("INSERT INTO log_hashes (idx, hash) VALUES (?1, ?2)")?;
        for (i, h) in hashes {
            stmt.execute(params![log_index_value(*i)?, h])?;
        }
        Ok(())
    }

    async fn version_leaf_indexes(
        &mut self,
        keys: &[(Uuid, Revision)],
    ) -> Result<Vec<((Uuid, Revision), u64)>, StorageError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT idx FROM log_leaves
             WHERE kind = 'version' AND record_id = ?1 AND revision = ?2",
        )?;
        let mut out = Vec::new();
        for &(id, revision) in keys {
            let idx: Option<i64> = stmt
                .query_row(params![id.to_string(), revision], |r| r.get(0))
                .optional()?;
            if let Some(idx) = idx {
                out.push(((id, revision), log_index_col(idx)?));
            }
        }
        Ok(out)
    }

    async fn device_enrolment_leaf(
        &mut self,
        device_id: Uuid,
    ) -> Result<Option<LogLeafRow>, StorageError> {
        let pattern = format!("%\"device_id\":\"{device_id}\"%");
        let mut stmt = self.conn.prepare_cached(
            "SELECT idx, kind, record_id, revision, data FROM log_leaves
             WHERE kind = 'device_enrolled' AND data LIKE ?1 ORDER BY idx LIMIT 1",
        )?;
        let rows = collect(stmt.query(params![pattern])?, |r| {
            Ok(LogLeafRow {
                idx: log_index_col(r.get(0)?)?,
                kind: r.get(1)?,
                record_id: None,
                revision: None,
                data: r.get(4)?,
            })
        })?;
        Ok(rows.into_iter().next())
    }

    async fn signers(&mut self, device_id: Option<Uuid>) -> Result<Vec<SignerRow>, StorageError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {SIGNER_COLUMNS} FROM signers
             WHERE ?1 IS NULL OR device_id = ?1 ORDER BY leaf_idx"
        ))?;
        collect(
            stmt.query(params![device_id.map(|d| d.to_string())])?,
            signer_row,
        )
    }

    async fn insert_signer(&mut self, row: &SignerRow) -> Result<(), StorageError> {
        self.conn
            .prepare_cached(&format!(
                "INSERT INTO signers ({SIGNER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
            ))?
            .execute(params![
                row.device_id.to_string(),
                row.identity.user_id.to_string(),
                row.identity.tablet_id.to_string(),
                row.identity.user_name,
                row.identity.public_key,
                row.proof,
                row.device_endorsement,
                log_index_value(row.leaf_idx)?,
                utc_text(row.registered_at_utc),
            ])?;
        Ok(())
    }

    async fn log_leaves(&mut self, start: u64, end: u64) -> Result<Vec<LogLeafRow>, StorageError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT idx, kind, record_id, revision, data FROM log_leaves
             WHERE idx >= ?1 AND idx < ?2 ORDER BY idx",
        )?;
        collect(
            stmt.query(params![log_index_value(start)?, log_index_value(end)?])?,
            |r| {
                Ok(LogLeafRow {
                    idx: log_index_col(r.get(0)?)?,
                    kind: r.get(1)?,
                    record_id: r
                        .get::<_, Option<String>>(2)?
                        .as_deref()
                        .map(uuid_col)
                        .transpose()?,
                    revision: r.get::<_, Option<i64>>(3)?.map(rev_col).transpose()?,
                    data: r.get(4)?,
                })
            },
        )
    }

    async fn insert_checkpoint(
        &mut self,
        size: u64,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        self.conn.execute(
            "INSERT INTO log_checkpoints (size, note, signed_at_utc) VALUES (?1, ?2, ?3)
             ON CONFLICT (size) DO NOTHING",
            params![log_index_value(size)?, note, utc_text(now)],
        )?;
        Ok(())
    }

    async fn latest_checkpoint(&mut self) -> Result<Option<(u64, String)>, StorageError> {
        let row: Option<(i64, String)> = self
            .conn
            .query_row(
                "SELECT size, note FROM log_checkpoints ORDER BY size DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        row.map(|(n, note)| Ok((log_index_col(n)?, note)))
            .transpose()
    }

    async fn insert_key_rotation(
        &mut self,
        statement: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        self.conn.execute(
            "INSERT INTO log_key_rotations (statement, rotated_at_utc) VALUES (?1, ?2)",
            params![statement, utc_text(now)],
        )?;
        Ok(())
    }

    async fn key_rotations(&mut self) -> Result<Vec<String>, StorageError> {
        let mut stmt = self
            .conn
            .prepare("SELECT statement FROM log_key_rotations ORDER BY seq")?;
        collect(stmt.query([])?, |r| Ok(r.get(0)?))
    }

    async fn update_reference_note(
        &mut self,
        version: u64,
        note: &str,
    ) -> Result<(), StorageError> {
        self.conn.execute(
            "UPDATE reference_versions SET signed_note = ?2 WHERE version = ?1",
            params![log_index_value(version)?, note],
        )?;
        Ok(())
    }

    async fn insert_reference(&mut self, v: &ReferenceVersion) -> Result<(), StorageError> {
        self.conn.execute(
            "INSERT INTO reference_versions \
             (version, document, document_sha256, signed_note, imported_at_utc) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                log_index_value(v.version)?,
                v.document,
                v.document_sha256,
                v.signed_note,
                utc_text(v.imported_at_utc)
            ],
        )?;
        Ok(())
    }

    async fn latest_reference(&mut self) -> Result<Option<ReferenceVersion>, StorageError> {
        let row: Option<(i64, String, String, String, String)> = self
            .conn
            .query_row(
                "SELECT version, document, document_sha256, signed_note, imported_at_utc \
                 FROM reference_versions ORDER BY version DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()?;
        row.map(|(version, document, document_sha256, signed_note, at)| {
            Ok(ReferenceVersion {
                version: log_index_col(version)?,
                document,
                document_sha256,
                signed_note,
                imported_at_utc: parse_utc(&at)?,
            })
        })
        .transpose()
    }

    async fn audit_head(&mut self) -> Result<Option<(i64, String)>, StorageError> {
        let sql = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1";
        Ok(self
            .conn
            .query_row(sql, [], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    async fn insert_audit(&mut self, entries: &[AuditEntry]) -> Result<(), StorageError> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO audit (seq, at_utc, actor, action, record_id, revision, detail, prev_hash, hash)
             VALUES (:seq, :at, :actor, :action, :record_id, :revision, :detail, :prev, :hash)",
        )?;
        for e in entries {
            stmt.execute(named_params! {
                ":seq": e.seq,
                ":at": e.at_utc,
                ":actor": e.actor,
                ":action": e.action,
                ":record_id": e.record_id.map(|r| r.to_string()),
                ":revision": e.revision,
                ":detail": e.detail,
                ":prev": e.prev_hash,
                ":hash": e.hash,
            })?;
        }
        Ok(())
    }

    async fn audit_entries_after(
        &mut self,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StorageError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, at_utc, actor, action, record_id, revision, detail, prev_hash, hash
             FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        collect(stmt.query(params![after_seq, limit])?, |r| {
            Ok(AuditEntry {
                seq: r.get(0)?,
                at_utc: r.get(1)?,
                actor: r.get(2)?,
                action: r.get(3)?,
                record_id: r
                    .get::<_, Option<String>>(4)?
                    .as_deref()
                    .map(uuid_col)
                    .transpose()?,
                revision: r.get(5)?,
                detail: r.get(6)?,
                prev_hash: r.get(7)?,
                hash: r.get(8)?,
            })
        })
    }
}

/// Each method clones what it needs into the blocking task and runs one core operation.
#[async_trait]
impl Storage for SqliteStorage {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn create_enrolment_code(
        &self,
        code_hash: &str,
        device_name: &str,
        now: DateTime<Utc>,
        expires_at_utc: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let (code_hash, device_name) = (code_hash.to_owned(), device_name.to_owned());
        self.run(TxKind::Write, move |tx| {
            complete(core::create_enrolment_code(
                tx,
                &code_hash,
                &device_name,
                now,
                expires_at_utc,
            ))
        })
        .await
    }

    async fn enroll_device(
        &self,
        device: &NewDevice,
        now: DateTime<Utc>,
    ) -> Result<EnrolOutcome, StorageError> {
        let d = device.clone();
        self.run(TxKind::Write, move |tx| {
            complete(core::enroll_device(tx, &d, now))
        })
        .await
    }

    async fn device_by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<DeviceIdentity>, StorageError> {
        let token_hash = token_hash.to_owned();
        self.run(TxKind::Read, move |tx| {
            complete(tx.device_by_token_hash(&token_hash))
        })
        .await
    }

    async fn revoke_device(
        &self,
        device_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        self.run(TxKind::Write, move |tx| {
            complete(core::revoke_device(tx, device_id, now))
        })
        .await
    }

    async fn add_user(
        &self,
        username: &str,
        role: Role,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let (username, hash) = (username.to_owned(), password_hash.to_owned());
        self.run(TxKind::Write, move |tx| {
            complete(core::add_user(tx, &username, role, &hash, now))
        })
        .await
    }

    async fn user_by_name(&self, username: &str) -> Result<Option<UserRecord>, StorageError> {
        let username = username.to_owned();
        self.run(TxKind::Read, move |tx| complete(tx.user_by_name(&username)))
            .await
    }

    async fn reserve_login_attempt(
        &self,
        username: &str,
        client: &str,
        policy: LockoutPolicy,
        now: DateTime<Utc>,
    ) -> Result<LoginReservation, StorageError> {
        let (username, client) = (username.to_owned(), client.to_owned());
        self.run(TxKind::Write, move |tx| {
            complete(core::reserve_login_attempt(
                tx, &username, &client, policy, now,
            ))
        })
        .await
    }

    async fn create_session(
        &self,
        token_hash: &str,
        user: &UserRecord,
        client: &str,
        now: DateTime<Utc>,
        expires_at_utc: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let (token_hash, user, client) = (token_hash.to_owned(), user.clone(), client.to_owned());
        self.run(TxKind::Write, move |tx| {
            complete(core::create_session(
                tx,
                &token_hash,
                &user,
                &client,
                now,
                expires_at_utc,
            ))
        })
        .await
    }

    async fn session_by_token_hash(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionIdentity>, StorageError> {
        let token_hash = token_hash.to_owned();
        self.run(TxKind::Read, move |tx| {
            complete(tx.session_by_token_hash(&token_hash, now))
        })
        .await
    }

    async fn touch_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let token_hash = token_hash.to_owned();
        self.run(TxKind::Write, move |tx| {
            complete(tx.touch_session(&token_hash, now))
        })
        .await
    }

    async fn end_sessions(
        &self,
        scope: &SessionScope,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<u64, StorageError> {
        let (scope, actor) = (scope.clone(), actor.clone());
        self.run(TxKind::Write, move |tx| {
            complete(core::end_sessions(tx, &scope, &actor, now))
        })
        .await
    }

    async fn change_user(
        &self,
        username: &str,
        change: &UserChange,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        let (username, change) = (username.to_owned(), change.clone());
        self.run(TxKind::Write, move |tx| {
            complete(core::change_user(tx, &username, &change, now))
        })
        .await
    }

    async fn list_users(&self, now: DateTime<Utc>) -> Result<Vec<UserSummary>, StorageError> {
        self.run(TxKind::Read, move |tx| complete(tx.list_users(now)))
            .await
    }

    async fn list_devices(&self) -> Result<Vec<DeviceSummary>, StorageError> {
        self.run(TxKind::Read, move |tx| complete(tx.list_devices()))
            .await
    }

    async fn touch_device(&self, device_id: Uuid, now: DateTime<Utc>) -> Result<(), StorageError> {
        self.run(TxKind::Write, move |tx| {
            complete(tx.touch_device(device_id, now))
        })
        .await
    }

    async fn device_report(
        &self,
        device_id: Uuid,
        report: &crate::protocol::DeviceReport,
        now: DateTime<Utc>,
    ) -> Result<crate::protocol::DeviceState, StorageError> {
        let report = report.clone();
        self.run(TxKind::Write, move |tx| {
            complete(core::device_report(tx, device_id, &report, now))
        })
        .await
    }

    async fn retire_device(
        &self,
        device_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        self.run(TxKind::Write, move |tx| {
            complete(core::retire_device(tx, device_id, now))
        })
        .await
    }

    async fn begin_recovery(
        &self,
        record: &RecoveryRecord,
        first_leaf: &crate::transparency::Leaf,
    ) -> Result<bool, StorageError> {
        let (record, leaf) = (record.clone(), first_leaf.clone());
        self.run(TxKind::Write, move |tx| {
            complete(core::begin_recovery(tx, &record, &leaf))
        })
        .await
    }

    async fn recovery(&self) -> Result<Option<RecoveryRecord>, StorageError> {
        self.run(TxKind::Read, move |tx| complete(tx.recovery()))
            .await
    }

    async fn restore_device(
        &self,
        device: &RestoredDevice,
        now: DateTime<Utc>,
    ) -> Result<RestoreOutcome, StorageError> {
        let d = device.clone();
        self.run(TxKind::Write, move |tx| {
            complete(core::restore_device(tx, &d, now))
        })
        .await
    }

    async fn restore_decisions(
        &self,
        device_id: Uuid,
        decisions: &[DecisionRecord],
        now: DateTime<Utc>,
    ) -> Result<Vec<crate::protocol::DecisionRestore>, StorageError> {
        let decisions = decisions.to_vec();
        self.run(TxKind::Write, move |tx| {
            complete(core::restore_decisions(tx, device_id, &decisions, now))
        })
        .await
    }

    async fn push_versions(
        &self,
        device: &DeviceIdentity,
        items: &[NewVersion],
        audit_head: Option<(u64, String)>,
        now: DateTime<Utc>,
    ) -> Result<PushStored, StorageError> {
        let (device, items) = (device.clone(), items.to_vec());
        self.run(TxKind::Write, move |tx| {
            complete(core::push_versions(tx, &device, &items, audit_head, now))
        })
        .await
    }

    async fn log_head(&self) -> Result<LogHead, StorageError> {
        self.run(TxKind::Read, move |tx| complete(core::log_head(tx)))
            .await
    }

    async fn log_leaves(&self, start: u64, end: u64) -> Result<Vec<LogLeafRow>, StorageError> {
        self.run(TxKind::Read, move |tx| complete(tx.log_leaves(start, end)))
            .await
    }

    async fn inclusion_proofs(
        &self,
        size: u64,
        indexes: &[u64],
    ) -> Result<Vec<Vec<crate::transparency::LogHash>>, StorageError> {
        let indexes = indexes.to_vec();
        self.run(TxKind::Read, move |tx| {
            complete(core::inclusion_proofs(tx, size, &indexes))
        })
        .await
    }

    async fn consistency_proof(
        &self,
        old_size: u64,
        size: u64,
    ) -> Result<Vec<crate::transparency::LogHash>, StorageError> {
        self.run(TxKind::Read, move |tx| {
            complete(core::consistency_proof(tx, old_size, size))
        })
        .await
    }

    async fn review_proof(
        &self,
        device_id: Uuid,
        versions: &[(Uuid, Revision)],
        signers: &[Uuid],
    ) -> Result<Option<ReviewProofParts>, StorageError> {
        let (versions, signers) = (versions.to_vec(), signers.to_vec());
        self.run(TxKind::Read, move |tx| {
            complete(core::review_proof(tx, device_id, &versions, &signers))
        })
        .await
    }

    async fn backup_to(&self, out: &Path) -> Result<(), StorageError> {
        let out = out.to_owned();
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let file_error = |e: std::io::Error| {
                StorageError::File(match e.kind() {
                    std::io::ErrorKind::AlreadyExists => format!(
                        "{} already exists; give a new file name (a backup never replaces a file)",
                        out.display()
                    ),
                    _ => format!("{}: {e}", out.display()),
                })
            };
            let pending = crate::fs_atomic::PendingFile::prepare(&out).map_err(file_error)?;
            let tmp = pending.temporary_path().to_str().ok_or_else(|| {
                StorageError::File(format!("{} is not a UTF-8 path", out.display()))
            })?;
            let guard = conn
                .lock()
                .map_err(|_| StorageError::Task("database lock poisoned".into()))?;
            // One read transaction: a consistent copy while pushes go on (they wait for the
            // connection meanwhile), written compactly into the empty owner-only file.
            guard.execute("VACUUM INTO ?1", params![tmp])?;
            drop(guard);
            pending.publish().map_err(file_error)
        })
        .await
        .map_err(|e| StorageError::Task(e.to_string()))?
    }

    async fn device_signers(&self, device_id: Uuid) -> Result<Vec<SignerRow>, StorageError> {
        self.run(TxKind::Read, move |tx| {
            complete(tx.signers(Some(device_id)))
        })
        .await
    }

    async fn all_signers(&self) -> Result<Vec<SignerRow>, StorageError> {
        self.run(TxKind::Read, move |tx| complete(tx.signers(None)))
            .await
    }

    async fn register_signers(
        &self,
        device: &DeviceIdentity,
        signers: &[crate::protocol::SignerRegistration],
        now: DateTime<Utc>,
    ) -> Result<Vec<SignerRow>, StorageError> {
        let (device, signers) = (device.clone(), signers.to_vec());
        self.run(TxKind::Write, move |tx| {
            complete(core::register_signers(tx, &device, &signers, now))
        })
        .await
    }

    async fn save_checkpoint(
        &self,
        size: u64,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let note = note.to_owned();
        self.run(TxKind::Write, move |tx| {
            complete(tx.insert_checkpoint(size, &note, now))
        })
        .await
    }

    async fn latest_checkpoint(&self) -> Result<Option<(u64, String)>, StorageError> {
        self.run(TxKind::Read, move |tx| complete(tx.latest_checkpoint()))
            .await
    }

    async fn add_key_rotation(
        &self,
        statement: &str,
        new_key: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let (statement, new_key) = (statement.to_owned(), new_key.to_owned());
        self.run(TxKind::Write, move |tx| {
            complete(core::add_key_rotation(tx, &statement, &new_key, now))
        })
        .await
    }

    async fn key_rotations(&self) -> Result<Vec<String>, StorageError> {
        self.run(TxKind::Read, move |tx| complete(tx.key_rotations()))
            .await
    }

    async fn add_reference_version(&self, v: &ReferenceVersion) -> Result<bool, StorageError> {
        let v = v.clone();
        self.run(TxKind::Write, move |tx| {
            complete(core::add_reference_version(tx, &v))
        })
        .await
    }

    async fn latest_reference(&self) -> Result<Option<ReferenceVersion>, StorageError> {
        self.run(TxKind::Read, move |tx| complete(tx.latest_reference()))
            .await
    }

    async fn set_reference_note(&self, version: u64, note: &str) -> Result<(), StorageError> {
        let note = note.to_owned();
        self.run(TxKind::Write, move |tx| {
            complete(tx.update_reference_note(version, &note))
        })
        .await
    }

    async fn feedback_since(
        &self,
        device: &DeviceIdentity,
        since_cursor: i64,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<FeedbackItem>, StorageError> {
        let device = device.clone();
        self.run(TxKind::Write, move |tx| {
            complete(core::feedback_since(tx, &device, since_cursor, limit, now))
        })
        .await
    }

    async fn review_list(
        &self,
        filter: &ReviewFilter,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<ReviewPage, StorageError> {
        let (filter, actor) = (filter.clone(), actor.clone());
        self.run(TxKind::Write, move |tx| {
            complete(core::review_list(tx, &filter, &actor, now))
        })
        .await
    }

    async fn review_detail(
        &self,
        record_id: Uuid,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Option<RecordDetail>, StorageError> {
        let actor = actor.clone();
        self.run(TxKind::Write, move |tx| {
            complete(core::review_detail(tx, record_id, &actor, now))
        })
        .await
    }

    async fn decide(
        &self,
        decision: &NewDecision,
        now: DateTime<Utc>,
    ) -> Result<DecideOutcome, StorageError> {
        let d = decision.clone();
        self.run(TxKind::Write, move |tx| complete(core::decide(tx, &d, now)))
            .await
    }

    async fn versions_after(
        &self,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<StoredVersion>, StorageError> {
        self.run(TxKind::Read, move |tx| {
            complete(tx.versions_after(after_seq, limit))
        })
        .await
    }

    async fn stats(&self) -> Result<Stats, StorageError> {
        self.run(TxKind::Read, move |tx| complete(tx.stats())).await
    }

    async fn append_audit(
        &self,
        events: &[AuditEvent],
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let events = events.to_vec();
        self.run(TxKind::Write, move |tx| {
            complete(core::append_audit(tx, &events, now))
        })
        .await
    }

    async fn audit_entries_after(
        &self,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StorageError> {
        self.run(TxKind::Read, move |tx| {
            complete(tx.audit_entries_after(after_seq, limit))
        })
        .await
    }
}
