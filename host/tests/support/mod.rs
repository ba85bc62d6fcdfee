//! Real database and broker servers for the outbound tests: Debian's `postgresql`,
//! `mariadb-server` and `mosquitto` (installed by `scripts/setup.sh`), each started on a
//! free loopback port with its data in a temp dir, and killed (by PID) on drop.

#![allow(dead_code)] // each test binary uses some of these

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tessera_blackbox::{free_port, port_answers, wait_until};

/// A server process and the temp dir holding its data.
struct Server {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
    name: &'static str,
}

impl Server {
    fn wait_ready(mut self) -> Server {
        let port = self.port;
        if !wait_until(Duration::from_secs(30), || port_answers(port)) {
            let _ = self.child.kill();
            panic!(
                "{} did not start on port {port}; see {}",
                self.name,
                self.dir.path().display()
            );
        }
        self
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_root() -> bool {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() == 0 }
}

/// The uid and gid of a system user, e.g. `postgres`.
fn user_ids(name: &str) -> Option<(u32, u32)> {
    let name = std::ffi::CString::new(name).ok()?;
    // SAFETY: getpwnam returns null or a pointer to a static record we read at once.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    (!pw.is_null()).then(|| unsafe { ((*pw).pw_uid, (*pw).pw_gid) })
}

fn run(command: &mut Command, what: &str) {
    let out = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e} (run scripts/setup.sh)"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn quiet(command: &mut Command, log: &Path) -> Child {
    let log = std::fs::File::create(log).expect("log file");
    command
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn server")
}

/// PostgreSQL with a trust-auth superuser `tessera` and the `postgres` database.
pub struct Postgres(Server);

impl Postgres {
    pub fn start() -> Postgres {
        let bin = glob::glob("/usr/lib/postgresql/*/bin/postgres")
            .ok()
            .and_then(|mut g| g.next())
            .and_then(Result::ok)
            .map(|p| p.parent().unwrap().to_owned())
            .expect("PostgreSQL is not installed: run scripts/setup.sh");
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let port = free_port();
        // PostgreSQL refuses to run as root: run it as the `postgres` system user.
        let ids = is_root().then(|| user_ids("postgres").expect("no postgres user"));
        let as_user = |c: &mut Command| {
            use std::os::unix::process::CommandExt;
            if let Some((uid, gid)) = ids {
                c.uid(uid).gid(gid);
            }
        };
        if let Some((uid, gid)) = ids {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .args([
                "-U",
                "tessera",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(&data);
        as_user(&mut initdb);
        run(&mut initdb, "initdb");
        let mut postgres = Command::new(bin.join("postgres"));
        postgres
            .arg("-D")
            .arg(&data)
            .args([
                "-p",
                &port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
            ])
            .arg("-k")
            .arg(dir.path());
        as_user(&mut postgres);
        let child = quiet(&mut postgres, &dir.path().join("postgres.log"));
        Postgres(
            Server {
                child,
                dir,
                port,
                name: "postgres",
            }
            .wait_ready(),
        )
    }

    pub fn port(&self) -> u16 {
        self.0.port
    }

    /// The address a guest opens (URL form).
    pub fn address(&self) -> String {
        format!("postgres://tessera@127.0.0.1:{}/postgres", self.0.port)
    }
}

/// MariaDB with a passwordless `root` and an empty `tessera` database.
pub struct MariaDb(Server);

impl MariaDb {
    pub fn start() -> MariaDb {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let port = free_port();
        let user = if is_root() {
            "root".to_owned()
        } else {
            whoami()
        };
        run(
            Command::new("mariadb-install-db")
                .arg("--no-defaults")
                .arg(format!("--datadir={}", data.display()))
                .arg(format!("--user={user}"))
                .args(["--auth-root-authentication-method=normal", "--skip-test-db"]),
            "mariadb-install-db",
        );
        let mut mariadbd = Command::new("mariadbd");
        mariadbd
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!(
                "--socket={}",
                dir.path().join("mysqld.sock").display()
            ))
            .arg(format!(
                "--pid-file={}",
                dir.path().join("mysqld.pid").display()
            ))
            .arg(format!("--port={port}"))
            .arg(format!("--user={user}"))
            .args([
                "--bind-address=127.0.0.1",
                "--skip-log-bin",
                "--innodb-flush-log-at-trx-commit=0",
            ]);
        let child = quiet(&mut mariadbd, &dir.path().join("mariadb.log"));
        let server = MariaDb(
            Server {
                child,
                dir,
                port,
                name: "mariadbd",
            }
            .wait_ready(),
        );
        server.create_database();
        server
    }

    fn create_database(&self) {
        let url = format!("mysql://root@127.0.0.1:{}/", self.0.port);
        // On its own thread: the caller may be inside a tokio runtime already.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                use mysql_async::prelude::Queryable;
                let mut conn = mysql_async::Conn::from_url(url)
                    .await
                    .expect("connect to mariadb");
                conn.query_drop("CREATE DATABASE IF NOT EXISTS tessera")
                    .await
                    .unwrap();
                conn.disconnect().await.unwrap();
            });
        })
        .join()
        .expect("create the tessera database");
    }

    pub fn port(&self) -> u16 {
        self.0.port
    }

    pub fn address(&self) -> String {
        format!("mysql://root@127.0.0.1:{}/tessera", self.0.port)
    }
}

fn whoami() -> String {
    std::env::var("USER").unwrap_or_else(|_| "root".into())
}

/// Mosquitto accepting anonymous clients.
pub struct Mosquitto(Server);

impl Mosquitto {
    pub fn start() -> Mosquitto {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let conf: PathBuf = dir.path().join("mosquitto.conf");
        let mut settings =
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n");
        if is_root() {
            // Stay root instead of switching to `mosquitto`, which cannot read the temp dir.
            settings.push_str("user root\n");
        }
        std::fs::write(&conf, settings).unwrap();
        let child = quiet(
            Command::new("mosquitto").arg("-c").arg(&conf),
            &dir.path().join("mosquitto.log"),
        );
        Mosquitto(
            Server {
                child,
                dir,
                port,
                name: "mosquitto",
            }
            .wait_ready(),
        )
    }

    pub fn port(&self) -> u16 {
        self.0.port
    }

    pub fn address(&self) -> String {
        format!(
            "mqtt://127.0.0.1:{}?client_id=tessera-test-guest",
            self.0.port
        )
    }
}
