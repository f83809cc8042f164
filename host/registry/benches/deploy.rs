//! `deploy`: time from a deploy call's start to the first call served by the new version,
//! and the start of a host with 100 deployed activities from the compiled cache.

use std::sync::atomic::{AtomicUsize, Ordering};

use activity_registry::DeployRequest;
use activity_runtime::{ActivityCatalog, CallContext, Grants};
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;

mod common;
use common::registry;

/// A request whose config differs from the last one, so every deploy is a new version.
fn request(n: usize) -> DeployRequest {
    let mut grants = Grants::default();
    grants.config.insert("n".into(), n.to_string());
    DeployRequest {
        grants,
        deployed_by: "bench".into(),
        ..Default::default()
    }
}

fn deploy(c: &mut Criterion) {
    std::env::set_var("RUST_LIB_BACKTRACE", "0");
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let bytes = test_components::read(test_components::VALIDATE_USER);
    let user = [json!({"user_id": "u", "email": "a@b.io", "name": "N"})];
    let mut group = c.benchmark_group("deploy_to_serve");
    group.sample_size(20);
    for (label, cache) in [("compile", false), ("cached", true)] {
        let dir = tempfile::tempdir().unwrap();
        let (registry, runtime) = registry(dir.path(), cache);
        let n = AtomicUsize::new(0);
        group.bench_function(format!("ValidateUser/{label}"), |b| {
            b.to_async(&tokio).iter(|| async {
                let outcome = registry
                    .deploy(
                        "ValidateUser",
                        bytes.clone(),
                        request(n.fetch_add(1, Ordering::Relaxed)),
                    )
                    .await
                    .unwrap();
                assert!(outcome.changed);
                let component = registry.get("ValidateUser").unwrap();
                runtime
                    .invoke(&component, &user, CallContext::for_type("ValidateUser"))
                    .await
                    .unwrap()
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("start");
    group.sample_size(10);
    let dir = tempfile::tempdir().unwrap();
    {
        let (registry, _) = registry(dir.path(), true);
        tokio.block_on(async {
            for i in 0..100 {
                registry
                    .deploy(&format!("Activity{i:03}"), bytes.clone(), request(i))
                    .await
                    .unwrap();
            }
        });
    }
    group.bench_function("100_activities_from_cache", |b| {
        b.iter(|| {
            let (registry, runtime) = registry(dir.path(), true);
            let failures = tokio.block_on(registry.load_all()).unwrap();
            assert!(failures.is_empty());
            assert_eq!(registry.names().len(), 100);
            assert_eq!(runtime.compilations(), 0);
        })
    });
    group.finish();
}

criterion_group!(benches, deploy);
criterion_main!(benches);
