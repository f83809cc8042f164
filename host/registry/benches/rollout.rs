//! `rollout`: what a rollout adds to choosing the version of one call. `immediate` is the
//! plain lookup; `pinned/cached` a run's later calls on the same host (the pin is in the
//! host's cache); `pinned/first_call` a run's first call of a type (one SQLite insert and
//! read of its pin); `ramp/first_call` the same with the ramp's choice.

use std::sync::atomic::{AtomicUsize, Ordering};

use activity_registry::rollout::RolloutPolicy;
use activity_registry::DeployRequest;
use activity_runtime::{ActivityCatalog, CallKey};
use criterion::{criterion_group, criterion_main, Criterion};

mod common;
use common::registry;

fn key(run: usize) -> CallKey {
    CallKey {
        workflow_id: Some(format!("user-{run}")),
        run_id: Some(format!("run-{run}")),
        activity_id: "1".into(),
    }
}

fn rollout(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let bytes = test_components::read(test_components::VALIDATE_USER);
    let mut group = c.benchmark_group("resolve");
    for (label, policy) in [
        ("immediate", RolloutPolicy::Immediate),
        ("pinned", RolloutPolicy::Pinned),
        ("ramp", RolloutPolicy::Ramp),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (registry, _) = registry(dir.path(), true);
        tokio.block_on(async {
            for (n, rollout) in [(0, RolloutPolicy::Immediate), (1, policy)] {
                let mut request = DeployRequest {
                    deployed_by: "bench".into(),
                    rollout: Some(rollout),
                    ramp_percent: Some(50),
                    ..Default::default()
                };
                request.grants.config.insert("n".into(), n.to_string());
                registry
                    .deploy("ValidateUser", bytes.clone(), request)
                    .await
                    .unwrap();
            }
        });
        let same = key(0);
        group.bench_function(format!("{label}/cached"), |b| {
            b.to_async(&tokio)
                .iter(|| async { registry.resolve("ValidateUser", &same).await.unwrap() })
        });
        if policy != RolloutPolicy::Immediate {
            let n = AtomicUsize::new(1);
            group.bench_function(format!("{label}/first_call"), |b| {
                b.to_async(&tokio).iter(|| async {
                    let k = key(n.fetch_add(1, Ordering::Relaxed));
                    registry.resolve("ValidateUser", &k).await.unwrap()
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, rollout);
criterion_main!(benches);
