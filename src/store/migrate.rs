//! Device schema migrations: SQL files under `migrations/device/`, applied in order and
//! recorded in `PRAGMA user_version`. Append-only: a shipped migration never changes.

use rusqlite::Connection;

/// Each migration's SQL, in order; migration N sets `user_version` to N.
pub const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/device/0001_initial.sql"),
    include_str!("../../migrations/device/0002_sync_and_feedback.sql"),
    include_str!("../../migrations/device/0003_keyed_audit.sql"),
    include_str!("../../migrations/device/0004_user_signers.sql"),
    include_str!("../../migrations/device/0005_retention.sql"),
];

/// The schema version this build writes.
pub fn latest_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// The store's current schema version.
pub fn current_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Applies every migration after the current version, up to `target`, each in its own
/// transaction together with its `user_version` bump.
pub fn migrate_to(conn: &mut Connection, target: i64) -> rusqlite::Result<()> {
    let current = current_version(conn)?;
    for (index, sql) in MIGRATIONS.iter().enumerate() {
        let version = index as i64 + 1;
        if version <= current || version > target {
            continue;
        }
        // Immediate: another process opening the same store waits, then sees the new version.
        let tx = rusqlite::Transaction::new(conn, rusqlite::TransactionBehavior::Immediate)?;
        if current_version(&tx)? >= version {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
    }
    Ok(())
}
