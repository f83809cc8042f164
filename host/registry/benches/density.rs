//! `density`: 1,000 distinct activity types on one host. Deploys 1,000 different components
//! (ValidateUser with a unique custom section each, so each has its own digest and its own
//! compiled artifact), then measures, from the compiled cache: the start of a host (load every
//! active version), the memory that adds, and the cost of a call when calls are spread over all
//! 1,000 types against calls to one type, in the same run.
//!
//! `cargo bench -p activity-registry --bench density` (set `DENSITY_N` for another count).

use std::time::{Duration, Instant};

use activity_registry::DeployRequest;
use activity_runtime::{ActivityCatalog, CallContext};
use serde_json::json;

mod common;
use common::{registry, registry_with};

/// The component with a custom section appended: same code, different bytes.
fn distinct(base: &[u8], i: usize) -> Vec<u8> {
    test_support::with_custom_section(base, "density", format!("{i:08}").as_bytes())
}

/// Resident set size of this process, in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    std::env::set_var("RUST_LIB_BACKTRACE", "0");
    // `cargo bench` passes `--bench`; nothing to filter here.
    let n: usize = std::env::var("DENSITY_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let base = test_components::read(test_components::VALIDATE_USER);
    let dir = tempfile::tempdir().unwrap();

    let started = Instant::now();
    {
        let (registry, _) = registry(dir.path(), true);
        tokio.block_on(async {
            for i in 0..n {
                let outcome = registry
                    .deploy(
                        &format!("Activity{i:04}"),
                        distinct(&base, i),
                        DeployRequest {
                            deployed_by: "density".into(),
                            ..Default::default()
                        },
                    )
                    .await
                    .unwrap();
                assert!(outcome.changed);
            }
        });
    }
    let deploy_all = started.elapsed();

    // Start from the compiled cache, three times; keep the last registry.
    let mut starts = Vec::new();
    let mut rss_added = 0;
    let mut kept = None;
    for _ in 0..3 {
        drop(kept.take());
        let before = rss();
        let t = Instant::now();
        let (registry, runtime) = registry(dir.path(), true);
        let failures = tokio.block_on(registry.load_all()).unwrap();
        starts.push(t.elapsed());
        assert!(failures.is_empty());
        assert_eq!(registry.names().len(), n);
        assert_eq!(runtime.compilations(), 0, "loaded from the compiled cache");
        rss_added = rss().saturating_sub(before);
        kept = Some((registry, runtime));
    }
    let (registry, runtime) = kept.unwrap();

    // Calls: all on one type, then round robin over every type; with the default pool,
    // then with a pool of more slots than types (each type keeps a warm slot).
    let (one, spread) = time_calls(&tokio, &registry, &runtime, n);
    let rss_total = rss();
    drop((registry, runtime));
    let sized = n as u32 + 64;
    let (registry, runtime) = registry_with(dir.path(), true, |c| c.engine.max_instances = sized);
    tokio.block_on(registry.load_all()).unwrap();
    let (sized_one, sized_spread) = time_calls(&tokio, &registry, &runtime, n);
    let rss_sized = rss();

    println!("density: {n} distinct activity types (ValidateUser + a unique custom section each)");
    println!(
        "  deploy all (compile + store):       {:.1} s",
        deploy_all.as_secs_f64()
    );
    println!(
        "  start from compiled cache (median): {:.0} ms",
        median(starts).as_secs_f64() * 1000.0
    );
    println!(
        "  memory added by loading them:       {:.0} MiB",
        rss_added as f64 / (1 << 20) as f64
    );
    println!(
        "  process RSS after the calls:        {:.0} MiB",
        rss_total as f64 / (1 << 20) as f64
    );
    println!(
        "  call, one type (median):            {:.1} us",
        one.as_secs_f64() * 1e6
    );
    println!(
        "  call, spread over all (median):     {:.1} us ({:.2}x)",
        spread.as_secs_f64() * 1e6,
        spread.as_secs_f64() / one.as_secs_f64()
    );
    println!("  with runtime.engine.max_instances = {sized}:");
    println!(
        "  call, one type (median):            {:.1} us",
        sized_one.as_secs_f64() * 1e6
    );
    println!(
        "  call, spread over all (median):     {:.1} us ({:.2}x)",
        sized_spread.as_secs_f64() * 1e6,
        sized_spread.as_secs_f64() / sized_one.as_secs_f64()
    );
    println!(
        "  process RSS after the calls:        {:.0} MiB",
        rss_sized as f64 / (1 << 20) as f64
    );
}

/// Median call time on one type, then spread round robin over all `n` (each path warmed
/// up once first).
fn time_calls(
    tokio: &tokio::runtime::Runtime,
    registry: &activity_registry::Registry,
    runtime: &activity_runtime::Runtime,
    n: usize,
) -> (Duration, Duration) {
    let user = [json!({"user_id": "u", "email": "a@b.io", "name": "N"})];
    let components: Vec<_> = (0..n)
        .map(|i| registry.get(&format!("Activity{i:04}")).unwrap())
        .collect();
    let calls = 5 * n.max(200);
    let time = |pick: &dyn Fn(usize) -> usize| {
        let mut samples = Vec::with_capacity(calls);
        tokio.block_on(async {
            for k in 0..calls {
                let c = &components[pick(k)];
                let t = Instant::now();
                runtime
                    .invoke(c, &user, CallContext::for_type(&c.spec().activity_type))
                    .await
                    .unwrap();
                samples.push(t.elapsed());
            }
        });
        median(samples)
    };
    time(&|k| k % n);
    let one = time(&|_| 0);
    let spread = time(&|k| k % n);
    (one, spread)
}
