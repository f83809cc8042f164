//! What the registry benchmarks share.

use std::path::Path;
use std::sync::Arc;

use activity_registry::Registry;
use activity_runtime::{Runtime, RuntimeConfig};
use activity_sqlite::SqliteRegistryStore;

/// A registry in `dir` with its own runtime; `cache` keeps compiled components on disk.
pub fn registry(dir: &Path, cache: bool) -> (Registry, Arc<Runtime>) {
    let config = RuntimeConfig {
        cache_dir: cache.then(|| dir.join("compiled")),
        ..Default::default()
    };
    let runtime = Arc::new(Runtime::new(&config).unwrap());
    let store =
        SqliteRegistryStore::open(&dir.join("registry.sqlite"), &dir.join("modules")).unwrap();
    (
        Registry::new(Arc::new(store), runtime.clone(), 50 << 20),
        runtime,
    )
}
