//! The wasmtime side: one `Engine` (pooling allocator, epoch interruption), each
//! component compiled once (and cached on disk by content hash, see `compile_cache`),
//! linked once into the entry points its triggers call, then instantiated fresh for every
//! request or message.
//!
//! Each component's compiled version sits behind a [`ComponentHandle`]. The triggers take
//! the current version once per request or message, and `tessera watch` installs a new
//! one while the app runs: work already running keeps the version it started with, and
//! everything after the swap gets the new one. Host resources (database pools, Redis
//! connections) belong to the runtime, not to a version, so they survive a reload.

mod compile_cache;
pub mod epoch;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use arc_swap::ArcSwap;
use wasmtime::component::Linker;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::app::{App, ComponentSpec};
use crate::bindings::redis_handler::RedisHandlerPre;
use crate::capabilities::sqlite::DbPool;
use crate::capabilities::{self, key_value, redis, sqlite};
use crate::guest_output::GuestOutput;
use crate::locked::StagedFiles;
use crate::manifest::ComponentId;
use crate::state::{ComponentContext, HostState};
use epoch::EpochTicker;

/// Limits that keep one component from harming the others.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Instances alive at once (requests plus messages in flight).
    pub max_instances: u32,
    /// Linear memory one instance may grow to.
    pub max_memory_bytes: usize,
    /// Wall-clock time one request or message may take.
    pub timeout: Duration,
    /// Instances kept between messages (by components whose message handlers are
    /// reused), on top of `max_instances`.
    pub parked_instances: u32,
    /// Instances instantiated ahead of a request, at most one per HTTP component
    /// (`triggers::ready_instance`), on top of `max_instances`.
    pub ready_instances: u32,
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

/// One compiled, linked version of a component, ready to instantiate.
pub struct LoadedComponent {
    pub context: Arc<ComponentContext>,
    /// `wasi:http/incoming-handler`, linked when a `[[trigger.http]]` routes here.
    pub http: Option<ProxyPre<HostState>>,
    /// `fermyon:spin/inbound-redis`, linked when a `[[trigger.redis]]` names this component.
    pub redis: Option<RedisHandlerPre<HostState>>,
}

/// The current version of one component.
///
/// A lock-free swappable pointer (`arc-swap`): taking the current version costs one
/// atomic load and a reference-count increment, so the hot path pays nothing measurable
/// for being reloadable, and a swap never waits for requests in flight.
#[derive(Clone)]
pub struct ComponentHandle(Arc<ArcSwap<LoadedComponent>>);

impl ComponentHandle {
    fn new(loaded: LoadedComponent) -> Self {
        ComponentHandle(Arc::new(ArcSwap::from_pointee(loaded)))
    }

    /// The version to run one request or message on. Hold it for the whole of that work:
    /// it stays alive (with its compiled code and mounted files) until the last holder
    /// drops it, however many swaps happen meanwhile.
    pub fn current(&self) -> Arc<LoadedComponent> {
        self.0.load_full()
    }
}

/// The entry points a component must export, from the triggers that name it (the first
/// route and channel are quoted when it does not).
#[derive(Debug, Default, Clone)]
struct Exports {
    http_route: Option<String>,
    redis_channel: Option<String>,
}

impl Exports {
    fn of(app: &App) -> HashMap<ComponentId, Exports> {
        let mut exports: HashMap<ComponentId, Exports> = HashMap::new();
        for t in &app.http_triggers {
            let e = exports.entry(t.component.clone()).or_default();
            e.http_route.get_or_insert_with(|| t.route.raw.clone());
        }
        for t in &app.redis_triggers {
            let e = exports.entry(t.component.clone()).or_default();
            e.redis_channel.get_or_insert_with(|| t.channel.clone());
        }
        exports
    }
}

/// Host resources shared by every component (and every version of one).
struct Shared {
    sqlite_pools: HashMap<String, Arc<DbPool>>,
    kv_pools: HashMap<String, Arc<DbPool>>,
    redis: Arc<redis::RedisClients>,
}

pub struct Runtime {
    pub engine: Engine,
    pub limits: Limits,
    linker: Linker<HostState>,
    shared: Shared,
    exports: HashMap<ComponentId, Exports>,
    /// Where compiled code is cached.
    cache_dir: PathBuf,
    components: HashMap<ComponentId, ComponentHandle>,
    /// `limits.timeout` in epoch ticks, the deadline every store gets.
    deadline_ticks: u64,
    epoch: EpochTicker,
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
        let shared = Shared {
            sqlite_pools,
            kv_pools,
            redis: Arc::new(redis::RedisClients::default()),
        };

        let deadline_ticks = (limits.timeout.as_millis() / epoch::TICK.as_millis()).max(1) as u64;
        let mut runtime = Runtime {
            epoch: EpochTicker::start(engine.clone()),
            engine,
            limits,
            linker,
            shared,
            exports: Exports::of(app),
            cache_dir: cache_dir.to_owned(),
            components: HashMap::new(),
            deadline_ticks,
        };
        for spec in app.components.values() {
            let loaded = runtime.load(spec.clone(), None)?;
            runtime
                .components
                .insert(spec.id.clone(), ComponentHandle::new(loaded));
        }
        Ok(runtime)
    }

    /// The handle of component `id`, one of the app's.
    pub fn component(&self, id: &ComponentId) -> anyhow::Result<&ComponentHandle> {
        self.components
            .get(id)
            .with_context(|| format!("component `{id}` is not part of the running app"))
    }

    /// Compiles (or takes from the cache) and links `spec` into a version of its
    /// component, with the entry points its triggers call. Blocking: compiling can take
    /// seconds. `staged` is the directory holding this version's copies of its `files`,
    /// removed once the version is no longer used.
    pub fn load(
        &self,
        spec: ComponentSpec,
        staged: Option<StagedFiles>,
    ) -> anyhow::Result<LoadedComponent> {
        let id = &spec.id;
        let component = compile_cache::compile(&self.engine, id, &spec.source, &self.cache_dir)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| capabilities::unprovided_import(id.as_str(), &spec.source, &e))?;
        let exports = self.exports.get(id).cloned().unwrap_or_default();
        let http = match &exports.http_route {
            None => None,
            Some(route) => Some(ProxyPre::new(pre.clone()).map_err(|e| {
                anyhow::anyhow!(
                    "component `{id}` is routed by [[trigger.http]] {route:?} but does not export wasi:http/incoming-handler: {e}"
                )
            })?),
        };
        let redis = match &exports.redis_channel {
            None => None,
            Some(channel) => Some(RedisHandlerPre::new(pre).map_err(|e| {
                anyhow::anyhow!(
                    "component `{id}` is subscribed to Redis channel {channel:?} but does not export fermyon:spin/inbound-redis (use #[redis_component]): {e}"
                )
            })?),
        };
        Ok(LoadedComponent {
            context: Arc::new(self.context(spec, staged)),
            http,
            redis,
        })
    }

    /// Makes `next` the version of its component that requests and messages get from now
    /// on. The previous version lives on in the work still holding it.
    pub fn install(&self, next: LoadedComponent) -> anyhow::Result<()> {
        let handle = self.component(&next.context.spec.id)?;
        handle.0.store(Arc::new(next));
        Ok(())
    }

    /// What every instance of one version shares: its spec, the stores and databases it
    /// was granted, its output streams.
    fn context(&self, spec: ComponentSpec, staged: Option<StagedFiles>) -> ComponentContext {
        let grant = |labels: &[String], pools: &HashMap<String, Arc<DbPool>>| {
            labels
                .iter()
                .filter_map(|l| pools.get(l).map(|p| (l.clone(), p.clone())))
                .collect()
        };
        ComponentContext {
            sqlite: sqlite::ComponentDatabases {
                granted: grant(&spec.sqlite_databases, &self.shared.sqlite_pools),
            },
            key_value: key_value::ComponentStores {
                granted: grant(&spec.key_value_stores, &self.shared.kv_pools),
            },
            redis: self.shared.redis.clone(),
            max_memory_bytes: self.limits.max_memory_bytes,
            outbound_timeout: self.limits.outbound_timeout(),
            stdout: GuestOutput::stdout(spec.id.as_str()),
            stderr: GuestOutput::stderr(spec.id.as_str()),
            staged_files: staged,
            spec,
        }
    }

    /// A fresh store for one instance of `component`, with its limits and deadline set.
    pub fn new_store(&self, component: &LoadedComponent) -> anyhow::Result<Store<HostState>> {
        let state = HostState::new(component.context.clone())?;
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store.epoch_deadline_trap();
        self.arm_deadline(&mut store);
        Ok(store)
    }

    /// Gives `store` the whole timeout from now: for each new piece of work, including
    /// each message of a reused instance. Until the store is dropped or disarmed
    /// ([`HostState::disarm`], as it is parked between uses) the epoch keeps advancing,
    /// so the deadline can pass ([`epoch`]).
    pub fn arm_deadline(&self, store: &mut Store<HostState>) {
        store.set_epoch_deadline(self.deadline_ticks);
        store.data_mut().keep_epoch_ticking(|| self.epoch.arm());
    }
}

fn new_engine(limits: &Limits) -> anyhow::Result<Engine> {
    /// Core instances (and tables) one component instance may use.
    const PER_COMPONENT: u32 = 16;
    let mut pooling = PoolingAllocationConfig::new();
    let n = limits.max_instances + limits.parked_instances + limits.ready_instances;
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
            let pool = DbPool::new(label.as_str(), path.clone());
            pool.check()?;
            pools.insert(label.clone(), pool);
        }
    }
    Ok(pools)
}
