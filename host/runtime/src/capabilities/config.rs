//! `wasi:config/store` (from `wasmtime-wasi-config`): the values granted to the activity.

use wasmtime::component::Linker;
use wasmtime_wasi_config::{WasiConfig, WasiConfigVariables};

use crate::grants::{Capability, Grants};

/// The interfaces of this room, for the import check.
pub(crate) const OFFERS: &[(&str, Capability)] = &[("wasi:config/store", Capability::Config)];

/// The values a component reads, from its grants (built once per version): its config
/// values, and for each granted secret its placeholder (never the value).
pub fn variables(grants: &Grants) -> WasiConfigVariables {
    let placeholders: Vec<(String, String)> = grants
        .secrets
        .iter()
        .map(|name| (name.clone(), crate::egress::placeholder(name)))
        .collect();
    grants
        .config
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain(placeholders.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .collect()
}

/// Adds `wasi:config/store` to `linker`.
pub fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> WasiConfig<'_>,
) -> wasmtime::Result<()> {
    wasmtime_wasi_config::add_to_linker(linker, get)
}
