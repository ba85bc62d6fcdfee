//! Processes under test: `tessera up`, `tessera` commands and `redis-server`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The workspace checkout this crate lives in.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace")
        .to_owned()
}

/// The release `tessera` binary (`TESSERA_BIN` overrides), built by `scripts/test.sh`.
pub fn tessera_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("TESSERA_BIN") {
        return PathBuf::from(bin);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from);
    let bin = target.join("release/tessera");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --release -p tessera`",
        bin.display()
    );
    bin
}

/// The conformance guest must have been built (`scripts/test.sh` does it).
pub fn require_guest() {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from);
    let wasm = target.join("wasm32-wasip2/release/conformance_guest.wasm");
    assert!(
        wasm.exists(),
        "{} is missing: build it with `cargo build --release --target wasm32-wasip2 -p conformance-guest`",
        wasm.display()
    );
}

/// A running `tessera up`; killed on drop, printing its output when the test failed.
pub struct TesseraUp {
    child: Child,
    pub base_url: String,
    output: Arc<Mutex<Vec<String>>>,
    label: String,
    _state: Option<tempfile::TempDir>,
}

impl TesseraUp {
    /// Starts `tessera up -f manifest` with `args` and `env`, waiting for the ready line.
    pub fn spawn(manifest: &Path, args: &[&str], env: &[(&str, &str)]) -> TesseraUp {
        let state = tempfile::tempdir().expect("temp dir");
        let mut up = Self::spawn_with_state(manifest, args, env, state.path());
        up._state = Some(state);
        up
    }

    /// Like `spawn`, with a state directory the caller keeps (to test restarts).
    pub fn spawn_with_state(
        manifest: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        state: &Path,
    ) -> TesseraUp {
        let mut command = Command::new(tessera_bin());
        command
            .arg("up")
            .arg("-f")
            .arg(manifest)
            .arg("--state-dir")
            .arg(state);
        Self::spawn_command(command, args, env)
    }

    /// Starts `tessera up --from reference` in `dir` (an app directory with no manifest,
    /// so the state directory defaults to `dir/.spin`), waiting for the ready line.
    pub fn spawn_from_registry(
        reference: &str,
        dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> TesseraUp {
        let mut command = Command::new(tessera_bin());
        command.current_dir(dir).args(["up", "--from", reference]);
        Self::spawn_command(command, args, env)
    }

    fn spawn_command(mut command: Command, args: &[&str], env: &[(&str, &str)]) -> TesseraUp {
        command
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .envs(env.iter().copied());
        Self::start(command)
            .unwrap_or_else(|output| panic!("tessera did not become ready:\n{output}"))
    }

    /// Starts a prepared `tessera up` command (its arguments, `--listen` included, and
    /// environment set) and waits for its ready line. When it exits or is not ready within
    /// two minutes (it is then killed), the error is its output.
    pub fn start(mut command: Command) -> Result<TesseraUp, String> {
        command.env_remove("RUST_BACKTRACE");
        const READY: &str = "Serving HTTP on ";
        let started = spawn_watching(command, &[READY], Duration::from_secs(120))?;
        let base_url = started
            .line
            .split_once(READY)
            .map_or("", |(_, url)| url.trim());
        Ok(TesseraUp {
            child: started.child,
            base_url: base_url.to_owned(),
            output: started.output,
            label: "tessera".to_owned(),
            _state: None,
        })
    }

    /// Names this process in the output printed when a test fails (default `tessera`).
    pub fn with_label(mut self, label: &str) -> TesseraUp {
        self.label = label.to_owned();
        self
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url.trim_end_matches('/'), path)
    }

    pub fn logs(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }

    /// How many captured output lines contain every one of `needles`.
    pub fn count_log_lines(&self, needles: &[&str]) -> usize {
        let output = self.output.lock().unwrap();
        output
            .iter()
            .filter(|line| needles.iter().all(|needle| line.contains(needle)))
            .count()
    }

    /// Polls the captured output until `needle` appears or the deadline passes.
    pub fn wait_for_log(&self, needle: &str, deadline: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < deadline {
            if self.logs().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl TesseraUp {
    /// Stops the process now (SIGKILL, like a crash); its output stays readable.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Asks the host to stop (SIGTERM, as Kubernetes does) and waits for it to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().expect("wait for tessera")
    }
}

impl Drop for TesseraUp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- {} output ----\n{}", self.label, self.logs());
        }
    }
}

/// A child process that printed one of the lines it was watched for; what it prints is
/// collected in `output`.
pub(crate) struct Watched {
    pub child: Child,
    /// The first line that contained a needle.
    pub line: String,
    pub output: Arc<Mutex<Vec<String>>>,
}

/// Spawns `command` with its stdout and stderr collected, and waits until one of their
/// lines contains one of `needles`. When the process exits first (its streams close) or
/// `within` passes (it is then killed), the error is what it printed.
pub(crate) fn spawn_watching(
    mut command: Command,
    needles: &'static [&'static str],
    within: Duration,
) -> Result<Watched, String> {
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {program}: {e}"))?;
    let output = Arc::new(Mutex::new(Vec::new()));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    if let Some(stdout) = child.stdout.take() {
        drain(stdout, output.clone(), Some((needles, ready_tx.clone())));
    }
    if let Some(stderr) = child.stderr.take() {
        drain(stderr, output.clone(), Some((needles, ready_tx)));
    }
    match ready_rx.recv_timeout(within) {
        Ok(line) => Ok(Watched {
            child,
            line,
            output,
        }),
        Err(wait) => {
            let _ = child.kill();
            let _ = child.wait();
            let why = match wait {
                std::sync::mpsc::RecvTimeoutError::Timeout => {
                    format!("not ready within {within:?}")
                }
                std::sync::mpsc::RecvTimeoutError::Disconnected => "exited".to_owned(),
            };
            let printed = output.lock().unwrap_or_else(|e| e.into_inner()).join("\n");
            Err(format!("{program} {why}:\n{printed}"))
        }
    }
}

/// Collects the lines of `stream` into `output` on a thread; the first line containing
/// one of the needles of `watch` is sent on its channel.
fn drain(
    stream: impl std::io::Read + Send + 'static,
    output: Arc<Mutex<Vec<String>>>,
    mut watch: Option<(&'static [&'static str], std::sync::mpsc::Sender<String>)>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            let seen = watch
                .as_ref()
                .is_some_and(|(needles, _)| needles.iter().any(|n| line.contains(n)));
            output
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(line.clone());
            if seen && let Some((_, tx)) = watch.take() {
                let _ = tx.send(line);
            }
        }
    });
}

/// Runs `tessera` to completion (for commands that should fail fast).
pub fn run_tessera(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let out = Command::new(tessera_bin())
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run tessera");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Debian's `docker-registry` (the CNCF distribution registry) on a free loopback port,
/// storing into a temporary directory; stopped on drop.
pub struct RegistryServer {
    child: Child,
    pub port: u16,
    storage: tempfile::TempDir,
}

impl RegistryServer {
    pub fn start() -> RegistryServer {
        let storage = tempfile::tempdir().expect("registry storage dir");
        let (child, port) = start_on_free_port("docker-registry", |port| {
            let config = storage.path().join("config.yml");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                    storage.path().join("data").display()
                ),
            )
            .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
            let mut command = Command::new("/usr/bin/docker-registry");
            command.arg("serve").arg(&config);
            // Logged once the port is bound; a taken port ends it with "address already in use".
            let started = spawn_watching(command, &["listening on "], Duration::from_secs(10))?;
            Ok((started.child, port))
        });
        RegistryServer {
            child,
            port,
            storage,
        }
    }

    /// `127.0.0.1:PORT`, the registry part of a reference.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The file holding a blob's bytes in the registry's storage (to corrupt it).
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        self.storage
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for RegistryServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real `redis-server` on a free loopback port, stopped on drop.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    /// Its settings, after `--port` and `--bind`.
    args: Vec<String>,
}

impl RedisServer {
    /// Keyspace notifications for expired keys on, nothing written to disk.
    pub fn start() -> RedisServer {
        Self::start_with_args(Self::default_args())
    }

    /// The settings of [`RedisServer::start`].
    fn default_args() -> Vec<String> {
        let args = [
            "--save",
            "",
            "--appendonly",
            "no",
            "--notify-keyspace-events",
            "Ex",
        ];
        args.map(str::to_owned).to_vec()
    }

    /// With `args` as its settings (e.g. an append-only file in a directory of the
    /// caller's), on a free port.
    pub fn start_with_args(args: Vec<String>) -> RedisServer {
        start_on_free_port("redis-server", |port| {
            let mut server = RedisServer {
                child: None,
                port,
                args: args.clone(),
            };
            server.try_start()?;
            Ok(server)
        })
    }

    /// A handle to a Redis someone else started on `port` (nothing to stop; a
    /// [`RedisServer::restart`] starts one there with the settings of `start`).
    pub fn existing(port: u16) -> RedisServer {
        RedisServer {
            child: None,
            port,
            args: Self::default_args(),
        }
    }

    pub fn address(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts (again) on the same port and waits until it answers.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(e) = self.try_start() {
            panic!("redis-server did not start on port {}: {e}", self.port);
        }
    }

    /// Starts on its port, unless running, and waits until it accepts connections (after
    /// loading its data). The error says why not, e.g. that the port is taken.
    pub fn try_start(&mut self) -> Result<(), String> {
        if self.child.is_some() {
            return Ok(());
        }
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(&self.args);
        let started = spawn_watching(
            command,
            &["Ready to accept connections"],
            Duration::from_secs(10),
        )
        .map_err(|e| {
            if e.starts_with("cannot start") {
                format!("{e} (scripts/setup.sh installs redis-server)")
            } else {
                e
            }
        })?;
        self.child = Some(started.child);
        Ok(())
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether `member` is in the sorted set `key`.
    pub fn zscore(&self, key: &str, member: &str) -> bool {
        let Ok(client) = redis::Client::open(self.address()) else {
            return false;
        };
        let Ok(mut conn) = client.get_connection() else {
            return false;
        };
        let score: redis::RedisResult<Option<f64>> =
            redis::cmd("ZSCORE").arg(key).arg(member).query(&mut conn);
        matches!(score, Ok(Some(_)))
    }

    /// Whether `key` exists (e.g. a deadline timer with a TTL).
    pub fn exists(&self, key: &str) -> bool {
        let Ok(client) = redis::Client::open(self.address()) else {
            return false;
        };
        let Ok(mut conn) = client.get_connection() else {
            return false;
        };
        matches!(redis::cmd("EXISTS").arg(key).query::<i64>(&mut conn), Ok(1))
    }

    pub fn publish(&self, channel: &str, message: &str) {
        let client = redis::Client::open(self.address()).unwrap();
        let mut conn = client.get_connection().unwrap();
        let _: i64 = redis::cmd("PUBLISH")
            .arg(channel)
            .arg(message)
            .query(&mut conn)
            .unwrap();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback port that was free a moment ago. Another process may take it before the
/// caller binds it: servers that cannot bind port 0 themselves start through
/// [`start_on_free_port`], which tries again on another port.
///
/// Never the same port twice in one process: the kernel may hand a port just released to
/// the next bind, and two tests of one binary starting servers at the same time would
/// then be given one port (a server that lost the race exits, and a readiness check that
/// only connects is answered by the other one).
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free loopback port")
            .port();
        // A poisoned lock still holds a consistent set.
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if given.insert(port) {
            return port;
        }
    }
}

/// How many ports [`start_on_free_port`] tries.
const PORT_TRIES: usize = 5;

/// Starts a server that must be told its port (`start(port)`) on a free port, and on
/// another one when the start fails (typically because another process took the port
/// between [`free_port`] and the server's bind), up to [`PORT_TRIES`] times.
pub fn start_on_free_port<T>(what: &str, mut start: impl FnMut(u16) -> Result<T, String>) -> T {
    let mut failures = Vec::new();
    for _ in 0..PORT_TRIES {
        let port = free_port();
        match start(port) {
            Ok(server) => return server,
            Err(e) => failures.push(format!("on port {port}: {e}")),
        }
    }
    panic!(
        "{what} did not start on any of {PORT_TRIES} ports:\n{}",
        failures.join("\n")
    );
}

pub fn port_answers(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// Polls `check` until it holds or `deadline` passes.
pub fn wait_until(deadline: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// localstripe (a fake Stripe API) on a free loopback port, stopped on drop.
/// `scripts/setup.sh` installs it into the project's `.venv`.
pub struct LocalStripe {
    child: Child,
    pub port: u16,
}

impl LocalStripe {
    pub fn start() -> LocalStripe {
        let root = workspace_root();
        let python = root.join(".venv/bin/python");
        assert!(
            python.exists(),
            "{} is missing: run scripts/setup.sh (it installs localstripe)",
            python.display()
        );
        // Port 0: the script binds any free port and announces it once bound.
        let mut command = Command::new(python);
        command
            .arg(root.join("scripts/run_localstripe.py"))
            .arg("0");
        const READY: &str = "localstripe listening on http://127.0.0.1:";
        let started = spawn_watching(command, &[READY], Duration::from_secs(20))
            .unwrap_or_else(|e| panic!("localstripe did not start: {e}"));
        let mut child = started.child;
        let announced = started.line.split_once(READY).map(|(_, port)| port.trim());
        let Some(Ok(port)) = announced.map(str::parse) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("localstripe announced no port: {}", started.line);
        };
        LocalStripe { child, port }
    }

    /// The process id (to pause it: a hung Stripe).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl LocalStripe {
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for LocalStripe {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A TCP forwarder on a free loopback port that can be switched off: then it accepts
/// and at once closes every connection, as a server that went away (the caller sees a
/// reset or an empty reply). Used to take Stripe down without losing its state.
pub struct TcpSwitch {
    pub port: u16,
    open: Arc<std::sync::atomic::AtomicBool>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TcpSwitch {
    /// Forwards to `127.0.0.1:target`, switched on.
    pub fn start(target: u16) -> TcpSwitch {
        use std::sync::atomic::{AtomicBool, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the switch");
        let port = listener.local_addr().expect("switch address").port();
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let open = Arc::new(AtomicBool::new(true));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let is_open = open.clone();
        // Its own thread and runtime, so it outlives no test runtime and needs none.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("switch runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let accept = async {
                    while let Ok((mut inbound, _)) = listener.accept().await {
                        if !is_open.load(Ordering::SeqCst) {
                            drop(inbound);
                            continue;
                        }
                        tokio::spawn(async move {
                            if let Ok(mut outbound) =
                                tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                            {
                                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound)
                                    .await;
                            }
                        });
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = stopped => {}
                }
            });
        });
        TcpSwitch {
            port,
            open,
            stop: Some(stop),
        }
    }

    /// Switches forwarding on or off (new connections only).
    pub fn set_open(&self, open: bool) {
        self.open.store(open, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for TcpSwitch {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Everything published on some Redis channels from the moment it is started: lets a
/// test observe an event itself (e.g. that `expiration:complete` was published), not
/// only an effect that another mechanism could also have caused.
pub struct ChannelWatch {
    messages: Arc<Mutex<Vec<(String, String)>>>,
}

impl ChannelWatch {
    /// Subscribes to `channels` on the Redis at `address`; returns once subscribed.
    pub fn start(address: &str, channels: &[&str]) -> ChannelWatch {
        let client = redis::Client::open(address).expect("a Redis address");
        let mut connection = client.get_connection().expect("connect to Redis");
        let messages = Arc::new(Mutex::new(Vec::new()));
        let (subscribed, ready) = std::sync::mpsc::channel();
        let channels: Vec<String> = channels.iter().map(|c| c.to_string()).collect();
        let sink = messages.clone();
        std::thread::spawn(move || {
            let mut pubsub = connection.as_pubsub();
            for channel in &channels {
                pubsub.subscribe(channel).expect("SUBSCRIBE");
            }
            let _ = subscribed.send(());
            // Ends when Redis goes away (the test's server stops).
            while let Ok(message) = pubsub.get_message() {
                let payload: String = message.get_payload().unwrap_or_default();
                let channel = message.get_channel_name().to_owned();
                sink.lock().unwrap().push((channel, payload));
            }
        });
        ready
            .recv_timeout(Duration::from_secs(10))
            .expect("subscribed to Redis");
        ChannelWatch { messages }
    }

    /// The payloads published on `channel` so far, in order.
    pub fn payloads(&self, channel: &str) -> Vec<String> {
        let messages = self.messages.lock().unwrap();
        messages
            .iter()
            .filter(|(c, _)| c == channel)
            .map(|(_, payload)| payload.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_on_a_taken_port_fails_at_once_and_another_port_is_tried() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = taken.local_addr().expect("address").port();
        let started = Instant::now();
        let error = RedisServer::existing(port)
            .try_start()
            .expect_err("the port is taken");
        assert!(error.contains("in use"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(5), "{error}");

        let mut tried = Vec::new();
        let second = start_on_free_port("a server", |port| {
            tried.push(port);
            if tried.len() == 1 {
                Err("address already in use".to_owned())
            } else {
                Ok(port)
            }
        });
        assert_eq!(tried.len(), 2);
        assert_eq!(second, tried[1]);
    }
}
