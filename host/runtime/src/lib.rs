//! The sandboxed component runtime: loads, checks, limits and calls activity components.
//!
//! One [`Runtime`] per process holds the wasmtime engine (pooling allocator, epoch
//! interruption with async yield), the linker with every capability the host offers, the
//! compiled-component cache and the key-value backend. [`Runtime::load`] turns bytes into
//! an [`ActivityComponent`]; [`Runtime::invoke`] calls it with JSON arguments in a fresh
//! store, under the activity's limits, and answers JSON or an [`ActivityFailure`].

pub mod budget;
pub mod cache;
pub mod capabilities;
pub mod catalog;
pub mod egress;
pub mod engine;
pub mod failure;
pub mod grants;
pub mod limits;
pub mod load;
pub mod metrics;
pub mod settings;
mod state;
mod turns;
pub mod usage;

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use wasmtime::component::{Linker, Val};
use wasmtime::{Engine, Store, Trap};

pub use capabilities::context::{ActivityInfo, CallContext, Cancellation, HeartbeatSink};
pub use capabilities::keyvalue::{KeyPage, KeyValueBackend, KeyValueError, ScratchKeyValue};
pub use capabilities::logging::GuestObserver;
pub use catalog::{
    ActivityCatalog, ActivityTable, CallKey, CatalogFuture, Finished, Resolved, Unresolved,
};
pub use engine::EngineConfig;
pub use failure::{kinds, ActivityFailure};
pub use grants::{GrantPolicy, Grants};
pub use limits::ActivityLimits;
pub use load::{ActivityComponent, CompiledFrom, LoadError};
pub use settings::{InvalidSetting, RuntimeSettings};
pub use usage::{Usage, UsageView};
pub use wit_json::{Param, Signature, WitType};

use cache::CompiledCache;
use engine::EpochTicker;
use state::{ActivityState, StateParts};

/// Errors setting up the runtime itself.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The engine rejected its configuration.
    #[error("could not configure the WebAssembly engine: {0}")]
    Engine(String),
    /// A host interface could not be added to the linker.
    #[error("could not link host interface {interface}: {message}")]
    Link {
        /// The interface.
        interface: &'static str,
        /// Why.
        message: String,
    },
    /// The compiled cache directory is unusable.
    #[error("compiled-component cache at {path}: {source}")]
    Cache {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// `sha256:<hex>` of a component's bytes: the identity of an activity version.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(transparent)]
#[schema(value_type = String, example = "sha256:9f2c...")]
pub struct ComponentDigest(String);

impl ComponentDigest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(format!("sha256:{}", hex::encode(Sha256::digest(bytes))))
    }

    /// The hex part, without the `sha256:` prefix.
    pub fn hex(&self) -> &str {
        self.0.strip_prefix("sha256:").unwrap_or(&self.0)
    }

    /// The full `sha256:<hex>` text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ComponentDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An activity type and what it may use.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivitySpec {
    /// The Temporal activity type name (`ValidateUser`).
    pub activity_type: String,
    /// The export to call; by default the type name in kebab case (`validate-user`), or the
    /// component's only exported function.
    pub export: Option<String>,
    /// Capabilities granted.
    pub grants: Grants,
    /// Limits per call.
    pub limits: ActivityLimits,
}

impl ActivitySpec {
    /// A spec with no grants and default limits.
    pub fn new(activity_type: impl Into<String>) -> Self {
        Self {
            activity_type: activity_type.into(),
            ..Default::default()
        }
    }
}

/// A successful call.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    /// The result as JSON (`null` for a function without result). For an export returning
    /// `result<T, E>`, the `ok` value.
    pub output: Value,
    /// Peak linear memory of the instance, in bytes.
    pub peak_memory_bytes: u64,
    /// Time spent instantiating.
    pub instantiate_time: Duration,
    /// Time from the start of instantiation to the result.
    pub total_time: Duration,
}

/// What [`Runtime::new`] needs.
#[derive(Debug, Clone, Default)]
pub struct RuntimeConfig {
    /// Engine-wide settings.
    pub engine: EngineConfig,
    /// Directory of the compiled-component cache; `None` disables it.
    pub cache_dir: Option<std::path::PathBuf>,
}

/// The component runtime of one process.
pub struct Runtime {
    engine: Engine,
    linker: std::sync::RwLock<Linker<ActivityState>>,
    cache: Option<CompiledCache>,
    engine_key: String,
    key_value: Option<Arc<dyn KeyValueBackend>>,
    observer: Option<Arc<dyn GuestObserver>>,
    compilations: Arc<AtomicU64>,
    fuel_enabled: bool,
    egress: Arc<egress::Egress>,
    turns: turns::Turns,
    budget: Option<budget::MemoryBudget>,
    _ticker: EpochTicker,
}

impl Runtime {
    /// Builds the engine, the linker and the cache, and starts the epoch ticker.
    pub fn new(config: &RuntimeConfig) -> Result<Self, RuntimeError> {
        let engine = engine::build_engine(&config.engine)?;
        let engine_key = cache::engine_key(&engine);
        let linker = build_linker(&engine)?;
        let cache = config
            .cache_dir
            .as_deref()
            .map(|dir| {
                CompiledCache::new(dir, &engine).map_err(|source| RuntimeError::Cache {
                    path: dir.display().to_string(),
                    source,
                })
            })
            .transpose()?;
        let ticker = EpochTicker::start(
            engine.clone(),
            Duration::from_millis(config.engine.epoch_tick_ms.max(1)),
        );
        Ok(Self {
            engine,
            linker: std::sync::RwLock::new(linker),
            cache,
            engine_key,
            key_value: None,
            observer: None,
            compilations: Arc::new(AtomicU64::new(0)),
            fuel_enabled: config.engine.fuel,
            egress: Arc::new(egress::Egress::default()),
            turns: turns::Turns::default(),
            budget: None,
            _ticker: ticker,
        })
    }

    /// Uses `backend` for `wasi:keyvalue/store`.
    pub fn with_key_value(mut self, backend: Arc<dyn KeyValueBackend>) -> Self {
        self.key_value = Some(backend);
        self
    }

    /// Keeps the memory limits of the calls in flight under `bytes` together (`None`: no
    /// budget); see [`budget`].
    pub fn with_memory_budget(mut self, bytes: Option<u64>) -> Self {
        self.budget = bytes.map(budget::MemoryBudget::new);
        self
    }

    /// Bytes of the memory budget the calls in flight reserved now (0 without a budget).
    pub fn memory_reserved(&self) -> u64 {
        self.budget.as_ref().map_or(0, |b| b.reserved_bytes())
    }

    /// Reports guest log lines to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn GuestObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Sends outgoing HTTP under `egress` (the host-wide policy, resolver, secrets, audit).
    pub fn with_egress(mut self, egress: Arc<egress::Egress>) -> Self {
        self.egress = egress;
        self
    }

    /// The host's egress: policy, secrets and the audit of outgoing requests.
    pub fn egress(&self) -> &Arc<egress::Egress> {
        &self.egress
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The name of this engine's compilation settings: compiled artifacts are shared between
    /// hosts under it ([`ActivityComponent::serialized`], [`Runtime::load_shared`]).
    pub fn engine_key(&self) -> &str {
        &self.engine_key
    }

    /// Calls of `activity_type` running on this host now (holding a turn under its
    /// `max_concurrent`).
    pub fn calls_running(&self, activity_type: &str) -> usize {
        self.turns.running(activity_type)
    }

    /// Calls of `activity_type` waiting for a turn on this host now.
    pub fn calls_waiting(&self, activity_type: &str) -> usize {
        self.turns.waiting(activity_type)
    }

    /// How many components this runtime compiled (cache hits excluded).
    pub fn compilations(&self) -> u64 {
        self.compilations.load(Ordering::Relaxed)
    }

    /// Calls `activity` once with JSON `args` (one per parameter) in a fresh instance.
    pub async fn invoke(
        &self,
        activity: &ActivityComponent,
        args: &[Value],
        call: CallContext,
    ) -> Result<Invocation, ActivityFailure> {
        self.invoke_metered(activity, args, call).await.0
    }

    /// Calls `activity` like [`Runtime::invoke`] and tells what the call cost, failed or not.
    pub async fn invoke_metered(
        &self,
        activity: &ActivityComponent,
        args: &[Value],
        call: CallContext,
    ) -> (Result<Invocation, ActivityFailure>, Usage) {
        let started = Instant::now();
        let limits = activity.spec.limits;
        let wait = limits.time_limit(call.remaining());
        let mut usage = Usage::default();
        let name = activity.spec.activity_type.as_str();
        let turn = match self.turns.take(name, limits.concurrency_cap(), wait).await {
            Ok(turn) => match &self.budget {
                Some(budget) => budget
                    .reserve(
                        name,
                        limits.max_memory_bytes,
                        wait.saturating_sub(started.elapsed()),
                    )
                    .await
                    .map(|reserved| (turn, Some(reserved))),
                None => Ok((turn, None)),
            },
            Err(failure) => Err(failure),
        };
        let outcome = match turn {
            Ok(_held) => {
                let key_value = self.key_value.clone();
                let (outcome, cpu) =
                    usage::CpuTimed::new(self.call(activity, args, call, key_value, &mut usage))
                        .await;
                usage.cpu = cpu;
                outcome
            }
            Err(failure) => Err(failure),
        };
        metrics::record(activity, &outcome, started.elapsed());
        (outcome, usage)
    }

    /// Calls `activity` once like [`Runtime::invoke`], but with `key_value` in place of the
    /// runtime's backend and without metrics: a trial run (verifying a candidate) that
    /// leaves no trace in the stores or the counts of real calls.
    pub async fn invoke_isolated(
        &self,
        activity: &ActivityComponent,
        args: &[Value],
        call: CallContext,
        key_value: Arc<dyn KeyValueBackend>,
    ) -> Result<Invocation, ActivityFailure> {
        let mut usage = Usage::default();
        self.call(activity, args, call, Some(key_value), &mut usage)
            .await
    }

    async fn call(
        &self,
        activity: &ActivityComponent,
        args: &[Value],
        call: CallContext,
        key_value: Option<Arc<dyn KeyValueBackend>>,
        usage: &mut Usage,
    ) -> Result<Invocation, ActivityFailure> {
        let name = activity.spec.activity_type.as_str();
        let params = wit_json::args_to_vals(args, &activity.signature.params).map_err(|e| {
            ActivityFailure::new(
                kinds::INVALID_ARGUMENTS,
                format!("{name} ({}): {e}", activity.export_name),
                true,
            )
        })?;
        let limits = activity.spec.limits;
        let time_limit = limits.time_limit(call.remaining());
        let mut store = Store::new(
            &self.engine,
            ActivityState::new(StateParts {
                grants: activity.grants.clone(),
                config: activity.config.clone(),
                limits,
                key_value,
                call,
                version: activity.digest.clone(),
                observer: self.observer.clone(),
                egress: self.egress.clone(),
            }),
        );
        store.limiter(|s| &mut s.limiter);
        // At every epoch tick the guest yields the way tokio recommends for long computations
        // (`yield_now`: the task goes behind the I/O the driver has ready, not into the
        // worker's next-task slot), so a guest that spins never delays the host's own tasks
        // or another guest by more than a tick at a time.
        store.epoch_deadline_callback(|_| {
            Ok(wasmtime::UpdateDeadline::YieldCustom(
                1,
                Box::pin(tokio::task::yield_now()),
            ))
        });
        let fuel_given = limits.fuel.unwrap_or(u64::MAX);
        if self.fuel_enabled {
            let fuel = fuel_given;
            store
                .set_fuel(fuel)
                .and_then(|_| store.fuel_async_yield_interval(Some(FUEL_YIELD_INTERVAL)))
                .map_err(|e| {
                    ActivityFailure::new(kinds::INSTANTIATION_FAILED, format!("{e:#}"), false)
                })?;
        }

        let started = Instant::now();
        let mut instantiated = None;
        let mut result = vec![Val::Bool(false); usize::from(activity.signature.result.is_some())];
        let run = async {
            let instance = activity
                .pre
                .instantiate_async(&mut store)
                .await
                .map_err(Stage::Instantiate)?;
            instantiated = Some(started.elapsed());
            let func = instance
                .get_func(&mut store, activity.export)
                .ok_or_else(|| {
                    Stage::Instantiate(wasmtime::Error::msg("export missing after instantiation"))
                })?;
            func.call_async(&mut store, &params, &mut result)
                .await
                .map_err(Stage::Call)
        };
        let outcome = tokio::time::timeout(time_limit, run).await;
        let total_time = started.elapsed();
        let peak_memory_bytes = store.data().limiter.peak_memory_bytes as u64;
        *usage = Usage {
            wall: total_time,
            peak_memory_bytes,
            fuel: self
                .fuel_enabled
                .then(|| fuel_given.saturating_sub(store.get_fuel().unwrap_or(fuel_given))),
            egress_requests: store.data().http_hooks.meter.requests(),
            egress_bytes: store.data().http_hooks.meter.bytes(),
            ..Usage::default()
        };
        let state = store.data();
        let failure = match outcome {
            Err(_) => Some(ActivityFailure::new(
                kinds::TIME_LIMIT_EXCEEDED,
                format!(
                    "{name} ran longer than its limit of {} ms",
                    time_limit.as_millis()
                ),
                false,
            )),
            Ok(Err(stage)) => Some(classify_error(stage, state, name)),
            Ok(Ok(())) => None,
        };
        log_guest_output(state, name);
        if let Some(f) = failure {
            return Err(f);
        }
        let output = output_of(result.pop(), activity.signature.result.as_ref(), name)?;
        let size = serde_json::to_vec(&output)
            .map(|v| v.len() as u64)
            .unwrap_or(u64::MAX);
        if size > limits.max_output_bytes {
            return Err(ActivityFailure::new(
                kinds::OUTPUT_TOO_LARGE,
                format!(
                    "{name} returned {size} bytes of JSON, over its limit of {}",
                    limits.max_output_bytes
                ),
                true,
            ));
        }
        Ok(Invocation {
            output,
            peak_memory_bytes,
            instantiate_time: instantiated.unwrap_or(total_time),
            total_time,
        })
    }
}

/// Fuel consumed between yields to the async runtime when fuel is on.
const FUEL_YIELD_INTERVAL: u64 = 10_000_000;
/// Lines of guest stderr quoted in a trap's message.
const STDERR_LINES_IN_TRAP: usize = 5;

enum Stage {
    Instantiate(wasmtime::Error),
    Call(wasmtime::Error),
}

fn classify_error(stage: Stage, state: &ActivityState, name: &str) -> ActivityFailure {
    let (error, instantiating) = match stage {
        Stage::Instantiate(e) => (e, true),
        Stage::Call(e) => (e, false),
    };
    if state.limiter.memory_refused {
        return ActivityFailure::new(
            kinds::MEMORY_LIMIT_EXCEEDED,
            format!("{name} tried to use more than its memory limit"),
            true,
        );
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::StackOverflow) => ActivityFailure::new(
            kinds::STACK_OVERFLOW,
            format!("{name} overflowed its stack"),
            true,
        ),
        Some(Trap::OutOfFuel) => ActivityFailure::new(
            kinds::FUEL_EXHAUSTED,
            format!("{name} used up its fuel"),
            true,
        ),
        Some(Trap::AllocationTooLarge) => ActivityFailure::new(
            kinds::MEMORY_LIMIT_EXCEEDED,
            format!("{name} tried to use more than its memory limit"),
            true,
        ),
        _ if instantiating => {
            let text = format!("{error:#}");
            if text.contains("pooling allocator") || text.contains("concurrent") {
                ActivityFailure::new(
                    kinds::INSTANCE_POOL_EXHAUSTED,
                    format!("no instance slot free for {name}: {text}"),
                    false,
                )
            } else {
                ActivityFailure::new(
                    kinds::INSTANTIATION_FAILED,
                    format!("{name} could not start: {text}"),
                    false,
                )
            }
        }
        _ => {
            let trap = error
                .downcast_ref::<Trap>()
                .map_or_else(|| format!("{error:#}"), |t| t.to_string());
            let stderr = state.stderr.text();
            let tail: Vec<&str> = stderr.lines().rev().take(STDERR_LINES_IN_TRAP).collect();
            let message = if tail.is_empty() {
                format!("{name} trapped: {trap}")
            } else {
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                format!("{name} trapped: {trap}; guest stderr: {}", tail.join(" | "))
            };
            ActivityFailure::new(kinds::GUEST_TRAP, message, false)
        }
    }
}

fn log_guest_output(state: &ActivityState, name: &str) {
    for (stream, out) in [("stdout", &state.stdout), ("stderr", &state.stderr)] {
        let text = out.text();
        if !text.is_empty() {
            tracing::info!(target: "guest", activity = name, version = %state.version, stream, "{}", text.trim_end());
        }
    }
}

/// The call's JSON output: the `ok` side of a `result`, or the value itself.
fn output_of(val: Option<Val>, ty: Option<&WitType>, name: &str) -> Result<Value, ActivityFailure> {
    let (Some(val), Some(ty)) = (val, ty) else {
        return Ok(Value::Null);
    };
    let convert = |v: &Val, t: &WitType| {
        wit_json::to_json(v, t).map_err(|e| {
            ActivityFailure::new(
                kinds::GUEST_TRAP,
                format!("{name} returned an unexpected value: {e}"),
                false,
            )
        })
    };
    match (&val, ty) {
        (Val::Result(Ok(v)), WitType::Result { ok, .. }) => match (v, ok) {
            (Some(v), Some(t)) => convert(v, t),
            _ => Ok(Value::Null),
        },
        (Val::Result(Err(e)), WitType::Result { err, .. }) => Err(failure::from_error_value(
            e.as_deref(),
            err.as_deref(),
            name,
        )),
        _ => convert(&val, ty),
    }
}

/// One linker for every component, with every capability room: one line per room.
fn build_linker(engine: &Engine) -> Result<Linker<ActivityState>, RuntimeError> {
    let link = |interface: &'static str| {
        move |e: wasmtime::Error| RuntimeError::Link {
            interface,
            message: format!("{e:#}"),
        }
    };
    use capabilities::{base, config, context, http, keyvalue, logging};
    let mut linker = Linker::new(engine);
    base::add_to_linker(&mut linker).map_err(link("wasi"))?;
    http::add_to_linker(&mut linker).map_err(link("wasi:http"))?;
    config::add_to_linker(&mut linker, ActivityState::wasi_config).map_err(link("wasi:config"))?;
    context::add_to_linker(&mut linker, ActivityState::context)
        .map_err(link("activity-host:activity"))?;
    logging::add_to_linker(&mut linker, ActivityState::logging).map_err(link("wasi:logging"))?;
    keyvalue::add_to_linker(&mut linker, ActivityState::key_value)
        .map_err(link("wasi:keyvalue"))?;
    Ok(linker)
}

/// Reads a component file, for callers that load from disk.
pub fn read_component(path: &Path) -> std::io::Result<Vec<u8>> {
    std::fs::read(path)
}
