//! `wasi:keyvalue/store` over a pluggable backend ([`KeyValueBackend`]): SQLite
//! (`activity-sqlite`) or PostgreSQL (`activity-postgres`). The users store that the REST API
//! reads is one of its stores.

use std::sync::Arc;

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use super::bindings::wasi::keyvalue::store::{self, Error as WitError, KeyResponse};

/// A backend failure, reported to the guest as `error.other`.
#[derive(Debug, thiserror::Error)]
pub enum KeyValueError {
    /// The database lock was poisoned by a panic in another thread.
    #[error("key-value database is unavailable after an earlier failure")]
    Poisoned,
    /// The backend (SQLite, PostgreSQL) refused or failed the operation.
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

/// What `wasi:keyvalue/store` sees of one call: the backend, the stores granted, and the
/// table holding the guest's open buckets.
pub struct KeyValueView<'a> {
    /// The backend; `None`: the host has no key-value stores.
    pub backend: Option<&'a Arc<dyn KeyValueBackend>>,
    /// Store identifiers the activity may open (`*` for any).
    pub granted: &'a [String],
    /// The call's resource table.
    pub table: &'a mut ResourceTable,
}

/// The interfaces of this room, for the import check.
pub(crate) const OFFERS: &[(&str, crate::grants::Capability)] =
    &[("wasi:keyvalue/store", crate::grants::Capability::KeyValue)];

/// The capability, for the linker.
pub struct KeyValue;

impl HasData for KeyValue {
    type Data<'a> = KeyValueView<'a>;
}

/// Adds `wasi:keyvalue/store` to `linker`.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> KeyValueView<'_>,
) -> wasmtime::Result<()> {
    store::add_to_linker::<T, KeyValue>(linker, get)
}

impl KeyValueView<'_> {
    fn bucket_store(&self, bucket: &Resource<Bucket>) -> wasmtime::Result<String> {
        Ok(self.table.get(bucket)?.store.clone())
    }
}

impl store::Host for KeyValueView<'_> {
    async fn open(
        &mut self,
        identifier: String,
    ) -> wasmtime::Result<Result<Resource<Bucket>, WitError>> {
        if !self.granted.iter().any(|s| s == &identifier || s == "*") {
            return Ok(Err(WitError::AccessDenied));
        }
        if self.backend.is_none() {
            return Ok(Err(WitError::NoSuchStore));
        }
        Ok(Ok(self.table.push(Bucket { store: identifier })?))
    }
}

macro_rules! backend_or_error {
    ($self:ident) => {
        match $self.backend {
            Some(b) => b.clone(),
            None => return Ok(Err(WitError::NoSuchStore)),
        }
    };
}

impl store::HostBucket for KeyValueView<'_> {
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

/// A scratch layer over a backend: reads see the backend with this layer's writes on top;
/// writes and deletes stay in memory and never reach the backend. What verifying a
/// candidate against recorded calls runs with, so it changes no real store.
pub struct ScratchKeyValue {
    base: Option<Arc<dyn KeyValueBackend>>,
    writes: std::sync::Mutex<Writes>,
}

/// (store, key) -> the value written, or `None` for a delete.
type Writes = std::collections::BTreeMap<(String, String), Option<Vec<u8>>>;

impl ScratchKeyValue {
    /// A scratch layer over `base` (`None`: an empty store).
    pub fn over(base: Option<Arc<dyn KeyValueBackend>>) -> Self {
        Self {
            base,
            writes: Default::default(),
        }
    }

    /// How many keys the layer wrote or deleted.
    pub fn changes(&self) -> usize {
        self.writes.lock().map(|w| w.len()).unwrap_or(0)
    }

    fn written(&self, store: &str, key: &str) -> Result<Option<Option<Vec<u8>>>, KeyValueError> {
        let writes = self.writes.lock().map_err(|_| KeyValueError::Poisoned)?;
        Ok(writes.get(&(store.to_string(), key.to_string())).cloned())
    }

    fn write(&self, store: &str, key: &str, value: Option<Vec<u8>>) -> Result<(), KeyValueError> {
        let mut writes = self.writes.lock().map_err(|_| KeyValueError::Poisoned)?;
        writes.insert((store.to_string(), key.to_string()), value);
        Ok(())
    }
}

impl KeyValueBackend for ScratchKeyValue {
    fn get(&self, store: &str, key: &str) -> Result<Option<Vec<u8>>, KeyValueError> {
        match (self.written(store, key)?, &self.base) {
            (Some(value), _) => Ok(value),
            (None, Some(base)) => base.get(store, key),
            (None, None) => Ok(None),
        }
    }

    fn set(&self, store: &str, key: &str, value: &[u8]) -> Result<(), KeyValueError> {
        self.write(store, key, Some(value.to_vec()))
    }

    fn delete(&self, store: &str, key: &str) -> Result<(), KeyValueError> {
        self.write(store, key, None)
    }

    fn exists(&self, store: &str, key: &str) -> Result<bool, KeyValueError> {
        self.get(store, key).map(|v| v.is_some())
    }

    /// Every key in one page: the backend's keys (all its pages) with this layer's writes
    /// and deletes applied.
    fn list_keys(&self, store: &str, _cursor: Option<u64>) -> Result<KeyPage, KeyValueError> {
        let mut keys = std::collections::BTreeSet::new();
        if let Some(base) = &self.base {
            let mut cursor = None;
            loop {
                let page = base.list_keys(store, cursor)?;
                keys.extend(page.keys);
                match page.cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
        }
        let writes = self.writes.lock().map_err(|_| KeyValueError::Poisoned)?;
        for ((s, key), value) in writes.iter() {
            if s == store {
                if value.is_some() {
                    keys.insert(key.clone());
                } else {
                    keys.remove(key);
                }
            }
        }
        Ok(KeyPage {
            keys: keys.into_iter().collect(),
            cursor: None,
        })
    }
}
