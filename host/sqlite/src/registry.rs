//! The registry in SQLite: an index (`registry.sqlite`) and a directory of component files
//! named by digest.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use std::collections::BTreeMap;

use activity_registry::rollout::{RolloutEvent, RolloutState};
use activity_registry::{
    from_column, from_text, to_column, to_text, RegistryStore, RolloutChange, StoreError,
    VersionRecord,
};
use activity_runtime::ComponentDigest;
use rusqlite::{params, OptionalExtension};

use crate::sql;

/// SQLite index plus blob directory.
pub struct SqliteRegistryStore {
    conn: Mutex<rusqlite::Connection>,
    blobs: PathBuf,
}

impl SqliteRegistryStore {
    /// Opens (or creates) the index at `index` and the blob directory `blobs`.
    pub fn open(index: &Path, blobs: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(blobs)?;
        let conn = rusqlite::Connection::open(index).map_err(sql)?;
        Self::schema(&conn).map_err(sql)?;
        Ok(Self {
            conn: Mutex::new(conn),
            blobs: blobs.to_path_buf(),
        })
    }

    fn schema(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
        crate::configure(conn)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS versions (
                activity       TEXT    NOT NULL,
                seq            INTEGER NOT NULL,
                digest         TEXT    NOT NULL,
                size           INTEGER NOT NULL,
                deployed_at_ms INTEGER NOT NULL,
                deployed_by    TEXT    NOT NULL,
                spec           TEXT    NOT NULL,
                PRIMARY KEY (activity, seq)
            );
            CREATE TABLE IF NOT EXISTS active (
                activity TEXT PRIMARY KEY,
                seq      INTEGER NOT NULL
            );
            CREATE TABLE IF NOT EXISTS rollouts (
                activity TEXT PRIMARY KEY,
                state    TEXT NOT NULL
            );
            CREATE TABLE IF NOT EXISTS rollout_events (
                id       INTEGER PRIMARY KEY AUTOINCREMENT,
                activity TEXT    NOT NULL,
                event    TEXT    NOT NULL
            );
            CREATE INDEX IF NOT EXISTS rollout_events_by_activity
                ON rollout_events (activity, id);
            CREATE TABLE IF NOT EXISTS pins (
                activity TEXT    NOT NULL,
                key      TEXT    NOT NULL,
                seq      INTEGER NOT NULL,
                at_ms    INTEGER NOT NULL,
                PRIMARY KEY (activity, key)
            );
            CREATE INDEX IF NOT EXISTS pins_by_age ON pins (at_ms);",
        )?;
        // Added later (deploys by OCI reference, signatures); older indexes get them here.
        for column in ["source", "signature"] {
            let present = conn
                .prepare("SELECT 1 FROM pragma_table_info('versions') WHERE name = ?1")?
                .exists([column])?;
            if !present {
                conn.execute(
                    &format!("ALTER TABLE versions ADD COLUMN {column} TEXT"),
                    [],
                )?;
            }
        }
        crate::fleet::schema(conn)?;
        crate::ledger::schema(conn)?;
        crate::access::schema(conn)
    }

    pub(crate) fn conn(
        &self,
    ) -> Result<std::sync::MutexGuard<'_, rusqlite::Connection>, StoreError> {
        self.conn
            .lock()
            .map_err(|_| StoreError::Database("connection lock poisoned".into()))
    }

    /// Appends `record` as the next version of `activity` and makes it active when
    /// `activate`, in one transaction; returns its sequence number.
    fn append(
        conn: &mut rusqlite::Connection,
        activity: &str,
        record: &VersionRecord,
        spec: &str,
        activate: bool,
        rollout: Option<RolloutChange>,
    ) -> Result<u64, StoreError> {
        let tx = conn.transaction().map_err(sql)?;
        let seq = Self::insert_version(&tx, activity, record, spec, activate).map_err(sql)?;
        if let Some(mut change) = rollout {
            if let Some(c) = change.state.candidate.as_mut() {
                c.seq = seq;
            }
            write_rollout(&tx, activity, change)?;
        }
        tx.commit().map_err(sql)?;
        Ok(seq)
    }

    fn insert_version(
        tx: &rusqlite::Transaction<'_>,
        activity: &str,
        record: &VersionRecord,
        spec: &str,
        activate: bool,
    ) -> rusqlite::Result<u64> {
        let seq: u64 = tx.query_row(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM versions WHERE activity = ?1",
            params![activity],
            |r| r.get(0),
        )?;
        tx.execute(
            "INSERT INTO versions
             (activity, seq, digest, size, deployed_at_ms, deployed_by, spec, source, signature)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                activity,
                seq,
                record.digest.as_str(),
                record.size,
                record.deployed_at_ms,
                record.deployed_by,
                spec,
                to_column(&record.source),
                to_column(&record.signature),
            ],
        )?;
        if activate {
            tx.execute(ACTIVATE, params![activity, seq])?;
        }
        Ok(seq)
    }

    fn blob_path(&self, digest: &ComponentDigest) -> PathBuf {
        self.blobs.join(format!("{}.wasm", digest.hex()))
    }
}

type Raw = (
    u64,
    String,
    u64,
    u64,
    String,
    String,
    Option<String>,
    Option<String>,
);

fn record(row: &rusqlite::Row<'_>) -> rusqlite::Result<Raw> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
    ))
}

fn decode(raw: Raw) -> Result<VersionRecord, StoreError> {
    let (seq, digest, size, deployed_at_ms, deployed_by, spec, source, signature) = raw;
    let digest: ComponentDigest = serde_json::from_value(serde_json::Value::String(digest))
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let spec = serde_json::from_str(&spec)
        .map_err(|e| StoreError::Corrupt(format!("spec of version {seq}: {e}")))?;
    Ok(VersionRecord {
        seq,
        digest,
        size,
        deployed_at_ms,
        deployed_by,
        spec,
        source: from_column("source", seq, source)?,
        signature: from_column("signature", seq, signature)?,
    })
}

const ACTIVATE: &str = "INSERT INTO active (activity, seq) VALUES (?1, ?2)
     ON CONFLICT (activity) DO UPDATE SET seq = excluded.seq";

const SELECT: &str =
    "SELECT seq, digest, size, deployed_at_ms, deployed_by, spec, source, signature FROM versions";

/// Writes a rollout change in `tx`: the state, the activation, the pins dropped, the event.
fn write_rollout(
    tx: &rusqlite::Transaction<'_>,
    activity: &str,
    change: RolloutChange,
) -> Result<(), StoreError> {
    let (state, event) = (to_text(&change.state)?, to_text(&change.event)?);
    let write = || -> rusqlite::Result<()> {
        tx.execute(
            "INSERT INTO rollouts (activity, state) VALUES (?1, ?2)
             ON CONFLICT (activity) DO UPDATE SET state = excluded.state",
            params![activity, state],
        )?;
        if let Some(seq) = change.activate {
            tx.execute(ACTIVATE, params![activity, seq])?;
        }
        for seq in &change.unpin {
            tx.execute(
                "DELETE FROM pins WHERE activity = ?1 AND seq = ?2",
                params![activity, seq],
            )?;
        }
        tx.execute(
            "INSERT INTO rollout_events (activity, event) VALUES (?1, ?2)",
            params![activity, event],
        )?;
        Ok(())
    };
    write().map_err(sql)
}

impl RegistryStore for SqliteRegistryStore {
    fn put_blob(&self, digest: &ComponentDigest, bytes: &[u8]) -> Result<(), StoreError> {
        use std::io::Write;
        let path = self.blob_path(digest);
        // A file already there is kept only when it still hashes to its name.
        if let Ok(held) = std::fs::read(&path) {
            if ComponentDigest::of(&held) == *digest {
                return Ok(());
            }
            tracing::warn!(path = %path.display(), "a component file did not hash to its digest; writing it again");
        }
        // Written whole under another name, flushed to the disk, then renamed and the
        // directory flushed: a crash leaves the old file or the whole new one.
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(&self.blobs)?.sync_all()?;
        Ok(())
    }

    fn blob(&self, digest: &ComponentDigest) -> Result<Option<Vec<u8>>, StoreError> {
        match std::fs::read(self.blob_path(digest)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    // The processes sharing a SQLite index run on one machine and share its compiled
    // directory (`registry.compiled_cache_dir`): nothing to share through the index.
    fn artifact(
        &self,
        _engine: &str,
        _digest: &ComponentDigest,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(None)
    }

    fn put_artifact(
        &self,
        _engine: &str,
        _digest: &ComponentDigest,
        _sealed: &[u8],
    ) -> Result<(), StoreError> {
        Ok(())
    }

    fn add_version(
        &self,
        activity: &str,
        mut record: VersionRecord,
        activate: bool,
        rollout: Option<RolloutChange>,
    ) -> Result<VersionRecord, StoreError> {
        let spec = to_text(&record.spec)?;
        let mut conn = self.conn()?;
        let seq = Self::append(&mut conn, activity, &record, &spec, activate, rollout)?;
        record.seq = seq;
        Ok(record)
    }

    fn set_active(&self, activity: &str, seq: u64) -> Result<(), StoreError> {
        self.conn()?
            .execute(ACTIVATE, params![activity, seq])
            .map_err(sql)?;
        Ok(())
    }

    fn versions(&self, activity: &str) -> Result<(Vec<VersionRecord>, Option<u64>), StoreError> {
        let conn = self.conn()?;
        let read = || -> rusqlite::Result<(Vec<Raw>, Option<u64>)> {
            let raw = conn
                .prepare_cached(&format!("{SELECT} WHERE activity = ?1 ORDER BY seq"))?
                .query_map(params![activity], record)?
                .collect::<Result<_, _>>()?;
            let active = conn
                .query_row(
                    "SELECT seq FROM active WHERE activity = ?1",
                    params![activity],
                    |r| r.get(0),
                )
                .optional()?;
            Ok((raw, active))
        };
        let (raw, active) = read().map_err(sql)?;
        Ok((
            raw.into_iter().map(decode).collect::<Result<_, _>>()?,
            active,
        ))
    }

    fn active(&self) -> Result<Vec<VersionRecord>, StoreError> {
        let conn = self.conn()?;
        let raw: Vec<Raw> = conn
            .prepare_cached(
                "SELECT v.seq, v.digest, v.size, v.deployed_at_ms, v.deployed_by, v.spec, v.source,
                        v.signature
                 FROM active a JOIN versions v ON v.activity = a.activity AND v.seq = a.seq
                 ORDER BY a.activity",
            )
            .and_then(|mut q| q.query_map([], record)?.collect())
            .map_err(sql)?;
        raw.into_iter().map(decode).collect()
    }

    fn remove(&self, activity: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let mut delete = || -> rusqlite::Result<bool> {
            let tx = conn.transaction()?;
            let removed =
                tx.execute("DELETE FROM active WHERE activity = ?1", params![activity])?;
            for table in ["versions", "rollouts", "rollout_events", "pins"] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE activity = ?1"),
                    params![activity],
                )?;
            }
            tx.commit()?;
            Ok(removed > 0)
        };
        delete().map_err(sql)
    }

    fn rollouts(&self) -> Result<BTreeMap<String, RolloutState>, StoreError> {
        let conn = self.conn()?;
        let rows: Vec<(String, String)> = conn
            .prepare_cached("SELECT activity, state FROM rollouts")
            .and_then(|mut q| q.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .map_err(sql)?;
        rows.into_iter()
            .map(|(a, s)| Ok((a, from_text("rollout state", &s)?)))
            .collect()
    }

    fn rollout(&self, activity: &str) -> Result<RolloutState, StoreError> {
        let row: Option<String> = self
            .conn()?
            .prepare_cached("SELECT state FROM rollouts WHERE activity = ?1")
            .and_then(|mut q| q.query_row([activity], |r| r.get(0)).optional())
            .map_err(sql)?;
        row.map(|s| from_text("rollout state", &s))
            .transpose()
            .map(Option::unwrap_or_default)
    }

    fn set_rollout(&self, activity: &str, change: RolloutChange) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction().map_err(sql)?;
        write_rollout(&tx, activity, change)?;
        tx.commit().map_err(sql)
    }

    fn events(&self, activity: &str, limit: usize) -> Result<Vec<RolloutEvent>, StoreError> {
        let conn = self.conn()?;
        let rows: Vec<String> = conn
            .prepare_cached(
                "SELECT event FROM rollout_events WHERE activity = ?1 ORDER BY id DESC LIMIT ?2",
            )
            .and_then(|mut q| {
                q.query_map(params![activity, limit as i64], |r| r.get(0))?
                    .collect()
            })
            .map_err(sql)?;
        rows.iter().map(|e| from_text("rollout event", e)).collect()
    }

    fn pin(
        &self,
        activity: &str,
        key: &str,
        seq: Option<u64>,
        at_ms: u64,
    ) -> Result<u64, StoreError> {
        let conn = self.conn()?;
        // A chosen candidate is pinned only while it is still the candidate: a host that has
        // not yet heard of an abort must not pin a run to the aborted version after the
        // abort dropped its pins. `WHERE true` keeps SQLite from reading `ON CONFLICT` as
        // part of the SELECT.
        conn.prepare_cached(
            "INSERT INTO pins (activity, key, seq, at_ms)
             SELECT ?1, ?2, COALESCE(
                 (SELECT ?3 FROM rollouts WHERE activity = ?1
                    AND json_extract(state, '$.candidate.seq') = ?3),
                 (SELECT seq FROM active WHERE activity = ?1)), ?4
             WHERE true
             ON CONFLICT (activity, key) DO NOTHING",
        )
        .and_then(|mut q| q.execute(params![activity, key, seq, at_ms]))
        .and_then(|_| {
            conn.prepare_cached("SELECT seq FROM pins WHERE activity = ?1 AND key = ?2")?
                .query_row(params![activity, key], |r| r.get(0))
        })
        .map_err(sql)
    }

    fn sweep_pins(&self, before_ms: u64) -> Result<u64, StoreError> {
        self.conn()?
            .execute("DELETE FROM pins WHERE at_ms < ?1", params![before_ms])
            .map(|n| n as u64)
            .map_err(sql)
    }

    fn pin_count(&self, activity: &str) -> Result<u64, StoreError> {
        self.conn()?
            .query_row(
                "SELECT COUNT(*) FROM pins WHERE activity = ?1",
                params![activity],
                |r| r.get(0),
            )
            .map_err(sql)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use activity_registry::ArtifactSource;
    use activity_runtime::ActivitySpec;

    #[test]
    fn an_index_from_before_oci_sources_gets_the_column_and_keeps_its_versions() {
        let dir = tempfile::tempdir().unwrap();
        let index = dir.path().join("registry.sqlite");
        {
            let old = rusqlite::Connection::open(&index).unwrap();
            old.execute_batch(
                "CREATE TABLE versions (activity TEXT NOT NULL, seq INTEGER NOT NULL,
                   digest TEXT NOT NULL, size INTEGER NOT NULL, deployed_at_ms INTEGER NOT NULL,
                   deployed_by TEXT NOT NULL, spec TEXT NOT NULL, PRIMARY KEY (activity, seq));
                 CREATE TABLE active (activity TEXT PRIMARY KEY, seq INTEGER NOT NULL);",
            )
            .unwrap();
            let spec = serde_json::to_string(&ActivitySpec::new("A")).unwrap();
            old.execute(
                "INSERT INTO versions VALUES ('A', 1, ?1, 3, 1, 'api', ?2)",
                params![ComponentDigest::of(b"one").as_str(), spec],
            )
            .unwrap();
        }
        let store = SqliteRegistryStore::open(&index, &dir.path().join("modules")).unwrap();
        let source = ArtifactSource {
            reference: "oci://localhost:5000/a:1".into(),
            manifest_digest: format!("sha256:{}", "1".repeat(64)),
        };
        let added = store
            .add_version(
                "A",
                VersionRecord {
                    seq: 0,
                    digest: ComponentDigest::of(b"two"),
                    size: 3,
                    deployed_at_ms: 2,
                    deployed_by: "api".into(),
                    spec: ActivitySpec::new("A"),
                    source: Some(source.clone()),
                    signature: None,
                },
                true,
                None,
            )
            .unwrap();
        assert_eq!(added.seq, 2);
        let (versions, active) = store.versions("A").unwrap();
        assert_eq!(active, Some(2));
        assert_eq!(versions[0].source, None);
        assert_eq!(versions[1].source, Some(source));
        // Opening again (the column is there now) is fine.
        drop(store);
        SqliteRegistryStore::open(&index, &dir.path().join("modules")).unwrap();
    }
}
