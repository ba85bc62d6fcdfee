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
        let mut child = command
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .envs(env.iter().copied())
            .env_remove("RUST_BACKTRACE")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tessera");
        let output = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        drain(child.stdout.take().unwrap(), output.clone(), None);
        drain(child.stderr.take().unwrap(), output.clone(), Some(ready_tx));
        let base_url = match ready_rx.recv_timeout(Duration::from_secs(120)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "tessera did not become ready:\n{}",
                    output.lock().unwrap().join("\n")
                );
            }
        };
        TesseraUp {
            child,
            base_url,
            output,
            _state: None,
        }
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
}

impl Drop for TesseraUp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- tessera output ----\n{}", self.logs());
        }
    }
}

fn drain(
    stream: impl std::io::Read + Send + 'static,
    output: Arc<Mutex<Vec<String>>>,
    ready: Option<std::sync::mpsc::Sender<String>>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if let (Some(tx), Some(url)) = (&ready, line.strip_prefix("Serving HTTP on ")) {
                let _ = tx.send(url.trim().to_owned());
            }
            output.lock().unwrap().push(line);
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
        let port = free_port();
        let config = storage.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                storage.path().join("data").display()
            ),
        )
        .expect("write registry config");
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry is installed (scripts/setup.sh installs it)");
        let server = RegistryServer {
            child,
            port,
            storage,
        };
        assert!(
            wait_until(Duration::from_secs(10), || port_answers(port)),
            "docker-registry did not start"
        );
        server
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
}

impl RedisServer {
    pub fn start() -> RedisServer {
        let port = free_port();
        let mut server = RedisServer { child: None, port };
        server.restart();
        server
    }

    /// A handle to a Redis someone else started on `port` (nothing to stop).
    pub fn existing(port: u16) -> RedisServer {
        RedisServer { child: None, port }
    }

    pub fn address(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts (again) on the same port and waits until it answers.
    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--notify-keyspace-events", "Ex"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/setup.sh installs it)");
        self.child = Some(child);
        assert!(
            wait_until(Duration::from_secs(5), || port_answers(self.port)),
            "redis-server did not start"
        );
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

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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
        let port = free_port();
        let child = Command::new(python)
            .arg(root.join("scripts/run_localstripe.py"))
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start localstripe");
        let stripe = LocalStripe { child, port };
        assert!(
            wait_until(Duration::from_secs(20), || port_answers(port)),
            "localstripe did not start"
        );
        stripe
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for LocalStripe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
