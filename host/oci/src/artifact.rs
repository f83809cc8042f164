//! The CNCF "Wasm OCI artifact" layout: one `application/wasm` layer and a config of media
//! type `application/vnd.wasm.config.v0+json` naming the component's imports and exports
//! (the layout `wkg`, Spin and wasmCloud use).
//!
//! The config is built here from the component's own import and export sections, read with
//! `wasmparser`; the `oci-wasm` crate would do the same through a second `wit-component`
//! version, which this workspace would then compile for a list of names.

use std::collections::BTreeMap;

use oci_client::client::{Config, ImageLayer};
use oci_client::manifest::{OciDescriptor, OciImageManifest};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wasmparser::{ComponentExternalKind, ComponentTypeRef, Parser, Payload};

use crate::OciError;

/// The manifest media type of an artifact.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The config media type of a Wasm artifact.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// The media type of the component layer.
pub const LAYER_MEDIA_TYPE: &str = "application/wasm";
/// The layer annotation OCI clients (oras) use as the file name on pull.
pub const TITLE_ANNOTATION: &str = "org.opencontainers.image.title";

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The component section of the config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentSummary {
    /// The component's top-level exports (`activity-host:users/validate@0.1.0`, functions).
    pub exports: Vec<String>,
    /// Its top-level imports (`wasi:http/outgoing-handler@0.2.12`, ...).
    pub imports: Vec<String>,
    /// The world it targets, when known.
    pub target: Option<String>,
}

/// The config blob of a Wasm artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WasmConfig {
    /// RFC 3339 time of the push, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Who built it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Always `wasm`.
    pub architecture: String,
    /// `wasip2` for a component.
    pub os: String,
    /// The digests of the manifest's layers, in order.
    pub layer_digests: Vec<String>,
    /// The component's imports and exports.
    pub component: Option<ComponentSummary>,
}

/// The top-level imports and exports of a component (instances and functions).
pub fn summarize(bytes: &[u8]) -> Result<ComponentSummary, OciError> {
    if !Parser::is_component(bytes) {
        return Err(OciError::NotAComponent(
            "the file is not a WebAssembly component (a core module or something else)".into(),
        ));
    }
    let mut summary = ComponentSummary {
        exports: Vec::new(),
        imports: Vec::new(),
        target: None,
    };
    // Nested modules and components have sections of their own; only depth 0 counts.
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| OciError::NotAComponent(e.to_string()))?;
        match payload {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    let import = import.map_err(|e| OciError::NotAComponent(e.to_string()))?;
                    if matches!(
                        import.ty,
                        ComponentTypeRef::Instance(_) | ComponentTypeRef::Func(_)
                    ) {
                        summary.imports.push(import.name.name.to_string());
                    }
                }
            }
            Payload::ComponentExportSection(reader) if depth == 0 => {
                for export in reader {
                    let export = export.map_err(|e| OciError::NotAComponent(e.to_string()))?;
                    if matches!(
                        export.kind,
                        ComponentExternalKind::Instance | ComponentExternalKind::Func
                    ) {
                        summary.exports.push(export.name.name.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    Ok(summary)
}

/// Everything a push uploads: the layer, the config and the manifest's bytes.
pub struct Packed {
    /// The component layer.
    pub layer: ImageLayer,
    /// The config blob.
    pub config: Config,
    /// The manifest as it is uploaded (its sha256 is the manifest digest).
    pub manifest: Vec<u8>,
    /// The manifest's descriptor of the config (digest to upload it under).
    pub config_digest: String,
    /// The layer's digest (equal to the component digest the host records).
    pub layer_digest: String,
}

/// Packs `bytes` as a Wasm artifact: the config names its imports and exports, the layer
/// carries `title` (the file name oras and other clients use on pull), the manifest carries
/// `annotations`.
pub fn pack(
    bytes: Vec<u8>,
    title: &str,
    created: Option<String>,
    annotations: BTreeMap<String, String>,
) -> Result<Packed, OciError> {
    let component = summarize(&bytes)?;
    let layer_digest = sha256_digest(&bytes);
    let config = WasmConfig {
        created,
        author: None,
        architecture: "wasm".into(),
        os: "wasip2".into(),
        layer_digests: vec![layer_digest.clone()],
        component: Some(component),
    };
    let config = Config {
        data: serde_json::to_vec(&config)
            .map_err(|e| OciError::Invalid(e.to_string()))?
            .into(),
        media_type: CONFIG_MEDIA_TYPE.into(),
        annotations: None,
    };
    let layer = ImageLayer {
        data: bytes.into(),
        media_type: LAYER_MEDIA_TYPE.into(),
        annotations: Some(BTreeMap::from([(
            TITLE_ANNOTATION.to_string(),
            title.to_string(),
        )])),
    };
    let mut manifest = OciImageManifest::build(
        std::slice::from_ref(&layer),
        &config,
        (!annotations.is_empty()).then_some(annotations),
    );
    manifest.media_type = Some(MANIFEST_MEDIA_TYPE.into());
    let config_digest = manifest.config.digest.clone();
    let manifest = serde_json::to_vec(&manifest).map_err(|e| OciError::Invalid(e.to_string()))?;
    Ok(Packed {
        layer,
        config,
        manifest,
        config_digest,
        layer_digest,
    })
}

/// The one `application/wasm` layer of a pulled manifest. Any config media type is taken
/// (artifacts pushed by generic clients often carry an empty or unknown config); the layers
/// must be exactly one Wasm layer.
pub fn wasm_layer(manifest: &OciImageManifest) -> Result<&OciDescriptor, OciError> {
    match manifest.layers.as_slice() {
        [layer] if layer.media_type == LAYER_MEDIA_TYPE => Ok(layer),
        [layer] => Err(OciError::NotWasm(format!(
            "its layer has media type {:?}, not {LAYER_MEDIA_TYPE:?}",
            layer.media_type
        ))),
        layers => Err(OciError::NotWasm(format!(
            "it has {} layers; a Wasm artifact has exactly one {LAYER_MEDIA_TYPE:?} layer",
            layers.len()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_component_lists_its_interfaces_and_a_module_is_refused() {
        let bytes = std::fs::read(test_components::SEND_NOTIFICATION).unwrap();
        let summary = summarize(&bytes).unwrap();
        assert!(
            summary
                .imports
                .iter()
                .any(|i| i.starts_with("wasi:http/outgoing-handler@")),
            "{summary:?}"
        );
        assert!(summary.exports == ["send-notification"], "{summary:?}");
        assert!(matches!(
            summarize(b"\0asm\x01\0\0\0"),
            Err(OciError::NotAComponent(_))
        ));
    }

    #[test]
    fn a_packed_artifact_names_its_layer_in_config_and_manifest() {
        let bytes = std::fs::read(test_components::VALIDATE_USER).unwrap();
        let packed = pack(bytes.clone(), "validate.wasm", None, BTreeMap::new()).unwrap();
        assert_eq!(packed.layer_digest, sha256_digest(&bytes));
        let config: WasmConfig = serde_json::from_slice(&packed.config.data).unwrap();
        assert_eq!(config.layer_digests, vec![packed.layer_digest.clone()]);
        assert_eq!(config.os, "wasip2");
        let manifest: OciImageManifest = serde_json::from_slice(&packed.manifest).unwrap();
        assert_eq!(manifest.config.media_type, CONFIG_MEDIA_TYPE);
        assert_eq!(manifest.config.digest, sha256_digest(&packed.config.data));
        assert_eq!(wasm_layer(&manifest).unwrap().digest, packed.layer_digest);
        assert_eq!(
            wasm_layer(&manifest).unwrap().annotations.as_ref().unwrap()[TITLE_ANNOTATION],
            "validate.wasm"
        );
    }
}
