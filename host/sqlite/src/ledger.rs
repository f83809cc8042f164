//! The ledger in SQLite: usage per minute, activity type, version and caller, and candidate
//! outcomes per host, for the processes sharing one data directory.

use activity_registry::ledger::{
    LedgerStore, OutcomeRow, OutcomeTotal, UsageGroup, UsageRow, UsageTotal, USAGE_BUCKET_MS,
};
use activity_registry::StoreError;
use rusqlite::params;

use crate::{sql, SqliteRegistryStore};

/// Creates the ledger's tables (called when the registry index opens).
pub(crate) fn schema(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS usage (
            bucket_ms         INTEGER NOT NULL,
            activity          TEXT    NOT NULL,
            version           TEXT    NOT NULL,
            caller            TEXT    NOT NULL,
            calls             INTEGER NOT NULL,
            failures          INTEGER NOT NULL,
            wall_us           INTEGER NOT NULL,
            cpu_us            INTEGER NOT NULL,
            peak_memory_bytes INTEGER NOT NULL,
            fuel              INTEGER NOT NULL,
            egress_requests   INTEGER NOT NULL,
            egress_bytes      INTEGER NOT NULL,
            PRIMARY KEY (bucket_ms, activity, version, caller)
        );
        CREATE TABLE IF NOT EXISTS candidate_outcomes (
            activity  TEXT    NOT NULL,
            seq       INTEGER NOT NULL,
            host_id   TEXT    NOT NULL,
            bucket_ms INTEGER NOT NULL,
            calls     INTEGER NOT NULL,
            failures  INTEGER NOT NULL,
            PRIMARY KEY (activity, seq, host_id, bucket_ms)
        );",
    )
}

/// Integers beyond SQLite's range are stored as its largest.
fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl LedgerStore for SqliteRegistryStore {
    fn add_usage(&self, rows: &[UsageRow]) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction().map_err(sql)?;
        {
            let mut add = tx
                .prepare_cached(
                    "INSERT INTO usage (bucket_ms, activity, version, caller, calls, failures,
                         wall_us, cpu_us, peak_memory_bytes, fuel, egress_requests, egress_bytes)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                     ON CONFLICT (bucket_ms, activity, version, caller) DO UPDATE SET
                         calls = calls + excluded.calls,
                         failures = failures + excluded.failures,
                         wall_us = wall_us + excluded.wall_us,
                         cpu_us = cpu_us + excluded.cpu_us,
                         peak_memory_bytes = max(peak_memory_bytes, excluded.peak_memory_bytes),
                         fuel = fuel + excluded.fuel,
                         egress_requests = egress_requests + excluded.egress_requests,
                         egress_bytes = egress_bytes + excluded.egress_bytes",
                )
                .map_err(sql)?;
            for r in rows {
                add.execute(params![
                    int(r.bucket_ms),
                    r.activity,
                    r.version,
                    r.caller,
                    int(r.calls),
                    int(r.failures),
                    int(r.wall_us),
                    int(r.cpu_us),
                    int(r.peak_memory_bytes),
                    int(r.fuel),
                    int(r.egress_requests),
                    int(r.egress_bytes),
                ])
                .map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)
    }

    fn usage(
        &self,
        since_ms: u64,
        group_by: UsageGroup,
        caller: Option<&str>,
    ) -> Result<Vec<UsageTotal>, StoreError> {
        let col = group_by.column();
        let query = format!(
            "SELECT {col}, SUM(calls), SUM(failures), SUM(wall_us), SUM(cpu_us),
                    MAX(peak_memory_bytes), SUM(fuel), SUM(egress_requests), SUM(egress_bytes)
             FROM usage WHERE bucket_ms > ?1 AND (?2 IS NULL OR caller = ?2)
             GROUP BY {col} ORDER BY SUM(cpu_us) DESC, {col}"
        );
        let after = int(since_ms) - USAGE_BUCKET_MS as i64;
        self.conn()?
            .prepare_cached(&query)
            .and_then(|mut q| {
                q.query_map(params![after, caller], |r| {
                    let mut sums = [0u64; 8];
                    for (i, s) in sums.iter_mut().enumerate() {
                        *s = r.get::<_, i64>(i + 1)?.max(0) as u64;
                    }
                    Ok(UsageTotal::from_sums(r.get(0)?, sums))
                })?
                .collect()
            })
            .map_err(sql)
    }

    fn add_outcomes(&self, host_id: &str, rows: &[OutcomeRow]) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction().map_err(sql)?;
        {
            let mut add = tx
                .prepare_cached(
                    "INSERT INTO candidate_outcomes (activity, seq, host_id, bucket_ms, calls, failures)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (activity, seq, host_id, bucket_ms) DO UPDATE SET
                         calls = calls + excluded.calls, failures = failures + excluded.failures",
                )
                .map_err(sql)?;
            for o in rows {
                add.execute(params![
                    o.activity,
                    int(o.seq),
                    host_id,
                    int(o.bucket_ms),
                    int(o.calls),
                    int(o.failures)
                ])
                .map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)
    }

    fn outcomes_elsewhere(
        &self,
        host_id: &str,
        since_ms: u64,
    ) -> Result<Vec<OutcomeTotal>, StoreError> {
        self.conn()?
            .prepare_cached(
                "SELECT activity, seq, SUM(calls), SUM(failures) FROM candidate_outcomes
                 WHERE host_id <> ?1 AND bucket_ms >= ?2 GROUP BY activity, seq",
            )
            .and_then(|mut q| {
                q.query_map(params![host_id, int(since_ms)], |r| {
                    Ok(OutcomeTotal {
                        activity: r.get(0)?,
                        seq: r.get::<_, i64>(1)?.max(0) as u64,
                        calls: r.get::<_, i64>(2)?.max(0) as u64,
                        failures: r.get::<_, i64>(3)?.max(0) as u64,
                    })
                })?
                .collect()
            })
            .map_err(sql)
    }

    fn sweep_ledger(
        &self,
        usage_before_ms: u64,
        outcomes_before_ms: u64,
    ) -> Result<u64, StoreError> {
        let conn = self.conn()?;
        let usage = conn
            .execute(
                "DELETE FROM usage WHERE bucket_ms < ?1",
                params![int(usage_before_ms)],
            )
            .map_err(sql)?;
        let outcomes = conn
            .execute(
                "DELETE FROM candidate_outcomes WHERE bucket_ms < ?1",
                params![int(outcomes_before_ms)],
            )
            .map_err(sql)?;
        Ok((usage + outcomes) as u64)
    }
}
