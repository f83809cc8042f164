//! The SQLite backends of one host, beside `activity-postgres` for a fleet: the registry
//! store (an index and a directory of component files), the key-value stores behind
//! `wasi:keyvalue`, and the hosts table. They implement the traits of `activity-registry`
//! (`RegistryStore`, `FleetStore`, `LedgerStore`) and `activity-runtime` (`KeyValueBackend`); those crates
//! know nothing of SQLite.
//!
//! Every backend here blocks; their callers run them off the async threads.

mod access;
mod fleet;
mod keyvalue;
mod ledger;
mod registry;

use std::time::Duration;

use activity_registry::StoreError;

pub use keyvalue::SqliteKeyValue;
pub use registry::SqliteRegistryStore;

/// How long SQLite waits for a lock held by another connection or process before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Every connection: wait for locks held by others, and write-ahead logging so readers do
/// not block the writer.
fn configure(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")
}

/// rusqlite's error as the registry's.
fn sql(e: rusqlite::Error) -> StoreError {
    StoreError::Database(format!("SQLite: {e}"))
}
