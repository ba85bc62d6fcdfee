//! Errors a user can act on: each names the file, the field and the component.

use std::path::Path;

use tessera_blackbox::{TesseraUp, require_guest, run_tessera, workspace_root};

fn write_app(dir: &Path, manifest: &str) -> String {
    let path = dir.join("spin.toml");
    std::fs::write(&path, manifest).unwrap();
    path.display().to_string()
}

const GOOD: &str = r#"
spin_manifest_version = 2
[application]
name = "t"
[variables]
token = { required = true }
[[trigger.http]]
route = "/..."
component = "hello"
[component.hello]
source = "hello.wasm"
variables = { token = "{{ token }}" }
"#;

fn up(manifest: &str, env: &[(&str, &str)]) -> (i32, String) {
    run_tessera(&["up", "-f", manifest, "--listen", "127.0.0.1:0"], env)
}

#[test]
fn missing_manifest_names_the_file() {
    let (code, out) = up("/nonexistent/spin.toml", &[]);
    assert_eq!(code, 1);
    assert!(
        out.contains("/nonexistent/spin.toml") && out.contains("cannot read"),
        "{out}"
    );
}

#[test]
fn malformed_toml_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_app(dir.path(), &GOOD.replace("name = \"t\"", "name = \"t"));
    let (code, out) = up(&path, &[]);
    assert_eq!(code, 1);
    assert!(out.contains("spin.toml") && out.contains("line 4"), "{out}");
}

#[test]
fn misspelt_field_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_app(
        dir.path(),
        &GOOD.replace("source =", "sauce = \"x\"\nsource ="),
    );
    let (_, out) = up(&path, &[]);
    assert!(out.contains("sauce"), "{out}");
}

#[test]
fn trigger_naming_an_unknown_component() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_app(
        dir.path(),
        &GOOD.replace("component = \"hello\"", "component = \"helo\""),
    );
    let (code, out) = up(&path, &[("SPIN_VARIABLE_TOKEN", "x")]);
    assert_eq!(code, 1);
    assert!(
        out.contains("[[trigger.http]] #1")
            && out.contains("`helo`")
            && out.contains("defined: hello"),
        "{out}"
    );
}

#[test]
fn missing_required_variable_says_how_to_set_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_app(dir.path(), GOOD);
    let (code, out) = up(&path, &[]);
    assert_eq!(code, 1);
    assert!(
        out.contains("token") && out.contains("SPIN_VARIABLE_TOKEN"),
        "{out}"
    );
}

#[test]
fn missing_wasm_suggests_tessera_build() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_app(dir.path(), GOOD);
    let (code, out) = up(&path, &[("SPIN_VARIABLE_TOKEN", "x")]);
    assert_eq!(code, 1);
    assert!(
        out.contains("component `hello`")
            && out.contains("hello.wasm")
            && out.contains("tessera build"),
        "{out}"
    );
}

#[test]
fn undeclared_sqlite_label_points_at_the_runtime_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_app(
        dir.path(),
        &GOOD.replace(
            "source = \"hello.wasm\"",
            "source = \"hello.wasm\"\nsqlite_databases = [\"orders\"]",
        ),
    );
    let (code, out) = up(&path, &[("SPIN_VARIABLE_TOKEN", "x")]);
    assert_eq!(code, 1);
    assert!(
        out.contains("component `hello`")
            && out.contains("sqlite_databases")
            && out.contains("[sqlite_database.orders]"),
        "{out}"
    );
}

#[test]
fn bad_outbound_host_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_app(
        dir.path(),
        &GOOD.replace(
            "source = \"hello.wasm\"",
            "source = \"hello.wasm\"\nallowed_outbound_hosts = [\"api.stripe.com\"]",
        ),
    );
    let (code, out) = up(&path, &[("SPIN_VARIABLE_TOKEN", "x")]);
    assert_eq!(code, 1);
    assert!(
        out.contains("allowed_outbound_hosts")
            && out.contains("api.stripe.com")
            && out.contains("scheme"),
        "{out}"
    );
}

#[test]
fn port_already_in_use_is_explained() {
    require_guest();
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = holder.local_addr().unwrap().to_string();
    let manifest = workspace_root().join("host/tests/apps/conformance/spin.toml");
    let rc = workspace_root().join("host/tests/apps/conformance/runtime-config.toml");
    let (code, out) = run_tessera(
        &[
            "up",
            "-f",
            &manifest.display().to_string(),
            "--runtime-config-file",
            &rc.display().to_string(),
            "--listen",
            &addr,
        ],
        &[("SPIN_VARIABLE_SECRET_TOKEN", "x")],
    );
    assert_eq!(code, 1);
    assert!(out.contains(&format!("cannot listen on {addr}")), "{out}");
}

#[test]
fn build_runs_commands_in_workdir_and_stops_at_the_first_failure() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let manifest = r#"
spin_manifest_version = 2
[application]
name = "b"
[component.a]
source = "a.wasm"
[component.a.build]
command = "pwd && echo built-a"
workdir = "sub"
[component.b]
source = "b.wasm"
[component.b.build]
command = "exit 7"
[component.c]
source = "c.wasm"
[component.c.build]
command = "echo built-c"
"#;
    let path = write_app(dir.path(), manifest);
    let (code, out) = run_tessera(&["build", "-f", &path], &[]);
    assert_eq!(code, 7, "{out}");
    assert!(out.contains("[a] built-a") && out.contains("/sub"), "{out}");
    assert!(
        out.contains("[a] built in "),
        "each component's time: {out}"
    );
    assert!(
        !out.contains("built-c"),
        "stops at the first failure: {out}"
    );
}

/// The host's conformance app, served.
fn conformance_app() -> TesseraUp {
    require_guest();
    let manifest = workspace_root().join("host/tests/apps/conformance/spin.toml");
    let rc = workspace_root()
        .join("host/tests/apps/conformance/runtime-config.toml")
        .display()
        .to_string();
    TesseraUp::spawn(
        &manifest,
        &["--runtime-config-file", &rc],
        &[("SPIN_VARIABLE_SECRET_TOKEN", "x")],
    )
}

#[test]
fn a_served_app_logs_one_line_per_request() {
    let app = conformance_app();
    let status = reqwest::blocking_get(&app.url("/granted/hello"));
    assert_eq!(status, 200);
    assert!(
        app.wait_for_log(
            "component=granted status=200",
            std::time::Duration::from_secs(5)
        ),
        "{}",
        app.logs()
    );
    assert!(
        app.logs().contains("path=/granted/hello") && app.logs().contains("method=GET"),
        "{}",
        app.logs()
    );
}

#[test]
fn guest_output_lines_name_their_component() {
    let app = conformance_app();
    assert_eq!(reqwest::blocking_get(&app.url("/denied/print")), 200);
    // The unterminated stderr line is written when the instance ends.
    for line in [
        "[denied] to stdout",
        "[denied] second line",
        "[denied] to stderr, no newline",
    ] {
        assert!(
            app.wait_for_log(line, std::time::Duration::from_secs(5)),
            "{line:?} missing:\n{}",
            app.logs()
        );
    }
}

mod reqwest {
    /// A one-off GET without pulling reqwest's blocking client into the build.
    pub fn blocking_get(url: &str) -> u16 {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async { ::reqwest::get(url).await.unwrap().status().as_u16() })
    }
}

/// A component whose only import is `import` (WebAssembly text; wasmtime parses it).
fn app_importing(dir: &Path, import: &str) -> String {
    std::fs::write(
        dir.join("hello.wasm"),
        format!("(component (import \"{import}\" (instance (export \"get\" (func)))))"),
    )
    .unwrap();
    write_app(
        dir,
        &GOOD.replace("variables = { token = \"{{ token }}\" }", ""),
    )
}

#[test]
fn an_import_tessera_does_not_provide_is_named_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = app_importing(dir.path(), "example:thing/api@1.0.0");
    let (code, out) = up(&path, &[("SPIN_VARIABLE_TOKEN", "x")]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("component `hello`")
            && out.contains("imports `example:thing/api@1.0.0`, which Tessera does not provide")
            && out.contains("Spin 3 guest world"),
        "{out}"
    );
    assert!(
        !out.contains("Serving HTTP"),
        "refused before serving: {out}"
    );
}

#[test]
fn a_spin_4_wasi_p3_import_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let path = app_importing(dir.path(), "spin:key-value/key-value@3.0.0");
    let (code, out) = up(&path, &[("SPIN_VARIABLE_TOKEN", "x")]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("imports `spin:key-value/key-value@3.0.0`")
            && out.contains("Spin 4's WASI 0.3")
            && out.contains("spin-sdk 5.2"),
        "{out}"
    );
}
