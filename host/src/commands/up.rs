//! `tessera up`: load the app, compile its components, and serve its triggers.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::app::{self, App};
use crate::commands::ManifestArg;
use crate::commands::build::BuildCommand;
use crate::commands::registry::RegistryArgs;
use crate::dev_services::{self, DevRedis};
use crate::locked::{self, LockedApp};
use crate::manifest::{self, ComponentId, LoadedManifest};
use crate::registry::pull;
use crate::runtime::{Limits, Runtime};
use crate::runtime_config::RuntimeConfig;
use crate::triggers::http::{self, HttpServer};
use crate::triggers::redis::RedisTrigger;
use crate::triggers::{ready_instance, reused_instance};
use crate::variables::{EnvProvider, Resolved};

/// How long `up` waits for the Redis triggers to subscribe before it serves anyway.
const SUBSCRIBE_WAIT: Duration = Duration::from_secs(5);

pub const DEFAULT_LISTEN: &str = "127.0.0.1:3000";
pub const DEFAULT_REQUEST_TIMEOUT: &str = "30s";
pub const DEFAULT_MAX_INSTANCES: u32 = 256;
pub const DEFAULT_MAX_INSTANCE_MEMORY: &str = "128MiB";
pub const DEFAULT_MAX_REQUEST_BODY: &str = "10MiB";

#[derive(Debug, Args)]
pub struct UpCommand {
    #[command(flatten)]
    pub manifest: ManifestArg,
    /// Run an app from an OCI registry (e.g. localhost:5000/tessera:v1) instead of a
    /// manifest: it is pulled into the cache, every blob verified, then served the same way.
    #[arg(long, value_name = "REFERENCE", conflicts_with_all = ["path", "build"], env = "TESSERA_FROM")]
    pub from: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Address for the HTTP trigger; port 0 picks a free port (printed at startup).
    #[arg(long, default_value = DEFAULT_LISTEN, env = "TESSERA_LISTEN")]
    pub listen: SocketAddr,
    /// Spin runtime config declaring key-value stores and sqlite databases.
    #[arg(long = "runtime-config-file", env = "TESSERA_RUNTIME_CONFIG")]
    pub runtime_config: Option<PathBuf>,
    /// Where embedded data, logs and the compile cache live [default: .spin next to the
    /// manifest, or in the current directory with --from].
    #[arg(long, env = "TESSERA_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Run only this component (repeatable), with only its triggers: one service of a
    /// larger app, as SpinKube's `spec.components` deploys it. Variables, stores and
    /// databases are checked for the selected components alone.
    #[arg(
        long = "component-id",
        short = 'c',
        value_name = "ID",
        env = "TESSERA_COMPONENT_ID",
        value_delimiter = ','
    )]
    pub component_ids: Vec<String>,
    /// Never start a local redis-server, even when the app's loopback Redis is not
    /// answering: for deployments where Redis is someone else's (the triggers keep
    /// retrying until it is back).
    #[arg(long, env = "TESSERA_NO_DEV_SERVICES")]
    pub no_dev_services: bool,
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9090; port 0 picks
    /// one, printed at startup). Off by default, and then free.
    #[arg(long, value_name = "ADDR", env = "TESSERA_METRICS")]
    pub metrics: Option<SocketAddr>,
    /// Run `tessera build` first.
    #[arg(long)]
    pub build: bool,
    /// Longest a single request or message may run before it is stopped (e.g. 30s, 500ms).
    #[arg(long, default_value = DEFAULT_REQUEST_TIMEOUT, value_parser = parse_duration, env = "TESSERA_REQUEST_TIMEOUT")]
    pub request_timeout: Duration,
    /// Most component instances alive at once; further requests wait their turn.
    #[arg(long, default_value_t = DEFAULT_MAX_INSTANCES, env = "TESSERA_MAX_INSTANCES")]
    pub max_instances: u32,
    /// Most linear memory one instance may use (e.g. 128MiB).
    #[arg(long, default_value = DEFAULT_MAX_INSTANCE_MEMORY, value_parser = parse_bytes, env = "TESSERA_MAX_INSTANCE_MEMORY")]
    pub max_instance_memory: usize,
    /// Largest request body accepted; bigger ones get 413 before reaching a component.
    #[arg(long, default_value = DEFAULT_MAX_REQUEST_BODY, value_parser = parse_bytes, env = "TESSERA_MAX_REQUEST_BODY")]
    pub max_request_body: usize,
    /// Handle these components' Redis messages in a reused instance (up to 1000
    /// messages each) instead of a fresh one per message: much cheaper for interpreted
    /// languages, but a handler then sees what the previous message left in its globals.
    /// A Tessera extension (Spin always instantiates per message); ids of components
    /// that --component-id leaves out are ignored.
    #[arg(
        long = "reuse-instances",
        value_name = "ID",
        env = "TESSERA_REUSE_INSTANCES",
        value_delimiter = ','
    )]
    pub reuse_instances: Vec<String>,
}

impl UpCommand {
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        if self.build {
            let code = self.build_command().execute()?;
            if code != ExitCode::SUCCESS {
                return Ok(code);
            }
        }
        block_on(async {
            let prepared = self.prepare().await?;
            let host = self.start(&prepared).await?;
            host.serve(shutdown_signal()).await;
            Ok(())
        })?;
        Ok(ExitCode::SUCCESS)
    }

    /// `tessera build` for the components this command runs.
    pub fn build_command(&self) -> BuildCommand {
        BuildCommand {
            manifest: self.manifest.clone(),
            components: self.component_ids.clone(),
        }
    }

    /// Loads and validates the app (from the manifest or a registry), its variables and
    /// runtime config. Nothing is bound or compiled yet.
    pub async fn prepare(&self) -> anyhow::Result<Prepared> {
        let (mut locked, origin, state_dir, manifest) = self.load().await?;
        let reuse = reused_components(&locked, &self.reuse_instances, &origin)?;
        if !self.component_ids.is_empty() {
            locked.retain_components(&self.component_ids, &origin)?;
        }
        let vars = Resolved::resolve(&app::declared_variables(&locked)?, &EnvProvider)
            .with_context(|| format!("{origin}: [variables]"))?;
        let runtime_config = RuntimeConfig::load(self.runtime_config.as_deref(), &state_dir)?;
        let app = App::from_locked(&locked, &origin, &vars, runtime_config)?;
        let reuse = reuse
            .into_iter()
            .filter_map(|id| app.components.keys().find(|c| c.as_str() == id).cloned())
            .collect();
        Ok(Prepared {
            app,
            reuse,
            origin,
            state_dir,
            vars,
            manifest,
        })
    }

    /// Binds the listener, compiles the components, starts the triggers (and dev
    /// services) and waits for the Redis subscriptions: everything but serving.
    pub async fn start(&self, prepared: &Prepared) -> anyhow::Result<Host> {
        let Prepared {
            app,
            state_dir,
            reuse,
            ..
        } = prepared;
        let listener = http::bind(self.listen).await?;
        // Before the runtime, so compile-cache lookups are counted.
        if let Some(addr) = self.metrics {
            let bound = crate::metrics::serve(addr).await?;
            eprintln!("Serving metrics on http://{bound}/metrics");
        }
        let addr = listener.local_addr()?;

        let limits = Limits {
            max_instances: self.max_instances,
            max_memory_bytes: self.max_instance_memory,
            timeout: self.request_timeout,
            parked_instances: reused_instance::most_parked(reuse.len()),
            ready_instances: ready_instance::most_ready(app),
        };
        let runtime = Arc::new(Runtime::new(app, limits, &state_dir.join("cache")).await?);
        let instances = Arc::new(Semaphore::new(self.max_instances as usize));
        if let Some(metrics) = crate::metrics::get() {
            metrics.watch_instances(instances.clone(), self.max_instances);
        }
        let server = Arc::new(HttpServer::new(
            app,
            runtime.clone(),
            addr,
            self.max_request_body,
            instances.clone(),
        )?);

        let redis = if app.redis_triggers.is_empty() {
            None
        } else {
            Some(Arc::new(RedisTrigger::new(
                app,
                runtime.clone(),
                instances,
                reuse,
            )?))
        };
        let mut dev_services = Vec::new();
        if !self.no_dev_services {
            for address in redis.iter().flat_map(|r| r.addresses()) {
                dev_services.extend(dev_services::ensure_redis(address, state_dir).await?);
            }
        }
        let mut subscribers = None;
        if let Some(redis) = &redis {
            subscribers = Some((redis.clone(), tokio::spawn(redis.clone().run())));
            // Events published before the subscribers listen are lost (pub/sub keeps
            // nothing), so the app is announced once they do, unless Redis is away.
            if !redis.wait_until_subscribed(SUBSCRIBE_WAIT).await {
                tracing::warn!(
                    "not every Redis trigger could subscribe within {SUBSCRIBE_WAIT:?}; serving \
                     HTTP anyway, they subscribe as soon as Redis answers"
                );
            }
        }
        Ok(Host {
            runtime,
            listener,
            addr,
            server,
            subscribers,
            dev_services,
            request_timeout: self.request_timeout,
        })
    }

    /// The locked app (from the manifest, or pulled), what to call it in errors, the
    /// state directory and the manifest it came from. Both sources go through
    /// `App::from_locked` from here on.
    async fn load(&self) -> anyhow::Result<(LockedApp, String, PathBuf, Option<LoadedManifest>)> {
        let Some(reference) = &self.from else {
            let loaded = manifest::load(&self.manifest.path)?;
            let app_dir = loaded.path.parent().map(Path::to_owned).unwrap_or_default();
            let state_dir = self
                .state_dir
                .clone()
                .unwrap_or_else(|| app_dir.join(".spin"));
            let locked = locked::from_manifest(&loaded, &state_dir.join("files"))?;
            let origin = loaded.path.display().to_string();
            return Ok((locked, origin, state_dir, Some(loaded)));
        };
        let state_dir = self.state_dir.clone().unwrap_or_else(|| ".spin".into());
        let state_dir = std::path::absolute(&state_dir).unwrap_or(state_dir);
        let cache = self.registry.cache();
        let pulled = pull::pull(reference, self.registry.insecure, &cache).await?;
        eprintln!("Pulled {reference}@{}", pulled.digest);
        let locked = pull::materialize(&pulled.locked, &cache, &state_dir.join("files"))
            .with_context(|| format!("{reference}: cannot prepare the pulled app"))?;
        Ok((locked, reference.clone(), state_dir, None))
    }
}

/// The app `up` runs, loaded and validated; nothing is bound or compiled yet.
pub struct Prepared {
    pub app: App,
    /// The components whose message handlers are reused (`--reuse-instances`), among
    /// those `app` runs.
    pub reuse: BTreeSet<ComponentId>,
    /// What names the app in errors: the manifest file or the registry reference.
    pub origin: String,
    /// Embedded data, staged files and the compile cache.
    pub state_dir: PathBuf,
    pub vars: Resolved,
    /// The manifest the app was locked from; `None` when it was pulled from a registry.
    pub manifest: Option<LoadedManifest>,
}

/// A started host: bound, compiled and subscribed, not serving HTTP yet.
pub struct Host {
    /// The compiled components, which `tessera watch` reloads while the host serves.
    pub runtime: Arc<Runtime>,
    listener: TcpListener,
    addr: SocketAddr,
    server: Arc<HttpServer>,
    subscribers: Option<(Arc<RedisTrigger>, JoinHandle<()>)>,
    dev_services: Vec<DevRedis>,
    request_timeout: Duration,
}

impl Host {
    /// Announces the app, serves it until `shutdown` resolves, then stops: no new
    /// messages, the handlers already running finish, and only then dev services stop.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        let addr = self.addr;
        eprintln!("Serving HTTP on http://{addr}/");
        eprintln!("Available Routes:");
        for line in self.server.describe_routes(&format!("http://{addr}/")) {
            eprintln!("{line}");
        }
        self.server.serve(self.listener, shutdown).await;
        // Stop taking messages, let the handlers already running finish, and only then
        // stop a dev Redis they may still be publishing to.
        if let Some((redis, subscribers)) = self.subscribers {
            subscribers.abort();
            if !redis.drain(self.request_timeout).await {
                tracing::warn!("stopped with Redis message handlers still running");
            }
        }
        drop(self.dev_services);
        eprintln!("Stopped");
    }
}

/// Checks `--reuse-instances` against the whole app (before `--component-id` narrows
/// it): every id must name a component, and one that runs must have a Redis trigger,
/// since only message handlers are reused.
fn reused_components<'a>(
    locked: &LockedApp,
    ids: &'a [String],
    origin: &str,
) -> anyhow::Result<BTreeSet<&'a str>> {
    let mut reuse = BTreeSet::new();
    for id in ids.iter().map(|id| id.trim()).filter(|id| !id.is_empty()) {
        if !locked.components.iter().any(|c| c.id == id) {
            let known: Vec<&str> = locked.components.iter().map(|c| c.id.as_str()).collect();
            anyhow::bail!(
                "{origin}: --reuse-instances {id}: no such component; the app has: {}",
                known.join(", ")
            );
        }
        let subscribes = locked
            .triggers
            .iter()
            .any(|t| t.trigger_type == "redis" && t.component() == Some(id));
        if !subscribes {
            anyhow::bail!(
                "{origin}: --reuse-instances {id}: the component has no [[trigger.redis]]; \
                 only message handlers are reused"
            );
        }
        reuse.insert(id);
    }
    Ok(reuse)
}

/// Runs `future` on a new multi-threaded tokio runtime.
pub fn block_on<T>(future: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(future)
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// Parses `30s`, `500ms`, `2m` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = s.split_at(
        s.find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(s.len()),
    );
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {s:?} (e.g. 30s, 500ms, 2m)"))?;
    let seconds = match unit {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        _ => return Err(format!("invalid duration unit in {s:?} (use ms, s or m)")),
    };
    if seconds <= 0.0 {
        return Err(format!("duration {s:?} must be positive"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Parses `128MiB`, `64KiB`, `1GiB` or a bare number of bytes.
pub fn parse_bytes(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let (number, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let value: usize = number
        .parse()
        .map_err(|_| format!("invalid size {s:?} (e.g. 128MiB)"))?;
    let factor = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" | "KB" => 1 << 10,
        "MiB" | "M" | "MB" => 1 << 20,
        "GiB" | "G" | "GB" => 1 << 30,
        other => {
            return Err(format!(
                "invalid size unit {other:?} in {s:?} (use KiB, MiB or GiB)"
            ));
        }
    };
    value
        .checked_mul(factor)
        .filter(|v| *v > 0)
        .ok_or_else(|| format!("size {s:?} is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("0s").is_err());
        assert_eq!(parse_bytes("128MiB").unwrap(), 128 << 20);
        assert_eq!(parse_bytes("4096").unwrap(), 4096);
        assert!(parse_bytes("12 parsecs").is_err());
    }
}
