//! `HostState`: the data of one wasmtime `Store`, i.e. of one component instance.
//!
//! Built by [`HostState::new`] only, once per request or message, from the component's
//! shared [`ComponentContext`]. It owns the instance's resource table, WASI contexts,
//! memory limits and the per-instance state of every Spin capability.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::app::ComponentSpec;
use crate::capabilities::outbound_http::OutboundHttp;
use crate::capabilities::{key_value, redis, sqlite};
use crate::guest_output::GuestOutput;
use crate::runtime::epoch::Ticking;
use crate::traces::Trace;

/// Everything about a component that all its instances share, built once per version
/// (at startup, and on each reload by `tessera watch`).
pub struct ComponentContext {
    pub spec: ComponentSpec,
    pub sqlite: sqlite::ComponentDatabases,
    pub key_value: key_value::ComponentStores,
    pub redis: Arc<redis::RedisClients>,
    pub max_memory_bytes: usize,
    /// Default outbound HTTP timeouts (see `Limits::outbound_timeout`).
    pub outbound_timeout: std::time::Duration,
    /// The guest's stdout and stderr, prefixed with the component id.
    pub stdout: GuestOutput,
    pub stderr: GuestOutput,
    /// The copies of `files` this version mounts, when `tessera watch` staged them for it
    /// alone: kept until the last instance using them is gone (an instance still running
    /// on the previous version reads the previous files), then removed.
    pub staged_files: Option<crate::locked::StagedFiles>,
}

pub struct HostState {
    pub table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    outbound_http: OutboundHttp,
    pub limits: StoreLimits,
    pub component: Arc<ComponentContext>,
    /// The span of the request or message this instance serves (tracing on only).
    pub trace: Option<Trace>,
    /// Keeps the epoch advancing while this instance's guest can run (from
    /// `Runtime::arm_deadline` until the store is dropped or [`HostState::disarm`]ed).
    ticking: Option<Ticking>,
}

impl HostState {
    pub fn new(component: Arc<ComponentContext>) -> anyhow::Result<Self> {
        let spec = &component.spec;
        let mut wasi = WasiCtx::builder();
        wasi.stdout(component.stdout.clone())
            .stderr(component.stderr.clone())
            .envs(&spec.environment);
        for mount in &spec.mounts {
            wasi.preopened_dir(&mount.host, &mount.guest, FsPerms::ReadOnly)
                .map_err(|e| anyhow::anyhow!("cannot mount {}: {e}", mount.host.display()))?;
        }
        let limits = StoreLimitsBuilder::new()
            .memory_size(component.max_memory_bytes)
            .instances(64)
            .trap_on_grow_failure(true)
            .build();
        Ok(HostState {
            table: ResourceTable::new(),
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            outbound_http: OutboundHttp::new(component.clone()),
            limits,
            component,
            trace: None,
            ticking: None,
        })
    }

    /// Makes `trace` the parent of this instance's host calls and outbound requests
    /// (`None`: untraced, as the next message of a reused instance may be).
    pub fn set_trace(&mut self, trace: Option<Trace>) {
        self.outbound_http.trace = trace.clone();
        self.trace = trace;
    }

    /// Holds the epoch's ticking for this store (taking it from `arm` unless it already
    /// does): the store has been armed for a piece of work.
    pub fn keep_epoch_ticking(&mut self, arm: impl FnOnce() -> Ticking) {
        if self.ticking.is_none() {
            self.ticking = Some(arm());
        }
    }

    /// For an instance parked between uses (instantiated ahead of a request, or kept
    /// between messages): its guest cannot run until the store is armed again, so it no
    /// longer keeps the epoch thread awake.
    pub fn disarm(&mut self) {
        self.ticking = None;
    }

    /// How many connections (databases, Redis, MQTT) the guest holds open.
    pub fn open_connections(&mut self) -> usize {
        self.table
            .iter_mut()
            .filter(|r| crate::capabilities::is_connection(&**r))
            .count()
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound_http,
        }
    }
}
