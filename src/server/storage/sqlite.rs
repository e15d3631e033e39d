//! SQLite server storage: the embedded default (`sqlite://PATH`).
//!
//! One connection in WAL mode behind a mutex, used from `spawn_blocking` so no SQLite call
//! ever runs on an async worker. One writer is what SQLite allows anyway, and a batch of a
//! hundred versions commits in one transaction, so this is not the bottleneck. The file is a
//! plain SQLite database (no SQLCipher key): the server's disk encryption is the host's job.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, named_params, params};
use uuid::Uuid;

use super::*;
use crate::model::RecordStatus;
use crate::protocol::{Decision, DecisionCounts, DecisionRecord, FeedbackItem, ReviewSummary};

const MIGRATIONS: &[(u32, &str, &str)] = &[(
    1,
    "initial",
    include_str!("../../../migrations/server/sqlite/0001_initial.sql"),
)];

/// The SQLite implementation of [`Storage`].
#[derive(Debug, Clone)]
pub struct SqliteStorage {
    conn: Arc<Mutex<Connection>>,
}

fn uuid_col(text: &str) -> Result<Uuid, StorageError> {
    Uuid::parse_str(text).map_err(|_| StorageError::Corrupt("uuid".into()))
}

fn rev_col(v: i64) -> Result<u64, StorageError> {
    u64::try_from(v).map_err(|_| StorageError::Corrupt("revision".into()))
}

fn rev_param(v: u64) -> i64 {
    // Handlers refuse revisions above i64::MAX before they reach storage.
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn decision_col(text: &str) -> Result<Decision, StorageError> {
    Decision::parse(text).ok_or_else(|| StorageError::Corrupt("decision".into()))
}

fn append_audit_tx(
    tx: &Transaction<'_>,
    events: &[AuditEvent],
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    if events.is_empty() {
        return Ok(());
    }
    let head: Option<(i64, String)> = tx
        .query_row(
            "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let entries = chain_events(head, &utc_text(now), events);
    let mut stmt = tx.prepare_cached(
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

impl SqliteStorage {
    /// Opens (creating if needed) the database file and applies migrations.
    pub async fn open(path: &Path) -> Result<Self, StorageError> {
        let path = path.to_owned();
        let conn = tokio::task::spawn_blocking(move || -> Result<Connection, StorageError> {
            let mut conn = Connection::open(path)?;
            conn.busy_timeout(std::time::Duration::from_secs(10))?;
            // `serve` and the ops commands (`enroll-device`, `add-user`, `verify`) each open
            // the file. A deferred transaction that reads and then writes (a review read and
            // its audit entry) cannot wait for another process's write: SQLite answers
            // "database is locked" at once. Taking the write lock at BEGIN waits instead.
            conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            conn.pragma_update(None, "foreign_keys", "ON")?;
            migrate(&mut conn)?;
            Ok(conn)
        })
        .await
        .map_err(|e| StorageError::Task(e.to_string()))??;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    async fn run<T, F>(&self, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StorageError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| StorageError::Task("database lock poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| StorageError::Task(e.to_string()))?
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StorageError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS server_migrations (
             version INTEGER PRIMARY KEY,
             name TEXT NOT NULL,
             applied_at_utc TEXT NOT NULL
         )",
    )?;
    for (version, name, sql) in MIGRATIONS {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let done: Option<i64> = tx
            .query_row(
                "SELECT version FROM server_migrations WHERE version = ?1",
                params![version],
                |r| r.get(0),
            )
            .optional()?;
        if done.is_none() {
            tx.execute_batch(sql).map_err(|e| StorageError::Migration {
                version: *version,
                source: Box::new(e.into()),
            })?;
            tx.execute(
                "INSERT INTO server_migrations (version, name, applied_at_utc) VALUES (?1, ?2, ?3)",
                params![version, name, utc_text(Utc::now())],
            )?;
        }
        tx.commit()?;
    }
    Ok(())
}

fn read_version(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawVersion> {
    Ok(RawVersion {
        seq: r.get(0)?,
        record_id: r.get(1)?,
        revision: r.get(2)?,
        status: r.get(3)?,
        document: r.get(4)?,
        content_sha256: r.get(5)?,
        signature: r.get(6)?,
        saved_at_utc: r.get(7)?,
        received_at_utc: r.get(8)?,
        device_id: r.get(9)?,
        public_key: r.get::<_, Option<String>>(10)?.unwrap_or_default(),
    })
}

struct RawVersion {
    seq: i64,
    record_id: String,
    revision: i64,
    status: String,
    document: String,
    content_sha256: String,
    signature: Option<String>,
    saved_at_utc: String,
    received_at_utc: String,
    device_id: String,
    public_key: String,
}

impl RawVersion {
    fn into_stored(self) -> Result<StoredVersion, StorageError> {
        Ok(StoredVersion {
            seq: self.seq,
            record_id: uuid_col(&self.record_id)?,
            revision: rev_col(self.revision)?,
            status: RecordStatus::parse(&self.status),
            status_text: self.status,
            document: self.document,
            content_sha256: self.content_sha256,
            signature: self.signature,
            saved_at_utc: parse_utc(&self.saved_at_utc)?,
            received_at_utc: parse_utc(&self.received_at_utc)?,
            device_id: uuid_col(&self.device_id)?,
            public_key_b64: self.public_key,
        })
    }
}

const VERSION_COLUMNS: &str = "v.seq, v.record_id, v.revision, v.status, v.document, v.content_sha256, \
     v.signature, v.saved_at_utc, v.received_at_utc, v.device_id, d.public_key";

fn push_one(
    tx: &Transaction<'_>,
    device: &DeviceIdentity,
    item: &NewVersion,
    received_at: &str,
    audit: &mut Vec<AuditEvent>,
) -> Result<StoreOutcome, StorageError> {
    let record_id = item.record_id.to_string();
    let device_id = device.device_id.to_string();
    let revision = rev_param(item.revision);
    tx.prepare_cached(
        "INSERT INTO records (record_id, device_id, latest_revision) VALUES (?1, ?2, ?3)
         ON CONFLICT (record_id) DO NOTHING",
    )?
    .execute(params![record_id, device_id, revision])?;
    let (owner, latest_revision): (String, i64) = tx
        .prepare_cached("SELECT device_id, latest_revision FROM records WHERE record_id = ?1")?
        .query_row(params![record_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    if owner != device_id {
        return Ok(StoreOutcome::NotOwner);
    }
    let existing_hash = |tx: &Transaction<'_>| -> Result<Option<String>, StorageError> {
        Ok(tx
            .prepare_cached(
                "SELECT content_sha256 FROM versions WHERE record_id = ?1 AND revision = ?2",
            )?
            .query_row(params![record_id, revision], |r| r.get(0))
            .optional()?)
    };
    if item.status == RecordStatus::Draft && revision < latest_revision {
        return Ok(match existing_hash(tx)? {
            Some(h) if h == item.content_sha256 => StoreOutcome::Duplicate,
            _ => StoreOutcome::Stale,
        });
    }
    let inserted = tx
        .prepare_cached(
            "INSERT INTO versions (record_id, revision, status, document, content_sha256,
                 signature, device_id, saved_at_utc, received_at_utc)
             VALUES (:record_id, :revision, :status, :document, :sha, :sig, :device_id, :saved, :received)
             ON CONFLICT (record_id, revision) DO NOTHING",
        )?
        .execute(named_params! {
            ":record_id": record_id,
            ":revision": revision,
            ":status": item.status.as_str(),
            ":document": item.document_canonical,
            ":sha": item.content_sha256,
            ":sig": item.signature,
            ":device_id": device_id,
            ":saved": utc_text(item.saved_at_utc),
            ":received": received_at,
        })?;
    if inserted == 0 {
        return Ok(match existing_hash(tx)? {
            Some(h) if h == item.content_sha256 => StoreOutcome::Duplicate,
            _ => StoreOutcome::Conflict,
        });
    }
    tx.prepare_cached(
        "UPDATE records SET latest_revision = MAX(latest_revision, ?2) WHERE record_id = ?1",
    )?
    .execute(params![record_id, revision])?;
    if item.status.is_signed() {
        tx.prepare_cached(
            "UPDATE records SET signed_revision = :revision, signed_status = :status,
                 signed_saved_at_utc = :saved, incident_number = :incident,
                 patient_name = :name, search_text = :search, latest_news2 = :news2,
                 latest_decision = NULL
             WHERE record_id = :record_id
               AND (signed_revision IS NULL OR signed_revision < :revision)",
        )?
        .execute(named_params! {
            ":record_id": record_id,
            ":revision": revision,
            ":status": item.status.as_str(),
            ":saved": utc_text(item.saved_at_utc),
            ":incident": item.incident_number,
            ":name": item.patient_name,
            ":search": item.search_text(),
            ":news2": item.latest_news2,
        })?;
    }
    audit.push(AuditEvent::on_record(
        &Actor::Device(device.device_id),
        "version_stored",
        item.record_id,
        Some(item.revision),
        format!(
            "status={} sha256={}",
            item.status.as_str(),
            item.content_sha256
        ),
    ));
    Ok(StoreOutcome::Stored)
}

fn review_where(with_decision: bool) -> String {
    let mut w = String::from(
        "r.signed_revision IS NOT NULL
         AND (:from IS NULL OR r.signed_saved_at_utc >= :from)
         AND (:to IS NULL OR r.signed_saved_at_utc < :to)
         AND (:min_news2 IS NULL OR r.latest_news2 >= :min_news2)
         AND (:q IS NULL OR r.search_text LIKE :q ESCAPE '\\')",
    );
    if with_decision {
        w.push_str(
            " AND (:decision IS NULL OR COALESCE(r.latest_decision, 'pending') = :decision)",
        );
    }
    w
}

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
        self.run(move |conn| {
            let tx = conn.transaction()?;
            tx.execute(
                "INSERT INTO enrolment_codes (code_hash, device_name, created_at_utc, expires_at_utc)
                 VALUES (?1, ?2, ?3, ?4)",
                params![code_hash, device_name, utc_text(now), utc_text(expires_at_utc)],
            )?;
            append_audit_tx(
                &tx,
                &[AuditEvent::new(&Actor::Admin, "enrolment_code_created", "")],
                now,
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn enroll_device(
        &self,
        device: &NewDevice,
        now: DateTime<Utc>,
    ) -> Result<EnrolOutcome, StorageError> {
        let d = device.clone();
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let code: Option<(String, Option<String>)> = tx
                .query_row(
                    "SELECT expires_at_utc, used_at_utc FROM enrolment_codes WHERE code_hash = ?1",
                    params![d.code_hash],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((expires, used)) = code else {
                return Ok(EnrolOutcome::UnknownCode);
            };
            if used.is_some() {
                return Ok(EnrolOutcome::CodeUsed);
            }
            if parse_utc(&expires)? <= now {
                return Ok(EnrolOutcome::CodeExpired);
            }
            let claimed = tx.execute(
                "UPDATE enrolment_codes SET used_at_utc = ?2, device_id = ?3
                 WHERE code_hash = ?1 AND used_at_utc IS NULL",
                params![d.code_hash, utc_text(now), d.device_id.to_string()],
            )?;
            if claimed != 1 {
                return Ok(EnrolOutcome::CodeUsed);
            }
            tx.execute(
                "INSERT INTO devices (device_id, name, public_key, token_hash, enrolled_at_utc)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    d.device_id.to_string(),
                    d.device_name,
                    d.public_key_b64,
                    d.token_hash,
                    utc_text(now)
                ],
            )?;
            append_audit_tx(
                &tx,
                &[AuditEvent::new(
                    &Actor::Device(d.device_id),
                    "device_enrolled",
                    "",
                )],
                now,
            )?;
            tx.commit()?;
            Ok(EnrolOutcome::Enrolled)
        })
        .await
    }

    async fn device_by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<DeviceIdentity>, StorageError> {
        let token_hash = token_hash.to_owned();
        self.run(move |conn| {
            let row: Option<(String, String, String, Option<String>)> = conn
                .prepare_cached(
                    "SELECT device_id, name, public_key, revoked_at_utc FROM devices
                     WHERE token_hash = ?1",
                )?
                .query_row(params![token_hash], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .optional()?;
            row.map(|(id, name, key, revoked)| {
                Ok(DeviceIdentity {
                    device_id: uuid_col(&id)?,
                    device_name: name,
                    public_key_b64: key,
                    revoked: revoked.is_some(),
                })
            })
            .transpose()
        })
        .await
    }

    async fn revoke_device(
        &self,
        device_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        self.run(move |conn| {
            let tx = conn.transaction()?;
            let exists: Option<String> = tx
                .query_row(
                    "SELECT device_id FROM devices WHERE device_id = ?1",
                    params![device_id.to_string()],
                    |r| r.get(0),
                )
                .optional()?;
            if exists.is_none() {
                return Ok(false);
            }
            tx.execute(
                "UPDATE devices SET revoked_at_utc = COALESCE(revoked_at_utc, ?2)
                 WHERE device_id = ?1",
                params![device_id.to_string(), utc_text(now)],
            )?;
            append_audit_tx(
                &tx,
                &[AuditEvent::new(
                    &Actor::Admin,
                    "device_revoked",
                    format!("device={device_id}"),
                )],
                now,
            )?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    async fn add_user(
        &self,
        username: &str,
        role: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let (username, role, hash) = (
            username.to_owned(),
            role.to_owned(),
            password_hash.to_owned(),
        );
        self.run(move |conn| {
            let tx = conn.transaction()?;
            let n = tx.execute(
                "INSERT INTO users (username, role, password_hash, created_at_utc)
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (username) DO NOTHING",
                params![username, role, hash, utc_text(now)],
            )?;
            if n == 0 {
                return Err(StorageError::UserExists);
            }
            append_audit_tx(
                &tx,
                &[AuditEvent::new(
                    &Actor::Admin,
                    "user_added",
                    format!("user={username} role={role}"),
                )],
                now,
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn user_by_name(&self, username: &str) -> Result<Option<UserRecord>, StorageError> {
        let username = username.to_owned();
        self.run(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT username, role, password_hash FROM users WHERE username = ?1",
                    params![username],
                    |r| {
                        Ok(UserRecord {
                            username: r.get(0)?,
                            role: r.get(1)?,
                            password_hash: r.get(2)?,
                        })
                    },
                )
                .optional()?)
        })
        .await
    }

    async fn login_failures(&self, username: &str) -> Result<Option<LoginFailures>, StorageError> {
        let username = username.to_owned();
        self.run(move |conn| {
            let row: Option<(i64, String)> = conn
                .query_row(
                    "SELECT failures, last_failure_at_utc FROM login_failures WHERE username = ?1",
                    params![username],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            row.map(|(n, at)| {
                Ok(LoginFailures {
                    failures: u32::try_from(n).unwrap_or(u32::MAX),
                    last_failure_at_utc: parse_utc(&at)?,
                })
            })
            .transpose()
        })
        .await
    }

    async fn record_login_failure(
        &self,
        username: &str,
        now: DateTime<Utc>,
    ) -> Result<u32, StorageError> {
        let username = username.to_owned();
        self.run(move |conn| {
            let n: i64 = conn.query_row(
                "INSERT INTO login_failures (username, failures, last_failure_at_utc)
                 VALUES (?1, 1, ?2)
                 ON CONFLICT (username) DO UPDATE
                     SET failures = failures + 1, last_failure_at_utc = excluded.last_failure_at_utc
                 RETURNING failures",
                params![username, utc_text(now)],
                |r| r.get(0),
            )?;
            Ok(u32::try_from(n).unwrap_or(u32::MAX))
        })
        .await
    }

    async fn clear_login_failures(&self, username: &str) -> Result<(), StorageError> {
        let username = username.to_owned();
        self.run(move |conn| {
            conn.execute(
                "DELETE FROM login_failures WHERE username = ?1",
                params![username],
            )?;
            Ok(())
        })
        .await
    }

    async fn create_session(
        &self,
        token_hash: &str,
        user: &UserRecord,
        now: DateTime<Utc>,
        expires_at_utc: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let (token_hash, username, role) = (
            token_hash.to_owned(),
            user.username.clone(),
            user.role.clone(),
        );
        self.run(move |conn| {
            let tx = conn.transaction()?;
            tx.execute(
                "DELETE FROM sessions WHERE expires_at_utc <= ?1",
                params![utc_text(now)],
            )?;
            tx.execute(
                "INSERT INTO sessions (token_hash, username, role, created_at_utc, expires_at_utc)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    token_hash,
                    username,
                    role,
                    utc_text(now),
                    utc_text(expires_at_utc)
                ],
            )?;
            append_audit_tx(
                &tx,
                &[AuditEvent::new(
                    &Actor::Supervisor(username.clone()),
                    "logged_in",
                    "",
                )],
                now,
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn session_by_token_hash(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionIdentity>, StorageError> {
        let token_hash = token_hash.to_owned();
        self.run(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT username, role FROM sessions
                     WHERE token_hash = ?1 AND expires_at_utc > ?2",
                )?
                .query_row(params![token_hash, utc_text(now)], |r| {
                    Ok(SessionIdentity {
                        username: r.get(0)?,
                        role: r.get(1)?,
                    })
                })
                .optional()?)
        })
        .await
    }

    async fn push_versions(
        &self,
        device: &DeviceIdentity,
        items: &[NewVersion],
        now: DateTime<Utc>,
    ) -> Result<Vec<StoreOutcome>, StorageError> {
        let device = device.clone();
        let items = items.to_vec();
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let received = utc_text(now);
            let mut audit = Vec::new();
            let mut out = Vec::with_capacity(items.len());
            for item in &items {
                out.push(push_one(&tx, &device, item, &received, &mut audit)?);
            }
            append_audit_tx(&tx, &audit, now)?;
            tx.commit()?;
            Ok(out)
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
        let device_id = device.device_id;
        self.run(move |conn| {
            let tx = conn.transaction()?;
            let rows: Vec<(i64, String, i64, String, String, String, String)> = tx
                .prepare_cached(
                    "SELECT cursor, record_id, revision, decision, comment, decided_by, decided_at_utc
                     FROM decisions WHERE device_id = ?1 AND cursor > ?2
                     ORDER BY cursor LIMIT ?3",
                )?
                .query_map(params![device_id.to_string(), since_cursor, limit], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                    ))
                })?
                .collect::<Result<_, _>>()?;
            let mut items = Vec::with_capacity(rows.len());
            let mut audit = Vec::new();
            for (cursor, record_id, revision, decision, comment, by, at) in rows {
                let item = FeedbackItem {
                    cursor,
                    record_id: uuid_col(&record_id)?,
                    revision: rev_col(revision)?,
                    decision: decision_col(&decision)?,
                    comment,
                    decided_by: by,
                    decided_at_utc: parse_utc(&at)?,
                };
                audit.push(AuditEvent::on_record(
                    &Actor::Device(device_id),
                    "feedback_read",
                    item.record_id,
                    Some(item.revision),
                    format!("cursor={cursor}"),
                ));
                items.push(item);
            }
            append_audit_tx(&tx, &audit, now)?;
            tx.commit()?;
            Ok(items)
        })
        .await
    }

    async fn review_list(
        &self,
        filter: &ReviewFilter,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<ReviewPage, StorageError> {
        let filter = filter.clone();
        let actor = actor.clone();
        self.run(move |conn| {
            let tx = conn.transaction()?;
            let from = filter.from_utc.map(utc_text);
            let to = filter.to_utc.map(utc_text);
            let q = filter.like_pattern();
            let news2 = filter.min_news2.map(i64::from);
            let decision = filter.decision_text();
            let sql = format!(
                "SELECT r.record_id, r.signed_revision, r.signed_status, r.incident_number,
                        r.patient_name, r.latest_news2, r.signed_saved_at_utc, d.name,
                        r.latest_decision
                 FROM records r JOIN devices d ON d.device_id = r.device_id
                 WHERE {}
                 ORDER BY r.signed_saved_at_utc DESC, r.record_id DESC
                 LIMIT :limit OFFSET :offset",
                review_where(true)
            );
            let offset = i64::try_from(filter.offset).unwrap_or(i64::MAX);
            let mut stmt = tx.prepare(&sql)?;
            let rows = stmt.query_map(
                named_params! {
                    ":from": from, ":to": to, ":min_news2": news2, ":q": q,
                    ":decision": decision, ":limit": filter.limit, ":offset": offset,
                },
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, Option<i64>>(5)?,
                        r.get::<_, String>(6)?,
                        r.get::<_, String>(7)?,
                        r.get::<_, Option<String>>(8)?,
                    ))
                },
            )?;
            let mut items = Vec::new();
            for row in rows {
                let (id, rev, status, inc, name, news2, saved, dev, dec) = row?;
                items.push(ReviewSummary {
                    record_id: uuid_col(&id)?,
                    revision: rev_col(rev)?,
                    status: RecordStatus::parse(&status)
                        .ok_or_else(|| StorageError::Corrupt("status".into()))?,
                    incident_number: inc.unwrap_or_default(),
                    patient_name: name.unwrap_or_default(),
                    latest_news2: news2.and_then(|n| u8::try_from(n).ok()),
                    saved_at_utc: parse_utc(&saved)?,
                    device_name: dev,
                    decision: dec.as_deref().map(decision_col).transpose()?,
                });
            }
            drop(stmt);
            let count_sql = format!(
                "SELECT COALESCE(r.latest_decision, 'pending'), COUNT(*) FROM records r
                 WHERE {} GROUP BY 1",
                review_where(false)
            );
            let mut counts = DecisionCounts::default();
            {
                let mut stmt = tx.prepare(&count_sql)?;
                let rows = stmt.query_map(
                    named_params! {":from": from, ":to": to, ":min_news2": news2, ":q": q},
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
                )?;
                for row in rows {
                    let (k, n) = row?;
                    let n = u64::try_from(n).unwrap_or(0);
                    match k.as_str() {
                        "pending" => counts.pending = n,
                        "approved" => counts.approved = n,
                        "returned" => counts.returned = n,
                        "flagged" => counts.flagged = n,
                        _ => return Err(StorageError::Corrupt("decision".into())),
                    }
                }
            }
            let total = match decision {
                None => counts.pending + counts.approved + counts.returned + counts.flagged,
                Some("pending") => counts.pending,
                Some("approved") => counts.approved,
                Some("returned") => counts.returned,
                Some(_) => counts.flagged,
            };
            let mut audit = vec![AuditEvent::new(
                &actor,
                "review_list_read",
                format!("items={} offset={}", items.len(), filter.offset),
            )];
            for it in &items {
                audit.push(AuditEvent::on_record(
                    &actor,
                    "review_summary_read",
                    it.record_id,
                    Some(it.revision),
                    "",
                ));
            }
            append_audit_tx(&tx, &audit, now)?;
            tx.commit()?;
            Ok(ReviewPage {
                items,
                total,
                counts,
            })
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
        self.run(move |conn| {
            let tx = conn.transaction()?;
            let id = record_id.to_string();
            let head: Option<(String, String)> = tx
                .query_row(
                    "SELECT r.device_id, d.name FROM records r JOIN devices d ON d.device_id = r.device_id
                     WHERE r.record_id = ?1 AND r.signed_revision IS NOT NULL",
                    params![id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((device_id, device_name)) = head else {
                return Ok(None);
            };
            let sql = format!(
                "SELECT {VERSION_COLUMNS} FROM versions v JOIN devices d ON d.device_id = v.device_id
                 WHERE v.record_id = ?1 AND v.status <> 'draft' ORDER BY v.revision"
            );
            let versions = tx
                .prepare(&sql)?
                .query_map(params![id], read_version)?
                .map(|r| r.map_err(StorageError::from).and_then(RawVersion::into_stored))
                .collect::<Result<Vec<_>, _>>()?;
            let decisions = tx
                .prepare(
                    "SELECT revision, decision, comment, decided_by, decided_at_utc FROM decisions
                     WHERE record_id = ?1 ORDER BY cursor",
                )?
                .query_map(params![id], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                    ))
                })?
                .map(|r| {
                    let (rev, dec, comment, by, at) = r?;
                    Ok(DecisionRecord {
                        record_id,
                        revision: rev_col(rev)?,
                        decision: decision_col(&dec)?,
                        comment,
                        decided_by: by,
                        decided_at_utc: parse_utc(&at)?,
                    })
                })
                .collect::<Result<Vec<_>, StorageError>>()?;
            let audit: Vec<AuditEvent> = versions
                .iter()
                .map(|v| {
                    AuditEvent::on_record(&actor, "version_read", record_id, Some(v.revision), "")
                })
                .collect();
            append_audit_tx(&tx, &audit, now)?;
            tx.commit()?;
            Ok(Some(RecordDetail {
                record_id,
                device_id: uuid_col(&device_id)?,
                device_name,
                versions,
                decisions,
            }))
        })
        .await
    }

    async fn decide(
        &self,
        decision: &NewDecision,
        now: DateTime<Utc>,
    ) -> Result<DecideOutcome, StorageError> {
        let d = decision.clone();
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let id = d.record_id.to_string();
            let head: Option<(String, Option<i64>)> = tx
                .query_row(
                    "SELECT device_id, signed_revision FROM records WHERE record_id = ?1",
                    params![id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((device_id, Some(latest))) = head else {
                return Ok(DecideOutcome::RecordNotFound);
            };
            let revision = rev_param(d.revision);
            let signed: Option<String> = tx
                .query_row(
                    "SELECT status FROM versions WHERE record_id = ?1 AND revision = ?2
                     AND status <> 'draft'",
                    params![id, revision],
                    |r| r.get(0),
                )
                .optional()?;
            if signed.is_none() {
                return Ok(DecideOutcome::UnknownRevision);
            }
            if revision < latest {
                return Ok(DecideOutcome::Superseded {
                    latest_revision: rev_col(latest)?,
                });
            }
            let by = d.decided_by.clone();
            tx.execute(
                "INSERT INTO decisions (record_id, revision, device_id, decision, comment,
                     decided_by, decided_at_utc)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    id,
                    revision,
                    device_id,
                    d.decision.as_str(),
                    d.comment,
                    by,
                    utc_text(now)
                ],
            )?;
            tx.execute(
                "UPDATE records SET latest_decision = ?2 WHERE record_id = ?1",
                params![id, d.decision.as_str()],
            )?;
            append_audit_tx(
                &tx,
                &[AuditEvent::on_record(
                    &Actor::Supervisor(by.clone()),
                    "decision_recorded",
                    d.record_id,
                    Some(d.revision),
                    format!("decision={}", d.decision.as_str()),
                )],
                now,
            )?;
            tx.commit()?;
            Ok(DecideOutcome::Recorded(DecisionRecord {
                record_id: d.record_id,
                revision: d.revision,
                decision: d.decision,
                comment: d.comment,
                decided_by: by,
                decided_at_utc: to_micros(now),
            }))
        })
        .await
    }

    async fn versions_after(
        &self,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<StoredVersion>, StorageError> {
        self.run(move |conn| {
            let sql = format!(
                "SELECT {VERSION_COLUMNS} FROM versions v LEFT JOIN devices d ON d.device_id = v.device_id
                 WHERE v.seq > ?1 ORDER BY v.seq LIMIT ?2"
            );
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt.query_map(params![after_seq, limit], read_version)?;
            rows.map(|r| r.map_err(StorageError::from).and_then(RawVersion::into_stored))
                .collect()
        })
        .await
    }

    async fn stats(&self) -> Result<Stats, StorageError> {
        self.run(move |conn| {
            let count = |sql: &str| -> Result<u64, StorageError> {
                let n: i64 = conn.query_row(sql, [], |r| r.get(0))?;
                Ok(u64::try_from(n).unwrap_or(0))
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
        })
        .await
    }

    async fn append_audit(
        &self,
        events: &[AuditEvent],
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let events = events.to_vec();
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            append_audit_tx(&tx, &events, now)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn audit_entries_after(
        &self,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StorageError> {
        self.run(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT seq, at_utc, actor, action, record_id, revision, detail, prev_hash, hash
                 FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![after_seq, limit], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, Option<i64>>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, String>(7)?,
                    r.get::<_, String>(8)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (seq, at_utc, actor, action, record_id, revision, detail, prev_hash, hash) =
                    row?;
                out.push(AuditEntry {
                    seq,
                    at_utc,
                    actor,
                    action,
                    record_id: record_id.as_deref().map(uuid_col).transpose()?,
                    revision,
                    detail,
                    prev_hash,
                    hash,
                });
            }
            Ok(out)
        })
        .await
    }
}
