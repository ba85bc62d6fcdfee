//! `tessera watch`, run for real: a copy of `apps/watch` in a temp dir, whose build script
//! copies one of several prebuilt wasm files (the conformance guest, tagged v1 or v2 in a
//! custom section) and writes the version into a file each component serves. Files are
//! changed on disk and the app is driven over HTTP; every wait polls with a deadline.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tessera_blackbox::{
    RedisServer, TesseraUp, require_guest, run_tessera, tessera_bin, workspace_root,
};

/// Long enough for a build plus a compile of the guest on a busy two-core machine.
const DEADLINE: Duration = Duration::from_secs(90);

/// A scratch copy of the watch test app.
struct WatchApp {
    dir: tempfile::TempDir,
}

impl WatchApp {
    /// The app with both components' `src/version` at v1, not built yet.
    fn new() -> WatchApp {
        require_guest();
        let dir = tempfile::tempdir().expect("temp dir");
        let app = WatchApp { dir };
        let template = workspace_root().join("host/tests/apps/watch");
        for file in ["spin.toml", "build.sh"] {
            std::fs::copy(template.join(file), app.path(file)).expect("copy the test app");
        }
        let guest = std::fs::read(guest_wasm()).expect("read the conformance guest");
        std::fs::create_dir(app.path("wasm")).unwrap();
        for version in ["v1", "v2"] {
            std::fs::write(
                app.path(&format!("wasm/{version}.wasm")),
                tagged(&guest, version),
            )
            .unwrap();
        }
        std::fs::write(app.path("wasm/junk.wasm"), b"not a component").unwrap();
        for component in ["one", "two"] {
            std::fs::create_dir_all(app.path(&format!("{component}/src"))).unwrap();
            app.set_version(component, "v1");
        }
        app
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// What `component`'s next build produces: `v1`, `v2`, `junk` (an invalid wasm) or
    /// `broken` (the build fails).
    fn set_version(&self, component: &str, version: &str) {
        std::fs::write(self.path(&format!("{component}/src/version")), version).unwrap();
    }

    /// The components built so far, in order.
    fn builds(&self) -> Vec<String> {
        std::fs::read_to_string(self.path("build.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Puts `version` in place as if `component` had been built, without building.
    fn install_prebuilt(&self, component: &str, version: &str) {
        std::fs::create_dir_all(self.path("out")).unwrap();
        std::fs::write(self.path(&format!("out/{component}.txt")), version).unwrap();
        std::fs::copy(
            self.path(&format!("wasm/{version}.wasm")),
            self.path(&format!("out/{component}.wasm")),
        )
        .unwrap();
    }

    /// Starts `tessera watch` on the app and waits until it serves.
    fn watch(&self, args: &[&str]) -> TesseraUp {
        let mut command = Command::new(tessera_bin());
        command
            .arg("watch")
            .arg("-f")
            .arg(self.path("spin.toml"))
            .args(["--listen", "127.0.0.1:0"])
            .args(args);
        TesseraUp::start(command)
            .unwrap_or_else(|output| panic!("tessera watch did not become ready:\n{output}"))
            .with_label("tessera watch")
    }
}

fn guest_wasm() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from);
    target.join("wasm32-wasip2/release/conformance_guest.wasm")
}

/// `wasm` with a custom section holding `tag`: the same behaviour, different bytes, so
/// the host compiles and swaps in a genuinely new component.
fn tagged(wasm: &[u8], tag: &str) -> Vec<u8> {
    fn leb128(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let name = b"tessera-watch-test";
    let mut section = Vec::new();
    leb128(name.len(), &mut section);
    section.extend_from_slice(name);
    section.extend_from_slice(tag.as_bytes());
    let mut out = wasm.to_vec();
    out.push(0); // custom section id
    leb128(section.len(), &mut out);
    out.extend_from_slice(&section);
    out
}

/// The version a component serves: its copy of `out/<component>.txt`.
fn version_url(up: &TesseraUp, component: &str) -> String {
    up.url(&format!("/{component}/file/out/{component}.txt"))
}

async fn get(url: &str) -> (u16, String) {
    let resp = reqwest::get(url).await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

/// Polls until `check` holds or the deadline passes; whether it held.
async fn eventually(mut check: impl AsyncFnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < DEADLINE {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

/// Waits until `count` output lines contain every one of `needles`.
async fn lines(up: &TesseraUp, needles: &[&str], count: usize) -> bool {
    eventually(async || up.count_log_lines(needles) >= count).await
}

async fn serves(up: &TesseraUp, component: &str, version: &str) -> bool {
    let url = version_url(up, component);
    eventually(async || get(&url).await == (200, version.to_owned())).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_rebuilds_and_swaps_in_the_new_version_while_requests_keep_succeeding() {
    let app = WatchApp::new();
    let up = app.watch(&[]);
    assert_eq!(app.builds(), ["one", "two"], "the first build builds all");
    let url = version_url(&up, "one");
    assert_eq!(get(&url).await, (200, "v1".to_owned()));

    // Four clients request without pause across the rebuild and the swap.
    let stop = Arc::new(AtomicBool::new(false));
    let new_seen = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (url, stop, new_seen) = (url.clone(), stop.clone(), new_seen.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut answers = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let answer = match client.get(&url).send().await {
                        Ok(resp) => {
                            let status = resp.status().as_u16();
                            (status, resp.text().await.unwrap_or_else(|e| e.to_string()))
                        }
                        Err(e) => (0, e.to_string()),
                    };
                    if answer.1 == "v2" {
                        new_seen.fetch_add(1, Ordering::Relaxed);
                    }
                    answers.push(answer);
                }
                answers
            })
        })
        .collect();
    app.set_version("one", "v2");
    let swapped = eventually(async || new_seen.load(Ordering::Relaxed) >= 50).await;
    stop.store(true, Ordering::Relaxed);
    assert!(swapped, "the new version was never served");

    let mut total = 0;
    for client in clients {
        let answers = client.await.unwrap();
        total += answers.len();
        for (status, body) in &answers {
            assert!(
                *status == 200 && (body == "v1" || body == "v2"),
                "a request failed during the swap: {status} {body}"
            );
        }
        let first_new = answers.iter().position(|(_, body)| body == "v2");
        if let Some(i) = first_new {
            assert!(
                answers[i..].iter().all(|(_, body)| body == "v2"),
                "the old version answered after the new one"
            );
        }
    }
    assert!(total > 50, "only {total} requests");
    assert!(
        up.logs()
            .contains("[one] one/src/version changed; rebuilding")
    );
    assert_eq!(up.count_log_lines(&["[one] reloaded"]), 1);
    assert_eq!(app.builds(), ["one", "two", "one"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_build_or_an_invalid_wasm_keeps_the_old_version_serving() {
    let app = WatchApp::new();
    let up = app.watch(&[]);

    app.set_version("one", "broken");
    assert!(
        lines(
            &up,
            &["[one] build failed; still serving the previous version"],
            1
        )
        .await
    );
    assert!(
        up.logs()
            .contains("[one] error: one's src/version says broken"),
        "the build's own error is shown"
    );
    assert_eq!(get(&version_url(&up, "one")).await, (200, "v1".to_owned()));

    // The build succeeds but its wasm does not compile.
    app.set_version("one", "junk");
    assert!(
        lines(
            &up,
            &["[one] cannot load the new version: component `one`"],
            1
        )
        .await
    );
    assert!(up.logs().contains("is not a valid component"));
    assert_eq!(get(&version_url(&up, "one")).await, (200, "v1".to_owned()));

    // A good build afterwards is served.
    app.set_version("one", "v2");
    assert!(serves(&up, "one", "v2").await);
    assert_eq!(get(&version_url(&up, "two")).await, (200, "v1".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_changed_component_is_rebuilt() {
    let app = WatchApp::new();
    let up = app.watch(&[]);
    assert_eq!(app.builds(), ["one", "two"]);

    // Components are applied in id order, so a wrong rebuild of `one` would have been
    // logged before `two` finished reloading, and the other way round for the second.
    app.set_version("two", "v2");
    assert!(lines(&up, &["[two] reloaded"], 1).await);
    assert_eq!(app.builds(), ["one", "two", "two"]);
    assert!(serves(&up, "two", "v2").await);

    app.set_version("one", "v2");
    assert!(lines(&up, &["[one] reloaded"], 1).await);
    // A touch (a new modification time, same content) is a change too.
    std::fs::File::options()
        .write(true)
        .open(app.path("two/src/version"))
        .unwrap()
        .set_modified(SystemTime::now())
        .unwrap();
    assert!(lines(&up, &["[two] reloaded"], 2).await);
    assert_eq!(app.builds(), ["one", "two", "two", "one", "two"]);
    assert_eq!(get(&version_url(&up, "one")).await, (200, "v2".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_build_reloads_a_replaced_wasm_without_building() {
    let app = WatchApp::new();
    app.install_prebuilt("one", "v1");
    app.install_prebuilt("two", "v1");
    let up = app.watch(&["--skip-build"]);
    assert_eq!(get(&version_url(&up, "one")).await, (200, "v1".to_owned()));

    // Sources and files are not watched with --skip-build; the .wasm is, and reloading
    // it takes the files as they are now.
    app.set_version("one", "v2");
    std::fs::write(app.path("out/one.txt"), "v2").unwrap();
    std::fs::copy(app.path("wasm/v2.wasm"), app.path("out/one.wasm")).unwrap();
    assert!(serves(&up, "one", "v2").await);
    assert!(up.logs().contains("[one] out/one.wasm changed; reloading"));
    assert!(!app.path("build.log").exists(), "nothing was built");
    assert_eq!(up.count_log_lines(&["[two] reloaded"]), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_the_redis_subscription() {
    let redis = RedisServer::start();
    let app = WatchApp::new();
    let manifest = app.path("spin.toml");
    let text = std::fs::read_to_string(&manifest).unwrap().replacen(
        r#"files = ["out/one.txt"]"#,
        "files = [\"out/one.txt\"]\nsqlite_databases = [\"default\"]",
        1,
    );
    let redis_trigger = format!(
        "\n[application.trigger.redis]\naddress = \"{}\"\n\n[[trigger.redis]]\nchannel = \"watch\"\ncomponent = \"one\"\n",
        redis.address()
    );
    std::fs::write(&manifest, text + &redis_trigger).unwrap();
    let up = app.watch(&[]);
    assert!(lines(&up, &["Subscribed to"], 1).await);
    let received = up.url("/one/redis/received");

    redis.publish("watch", "before");
    assert!(eventually(async || get(&received).await.1 == "before").await);
    app.set_version("one", "v2");
    assert!(serves(&up, "one", "v2").await);
    redis.publish("watch", "after");
    assert!(eventually(async || get(&received).await.1 == "before,after").await);
    assert_eq!(
        up.count_log_lines(&["Subscribed to"]),
        1,
        "the subscription was never dropped and made again"
    );
}

#[test]
fn an_invalid_watch_glob_is_refused_before_anything_is_built() {
    let app = WatchApp::new();
    let manifest = app.path("spin.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replacen(r#"watch = ["src/*"]"#, r#"watch = ["src/[*"]"#, 1),
    )
    .unwrap();
    let manifest = manifest.display().to_string();
    let (code, output) = run_tessera(&["watch", "-f", &manifest, "--listen", "127.0.0.1:0"], &[]);
    assert_ne!(code, 0, "{output}");
    for expected in [
        manifest.as_str(),
        "component `one`",
        "field `build.watch`",
        r#"invalid glob "src/[*""#,
    ] {
        assert!(
            output.contains(expected),
            "missing {expected:?} in:\n{output}"
        );
    }
    assert!(!app.path("build.log").exists(), "nothing was built");
}

#[test]
fn watch_refuses_an_app_from_a_registry() {
    let (code, output) = run_tessera(&["watch", "--from", "localhost:5000/app:v1"], &[]);
    assert_ne!(code, 0, "{output}");
    assert!(output.contains("tessera up --from"), "{output}");
}
