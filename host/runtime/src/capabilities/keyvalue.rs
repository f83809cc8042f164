//! `wasi:keyvalue/store` over a pluggable backend. SQLite is the default backend; the
//! users store that the REST API reads is one of its stores.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{params, OptionalExtension};
use wasmtime::component::Resource;

use super::bindings::wasi::keyvalue::store::{self, Error as WitError, KeyResponse};
use crate::state::ActivityState;

/// A backend failure, reported to the guest as `error.other`.
#[derive(Debug, thiserror::Error)]
pub enum KeyValueError {
    /// The database refused or failed the operation.
    #[error("key-value database error: {0}")]
    Database(#[from] rusqlite::Error),
    /// The database lock was poisoned by a panic in another thread.
    #[error("key-value database is unavailable after an earlier failure")]
    Poisoned,
    /// Another backend (PostgreSQL) failed.
    #[error("key-value backend error: {0}")]
    Backend(String),
    /// The blocking task running the operation was cancelled.
    #[error("key-value operation was interrupted")]
    Interrupted,
}

/// One page of keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPage {
    /// Keys in ascending order.
    pub keys: Vec<String>,
    /// Cursor for the next page, `None` at the end.
    pub cursor: Option<u64>,
}

/// Storage for named key-value stores. Implementations block; callers run them off the
/// async threads.
pub trait KeyValueBackend: Send + Sync + 'static {
    /// The value of `key` in `store`, if present.
    fn get(&self, store: &str, key: &str) -> Result<Option<Vec<u8>>, KeyValueError>;
    /// Sets `key` in `store` to `value`.
    fn set(&self, store: &str, key: &str, value: &[u8]) -> Result<(), KeyValueError>;
    /// Removes `key` from `store`; absent keys are not an error.
    fn delete(&self, store: &str, key: &str) -> Result<(), KeyValueError>;
    /// True when `key` is in `store`.
    fn exists(&self, store: &str, key: &str) -> Result<bool, KeyValueError>;
    /// A page of keys of `store`, starting at `cursor`.
    fn list_keys(&self, store: &str, cursor: Option<u64>) -> Result<KeyPage, KeyValueError>;
}

/// Keys returned per `list-keys` page.
const KEYS_PER_PAGE: u64 = 1000;
/// How long SQLite waits for a lock held by another connection before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Key-value stores in one SQLite database file: a table keyed by (store, key).
pub struct SqliteKeyValue {
    conn: Mutex<rusqlite::Connection>,
}

impl SqliteKeyValue {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, KeyValueError> {
        Self::init(rusqlite::Connection::open(path)?)
    }

    /// An in-memory database, for tests and throw-away hosts.
    pub fn in_memory() -> Result<Self, KeyValueError> {
        Self::init(rusqlite::Connection::open_in_memory()?)
    }

    fn init(conn: rusqlite::Connection) -> Result<Self, KeyValueError> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS kv (
                store TEXT NOT NULL,
                key   TEXT NOT NULL,
                value BLOB NOT NULL,
                PRIMARY KEY (store, key)
            ) WITHOUT ROWID;",
        )?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
    ) -> Result<T, KeyValueError> {
        let conn = self.conn.lock().map_err(|_| KeyValueError::Poisoned)?;
        Ok(f(&conn)?)
    }
}

impl KeyValueBackend for SqliteKeyValue {
    fn get(&self, store: &str, key: &str) -> Result<Option<Vec<u8>>, KeyValueError> {
        self.with(|c| {
            c.prepare_cached("SELECT value FROM kv WHERE store = ?1 AND key = ?2")?
                .query_row(params![store, key], |r| r.get(0))
                .optional()
        })
    }

    fn set(&self, store: &str, key: &str, value: &[u8]) -> Result<(), KeyValueError> {
        self.with(|c| {
            c.prepare_cached(
                "INSERT INTO kv (store, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![store, key, value])
            .map(drop)
        })
    }

    fn delete(&self, store: &str, key: &str) -> Result<(), KeyValueError> {
        self.with(|c| {
            c.prepare_cached("DELETE FROM kv WHERE store = ?1 AND key = ?2")?
                .execute(params![store, key])
                .map(drop)
        })
    }

    fn exists(&self, store: &str, key: &str) -> Result<bool, KeyValueError> {
        self.get(store, key).map(|v| v.is_some())
    }

    fn list_keys(&self, store: &str, cursor: Option<u64>) -> Result<KeyPage, KeyValueError> {
        let offset = cursor.unwrap_or(0);
        let keys: Vec<String> = self.with(|c| {
            c.prepare_cached("SELECT key FROM kv WHERE store = ?1 ORDER BY key LIMIT ?2 OFFSET ?3")?
                .query_map(params![store, KEYS_PER_PAGE as i64, offset as i64], |r| {
                    r.get(0)
                })?
                .collect()
        })?;
        let cursor = (keys.len() as u64 == KEYS_PER_PAGE).then(|| offset + KEYS_PER_PAGE);
        Ok(KeyPage { keys, cursor })
    }
}

/// An open store handle held by a guest.
#[derive(Debug)]
pub struct Bucket {
    store: String,
}

/// Runs a blocking backend operation off the async threads.
async fn run<T: Send + 'static>(
    backend: &Arc<dyn KeyValueBackend>,
    op: impl FnOnce(&dyn KeyValueBackend) -> Result<T, KeyValueError> + Send + 'static,
) -> Result<T, WitError> {
    let backend = backend.clone();
    tokio::task::spawn_blocking(move || op(backend.as_ref()))
        .await
        .map_err(|_| KeyValueError::Interrupted)
        .and_then(|r| r)
        .map_err(|e| {
            tracing::warn!(error = %e, "key-value operation failed");
            WitError::Other(e.to_string())
        })
}

impl ActivityState {
    fn bucket_store(&self, bucket: &Resource<Bucket>) -> wasmtime::Result<String> {
        Ok(self.table.get(bucket)?.store.clone())
    }
}

impl store::Host for ActivityState {
    async fn open(
        &mut self,
        identifier: String,
    ) -> wasmtime::Result<Result<Resource<Bucket>, WitError>> {
        if !self
            .grants
            .key_value_stores
            .iter()
            .any(|s| s == &identifier || s == "*")
        {
            return Ok(Err(WitError::AccessDenied));
        }
        if self.key_value.is_none() {
            return Ok(Err(WitError::NoSuchStore));
        }
        Ok(Ok(self.table.push(Bucket { store: identifier })?))
    }
}

macro_rules! backend_or_error {
    ($self:ident) => {
        match &$self.key_value {
            Some(b) => b.clone(),
            None => return Ok(Err(WitError::NoSuchStore)),
        }
    };
}

impl store::HostBucket for ActivityState {
    async fn get(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, WitError>> {
        let store = self.bucket_store(&bucket)?;
        let backend = backend_or_error!(self);
        Ok(run(&backend, move |b| b.get(&store, &key)).await)
    }

    async fn set(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), WitError>> {
        let store = self.bucket_store(&bucket)?;
        let backend = backend_or_error!(self);
        Ok(run(&backend, move |b| b.set(&store, &key, &value)).await)
    }

    async fn delete(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<(), WitError>> {
        let store = self.bucket_store(&bucket)?;
        let backend = backend_or_error!(self);
        Ok(run(&backend, move |b| b.delete(&store, &key)).await)
    }

    async fn exists(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<bool, WitError>> {
        let store = self.bucket_store(&bucket)?;
        let backend = backend_or_error!(self);
        Ok(run(&backend, move |b| b.exists(&store, &key)).await)
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<u64>,
    ) -> wasmtime::Result<Result<KeyResponse, WitError>> {
        let store = self.bucket_store(&bucket)?;
        let backend = backend_or_error!(self);
        Ok(run(&backend, move |b| b.list_keys(&store, cursor))
            .await
            .map(|p| KeyResponse {
                keys: p.keys,
                cursor: p.cursor,
            }))
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_backend_stores_per_named_store() {
        let kv = SqliteKeyValue::in_memory().unwrap();
        kv.set("a", "k", b"1").unwrap();
        kv.set("b", "k", b"2").unwrap();
        assert_eq!(kv.get("a", "k").unwrap().as_deref(), Some(&b"1"[..]));
        assert_eq!(kv.get("b", "k").unwrap().as_deref(), Some(&b"2"[..]));
        kv.set("a", "k", b"3").unwrap();
        assert_eq!(kv.get("a", "k").unwrap().as_deref(), Some(&b"3"[..]));
        kv.delete("a", "k").unwrap();
        assert!(!kv.exists("a", "k").unwrap());
        kv.delete("a", "missing").unwrap();
    }

    #[test]
    fn list_keys_pages_in_order() {
        let kv = SqliteKeyValue::in_memory().unwrap();
        for i in 0..(KEYS_PER_PAGE + 5) {
            kv.set("s", &format!("k{i:05}"), b"").unwrap();
        }
        let first = kv.list_keys("s", None).unwrap();
        assert_eq!(first.keys.len() as u64, KEYS_PER_PAGE);
        assert_eq!(first.keys[0], "k00000");
        let second = kv.list_keys("s", first.cursor).unwrap();
        assert_eq!(second.keys.len(), 5);
        assert_eq!(second.cursor, None);
    }
}
