//! API keys and sealed secrets in the registry's index: `api_keys` and `secrets`, each
//! row's record as JSON.

use activity_registry::access::{AccessStore, ApiKey, SealedSecret};
use activity_registry::{from_text, to_text, StoreError};
use rusqlite::{params, OptionalExtension};

use crate::{sql, SqliteRegistryStore};

/// The tables, created with the index.
pub(crate) fn schema(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS api_keys (
            id     TEXT PRIMARY KEY,
            hash   TEXT NOT NULL UNIQUE,
            record TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS secrets (
            name   TEXT PRIMARY KEY,
            record TEXT NOT NULL
        );",
    )
}

impl AccessStore for SqliteRegistryStore {
    fn add_key(&self, hash: &str, key: &ApiKey) -> Result<(), StoreError> {
        let record = to_text(key)?;
        self.conn()?
            .execute(
                "INSERT INTO api_keys (id, hash, record) VALUES (?1, ?2, ?3)",
                params![key.id, hash, record],
            )
            .map(|_| ())
            .map_err(sql)
    }

    fn keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let conn = self.conn()?;
        let rows: Vec<String> = conn
            .prepare_cached("SELECT record FROM api_keys ORDER BY rowid")
            .and_then(|mut q| q.query_map([], |r| r.get(0))?.collect())
            .map_err(sql)?;
        rows.iter().map(|r| from_text("api key", r)).collect()
    }

    fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, StoreError> {
        let row: Option<String> = self
            .conn()?
            .prepare_cached("SELECT record FROM api_keys WHERE hash = ?1")
            .and_then(|mut q| q.query_row([hash], |r| r.get(0)).optional())
            .map_err(sql)?;
        row.map(|r| from_text("api key", &r)).transpose()
    }

    fn revoke_key(&self, id: &str, at_ms: u64) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction().map_err(sql)?;
        let row: Option<String> = tx
            .query_row("SELECT record FROM api_keys WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(sql)?;
        let Some(row) = row else { return Ok(false) };
        let mut key: ApiKey = from_text("api key", &row)?;
        key.revoked_at_ms.get_or_insert(at_ms);
        tx.execute(
            "UPDATE api_keys SET record = ?2 WHERE id = ?1",
            params![id, to_text(&key)?],
        )
        .and_then(|_| tx.commit())
        .map_err(sql)?;
        Ok(true)
    }

    fn put_secret(&self, secret: &SealedSecret) -> Result<(), StoreError> {
        let record = to_text(secret)?;
        self.conn()?
            .execute(
                "INSERT INTO secrets (name, record) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET record = excluded.record",
                params![secret.name, record],
            )
            .map(|_| ())
            .map_err(sql)
    }

    fn secrets(&self) -> Result<Vec<SealedSecret>, StoreError> {
        let conn = self.conn()?;
        let rows: Vec<String> = conn
            .prepare_cached("SELECT record FROM secrets ORDER BY name")
            .and_then(|mut q| q.query_map([], |r| r.get(0))?.collect())
            .map_err(sql)?;
        rows.iter().map(|r| from_text("secret", r)).collect()
    }

    fn remove_secret(&self, name: &str) -> Result<bool, StoreError> {
        self.conn()?
            .execute("DELETE FROM secrets WHERE name = ?1", [name])
            .map(|n| n > 0)
            .map_err(sql)
    }
}
