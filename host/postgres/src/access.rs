//! API keys and sealed secrets shared by a fleet: `access_keys` and `access_secrets`, each
//! row's record as JSON. Hosts read keys through a short-lived cache, so no notification is
//! needed for a revocation to reach them.

use activity_registry::access::{AccessStore, ApiKey, SealedSecret};
use activity_registry::{from_text, to_text, StoreError};
use deadpool_postgres::Pool;

use crate::{Db, PgError};

/// Keys and secrets in PostgreSQL.
pub struct PostgresAccess {
    db: Db,
}

impl PostgresAccess {
    /// Over `pool` (schema created by [`connect`](crate::connect)), on the current runtime.
    pub fn new(pool: Pool) -> Self {
        Self { db: Db::new(pool) }
    }

    fn rows(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<String>, StoreError> {
        self.db.block_on(async {
            let rows = self
                .db
                .client()
                .await?
                .query(sql, params)
                .await
                .map_err(PgError::from)?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    fn execute(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        self.db.block_on(async {
            Ok(self
                .db
                .client()
                .await?
                .execute(sql, params)
                .await
                .map_err(PgError::from)?)
        })
    }
}

impl AccessStore for PostgresAccess {
    fn add_key(&self, hash: &str, key: &ApiKey) -> Result<(), StoreError> {
        let record = to_text(key)?;
        self.execute(
            "INSERT INTO access_keys (id, hash, record) VALUES ($1, $2, $3)",
            &[&key.id, &hash, &record],
        )
        .map(|_| ())
    }

    fn keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        self.rows("SELECT record FROM access_keys ORDER BY created", &[])?
            .iter()
            .map(|r| from_text("api key", r))
            .collect()
    }

    fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, StoreError> {
        self.rows("SELECT record FROM access_keys WHERE hash = $1", &[&hash])?
            .first()
            .map(|r| from_text("api key", r))
            .transpose()
    }

    fn revoke_key(&self, id: &str, at_ms: u64) -> Result<bool, StoreError> {
        let Some(row) = self
            .rows("SELECT record FROM access_keys WHERE id = $1", &[&id])?
            .into_iter()
            .next()
        else {
            return Ok(false);
        };
        let mut key: ApiKey = from_text("api key", &row)?;
        key.revoked_at_ms.get_or_insert(at_ms);
        self.execute(
            "UPDATE access_keys SET record = $2 WHERE id = $1",
            &[&id, &to_text(&key)?],
        )?;
        Ok(true)
    }

    fn put_secret(&self, secret: &SealedSecret) -> Result<(), StoreError> {
        let record = to_text(secret)?;
        self.execute(
            "INSERT INTO access_secrets (name, record) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET record = excluded.record",
            &[&secret.name, &record],
        )?;
        // Hosts reload secrets on their next reconcile; tell them now.
        self.execute("SELECT pg_notify($1, '')", &[&crate::CHANNEL])
            .map(|_| ())
    }

    fn secrets(&self) -> Result<Vec<SealedSecret>, StoreError> {
        self.rows("SELECT record FROM access_secrets ORDER BY name", &[])?
            .iter()
            .map(|r| from_text("secret", r))
            .collect()
    }

    fn remove_secret(&self, name: &str) -> Result<bool, StoreError> {
        let removed = self.execute("DELETE FROM access_secrets WHERE name = $1", &[&name])? > 0;
        self.execute("SELECT pg_notify($1, '')", &[&crate::CHANNEL])?;
        Ok(removed)
    }
}
