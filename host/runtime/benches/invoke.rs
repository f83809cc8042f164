//! `invoke`: the cost of calling a trivial export through the runtime (fresh store,
//! instantiation, JSON in and out) against the same function as plain Rust with the same
//! JSON handling, in one run; plus compile and cached-load time of each reference component.

use std::sync::Arc;

use activity_runtime::{ActivitySpec, CallContext, Runtime, RuntimeConfig};
use activity_sqlite::SqliteKeyValue;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use serde_json::{json, Value};

fn add_native(args: &[Value]) -> Value {
    let a = args[0]
        .as_u64()
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or(0);
    let b = args[1]
        .as_u64()
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or(0);
    json!(a.wrapping_add(b))
}

fn grants_for(name: &str) -> ActivitySpec {
    let mut spec = ActivitySpec::new(name);
    match name {
        "CreateUser" | "UpdateUser" | "DeleteUser" => {
            spec.grants.key_value_stores = vec!["users".into()]
        }
        "SendNotification" => spec.grants.allowed_hosts = vec!["hooks.invalid".into()],
        _ => {}
    }
    spec
}

fn invoke(c: &mut Criterion) {
    // As in `activity-host`: library errors (wasmtime creates one while dropping a store)
    // capture no backtrace, whatever RUST_BACKTRACE says; panics still do.
    std::env::set_var("RUST_LIB_BACKTRACE", "0");
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let rt = Runtime::new(&RuntimeConfig::default())
        .unwrap()
        .with_key_value(Arc::new(SqliteKeyValue::in_memory().unwrap()));
    let bytes = test_components::read(test_components::MISBEHAVING);
    let mut spec = ActivitySpec {
        export: Some("add".into()),
        ..ActivitySpec::new("Add")
    };
    spec.grants.allowed_hosts = vec!["hosts.invalid".into()];
    let add = tokio.block_on(rt.load(spec, &bytes)).unwrap();
    let validate = tokio
        .block_on(rt.load(
            grants_for("ValidateUser"),
            &test_components::read(test_components::VALIDATE_USER),
        ))
        .unwrap();

    let mut group = c.benchmark_group("invoke");
    group.bench_function("native/add", |b| {
        b.iter(|| {
            let args: Vec<Value> = serde_json::from_str("[2,3]").unwrap();
            let out = add_native(&args);
            serde_json::to_vec(&out).unwrap()
        })
    });
    group.bench_function("wasm/add", |b| {
        b.to_async(&tokio).iter(|| async {
            let args: Vec<Value> = serde_json::from_str("[2,3]").unwrap();
            let out = rt
                .invoke(&add, &args, CallContext::for_type("Add"))
                .await
                .unwrap();
            serde_json::to_vec(&out.output).unwrap()
        })
    });
    // What measuring a call's CPU time adds: the thread's CPU clock read around each poll
    // of the call (a call of `add` is polled once or twice).
    group.bench_function("meter/none", |b| {
        b.to_async(&tokio)
            .iter(|| async { std::hint::black_box(async { 1u64 }.await) })
    });
    group.bench_function("meter/cpu-timed", |b| {
        b.to_async(&tokio).iter(|| async {
            std::hint::black_box(activity_runtime::usage::CpuTimed::new(async { 1u64 }).await)
        })
    });
    let user = r#"[{"user_id":"user-123","email":"test@example.com","name":"Test User"}]"#;
    group.bench_function("wasm/validate-user", |b| {
        b.to_async(&tokio).iter(|| async {
            let args: Vec<Value> = serde_json::from_str(user).unwrap();
            let out = rt
                .invoke(&validate, &args, CallContext::for_type("ValidateUser"))
                .await
                .unwrap();
            serde_json::to_vec(&out.output).unwrap()
        })
    });
    group.finish();

    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    for (name, path) in test_components::REFERENCE_ACTIVITIES {
        let bytes = test_components::read(path);
        group.bench_function(format!("compile/{name}"), |b| {
            b.iter(|| wasmtime::component::Component::new(rt.engine(), &bytes).unwrap())
        });
        let dir = tempfile::tempdir().unwrap();
        let cached = Runtime::new(&RuntimeConfig {
            cache_dir: Some(dir.path().into()),
            ..Default::default()
        })
        .unwrap();
        tokio
            .block_on(cached.load(grants_for(name), &bytes))
            .unwrap();
        group.bench_function(format!("cached/{name}"), |b| {
            b.iter_batched(
                || (),
                |_| {
                    let a = tokio
                        .block_on(cached.load(grants_for(name), &bytes))
                        .unwrap();
                    assert!(a.loaded_from_cache());
                    a
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, invoke);
criterion_main!(benches);
