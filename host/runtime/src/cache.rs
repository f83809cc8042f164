//! The on-disk cache of compiled components, keyed by content digest and by the engine's
//! compatibility hash, so a restart does not recompile and an upgraded host never loads
//! code compiled for another engine.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::component::Component;
use wasmtime::Engine;

use crate::ComponentDigest;

/// A name for `engine`'s compilation settings (and wasmtime's version): artifacts compiled
/// under one key load in any engine with the same key.
pub fn engine_key(engine: &Engine) -> String {
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// Compiled artifacts under one directory.
#[derive(Debug, Clone)]
pub struct CompiledCache {
    dir: PathBuf,
}

impl CompiledCache {
    /// A cache in `root`, in a subdirectory for this engine's compilation settings.
    pub fn new(root: &Path, engine: &Engine) -> std::io::Result<Self> {
        let dir = root.join(engine_key(engine));
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    /// True when an artifact for `digest` is on disk.
    pub fn contains(&self, digest: &ComponentDigest) -> bool {
        self.path(digest).exists()
    }

    fn path(&self, digest: &ComponentDigest) -> PathBuf {
        self.dir.join(format!("{}.cwasm", digest.hex()))
    }

    /// The compiled component for `digest`, if cached and loadable.
    pub fn load(&self, engine: &Engine, digest: &ComponentDigest) -> Option<Component> {
        let path = self.path(digest);
        if !path.exists() {
            return None;
        }
        // SAFETY: only this cache writes files here, each the output of
        // `Component::serialize` for this engine's settings (the directory is keyed by the
        // engine's compatibility hash). Anyone able to write to the cache directory can run
        // native code in the host, so it must be as protected as the binary itself.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring unusable compiled artifact");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Stores the compiled form of `component`; written to a temporary file then renamed,
    /// so a crash never leaves a half-written artifact.
    pub fn store(&self, digest: &ComponentDigest, component: &Component) -> std::io::Result<()> {
        let bytes = component.serialize().map_err(std::io::Error::other)?;
        self.write(digest, &bytes)
    }

    fn write(&self, digest: &ComponentDigest, bytes: &[u8]) -> std::io::Result<()> {
        let path = self.path(digest);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, &path)
    }
}

/// Loads an artifact another host compiled (what `Component::serialize` wrote there) into
/// `engine`; kept in `cache`, when there is one, and loaded from there (mapped, not copied).
/// wasmtime refuses an artifact compiled for other engine settings.
pub(crate) fn deserialize(
    engine: &Engine,
    cache: Option<&CompiledCache>,
    digest: &ComponentDigest,
    artifact: &[u8],
) -> wasmtime::Result<Component> {
    // SAFETY: the caller authenticated the artifact's origin (`Runtime::load_shared`): it is
    // `Component::serialize` output of a host the fleet trusts. wasmtime checks that it was
    // compiled for this engine's settings and refuses it otherwise.
    let component = unsafe { Component::deserialize(engine, artifact) }?;
    let Some(cache) = cache else {
        return Ok(component);
    };
    if let Err(e) = cache.write(digest, artifact) {
        tracing::warn!(%digest, error = %e, "could not cache the shared compiled component");
        return Ok(component);
    }
    // Mapped from the file, its pages shared with later loads, rather than held copied.
    Ok(cache.load(engine, digest).unwrap_or(component))
}
