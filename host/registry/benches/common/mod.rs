//! What the registry benchmarks share.

use std::path::Path;
use std::sync::Arc;

use activity_registry::Registry;
use activity_runtime::{Runtime, RuntimeConfig};
use activity_sqlite::SqliteRegistryStore;

/// A registry in `dir` with its own runtime; `cache` keeps compiled components on disk.
pub fn registry(dir: &Path, cache: bool) -> (Registry, Arc<Runtime>) {
    registry_with(dir, cache, |_| {})
}

/// Like [`registry`], with `adjust` applied to the runtime's configuration.
pub fn registry_with(
    dir: &Path,
    cache: bool,
    adjust: impl FnOnce(&mut RuntimeConfig),
) -> (Registry, Arc<Runtime>) {
    let mut config = RuntimeConfig {
        cache_dir: cache.then(|| dir.join("compiled")),
        ..Default::default()
    };
    adjust(&mut config);
    let runtime = Arc::new(Runtime::new(&config).unwrap());
    let store =
        SqliteRegistryStore::open(&dir.join("registry.sqlite"), &dir.join("modules")).unwrap();
    (
        Registry::new(Arc::new(store), runtime.clone(), 50 << 20),
        runtime,
    )
}
