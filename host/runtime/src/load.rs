//! Loading a component: check that it is one, that its imports fit the host and the
//! activity's grants, that it exports the activity's function with JSON-friendly types;
//! compile it (or take it from the compiled cache) and pre-link it.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, ComponentExportIndex, InstancePre};
use wasmtime_wasi_config::WasiConfigVariables;
use wit_json::Signature;

use crate::grants::{check_import, ImportRefusal};
use crate::state::ActivityState;
use crate::{ActivitySpec, ComponentDigest, Runtime};

/// Why a component was refused. Each names what to change.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// No bytes at all.
    #[error("the component is empty")]
    Empty,
    /// The bytes are not WebAssembly.
    #[error("not a WebAssembly binary (it does not start with the \\0asm magic number)")]
    NotWasm,
    /// A core module where a component is needed.
    #[error("this is a core WebAssembly module, not a component: build for the wasm32-wasip2 target (or wrap it with `wasm-tools component new`)")]
    CoreModule,
    /// Malformed or failing validation.
    #[error("invalid component: {0}")]
    Invalid(String),
    /// An import the host does not have.
    #[error("component imports {import}, which the host does not offer{}", hint.map(|h| format!(" ({h})")).unwrap_or_default())]
    ImportNotOffered {
        /// The import's full name.
        import: String,
        /// What to use instead.
        hint: Option<&'static str>,
    },
    /// An import the activity was not granted.
    #[error("component imports {import}, which activity {activity} is not granted: it needs {capability}")]
    ImportNotGranted {
        /// The import's full name.
        import: String,
        /// The activity type.
        activity: String,
        /// The capability the import needs.
        capability: crate::grants::Capability,
    },
    /// The export to call is missing.
    #[error("component exports no function `{expected}` for activity {activity}; it exports: {}", if available.is_empty() { "no functions".to_string() } else { available.join(", ") })]
    ExportNotFound {
        /// The activity type.
        activity: String,
        /// The function looked for.
        expected: String,
        /// Exported functions found.
        available: Vec<String>,
    },
    /// The export uses a type that cannot come from JSON.
    #[error("export `{export}` cannot be called with JSON: {source}")]
    UnsupportedType {
        /// The export.
        export: String,
        /// The offending type.
        source: wit_json::UnsupportedType,
    },
    /// The imports matched by name but not by type (usually a WIT version mismatch).
    #[error("component does not link against the host: {0}")]
    Link(String),
}

/// A loaded, checked, pre-linked activity component, ready to be called many times.
pub struct ActivityComponent {
    pub(crate) spec: ActivitySpec,
    pub(crate) digest: ComponentDigest,
    pub(crate) pre: InstancePre<ActivityState>,
    pub(crate) export: ComponentExportIndex,
    pub(crate) export_name: String,
    pub(crate) signature: Arc<Signature>,
    pub(crate) grants: Arc<crate::Grants>,
    pub(crate) config: Arc<WasiConfigVariables>,
    pub(crate) origin: CompiledFrom,
}

/// Where a loaded component's machine code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompiledFrom {
    /// Compiled by this runtime.
    Compiled,
    /// This host's on-disk compiled cache.
    LocalCache,
    /// An artifact another host compiled for the same engine settings.
    Shared,
}

impl ActivityComponent {
    /// The content digest of the component's bytes.
    pub fn digest(&self) -> &ComponentDigest {
        &self.digest
    }

    /// The activity type and its grants and limits.
    pub fn spec(&self) -> &ActivitySpec {
        &self.spec
    }

    /// The exported function the activity calls (`validate-user`, or `iface#func`).
    pub fn export_name(&self) -> &str {
        &self.export_name
    }

    /// The export's parameters and result, as WIT types.
    pub fn signature(&self) -> &Arc<Signature> {
        &self.signature
    }

    /// True when the compiled code came from a cache (this host's, or an artifact shared
    /// by another host) rather than a compilation.
    pub fn loaded_from_cache(&self) -> bool {
        self.origin != CompiledFrom::Compiled
    }

    /// Where the compiled code came from.
    pub fn compiled_from(&self) -> CompiledFrom {
        self.origin
    }

    /// The compiled code in wasmtime's serialized form, for another host with the same
    /// engine settings ([`Runtime::engine_key`]) to load with [`Runtime::load_shared`].
    pub fn serialized(&self) -> Result<Vec<u8>, LoadError> {
        self.pre
            .component()
            .serialize()
            .map_err(|e| LoadError::Invalid(format!("cannot serialize the compiled code: {e:#}")))
    }
}

/// `ValidateUser` -> `validate-user`; `send_notification` -> `send-notification`.
pub fn export_name_for(activity_type: &str) -> String {
    let mut out = String::with_capacity(activity_type.len() + 4);
    let mut prev_lower = false;
    for c in activity_type.chars() {
        if c == '_' || c == '.' || c == '-' {
            if !out.ends_with('-') && !out.is_empty() {
                out.push('-');
            }
            prev_lower = false;
        } else if c.is_uppercase() {
            if prev_lower && !out.ends_with('-') {
                out.push('-');
            }
            out.extend(c.to_lowercase());
            prev_lower = false;
        } else {
            out.push(c);
            prev_lower = c.is_lowercase() || c.is_ascii_digit();
        }
    }
    out
}

pub(crate) fn check_header(bytes: &[u8]) -> Result<(), LoadError> {
    if bytes.is_empty() {
        return Err(LoadError::Empty);
    }
    if !bytes.starts_with(b"\0asm") {
        return Err(LoadError::NotWasm);
    }
    if wasmparser::Parser::is_core_wasm(bytes) {
        return Err(LoadError::CoreModule);
    }
    if !wasmparser::Parser::is_component(bytes) {
        return Err(LoadError::Invalid(
            "unknown WebAssembly binary version".into(),
        ));
    }
    Ok(())
}

impl Runtime {
    /// Checks, compiles (or loads from the compiled cache) and pre-links a component as
    /// the activity `spec.activity_type`.
    pub async fn load(
        &self,
        spec: ActivitySpec,
        bytes: &[u8],
    ) -> Result<ActivityComponent, LoadError> {
        self.load_shared(spec, bytes, None).await
    }

    /// Like [`Runtime::load`], taking the machine code from `shared` (what
    /// [`ActivityComponent::serialized`] gave on a host with the same
    /// [`Runtime::engine_key`]) when this host's cache does not have it. An artifact that
    /// does not load is ignored and the component compiled.
    ///
    /// `shared` is native code run in this process: pass only an artifact whose origin is
    /// authenticated (the registry seals artifacts with the fleet's secrets key).
    pub async fn load_shared(
        &self,
        spec: ActivitySpec,
        bytes: &[u8],
        shared: Option<Vec<u8>>,
    ) -> Result<ActivityComponent, LoadError> {
        check_header(bytes)?;
        let digest = ComponentDigest::of(bytes);
        let (component, origin) = self.compile(&digest, bytes, shared).await?;
        self.prepare(spec, digest, component, origin)
    }

    /// True when this host's compiled cache holds the code for `digest`.
    pub fn is_cached(&self, digest: &ComponentDigest) -> bool {
        self.cache.as_ref().is_some_and(|c| c.contains(digest))
    }

    async fn compile(
        &self,
        digest: &ComponentDigest,
        bytes: &[u8],
        shared: Option<Vec<u8>>,
    ) -> Result<(Component, CompiledFrom), LoadError> {
        let engine = self.engine.clone();
        let cache = self.cache.clone();
        let digest = digest.clone();
        let bytes = bytes.to_vec();
        let compilations = self.compilations.clone();
        // Compilation is CPU-bound and can take a second: keep it off the async threads.
        tokio::task::spawn_blocking(move || {
            if let Some(c) = cache.as_ref().and_then(|c| c.load(&engine, &digest)) {
                return Ok((c, CompiledFrom::LocalCache));
            }
            if let Some(artifact) = shared {
                match crate::cache::deserialize(&engine, cache.as_ref(), &digest, &artifact) {
                    Ok(c) => return Ok((c, CompiledFrom::Shared)),
                    Err(e) => {
                        tracing::warn!(%digest, error = %e, "ignoring a shared compiled artifact that does not load; compiling")
                    }
                }
            }
            let component = Component::new(&engine, &bytes)
                .map_err(|e| LoadError::Invalid(format!("{e:#}")))?;
            compilations.fetch_add(1, Ordering::Relaxed);
            if let Some(cache) = &cache {
                if let Err(e) = cache.store(&digest, &component) {
                    tracing::warn!(%digest, error = %e, "could not cache the compiled component");
                }
            }
            Ok((component, CompiledFrom::Compiled))
        })
        .await
        .map_err(|e| LoadError::Invalid(format!("compilation did not finish: {e}")))?
    }

    fn prepare(
        &self,
        spec: ActivitySpec,
        digest: ComponentDigest,
        component: Component,
        origin: CompiledFrom,
    ) -> Result<ActivityComponent, LoadError> {
        let ty = component.component_type();
        let mut type_only = Vec::new();
        for (import, item) in ty.imports(&self.engine) {
            if is_type_only(&item.ty, &self.engine) {
                // An interface of records and variants only: nothing to grant or call.
                type_only.push(import.to_string());
                continue;
            }
            match check_import(import, &spec.grants) {
                Ok(_) => {}
                Err(ImportRefusal::NotOffered { hint }) => {
                    return Err(LoadError::ImportNotOffered {
                        import: import.to_string(),
                        hint,
                    })
                }
                Err(ImportRefusal::NotGranted(capability)) => {
                    return Err(LoadError::ImportNotGranted {
                        import: import.to_string(),
                        activity: spec.activity_type.clone(),
                        capability,
                    })
                }
            }
        }

        let wanted = spec
            .export
            .clone()
            .unwrap_or_else(|| export_name_for(&spec.activity_type));
        let mut functions = Vec::new();
        for (name, item) in ty.exports(&self.engine) {
            match item.ty {
                ComponentItem::ComponentFunc(f) => functions.push((None, name.to_string(), f)),
                ComponentItem::ComponentInstance(inst) => {
                    for (fname, item) in inst.exports(&self.engine) {
                        if let ComponentItem::ComponentFunc(f) = item.ty {
                            functions.push((Some(name.to_string()), fname.to_string(), f));
                        }
                    }
                }
                _ => {}
            }
        }
        let chosen = functions
            .iter()
            .position(|(_, n, _)| *n == wanted || *n == spec.activity_type)
            .or_else(|| (functions.len() == 1 && spec.export.is_none()).then_some(0));
        let Some(index) = chosen else {
            return Err(LoadError::ExportNotFound {
                activity: spec.activity_type.clone(),
                expected: wanted,
                available: functions
                    .iter()
                    .map(|(i, n, _)| i.as_ref().map_or(n.clone(), |i| format!("{i}#{n}")))
                    .collect(),
            });
        };
        let (instance, name, func) = &functions[index];
        let export_name = instance
            .as_ref()
            .map_or(name.clone(), |i| format!("{i}#{name}"));
        let signature = Signature::of(func.params(), func.results().next().as_ref());
        signature
            .check_supported()
            .map_err(|source| LoadError::UnsupportedType {
                export: export_name.clone(),
                source,
            })?;

        let parent = match instance {
            Some(i) => Some(
                component
                    .get_export_index(None, i)
                    .ok_or_else(|| LoadError::Invalid(format!("export {i} vanished")))?,
            ),
            None => None,
        };
        let export = component
            .get_export_index(parent.as_ref(), name)
            .ok_or_else(|| LoadError::Invalid(format!("export {export_name} vanished")))?;
        let pre = self.instantiate_pre(&component, &type_only)?;
        let config = Arc::new(crate::capabilities::config::variables(&spec.grants));
        Ok(ActivityComponent {
            grants: Arc::new(spec.grants.clone()),
            config,
            spec,
            digest,
            pre,
            export,
            export_name,
            signature: Arc::new(signature),
            origin,
        })
    }
}

impl Runtime {
    /// Pre-links `component`, first defining an empty instance for each type-only interface
    /// it imports that the linker does not know yet (an author's own types package, say).
    fn instantiate_pre(
        &self,
        component: &Component,
        type_only: &[String],
    ) -> Result<InstancePre<ActivityState>, LoadError> {
        let link_error = |e: wasmtime::Error| LoadError::Link(format!("{e:#}"));
        {
            let linker = self
                .linker
                .read()
                .map_err(|_| LoadError::Link("linker lock poisoned".into()))?;
            match linker.instantiate_pre(component) {
                Ok(pre) => return Ok(pre),
                Err(e) if type_only.is_empty() => return Err(link_error(e)),
                Err(_) => {}
            }
        }
        let mut linker = self
            .linker
            .write()
            .map_err(|_| LoadError::Link("linker lock poisoned".into()))?;
        for name in type_only {
            // Already defined (by the host or an earlier component) is fine.
            let _ = linker.instance(name);
        }
        linker.instantiate_pre(component).map_err(link_error)
    }
}

/// True when an import is an instance that exports only types (no functions, no resources).
fn is_type_only(item: &ComponentItem, engine: &wasmtime::Engine) -> bool {
    match item {
        ComponentItem::ComponentInstance(inst) => inst
            .exports(engine)
            .all(|(_, e)| matches!(e.ty, ComponentItem::Type(_))),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activity_types_map_to_kebab_case_exports() {
        assert_eq!(export_name_for("ValidateUser"), "validate-user");
        assert_eq!(export_name_for("SendNotification"), "send-notification");
        assert_eq!(export_name_for("send_notification"), "send-notification");
        assert_eq!(export_name_for("HTTPGet"), "httpget");
        assert_eq!(export_name_for("v2Thing"), "v2-thing");
        assert_eq!(export_name_for("add"), "add");
    }

    #[test]
    fn headers_are_checked_before_compiling() {
        assert!(matches!(check_header(b""), Err(LoadError::Empty)));
        assert!(matches!(check_header(b"hello"), Err(LoadError::NotWasm)));
        assert!(matches!(
            check_header(b"\0asm\x01\0\0\0"),
            Err(LoadError::CoreModule)
        ));
        assert!(matches!(check_header(b"\0asm\x0d\0\x01\0"), Ok(())));
    }
}
