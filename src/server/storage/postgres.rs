//! PostgreSQL server storage (`postgres://...`), for production and for several stateless
//! server replicas behind a load balancer.
//!
//! tokio-postgres with a deadpool pool. Replicas share nothing but the database, so the steps
//! whose result depends on commit order (appending to the audit chain, numbering decision
//! cursors, consuming an enrolment code, reading feedback by cursor) run under a
//! transaction-scoped advisory lock keyed by the schema, taken by [`Tx::lock_for_ordering`].
//! It keeps the audit chain linear (each entry chains from the one committed before it) and
//! makes decision cursors commit in order, so a device paging feedback by cursor can never
//! skip one. Dedup still rests on the UNIQUE constraint.
//!
//! A push is a constant number of round trips whatever its size: each batch step is one
//! statement over `unnest` arrays, and the lock is held only for its audit append and commit.
//! Row locks are always taken before the advisory lock (a decision locks its record's row
//! first), so a push and a decision cannot deadlock.
//! The search path (`options=-csearch_path%3D...` in the URL) picks the schema, which is how
//! tests get a fresh schema each.
//!
//! This file holds SQL text and row mapping only; the rules are in [`super::core`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::core::{self, EnrolmentCodeRow, RecordHead, Tx, TxKind};
use super::core::{count_col, decision_col, log_index_col, log_index_value, rev_col, status_col};
use super::*;
use crate::protocol::{DecisionRecord, FeedbackItem, ReviewSummary};

const MIGRATIONS: &[(u32, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("../../../migrations/server/postgres/0001_initial.sql"),
    ),
    (
        2,
        "accounts_and_limits",
        include_str!("../../../migrations/server/postgres/0002_accounts_and_limits.sql"),
    ),
    (
        3,
        "transparency_log",
        include_str!("../../../migrations/server/postgres/0003_transparency_log.sql"),
    ),
    (
        4,
        "user_signers",
        include_str!("../../../migrations/server/postgres/0004_user_signers.sql"),
    ),
    (
        5,
        "device_reports",
        include_str!("../../../migrations/server/postgres/0005_device_reports.sql"),
    ),
    (
        6,
        "recovery",
        include_str!("../../../migrations/server/postgres/0006_recovery.sql"),
    ),
    (
        7,
        "reference_data",
        include_str!("../../../migrations/server/postgres/0007_reference_data.sql"),
    ),
    (
        8,
        "review_destination",
        include_str!("../../../migrations/server/postgres/0008_review_destination.sql"),
    ),
];

/// Serialises ordered steps within one schema (see the module comment).
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

/// A pool error with its causes, so an operator reads "invalid peer certificate:
/// UnknownIssuer" rather than only "error performing TLS handshake".
fn pool_err(e: impl std::error::Error) -> StorageError {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    StorageError::Pool(text)
}

/// One transaction on a pooled connection (a reader runs without `BEGIN`). Dropped without
/// [`PgTx::commit`], the connection is taken out of the pool and closed, which makes the
/// server roll the transaction back: a half-done transaction never goes back to the pool.
struct PgTx {
    client: Option<Object>,
    open: bool,
    locked: bool,
}

impl PgTx {
    fn client(&self) -> Result<&Object, StorageError> {
        self.client
            .as_ref()
            .ok_or_else(|| StorageError::Task("transaction already finished".into()))
    }

    async fn query(
        &self,
        sql: &str,
        args: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StorageError> {
        let client = self.client()?;
        let stmt = client.prepare_cached(sql).await?;
        Ok(client.query(&stmt, args).await?)
    }

    async fn query_opt(
        &self,
        sql: &str,
        args: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StorageError> {
        Ok(self.query(sql, args).await?.into_iter().next())
    }

    async fn execute(&self, sql: &str, args: &[&(dyn ToSql + Sync)]) -> Result<u64, StorageError> {
        let client = self.client()?;
        let stmt = client.prepare_cached(sql).await?;
        Ok(client.execute(&stmt, args).await?)
    }

    async fn commit(mut self) -> Result<(), StorageError> {
        if self.open {
            self.client()?.batch_execute("COMMIT").await?;
            self.open = false;
        }
        Ok(())
    }
}

impl Drop for PgTx {
    fn drop(&mut self) {
        if self.open
            && let Some(client) = self.client.take()
        {
            drop(Object::take(client));
        }
    }
}

impl PostgresStorage {
    /// Connects a pool to `url` and applies migrations (under a session advisory lock, so two
    /// replicas starting together do not race).
    ///
    /// TLS follows the URL's `sslmode` and `sslrootcert` as libpq does; without `sslmode`, a
    /// database on another host is reached only over TLS with its certificate and name checked
    /// (`verify-full`), and one on this machine without TLS (see [`super::pg_tls`]).
    pub async fn open(url: &str) -> Result<Self, StorageError> {
        let request = super::pg_tls::split_url(url)?;
        let mut pg_config: tokio_postgres::Config = request.url.parse()?;
        let mode = request
            .mode
            .unwrap_or_else(|| super::pg_tls::default_mode(&pg_config));
        pg_config.ssl_mode(super::pg_tls::negotiation(mode));
        let tls = tokio_postgres_rustls::MakeRustlsConnect::new(super::pg_tls::client_config(
            mode,
            request.root_cert.as_deref(),
        )?);
        let manager = Manager::from_config(
            pg_config,
            tls,
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

    async fn begin(&self, kind: TxKind) -> Result<PgTx, StorageError> {
        let client = self.pool.get().await.map_err(pool_err)?;
        let open = kind == TxKind::Write;
        if open {
            client.batch_execute("BEGIN").await?;
        }
        Ok(PgTx {
            client: Some(client),
            open,
            locked: false,
        })
    }

    async fn migrate(&self) -> Result<(), StorageError> {
        const LOCK: &str =
            "SELECT pg_advisory_lock(hashtext(coalesce(current_schema(), '') || '/migrate'))";
        const UNLOCK: &str =
            "SELECT pg_advisory_unlock(hashtext(coalesce(current_schema(), '') || '/migrate'))";
        let session = self.begin(TxKind::Read).await?;
        session.execute(LOCK, &[]).await?;
        let result = async {
            session
                .client()?
                .batch_execute(
                    "CREATE TABLE IF NOT EXISTS server_migrations (
                         version INTEGER PRIMARY KEY,
                         name TEXT NOT NULL,
                         applied_at_utc TIMESTAMPTZ NOT NULL
                     )",
                )
                .await?;
            for &migration in MIGRATIONS {
                let mut tx = self.begin(TxKind::Write).await?;
                core::migrate_one(&mut tx, migration, Utc::now()).await?;
                tx.commit().await?;
            }
            let mut tx = self.begin(TxKind::Write).await?;
            core::backfill_log(&mut tx).await?;
            tx.commit().await?;
            Ok::<(), StorageError>(())
        }
        .await;
        session.execute(UNLOCK, &[]).await?;
        result
    }
}

/// Runs one core operation in a transaction and commits it if it returned `Ok`.
macro_rules! in_tx {
    ($storage:expr, $kind:expr, |$tx:ident| $op:expr) => {{
        let mut $tx = $storage.begin($kind).await?;
        let out = $op.await?;
        $tx.commit().await?;
        Ok(out)
    }};
}

/// Record ids and revisions as two parallel arrays, for `unnest($1::uuid[], $2::bigint[])`.
fn unzip_revisions(pairs: &[(Uuid, Revision)]) -> (Vec<Uuid>, Vec<i64>) {
    pairs.iter().map(|&(id, r)| (id, r.to_i64())).unzip()
}

fn signer_row(r: &Row) -> Result<SignerRow, StorageError> {
    Ok(SignerRow {
        device_id: r.try_get(0)?,
        identity: crate::crypto::SignerIdentity {
            user_id: r.try_get(1)?,
            tablet_id: r.try_get(2)?,
            user_name: r.try_get(3)?,
            public_key: r.try_get(4)?,
        },
        proof: r.try_get(5)?,
        device_endorsement: r.try_get(6)?,
        leaf_idx: log_index_col(r.try_get(7)?)?,
        registered_at_utc: r.try_get(8)?,
    })
}

fn stored_version(r: &Row) -> Result<StoredVersion, StorageError> {
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
        signer_user_id: r.try_get(11)?,
        signer: SignerKey::from_join(r.try_get(12)?, r.try_get(13)?, r.try_get(14)?),
    })
}

const REVIEW_WHERE: &str = "r.signed_revision IS NOT NULL
     AND ($1::timestamptz IS NULL OR r.signed_saved_at_utc >= $1)
     AND ($2::timestamptz IS NULL OR r.signed_saved_at_utc < $2)
     AND ($3::integer IS NULL OR r.latest_news2 >= $3)
     AND ($4::text IS NULL OR r.search_text LIKE $4 ESCAPE '\\')
     AND ($5::text IS NULL OR r.destination_ods = $5)";

impl Tx for PgTx {
    async fn lock_for_ordering(&mut self) -> Result<(), StorageError> {
        if !self.locked {
            self.execute(WRITE_LOCK, &[]).await?;
            self.locked = true;
        }
        Ok(())
    }

    async fn migration_applied(&mut self, version: u32) -> Result<bool, StorageError> {
        let v = i32::try_from(version).unwrap_or(i32::MAX);
        let sql = "SELECT 1 FROM server_migrations WHERE version = $1";
        Ok(self.query_opt(sql, &[&v]).await?.is_some())
    }

    async fn apply_migration(
        &mut self,
        version: u32,
        name: &str,
        sql: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let v = i32::try_from(version).unwrap_or(i32::MAX);
        self.client()?.batch_execute(sql).await?;
        self.execute(
            "INSERT INTO server_migrations (version, name, applied_at_utc) VALUES ($1, $2, $3)",
            &[&v, &name, &now],
        )
        .await?;
        Ok(())
    }

    async fn insert_enrolment_code(
        &mut self,
        code_hash: &str,
        device_name: &str,
        now: DateTime<Utc>,
        expires_at_utc: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        self.execute(
            "INSERT INTO enrolment_codes (code_hash, device_name, created_at_utc, expires_at_utc)
             VALUES ($1, $2, $3, $4)",
            &[&code_hash, &device_name, &now, &expires_at_utc],
        )
        .await?;
        Ok(())
    }

    async fn enrolment_code(
        &mut self,
        code_hash: &str,
    ) -> Result<Option<EnrolmentCodeRow>, StorageError> {
        let sql = "SELECT expires_at_utc, used_at_utc, device_name FROM enrolment_codes
                   WHERE code_hash = $1 FOR UPDATE";
        let Some(r) = self.query_opt(sql, &[&code_hash]).await? else {
            return Ok(None);
        };
        Ok(Some(EnrolmentCodeRow {
            device_name: r.try_get(2)?,
            expires_at_utc: r.try_get(0)?,
            used: r.try_get::<_, Option<DateTime<Utc>>>(1)?.is_some(),
        }))
    }

    async fn claim_enrolment_code(
        &mut self,
        code_hash: &str,
        device_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        let n = self
            .execute(
                "UPDATE enrolment_codes SET used_at_utc = $2, device_id = $3
                 WHERE code_hash = $1 AND used_at_utc IS NULL",
                &[&code_hash, &now, &device_id],
            )
            .await?;
        Ok(n == 1)
    }

    async fn insert_device(
        &mut self,
        d: &NewDevice,
        device_name: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        self.execute(
            "INSERT INTO devices (device_id, name, public_key, token_hash, enrolled_at_utc)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &d.device_id,
                &device_name,
                &d.public_key_b64,
                &d.token_hash,
                &now,
            ],
        )
        .await?;
        Ok(())
    }

    async fn device_by_token_hash(
        &mut self,
        token_hash: &str,
    ) -> Result<Option<DeviceIdentity>, StorageError> {
        let sql = "SELECT device_id, name, public_key, revoked_at_utc, last_seen_utc FROM devices
                   WHERE token_hash = $1";
        let Some(r) = self.query_opt(sql, &[&token_hash]).await? else {
            return Ok(None);
        };
        Ok(Some(DeviceIdentity {
            device_id: r.try_get(0)?,
            device_name: r.try_get(1)?,
            public_key_b64: r.try_get(2)?,
            revoked: r.try_get::<_, Option<DateTime<Utc>>>(3)?.is_some(),
            last_seen_utc: r.try_get(4)?,
        }))
    }

    async fn active_device_has_key(&mut self, public_key_b64: &str) -> Result<bool, StorageError> {
        let sql = "SELECT 1 FROM devices WHERE public_key = $1 AND revoked_at_utc IS NULL";
        Ok(self.query_opt(sql, &[&public_key_b64]).await?.is_some())
    }

    async fn touch_device(
        &mut self,
        device_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let sql = "UPDATE devices SET last_seen_utc = $2 WHERE device_id = $1";
        self.execute(sql, &[&device_id, &now]).await?;
        Ok(())
    }

    async fn list_devices(&mut self) -> Result<Vec<DeviceSummary>, StorageError> {
        let sql =
            "SELECT device_id, name, enrolled_at_utc, last_seen_utc, revoked_at_utc, public_key,
                    pending, oldest_pending_utc, held_versions, app_version, verified_tree_size,
                    reported_at_utc, retiring_at_utc, retired_at_utc
                   FROM devices ORDER BY enrolled_at_utc, device_id";
        let count = |v: Option<i64>| v.and_then(|n| u64::try_from(n).ok());
        self.query(sql, &[])
            .await?
            .iter()
            .map(|r| {
                let revoked_at_utc: Option<DateTime<Utc>> = r.try_get(4)?;
                Ok(DeviceSummary {
                    device_id: r.try_get(0)?,
                    name: r.try_get(1)?,
                    public_key: r.try_get(5)?,
                    enrolled_at_utc: r.try_get(2)?,
                    last_seen_utc: r.try_get(3)?,
                    revoked: revoked_at_utc.is_some(),
                    revoked_at_utc,
                    pending: count(r.try_get(6)?),
                    oldest_pending_utc: r.try_get(7)?,
                    held_versions: count(r.try_get(8)?),
                    app_version: r.try_get(9)?,
                    verified_tree_size: count(r.try_get(10)?),
                    reported_at_utc: r.try_get(11)?,
                    retiring_at_utc: r.try_get(12)?,
                    retired_at_utc: r.try_get(13)?,
                })
            })
            .collect()
    }

    async fn record_device_report(
        &mut self,
        device_id: Uuid,
        report: &crate::protocol::DeviceReport,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let signed = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let (pending, held) = (signed(report.pending), signed(report.held_versions));
        let verified = report.verified_tree_size.map(signed);
        self.execute(
            "UPDATE devices SET pending = $2, oldest_pending_utc = $3, held_versions = $4,
                    app_version = $5, verified_tree_size = $6, reported_at_utc = $7,
                    last_seen_utc = $7
             WHERE device_id = $1",
            &[
                &device_id,
                &pending,
                &report.oldest_pending_utc,
                &held,
                &report.app_version,
                &verified,
                &now,
            ],
        )
        .await?;
        Ok(())
    }

    async fn device_lifecycle(
        &mut self,
        device_id: Uuid,
    ) -> Result<Option<core::DeviceLifecycle>, StorageError> {
        let row = self
            .query_opt(
                "SELECT retiring_at_utc IS NOT NULL, retired_at_utc IS NOT NULL,
                        revoked_at_utc IS NOT NULL
                 FROM devices WHERE device_id = $1",
                &[&device_id],
            )
            .await?;
        row.map(|r| {
            Ok(core::DeviceLifecycle {
                retiring: r.try_get(0)?,
                retired: r.try_get(1)?,
                revoked: r.try_get(2)?,
            })
        })
        .transpose()
    }

    async fn mark_device_retiring(
        &mut self,
        device_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        self.execute(
            "UPDATE devices SET retiring_at_utc = coalesce(retiring_at_utc, $2) WHERE device_id = $1",
            &[&device_id, &now],
        )
        .await?;
        Ok(())
    }

    async fn mark_device_retired(
        &mut self,
        device_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        self.execute(
            "UPDATE devices SET retired_at_utc = coalesce(retired_at_utc, $2),
                    revoked_at_utc = coalesce(revoked_at_utc, $2)
             WHERE device_id = $1",
            &[&device_id, &now],
        )
        .await?;
        Ok(())
    }

    async fn set_device_token(
        &mut self,
        device_id: Uuid,
        token_hash: &str,
    ) -> Result<(), StorageError> {
        self.execute(
            "UPDATE devices SET token_hash = $2 WHERE device_id = $1",
            &[&device_id, &token_hash],
        )
        .await?;
        Ok(())
    }

    async fn insert_recovery(&mut self, record: &RecoveryRecord) -> Result<(), StorageError> {
        self.execute(
            "INSERT INTO recovery (id, expected_checkpoint, recovered_at_utc) VALUES (1, $1, $2)",
            &[&record.expected_checkpoint, &record.recovered_at_utc],
        )
        .await?;
        // A few round trips for a log of any size.
        for (n, chunk) in record.leaves.chunks(5000).enumerate() {
            let first = n * 5000;
            let idx: Vec<i64> = (first..first + chunk.len())
                .map(|i| i64::try_from(i).unwrap_or(i64::MAX))
                .collect();
            let data: Vec<&str> = chunk.iter().map(String::as_str).collect();
            self.execute(
                "INSERT INTO recovery_leaves (leaf_index, data)
                 SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[])",
                &[&idx, &data],
            )
            .await?;
        }
        Ok(())
    }

    async fn recovery(&mut self) -> Result<Option<RecoveryRecord>, StorageError> {
        let Some(head) = self
            .query_opt(
                "SELECT expected_checkpoint, recovered_at_utc FROM recovery WHERE id = 1",
                &[],
            )
            .await?
        else {
            return Ok(None);
        };
        let leaves = self
            .query("SELECT data FROM recovery_leaves ORDER BY leaf_index", &[])
            .await?
            .iter()
            .map(|r| Ok(r.try_get(0)?))
            .collect::<Result<Vec<String>, StorageError>>()?;
        Ok(Some(RecoveryRecord {
            expected_checkpoint: head.try_get(0)?,
            leaves,
            recovered_at_utc: head.try_get(1)?,
        }))
    }

    async fn mark_device_revoked(
        &mut self,
        device_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        let n = self
            .execute(
                "UPDATE devices SET revoked_at_utc = COALESCE(revoked_at_utc, $2)
                 WHERE device_id = $1",
                &[&device_id, &now],
            )
            .await?;
        Ok(n == 1)
    }

    async fn insert_user(
        &mut self,
        username: &str,
        role: Role,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        let n = self
            .execute(
                "INSERT INTO users (username, role, password_hash, created_at_utc)
                 VALUES ($1, $2, $3, $4) ON CONFLICT (username) DO NOTHING",
                &[&username, &role.as_str(), &password_hash, &now],
            )
            .await?;
        Ok(n == 1)
    }

    async fn user_by_name(&mut self, username: &str) -> Result<Option<UserRecord>, StorageError> {
        let sql = "SELECT username, role, password_hash, disabled_at_utc FROM users
                   WHERE username = $1";
        let Some(r) = self.query_opt(sql, &[&username]).await? else {
            return Ok(None);
        };
        Ok(Some(UserRecord {
            username: r.try_get(0)?,
            role: Role::parse(r.try_get(1)?),
            password_hash: r.try_get(2)?,
            disabled: r.try_get::<_, Option<DateTime<Utc>>>(3)?.is_some(),
        }))
    }

    async fn set_user_disabled(
        &mut self,
        username: &str,
        disabled_at_utc: Option<DateTime<Utc>>,
    ) -> Result<bool, StorageError> {
        let sql = "UPDATE users SET disabled_at_utc = $2 WHERE username = $1";
        Ok(self.execute(sql, &[&username, &disabled_at_utc]).await? == 1)
    }

    async fn set_user_password(
        &mut self,
        username: &str,
        password_hash: &str,
    ) -> Result<bool, StorageError> {
        let sql = "UPDATE users SET password_hash = $2 WHERE username = $1";
        Ok(self.execute(sql, &[&username, &password_hash]).await? == 1)
    }

    async fn list_users(&mut self, now: DateTime<Utc>) -> Result<Vec<UserSummary>, StorageError> {
        let sql = "SELECT u.username, u.role, u.created_at_utc, u.disabled_at_utc,
                          (SELECT COUNT(*) FROM sessions s
                            WHERE s.username = u.username AND s.expires_at_utc > $1)
                   FROM users u ORDER BY u.username";
        self.query(sql, &[&now])
            .await?
            .iter()
            .map(|r| {
                let disabled_at_utc: Option<DateTime<Utc>> = r.try_get(3)?;
                Ok(UserSummary {
                    username: r.try_get(0)?,
                    role: r.try_get(1)?,
                    created_at_utc: r.try_get(2)?,
                    disabled: disabled_at_utc.is_some(),
                    disabled_at_utc,
                    live_sessions: u64::try_from(r.try_get::<_, i64>(4)?).unwrap_or(0),
                })
            })
            .collect()
    }

    async fn delete_session(&mut self, token_hash: &str) -> Result<u64, StorageError> {
        let sql = "DELETE FROM sessions WHERE token_hash = $1";
        self.execute(sql, &[&token_hash]).await
    }

    async fn delete_user_sessions(&mut self, username: &str) -> Result<u64, StorageError> {
        let sql = "DELETE FROM sessions WHERE username = $1";
        self.execute(sql, &[&username]).await
    }

    async fn touch_session(
        &mut self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let sql = "UPDATE sessions SET last_used_at_utc = $2 WHERE token_hash = $1";
        self.execute(sql, &[&token_hash, &now]).await?;
        Ok(())
    }

    async fn login_failures(
        &mut self,
        username: &str,
        client: &str,
    ) -> Result<Option<LoginFailures>, StorageError> {
        let sql = "SELECT failures, last_failure_at_utc FROM login_failures
                   WHERE username = $1 AND client = $2";
        let Some(r) = self.query_opt(sql, &[&username, &client]).await? else {
            return Ok(None);
        };
        Ok(Some(LoginFailures {
            failures: u32::try_from(r.try_get::<_, i32>(0)?).unwrap_or(0),
            last_failure_at_utc: r.try_get(1)?,
        }))
    }

    async fn increment_login_failures(
        &mut self,
        username: &str,
        client: &str,
        now: DateTime<Utc>,
    ) -> Result<i64, StorageError> {
        let sql = "INSERT INTO login_failures (username, client, failures, last_failure_at_utc)
                   VALUES ($1, $2, 1, $3)
                   ON CONFLICT (username, client) DO UPDATE
                       SET failures = login_failures.failures + 1,
                           last_failure_at_utc = EXCLUDED.last_failure_at_utc
                   RETURNING failures";
        let row = self.query_opt(sql, &[&username, &client, &now]).await?;
        let row = row.ok_or_else(|| StorageError::Corrupt("login failure count".into()))?;
        Ok(i64::from(row.try_get::<_, i32>(0)?))
    }

    async fn clear_login_failures(
        &mut self,
        username: &str,
        client: Option<&str>,
    ) -> Result<(), StorageError> {
        match client {
            Some(c) => {
                let sql = "DELETE FROM login_failures WHERE username = $1 AND client = $2";
                self.execute(sql, &[&username, &c]).await?
            }
            None => {
                let sql = "DELETE FROM login_failures WHERE username = $1";
                self.execute(sql, &[&username]).await?
            }
        };
        Ok(())
    }

    async fn delete_expired_sessions(&mut self, now: DateTime<Utc>) -> Result<(), StorageError> {
        let sql = "DELETE FROM sessions WHERE expires_at_utc <= $1";
        self.execute(sql, &[&now]).await?;
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
        self.execute(
            "INSERT INTO sessions (token_hash, username, role, created_at_utc, expires_at_utc)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &token_hash,
                &user.username,
                &role.as_str(),
                &now,
                &expires_at_utc,
            ],
        )
        .await?;
        Ok(())
    }

    async fn session_by_token_hash(
        &mut self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionIdentity>, StorageError> {
        let sql = "SELECT username, role, COALESCE(last_used_at_utc, created_at_utc) FROM sessions
                   WHERE token_hash = $1 AND expires_at_utc > $2";
        let Some(r) = self.query_opt(sql, &[&token_hash, &now]).await? else {
            return Ok(None);
        };
        Ok(Some(SessionIdentity {
            username: r.try_get(0)?,
            role: Role::parse(r.try_get(1)?),
            last_used_at_utc: r.try_get(2)?,
        }))
    }

    async fn claim_records(
        &mut self,
        device_id: Uuid,
        new: &[(Uuid, Revision)],
    ) -> Result<(), StorageError> {
        let (ids, revisions) = unzip_revisions(new);
        self.execute(
            "INSERT INTO records (record_id, device_id, latest_revision)
             SELECT id, $1, rev FROM unnest($2::uuid[], $3::bigint[]) AS t(id, rev)
             ON CONFLICT (record_id) DO NOTHING",
            &[&device_id, &ids, &revisions],
        )
        .await?;
        Ok(())
    }

    async fn record_heads(&mut self, ids: &[Uuid]) -> Result<Vec<RecordHead>, StorageError> {
        let sql = "SELECT record_id, device_id, latest_revision FROM records
                   WHERE record_id = ANY($1::uuid[])";
        let ids = ids.to_vec();
        self.query(sql, &[&ids])
            .await?
            .iter()
            .map(|r| {
                Ok(RecordHead {
                    record_id: r.try_get(0)?,
                    device_id: r.try_get(1)?,
                    latest_revision: rev_col(r.try_get(2)?)?,
                })
            })
            .collect()
    }

    async fn version_hashes(
        &mut self,
        keys: &[(Uuid, Revision)],
    ) -> Result<Vec<((Uuid, Revision), String)>, StorageError> {
        let (ids, revisions) = unzip_revisions(keys);
        let sql = "SELECT v.record_id, v.revision, v.content_sha256
                   FROM versions v JOIN unnest($1::uuid[], $2::bigint[]) AS k(id, rev)
                     ON v.record_id = k.id AND v.revision = k.rev";
        self.query(sql, &[&ids, &revisions])
            .await?
            .iter()
            .map(|r| Ok(((r.try_get(0)?, rev_col(r.try_get(1)?)?), r.try_get(2)?)))
            .collect()
    }

    async fn insert_versions(
        &mut self,
        device_id: Uuid,
        versions: &[&NewVersion],
        received_at_utc: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let ids: Vec<Uuid> = versions.iter().map(|v| v.record_id).collect();
        let revisions: Vec<i64> = versions.iter().map(|v| v.revision.to_i64()).collect();
        let statuses: Vec<&str> = versions.iter().map(|v| v.status.as_str()).collect();
        let documents: Vec<&str> = versions
            .iter()
            .map(|v| v.document_canonical.as_str())
            .collect();
        let hashes: Vec<&str> = versions.iter().map(|v| v.content_sha256.as_str()).collect();
        let signatures: Vec<Option<&str>> =
            versions.iter().map(|v| v.signature.as_deref()).collect();
        let saved: Vec<DateTime<Utc>> = versions.iter().map(|v| v.saved_at_utc).collect();
        let signers: Vec<Option<Uuid>> = versions.iter().map(|v| v.signer_user_id).collect();
        self.execute(
            "INSERT INTO versions (record_id, revision, status, document, content_sha256,
                 signature, device_id, saved_at_utc, received_at_utc, signer_user_id)
             SELECT id, rev, st, doc, sha, sig, $8, saved, $9, signer
             FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::text[],
                         $6::text[], $7::timestamptz[], $10::uuid[])
                  WITH ORDINALITY AS t(id, rev, st, doc, sha, sig, saved, signer, n)
             ORDER BY n",
            &[
                &ids,
                &revisions,
                &statuses,
                &documents,
                &hashes,
                &signatures,
                &saved,
                &device_id,
                &received_at_utc,
                &signers,
            ],
        )
        .await?;
        Ok(())
    }

    async fn raise_latest_revisions(
        &mut self,
        heads: &[(Uuid, Revision)],
    ) -> Result<(), StorageError> {
        let (ids, revisions) = unzip_revisions(heads);
        self.execute(
            "UPDATE records r SET latest_revision = GREATEST(r.latest_revision, u.rev)
             FROM unnest($1::uuid[], $2::bigint[]) AS u(id, rev) WHERE r.record_id = u.id",
            &[&ids, &revisions],
        )
        .await?;
        Ok(())
    }

    async fn set_signed_heads(&mut self, versions: &[&NewVersion]) -> Result<(), StorageError> {
        let ids: Vec<Uuid> = versions.iter().map(|v| v.record_id).collect();
        let revisions: Vec<i64> = versions.iter().map(|v| v.revision.to_i64()).collect();
        let statuses: Vec<&str> = versions.iter().map(|v| v.status.as_str()).collect();
        let saved: Vec<DateTime<Utc>> = versions.iter().map(|v| v.saved_at_utc).collect();
        let incidents: Vec<&str> = versions
            .iter()
            .map(|v| v.incident_number.as_str())
            .collect();
        let names: Vec<&str> = versions.iter().map(|v| v.patient_name.as_str()).collect();
        let search: Vec<String> = versions.iter().map(|v| v.search_text()).collect();
        let news2: Vec<Option<i32>> = versions
            .iter()
            .map(|v| v.latest_news2.map(i32::from))
            .collect();
        let dest_ods: Vec<Option<&str>> = versions
            .iter()
            .map(|v| v.destination.as_ref().map(|d| d.0.as_str()))
            .collect();
        let dest_names: Vec<Option<&str>> = versions
            .iter()
            .map(|v| v.destination.as_ref().map(|d| d.1.as_str()))
            .collect();
        self.execute(
            "UPDATE records r SET signed_revision = u.rev, signed_status = u.st,
                 signed_saved_at_utc = u.saved, incident_number = u.inc, patient_name = u.name,
                 search_text = u.search, latest_news2 = u.news2,
                 destination_ods = u.dest_ods, destination_name = u.dest_name,
                 latest_decision = NULL
             FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::timestamptz[], $5::text[],
                         $6::text[], $7::text[], $8::integer[], $9::text[], $10::text[])
                  AS u(id, rev, st, saved, inc, name, search, news2, dest_ods, dest_name)
             WHERE r.record_id = u.id AND (r.signed_revision IS NULL OR r.signed_revision < u.rev)",
            &[
                &ids,
                &revisions,
                &statuses,
                &saved,
                &incidents,
                &names,
                &search,
                &news2,
                &dest_ods,
                &dest_names,
            ],
        )
        .await?;
        Ok(())
    }

    async fn feedback_after(
        &mut self,
        device_id: Uuid,
        since_cursor: i64,
        limit: u32,
    ) -> Result<Vec<FeedbackItem>, StorageError> {
        let sql =
            "SELECT cursor, record_id, revision, decision, comment, decided_by, decided_at_utc
                   FROM decisions WHERE device_id = $1 AND cursor > $2
                   ORDER BY cursor LIMIT $3";
        self.query(sql, &[&device_id, &since_cursor, &i64::from(limit)])
            .await?
            .iter()
            .map(|r| {
                Ok(FeedbackItem {
                    cursor: r.try_get(0)?,
                    record_id: r.try_get(1)?,
                    revision: rev_col(r.try_get(2)?)?,
                    decision: decision_col(r.try_get(3)?)?,
                    comment: r.try_get(4)?,
                    decided_by: r.try_get(5)?,
                    decided_at_utc: r.try_get(6)?,
                })
            })
            .collect()
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
               AND ($6::text IS NULL OR COALESCE(r.latest_decision, 'pending') = $6)
             ORDER BY r.signed_saved_at_utc DESC, r.record_id DESC
             LIMIT $7 OFFSET $8"
        );
        let news2 = filter.min_news2.map(i32::from);
        let offset = i64::try_from(filter.offset).unwrap_or(i64::MAX);
        let args: [&(dyn ToSql + Sync); 8] = [
            &filter.from_utc,
            &filter.to_utc,
            &news2,
            &filter.like_pattern(),
            &filter.destination,
            &filter.decision_text(),
            &i64::from(filter.limit),
            &offset,
        ];
        self.query(&sql, &args)
            .await?
            .iter()
            .map(|r| {
                Ok(ReviewSummary {
                    record_id: r.try_get(0)?,
                    revision: rev_col(r.try_get(1)?)?,
                    status: status_col(r.try_get(2)?)?,
                    incident_number: r.try_get::<_, Option<String>>(3)?.unwrap_or_default(),
                    patient_name: r.try_get::<_, Option<String>>(4)?.unwrap_or_default(),
                    latest_news2: r
                        .try_get::<_, Option<i32>>(5)?
                        .and_then(|n| u8::try_from(n).ok()),
                    saved_at_utc: r.try_get(6)?,
                    device_name: r.try_get(7)?,
                    decision: r
                        .try_get::<_, Option<&str>>(8)?
                        .map(decision_col)
                        .transpose()?,
                })
            })
            .collect()
    }

    async fn review_counts(
        &mut self,
        filter: &ReviewFilter,
    ) -> Result<Vec<(String, i64)>, StorageError> {
        let sql = format!(
            "SELECT COALESCE(r.latest_decision, 'pending'), COUNT(*) FROM records r
             WHERE {REVIEW_WHERE} GROUP BY 1"
        );
        let news2 = filter.min_news2.map(i32::from);
        let args: [&(dyn ToSql + Sync); 5] = [
            &filter.from_utc,
            &filter.to_utc,
            &news2,
            &filter.like_pattern(),
            &filter.destination,
        ];
        self.query(&sql, &args)
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    async fn review_destinations(
        &mut self,
    ) -> Result<Vec<crate::protocol::DestinationChoice>, StorageError> {
        let sql = "SELECT destination_ods, MAX(destination_name) FROM records
                   WHERE signed_revision IS NOT NULL AND destination_ods IS NOT NULL
                   GROUP BY destination_ods ORDER BY 2, 1";
        self.query(sql, &[])
            .await?
            .iter()
            .map(|r| {
                Ok(crate::protocol::DestinationChoice {
                    ods_code: r.try_get(0)?,
                    name: r.try_get::<_, Option<String>>(1)?.unwrap_or_default(),
                })
            })
            .collect()
    }

    async fn signed_record_owner(
        &mut self,
        record_id: Uuid,
    ) -> Result<Option<(Uuid, String)>, StorageError> {
        let sql =
            "SELECT r.device_id, d.name FROM records r JOIN devices d ON d.device_id = r.device_id
                   WHERE r.record_id = $1 AND r.signed_revision IS NOT NULL";
        let Some(r) = self.query_opt(sql, &[&record_id]).await? else {
            return Ok(None);
        };
        Ok(Some((r.try_get(0)?, r.try_get(1)?)))
    }

    async fn signed_versions(
        &mut self,
        record_id: Uuid,
    ) -> Result<Vec<StoredVersion>, StorageError> {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM versions v JOIN devices d ON d.device_id = v.device_id {SIGNER_JOIN}
             WHERE v.record_id = $1 AND v.status <> 'draft' ORDER BY v.revision"
        );
        let rows = self.query(&sql, &[&record_id]).await?;
        rows.iter().map(stored_version).collect()
    }

    async fn decisions_on(&mut self, record_id: Uuid) -> Result<Vec<DecisionRecord>, StorageError> {
        let sql = "SELECT revision, decision, comment, decided_by, decided_at_utc FROM decisions
                   WHERE record_id = $1 ORDER BY cursor";
        self.query(sql, &[&record_id])
            .await?
            .iter()
            .map(|r| {
                Ok(DecisionRecord {
                    record_id,
                    revision: rev_col(r.try_get(0)?)?,
                    decision: decision_col(r.try_get(1)?)?,
                    comment: r.try_get(2)?,
                    decided_by: r.try_get(3)?,
                    decided_at_utc: r.try_get(4)?,
                })
            })
            .collect()
    }

    async fn decision_head(
        &mut self,
        record_id: Uuid,
    ) -> Result<Option<(Uuid, Option<Revision>)>, StorageError> {
        let sql = "SELECT device_id, signed_revision FROM records WHERE record_id = $1 FOR UPDATE";
        let Some(r) = self.query_opt(sql, &[&record_id]).await? else {
            return Ok(None);
        };
        let signed: Option<i64> = r.try_get(1)?;
        Ok(Some((r.try_get(0)?, signed.map(rev_col).transpose()?)))
    }

    async fn is_signed_version(
        &mut self,
        record_id: Uuid,
        revision: Revision,
    ) -> Result<bool, StorageError> {
        let sql = "SELECT 1 FROM versions WHERE record_id = $1 AND revision = $2
                   AND status <> 'draft'";
        Ok(self
            .query_opt(sql, &[&record_id, &revision.to_i64()])
            .await?
            .is_some())
    }

    async fn insert_decision(
        &mut self,
        d: &NewDecision,
        device_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        self.execute(
            "INSERT INTO decisions (record_id, revision, device_id, decision, comment,
                 decided_by, decided_at_utc)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &d.record_id,
                &d.revision.to_i64(),
                &device_id,
                &d.decision.as_str(),
                &d.comment,
                &d.decided_by,
                &now,
            ],
        )
        .await?;
        self.execute(
            "UPDATE records SET latest_decision = $2 WHERE record_id = $1",
            &[&d.record_id, &d.decision.as_str()],
        )
        .await?;
        Ok(())
    }

    async fn versions_after(
        &mut self,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<StoredVersion>, StorageError> {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM versions v LEFT JOIN devices d ON d.device_id = v.device_id {SIGNER_JOIN}
             WHERE v.seq > $1 ORDER BY v.seq LIMIT $2"
        );
        let rows = self.query(&sql, &[&after_seq, &i64::from(limit)]).await?;
        rows.iter().map(stored_version).collect()
    }

    async fn stats(&mut self) -> Result<Stats, StorageError> {
        let sql = "SELECT
                       (SELECT COUNT(*) FROM records),
                       (SELECT COUNT(*) FROM versions),
                       (SELECT COUNT(*) FROM devices),
                       (SELECT COUNT(*) FROM devices WHERE revoked_at_utc IS NOT NULL),
                       (SELECT COUNT(*) FROM records WHERE signed_revision IS NOT NULL),
                       (SELECT COUNT(*) FROM decisions),
                       (SELECT COUNT(*) FROM users),
                       (SELECT COUNT(*) FROM audit)";
        let row = self.query_opt(sql, &[]).await?;
        let row = row.ok_or_else(|| StorageError::Corrupt("stats".into()))?;
        let n = |i: usize| -> Result<u64, StorageError> { Ok(count_col(row.try_get(i)?)) };
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

    async fn all_decisions(&mut self) -> Result<Vec<DecisionRecord>, StorageError> {
        let sql = "SELECT record_id, revision, decision, comment, decided_by, decided_at_utc
                   FROM decisions ORDER BY cursor";
        self.query(sql, &[])
            .await?
            .iter()
            .map(|r| {
                Ok(DecisionRecord {
                    record_id: r.try_get(0)?,
                    revision: rev_col(r.try_get(1)?)?,
                    decision: decision_col(r.try_get(2)?)?,
                    comment: r.try_get(3)?,
                    decided_by: r.try_get(4)?,
                    decided_at_utc: r.try_get(5)?,
                })
            })
            .collect()
    }

    async fn log_size(&mut self) -> Result<u64, StorageError> {
        let sql = "SELECT COALESCE(MAX(idx) + 1, 0) FROM log_leaves";
        let row = self.query_opt(sql, &[]).await?;
        let n: i64 = match row {
            Some(r) => r.try_get(0)?,
            None => 0,
        };
        log_index_col(n)
    }

    async fn log_hashes(&mut self, indexes: &[u64]) -> Result<Vec<(u64, String)>, StorageError> {
        let wanted: Vec<i64> = indexes
            .iter()
            .map(|&i| log_index_value(i))
            .collect::<Result<_, _>>()?;
        let sql = "SELECT idx, hash FROM log_hashes WHERE idx = ANY($1::bigint[])";
        self.query(sql, &[&wanted])
            .await?
            .iter()
            .map(|r| Ok((log_index_col(r.try_get(0)?)?, r.try_get(1)?)))
            .collect()
    }

    async fn insert_log(
        &mut self,
        leaves: &[LogLeafRow],
        hashes: &[(u64, String)],
    ) -> Result<(), StorageError> {
        let idx: Vec<i64> = leaves
            .iter()
            .map(|l| log_index_value(l.idx))
            .collect::<Result<_, _>>()?;
        let kinds: Vec<&str> = leaves.iter().map(|l| l.kind.as_str()).collect();
        let records: Vec<Option<Uuid>> = leaves.iter().map(|l| l.record_id).collect();
        let revisions: Vec<Option<i64>> = leaves
            .iter()
            .map(|l| l.revision.map(Revision::to_i64))
            .collect();
        let data: Vec<&str> = leaves.iter().map(|l| l.data.as_str()).collect();
        let hash_idx: Vec<i64> = hashes
            .iter()
            .map(|(i, _)| log_index_value(*i))
            .collect::<Result<_, _>>()?;
        let hash_values: Vec<&str> = hashes.iter().map(|(_, h)| h.as_str()).collect();
        // One round trip: this runs while the ordering lock is held.
        self.execute(
            "WITH leaves AS (
                 INSERT INTO log_leaves (idx, kind, record_id, revision, data)
                 SELECT * FROM unnest($1::bigint[], $2::text[], $3::uuid[], $4::bigint[], $5::text[])
             )
             INSERT INTO log_hashes (idx, hash) SELECT * FROM unnest($6::bigint[], $7::text[])",
            &[
                &idx,
                &kinds,
                &records,
                &revisions,
                &data,
                &hash_idx,
                &hash_values,
            ],
        )
        .await?;
        Ok(())
    }

    async fn version_leaf_indexes(
        &mut self,
        keys: &[(Uuid, Revision)],
    ) -> Result<Vec<((Uuid, Revision), u64)>, StorageError> {
        let (ids, revs) = unzip_revisions(keys);
        let sql = "SELECT l.record_id, l.revision, l.idx
                   FROM unnest($1::uuid[], $2::bigint[]) AS k(record_id, revision)
                   JOIN log_leaves l ON l.kind = 'version' AND l.record_id = k.record_id
                                     AND l.revision = k.revision";
        self.query(sql, &[&ids, &revs])
            .await?
            .iter()
            .map(|r| {
                Ok((
                    (r.try_get(0)?, rev_col(r.try_get(1)?)?),
                    log_index_col(r.try_get(2)?)?,
                ))
            })
            .collect()
    }

    async fn device_enrolment_leaf(
        &mut self,
        device_id: Uuid,
    ) -> Result<Option<LogLeafRow>, StorageError> {
        let pattern = format!("%\"device_id\":\"{device_id}\"%");
        let sql = "SELECT idx, kind, data FROM log_leaves
                   WHERE kind = 'device_enrolled' AND data LIKE $1 ORDER BY idx LIMIT 1";
        let Some(r) = self.query_opt(sql, &[&pattern]).await? else {
            return Ok(None);
        };
        Ok(Some(LogLeafRow {
            idx: log_index_col(r.try_get(0)?)?,
            kind: r.try_get(1)?,
            record_id: None,
            revision: None,
            data: r.try_get(2)?,
        }))
    }

    async fn signers(&mut self, device_id: Option<Uuid>) -> Result<Vec<SignerRow>, StorageError> {
        let sql = format!(
            "SELECT {SIGNER_COLUMNS} FROM signers
             WHERE $1::uuid IS NULL OR device_id = $1 ORDER BY leaf_idx"
        );
        self.query(&sql, &[&device_id])
            .await?
            .iter()
            .map(signer_row)
            .collect()
    }

    async fn insert_signer(&mut self, row: &SignerRow) -> Result<(), StorageError> {
        let sql = format!(
            "INSERT INTO signers ({SIGNER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        );
        self.execute(
            &sql,
            &[
                &row.device_id,
                &row.identity.user_id,
                &row.identity.tablet_id,
                &row.identity.user_name,
                &row.identity.public_key,
                &row.proof,
                &row.device_endorsement,
                &log_index_value(row.leaf_idx)?,
                &row.registered_at_utc,
            ],
        )
        .await?;
        Ok(())
    }

    async fn log_leaves(&mut self, start: u64, end: u64) -> Result<Vec<LogLeafRow>, StorageError> {
        let sql = "SELECT idx, kind, record_id, revision, data FROM log_leaves
                   WHERE idx >= $1 AND idx < $2 ORDER BY idx";
        self.query(sql, &[&log_index_value(start)?, &log_index_value(end)?])
            .await?
            .iter()
            .map(|r| {
                Ok(LogLeafRow {
                    idx: log_index_col(r.try_get(0)?)?,
                    kind: r.try_get(1)?,
                    record_id: r.try_get(2)?,
                    revision: r.try_get::<_, Option<i64>>(3)?.map(rev_col).transpose()?,
                    data: r.try_get(4)?,
                })
            })
            .collect()
    }

    async fn insert_checkpoint(
        &mut self,
        size: u64,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        self.execute(
            "INSERT INTO log_checkpoints (size, note, signed_at_utc) VALUES ($1, $2, $3)
             ON CONFLICT (size) DO NOTHING",
            &[&log_index_value(size)?, &note, &now],
        )
        .await?;
        Ok(())
    }

    async fn latest_checkpoint(&mut self) -> Result<Option<(u64, String)>, StorageError> {
        let sql = "SELECT size, note FROM log_checkpoints ORDER BY size DESC LIMIT 1";
        let Some(r) = self.query_opt(sql, &[]).await? else {
            return Ok(None);
        };
        Ok(Some((log_index_col(r.try_get(0)?)?, r.try_get(1)?)))
    }

    async fn insert_key_rotation(
        &mut self,
        statement: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        self.execute(
            "INSERT INTO log_key_rotations (statement, rotated_at_utc) VALUES ($1, $2)",
            &[&statement, &now],
        )
        .await?;
        Ok(())
    }

    async fn key_rotations(&mut self) -> Result<Vec<String>, StorageError> {
        let sql = "SELECT statement FROM log_key_rotations ORDER BY seq";
        self.query(sql, &[])
            .await?
            .iter()
            .map(|r| Ok(r.try_get(0)?))
            .collect()
    }

    async fn update_reference_note(
        &mut self,
        version: u64,
        note: &str,
    ) -> Result<(), StorageError> {
        self.execute(
            "UPDATE reference_versions SET signed_note = $2 WHERE version = $1",
            &[&log_index_value(version)?, &note],
        )
        .await?;
        Ok(())
    }

    async fn insert_reference(&mut self, v: &ReferenceVersion) -> Result<(), StorageError> {
        self.execute(
            "INSERT INTO reference_versions \
             (version, document, document_sha256, signed_note, imported_at_utc) \
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &log_index_value(v.version)?,
                &v.document,
                &v.document_sha256,
                &v.signed_note,
                &v.imported_at_utc,
            ],
        )
        .await?;
        Ok(())
    }

    async fn latest_reference(&mut self) -> Result<Option<ReferenceVersion>, StorageError> {
        let sql = "SELECT version, document, document_sha256, signed_note, imported_at_utc \
                   FROM reference_versions ORDER BY version DESC LIMIT 1";
        let Some(r) = self.query_opt(sql, &[]).await? else {
            return Ok(None);
        };
        Ok(Some(ReferenceVersion {
            version: log_index_col(r.try_get(0)?)?,
            document: r.try_get(1)?,
            document_sha256: r.try_get(2)?,
            signed_note: r.try_get(3)?,
            imported_at_utc: r.try_get(4)?,
        }))
    }

    async fn audit_head(&mut self) -> Result<Option<(i64, String)>, StorageError> {
        let sql = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1";
        let Some(r) = self.query_opt(sql, &[]).await? else {
            return Ok(None);
        };
        Ok(Some((r.try_get(0)?, r.try_get(1)?)))
    }

    async fn insert_audit(&mut self, entries: &[AuditEntry]) -> Result<(), StorageError> {
        let seqs: Vec<i64> = entries.iter().map(|e| e.seq).collect();
        let at: Vec<&str> = entries.iter().map(|e| e.at_utc.as_str()).collect();
        let actors: Vec<&str> = entries.iter().map(|e| e.actor.as_str()).collect();
        let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
        let records: Vec<Option<Uuid>> = entries.iter().map(|e| e.record_id).collect();
        let revisions: Vec<Option<i64>> = entries
            .iter()
            .map(|e| e.revision.map(Revision::to_i64))
            .collect();
        let details: Vec<&str> = entries.iter().map(|e| e.detail.as_str()).collect();
        let prevs: Vec<&str> = entries.iter().map(|e| e.prev_hash.as_str()).collect();
        let hashes: Vec<&str> = entries.iter().map(|e| e.hash.as_str()).collect();
        self.execute(
            "INSERT INTO audit (seq, at_utc, actor, action, record_id, revision, detail, prev_hash, hash)
             SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::uuid[],
                                  $6::bigint[], $7::text[], $8::text[], $9::text[])",
            &[
                &seqs, &at, &actors, &actions, &records, &revisions, &details, &prevs, &hashes,
            ],
        )
        .await?;
        Ok(())
    }

    async fn audit_entries_after(
        &mut self,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StorageError> {
        let sql = "SELECT seq, at_utc, actor, action, record_id, revision, detail, prev_hash, hash
                   FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2";
        self.query(sql, &[&after_seq, &i64::from(limit)])
            .await?
            .iter()
            .map(|r| {
                Ok(AuditEntry {
                    seq: r.try_get(0)?,
                    at_utc: r.try_get(1)?,
                    actor: r.try_get(2)?,
                    action: r.try_get(3)?,
                    record_id: r.try_get(4)?,
                    revision: r.try_get::<_, Option<i64>>(5)?.map(rev_col).transpose()?,
                    detail: r.try_get(6)?,
                    prev_hash: r.try_get(7)?,
                    hash: r.try_get(8)?,
                })
            })
            .collect()
    }
}

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
        in_tx!(self, TxKind::Write, |tx| core::create_enrolment_code(
            &mut tx,
            code_hash,
            device_name,
            now,
            expires_at_utc
        ))
    }

    async fn enroll_device(
        &self,
        d: &NewDevice,
        now: DateTime<Utc>,
    ) -> Result<EnrolOutcome, StorageError> {
        in_tx!(self, TxKind::Write, |tx| core::enroll_device(
            &mut tx, d, now
        ))
    }

    async fn device_by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<DeviceIdentity>, StorageError> {
        in_tx!(self, TxKind::Read, |tx| tx.device_by_token_hash(token_hash))
    }

    async fn revoke_device(
        &self,
        device_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        in_tx!(self, TxKind::Write, |tx| core::revoke_device(
            &mut tx, device_id, now
        ))
    }

    async fn add_user(
        &self,
        username: &str,
        role: Role,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        in_tx!(self, TxKind::Write, |tx| core::add_user(
            &mut tx,
            username,
            role,
            password_hash,
            now
        ))
    }

    async fn user_by_name(&self, username: &str) -> Result<Option<UserRecord>, StorageError> {
        in_tx!(self, TxKind::Read, |tx| tx.user_by_name(username))
    }

    async fn reserve_login_attempt(
        &self,
        username: &str,
        client: &str,
        policy: LockoutPolicy,
        now: DateTime<Utc>,
    ) -> Result<LoginReservation, StorageError> {
        in_tx!(self, TxKind::Write, |tx| core::reserve_login_attempt(
            &mut tx, username, client, policy, now
        ))
    }

    async fn create_session(
        &self,
        token_hash: &str,
        user: &UserRecord,
        client: &str,
        now: DateTime<Utc>,
        expires_at_utc: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        in_tx!(self, TxKind::Write, |tx| core::create_session(
            &mut tx,
            token_hash,
            user,
            client,
            now,
            expires_at_utc
        ))
    }

    async fn touch_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        in_tx!(self, TxKind::Write, |tx| tx.touch_session(token_hash, now))
    }

    async fn end_sessions(
        &self,
        scope: &SessionScope,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<u64, StorageError> {
        in_tx!(self, TxKind::Write, |tx| core::end_sessions(
            &mut tx, scope, actor, now
        ))
    }

    async fn change_user(
        &self,
        username: &str,
        change: &UserChange,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        in_tx!(self, TxKind::Write, |tx| core::change_user(
            &mut tx, username, change, now
        ))
    }

    async fn list_users(&self, now: DateTime<Utc>) -> Result<Vec<UserSummary>, StorageError> {
        in_tx!(self, TxKind::Read, |tx| tx.list_users(now))
    }

    async fn list_devices(&self) -> Result<Vec<DeviceSummary>, StorageError> {
        in_tx!(self, TxKind::Read, |tx| tx.list_devices())
    }

    async fn touch_device(&self, device_id: Uuid, now: DateTime<Utc>) -> Result<(), StorageError> {
        in_tx!(self, TxKind::Write, |tx| tx.touch_device(device_id, now))
    }

    async fn device_report(
        &self,
        device_id: Uuid,
        report: &crate::protocol::DeviceReport,
        now: DateTime<Utc>,
    ) -> Result<crate::protocol::DeviceState, StorageError> {
        in_tx!(self, TxKind::Write, |tx| core::device_report(
            &mut tx, device_id, report, now
        ))
    }

    async fn retire_device(
        &self,
        device_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        in_tx!(self, TxKind::Write, |tx| core::retire_device(
            &mut tx, device_id, now
        ))
    }

    async fn session_by_token_hash(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionIdentity>, StorageError> {
        in_tx!(self, TxKind::Read, |tx| tx
            .session_by_token_hash(token_hash, now))
    }

    async fn push_versions(
        &self,
        device: &DeviceIdentity,
        items: &[NewVersion],
        audit_head: Option<(u64, String)>,
        now: DateTime<Utc>,
    ) -> Result<PushStored, StorageError> {
        in_tx!(self, TxKind::Write, |tx| core::push_versions(
            &mut tx, device, items, audit_head, now
        ))
    }

    async fn log_head(&self) -> Result<LogHead, StorageError> {
        in_tx!(self, TxKind::Read, |tx| core::log_head(&mut tx))
    }

    async fn log_leaves(&self, start: u64, end: u64) -> Result<Vec<LogLeafRow>, StorageError> {
        in_tx!(self, TxKind::Read, |tx| tx.log_leaves(start, end))
    }

    async fn inclusion_proofs(
        &self,
        size: u64,
        indexes: &[u64],
    ) -> Result<Vec<Vec<crate::transparency::LogHash>>, StorageError> {
        in_tx!(self, TxKind::Read, |tx| core::inclusion_proofs(
            &mut tx, size, indexes
        ))
    }

    async fn consistency_proof(
        &self,
        old_size: u64,
        size: u64,
    ) -> Result<Vec<crate::transparency::LogHash>, StorageError> {
        in_tx!(self, TxKind::Read, |tx| core::consistency_proof(
            &mut tx, old_size, size
        ))
    }

    async fn review_proof(
        &self,
        device_id: Uuid,
        versions: &[(Uuid, Revision)],
        signers: &[Uuid],
    ) -> Result<Option<ReviewProofParts>, StorageError> {
        in_tx!(self, TxKind::Read, |tx| core::review_proof(
            &mut tx, device_id, versions, signers
        ))
    }

    async fn backup_to(&self, _out: &std::path::Path) -> Result<(), StorageError> {
        Err(StorageError::NotSupported(
            "a PostgreSQL database is backed up with pg_dump (README, \"Backups\"), not by epr-server backup",
        ))
    }

    async fn device_signers(&self, device_id: Uuid) -> Result<Vec<SignerRow>, StorageError> {
        in_tx!(self, TxKind::Read, |tx| tx.signers(Some(device_id)))
    }

    async fn all_signers(&self) -> Result<Vec<SignerRow>, StorageError> {
        in_tx!(self, TxKind::Read, |tx| tx.signers(None))
    }

    async fn register_signers(
        &self,
        device: &DeviceIdentity,
        signers: &[crate::protocol::SignerRegistration],
        now: DateTime<Utc>,
    ) -> Result<Vec<SignerRow>, StorageError> {
        in_tx!(self, TxKind::Write, |tx| core::register_signers(
            &mut tx, device, signers, now
        ))
    }

    async fn save_checkpoint(
        &self,
        size: u64,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        in_tx!(self, TxKind::Write, |tx| tx
            .insert_checkpoint(size, note, now))
    }

    async fn latest_checkpoint(&self) -> Result<Option<(u64, String)>, StorageError> {
        in_tx!(self, TxKind::Read, |tx| tx.latest_checkpoint())
    }

    async fn add_key_rotation(
        &self,
        statement: &str,
        new_key: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        in_tx!(self, TxKind::Write, |tx| core::add_key_rotation(
            &mut tx, statement, new_key, now
        ))
    }

    async fn key_rotations(&self) -> Result<Vec<String>, StorageError> {
        in_tx!(self, TxKind::Read, |tx| tx.key_rotations())
    }

    async fn add_reference_version(&self, v: &ReferenceVersion) -> Result<bool, StorageError> {
        in_tx!(self, TxKind::Write, |tx| core::add_reference_version(
            &mut tx, v
        ))
    }

    async fn latest_reference(&self) -> Result<Option<ReferenceVersion>, StorageError> {
        in_tx!(self, TxKind::Read, |tx| tx.latest_reference())
    }

    async fn set_reference_note(&self, version: u64, note: &str) -> Result<(), StorageError> {
        in_tx!(self, TxKind::Write, |tx| tx
            .update_reference_note(version, note))
    }

    async fn begin_recovery(
        &self,
        record: &RecoveryRecord,
        first_leaf: &crate::transparency::Leaf,
    ) -> Result<bool, StorageError> {
        in_tx!(self, TxKind::Write, |tx| core::begin_recovery(
            &mut tx, record, first_leaf
        ))
    }

    async fn recovery(&self) -> Result<Option<RecoveryRecord>, StorageError> {
        in_tx!(self, TxKind::Read, |tx| tx.recovery())
    }

    async fn restore_decisions(
        &self,
        device_id: Uuid,
        decisions: &[DecisionRecord],
        now: DateTime<Utc>,
    ) -> Result<Vec<crate::protocol::DecisionRestore>, StorageError> {
        in_tx!(self, TxKind::Write, |tx| core::restore_decisions(
            &mut tx, device_id, decisions, now
        ))
    }

    async fn restore_device(
        &self,
        device: &RestoredDevice,
        now: DateTime<Utc>,
    ) -> Result<RestoreOutcome, StorageError> {
        in_tx!(self, TxKind::Write, |tx| core::restore_device(
            &mut tx, device, now
        ))
    }

    async fn feedback_since(
        &self,
        device: &DeviceIdentity,
        since_cursor: i64,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<FeedbackItem>, StorageError> {
        in_tx!(self, TxKind::Write, |tx| core::feedback_since(
            &mut tx,
            device,
            since_cursor,
            limit,
            now
        ))
    }

    async fn review_list(
        &self,
        filter: &ReviewFilter,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<ReviewPage, StorageError> {
        in_tx!(self, TxKind::Write, |tx| core::review_list(
            &mut tx, filter, actor, now
        ))
    }

    async fn review_detail(
        &self,
        record_id: Uuid,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Option<RecordDetail>, StorageError> {
        in_tx!(self, TxKind::Write, |tx| core::review_detail(
            &mut tx, record_id, actor, now
        ))
    }

    async fn decide(
        &self,
        d: &NewDecision,
        now: DateTime<Utc>,
    ) -> Result<DecideOutcome, StorageError> {
        in_tx!(self, TxKind::Write, |tx| core::decide(&mut tx, d, now))
    }

    async fn versions_after(
        &self,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<StoredVersion>, StorageError> {
        in_tx!(self, TxKind::Read, |tx| tx.versions_after(after_seq, limit))
    }

    async fn stats(&self) -> Result<Stats, StorageError> {
        in_tx!(self, TxKind::Read, |tx| tx.stats())
    }

    async fn append_audit(
        &self,
        events: &[AuditEvent],
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        in_tx!(self, TxKind::Write, |tx| core::append_audit(
            &mut tx, events, now
        ))
    }

    async fn audit_entries_after(
        &self,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StorageError> {
        in_tx!(self, TxKind::Read, |tx| tx
            .audit_entries_after(after_seq, limit))
    }
}
