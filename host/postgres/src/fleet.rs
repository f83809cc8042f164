//! The fleet's hosts in PostgreSQL: one row per host, written by its heartbeat with the
//! database's clock, so hosts with skewed clocks still agree on who is alive.

use std::collections::BTreeMap;
use std::time::Duration;

use activity_registry::{FleetHost, FleetStore, StoreError};
use deadpool_postgres::Pool;

use crate::Db;

/// The hosts table.
pub struct PostgresFleet {
    db: Db,
}

fn db(e: impl Into<crate::PgError>) -> StoreError {
    StoreError::Database(e.into().to_string())
}

impl PostgresFleet {
    /// The hosts table over `pool` (schema created by [`connect`](crate::connect)).
    pub fn new(pool: Pool) -> Self {
        Self { db: Db::new(pool) }
    }
}

impl FleetStore for PostgresFleet {
    fn beat(
        &self,
        host_id: &str,
        api: &str,
        started_at_ms: u64,
        serving: &BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        let serving =
            serde_json::to_string(serving).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.db.block_on(async {
            self.db
                .client()
                .await
                .map_err(db)?
                .execute(
                    "INSERT INTO fleet_hosts (host_id, api, started_at_ms, heartbeat_at, serving)
                     VALUES ($1, $2, $3, now(), $4)
                     ON CONFLICT (host_id) DO UPDATE SET api = excluded.api,
                         started_at_ms = excluded.started_at_ms,
                         heartbeat_at = excluded.heartbeat_at, serving = excluded.serving",
                    &[&host_id, &api, &(started_at_ms as i64), &serving],
                )
                .await
                .map_err(db)?;
            Ok(())
        })
    }

    fn live(&self, within: Duration) -> Result<Vec<FleetHost>, StoreError> {
        self.db.block_on(async {
            let rows = self
                .db
                .client()
                .await
                .map_err(db)?
                .query(
                    "SELECT host_id, api, started_at_ms,
                            (EXTRACT(EPOCH FROM (now() - heartbeat_at)) * 1000)::BIGINT, serving
                     FROM fleet_hosts
                     WHERE heartbeat_at > now() - make_interval(secs => $1)
                     ORDER BY host_id",
                    &[&within.as_secs_f64()],
                )
                .await
                .map_err(db)?;
            rows.iter()
                .map(|r| {
                    let serving: String = r.get(4);
                    Ok(FleetHost {
                        host_id: r.get(0),
                        api: r.get(1),
                        started_at_ms: r.get::<_, i64>(2) as u64,
                        last_seen_ms_ago: r.get::<_, i64>(3).max(0) as u64,
                        serving: serde_json::from_str(&serving)
                            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    })
                })
                .collect()
        })
    }
}
