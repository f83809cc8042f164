//! The hosts that share one SQLite registry (processes on one machine, as `dev`, `worker`
//! and `server` beside each other): the same table and answers as PostgreSQL's, stamped
//! with the machine's clock, which they share.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use activity_registry::{FleetHost, FleetStore, StoreError};
use rusqlite::params;

use crate::{sql, SqliteRegistryStore};

/// Creates the hosts table (called when the registry index opens).
pub(crate) fn schema(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS fleet_hosts (
            host_id         TEXT PRIMARY KEY,
            api             TEXT    NOT NULL,
            started_at_ms   INTEGER NOT NULL,
            heartbeat_at_ms INTEGER NOT NULL,
            serving         TEXT    NOT NULL
        );",
    )
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl FleetStore for SqliteRegistryStore {
    fn beat(
        &self,
        host_id: &str,
        api: &str,
        started_at_ms: u64,
        serving: &BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        let serving =
            serde_json::to_string(serving).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.conn()?
            .execute(
                "INSERT INTO fleet_hosts (host_id, api, started_at_ms, heartbeat_at_ms, serving)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (host_id) DO UPDATE SET api = excluded.api,
                     started_at_ms = excluded.started_at_ms,
                     heartbeat_at_ms = excluded.heartbeat_at_ms, serving = excluded.serving",
                params![host_id, api, started_at_ms, now_ms(), serving],
            )
            .map_err(sql)?;
        Ok(())
    }

    fn live(&self, within: Duration) -> Result<Vec<FleetHost>, StoreError> {
        let now = now_ms();
        let since = now.saturating_sub(within.as_millis() as u64);
        let rows: Vec<(String, String, u64, u64, String)> = self
            .conn()?
            .prepare_cached(
                "SELECT host_id, api, started_at_ms, heartbeat_at_ms, serving FROM fleet_hosts
                 WHERE heartbeat_at_ms > ?1 ORDER BY host_id",
            )
            .and_then(|mut q| {
                q.query_map(params![since], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?
                .collect()
            })
            .map_err(sql)?;
        rows.into_iter()
            .map(|(host_id, api, started_at_ms, beat, serving)| {
                Ok(FleetHost {
                    host_id,
                    api,
                    started_at_ms,
                    last_seen_ms_ago: now.saturating_sub(beat),
                    serving: serde_json::from_str(&serving)
                        .map_err(|e| StoreError::Corrupt(format!("fleet host: {e}")))?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_live_until_their_heartbeats_stop() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteRegistryStore::open(
            &dir.path().join("registry.sqlite"),
            &dir.path().join("modules"),
        )
        .unwrap();
        let serving = BTreeMap::from([("A".to_string(), "sha256:00".to_string())]);
        store.beat("h1", "127.0.0.1:1", 5, &serving).unwrap();
        store
            .beat("h2", "127.0.0.1:2", 6, &BTreeMap::new())
            .unwrap();
        let live = store.live(Duration::from_secs(10)).unwrap();
        assert_eq!(live.len(), 2);
        assert_eq!(live[0].host_id, "h1");
        assert_eq!(live[0].serving, serving);
        assert_eq!(live[1].started_at_ms, 6);
        assert!(store.live(Duration::ZERO).unwrap().is_empty());
    }
}
