//! The wasmtime side: one `Engine` (pooling allocator, epoch interruption), each
//! component compiled once (and cached on disk by content hash), linked once into an
//! `InstancePre`, then instantiated fresh for every request or message.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};

use crate::app::App;
use crate::capabilities::sqlite::DbPool;
use crate::capabilities::{self, key_value, redis, sqlite};
use crate::guest_output::GuestOutput;
use crate::manifest::ComponentId;
use crate::state::{ComponentContext, HostState};

/// How often the epoch advances; request timeouts are counted in these ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Limits that keep one component from harming the others.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Instances alive at once (requests plus messages in flight).
    pub max_instances: u32,
    /// Linear memory one instance may grow to.
    pub max_memory_bytes: usize,
    /// Wall-clock time one request or message may take.
    pub timeout: Duration,
}

impl Limits {
    /// The default for each outbound HTTP timeout (connect, first byte, between bytes) a
    /// guest leaves unset: two thirds of [`Limits::timeout`], so a hung upstream fails
    /// inside the guest, which can still answer (a 503), instead of the whole request
    /// being cut off at its deadline. wasmtime's own default is 600 s.
    pub fn outbound_timeout(&self) -> Duration {
        self.timeout * 2 / 3
    }
}

/// A compiled, linked component ready to instantiate.
pub struct LoadedComponent {
    pub context: Arc<ComponentContext>,
    pub pre: InstancePre<HostState>,
}

pub struct Runtime {
    pub engine: Engine,
    pub components: HashMap<ComponentId, LoadedComponent>,
    pub limits: Limits,
    /// `limits.timeout` in epoch ticks, the deadline every store gets.
    deadline_ticks: u64,
    _epoch: EpochTicker,
}

impl Runtime {
    /// Compiles and links every component of `app`; `cache_dir` holds compiled code.
    pub async fn new(app: &App, limits: Limits, cache_dir: &Path) -> anyhow::Result<Runtime> {
        let engine = new_engine(&limits)?;
        let mut linker = Linker::new(&engine);
        capabilities::add_to_linker(&mut linker)?;

        let sqlite_pools = open_pools(&app.runtime_config.sqlite_databases, app, |c| {
            &c.sqlite_databases
        })?;
        let kv_pools = open_pools(&app.runtime_config.key_value_stores, app, |c| {
            &c.key_value_stores
        })?;
        for pool in kv_pools.values() {
            key_value::prepare(pool).await.with_context(|| {
                format!("cannot prepare key-value store {}", pool.path().display())
            })?;
        }
        let redis = Arc::new(redis::RedisClients::default());

        let mut components = HashMap::new();
        for (id, spec) in &app.components {
            let component = compile_cached(&engine, id, &spec.source, cache_dir)?;
            let pre = linker
                .instantiate_pre(&component)
                .map_err(|e| capabilities::unprovided_import(id.as_str(), &spec.source, &e))?;
            let grant = |labels: &[String], pools: &HashMap<String, Arc<DbPool>>| {
                labels
                    .iter()
                    .filter_map(|l| pools.get(l).map(|p| (l.clone(), p.clone())))
                    .collect()
            };
            let context = ComponentContext {
                spec: spec.clone(),
                sqlite: sqlite::ComponentDatabases {
                    granted: grant(&spec.sqlite_databases, &sqlite_pools),
                },
                key_value: key_value::ComponentStores {
                    granted: grant(&spec.key_value_stores, &kv_pools),
                },
                redis: redis.clone(),
                max_memory_bytes: limits.max_memory_bytes,
                outbound_timeout: limits.outbound_timeout(),
                stdout: GuestOutput::stdout(id.as_str()),
                stderr: GuestOutput::stderr(id.as_str()),
            };
            components.insert(
                id.clone(),
                LoadedComponent {
                    context: Arc::new(context),
                    pre,
                },
            );
        }

        let epoch = EpochTicker::start(engine.clone());
        let deadline_ticks = (limits.timeout.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
        Ok(Runtime {
            engine,
            components,
            limits,
            deadline_ticks,
            _epoch: epoch,
        })
    }

    /// A fresh store for one instance of `component`, with its limits and deadline set.
    pub fn new_store(&self, component: &LoadedComponent) -> anyhow::Result<Store<HostState>> {
        let state = HostState::new(component.context.clone())?;
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(self.deadline_ticks);
        store.epoch_deadline_trap();
        Ok(store)
    }
}

fn new_engine(limits: &Limits) -> anyhow::Result<Engine> {
    /// Core instances (and tables) one component instance may use.
    const PER_COMPONENT: u32 = 16;
    let mut pooling = PoolingAllocationConfig::new();
    let n = limits.max_instances;
    pooling
        .total_component_instances(n)
        // A Rust component is a main module plus a few small adapter modules; a Python
        // one (componentize-py) uses up to the per-component maximum. The totals allow
        // every one of the `n` instances its maximum: with less, a burst of Python
        // instances ran out of core instances (the chaos run: "maximum concurrent limit
        // of 2048 for core instances reached", messages lost) while the instance limit
        // still had room. Unused slots are address space only.
        .max_core_instances_per_component(PER_COMPONENT)
        .total_core_instances(n * PER_COMPONENT)
        .total_memories(n * 2)
        .max_memories_per_component(2)
        .max_tables_per_component(PER_COMPONENT)
        .total_tables(n * PER_COMPONENT)
        .total_stacks(n)
        .max_memory_size(limits.max_memory_bytes)
        // Keeping the first pages resident avoids a page fault storm on every request.
        .linear_memory_keep_resident(2 << 20)
        .table_keep_resident(64 << 10)
        // Resets only the pages an instance dirtied (Linux 6.7+); measured +15% here.
        .pagemap_scan(wasmtime::Enabled::Auto);
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    Engine::new(&config).map_err(|e| anyhow::anyhow!("cannot create the wasm engine: {e}"))
}

/// One pool per label that some component uses; opened now so bad paths fail early.
fn open_pools(
    backends: &std::collections::BTreeMap<String, crate::runtime_config::Backend>,
    app: &App,
    labels_of: impl Fn(&crate::app::ComponentSpec) -> &Vec<String>,
) -> anyhow::Result<HashMap<String, Arc<DbPool>>> {
    let mut pools = HashMap::new();
    for spec in app.components.values() {
        for label in labels_of(spec) {
            if pools.contains_key(label) {
                continue;
            }
            let Some(crate::runtime_config::Backend::File(path)) = backends.get(label) else {
                bail!("label `{label}` is not declared in the runtime config");
            };
            let pool = DbPool::new(path.clone());
            pool.check()?;
            pools.insert(label.clone(), pool);
        }
    }
    Ok(pools)
}

/// Loads `source`, reusing compiled code from `cache_dir` when the wasm is unchanged.
fn compile_cached(
    engine: &Engine,
    id: &ComponentId,
    source: &Path,
    cache_dir: &Path,
) -> anyhow::Result<Component> {
    let bytes = std::fs::read(source).map_err(|e| {
        anyhow::anyhow!(
            "component `{id}`: cannot read {}: {e} (run `tessera build` to build it)",
            source.display()
        )
    })?;
    let cached = cache_path(engine, &bytes, cache_dir);
    if cached.exists() {
        // SAFETY: the file was written by `precompile_component` of an engine with the
        // same compatibility hash (part of the file name), and only Tessera writes there.
        match unsafe { Component::deserialize_file(engine, &cached) } {
            Ok(component) => {
                tracing::debug!(component = %id, cache = %cached.display(), "loaded compiled component from cache");
                if let Some(metrics) = crate::metrics::get() {
                    metrics.compile_cache(true);
                }
                return Ok(component);
            }
            Err(e) => tracing::warn!(component = %id, "ignoring unusable compile cache entry: {e}"),
        }
    }
    if let Some(metrics) = crate::metrics::get() {
        metrics.compile_cache(false);
    }
    let started = std::time::Instant::now();
    let compiled = engine.precompile_component(&bytes).map_err(|e| {
        anyhow::anyhow!(
            "component `{id}`: {} is not a valid component: {e}",
            source.display()
        )
    })?;
    tracing::info!(component = %id, elapsed_ms = started.elapsed().as_millis() as u64, "compiled");
    if let Err(e) = write_atomically(&cached, &compiled) {
        tracing::warn!(component = %id, "cannot write compile cache: {e:#}");
    }
    // SAFETY: `compiled` was just produced by this engine.
    unsafe { Component::deserialize(engine, &compiled) }
        .map_err(|e| anyhow::anyhow!("component `{id}`: cannot load compiled code: {e}"))
}

fn cache_path(engine: &Engine, wasm: &[u8], cache_dir: &Path) -> PathBuf {
    let mut engine_hash = std::collections::hash_map::DefaultHasher::new();
    engine
        .precompile_compatibility_hash()
        .hash(&mut engine_hash);
    let digest = hex::encode(Sha256::digest(wasm));
    cache_dir.join(format!("{digest}-{:016x}.cwasm", engine_hash.finish()))
}

fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().context("cache path has no parent")?;
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Advances the engine's epoch on a dedicated thread; stops when dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("tessera-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .ok();
        EpochTicker { stop, thread }
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
