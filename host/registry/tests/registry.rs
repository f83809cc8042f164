//! The registry with real components: deploy, no-op redeploy, swap, rollback, remove,
//! refused deploys that change nothing, and a restart that loads from the compiled cache.

use std::sync::Arc;

use activity_registry::{DeployRequest, Registry, RegistryError};
use activity_runtime::ActivityCatalog;
use activity_runtime::{Runtime, RuntimeConfig};
use activity_sqlite::SqliteRegistryStore;

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A registry as a host (re)starting on the same data directory builds it.
    fn registry(&self) -> (Registry, Arc<Runtime>) {
        let mut config = RuntimeConfig {
            cache_dir: Some(self.dir.path().join("compiled")),
            ..Default::default()
        };
        config.engine.max_instances = 16;
        let runtime = Arc::new(Runtime::new(&config).unwrap());
        let store = SqliteRegistryStore::open(
            &self.dir.path().join("registry.sqlite"),
            &self.dir.path().join("modules"),
        )
        .unwrap();
        (
            Registry::new(Arc::new(store), runtime.clone(), 50 << 20),
            runtime,
        )
    }
}

fn request() -> DeployRequest {
    DeployRequest {
        deployed_by: "test".into(),
        ..Default::default()
    }
}

fn bytes(path: &str) -> Vec<u8> {
    test_components::read(path)
}

#[tokio::test]
async fn deploy_swap_rollback_and_remove() {
    let f = Fixture::new();
    let (registry, _) = f.registry();
    let v1 = registry
        .deploy("Probe", bytes(test_components::VALIDATE_USER), request())
        .await
        .unwrap();
    assert!(v1.changed);
    assert_eq!(registry.get("Probe").unwrap().digest(), &v1.version.digest);

    // The same bytes with the same grants again: nothing changes.
    let again = registry
        .deploy("Probe", bytes(test_components::VALIDATE_USER), request())
        .await
        .unwrap();
    assert!(!again.changed);
    assert_eq!(again.version.seq, v1.version.seq);

    let v2 = registry
        .deploy(
            "Probe",
            bytes(test_components::DELETE_USER),
            DeployRequest {
                grants: activity_runtime::Grants {
                    key_value_stores: vec!["users".into()],
                    ..Default::default()
                },
                ..request()
            },
        )
        .await
        .unwrap();
    assert_ne!(v2.version.digest, v1.version.digest);
    assert_eq!(registry.get("Probe").unwrap().digest(), &v2.version.digest);
    // A call that started on v1 keeps v1 while v2 serves new calls.
    let details = registry.details("Probe").await.unwrap();
    assert_eq!(details.versions.len(), 2);
    assert_eq!(details.active_digest.as_ref(), Some(&v2.version.digest));

    let back = registry.rollback("Probe", None, "test").await.unwrap();
    assert_eq!(back.digest, v1.version.digest);
    assert_eq!(registry.get("Probe").unwrap().digest(), &v1.version.digest);
    let forward = registry
        .rollback("Probe", Some(v2.version.digest.as_str()), "test")
        .await
        .unwrap();
    assert_eq!(forward.digest, v2.version.digest);
    assert!(matches!(
        registry
            .rollback("Probe", Some("sha256:0000"), "test")
            .await,
        Err(RegistryError::VersionNotFound { .. })
    ));

    let listed = registry.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].active_digest, v2.version.digest);

    registry.remove("Probe").await.unwrap();
    assert!(registry.get("Probe").is_none());
    assert!(matches!(
        registry.details("Probe").await,
        Err(RegistryError::NotFound(_))
    ));
    assert!(matches!(
        registry.remove("Probe").await,
        Err(RegistryError::NotFound(_))
    ));
}

#[tokio::test]
async fn refused_deploys_change_nothing() {
    let f = Fixture::new();
    let (registry, _) = f.registry();
    let v1 = registry
        .deploy("Probe", bytes(test_components::VALIDATE_USER), request())
        .await
        .unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("Probe", vec![]),
        ("Probe", b"not wasm".to_vec()),
        ("Probe", b"\0asm\x01\0\0\0".to_vec()),
        ("Probe", bytes(test_components::FORBIDDEN)),
        // Needs a key-value grant it is not given.
        ("Probe", bytes(test_components::CREATE_USER)),
        ("bad name!", bytes(test_components::VALIDATE_USER)),
    ];
    for (name, body) in cases {
        let err = registry.deploy(name, body, request()).await.unwrap_err();
        assert!(!err.to_string().is_empty());
    }
    let small = Registry::new(
        Arc::new(
            SqliteRegistryStore::open(&f.dir.path().join("other.sqlite"), &f.dir.path().join("m2"))
                .unwrap(),
        ),
        f.registry().1,
        1000,
    );
    assert!(matches!(
        small
            .deploy("Probe", bytes(test_components::VALIDATE_USER), request())
            .await,
        Err(RegistryError::TooLarge { .. })
    ));

    assert_eq!(registry.get("Probe").unwrap().digest(), &v1.version.digest);
    assert_eq!(registry.details("Probe").await.unwrap().versions.len(), 1);
    assert_eq!(registry.list().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_restarted_host_serves_the_same_versions_without_compiling() {
    let f = Fixture::new();
    let digest = {
        let (registry, _) = f.registry();
        registry
            .deploy("Probe", bytes(test_components::VALIDATE_USER), request())
            .await
            .unwrap();
        let v2 = registry
            .deploy(
                "Probe",
                bytes(test_components::DELETE_USER),
                DeployRequest {
                    grants: activity_runtime::Grants {
                        key_value_stores: vec!["users".into()],
                        ..Default::default()
                    },
                    ..request()
                },
            )
            .await
            .unwrap();
        registry.rollback("Probe", None, "test").await.unwrap();
        registry
            .deploy(
                "Other",
                bytes(test_components::SEND_NOTIFICATION),
                DeployRequest {
                    grants: activity_runtime::Grants {
                        allowed_hosts: vec!["hooks.invalid".into()],
                        key_value_stores: vec!["notifications".into()],
                        ..Default::default()
                    },
                    ..request()
                },
            )
            .await
            .unwrap();
        drop(v2);
        registry.get("Probe").unwrap().digest().clone()
    };
    let (restarted, runtime) = f.registry();
    let failures = restarted.load_all().await.unwrap();
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(restarted.get("Probe").unwrap().digest(), &digest);
    assert!(restarted.get("Other").unwrap().loaded_from_cache());
    assert_eq!(runtime.compilations(), 0, "a restart must not recompile");
    let mut names = restarted.names();
    names.sort();
    assert_eq!(names, ["Other", "Probe"]);
}

#[tokio::test]
async fn a_torn_component_file_is_refused_at_load_and_repaired_by_the_same_deploy() {
    let f = Fixture::new();
    let component = bytes(test_components::VALIDATE_USER);
    let digest = {
        let (registry, _) = f.registry();
        let deployed = registry
            .deploy("Probe", component.clone(), request())
            .await
            .unwrap();
        deployed.version.digest
    };
    // A crash or a disk left half the file.
    let file = f
        .dir
        .path()
        .join("modules")
        .join(format!("{}.wasm", digest.hex()));
    let whole = std::fs::read(&file).unwrap();
    std::fs::write(&file, &whole[..whole.len() / 2]).unwrap();

    let (restarted, _) = f.registry();
    let failures = restarted.load_all().await.unwrap();
    assert_eq!(failures.len(), 1, "{failures:?}");
    let message = failures[0].to_string();
    assert!(message.contains("does not hash to its digest"), "{message}");
    assert!(
        restarted.get("Probe").is_none(),
        "a torn component is served"
    );

    // The same deploy again writes the file whole and serves the version.
    let again = restarted
        .deploy("Probe", component, request())
        .await
        .unwrap();
    assert!(!again.changed, "the same version, not a new one");
    assert_eq!(std::fs::read(&file).unwrap(), whole);
    assert_eq!(restarted.get("Probe").unwrap().digest(), &digest);
    let (third, _) = f.registry();
    assert!(third.load_all().await.unwrap().is_empty());
}
