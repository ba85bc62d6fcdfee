//! nginx as the ingress: a configuration made from the Ingress's routes and each
//! service's replica ports, run from a temporary directory that holds everything it
//! writes (pid file, temp paths, logs).

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};

use super::manifests::Route;
use crate::harness::{Watched, free_port, port_answers, spawn_watching, wait_until};

/// How many ports are tried when any free port will do.
const PORT_TRIES: usize = 5;

/// A running nginx; stopped on drop.
pub struct Nginx {
    child: Child,
    pub port: u16,
    output: Arc<Mutex<Vec<String>>>,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// Starts nginx in front of `upstreams` (service → replica ports) with `routes`, on
    /// `port`, or on a free port when `None` (trying another one if it is taken).
    pub fn start(
        routes: &[Route],
        upstreams: &[(String, Vec<u16>)],
        port: Option<u16>,
    ) -> anyhow::Result<Nginx> {
        let dir = tempfile::tempdir().context("a directory for nginx")?;
        let tries = if port.is_some() { 1 } else { PORT_TRIES };
        let mut failures = Vec::new();
        for _ in 0..tries {
            let port = port.unwrap_or_else(free_port);
            let conf = dir.path().join("nginx.conf");
            std::fs::write(&conf, config(dir.path(), port, routes, upstreams))
                .with_context(|| format!("cannot write {}", conf.display()))?;
            match run(dir.path(), &conf, port) {
                Ok(started) => {
                    return Ok(Nginx {
                        child: started.child,
                        port,
                        output: started.output,
                        dir,
                    });
                }
                Err(e) => failures.push(format!("on port {port}: {e}")),
            }
        }
        bail!("nginx did not start:\n{}", failures.join("\n"))
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What nginx logged (errors and notices; requests are in `access.log` of its
    /// directory).
    pub fn logs(&self) -> String {
        self.output
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .join("\n")
    }

    /// The directory holding its configuration and `access.log`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Nginx {
    /// Stops nginx: a fast shutdown (SIGTERM) that stops its worker too, then waits.
    pub fn stop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        let terminated = libc::pid_t::try_from(self.child.id())
            // SAFETY: kill(2) takes plain integers and reports failure through its result.
            .is_ok_and(|pid| unsafe { libc::kill(pid, libc::SIGTERM) } == 0);
        if !terminated
            || !wait_until(Duration::from_secs(5), || {
                !matches!(self.child.try_wait(), Ok(None))
            })
        {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs nginx with `conf` until it has bound `port` and started its worker; the error
/// is its output (e.g. that the port is taken).
fn run(prefix: &Path, conf: &Path, port: u16) -> Result<Watched, String> {
    // Debian installs it in /usr/sbin, which is not on every user's PATH.
    let program = Path::new("/usr/sbin/nginx");
    let mut command = Command::new(if program.exists() {
        program
    } else {
        Path::new("nginx")
    });
    command
        .arg("-p")
        .arg(prefix)
        .arg("-c")
        .arg(conf)
        // Errors before the configuration is read go to stderr too, not /var/log/nginx.
        .args(["-e", "stderr", "-g", "daemon off;"]);
    // The master logs this once it has bound its ports and forks the worker. A taken port
    // makes nginx retry its bind for a few seconds before giving up: "in use" ends it at once.
    let mut started = spawn_watching(
        command,
        &["start worker process", "Address already in use"],
        Duration::from_secs(20),
    )
    .map_err(|e| {
        if e.starts_with("cannot start") {
            format!("{e} (scripts/setup.sh installs nginx)")
        } else {
            e
        }
    })?;
    let failure = if started.line.contains("Address already in use") {
        Some(started.line.clone())
    } else if !wait_until(Duration::from_secs(5), || port_answers(port)) {
        Some(format!("nginx does not answer on {port}"))
    } else {
        None
    };
    if let Some(failure) = failure {
        let _ = started.child.kill();
        let _ = started.child.wait();
        return Err(failure);
    }
    Ok(started)
}

/// The configuration: one upstream per service listing its replicas, one location per
/// Ingress path. A refused connection (a dead replica) or a connect timeout sends the
/// request to the next replica: nginx does that before anything was sent, so even a
/// POST is retried safely; replicas are never marked down (as ingress-nginx's default
/// `max-fails: 0`), so a restarted replica is used again at once.
pub fn config(dir: &Path, port: u16, routes: &[Route], upstreams: &[(String, Vec<u16>)]) -> String {
    let dir = dir.display();
    let mut conf = String::new();
    // Workers of a root master run as `nobody` unless told otherwise, and could not
    // write the temporary directory's files.
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        conf.push_str("user root;\n");
    }
    let _ = write!(
        conf,
        "worker_processes 1;
pid {dir}/nginx.pid;
error_log stderr notice;
events {{ worker_connections 1024; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    client_max_body_size 10m;
"
    );
    for (service, ports) in upstreams {
        let _ = writeln!(conf, "    upstream {service} {{");
        for port in ports {
            let _ = writeln!(conf, "        server 127.0.0.1:{port} max_fails=0;");
        }
        conf.push_str("    }\n");
    }
    let _ = write!(
        conf,
        "    server {{
        listen 127.0.0.1:{port};
        proxy_http_version 1.1;
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_connect_timeout 2s;
        proxy_next_upstream error timeout;
"
    );
    for route in routes {
        let service = &route.service;
        // Kubernetes' Prefix matches whole path segments: /api/users and /api/users/…,
        // not /api/usersX.
        let path = route.path.trim_end_matches('/');
        if route.exact {
            let _ = writeln!(
                conf,
                "        location = {} {{ proxy_pass http://{service}; }}",
                route.path
            );
        } else if path.is_empty() {
            let _ = writeln!(
                conf,
                "        location / {{ proxy_pass http://{service}; }}"
            );
        } else {
            let _ = writeln!(
                conf,
                "        location = {path} {{ proxy_pass http://{service}; }}"
            );
            let _ = writeln!(
                conf,
                "        location {path}/ {{ proxy_pass http://{service}; }}"
            );
        }
    }
    conf.push_str("    }\n}\n");
    conf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_and_prefix_locations() {
        let routes = [
            Route {
                path: "/api/orders".into(),
                exact: false,
                service: "orders".into(),
            },
            Route {
                path: "/".into(),
                exact: false,
                service: "web".into(),
            },
        ];
        let upstreams = [
            ("orders".to_owned(), vec![4001, 4002]),
            ("web".to_owned(), vec![4003]),
        ];
        let conf = config(Path::new("/tmp/x"), 8080, &routes, &upstreams);
        assert!(conf.contains("upstream orders {\n        server 127.0.0.1:4001 max_fails=0;\n        server 127.0.0.1:4002 max_fails=0;\n    }"), "{conf}");
        assert!(
            conf.contains("location = /api/orders { proxy_pass http://orders; }"),
            "{conf}"
        );
        assert!(
            conf.contains("location /api/orders/ { proxy_pass http://orders; }"),
            "{conf}"
        );
        assert!(
            conf.contains("location / { proxy_pass http://web; }"),
            "{conf}"
        );
        assert!(conf.contains("listen 127.0.0.1:8080;"), "{conf}");
        assert!(conf.contains("pid /tmp/x/nginx.pid;"), "{conf}");
    }
}
