//! The production shape on this machine (deploy/k8s's overlay: one `tessera up` process
//! per SpinApp replica, nginx as the ingress, one Redis, localstripe), served until
//! Ctrl-C. `scripts/topology.sh` builds what it needs and runs it.
//!
//!     cargo run --release -p tessera-blackbox --example topology -- [--overlay prod]
//!         [--port 8080] [--min-replicas 2]
//!
//! Each replica's output is copied to target/topology-logs/<service>-<index>.log.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tessera_blackbox::topology::{Options, Topology};
use tessera_blackbox::workspace_root;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = options_from_args()?;
    let started = Instant::now();
    let mut topology = Topology::start_with(options)?;
    topology.register_stripe_webhook().await?;

    let logs = workspace_root().join("target/topology-logs");
    let _ = std::fs::remove_dir_all(&logs);
    std::fs::create_dir_all(&logs)?;
    println!(
        "Started in {:.1}s. Ingress: {}",
        started.elapsed().as_secs_f64(),
        topology.base_url()
    );
    println!(
        "{:<12} {:>5} {:>8} {:>6}",
        "SERVICE", "INDEX", "PID", "PORT"
    );
    for replica in topology.replicas() {
        let pid = replica.pid.map_or("-".to_owned(), |pid| pid.to_string());
        println!(
            "{:<12} {:>5} {:>8} {:>6}",
            replica.service, replica.index, pid, replica.port
        );
    }
    println!(
        "Redis:  {} (data in an append-only file)",
        topology.redis_address()
    );
    println!("Stripe: {} (localstripe)", topology.stripe_base_url());
    println!(
        "sqlite: {}/sqlite/<label>.db, shared by each service's replicas",
        topology.state_dir().display()
    );
    println!(
        "Logs:   {}/<service>-<index>.log, nginx: {}/access.log",
        logs.display(),
        topology.ingress_dir().display()
    );
    println!("Ctrl-C stops everything.");

    let mut copied = std::collections::HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tick.tick() => copy_logs(&topology, &logs, &mut copied)?,
        }
    }
    copy_logs(&topology, &logs, &mut copied)?;
    topology.stop();
    println!("Stopped.");
    Ok(())
}

fn options_from_args() -> anyhow::Result<Options> {
    let mut options = Options {
        ingress_port: Some(8080),
        ..Options::default()
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--overlay" => options.overlay = value()?,
            "--port" => options.ingress_port = Some(value()?.parse()?),
            "--min-replicas" => options.min_replicas = value()?.parse()?,
            other => {
                anyhow::bail!("unknown argument {other}; try --overlay, --port, --min-replicas")
            }
        }
    }
    Ok(options)
}

/// Appends what each replica printed since the last call to its log file.
fn copy_logs(
    topology: &Topology,
    dir: &std::path::Path,
    copied: &mut std::collections::HashMap<PathBuf, usize>,
) -> anyhow::Result<()> {
    for service in topology.services() {
        for index in 0..service.replicas {
            let logs = topology.logs(&service.name, index)?;
            let file = dir.join(format!("{}-{index}.log", service.name));
            let done = copied.entry(file.clone()).or_insert(0);
            let lines: Vec<&str> = logs.lines().skip(*done).collect();
            if lines.is_empty() {
                continue;
            }
            let mut out = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&file)?;
            for line in &lines {
                writeln!(out, "{line}")?;
            }
            *done += lines.len();
        }
    }
    Ok(())
}
