//! `wasi:keyvalue` stores in PostgreSQL: one table keyed by (store, key), shared by the
//! fleet, so a user created through one host is read through any other.

use activity_runtime::capabilities::keyvalue::KeyPage;
use activity_runtime::{KeyValueBackend, KeyValueError};
use deadpool_postgres::Pool;

use crate::Db;

/// Keys returned per `list-keys` page, as the SQLite backend.
const KEYS_PER_PAGE: i64 = 1000;

/// The shared key-value backend.
pub struct PostgresKeyValue {
    db: Db,
}

fn backend(e: impl Into<crate::PgError>) -> KeyValueError {
    KeyValueError::Backend(e.into().to_string())
}

impl PostgresKeyValue {
    /// A backend over `pool` (schema created by [`connect`](crate::connect)), running its
    /// statements on the current tokio runtime.
    pub fn new(pool: Pool) -> Self {
        Self { db: Db::new(pool) }
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, KeyValueError> {
        self.db.client().await.map_err(backend)
    }
}

impl KeyValueBackend for PostgresKeyValue {
    fn get(&self, store: &str, key: &str) -> Result<Option<Vec<u8>>, KeyValueError> {
        self.db.block_on(async {
            let row = self
                .client()
                .await?
                .query_opt(
                    "SELECT value FROM kv WHERE store = $1 AND key = $2",
                    &[&store, &key],
                )
                .await
                .map_err(backend)?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn set(&self, store: &str, key: &str, value: &[u8]) -> Result<(), KeyValueError> {
        self.db.block_on(async {
            self.client()
                .await?
                .execute(
                    "INSERT INTO kv (store, key, value) VALUES ($1, $2, $3)
                     ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
                    &[&store, &key, &value],
                )
                .await
                .map_err(backend)?;
            Ok(())
        })
    }

    fn delete(&self, store: &str, key: &str) -> Result<(), KeyValueError> {
        self.db.block_on(async {
            self.client()
                .await?
                .execute(
                    "DELETE FROM kv WHERE store = $1 AND key = $2",
                    &[&store, &key],
                )
                .await
                .map_err(backend)?;
            Ok(())
        })
    }

    fn exists(&self, store: &str, key: &str) -> Result<bool, KeyValueError> {
        self.get(store, key).map(|v| v.is_some())
    }

    fn list_keys(&self, store: &str, cursor: Option<u64>) -> Result<KeyPage, KeyValueError> {
        let offset = cursor.unwrap_or(0);
        self.db.block_on(async {
            let rows = self
                .client()
                .await?
                .query(
                    "SELECT key FROM kv WHERE store = $1 ORDER BY key LIMIT $2 OFFSET $3",
                    &[&store, &KEYS_PER_PAGE, &(offset as i64)],
                )
                .await
                .map_err(backend)?;
            let keys: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
            let cursor =
                (keys.len() as i64 == KEYS_PER_PAGE).then(|| offset + KEYS_PER_PAGE as u64);
            Ok(KeyPage { keys, cursor })
        })
    }
}
