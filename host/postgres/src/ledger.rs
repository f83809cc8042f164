//! The ledger in PostgreSQL: usage per minute, activity type, version and caller, and
//! candidate outcomes per host, shared by every host of a fleet. Each flush is one
//! statement per table (rows sent as arrays), its rows in key order so hosts writing the
//! same minutes never deadlock.

use activity_registry::ledger::{
    LedgerStore, OutcomeRow, OutcomeTotal, UsageGroup, UsageRow, UsageTotal, USAGE_BUCKET_MS,
};
use activity_registry::StoreError;
use deadpool_postgres::Pool;

use crate::Db;

/// The ledger's tables.
pub struct PostgresLedger {
    db: Db,
}

fn db(e: impl Into<crate::PgError>) -> StoreError {
    StoreError::Database(e.into().to_string())
}

/// Integers beyond PostgreSQL's BIGINT are stored as its largest.
fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl PostgresLedger {
    /// The ledger over `pool` (schema created by [`connect`](crate::connect)).
    pub fn new(pool: Pool) -> Self {
        Self { db: Db::new(pool) }
    }
}

impl LedgerStore for PostgresLedger {
    fn add_usage(&self, rows: &[UsageRow]) -> Result<(), StoreError> {
        let mut rows: Vec<&UsageRow> = rows.iter().collect();
        rows.sort_by(|a, b| {
            (a.bucket_ms, &a.activity, &a.version, &a.caller).cmp(&(
                b.bucket_ms,
                &b.activity,
                &b.version,
                &b.caller,
            ))
        });
        let ints = |f: fn(&UsageRow) -> u64| rows.iter().map(|r| int(f(r))).collect::<Vec<i64>>();
        let texts = |f: fn(&UsageRow) -> &str| rows.iter().map(|r| f(r)).collect::<Vec<&str>>();
        let (bucket, calls, failures, wall, cpu) = (
            ints(|r| r.bucket_ms),
            ints(|r| r.calls),
            ints(|r| r.failures),
            ints(|r| r.wall_us),
            ints(|r| r.cpu_us),
        );
        let (peak, fuel, requests, bytes) = (
            ints(|r| r.peak_memory_bytes),
            ints(|r| r.fuel),
            ints(|r| r.egress_requests),
            ints(|r| r.egress_bytes),
        );
        let (activity, version, caller) = (
            texts(|r| &r.activity),
            texts(|r| &r.version),
            texts(|r| &r.caller),
        );
        self.db.block_on(async {
            self.db
                .client()
                .await
                .map_err(db)?
                .execute(
                    "INSERT INTO registry_usage (bucket_ms, activity, version, caller, calls, failures,
                         wall_us, cpu_us, peak_memory_bytes, fuel, egress_requests, egress_bytes)
                     SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TEXT[],
                         $5::BIGINT[], $6::BIGINT[], $7::BIGINT[], $8::BIGINT[], $9::BIGINT[],
                         $10::BIGINT[], $11::BIGINT[], $12::BIGINT[])
                     ON CONFLICT (bucket_ms, activity, version, caller) DO UPDATE SET
                         calls = registry_usage.calls + excluded.calls,
                         failures = registry_usage.failures + excluded.failures,
                         wall_us = registry_usage.wall_us + excluded.wall_us,
                         cpu_us = registry_usage.cpu_us + excluded.cpu_us,
                         peak_memory_bytes = GREATEST(registry_usage.peak_memory_bytes, excluded.peak_memory_bytes),
                         fuel = registry_usage.fuel + excluded.fuel,
                         egress_requests = registry_usage.egress_requests + excluded.egress_requests,
                         egress_bytes = registry_usage.egress_bytes + excluded.egress_bytes",
                    &[
                        &bucket, &activity, &version, &caller, &calls, &failures, &wall, &cpu,
                        &peak, &fuel, &requests, &bytes,
                    ],
                )
                .await
                .map_err(db)?;
            Ok(())
        })
    }

    fn usage(
        &self,
        since_ms: u64,
        group_by: UsageGroup,
        caller: Option<&str>,
    ) -> Result<Vec<UsageTotal>, StoreError> {
        let col = group_by.column();
        let query = format!(
            "SELECT {col}, SUM(calls)::BIGINT, SUM(failures)::BIGINT, SUM(wall_us)::BIGINT,
                    SUM(cpu_us)::BIGINT, MAX(peak_memory_bytes), SUM(fuel)::BIGINT,
                    SUM(egress_requests)::BIGINT, SUM(egress_bytes)::BIGINT
             FROM registry_usage WHERE bucket_ms > $1 AND ($2::TEXT IS NULL OR caller = $2)
             GROUP BY {col} ORDER BY SUM(cpu_us) DESC, {col}"
        );
        let after = int(since_ms) - USAGE_BUCKET_MS as i64;
        self.db.block_on(async {
            let rows = self
                .db
                .client()
                .await
                .map_err(db)?
                .query(&query, &[&after, &caller])
                .await
                .map_err(db)?;
            Ok(rows
                .iter()
                .map(|r| {
                    let mut sums = [0u64; 8];
                    for (i, s) in sums.iter_mut().enumerate() {
                        *s = r.get::<_, i64>(i + 1).max(0) as u64;
                    }
                    UsageTotal::from_sums(r.get(0), sums)
                })
                .collect())
        })
    }

    fn add_outcomes(&self, host_id: &str, rows: &[OutcomeRow]) -> Result<(), StoreError> {
        let mut rows: Vec<&OutcomeRow> = rows.iter().collect();
        rows.sort_by(|a, b| {
            (&a.activity, a.seq, a.bucket_ms).cmp(&(&b.activity, b.seq, b.bucket_ms))
        });
        let activity: Vec<&str> = rows.iter().map(|o| o.activity.as_str()).collect();
        let seq: Vec<i64> = rows.iter().map(|o| int(o.seq)).collect();
        let bucket: Vec<i64> = rows.iter().map(|o| int(o.bucket_ms)).collect();
        let calls: Vec<i64> = rows.iter().map(|o| int(o.calls)).collect();
        let failures: Vec<i64> = rows.iter().map(|o| int(o.failures)).collect();
        self.db.block_on(async {
            self.db
                .client()
                .await
                .map_err(db)?
                .execute(
                    "INSERT INTO registry_candidate_outcomes (activity, seq, host_id, bucket_ms, calls, failures)
                     SELECT a, s, $6, b, c, f
                     FROM UNNEST($1::TEXT[], $2::BIGINT[], $3::BIGINT[], $4::BIGINT[], $5::BIGINT[])
                         AS t(a, s, b, c, f)
                     ON CONFLICT (activity, seq, host_id, bucket_ms) DO UPDATE SET
                         calls = registry_candidate_outcomes.calls + excluded.calls,
                         failures = registry_candidate_outcomes.failures + excluded.failures",
                    &[&activity, &seq, &bucket, &calls, &failures, &host_id],
                )
                .await
                .map_err(db)?;
            Ok(())
        })
    }

    fn outcomes_elsewhere(
        &self,
        host_id: &str,
        since_ms: u64,
    ) -> Result<Vec<OutcomeTotal>, StoreError> {
        self.db.block_on(async {
            let rows = self
                .db
                .client()
                .await
                .map_err(db)?
                .query(
                    "SELECT activity, seq, SUM(calls)::BIGINT, SUM(failures)::BIGINT
                     FROM registry_candidate_outcomes WHERE host_id <> $1 AND bucket_ms >= $2
                     GROUP BY activity, seq",
                    &[&host_id, &int(since_ms)],
                )
                .await
                .map_err(db)?;
            Ok(rows
                .iter()
                .map(|r| OutcomeTotal {
                    activity: r.get(0),
                    seq: r.get::<_, i64>(1).max(0) as u64,
                    calls: r.get::<_, i64>(2).max(0) as u64,
                    failures: r.get::<_, i64>(3).max(0) as u64,
                })
                .collect())
        })
    }

    fn sweep_ledger(
        &self,
        usage_before_ms: u64,
        outcomes_before_ms: u64,
    ) -> Result<u64, StoreError> {
        self.db.block_on(async {
            let client = self.db.client().await.map_err(db)?;
            let usage = client
                .execute(
                    "DELETE FROM registry_usage WHERE bucket_ms < $1",
                    &[&int(usage_before_ms)],
                )
                .await
                .map_err(db)?;
            let outcomes = client
                .execute(
                    "DELETE FROM registry_candidate_outcomes WHERE bucket_ms < $1",
                    &[&int(outcomes_before_ms)],
                )
                .await
                .map_err(db)?;
            Ok(usage + outcomes)
        })
    }
}
