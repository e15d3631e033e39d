//! PostgreSQL server storage (`postgres://...`), for production and for several stateless
//! server replicas behind a load balancer.
//!
//! tokio-postgres with a deadpool pool. Replicas share nothing but the database, so every
//! write transaction starts with a transaction-scoped advisory lock keyed by the schema: it
//! serialises writers, which keeps the audit chain linear (each entry chains from the one
//! committed before it) and makes decision cursors commit in order, so a device paging
//! feedback by cursor can never skip one. Dedup still rests on the UNIQUE constraint.
//! The search path (`options=-csearch_path%3D...` in the URL) picks the schema, which is how
//! tests get a fresh schema each.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;
use uuid::Uuid;

use super::*;
use crate::model::RecordStatus;
use crate::protocol::{Decision, DecisionCounts, DecisionRecord, FeedbackItem, ReviewSummary};

const MIGRATIONS: &[(u32, &str, &str)] = &[(
    1,
    "initial",
    include_str!("../../../migrations/server/postgres/0001_initial.sql"),
)];

/// Serialises writers within one schema (see the module comment).
const WRITE_LOCK: &str = "SELECT pg_advisory_xact_lock(hashtext(coalesce(current_schema(), '')))";

/// The PostgreSQL implementation of [`Storage`].
#[derive(Clone)]
pub struct PostgresStorage {
    pool: Pool,
}

impl std::fmt::Debug for PostgresStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: never print it.
        f.write_str("PostgresStorage")
    }
}

fn pool_err(e: impl std::fmt::Display) -> StorageError {
    StorageError::Pool(e.to_string())
}

fn rev_param(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn rev_col(v: i64) -> Result<u64, StorageError> {
    u64::try_from(v).map_err(|_| StorageError::Corrupt("revision".into()))
}

fn decision_col(text: &str) -> Result<Decision, StorageError> {
    Decision::parse(text).ok_or_else(|| StorageError::Corrupt("decision".into()))
}

async fn append_audit_tx<C: GenericClient>(
    tx: &C,
    events: &[AuditEvent],
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    if events.is_empty() {
        return Ok(());
    }
    let head = tx
        .query_opt("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", &[])
        .await?
        .map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1)));
    let entries = chain_events(head, &utc_text(now), events);
    let stmt = tx
        .prepare_cached(
            "INSERT INTO audit (seq, at_utc, actor, action, record_id, revision, detail, prev_hash, hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .await?;
    for e in entries {
        tx.execute(
            &stmt,
            &[
                &e.seq,
                &e.at_utc,
                &e.actor,
                &e.action,
                &e.record_id,
                &e.revision,
                &e.detail,
                &e.prev_hash,
                &e.hash,
            ],
        )
        .await?;
    }
    Ok(())
}

impl PostgresStorage {
    /// Connects a pool to `url` and applies migrations (under a session advisory lock, so two
    /// replicas starting together do not race).
    pub async fn open(url: &str) -> Result<Self, StorageError> {
        let pg_config: tokio_postgres::Config = url.parse()?;
        let manager = Manager::from_config(
            pg_config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(16)
            .build()
            .map_err(pool_err)?;
        let storage = Self { pool };
        storage.migrate().await?;
        Ok(storage)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StorageError> {
        self.pool.get().await.map_err(pool_err)
    }

    async fn migrate(&self) -> Result<(), StorageError> {
        let mut client = self.client().await?;
        client
            .execute(
                "SELECT pg_advisory_lock(hashtext(coalesce(current_schema(), '') || '/migrate'))",
                &[],
            )
            .await?;
        let result = async {
            client
                .batch_execute(
                    "CREATE TABLE IF NOT EXISTS server_migrations (
                         version INTEGER PRIMARY KEY,
                         name TEXT NOT NULL,
                         applied_at_utc TIMESTAMPTZ NOT NULL
                     )",
                )
                .await?;
            for (version, name, sql) in MIGRATIONS {
                let v = i32::try_from(*version).unwrap_or(i32::MAX);
                let tx = client.transaction().await?;
                let done = tx
                    .query_opt(
                        "SELECT version FROM server_migrations WHERE version = $1",
                        &[&v],
                    )
                    .await?;
                if done.is_none() {
                    tx.batch_execute(sql)
                        .await
                        .map_err(|e| StorageError::Migration {
                            version: *version,
                            source: Box::new(e.into()),
                        })?;
                    tx.execute(
                        "INSERT INTO server_migrations (version, name, applied_at_utc)
                         VALUES ($1, $2, now())",
                        &[&v, name],
                    )
                    .await?;
                }
                tx.commit().await?;
            }
            Ok::<(), StorageError>(())
        }
        .await;
        client
            .execute(
                "SELECT pg_advisory_unlock(hashtext(coalesce(current_schema(), '') || '/migrate'))",
                &[],
            )
            .await?;
        result
    }
}

fn stored_version(r: &tokio_postgres::Row) -> Result<StoredVersion, StorageError> {
    let status_text: String = r.try_get(3)?;
    Ok(StoredVersion {
        seq: r.try_get(0)?,
        record_id: r.try_get(1)?,
        revision: rev_col(r.try_get(2)?)?,
        status: RecordStatus::parse(&status_text),
        status_text,
        document: r.try_get(4)?,
        content_sha256: r.try_get(5)?,
        signature: r.try_get(6)?,
        saved_at_utc: r.try_get(7)?,
        received_at_utc: r.try_get(8)?,
        device_id: r.try_get(9)?,
        public_key_b64: r.try_get::<_, Option<String>>(10)?.unwrap_or_default(),
    })
}

const VERSION_COLUMNS: &str = "v.seq, v.record_id, v.revision, v.status, v.document, v.content_sha256, \
     v.signature, v.saved_at_utc, v.received_at_utc, v.device_id, d.public_key";

async fn push_one<C: GenericClient>(
    tx: &C,
    device: &DeviceIdentity,
    item: &NewVersion,
    now: DateTime<Utc>,
    audit: &mut Vec<AuditEvent>,
) -> Result<StoreOutcome, StorageError> {
    let revision = rev_param(item.revision);
    let ins = tx
        .prepare_cached(
            "INSERT INTO records (record_id, device_id, latest_revision) VALUES ($1, $2, $3)
             ON CONFLICT (record_id) DO NOTHING",
        )
        .await?;
    tx.execute(&ins, &[&item.record_id, &device.device_id, &revision])
        .await?;
    let sel = tx
        .prepare_cached("SELECT device_id, latest_revision FROM records WHERE record_id = $1")
        .await?;
    let row = tx.query_one(&sel, &[&item.record_id]).await?;
    let owner: Uuid = row.try_get(0)?;
    let latest_revision: i64 = row.try_get(1)?;
    if owner != device.device_id {
        return Ok(StoreOutcome::NotOwner);
    }
    let existing = tx
        .prepare_cached(
            "SELECT content_sha256 FROM versions WHERE record_id = $1 AND revision = $2",
        )
        .await?;
    if item.status == RecordStatus::Draft && revision < latest_revision {
        let h = tx
            .query_opt(&existing, &[&item.record_id, &revision])
            .await?
            .map(|r| r.get::<_, String>(0));
        return Ok(match h {
            Some(h) if h == item.content_sha256 => StoreOutcome::Duplicate,
            _ => StoreOutcome::Stale,
        });
    }
    let insv = tx
        .prepare_cached(
            "INSERT INTO versions (record_id, revision, status, document, content_sha256,
                 signature, device_id, saved_at_utc, received_at_utc)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (record_id, revision) DO NOTHING",
        )
        .await?;
    let inserted = tx
        .execute(
            &insv,
            &[
                &item.record_id,
                &revision,
                &item.status.as_str(),
                &item.document_canonical,
                &item.content_sha256,
                &item.signature,
                &device.device_id,
                &item.saved_at_utc,
                &now,
            ],
        )
        .await?;
    if inserted == 0 {
        let h = tx
            .query_opt(&existing, &[&item.record_id, &revision])
            .await?
            .map(|r| r.get::<_, String>(0));
        return Ok(match h {
            Some(h) if h == item.content_sha256 => StoreOutcome::Duplicate,
            _ => StoreOutcome::Conflict,
        });
    }
    let upd = tx
        .prepare_cached(
            "UPDATE records SET latest_revision = GREATEST(latest_revision, $2) WHERE record_id = $1",
        )
        .await?;
    tx.execute(&upd, &[&item.record_id, &revision]).await?;
    if item.status.is_signed() {
        let upd = tx
            .prepare_cached(
                "UPDATE records SET signed_revision = $2, signed_status = $3,
                     signed_saved_at_utc = $4, incident_number = $5, patient_name = $6,
                     search_text = $7, latest_news2 = $8, latest_decision = NULL
                 WHERE record_id = $1 AND (signed_revision IS NULL OR signed_revision < $2)",
            )
            .await?;
        let news2 = item.latest_news2.map(i32::from);
        tx.execute(
            &upd,
            &[
                &item.record_id,
                &revision,
                &item.status.as_str(),
                &item.saved_at_utc,
                &item.incident_number,
                &item.patient_name,
                &item.search_text(),
                &news2,
            ],
        )
        .await?;
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

const REVIEW_WHERE: &str = "r.signed_revision IS NOT NULL
     AND ($1::timestamptz IS NULL OR r.signed_saved_at_utc >= $1)
     AND ($2::timestamptz IS NULL OR r.signed_saved_at_utc < $2)
     AND ($3::integer IS NULL OR r.latest_news2 >= $3)
     AND ($4::text IS NULL OR r.search_text LIKE $4 ESCAPE '\\')";

#[async_trait]
impl Storage for PostgresStorage {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn create_enrolment_code(
        &self,
        code_hash: &str,
        device_name: &str,
        now: DateTime<Utc>,
        expires_at_utc: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(WRITE_LOCK, &[]).await?;
        tx.execute(
            "INSERT INTO enrolment_codes (code_hash, device_name, created_at_utc, expires_at_utc)
             VALUES ($1, $2, $3, $4)",
            &[&code_hash, &device_name, &now, &expires_at_utc],
        )
        .await?;
        append_audit_tx(
            &tx,
            &[AuditEvent::new(&Actor::Admin, "enrolment_code_created", "")],
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn enroll_device(
        &self,
        d: &NewDevice,
        now: DateTime<Utc>,
    ) -> Result<EnrolOutcome, StorageError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(WRITE_LOCK, &[]).await?;
        let code = tx
            .query_opt(
                "SELECT expires_at_utc, used_at_utc FROM enrolment_codes WHERE code_hash = $1
                 FOR UPDATE",
                &[&d.code_hash],
            )
            .await?;
        let Some(code) = code else {
            return Ok(EnrolOutcome::UnknownCode);
        };
        let expires: DateTime<Utc> = code.try_get(0)?;
        let used: Option<DateTime<Utc>> = code.try_get(1)?;
        if used.is_some() {
            return Ok(EnrolOutcome::CodeUsed);
        }
        if expires <= now {
            return Ok(EnrolOutcome::CodeExpired);
        }
        let claimed = tx
            .execute(
                "UPDATE enrolment_codes SET used_at_utc = $2, device_id = $3
                 WHERE code_hash = $1 AND used_at_utc IS NULL",
                &[&d.code_hash, &now, &d.device_id],
            )
            .await?;
        if claimed != 1 {
            return Ok(EnrolOutcome::CodeUsed);
        }
        tx.execute(
            "INSERT INTO devices (device_id, name, public_key, token_hash, enrolled_at_utc)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &d.device_id,
                &d.device_name,
                &d.public_key_b64,
                &d.token_hash,
                &now,
            ],
        )
        .await?;
        append_audit_tx(
            &tx,
            &[AuditEvent::new(
                &Actor::Device(d.device_id),
                "device_enrolled",
                "",
            )],
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(EnrolOutcome::Enrolled)
    }

    async fn device_by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<DeviceIdentity>, StorageError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT device_id, name, public_key, revoked_at_utc FROM devices
                 WHERE token_hash = $1",
            )
            .await?;
        let row = client.query_opt(&stmt, &[&token_hash]).await?;
        row.map(|r| {
            Ok(DeviceIdentity {
                device_id: r.try_get(0)?,
                device_name: r.try_get(1)?,
                public_key_b64: r.try_get(2)?,
                revoked: r.try_get::<_, Option<DateTime<Utc>>>(3)?.is_some(),
            })
        })
        .transpose()
    }

    async fn revoke_device(
        &self,
        device_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(WRITE_LOCK, &[]).await?;
        let n = tx
            .execute(
                "UPDATE devices SET revoked_at_utc = COALESCE(revoked_at_utc, $2)
                 WHERE device_id = $1",
                &[&device_id, &now],
            )
            .await?;
        if n == 0 {
            return Ok(false);
        }
        append_audit_tx(
            &tx,
            &[AuditEvent::new(
                &Actor::Admin,
                "device_revoked",
                format!("device={device_id}"),
            )],
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn add_user(
        &self,
        username: &str,
        role: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(WRITE_LOCK, &[]).await?;
        let n = tx
            .execute(
                "INSERT INTO users (username, role, password_hash, created_at_utc)
                 VALUES ($1, $2, $3, $4) ON CONFLICT (username) DO NOTHING",
                &[&username, &role, &password_hash, &now],
            )
            .await?;
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
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn user_by_name(&self, username: &str) -> Result<Option<UserRecord>, StorageError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT username, role, password_hash FROM users WHERE username = $1",
                &[&username],
            )
            .await?;
        row.map(|r| {
            Ok(UserRecord {
                username: r.try_get(0)?,
                role: r.try_get(1)?,
                password_hash: r.try_get(2)?,
            })
        })
        .transpose()
    }

    async fn login_failures(&self, username: &str) -> Result<Option<LoginFailures>, StorageError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT failures, last_failure_at_utc FROM login_failures WHERE username = $1",
                &[&username],
            )
            .await?;
        row.map(|r| {
            Ok(LoginFailures {
                failures: u32::try_from(r.try_get::<_, i32>(0)?).unwrap_or(0),
                last_failure_at_utc: r.try_get(1)?,
            })
        })
        .transpose()
    }

    async fn record_login_failure(
        &self,
        username: &str,
        now: DateTime<Utc>,
    ) -> Result<u32, StorageError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "INSERT INTO login_failures (username, failures, last_failure_at_utc)
                 VALUES ($1, 1, $2)
                 ON CONFLICT (username) DO UPDATE
                     SET failures = login_failures.failures + 1,
                         last_failure_at_utc = EXCLUDED.last_failure_at_utc
                 RETURNING failures",
                &[&username, &now],
            )
            .await?;
        Ok(u32::try_from(row.try_get::<_, i32>(0)?).unwrap_or(0))
    }

    async fn clear_login_failures(&self, username: &str) -> Result<(), StorageError> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM login_failures WHERE username = $1",
                &[&username],
            )
            .await?;
        Ok(())
    }

    async fn create_session(
        &self,
        token_hash: &str,
        user: &UserRecord,
        now: DateTime<Utc>,
        expires_at_utc: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(WRITE_LOCK, &[]).await?;
        tx.execute("DELETE FROM sessions WHERE expires_at_utc <= $1", &[&now])
            .await?;
        tx.execute(
            "INSERT INTO sessions (token_hash, username, role, created_at_utc, expires_at_utc)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &token_hash,
                &user.username,
                &user.role,
                &now,
                &expires_at_utc,
            ],
        )
        .await?;
        append_audit_tx(
            &tx,
            &[AuditEvent::new(
                &Actor::Supervisor(user.username.clone()),
                "logged_in",
                "",
            )],
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn session_by_token_hash(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionIdentity>, StorageError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT username, role FROM sessions WHERE token_hash = $1 AND expires_at_utc > $2",
            )
            .await?;
        let row = client.query_opt(&stmt, &[&token_hash, &now]).await?;
        row.map(|r| {
            Ok(SessionIdentity {
                username: r.try_get(0)?,
                role: r.try_get(1)?,
            })
        })
        .transpose()
    }

    async fn push_versions(
        &self,
        device: &DeviceIdentity,
        items: &[NewVersion],
        now: DateTime<Utc>,
    ) -> Result<Vec<StoreOutcome>, StorageError> {
        let now = to_micros(now);
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(WRITE_LOCK, &[]).await?;
        let mut audit = Vec::new();
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            out.push(push_one(&tx, device, item, now, &mut audit).await?);
        }
        append_audit_tx(&tx, &audit, now).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn feedback_since(
        &self,
        device: &DeviceIdentity,
        since_cursor: i64,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<FeedbackItem>, StorageError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(WRITE_LOCK, &[]).await?;
        let rows = tx
            .query(
                "SELECT cursor, record_id, revision, decision, comment, decided_by, decided_at_utc
                 FROM decisions WHERE device_id = $1 AND cursor > $2
                 ORDER BY cursor LIMIT $3",
                &[&device.device_id, &since_cursor, &i64::from(limit)],
            )
            .await?;
        let mut items = Vec::with_capacity(rows.len());
        let mut audit = Vec::new();
        for r in rows {
            let item = FeedbackItem {
                cursor: r.try_get(0)?,
                record_id: r.try_get(1)?,
                revision: rev_col(r.try_get(2)?)?,
                decision: decision_col(&r.try_get::<_, String>(3)?)?,
                comment: r.try_get(4)?,
                decided_by: r.try_get(5)?,
                decided_at_utc: r.try_get(6)?,
            };
            audit.push(AuditEvent::on_record(
                &Actor::Device(device.device_id),
                "feedback_read",
                item.record_id,
                Some(item.revision),
                format!("cursor={}", item.cursor),
            ));
            items.push(item);
        }
        append_audit_tx(&tx, &audit, now).await?;
        tx.commit().await?;
        Ok(items)
    }

    async fn review_list(
        &self,
        filter: &ReviewFilter,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<ReviewPage, StorageError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(WRITE_LOCK, &[]).await?;
        let q = filter.like_pattern();
        let news2 = filter.min_news2.map(i32::from);
        let decision = filter.decision_text();
        let limit = i64::from(filter.limit);
        let offset = i64::try_from(filter.offset).unwrap_or(i64::MAX);
        let sql = format!(
            "SELECT r.record_id, r.signed_revision, r.signed_status, r.incident_number,
                    r.patient_name, r.latest_news2, r.signed_saved_at_utc, d.name,
                    r.latest_decision
             FROM records r JOIN devices d ON d.device_id = r.device_id
             WHERE {REVIEW_WHERE}
               AND ($5::text IS NULL OR COALESCE(r.latest_decision, 'pending') = $5)
             ORDER BY r.signed_saved_at_utc DESC, r.record_id DESC
             LIMIT $6 OFFSET $7"
        );
        let rows = tx
            .query(
                &sql,
                &[
                    &filter.from_utc,
                    &filter.to_utc,
                    &news2,
                    &q,
                    &decision,
                    &limit,
                    &offset,
                ],
            )
            .await?;
        let mut items = Vec::with_capacity(rows.len());
        for r in rows {
            let status: String = r.try_get(2)?;
            items.push(ReviewSummary {
                record_id: r.try_get(0)?,
                revision: rev_col(r.try_get(1)?)?,
                status: RecordStatus::parse(&status)
                    .ok_or_else(|| StorageError::Corrupt("status".into()))?,
                incident_number: r.try_get::<_, Option<String>>(3)?.unwrap_or_default(),
                patient_name: r.try_get::<_, Option<String>>(4)?.unwrap_or_default(),
                latest_news2: r
                    .try_get::<_, Option<i32>>(5)?
                    .and_then(|n| u8::try_from(n).ok()),
                saved_at_utc: r.try_get(6)?,
                device_name: r.try_get(7)?,
                decision: r
                    .try_get::<_, Option<String>>(8)?
                    .as_deref()
                    .map(decision_col)
                    .transpose()?,
            });
        }
        let count_sql = format!(
            "SELECT COALESCE(r.latest_decision, 'pending'), COUNT(*) FROM records r
             WHERE {REVIEW_WHERE} GROUP BY 1"
        );
        let mut counts = DecisionCounts::default();
        for r in tx
            .query(&count_sql, &[&filter.from_utc, &filter.to_utc, &news2, &q])
            .await?
        {
            let k: String = r.try_get(0)?;
            let n = u64::try_from(r.try_get::<_, i64>(1)?).unwrap_or(0);
            match k.as_str() {
                "pending" => counts.pending = n,
                "approved" => counts.approved = n,
                "returned" => counts.returned = n,
                "flagged" => counts.flagged = n,
                _ => return Err(StorageError::Corrupt("decision".into())),
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
            actor,
            "review_list_read",
            format!("items={} offset={}", items.len(), filter.offset),
        )];
        for it in &items {
            audit.push(AuditEvent::on_record(
                actor,
                "review_summary_read",
                it.record_id,
                Some(it.revision),
                "",
            ));
        }
        append_audit_tx(&tx, &audit, now).await?;
        tx.commit().await?;
        Ok(ReviewPage {
            items,
            total,
            counts,
        })
    }

    async fn review_detail(
        &self,
        record_id: Uuid,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Option<RecordDetail>, StorageError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(WRITE_LOCK, &[]).await?;
        let head = tx
            .query_opt(
                "SELECT r.device_id, d.name FROM records r JOIN devices d ON d.device_id = r.device_id
                 WHERE r.record_id = $1 AND r.signed_revision IS NOT NULL",
                &[&record_id],
            )
            .await?;
        let Some(head) = head else {
            return Ok(None);
        };
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM versions v JOIN devices d ON d.device_id = v.device_id
             WHERE v.record_id = $1 AND v.status <> 'draft' ORDER BY v.revision"
        );
        let versions = tx
            .query(&sql, &[&record_id])
            .await?
            .iter()
            .map(stored_version)
            .collect::<Result<Vec<_>, _>>()?;
        let decisions = tx
            .query(
                "SELECT revision, decision, comment, decided_by, decided_at_utc FROM decisions
                 WHERE record_id = $1 ORDER BY cursor",
                &[&record_id],
            )
            .await?
            .iter()
            .map(|r| {
                Ok(DecisionRecord {
                    record_id,
                    revision: rev_col(r.try_get(0)?)?,
                    decision: decision_col(&r.try_get::<_, String>(1)?)?,
                    comment: r.try_get(2)?,
                    decided_by: r.try_get(3)?,
                    decided_at_utc: r.try_get(4)?,
                })
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        let audit: Vec<AuditEvent> = versions
            .iter()
            .map(|v| AuditEvent::on_record(actor, "version_read", record_id, Some(v.revision), ""))
            .collect();
        append_audit_tx(&tx, &audit, now).await?;
        tx.commit().await?;
        Ok(Some(RecordDetail {
            record_id,
            device_id: head.try_get(0)?,
            device_name: head.try_get(1)?,
            versions,
            decisions,
        }))
    }

    async fn decide(
        &self,
        d: &NewDecision,
        now: DateTime<Utc>,
    ) -> Result<DecideOutcome, StorageError> {
        let now = to_micros(now);
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(WRITE_LOCK, &[]).await?;
        let head = tx
            .query_opt(
                "SELECT device_id, signed_revision FROM records WHERE record_id = $1",
                &[&d.record_id],
            )
            .await?;
        let Some(head) = head else {
            return Ok(DecideOutcome::RecordNotFound);
        };
        let device_id: Uuid = head.try_get(0)?;
        let Some(latest) = head.try_get::<_, Option<i64>>(1)? else {
            return Ok(DecideOutcome::RecordNotFound);
        };
        let revision = rev_param(d.revision);
        let signed = tx
            .query_opt(
                "SELECT status FROM versions WHERE record_id = $1 AND revision = $2
                 AND status <> 'draft'",
                &[&d.record_id, &revision],
            )
            .await?;
        if signed.is_none() {
            return Ok(DecideOutcome::UnknownRevision);
        }
        if revision < latest {
            return Ok(DecideOutcome::Superseded {
                latest_revision: rev_col(latest)?,
            });
        }
        tx.execute(
            "INSERT INTO decisions (record_id, revision, device_id, decision, comment,
                 decided_by, decided_at_utc)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &d.record_id,
                &revision,
                &device_id,
                &d.decision.as_str(),
                &d.comment,
                &d.decided_by,
                &now,
            ],
        )
        .await?;
        tx.execute(
            "UPDATE records SET latest_decision = $2 WHERE record_id = $1",
            &[&d.record_id, &d.decision.as_str()],
        )
        .await?;
        append_audit_tx(
            &tx,
            &[AuditEvent::on_record(
                &Actor::Supervisor(d.decided_by.clone()),
                "decision_recorded",
                d.record_id,
                Some(d.revision),
                format!("decision={}", d.decision.as_str()),
            )],
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(DecideOutcome::Recorded(DecisionRecord {
            record_id: d.record_id,
            revision: d.revision,
            decision: d.decision,
            comment: d.comment.clone(),
            decided_by: d.decided_by.clone(),
            decided_at_utc: now,
        }))
    }

    async fn versions_after(
        &self,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<StoredVersion>, StorageError> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM versions v LEFT JOIN devices d ON d.device_id = v.device_id
             WHERE v.seq > $1 ORDER BY v.seq LIMIT $2"
        );
        client
            .query(&sql, &[&after_seq, &i64::from(limit)])
            .await?
            .iter()
            .map(stored_version)
            .collect()
    }

    async fn stats(&self) -> Result<Stats, StorageError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT
                    (SELECT COUNT(*) FROM records),
                    (SELECT COUNT(*) FROM versions),
                    (SELECT COUNT(*) FROM devices),
                    (SELECT COUNT(*) FROM devices WHERE revoked_at_utc IS NOT NULL),
                    (SELECT COUNT(*) FROM records WHERE signed_revision IS NOT NULL),
                    (SELECT COUNT(*) FROM decisions),
                    (SELECT COUNT(*) FROM users),
                    (SELECT COUNT(*) FROM audit)",
                &[],
            )
            .await?;
        let n = |i: usize| -> Result<u64, StorageError> {
            Ok(u64::try_from(row.try_get::<_, i64>(i)?).unwrap_or(0))
        };
        Ok(Stats {
            encounters: n(0)?,
            versions: n(1)?,
            devices: n(2)?,
            revoked_devices: n(3)?,
            completed: n(4)?,
            decisions: n(5)?,
            users: n(6)?,
            audit_entries: n(7)?,
        })
    }

    async fn append_audit(
        &self,
        events: &[AuditEvent],
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(WRITE_LOCK, &[]).await?;
        append_audit_tx(&tx, events, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn audit_entries_after(
        &self,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StorageError> {
        let client = self.client().await?;
        client
            .query(
                "SELECT seq, at_utc, actor, action, record_id, revision, detail, prev_hash, hash
                 FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&after_seq, &i64::from(limit)],
            )
            .await?
            .iter()
            .map(|r| {
                Ok(AuditEntry {
                    seq: r.try_get(0)?,
                    at_utc: r.try_get(1)?,
                    actor: r.try_get(2)?,
                    action: r.try_get(3)?,
                    record_id: r.try_get(4)?,
                    revision: r.try_get(5)?,
                    detail: r.try_get(6)?,
                    prev_hash: r.try_get(7)?,
                    hash: r.try_get(8)?,
                })
            })
            .collect()
    }
}
