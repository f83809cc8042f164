//! The process-wide wasmtime [`Engine`] and the epoch ticker that lets long-running guests
//! yield to tokio and be stopped at their deadline.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::RuntimeError;

/// Engine-wide settings: how many instances may live at once and how guests are preempted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Component instances that may be alive at once (the pooling allocator's slots).
    /// Calls beyond this wait for a slot or fail with `InstancePoolExhausted`. Each slot
    /// also stays warm for the module that last used it (its memory image mapped, its
    /// touched pages resident), so a host serving many activity types calls each at
    /// one-type speed while the slots outnumber the types in use; with more types than
    /// slots, calls re-map a slot for another module (docs/BENCHMARKS.md, `density`).
    pub max_instances: u32,
    /// Largest linear memory any single guest memory may grow to, in bytes. Per-activity
    /// limits (`max_memory_bytes`) are enforced below this ceiling.
    pub max_memory_bytes_ceiling: u64,
    /// How often the epoch ticks, in milliseconds. A running guest yields to the async
    /// runtime once per tick, so deadlines are enforced with this precision, and a guest
    /// that computes delays the host's other tasks by at most a tick at a time (1 ms keeps
    /// a spinning neighbour under 2x the latency of other calls; docs/BENCHMARKS.md).
    pub epoch_tick_ms: u64,
    /// Count fuel (executed instructions) so activities can be given a fuel budget.
    /// Costs some speed on every call, so it is off unless asked for.
    pub fuel: bool,
    /// Bytes of each linear memory (and of each async stack) kept resident and zeroed with
    /// `memset` when an instance slot is reused, instead of being returned to the kernel.
    /// Saves a `madvise` and the page faults after it on every call, at the price of this much
    /// resident memory per warm slot.
    pub keep_resident_bytes: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            max_instances: 256,
            max_memory_bytes_ceiling: 4 << 30,
            epoch_tick_ms: 1,
            fuel: false,
            keep_resident_bytes: 2 << 20,
        }
    }
}

/// Core instances a component may create (its modules plus the adapters' shims).
const CORE_INSTANCES_PER_COMPONENT: u32 = 20;
/// Linear memories per component: components from wasm32-wasip2 have one; some tools add a
/// second. Each pool slot reserves address space, so this stays small.
const MEMORIES_PER_COMPONENT: u32 = 2;
/// Tables per component.
const TABLES_PER_COMPONENT: u32 = 4;
/// Table bytes kept resident per slot (tables are small).
const TABLE_KEEP_RESIDENT_BYTES: usize = 64 << 10;
/// Native stack for guest code; a guest recursing deeper traps with a stack overflow.
const MAX_WASM_STACK_BYTES: usize = 1 << 20;

/// Builds the engine: component model, async support, epoch interruption, pooling allocator.
pub fn build_engine(config: &EngineConfig) -> Result<Engine, RuntimeError> {
    let mut pooling = PoolingAllocationConfig::default();
    let instances = config.max_instances.max(1);
    pooling
        .total_component_instances(instances)
        .total_core_instances(instances.saturating_mul(CORE_INSTANCES_PER_COMPONENT))
        .total_memories(instances.saturating_mul(MEMORIES_PER_COMPONENT))
        .total_tables(instances.saturating_mul(TABLES_PER_COMPONENT))
        .max_memories_per_component(MEMORIES_PER_COMPONENT)
        .max_tables_per_component(TABLES_PER_COMPONENT)
        .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
        .max_memory_size(config.max_memory_bytes_ceiling as usize)
        // Every slot may stay affine to its last module (wasmtime keeps 100 by default):
        // with calls spread over more modules than that, nearly every call re-mapped its
        // slot's memory image and faulted its pages in again.
        .max_unused_warm_slots(instances.saturating_mul(MEMORIES_PER_COMPONENT))
        .linear_memory_keep_resident(config.keep_resident_bytes as usize)
        .table_keep_resident(TABLE_KEEP_RESIDENT_BYTES)
        .async_stack_keep_resident(config.keep_resident_bytes as usize)
        // On Linux 6.7+ reset only the pages a call dirtied instead of the whole resident
        // region; elsewhere wasmtime falls back to memset.
        .pagemap_scan(Enabled::Auto);
    let mut wasm = Config::new();
    wasm.wasm_component_model(true)
        .epoch_interruption(true)
        .consume_fuel(config.fuel)
        .max_wasm_stack(MAX_WASM_STACK_BYTES)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    Engine::new(&wasm).map_err(|e| RuntimeError::Engine(format!("{e:#}")))
}

/// A thread that advances the engine's epoch every tick until dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    /// Starts ticking `engine`'s epoch every `tick`.
    pub fn start(engine: Engine, tick: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("epoch-ticker".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    engine.increment_epoch();
                }
            })
            .ok();
        Self { stop, thread }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
