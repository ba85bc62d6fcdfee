//! The production shape on one machine, made from `deploy/k8s` itself (not a copy):
//! every SpinApp of an overlay runs as its own `tessera up --component-id …` processes,
//! one per replica; nginx routes the Ingress's paths to them; one Redis persists its data
//! (append-only file) as the Redis Deployment does; localstripe stands in for Stripe.
//! Replicas of a service share its sqlite files, as its pods share a libSQL database.
//!
//! The chaos controls kill, restart and pause the parts (see [`Topology::kill_replica`]).

mod manifests;
mod nginx;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

pub use manifests::{Deployment, Route, Service};

use crate::harness::{
    LocalStripe, RedisServer, TesseraUp, tessera_bin, wait_until, workspace_root,
};
use crate::marketplace::{app_env, link_files, shared_compile_cache};
use nginx::Nginx;

/// How long a replica may take to subscribe to its Redis channels once it serves HTTP.
const SUBSCRIBE_WITHIN: Duration = Duration::from_secs(30);
/// How long a restart keeps trying while the replica's old port is still taken.
const PORT_REUSE_WITHIN: Duration = Duration::from_secs(10);

/// How to start a [`Topology`].
#[derive(Debug, Clone)]
pub struct Options {
    /// The overlay of `deploy/k8s/overlays` to render (`prod`).
    pub overlay: String,
    /// Every service gets at least this many replicas (2), whatever the overlay says.
    pub min_replicas: usize,
    /// nginx's port; `None` picks a free one.
    pub ingress_port: Option<u16>,
    /// `order_lock_seconds` of the app (its default, 180, when `None`).
    pub order_lock_seconds: Option<u64>,
    /// More environment for every replica (e.g. `SPIN_VARIABLE_*`); overrides the rest.
    pub env: Vec<(String, String)>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            overlay: "prod".to_owned(),
            min_replicas: 2,
            ingress_port: None,
            order_lock_seconds: None,
            env: Vec::new(),
        }
    }
}

/// One replica as [`Topology::replicas`] lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaInfo {
    pub service: String,
    pub index: usize,
    /// The process id of its current process, `None` when it was killed.
    pub pid: Option<u32>,
    /// Its HTTP port (the same across restarts, so nginx keeps reaching it).
    pub port: u16,
    pub alive: bool,
}

/// The running production shape; everything it started is stopped on drop.
pub struct Topology {
    nginx: Nginx,
    services: Vec<ServiceReplicas>,
    redis: RedisServer,
    stripe: LocalStripe,
    launch: Launch,
    state: tempfile::TempDir,
    /// Until when Redis is frozen ([`Topology::redis_pause`]).
    redis_paused_until: Option<Instant>,
    /// Redis's append-only file, kept across [`Topology::redis_stop`]/`redis_start`.
    _redis_data: tempfile::TempDir,
}

/// A service and its replicas.
struct ServiceReplicas {
    service: Service,
    /// The Redis channels its components subscribe to (none: it has no Redis trigger).
    channels: BTreeSet<String>,
    replicas: Vec<Replica>,
}

struct Replica {
    /// `service#index`, naming its output.
    label: String,
    port: u16,
    /// The current process; killed ones stay until restarted, so their logs can be read.
    process: Option<TesseraUp>,
    /// The output of the processes it had before the current one.
    earlier_logs: Vec<String>,
}

/// What every replica is started with, besides its components and port.
struct Launch {
    manifest: PathBuf,
    runtime_config: PathBuf,
    state: PathBuf,
    env: Vec<(String, String)>,
}

impl Topology {
    /// Starts the `prod` overlay with at least two replicas per service.
    pub fn start() -> anyhow::Result<Topology> {
        Self::start_with(Options::default())
    }

    /// Renders the overlay, then starts Redis, localstripe, every replica and nginx.
    pub fn start_with(options: Options) -> anyhow::Result<Topology> {
        let root = workspace_root();
        let rendered = manifests::render(&root, &options.overlay)?;
        let deployment = manifests::parse(&rendered, options.min_replicas)?;
        let manifest = root.join("spin.toml");
        let channels = manifests::redis_channels(&manifest)?;

        let redis_data = tempfile::tempdir().context("a directory for Redis's data")?;
        let mut redis_args = deployment.redis_args.clone();
        redis_args.extend(["--dir".to_owned(), redis_data.path().display().to_string()]);
        let redis = RedisServer::start_with_args(redis_args);
        let stripe = LocalStripe::start();

        let state = tempfile::tempdir().context("a state directory")?;
        let stripe_js = format!("{}/js.stripe.com/v3/", stripe.base_url());
        let mut env = app_env(&redis.address(), &stripe.base_url(), &stripe_js);
        if let Some(seconds) = options.order_lock_seconds {
            env.push((
                "SPIN_VARIABLE_ORDER_LOCK_SECONDS".to_owned(),
                seconds.to_string(),
            ));
        }
        env.extend(options.env);
        let launch = Launch {
            manifest,
            runtime_config: root.join("runtime-config.toml"),
            state: state.path().to_owned(),
            env,
        };

        let mut services: Vec<ServiceReplicas> = deployment
            .services
            .into_iter()
            .map(|service| {
                let channels = selected(&service.components, &channels);
                let replicas = (0..service.replicas)
                    .map(|index| Replica {
                        label: format!("{}#{index}", service.name),
                        port: 0,
                        process: None,
                        earlier_logs: Vec::new(),
                    })
                    .collect();
                ServiceReplicas {
                    service,
                    channels,
                    replicas,
                }
            })
            .collect();
        start_replicas(&mut services, &launch)?;

        let upstreams: Vec<(String, Vec<u16>)> = services
            .iter()
            .map(|s| {
                let ports = s.replicas.iter().map(|r| r.port).collect();
                (s.service.name.clone(), ports)
            })
            .collect();
        let nginx = Nginx::start(&deployment.routes, &upstreams, options.ingress_port)?;
        Ok(Topology {
            nginx,
            services,
            redis,
            stripe,
            launch,
            state,
            redis_paused_until: None,
            _redis_data: redis_data,
        })
    }

    /// The ingress (nginx): `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.nginx.base_url()
    }

    /// `path` at the ingress.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url())
    }

    /// The services (SpinApps) and how many replicas each runs.
    pub fn services(&self) -> Vec<Service> {
        self.services.iter().map(|s| s.service.clone()).collect()
    }

    /// Every replica of every service, in the overlay's order.
    pub fn replicas(&mut self) -> Vec<ReplicaInfo> {
        let mut list = Vec::new();
        for s in &mut self.services {
            for (index, replica) in s.replicas.iter_mut().enumerate() {
                let alive = replica.process.as_mut().is_some_and(TesseraUp::is_running);
                let pid = replica
                    .process
                    .as_ref()
                    .map(TesseraUp::pid)
                    .filter(|_| alive);
                list.push(ReplicaInfo {
                    service: s.service.name.clone(),
                    index,
                    pid,
                    port: replica.port,
                    alive,
                });
            }
        }
        list
    }

    /// Kills replica `index` of `service` with SIGKILL, as a crash; nginx sends its
    /// requests to the other replicas. Its output stays readable.
    pub fn kill_replica(&mut self, service: &str, index: usize) -> anyhow::Result<()> {
        let replica = self.replica_mut(service, index)?;
        if let Some(process) = &mut replica.process {
            process.stop();
        }
        Ok(())
    }

    /// Starts replica `index` of `service` again (killing it first if it runs) on the
    /// same port, so nginx's upstream reaches it; waits until it serves and, while Redis
    /// runs (neither stopped nor paused), until it has subscribed to its channels.
    pub fn restart_replica(&mut self, service: &str, index: usize) -> anyhow::Result<()> {
        self.kill_replica(service, index)?;
        let paused = self.redis_paused_until.is_some_and(|t| t > Instant::now());
        let redis_up = self.redis.pid().is_some() && !paused;
        let s = self
            .services
            .iter_mut()
            .find(|s| s.service.name == service)
            .with_context(|| format!("no service {service}"))?;
        let replica = &mut s.replicas[index];
        if let Some(old) = replica.process.take() {
            replica.earlier_logs.push(old.logs());
        }
        let (label, port) = (replica.label.clone(), replica.port);
        let started = Instant::now();
        let process = loop {
            match start_replica(&self.launch, s, &label, port, redis_up) {
                Ok(process) => break process,
                // The killed process's port can linger a moment.
                Err(e)
                    if e.to_string().contains("in use")
                        && started.elapsed() < PORT_REUSE_WITHIN =>
                {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => return Err(e),
            }
        };
        s.replicas[index].process = Some(process);
        Ok(())
    }

    /// Everything replica `index` of `service` printed, across its restarts.
    pub fn logs(&self, service: &str, index: usize) -> anyhow::Result<String> {
        let replica = self.replica(service, index)?;
        let current = replica.process.as_ref().map(TesseraUp::logs);
        Ok(replica
            .earlier_logs
            .iter()
            .cloned()
            .chain(current)
            .collect::<Vec<_>>()
            .join("\n"))
    }

    /// How many lines replica `index` of `service` printed (across its restarts) that
    /// contain every one of `needles`; e.g. `["tessera::request", "path=/api/orders"]`
    /// counts the requests it served there.
    pub fn count_log_lines(
        &self,
        service: &str,
        index: usize,
        needles: &[&str],
    ) -> anyhow::Result<usize> {
        Ok(self
            .logs(service, index)?
            .lines()
            .filter(|line| needles.iter().all(|needle| line.contains(needle)))
            .count())
    }

    /// `redis://127.0.0.1:PORT`, the one Redis of every replica.
    pub fn redis_address(&self) -> String {
        self.redis.address()
    }

    /// Stops Redis (SIGKILL); what it had written to its append-only file survives.
    pub fn redis_stop(&mut self) {
        self.redis.stop();
        self.redis_paused_until = None;
    }

    /// Starts Redis again on the same port with the same data, waiting until it has
    /// loaded it; retries a moment while the port is still taken.
    pub fn redis_start(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            match self.redis.try_start() {
                Ok(()) => return Ok(()),
                Err(e) if e.contains("in use") && started.elapsed() < PORT_REUSE_WITHIN => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => bail!("redis-server did not start again: {e}"),
            }
        }
    }

    /// Freezes Redis (SIGSTOP) until [`Topology::redis_resume`]: connections stay open
    /// and nothing answers.
    pub fn redis_pause(&mut self) -> anyhow::Result<()> {
        signal(self.redis_pid()?, libc::SIGSTOP)?;
        self.redis_paused_until = Some(Instant::now() + Duration::from_secs(365 * 24 * 3600));
        Ok(())
    }

    /// Lets a frozen Redis go on (SIGCONT).
    pub fn redis_resume(&mut self) -> anyhow::Result<()> {
        signal(self.redis_pid()?, libc::SIGCONT)?;
        self.redis_paused_until = None;
        Ok(())
    }

    /// Freezes Redis for `duration` and returns at once; a thread lets it go on (the
    /// outage's length, not a wait for something).
    pub fn redis_pause_for(&mut self, duration: Duration) -> anyhow::Result<()> {
        let pid = self.redis_pid()?;
        signal(pid, libc::SIGSTOP)?;
        self.redis_paused_until = Some(Instant::now() + duration);
        std::thread::spawn(move || {
            std::thread::sleep(duration);
            let _ = signal(pid, libc::SIGCONT);
        });
        Ok(())
    }

    /// localstripe's URL (the replicas' `stripe_api_base`).
    /// Lets localstripe deliver `payment_intent.succeeded` to the app's webhook through
    /// the ingress, signed like Stripe, as Stripe does in production: a charge whose
    /// replica died before recording it is recorded (and refunded if need be) that way.
    pub async fn register_stripe_webhook(&self) -> anyhow::Result<()> {
        let url = format!("{}/api/payments/webhook", self.base_url());
        let resp = reqwest::Client::new()
            .post(format!(
                "{}/_config/webhooks/tessera",
                self.stripe_base_url()
            ))
            .form(&[
                ("url", url.as_str()),
                ("secret", crate::marketplace::STRIPE_WEBHOOK_SECRET),
                ("events[]", "payment_intent.succeeded"),
            ])
            .send()
            .await?;
        anyhow::ensure!(
            resp.status().is_success(),
            "localstripe refused the webhook: {}",
            resp.status()
        );
        Ok(())
    }

    pub fn stripe_base_url(&self) -> String {
        self.stripe.base_url()
    }

    /// Freezes localstripe (SIGSTOP): Stripe hangs, connections are accepted but never
    /// answered.
    pub fn stripe_pause(&self) -> anyhow::Result<()> {
        signal(self.stripe.pid(), libc::SIGSTOP)
    }

    /// Lets a frozen localstripe go on.
    pub fn stripe_resume(&self) -> anyhow::Result<()> {
        signal(self.stripe.pid(), libc::SIGCONT)
    }

    /// The state directory every replica shares: the sqlite files are
    /// `<state>/sqlite/<label>.db`.
    pub fn state_dir(&self) -> &Path {
        self.state.path()
    }

    /// nginx's directory: its configuration (`nginx.conf`) and `access.log`.
    pub fn ingress_dir(&self) -> &Path {
        self.nginx.dir()
    }

    /// Stops everything: nginx, the replicas, Redis, localstripe.
    pub fn stop(&mut self) {
        self.nginx.stop();
        for replica in self.services.iter_mut().flat_map(|s| &mut s.replicas) {
            if let Some(process) = &mut replica.process {
                process.stop();
            }
        }
        self.redis_stop();
        self.stripe.stop();
    }

    fn redis_pid(&self) -> anyhow::Result<u32> {
        self.redis.pid().context("Redis is stopped")
    }

    fn replica(&self, service: &str, index: usize) -> anyhow::Result<&Replica> {
        self.services
            .iter()
            .find(|s| s.service.name == service)
            .with_context(|| format!("no service {service}"))?
            .replicas
            .get(index)
            .with_context(|| format!("{service} has no replica {index}"))
    }

    fn replica_mut(&mut self, service: &str, index: usize) -> anyhow::Result<&mut Replica> {
        self.services
            .iter_mut()
            .find(|s| s.service.name == service)
            .with_context(|| format!("no service {service}"))?
            .replicas
            .get_mut(index)
            .with_context(|| format!("{service} has no replica {index}"))
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // The current processes print their own output as they are dropped.
            for replica in self.services.iter().flat_map(|s| &s.replicas) {
                for (n, logs) in replica.earlier_logs.iter().enumerate() {
                    eprintln!(
                        "---- {} output (process {n}, before its restart) ----\n{logs}",
                        replica.label
                    );
                }
            }
            eprintln!("---- nginx output ----\n{}", self.nginx.logs());
        }
        self.stop();
    }
}

/// The channels the `components` subscribe to (all components' when empty).
fn selected(
    components: &[String],
    channels: &std::collections::BTreeMap<String, BTreeSet<String>>,
) -> BTreeSet<String> {
    channels
        .iter()
        .filter(|(component, _)| components.is_empty() || components.contains(component))
        .flat_map(|(_, channels)| channels.iter().cloned())
        .collect()
}

/// Starts every replica, in two waves: the first replica of every service at once
/// (compiling what the shared compile cache lacks), then all the others at once, from the
/// compiled code the first ones left in the state directory.
fn start_replicas(services: &mut [ServiceReplicas], launch: &Launch) -> anyhow::Result<()> {
    let cache = launch.state.join("cache");
    link_files(&shared_compile_cache(), &cache);
    for first_wave in [true, false] {
        let started: Vec<(usize, usize, anyhow::Result<TesseraUp>)> =
            std::thread::scope(|scope| {
                let mut starts = Vec::new();
                for (s, service) in services.iter().enumerate() {
                    for (r, replica) in service.replicas.iter().enumerate() {
                        if (r == 0) == first_wave {
                            let label = &replica.label;
                            starts.push(scope.spawn(move || {
                                (s, r, start_replica(launch, service, label, 0, true))
                            }));
                        }
                    }
                }
                starts
                    .into_iter()
                    .map(|start| start.join().expect("a replica's start does not panic"))
                    .collect()
            });
        for (s, r, process) in started {
            let process = process?;
            let replica = &mut services[s].replicas[r];
            replica.port = port_of(&process.base_url)?;
            replica.process = Some(process);
        }
        link_files(&cache, &shared_compile_cache());
    }
    Ok(())
}

/// Starts one replica of `service` on `port` (0: any) and waits until it serves HTTP
/// and, when `subscribe` is set, has subscribed to all its Redis channels.
fn start_replica(
    launch: &Launch,
    service: &ServiceReplicas,
    label: &str,
    port: u16,
    subscribe: bool,
) -> anyhow::Result<TesseraUp> {
    let mut command = Command::new(tessera_bin());
    command
        .arg("up")
        .arg("-f")
        .arg(&launch.manifest)
        .args(
            service
                .service
                .components
                .iter()
                .flat_map(|c| ["--component-id", c]),
        )
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--no-dev-services",
        ])
        .arg("--runtime-config-file")
        .arg(&launch.runtime_config)
        .arg("--state-dir")
        .arg(&launch.state)
        .envs(launch.env.iter().map(|(k, v)| (k, v)));
    let process = TesseraUp::start(command)
        .map_err(|output| anyhow::anyhow!("{label} did not start: {output}"))?
        .with_label(label);
    if subscribe {
        let subscribed = |p: &TesseraUp| {
            service
                .channels
                .iter()
                .all(|c| p.count_log_lines(&["Subscribed to ", &format!("/{c}")]) > 0)
        };
        if !wait_until(SUBSCRIBE_WITHIN, || subscribed(&process)) {
            bail!(
                "{label} did not subscribe to {:?} within {SUBSCRIBE_WITHIN:?}:\n{}",
                service.channels,
                process.logs()
            );
        }
    }
    Ok(process)
}

/// The port of `http://127.0.0.1:PORT/`.
fn port_of(base_url: &str) -> anyhow::Result<u16> {
    base_url
        .trim_end_matches('/')
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .with_context(|| format!("no port in {base_url:?}"))
}

/// Sends `signal` to process `pid`.
fn signal(pid: u32, signal: libc::c_int) -> anyhow::Result<()> {
    let pid = libc::pid_t::try_from(pid).context("a process id")?;
    // SAFETY: kill(2) takes plain integers and reports failure through its result.
    if unsafe { libc::kill(pid, signal) } != 0 {
        bail!(
            "cannot signal process {pid}: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}
