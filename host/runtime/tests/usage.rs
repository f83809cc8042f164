//! What a call cost, measured on real calls: CPU time counts a guest's work and not its
//! waiting, a failed call is measured too, outgoing requests and their body bytes are
//! counted, and fuel when the engine counts it.

use crate::support;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use activity_runtime::egress::{Egress, EgressSettings};
use activity_runtime::{kinds, ActivityLimits, CallContext, Grants, Runtime};
use serde_json::{json, Value};
use support::{load, misbehaving_spec, small_pool};
use test_support::HttpSink;

async fn metered(
    rt: &Runtime,
    export: &str,
    grants: Grants,
    limits: ActivityLimits,
    args: Value,
) -> (
    Result<activity_runtime::Invocation, activity_runtime::ActivityFailure>,
    activity_runtime::Usage,
) {
    let a = load(
        rt,
        misbehaving_spec(export, grants, limits),
        test_components::MISBEHAVING,
    )
    .await;
    rt.invoke_metered(
        &a,
        args.as_array().unwrap(),
        CallContext::for_type("Misbehaving"),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_time_counts_work_and_not_waiting_and_failed_calls_are_measured() {
    let rt = Runtime::new(&small_pool()).unwrap();
    // Spins until its time limit: a failed call, busy all along.
    let limits = ActivityLimits {
        max_execution_ms: 300,
        ..Default::default()
    };
    let (outcome, spin) = metered(&rt, "spin", Grants::default(), limits, json!([])).await;
    assert_eq!(outcome.unwrap_err().kind, kinds::TIME_LIMIT_EXCEEDED);
    assert!(spin.wall >= Duration::from_millis(300), "{spin:?}");
    assert!(spin.cpu >= Duration::from_millis(10), "{spin:?}");
    assert!(
        spin.cpu <= spin.wall + Duration::from_millis(50),
        "{spin:?}"
    );
    assert!(spin.peak_memory_bytes > 0, "{spin:?}");
    // Sleeps 5 x 60 ms: as long, nearly no CPU.
    let (outcome, sleep) = metered(
        &rt,
        "resume",
        Grants::default(),
        ActivityLimits::default(),
        json!([5, 60]),
    )
    .await;
    assert_eq!(outcome.unwrap().output, json!(0), "it starts at step 0");
    assert!(sleep.wall >= Duration::from_millis(300), "{sleep:?}");
    assert!(sleep.cpu < sleep.wall / 3, "{sleep:?}");
    println!(
        "spin: wall {:?} cpu {:?}; sleep: wall {:?} cpu {:?}",
        spin.wall, spin.cpu, sleep.wall, sleep.cpu
    );
    assert_eq!(sleep.fuel, None, "fuel is not counted by default");
    assert_eq!((sleep.egress_requests, sleep.egress_bytes), (0, 0));
}

#[tokio::test]
async fn outgoing_requests_and_their_bytes_are_counted_per_call() {
    const VALUE: &str = "a value the guest posts, 41 bytes long...";
    let sink = HttpSink::start(200).await;
    let port = sink.addr.port();
    let mut settings = EgressSettings::default();
    settings
        .resolve
        .insert("sink.test".into(), vec![IpAddr::from([127, 0, 0, 1])]);
    let rt = Runtime::new(&small_pool())
        .unwrap()
        .with_egress(Arc::new(Egress::new(settings)));
    let grants = Grants {
        allowed_hosts: vec![format!("sink.test:{port}"), format!("127.0.0.1:{port}")],
        config: BTreeMap::from([("K".to_string(), VALUE.to_string())]),
        ..Default::default()
    };
    let url = format!("http://sink.test:{port}/hook");
    let (outcome, usage) = metered(
        &rt,
        "post-config",
        grants.clone(),
        ActivityLimits::default(),
        json!([url, "K"]),
    )
    .await;
    assert_eq!(outcome.unwrap().output, json!(200));
    let sent = sink.requests()[0].body.len() as u64;
    assert_eq!(
        sent,
        format!("token={VALUE}").len() as u64,
        "{:?}",
        sink.requests()
    );
    assert_eq!((usage.egress_requests, usage.egress_bytes), (1, sent));
    // A refused request is not sent, so not counted.
    let (outcome, refused) = metered(
        &rt,
        "fetch",
        grants,
        ActivityLimits::default(),
        json!(["http://elsewhere.test/"]),
    )
    .await;
    assert!(outcome.is_err());
    assert_eq!((refused.egress_requests, refused.egress_bytes), (0, 0));
}

#[tokio::test]
async fn fuel_is_counted_when_the_engine_counts_it() {
    let mut config = small_pool();
    config.engine.fuel = true;
    let rt = Runtime::new(&config).unwrap();
    let (outcome, small) = metered(
        &rt,
        "recurse",
        Grants::default(),
        ActivityLimits::default(),
        json!([10]),
    )
    .await;
    outcome.unwrap();
    let (outcome, large) = metered(
        &rt,
        "recurse",
        Grants::default(),
        ActivityLimits::default(),
        json!([10_000]),
    )
    .await;
    outcome.unwrap();
    let (small, large) = (small.fuel.unwrap(), large.fuel.unwrap());
    assert!(small > 0 && large > small, "{small} {large}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_waits_for_the_memory_budget_and_gives_up_retryably() {
    const MIB: u64 = 1 << 20;
    let rt = Arc::new(
        Runtime::new(&small_pool())
            .unwrap()
            .with_memory_budget(Some(200 * MIB)),
    );
    let limits = |ms| ActivityLimits {
        max_memory_bytes: 128 * MIB,
        max_execution_ms: ms,
        ..Default::default()
    };
    // One call limited to 128 MiB sleeps a second: 72 MiB of the budget are left.
    let sleeper = load(
        &rt,
        misbehaving_spec("resume", Grants::default(), limits(30_000)),
        test_components::MISBEHAVING,
    )
    .await;
    let first = tokio::spawn({
        let rt = rt.clone();
        async move {
            rt.invoke(
                &sleeper,
                &[json!(10), json!(100)],
                CallContext::for_type("Misbehaving"),
            )
            .await
        }
    });
    test_support::eventually(Duration::from_secs(30), || async {
        (rt.memory_reserved() == 128 * MIB).then_some(())
    })
    .await
    .expect("the first call reserves its limit");
    // Another of 128 MiB waits its time limit for the budget, then fails retryably.
    let (outcome, usage) =
        metered(&rt, "resume", Grants::default(), limits(300), json!([1, 1])).await;
    let refused = outcome.unwrap_err();
    assert_eq!(refused.kind, kinds::MEMORY_BUDGET_EXHAUSTED, "{refused:?}");
    assert!(!refused.non_retryable);
    assert!(refused.message.contains("200 MiB"), "{refused}");
    assert_eq!(usage.peak_memory_bytes, 0, "it never ran");
    first.await.unwrap().unwrap();
    assert_eq!(rt.memory_reserved(), 0);
    // With the budget free again, it runs.
    let (outcome, _) = metered(
        &rt,
        "resume",
        Grants::default(),
        limits(30_000),
        json!([1, 1]),
    )
    .await;
    outcome.unwrap();
}
