//! PostgreSQL backends, for a fleet of hosts sharing one database:
//!
//! - [`PostgresRegistryStore`]: the registry's index, version history and component blobs
//!   (`RegistryStore`), so one deploy is visible to every host;
//! - [`PostgresKeyValue`]: the `wasi:keyvalue` stores (`KeyValueBackend`), the users store
//!   among them;
//! - [`PostgresFleet`]: the hosts table, where each host heartbeats what it serves;
//! - [`listen`]: the registry's change notifications (`LISTEN activity_registry`), which
//!   every write above sends (`NOTIFY`) in its own transaction.
//!
//! The traits are blocking (their callers run them in `spawn_blocking`); these backends hold
//! a deadpool of tokio-postgres connections and run each operation on the tokio runtime they
//! were connected on, through [`tokio::runtime::Handle::block_on`]. The schema is created by
//! [`connect`] under an advisory lock, so hosts starting together do not race.

mod access;
mod fleet;
mod keyvalue;
mod ledger;
mod registry;
pub mod tls;

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};

pub use access::PostgresAccess;
pub use fleet::PostgresFleet;
pub use keyvalue::PostgresKeyValue;
pub use ledger::PostgresLedger;
pub use registry::PostgresRegistryStore;

/// The channel registry changes are notified on; the payload is the activity type.
pub const CHANNEL: &str = "activity_registry";

/// A database failure.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The URL is not a PostgreSQL connection string.
    #[error("invalid PostgreSQL URL: {0}")]
    Url(String),
    /// The pool could not be built or hand out a connection.
    #[error("PostgreSQL unavailable: {0}")]
    Pool(String),
    /// A statement failed.
    #[error("PostgreSQL: {}", with_causes(.0))]
    Query(#[from] tokio_postgres::Error),
}

impl From<deadpool_postgres::PoolError> for PgError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        PgError::Pool(with_causes(&e))
    }
}

/// `e` and the errors under it, joined: tokio-postgres says only "db error" and leaves the
/// server's message (`no pg_hba.conf entry ...`) to its source.
pub fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        cause = c.source();
    }
    text
}

/// How long a statement may wait for a connection from the pool.
const CONNECT_WAIT: Duration = Duration::from_secs(5);

/// The schema, created idempotently.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS registry_blobs (
    digest TEXT PRIMARY KEY,
    bytes  BYTEA NOT NULL
);
-- Compiled code shared between the hosts of a fleet, by engine settings and component
-- digest, sealed with the fleet's secrets key (it is native code).
CREATE TABLE IF NOT EXISTS registry_artifacts (
    engine TEXT  NOT NULL,
    digest TEXT  NOT NULL,
    sealed BYTEA NOT NULL,
    PRIMARY KEY (engine, digest)
);
CREATE TABLE IF NOT EXISTS registry_versions (
    activity       TEXT   NOT NULL,
    seq            BIGINT NOT NULL,
    digest         TEXT   NOT NULL,
    size           BIGINT NOT NULL,
    deployed_at_ms BIGINT NOT NULL,
    deployed_by    TEXT   NOT NULL,
    spec           TEXT   NOT NULL,
    PRIMARY KEY (activity, seq)
);
ALTER TABLE registry_versions ADD COLUMN IF NOT EXISTS source TEXT;
ALTER TABLE registry_versions ADD COLUMN IF NOT EXISTS signature TEXT;
CREATE TABLE IF NOT EXISTS registry_active (
    activity TEXT PRIMARY KEY,
    seq      BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS registry_rollouts (
    activity TEXT PRIMARY KEY,
    state    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS registry_rollout_events (
    id       BIGSERIAL PRIMARY KEY,
    activity TEXT NOT NULL,
    event    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS registry_rollout_events_by_activity
    ON registry_rollout_events (activity, id);
CREATE TABLE IF NOT EXISTS registry_pins (
    activity TEXT   NOT NULL,
    key      TEXT   NOT NULL,
    seq      BIGINT NOT NULL,
    at_ms    BIGINT NOT NULL,
    PRIMARY KEY (activity, key)
);
CREATE INDEX IF NOT EXISTS registry_pins_by_age ON registry_pins (at_ms);
CREATE TABLE IF NOT EXISTS fleet_hosts (
    host_id       TEXT        PRIMARY KEY,
    api           TEXT        NOT NULL,
    started_at_ms BIGINT      NOT NULL,
    heartbeat_at  TIMESTAMPTZ NOT NULL,
    serving       TEXT        NOT NULL
);
CREATE TABLE IF NOT EXISTS access_keys (
    id      TEXT   PRIMARY KEY,
    hash    TEXT   NOT NULL UNIQUE,
    record  TEXT   NOT NULL,
    created BIGSERIAL
);
CREATE TABLE IF NOT EXISTS access_secrets (
    name   TEXT PRIMARY KEY,
    record TEXT NOT NULL
);
-- What calls cost, summed per minute, activity type, version and caller.
CREATE TABLE IF NOT EXISTS registry_usage (
    bucket_ms         BIGINT NOT NULL,
    activity          TEXT   NOT NULL,
    version           TEXT   NOT NULL,
    caller            TEXT   NOT NULL,
    calls             BIGINT NOT NULL,
    failures          BIGINT NOT NULL,
    wall_us           BIGINT NOT NULL,
    cpu_us            BIGINT NOT NULL,
    peak_memory_bytes BIGINT NOT NULL,
    fuel              BIGINT NOT NULL,
    egress_requests   BIGINT NOT NULL,
    egress_bytes      BIGINT NOT NULL,
    PRIMARY KEY (bucket_ms, activity, version, caller)
);
-- Each host's calls of candidates, per 10 s: the automatic abort counts the fleet's.
CREATE TABLE IF NOT EXISTS registry_candidate_outcomes (
    activity  TEXT   NOT NULL,
    seq       BIGINT NOT NULL,
    host_id   TEXT   NOT NULL,
    bucket_ms BIGINT NOT NULL,
    calls     BIGINT NOT NULL,
    failures  BIGINT NOT NULL,
    PRIMARY KEY (activity, seq, host_id, bucket_ms)
);
CREATE TABLE IF NOT EXISTS kv (
    store TEXT  NOT NULL,
    key   TEXT  NOT NULL,
    value BYTEA NOT NULL,
    PRIMARY KEY (store, key)
);
";

/// Longest a statement may run before the server cancels it, unless the URL's `options`
/// set `statement_timeout` (the host's `registry.postgres_statement_timeout_ms`).
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects a pool of `size` connections to `url` and creates the schema, statements
/// cancelled after [`STATEMENT_TIMEOUT`].
pub async fn connect(url: &str, size: usize) -> Result<Pool, PgError> {
    connect_with(url, size, STATEMENT_TIMEOUT).await
}

/// The TCP and statement limits every connection gets: a statement runs at most
/// `statement_timeout` and waits for a lock at most as long (unless the URL's `options` set
/// them); a peer that vanishes without closing is noticed within about 30 s (keepalives), so
/// neither a pooled connection nor the `LISTEN` one hangs on a dead server.
fn limit(config: &mut tokio_postgres::Config, statement_timeout: Duration) {
    let ms = statement_timeout.as_millis();
    let mut options = config.get_options().unwrap_or_default().to_string();
    for setting in ["statement_timeout", "lock_timeout"] {
        if !options.contains(setting) {
            options = format!("{options} -c {setting}={ms}").trim().to_string();
        }
    }
    config
        .options(options)
        .connect_timeout(CONNECT_WAIT)
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(15))
        .keepalives_interval(Duration::from_secs(5))
        .keepalives_retries(3);
}

/// [`connect`] with another statement timeout.
pub async fn connect_with(
    url: &str,
    size: usize,
    statement_timeout: Duration,
) -> Result<Pool, PgError> {
    let tls::Target { mut config, tls } = tls::target(url)?;
    limit(&mut config, statement_timeout);
    let manager = Manager::from_config(
        config,
        tls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager)
        .max_size(size.max(1))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .wait_timeout(Some(CONNECT_WAIT))
        .create_timeout(Some(CONNECT_WAIT))
        .build()
        .map_err(|e| PgError::Pool(e.to_string()))?;
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    // One host creates the schema; the others wait for it.
    tx.execute("SELECT pg_advisory_xact_lock(4242001)", &[])
        .await?;
    tx.batch_execute(SCHEMA).await?;
    tx.commit().await?;
    Ok(pool)
}

/// The pool and the runtime every backend runs its statements on: the traits are blocking
/// and called from `spawn_blocking` threads, which may block on the runtime.
struct Db {
    pool: Pool,
    handle: tokio::runtime::Handle,
}

impl Db {
    /// Over `pool`, on the current tokio runtime.
    fn new(pool: Pool) -> Self {
        Self {
            pool,
            handle: tokio::runtime::Handle::current(),
        }
    }

    /// Runs `f` to completion on the runtime, from a blocking thread.
    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.handle.block_on(f)
    }

    /// A connection from the pool.
    async fn client(&self) -> Result<deadpool_postgres::Object, PgError> {
        Ok(self.pool.get().await?)
    }
}

/// Listens for registry changes on a connection of its own and sends each changed activity
/// type to `changed`, reconnecting after a failure; ends when `changed` is closed. After
/// every (re)connection it sends `None`: notifications may have been missed, reconcile all.
pub async fn listen(url: String, changed: tokio::sync::mpsc::Sender<Option<String>>) {
    use backon::Retryable;
    use futures::StreamExt;
    let backoff = backon::ExponentialBuilder::new()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(5))
        .without_max_times();
    let connect = || async {
        let tls::Target { mut config, tls } = tls::target(&url).map_err(|e| e.to_string())?;
        limit(&mut config, STATEMENT_TIMEOUT);
        config.connect(tls).await.map_err(|e| with_causes(&e))
    };
    loop {
        let connected = connect
            .retry(backoff)
            .when(|_| !changed.is_closed())
            .notify(|e, _| tracing::warn!(error = %e, "cannot connect for registry notifications"))
            .await;
        match connected {
            Ok((client, mut connection)) => {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let stream = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
                let forward = tokio::spawn(async move {
                    let mut stream = std::pin::pin!(stream);
                    while let Some(message) = stream.next().await {
                        match message {
                            Ok(tokio_postgres::AsyncMessage::Notification(n)) => {
                                if tx.send(Some(n.payload().to_string())).is_err() {
                                    break;
                                }
                            }
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, "registry notifications connection failed");
                                break;
                            }
                        }
                    }
                });
                match client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
                    Ok(()) => {
                        tracing::info!("listening for registry changes");
                        if changed.send(None).await.is_err() {
                            forward.abort();
                            return;
                        }
                        while let Some(activity) = rx.recv().await {
                            if changed.send(activity).await.is_err() {
                                forward.abort();
                                return;
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "LISTEN failed"),
                }
                forward.abort();
            }
            // Only when nobody listens any more.
            Err(_) => return,
        }
        if changed.is_closed() {
            return;
        }
        // The connection worked and dropped: reconnect with a fresh backoff after a pause.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
