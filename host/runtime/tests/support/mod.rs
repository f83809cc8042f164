//! Helpers shared by the runtime's integration tests.
#![allow(dead_code)]

use std::sync::Arc;

use activity_runtime::{
    ActivityComponent, ActivityFailure, ActivityLimits, ActivitySpec, CallContext, Grants, Runtime,
    RuntimeConfig,
};
use activity_sqlite::SqliteKeyValue;
use serde_json::Value;

/// A runtime with an in-memory key-value store and no compiled cache.
pub fn runtime() -> Runtime {
    let kv = SqliteKeyValue::in_memory().expect("in-memory sqlite");
    Runtime::new(&small_pool())
        .expect("runtime")
        .with_key_value(Arc::new(kv))
}

/// A runtime configuration with a small instance pool: tests run many runtimes at once and
/// each pool reserves address space per slot.
pub fn small_pool() -> RuntimeConfig {
    let mut config = RuntimeConfig::default();
    config.engine.max_instances = 16;
    config
}

/// The reference activities' grants, as `activity-host dev` gives them.
pub fn reference_spec(activity_type: &str) -> ActivitySpec {
    let mut spec = ActivitySpec::new(activity_type);
    if matches!(activity_type, "CreateUser" | "UpdateUser" | "DeleteUser") {
        spec.grants.key_value_stores = vec!["users".into()];
    }
    if activity_type == "SendNotification" {
        spec.grants.key_value_stores = vec!["notifications".into()];
    }
    spec
}

/// Loads a built component as `spec`, panicking with the load error.
pub async fn load(rt: &Runtime, spec: ActivitySpec, path: &str) -> ActivityComponent {
    let bytes = test_components::read(path);
    rt.load(spec, &bytes)
        .await
        .unwrap_or_else(|e| panic!("load {path}: {e}"))
}

/// The misbehaving component imports outgoing HTTP, so it always needs an allowlist; this
/// host name never resolves.
pub const NO_SUCH_HOST: &str = "hosts.invalid";

/// The misbehaving component's spec calling `export` with `grants` and `limits`.
pub fn misbehaving_spec(export: &str, mut grants: Grants, limits: ActivityLimits) -> ActivitySpec {
    if grants.allowed_hosts.is_empty() {
        grants.allowed_hosts.push(NO_SUCH_HOST.into());
    }
    ActivitySpec {
        export: Some(export.into()),
        grants,
        limits,
        ..ActivitySpec::new("Misbehaving")
    }
}

/// Loads the misbehaving component with `grants`, calling export `export`.
pub async fn misbehaving(rt: &Runtime, export: &str, grants: Grants) -> ActivityComponent {
    let spec = misbehaving_spec(export, grants, ActivityLimits::default());
    load(rt, spec, test_components::MISBEHAVING).await
}

/// Calls `activity` with `args`.
pub async fn call(
    rt: &Runtime,
    activity: &ActivityComponent,
    args: Value,
) -> Result<Value, ActivityFailure> {
    let args = args.as_array().expect("args are an array").clone();
    rt.invoke(
        activity,
        &args,
        CallContext::for_type(&activity.spec().activity_type),
    )
    .await
    .map(|i| i.output)
}

/// A float as JSON, the way the host writes it: non-finite values as strings.
pub fn float_json(f: f64) -> Value {
    if f.is_nan() {
        Value::from("NaN")
    } else if f.is_infinite() {
        Value::from(if f > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        serde_json::json!(f)
    }
}
