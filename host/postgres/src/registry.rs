//! The registry's store in PostgreSQL: blobs, version history and active versions in three
//! tables. Every change notifies [`CHANNEL`](crate::CHANNEL) in its own transaction, so
//! listeners hear of it exactly when it is committed.

use std::collections::BTreeMap;

use activity_registry::rollout::{RolloutEvent, RolloutState};
use activity_registry::store::{
    from_column, from_text, to_column, to_text, RegistryStore, RolloutChange, StoreError,
    VersionRecord,
};
use activity_runtime::ComponentDigest;
use deadpool_postgres::Pool;
use tokio_postgres::Row;

use crate::{Db, PgError, CHANNEL};

/// The shared registry store.
pub struct PostgresRegistryStore {
    db: Db,
}

impl From<PgError> for StoreError {
    fn from(e: PgError) -> Self {
        StoreError::Database(e.to_string())
    }
}

fn db(e: tokio_postgres::Error) -> StoreError {
    PgError::from(e).into()
}

const SELECT: &str =
    "SELECT seq, digest, size, deployed_at_ms, deployed_by, spec, source, signature FROM registry_versions";

fn decode(row: &Row) -> Result<VersionRecord, StoreError> {
    let seq: i64 = row.get(0);
    let digest: String = row.get(1);
    let digest: ComponentDigest = serde_json::from_value(serde_json::Value::String(digest))
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let spec: String = row.get(5);
    let spec = serde_json::from_str(&spec)
        .map_err(|e| StoreError::Corrupt(format!("spec of version {seq}: {e}")))?;
    Ok(VersionRecord {
        seq: seq as u64,
        digest,
        size: row.get::<_, i64>(2) as u64,
        deployed_at_ms: row.get::<_, i64>(3) as u64,
        deployed_by: row.get(4),
        spec,
        source: from_column("source", seq as u64, row.get(6))?,
        signature: from_column("signature", seq as u64, row.get(7))?,
    })
}

impl PostgresRegistryStore {
    /// A store over `pool` (schema created by [`connect`](crate::connect)), running its
    /// statements on the current tokio runtime.
    pub fn new(pool: Pool) -> Self {
        Self { db: Db::new(pool) }
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        Ok(self.db.client().await?)
    }
}

/// Writes a rollout change in `tx`: the state, the activation, the pins dropped, the event,
/// and the notification.
async fn write_rollout(
    tx: &deadpool_postgres::Transaction<'_>,
    activity: &str,
    change: RolloutChange,
) -> Result<(), StoreError> {
    let (state, event) = (to_text(&change.state)?, to_text(&change.event)?);
    tx.execute(
        "INSERT INTO registry_rollouts (activity, state) VALUES ($1, $2)
         ON CONFLICT (activity) DO UPDATE SET state = excluded.state",
        &[&activity, &state],
    )
    .await
    .map_err(db)?;
    if let Some(seq) = change.activate {
        activate(tx, activity, seq as i64).await?;
    }
    for seq in change.unpin {
        tx.execute(
            "DELETE FROM registry_pins WHERE activity = $1 AND seq = $2",
            &[&activity, &(seq as i64)],
        )
        .await
        .map_err(db)?;
    }
    tx.execute(
        "INSERT INTO registry_rollout_events (activity, event) VALUES ($1, $2)",
        &[&activity, &event],
    )
    .await
    .map_err(db)?;
    notify(tx, activity).await
}

impl RegistryStore for PostgresRegistryStore {
    fn put_blob(&self, digest: &ComponentDigest, bytes: &[u8]) -> Result<(), StoreError> {
        self.db.block_on(async {
            self.client()
                .await?
                .execute(
                    "INSERT INTO registry_blobs (digest, bytes) VALUES ($1, $2)
                     ON CONFLICT (digest) DO NOTHING",
                    &[&digest.as_str(), &bytes],
                )
                .await
                .map_err(db)?;
            Ok(())
        })
    }

    fn blob(&self, digest: &ComponentDigest) -> Result<Option<Vec<u8>>, StoreError> {
        self.db.block_on(async {
            let row = self
                .client()
                .await?
                .query_opt(
                    "SELECT bytes FROM registry_blobs WHERE digest = $1",
                    &[&digest.as_str()],
                )
                .await
                .map_err(db)?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn artifact(
        &self,
        engine: &str,
        digest: &ComponentDigest,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.db.block_on(async {
            let row = self
                .client()
                .await?
                .query_opt(
                    "SELECT sealed FROM registry_artifacts WHERE engine = $1 AND digest = $2",
                    &[&engine, &digest.as_str()],
                )
                .await
                .map_err(db)?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn put_artifact(
        &self,
        engine: &str,
        digest: &ComponentDigest,
        sealed: &[u8],
    ) -> Result<(), StoreError> {
        self.db.block_on(async {
            self.client()
                .await?
                .execute(
                    "INSERT INTO registry_artifacts (engine, digest, sealed) VALUES ($1, $2, $3)
                     ON CONFLICT (engine, digest) DO UPDATE SET sealed = excluded.sealed",
                    &[&engine, &digest.as_str(), &sealed],
                )
                .await
                .map_err(db)?;
            Ok(())
        })
    }

    fn add_version(
        &self,
        activity: &str,
        mut record: VersionRecord,
        activate: bool,
        rollout: Option<RolloutChange>,
    ) -> Result<VersionRecord, StoreError> {
        let spec =
            serde_json::to_string(&record.spec).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.db.block_on(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(db)?;
            // Deploys of one activity type from several hosts take turns.
            tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&activity])
                .await
                .map_err(db)?;
            let seq: i64 = tx
                .query_one(
                    "SELECT COALESCE(MAX(seq), 0) + 1 FROM registry_versions WHERE activity = $1",
                    &[&activity],
                )
                .await
                .map_err(db)?
                .get(0);
            tx.execute(
                "INSERT INTO registry_versions
                 (activity, seq, digest, size, deployed_at_ms, deployed_by, spec, source,
                  signature)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                &[
                    &activity,
                    &seq,
                    &record.digest.as_str(),
                    &(record.size as i64),
                    &(record.deployed_at_ms as i64),
                    &record.deployed_by,
                    &spec,
                    &to_column(&record.source),
                    &to_column(&record.signature),
                ],
            )
            .await
            .map_err(db)?;
            if activate {
                self::activate(&tx, activity, seq).await?;
            } else {
                notify(&tx, activity).await?;
            }
            if let Some(mut change) = rollout {
                if let Some(c) = change.state.candidate.as_mut() {
                    c.seq = seq as u64;
                }
                write_rollout(&tx, activity, change).await?;
            }
            tx.commit().await.map_err(db)?;
            record.seq = seq as u64;
            Ok(record)
        })
    }

    fn set_active(&self, activity: &str, seq: u64) -> Result<(), StoreError> {
        self.db.block_on(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(db)?;
            activate(&tx, activity, seq as i64).await?;
            tx.commit().await.map_err(db)
        })
    }

    fn versions(&self, activity: &str) -> Result<(Vec<VersionRecord>, Option<u64>), StoreError> {
        self.db.block_on(async {
            let client = self.client().await?;
            let rows = client
                .query(
                    &format!("{SELECT} WHERE activity = $1 ORDER BY seq"),
                    &[&activity],
                )
                .await
                .map_err(db)?;
            let active = client
                .query_opt(
                    "SELECT seq FROM registry_active WHERE activity = $1",
                    &[&activity],
                )
                .await
                .map_err(db)?
                .map(|r| r.get::<_, i64>(0) as u64);
            Ok((rows.iter().map(decode).collect::<Result<_, _>>()?, active))
        })
    }

    fn active(&self) -> Result<Vec<VersionRecord>, StoreError> {
        self.db.block_on(async {
            let rows = self
                .client()
                .await?
                .query(
                    "SELECT v.seq, v.digest, v.size, v.deployed_at_ms, v.deployed_by, v.spec, v.source,
                            v.signature
                     FROM registry_active a
                     JOIN registry_versions v ON v.activity = a.activity AND v.seq = a.seq
                     ORDER BY a.activity",
                    &[],
                )
                .await
                .map_err(db)?;
            rows.iter().map(decode).collect()
        })
    }

    fn remove(&self, activity: &str) -> Result<bool, StoreError> {
        self.db.block_on(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(db)?;
            let removed = tx
                .execute(
                    "DELETE FROM registry_active WHERE activity = $1",
                    &[&activity],
                )
                .await
                .map_err(db)?;
            for table in [
                "registry_versions",
                "registry_rollouts",
                "registry_rollout_events",
                "registry_pins",
            ] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE activity = $1"),
                    &[&activity],
                )
                .await
                .map_err(db)?;
            }
            notify(&tx, activity).await?;
            tx.commit().await.map_err(db)?;
            Ok(removed > 0)
        })
    }

    fn rollouts(&self) -> Result<BTreeMap<String, RolloutState>, StoreError> {
        self.db.block_on(async {
            let rows = self
                .client()
                .await?
                .query("SELECT activity, state FROM registry_rollouts", &[])
                .await
                .map_err(db)?;
            rows.iter()
                .map(|r| Ok((r.get(0), from_text("rollout state", r.get(1))?)))
                .collect()
        })
    }

    fn rollout(&self, activity: &str) -> Result<RolloutState, StoreError> {
        self.db.block_on(async {
            let row = self
                .client()
                .await?
                .query_opt(
                    "SELECT state FROM registry_rollouts WHERE activity = $1",
                    &[&activity],
                )
                .await
                .map_err(db)?;
            row.map(|r| from_text("rollout state", r.get(0)))
                .transpose()
                .map(Option::unwrap_or_default)
        })
    }

    fn set_rollout(&self, activity: &str, change: RolloutChange) -> Result<(), StoreError> {
        self.db.block_on(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(db)?;
            tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&activity])
                .await
                .map_err(db)?;
            write_rollout(&tx, activity, change).await?;
            tx.commit().await.map_err(db)
        })
    }

    fn events(&self, activity: &str, limit: usize) -> Result<Vec<RolloutEvent>, StoreError> {
        self.db.block_on(async {
            let rows = self
                .client()
                .await?
                .query(
                    "SELECT event FROM registry_rollout_events WHERE activity = $1
                     ORDER BY id DESC LIMIT $2",
                    &[&activity, &(limit as i64)],
                )
                .await
                .map_err(db)?;
            rows.iter()
                .map(|r| from_text("rollout event", r.get(0)))
                .collect()
        })
    }

    fn pin(
        &self,
        activity: &str,
        key: &str,
        seq: Option<u64>,
        at_ms: u64,
    ) -> Result<u64, StoreError> {
        self.db.block_on(async {
            let client = self.client().await?;
            // The insert returns nothing when another host pinned first; then read its pin.
            // A chosen candidate is pinned only while it is still the candidate: a host that
            // has not yet heard of an abort must not pin a run to the aborted version after
            // the abort dropped its pins. `FOR SHARE` waits for a rollout change in flight
            // and reads the row it committed (or holds the change back until this pin is in,
            // for it to drop).
            let inserted = client
                .query_opt(
                    "INSERT INTO registry_pins (activity, key, seq, at_ms)
                     SELECT $1, $2,
                            COALESCE(
                                (SELECT $3::BIGINT FROM registry_rollouts WHERE activity = $1
                                   AND (state::jsonb -> 'candidate' ->> 'seq')::BIGINT = $3
                                 FOR SHARE),
                                (SELECT seq FROM registry_active WHERE activity = $1)),
                            $4
                     ON CONFLICT (activity, key) DO NOTHING RETURNING seq",
                    &[&activity, &key, &seq.map(|s| s as i64), &(at_ms as i64)],
                )
                .await
                .map_err(db)?;
            let row = match inserted {
                Some(row) => row,
                None => client
                    .query_one(
                        "SELECT seq FROM registry_pins WHERE activity = $1 AND key = $2",
                        &[&activity, &key],
                    )
                    .await
                    .map_err(db)?,
            };
            Ok(row.get::<_, i64>(0) as u64)
        })
    }

    fn sweep_pins(&self, before_ms: u64) -> Result<u64, StoreError> {
        self.db.block_on(async {
            self.client()
                .await?
                .execute(
                    "DELETE FROM registry_pins WHERE at_ms < $1",
                    &[&(before_ms as i64)],
                )
                .await
                .map_err(db)
        })
    }

    fn pin_count(&self, activity: &str) -> Result<u64, StoreError> {
        self.db.block_on(async {
            let row = self
                .client()
                .await?
                .query_one(
                    "SELECT COUNT(*) FROM registry_pins WHERE activity = $1",
                    &[&activity],
                )
                .await
                .map_err(db)?;
            Ok(row.get::<_, i64>(0) as u64)
        })
    }
}

/// Makes `seq` active and notifies, inside `tx`.
async fn activate(
    tx: &deadpool_postgres::Transaction<'_>,
    activity: &str,
    seq: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO registry_active (activity, seq) VALUES ($1, $2)
         ON CONFLICT (activity) DO UPDATE SET seq = excluded.seq",
        &[&activity, &seq],
    )
    .await
    .map_err(db)?;
    notify(tx, activity).await
}

async fn notify(tx: &deadpool_postgres::Transaction<'_>, activity: &str) -> Result<(), StoreError> {
    tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &activity])
        .await
        .map_err(db)?;
    Ok(())
}
