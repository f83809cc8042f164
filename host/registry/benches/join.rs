//! `join`: a host joining a fleet whose PostgreSQL registry holds N activity types (N = 10,
//! 100, 300, 1,000; ValidateUser with a unique custom section each, so each its own digest
//! and its own compiled code), with an empty compiled directory of its own, as a new pod has.
//!
//! For each N, measured in the same run:
//! - a joining host with the fleet's secrets key: time to ready (`open`: every type served,
//!   described by its stored signature), its first call of a type (loading it, from the
//!   artifact the deploying host shared, then running it), and the background warm-up of all
//!   N (and how many it compiled: none);
//! - the baseline, what a host did before: every type compiled one after another before it
//!   serves (`load_all` on a host without the key; at N = 1,000 left out, about 2 minutes).
//!
//! `cargo bench -p activity-registry --bench join` (`JOIN_N=10,100` for other counts).

use std::sync::Arc;
use std::time::{Duration, Instant};

use activity_postgres::{connect, PostgresAccess, PostgresRegistryStore};
use activity_registry::access::SecretsKey;
use activity_registry::{DeployRequest, Registry};
use activity_runtime::RuntimeConfig;
use activity_runtime::{ActivityCatalog, CallContext, CallKey, CompiledFrom, Runtime};
use serde_json::json;

const KEY: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";
/// Counts above this have no baseline (each type compiled in turn).
const BASELINE_UP_TO: usize = 300;

struct Host {
    registry: Registry,
    runtime: Arc<Runtime>,
    _dir: tempfile::TempDir,
}

/// A host with an empty compiled directory over the fleet's store.
async fn host(url: &str, key: Option<&str>) -> Host {
    let dir = tempfile::tempdir().unwrap();
    let config = RuntimeConfig {
        cache_dir: Some(dir.path().join("compiled")),
        ..Default::default()
    };
    let runtime = Arc::new(Runtime::new(&config).unwrap());
    let pool = connect(url, 4).await.unwrap();
    let registry = Registry::new(
        Arc::new(PostgresRegistryStore::new(pool.clone())),
        runtime.clone(),
        50 << 20,
    )
    .with_access(
        Arc::new(PostgresAccess::new(pool)),
        key.map(|k| Arc::new(SecretsKey::from_hex(k).unwrap())),
    );
    Host {
        registry,
        runtime,
        _dir: dir,
    }
}

fn name(i: usize) -> String {
    format!("Join{i:04}")
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    std::env::set_var("RUST_LIB_BACKTRACE", "0");
    let counts: Vec<usize> = std::env::var("JOIN_N")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10, 100, 300, 1000]);
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let pg = test_support::Postgres::start().expect("postgres");
    let url = pg.url();
    let base = test_components::read(test_components::VALIDATE_USER);
    let user = [json!({"user_id": "u1", "email": "a@b.io", "name": "Ann"})];
    println!("join: a host with an empty compiled directory joins a fleet on PostgreSQL");
    println!("| types | ready | first call | warm-up of all | compiled | before: ready (all compiled in turn) | ready, ratio |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    tokio.block_on(async {
        let deployer = host(&url, Some(KEY)).await;
        let mut deployed = 0;
        for n in counts {
            while deployed < n {
                let bytes = test_support::with_custom_section(
                    &base,
                    "join",
                    format!("{deployed:08}").as_bytes(),
                );
                let request = DeployRequest {
                    deployed_by: "bench".into(),
                    ..Default::default()
                };
                deployer
                    .registry
                    .deploy(&name(deployed), bytes, request)
                    .await
                    .unwrap();
                deployed += 1;
            }
            let joining = host(&url, Some(KEY)).await;
            let started = Instant::now();
            assert!(joining.registry.open().await.unwrap().is_empty());
            let ready = started.elapsed();
            // The first call of a type in the middle of the list, before any warm-up.
            let pick = name(n / 2);
            let started = Instant::now();
            let call = CallKey {
                activity_id: "1".into(),
                ..Default::default()
            };
            let component = joining.registry.resolve(&pick, &call).await.unwrap();
            let output = joining
                .runtime
                .invoke(&component, &user, CallContext::for_type(&pick))
                .await
                .unwrap()
                .output;
            let first_call = started.elapsed();
            assert_eq!(output["valid"], json!(true));
            assert_eq!(component.compiled_from(), CompiledFrom::Shared);
            let started = Instant::now();
            assert!(joining.registry.warm_up().await.is_empty());
            let warm_up = started.elapsed();
            let compiled = joining.runtime.compilations();
            let baseline = if n <= BASELINE_UP_TO {
                let before = host(&url, None).await;
                let started = Instant::now();
                assert!(before.registry.load_all().await.unwrap().is_empty());
                Some(started.elapsed())
            } else {
                None
            };
            println!(
                "| {n} | {} | {} | {} | {compiled} | {} | {} |",
                ms(ready),
                ms(first_call),
                ms(warm_up),
                baseline.map_or("-".into(), ms),
                baseline.map_or("-".into(), |b| format!(
                    "{:.0}x faster",
                    b.as_secs_f64() / ready.as_secs_f64()
                )),
            );
        }
    });
}
