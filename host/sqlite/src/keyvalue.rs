//! Key-value stores (`wasi:keyvalue`, the users store among them) in one SQLite file.

use std::path::Path;
use std::sync::Mutex;

use activity_runtime::{KeyPage, KeyValueBackend, KeyValueError};
use rusqlite::{params, OptionalExtension};

fn sql(e: rusqlite::Error) -> KeyValueError {
    KeyValueError::Backend(format!("SQLite: {e}"))
}

/// Keys returned per `list-keys` page.
const KEYS_PER_PAGE: u64 = 1000;

/// Key-value stores in one SQLite database file: a table keyed by (store, key).
pub struct SqliteKeyValue {
    conn: Mutex<rusqlite::Connection>,
}

impl SqliteKeyValue {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, KeyValueError> {
        Self::init(rusqlite::Connection::open(path).map_err(sql)?)
    }

    /// An in-memory database, for tests and throw-away hosts.
    pub fn in_memory() -> Result<Self, KeyValueError> {
        Self::init(rusqlite::Connection::open_in_memory().map_err(sql)?)
    }

    fn init(conn: rusqlite::Connection) -> Result<Self, KeyValueError> {
        Self::schema(&conn).map_err(sql)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn schema(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
        crate::configure(conn)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS kv (
                store TEXT NOT NULL,
                key   TEXT NOT NULL,
                value BLOB NOT NULL,
                PRIMARY KEY (store, key)
            ) WITHOUT ROWID;",
        )
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
    ) -> Result<T, KeyValueError> {
        let conn = self.conn.lock().map_err(|_| KeyValueError::Poisoned)?;
        f(&conn).map_err(sql)
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
