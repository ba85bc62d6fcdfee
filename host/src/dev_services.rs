//! Development services: when the app's Redis is on loopback and nothing answers there,
//! `tessera up` starts `redis-server` as a child process (keyspace notifications on,
//! nothing written to disk) and stops it on exit. Never for a remote address.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;

/// A `redis-server` started by Tessera; killed when dropped.
pub struct DevRedis {
    child: Child,
    pub address: String,
}

impl Drop for DevRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        eprintln!("Stopped dev Redis at {}", self.address);
    }
}

/// Starts Redis for `address` if it is a loopback address with nothing listening.
/// Async so that waiting for it never blocks a runtime worker thread.
pub async fn ensure_redis(address: &str, state_dir: &Path) -> anyhow::Result<Option<DevRedis>> {
    let url =
        url::Url::parse(address).with_context(|| format!("invalid Redis address {address:?}"))?;
    let host = url.host_str().unwrap_or("");
    let port = url.port().unwrap_or(6379);
    let Some(socket) = tokio::net::lookup_host((host, port))
        .await
        .ok()
        .and_then(|mut a| a.next())
    else {
        return Ok(None);
    };
    if !socket.ip().is_loopback() || answers(socket).await {
        return Ok(None);
    }
    let dir = state_dir.join("redis");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut command = Command::new("redis-server");
    command
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            &socket.ip().to_string(),
        ])
        .args([
            "--save",
            "",
            "--appendonly",
            "no",
            "--notify-keyspace-events",
            "Ex",
        ])
        .arg("--dir")
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: prctl is async-signal-safe; it asks the kernel to stop Redis if Tessera
    // dies without running destructors (e.g. SIGKILL), so no orphan keeps the port.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let child = match command.spawn() {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!(
                "nothing answers at {address} and redis-server is not installed (apt-get install redis-server); Redis triggers will keep retrying"
            );
            return Ok(None);
        }
        Err(e) => return Err(e).context("cannot start redis-server"),
    };
    let dev = DevRedis {
        child,
        address: address.to_owned(),
    };
    let ready = async {
        while !answers(socket).await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(5), ready)
        .await
        .is_err()
    {
        anyhow::bail!("started redis-server for {address}, but it did not answer within 5s");
    }
    eprintln!("Started dev Redis at {address} (pid {})", dev.child.id());
    Ok(Some(dev))
}

async fn answers(addr: SocketAddr) -> bool {
    let connect = tokio::net::TcpStream::connect(addr);
    matches!(
        tokio::time::timeout(Duration::from_millis(300), connect).await,
        Ok(Ok(_))
    )
}
