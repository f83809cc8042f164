//! Guests that misbehave: each gets the expected failure, and the runtime serves a normal
//! call right after.

use crate::support;

use std::time::{Duration, Instant};

use activity_runtime::{kinds, ActivityLimits, CallContext, Grants, Runtime};
use serde_json::json;
use support::{call, load, misbehaving, misbehaving_spec, runtime};
use test_support::HttpSink;

/// Keeps the heartbeats a guest sends.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<Option<String>>>);

impl activity_runtime::HeartbeatSink for Recorder {
    fn heartbeat(&self, details: Option<String>) {
        self.0.lock().unwrap().push(details);
    }
}

/// Asserts the runtime still serves a normal call.
async fn still_serves(rt: &Runtime) {
    let add = misbehaving(rt, "add", Grants::default()).await;
    assert_eq!(call(rt, &add, json!([2, 3])).await.unwrap(), json!(5));
}

/// Whether a time-limit failure quotes a limit of at most 200 ms (`None`: no limit quoted).
fn limit_quoted(message: &str) -> Option<bool> {
    let ms = message.split("limit of ").nth(1)?.split(' ').next()?;
    Some(ms.parse::<u64>().ok()? <= 200)
}

async fn with_limits(
    rt: &Runtime,
    export: &str,
    limits: ActivityLimits,
) -> activity_runtime::ActivityComponent {
    load(
        rt,
        misbehaving_spec(export, Grants::default(), limits),
        test_components::MISBEHAVING,
    )
    .await
}

#[tokio::test]
async fn a_trap_is_a_retryable_failure_quoting_the_panic() {
    let rt = runtime();
    let a = misbehaving(&rt, "trap", Grants::default()).await;
    let err = call(&rt, &a, json!(["boom at step 3"])).await.unwrap_err();
    assert_eq!(err.kind, kinds::GUEST_TRAP);
    assert!(!err.non_retryable);
    assert!(err.message.contains("boom at step 3"), "{}", err.message);
    still_serves(&rt).await;
}

#[tokio::test]
async fn an_endless_loop_is_stopped_at_its_time_limit() {
    let rt = runtime();
    let a = with_limits(
        &rt,
        "spin",
        ActivityLimits {
            max_execution_ms: 300,
            ..Default::default()
        },
    )
    .await;
    let started = Instant::now();
    let err = call(&rt, &a, json!([])).await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.kind, kinds::TIME_LIMIT_EXCEEDED);
    assert!(!err.non_retryable);
    // Stopped by its own limit (the failure names it), and not before it.
    assert!(err.message.contains("limit of 300 ms"), "{}", err.message);
    assert!(
        took >= Duration::from_millis(300),
        "stopped early: {took:?}"
    );
    still_serves(&rt).await;
}

#[tokio::test]
async fn the_callers_deadline_shortens_the_time_limit() {
    let rt = runtime();
    let a = misbehaving(&rt, "spin", Grants::default()).await;
    let mut ctx = CallContext::for_type("Misbehaving");
    ctx.info.deadline = Some(std::time::SystemTime::now() + Duration::from_millis(200));
    let err = rt.invoke(&a, &[], ctx).await.unwrap_err();
    assert_eq!(err.kind, kinds::TIME_LIMIT_EXCEEDED);
    // The limit it ran under is the caller's remaining time, not the activity's own.
    assert_eq!(limit_quoted(&err.message), Some(true), "{}", err.message);
}

#[tokio::test(flavor = "current_thread")]
async fn a_looping_guest_does_not_block_other_tasks_on_its_thread() {
    // On a single-threaded runtime, a timer task must still tick while the guest spins.
    let rt = runtime();
    let a = with_limits(
        &rt,
        "spin",
        ActivityLimits {
            max_execution_ms: 500,
            ..Default::default()
        },
    )
    .await;
    let ticks = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counter = ticks.clone();
    let ticker = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    let err = call(&rt, &a, json!([])).await.unwrap_err();
    ticker.abort();
    assert_eq!(err.kind, kinds::TIME_LIMIT_EXCEEDED);
    assert!(
        ticks.load(std::sync::atomic::Ordering::Relaxed) >= 5,
        "the guest starved the thread"
    );
}

#[tokio::test]
async fn unbounded_allocation_hits_the_memory_limit() {
    let rt = runtime();
    let limits = ActivityLimits {
        max_memory_bytes: 32 << 20,
        ..Default::default()
    };
    let a = with_limits(&rt, "allocate", limits).await;
    let err = call(&rt, &a, json!([1])).await.unwrap_err();
    assert_eq!(err.kind, kinds::MEMORY_LIMIT_EXCEEDED, "{err}");
    assert!(err.non_retryable);
    still_serves(&rt).await;
}

#[tokio::test]
async fn memory_use_is_reported_and_capped() {
    let rt = runtime();
    let a = misbehaving(&rt, "add", Grants::default()).await;
    let inv = rt
        .invoke(
            &a,
            &[json!(1), json!(2)],
            CallContext::for_type("Misbehaving"),
        )
        .await
        .unwrap();
    assert!(inv.peak_memory_bytes > 0);
    assert!(inv.peak_memory_bytes <= ActivityLimits::default().max_memory_bytes);
}

#[tokio::test]
async fn unbounded_recursion_is_a_stack_overflow() {
    let rt = runtime();
    let a = misbehaving(&rt, "recurse", Grants::default()).await;
    assert_eq!(call(&rt, &a, json!([10])).await.unwrap(), json!(10));
    let err = call(&rt, &a, json!([u64::MAX])).await.unwrap_err();
    assert_eq!(err.kind, kinds::STACK_OVERFLOW, "{err}");
    assert!(err.non_retryable);
    still_serves(&rt).await;
}

#[tokio::test]
async fn a_huge_output_is_refused() {
    let rt = runtime();
    let limits = ActivityLimits {
        max_output_bytes: 1 << 20,
        ..Default::default()
    };
    let a = with_limits(&rt, "huge-output", limits).await;
    assert_eq!(
        call(&rt, &a, json!([10])).await.unwrap(),
        json!("xxxxxxxxxx")
    );
    let err = call(&rt, &a, json!([2 << 20])).await.unwrap_err();
    assert_eq!(err.kind, kinds::OUTPUT_TOO_LARGE);
    assert!(err.message.contains("over its limit"), "{}", err.message);
    still_serves(&rt).await;
}

#[tokio::test]
async fn host_files_are_out_of_reach() {
    let rt = runtime();
    let a = misbehaving(&rt, "read-file", Grants::default()).await;
    for path in ["/etc/passwd", "Cargo.toml", "../../../../etc/hostname", "."] {
        // The guest's `result<string, string>` error becomes a failure carrying its message.
        let err = call(&rt, &a, json!([path])).await.unwrap_err();
        assert_eq!(err.kind, kinds::ACTIVITY_ERROR, "read {path}: {err}");
        assert!(
            err.message.contains("No such file or directory"),
            "read {path}: {err}"
        );
    }
}

#[tokio::test]
async fn sockets_are_linked_but_every_connection_is_denied() {
    let rt = runtime();
    // Something listens: only the sandbox can stop the guest from reaching it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let a = load(
        &rt,
        activity_runtime::ActivitySpec::new("Connect"),
        test_components::SOCKET,
    )
    .await;
    for target in [address.as_str(), "localhost:80", "8.8.8.8:53"] {
        let err = call(&rt, &a, json!([target])).await.unwrap_err();
        assert_eq!(err.kind, kinds::ACTIVITY_ERROR, "{target}: {err}");
    }
    listener.set_nonblocking(true).unwrap();
    assert!(listener.accept().is_err(), "a guest connection got through");
    still_serves(&rt).await;
}

#[tokio::test]
async fn the_environment_is_empty() {
    std::env::set_var("ACTIVITY_HOST_SECRET_FOR_TEST", "hunter2");
    let rt = runtime();
    let a = misbehaving(&rt, "read-env", Grants::default()).await;
    assert_eq!(call(&rt, &a, json!([])).await.unwrap(), json!([]));
}

#[tokio::test]
async fn outgoing_http_reaches_only_allowed_hosts() {
    let allowed = HttpSink::start(204).await;
    let other = HttpSink::start(204).await;
    let rt = runtime();
    let grants = Grants {
        allowed_hosts: vec![allowed.addr.to_string()],
        ..Default::default()
    };
    let a = misbehaving(&rt, "fetch", grants).await;
    assert_eq!(
        call(&rt, &a, json!([allowed.url("/ok")])).await.unwrap(),
        json!(204)
    );
    let refused = call(&rt, &a, json!([other.url("/secret")]))
        .await
        .unwrap_err();
    assert!(refused.message.contains("HttpRequestDenied"), "{refused}");
    assert!(
        other.requests().is_empty(),
        "a refused request reached its host"
    );
    assert_eq!(allowed.requests().len(), 1);
}

#[tokio::test]
async fn guest_failures_map_exactly() {
    let rt = runtime();
    let a = misbehaving(&rt, "fail", Grants::default()).await;
    let f = json!({"message": "card declined", "type": "PaymentDeclined", "non_retryable": true, "details": "{\"code\":51}"});
    let err = call(&rt, &a, json!([f])).await.unwrap_err();
    assert_eq!(err.kind, "PaymentDeclined");
    assert_eq!(err.message, "card declined");
    assert!(err.non_retryable);
    assert_eq!(err.details, Some(json!({"code": 51})));

    let plain =
        json!({"message": "try later", "type": null, "non_retryable": false, "details": null});
    let err = call(&rt, &a, json!([plain])).await.unwrap_err();
    assert_eq!(err.kind, kinds::ACTIVITY_FAILURE);
    assert!(!err.non_retryable);
}

#[tokio::test]
async fn config_values_are_per_activity() {
    let rt = runtime();
    let mut grants = Grants::default();
    grants.config.insert("greeting".into(), "hello".into());
    let a = misbehaving(&rt, "config-get", grants).await;
    assert_eq!(
        call(&rt, &a, json!(["greeting"])).await.unwrap(),
        json!("hello")
    );
    assert_eq!(
        call(&rt, &a, json!(["missing"])).await.unwrap(),
        json!(null)
    );
    let b = misbehaving(&rt, "config-get", Grants::default()).await;
    assert_eq!(
        call(&rt, &b, json!(["greeting"])).await.unwrap(),
        json!(null)
    );
}

#[tokio::test]
async fn activity_info_and_heartbeats_reach_the_guest_and_back() {
    let rt = runtime();
    let info = misbehaving(&rt, "info", Grants::default()).await;
    let mut ctx = CallContext::for_type("Misbehaving");
    ctx.info.workflow_id = Some("wf-1".into());
    ctx.info.attempt = 3;
    let out = rt.invoke(&info, &[], ctx).await.unwrap().output;
    assert_eq!(out["workflow_id"], "wf-1");
    assert_eq!(out["attempt"], 3);
    assert_eq!(out["version"], info.digest().as_str());

    let hb = misbehaving(&rt, "heartbeat", Grants::default()).await;
    let recorder = std::sync::Arc::new(Recorder::default());
    let mut ctx = CallContext::for_type("Misbehaving");
    ctx.heartbeats = Some(recorder.clone());
    ctx.last_heartbeat_details = Some("{\"n\":7}".into());
    let out = rt.invoke(&hb, &[json!(2)], ctx).await.unwrap().output;
    assert_eq!(out, json!("{\"n\":7}"));
    assert_eq!(
        *recorder.0.lock().unwrap(),
        vec![Some("{\"n\":0}".into()), Some("{\"n\":1}".into())]
    );
}

#[tokio::test]
async fn cancellation_reaches_a_cooperative_guest() {
    let rt = std::sync::Arc::new(runtime());
    let a = std::sync::Arc::new(misbehaving(&rt, "spin-until-cancelled", Grants::default()).await);
    let recorder = std::sync::Arc::new(Recorder::default());
    let mut ctx = CallContext::for_type("Misbehaving");
    ctx.heartbeats = Some(recorder.clone());
    let cancel = ctx.cancellation.clone();
    let (rt2, a2) = (rt.clone(), a.clone());
    let running = tokio::spawn(async move { rt2.invoke(&a2, &[], ctx).await });
    // The guest heartbeats once before its loop: it runs.
    wait_until("the guest runs", || !recorder.0.lock().unwrap().is_empty()).await;
    assert!(!running.is_finished(), "it runs until cancelled");
    cancel.cancel();
    // It stops by itself and answers (an interrupted guest would be a failure).
    let out = running.await.unwrap().expect("the guest's own answer");
    assert!(out.output.as_u64().is_some(), "{}", out.output);
}

#[tokio::test]
async fn fuel_budgets_stop_long_computations() {
    let mut config = support::small_pool();
    config.engine.fuel = true;
    let rt = Runtime::new(&config).unwrap();
    let limits = ActivityLimits {
        fuel: Some(5_000_000),
        ..Default::default()
    };
    let a = with_limits(&rt, "spin", limits).await;
    let err = call(&rt, &a, json!([])).await.unwrap_err();
    assert_eq!(err.kind, kinds::FUEL_EXHAUSTED, "{err}");
    let add = with_limits(&rt, "add", limits).await;
    assert_eq!(call(&rt, &add, json!([1, 1])).await.unwrap(), json!(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_type_over_its_concurrency_cap_waits_for_a_turn_and_other_types_do_not() {
    let rt = std::sync::Arc::new(runtime());
    // Time limits far longer than the test: the turn is held until the test releases it,
    // so nothing here depends on how fast the machine runs.
    let capped = ActivityLimits {
        max_concurrent: 1,
        max_execution_ms: 600_000,
        ..Default::default()
    };
    let holder = std::sync::Arc::new(with_limits(&rt, "spin-until-cancelled", capped).await);
    let ctx = CallContext::for_type("Misbehaving");
    let release = ctx.cancellation.clone();
    let first = tokio::spawn({
        let (rt, holder) = (rt.clone(), holder.clone());
        async move { rt.invoke(&holder, &[], ctx).await }
    });
    wait_until("the first call holds the turn", || {
        rt.calls_running("Misbehaving") == 1
    })
    .await;
    // A call of the same type that cannot wait that long fails, retryable, without running.
    let short = with_limits(
        &rt,
        "add",
        ActivityLimits {
            max_concurrent: 1,
            max_execution_ms: 100,
            ..Default::default()
        },
    )
    .await;
    let err = call(&rt, &short, json!([1, 2])).await.unwrap_err();
    assert_eq!(err.kind, kinds::CONCURRENCY_LIMIT_REACHED, "{err}");
    assert!(!err.non_retryable);
    // Another type is not held up by it.
    let other = load(
        &rt,
        activity_runtime::ActivitySpec {
            activity_type: "Other".into(),
            ..misbehaving_spec("add", Grants::default(), ActivityLimits::default())
        },
        test_components::MISBEHAVING,
    )
    .await;
    assert_eq!(call(&rt, &other, json!([2, 3])).await.unwrap(), json!(5));
    // One that can wait queues for the turn, and runs only once the holder lets go.
    let patient = std::sync::Arc::new(with_limits(&rt, "add", capped).await);
    let second = tokio::spawn({
        let (rt, patient) = (rt.clone(), patient.clone());
        async move { call(&rt, &patient, json!([1, 2])).await }
    });
    wait_until("the second call waits for the turn", || {
        rt.calls_waiting("Misbehaving") == 1
    })
    .await;
    assert!(!first.is_finished(), "the holder still runs");
    assert!(!second.is_finished(), "the waiting call has not run");
    assert_eq!(rt.calls_running("Misbehaving"), 1);
    release.cancel();
    let rounds = first
        .await
        .unwrap()
        .expect("the holder stops when told")
        .output;
    assert!(rounds.as_u64().is_some(), "{rounds}");
    assert_eq!(second.await.unwrap().unwrap(), json!(3));
    assert_eq!(rt.calls_running("Misbehaving"), 0);
    assert_eq!(rt.calls_waiting("Misbehaving"), 0);
}

/// Waits for `done` to hold, failing the test after a minute (a deadline, not a pace).
async fn wait_until(what: &str, done: impl Fn() -> bool) {
    let held = test_support::eventually(Duration::from_secs(60), || {
        let now = done();
        async move { now.then_some(()) }
    })
    .await;
    assert!(held.is_some(), "{what}: not within a minute");
}
