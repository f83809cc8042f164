//! Components the runtime must refuse, each with its own clear error, and the compiled cache.

use crate::support;

use activity_runtime::{ActivitySpec, LoadError, Runtime, RuntimeConfig};

use support::{reference_spec, runtime};

async fn refuse(spec: ActivitySpec, bytes: &[u8]) -> LoadError {
    match runtime().load(spec, bytes).await {
        Ok(_) => panic!("loaded a component that must be refused"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn empty_garbage_and_core_modules_are_refused() {
    assert!(matches!(
        refuse(ActivitySpec::new("A"), b"").await,
        LoadError::Empty
    ));
    assert!(matches!(
        refuse(ActivitySpec::new("A"), b"MZ\x90\0garbage").await,
        LoadError::NotWasm
    ));
    let core = refuse(ActivitySpec::new("A"), b"\0asm\x01\0\0\0").await;
    assert!(matches!(core, LoadError::CoreModule));
    assert!(core.to_string().contains("wasm32-wasip2"), "{core}");
    let truncated = test_components::read(test_components::VALIDATE_USER);
    let err = refuse(
        ActivitySpec::new("ValidateUser"),
        &truncated[..truncated.len() / 2],
    )
    .await;
    assert!(matches!(err, LoadError::Invalid(_)), "{err}");
}

#[tokio::test]
async fn imports_the_host_does_not_offer_are_refused() {
    // Granted the store, so what is left is the interface the host lacks.
    let mut spec = ActivitySpec::new("Touch");
    spec.grants.key_value_stores = vec!["counters".into()];
    let err = refuse(spec, &test_components::read(test_components::FORBIDDEN)).await;
    let LoadError::ImportNotOffered { import, .. } = &err else {
        panic!("{err}")
    };
    assert!(import.starts_with("wasi:keyvalue/atomics"), "{err}");
    assert!(
        err.to_string()
            .contains("only wasi:keyvalue/store is offered"),
        "{err}"
    );
}

#[tokio::test]
async fn capabilities_not_granted_are_refused() {
    let err = refuse(
        ActivitySpec::new("CreateUser"),
        &test_components::read(test_components::CREATE_USER),
    )
    .await;
    assert!(matches!(err, LoadError::ImportNotGranted { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("wasi:keyvalue/store")
            && text.contains("CreateUser")
            && text.contains("key_value_stores"),
        "{text}"
    );

    // Its notifications store granted, outgoing HTTP not.
    let mut notifier = ActivitySpec::new("SendNotification");
    notifier.grants.key_value_stores = vec!["notifications".into()];
    let err = refuse(
        notifier,
        &test_components::read(test_components::SEND_NOTIFICATION),
    )
    .await;
    assert!(
        err.to_string().contains("wasi:http/outgoing-handler"),
        "{err}"
    );
}

#[tokio::test]
async fn a_missing_export_lists_what_is_there() {
    // The component has one function, so any type name maps to it; a named export must exist.
    let spec = ActivitySpec {
        export: Some("charge-card".into()),
        ..ActivitySpec::new("ChargeCard")
    };
    let err = refuse(spec, &test_components::read(test_components::VALIDATE_USER)).await;
    let LoadError::ExportNotFound { available, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(available, &["validate-user".to_string()]);
}

#[tokio::test]
async fn a_single_function_component_serves_any_activity_name() {
    let rt = runtime();
    let bytes = test_components::read(test_components::VALIDATE_USER);
    let a = rt
        .load(ActivitySpec::new("CheckUser"), &bytes)
        .await
        .unwrap();
    assert_eq!(a.export_name(), "validate-user");
    assert_eq!(a.signature().params[0].name, "user");
}

#[tokio::test]
async fn compiled_components_are_cached_by_digest() {
    let dir = tempfile::tempdir().unwrap();
    let config = RuntimeConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        ..support::small_pool()
    };
    let bytes = test_components::read(test_components::CREATE_USER);

    let first = Runtime::new(&config).unwrap();
    let a = first
        .load(reference_spec("CreateUser"), &bytes)
        .await
        .unwrap();
    assert!(!a.loaded_from_cache());
    assert_eq!(first.compilations(), 1);
    drop(first);

    // A restarted host loads the same bytes without compiling.
    let second = Runtime::new(&config).unwrap();
    let b = second
        .load(reference_spec("CreateUser"), &bytes)
        .await
        .unwrap();
    assert!(b.loaded_from_cache());
    assert_eq!(second.compilations(), 0);
    assert_eq!(a.digest(), b.digest());
    assert!(a.digest().as_str().starts_with("sha256:"));

    // A corrupt artifact is ignored and replaced by a fresh compilation. The loaded
    // component maps its artifact, so it goes first, and the file is replaced, not rewritten.
    drop((b, second));
    for entry in walk(dir.path()) {
        let tmp = entry.with_extension("corrupt");
        std::fs::write(&tmp, b"corrupt").unwrap();
        std::fs::rename(&tmp, &entry).unwrap();
    }
    let third = Runtime::new(&config).unwrap();
    let c = third
        .load(reference_spec("CreateUser"), &bytes)
        .await
        .unwrap();
    assert!(!c.loaded_from_cache());
    assert_eq!(third.compilations(), 1);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
