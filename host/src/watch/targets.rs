//! What `tessera watch` watches for each component, and what a change at a path means.
//!
//! Spin's rules: a component's `[component.x.build] watch` globs, relative to the build's
//! `workdir`, are its sources: a change there rebuilds it (then reloads it). Its `source`
//! (the `.wasm`) and its `files` are artifacts: a change there reloads it without a build.
//! With `--skip-build` only the `.wasm` files are watched.
//!
//! Build outputs never start a build, even when a glob matches them: no component's
//! `.wasm`, nothing in the `target` directory a `.wasm` is built into. That breaks the loop
//! Spin's watch is known for, where a build writes into a watched directory and so starts
//! itself again. The state directory (`.spin`: databases, staged files, the compile cache)
//! is ignored altogether, since the running app writes there all the time.

use std::path::{Component as PathPart, Path, PathBuf};

use anyhow::bail;
use glob::{MatchOptions, Pattern};

use crate::commands::build;
use crate::manifest::{ComponentId, ComponentSource, FileMount, LoadedManifest};

/// What a change asks of a component. Ordered: a rebuild includes a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    /// Load the current `.wasm` and files again.
    Reload,
    /// Run the build command, then reload.
    Rebuild,
}

/// Who a change is for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Subject {
    Component(ComponentId),
    /// The manifest itself, which is not reloaded (see `Watcher`).
    Manifest,
}

/// Whether `tessera watch` builds (the default) or only reloads (`--skip-build`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Build,
    SkipBuild,
}

/// A directory to watch; `recursive` when a pattern reaches into its subdirectories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    pub dir: PathBuf,
    pub recursive: bool,
}

/// Paths `*` does not cross `/` in, as in shells and Spin's globs; `**` does.
const MATCH: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

/// A set of paths named in the manifest.
#[derive(Debug)]
enum PathSet {
    /// A glob, with the directory its literal part names.
    Glob(Pattern, Root),
    /// A directory and everything in it.
    Under(PathBuf),
    /// One file.
    Exact(PathBuf),
}

impl PathSet {
    /// `entry` (a path or glob) relative to `base`; a plain path naming a directory means
    /// everything in it.
    fn parse(base: &Path, entry: &str) -> Result<PathSet, glob::PatternError> {
        let path = normalize(&base.join(entry));
        if !entry.contains(['*', '?', '[']) {
            return Ok(if path.is_dir() {
                PathSet::Under(path)
            } else {
                PathSet::Exact(path)
            });
        }
        let escaped = Pattern::escape(&base.to_string_lossy());
        let text = normalize(&Path::new(&escaped).join(entry));
        let pattern = Pattern::new(&text.to_string_lossy())?;
        Ok(PathSet::Glob(pattern, glob_root(&path)))
    }

    fn matches(&self, path: &Path) -> bool {
        match self {
            PathSet::Glob(pattern, _) => pattern.matches_path_with(path, MATCH),
            PathSet::Under(dir) => path.starts_with(dir),
            PathSet::Exact(file) => path == file,
        }
    }

    fn root(&self) -> Root {
        match self {
            PathSet::Glob(_, root) => root.clone(),
            PathSet::Under(dir) => Root {
                dir: dir.clone(),
                recursive: true,
            },
            PathSet::Exact(file) => Root {
                dir: file.parent().map(Path::to_owned).unwrap_or_default(),
                recursive: false,
            },
        }
    }
}

/// The directory a glob's literal components name, and whether its wildcard part can
/// reach below that directory's direct entries.
fn glob_root(path: &Path) -> Root {
    let parts: Vec<PathPart> = path.components().collect();
    let literal = parts
        .iter()
        .take_while(|p| !p.as_os_str().to_string_lossy().contains(['*', '?', '[']))
        .count();
    let rest = &parts[literal..];
    Root {
        dir: parts[..literal].iter().collect(),
        recursive: rest.len() > 1 || rest.iter().any(|p| p.as_os_str() == "**"),
    }
}

/// `path` with `.` dropped and `..` applied, without touching the filesystem: watched
/// paths are compared as the watcher reports them, so neither side resolves symlinks.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            PathPart::CurDir => {}
            PathPart::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// One component's watched paths.
#[derive(Debug)]
struct ComponentTargets {
    id: ComponentId,
    /// `build.watch`: a change rebuilds.
    sources: Vec<PathSet>,
    /// The `.wasm` and `files`: a change reloads.
    artifacts: Vec<PathSet>,
}

/// Everything `tessera watch` watches, and how a changed path maps to components.
#[derive(Debug)]
pub struct Targets {
    manifest: PathBuf,
    components: Vec<ComponentTargets>,
    /// Build outputs: every component's `.wasm`, and the `target` directories they are in.
    outputs: Vec<PathBuf>,
    /// Never a change (the state directory).
    ignored: Vec<PathBuf>,
}

impl Targets {
    /// The targets of the components in `only` (all when empty). A bad glob is an error
    /// naming the manifest, the component and the field.
    pub fn new(loaded: &LoadedManifest, only: &[String], mode: Mode) -> anyhow::Result<Targets> {
        let file = loaded.path.display();
        let app_dir = loaded.path.parent().map(Path::to_owned).unwrap_or_default();
        let mut components = Vec::new();
        let mut outputs = Vec::new();
        for (id, component) in &loaded.manifest.component {
            let ComponentSource::Local(source) = &component.source else {
                continue;
            };
            let source = normalize(&app_dir.join(source));
            if let Some(target) = source.ancestors().find(|a| a.ends_with("target")) {
                outputs.push(target.to_owned());
            }
            outputs.push(source.clone());
            if !only.is_empty() && !only.iter().any(|o| o == id.as_str()) {
                continue;
            }
            let mut targets = ComponentTargets {
                id: id.clone(),
                sources: Vec::new(),
                artifacts: vec![PathSet::Exact(source)],
            };
            if mode == Mode::Build {
                let parse = |field: &str, base: &Path, entry: &str| {
                    PathSet::parse(base, entry).map_err(|e| {
                        anyhow::anyhow!(
                            "{file}: component `{id}`, field `{field}`: invalid glob {entry:?}: {e}"
                        )
                    })
                };
                if let Some(b) = &component.build {
                    let workdir = build::workdir(&app_dir, b);
                    for entry in &b.watch {
                        targets.sources.push(parse("build.watch", &workdir, entry)?);
                    }
                }
                for mount in &component.files {
                    targets.artifacts.push(match mount {
                        FileMount::Pattern(p) => parse("files", &app_dir, p)?,
                        FileMount::Placement { source, .. } => {
                            PathSet::Under(normalize(&app_dir.join(source)))
                        }
                    });
                }
            }
            components.push(targets);
        }
        if components.is_empty() {
            if only.is_empty() {
                bail!("{file}: no component to watch");
            }
            bail!(
                "{file}: --component-id {}: no such component",
                only.join(", ")
            );
        }
        Ok(Targets {
            manifest: loaded.path.clone(),
            components,
            outputs,
            ignored: Vec::new(),
        })
    }

    /// Ignores every change under `dir`.
    pub fn ignore(&mut self, dir: &Path) {
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
        self.ignored.push(normalize(&dir));
    }

    /// How many components are watched.
    pub fn len(&self) -> usize {
        self.components.len()
    }

    /// Whether no component is watched (never: `new` refuses that).
    pub fn is_empty(&self) -> bool {
        self.components.is_empty()
    }

    /// The directories to watch, without overlaps: a directory inside a recursive root
    /// is left to that root.
    pub fn roots(&self) -> Vec<Root> {
        let manifest = PathSet::Exact(self.manifest.clone()).root();
        let mut all: Vec<Root> = self
            .components
            .iter()
            .flat_map(|c| c.sources.iter().chain(&c.artifacts))
            .map(PathSet::root)
            .chain([manifest])
            .collect();
        // Recursive roots first, ancestors before descendants.
        all.sort_by(|a, b| b.recursive.cmp(&a.recursive).then(a.dir.cmp(&b.dir)));
        let mut roots: Vec<Root> = Vec::new();
        for root in all {
            let covered = roots
                .iter()
                .any(|r| r.dir == root.dir || (r.recursive && root.dir.starts_with(&r.dir)));
            if !covered {
                roots.push(root);
            }
        }
        roots
    }

    /// Who a change at `path` is for, and what it asks of them.
    pub fn classify(&self, path: &Path) -> Vec<(Subject, Change)> {
        if self.ignored.iter().any(|dir| path.starts_with(dir)) {
            return Vec::new();
        }
        let mut changes = Vec::new();
        if path == self.manifest {
            changes.push((Subject::Manifest, Change::Reload));
        }
        let is_output = self.outputs.iter().any(|o| path.starts_with(o));
        for c in &self.components {
            let change = if !is_output && c.sources.iter().any(|s| s.matches(path)) {
                Change::Rebuild
            } else if c.artifacts.iter().any(|a| a.matches(path)) {
                Change::Reload
            } else {
                continue;
            };
            changes.push((Subject::Component(c.id.clone()), change));
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest;

    const APP: &str = r#"
spin_manifest_version = 2
[application]
name = "demo"
[component.api]
source = "target/wasm32-wasip2/release/api.wasm"
files = ["static/*.txt", { source = "assets", destination = "/assets" }]
[component.api.build]
command = "cargo build"
workdir = "api"
watch = ["src/**/*.rs", "../common/src/*.rs", "Cargo.toml"]
[component.web]
source = "web/out/web.wasm"
[component.web.build]
command = "sh build.sh"
watch = ["web/**/*"]
"#;

    fn loaded(text: &str) -> LoadedManifest {
        LoadedManifest {
            path: PathBuf::from("/app/spin.toml"),
            manifest: manifest::parse(text).expect("valid manifest"),
        }
    }

    fn targets(mode: Mode) -> Targets {
        let mut t = Targets::new(&loaded(APP), &[], mode).expect("valid targets");
        t.ignore(Path::new("/app/.spin"));
        t
    }

    fn component(id: &str) -> Subject {
        Subject::Component(ComponentId::try_from(id.to_owned()).unwrap())
    }

    #[test]
    fn build_globs_are_relative_to_the_workdir_and_rebuild() {
        let t = targets(Mode::Build);
        let rebuild_api = vec![(component("api"), Change::Rebuild)];
        assert_eq!(t.classify(Path::new("/app/api/src/lib.rs")), rebuild_api);
        assert_eq!(t.classify(Path::new("/app/api/src/a/b.rs")), rebuild_api);
        assert_eq!(t.classify(Path::new("/app/common/src/x.rs")), rebuild_api);
        assert_eq!(t.classify(Path::new("/app/api/Cargo.toml")), rebuild_api);
        assert!(t.classify(Path::new("/app/src/lib.rs")).is_empty());
        assert!(
            t.classify(Path::new("/app/common/src/deep/x.rs"))
                .is_empty(),
            "`*` does not cross directories"
        );
    }

    #[test]
    fn the_wasm_and_files_reload_without_a_build() {
        let t = targets(Mode::Build);
        let reload_api = vec![(component("api"), Change::Reload)];
        let wasm = "/app/target/wasm32-wasip2/release/api.wasm";
        assert_eq!(t.classify(Path::new(wasm)), reload_api);
        assert_eq!(t.classify(Path::new("/app/static/a.txt")), reload_api);
        assert_eq!(
            t.classify(Path::new("/app/assets/img/logo.png")),
            reload_api
        );
        assert!(t.classify(Path::new("/app/static/a.css")).is_empty());
    }

    #[test]
    fn build_outputs_never_rebuild_even_when_a_glob_matches_them() {
        let t = targets(Mode::Build);
        // `web/**/*` matches web's own output, which only reloads it.
        assert_eq!(
            t.classify(Path::new("/app/web/out/web.wasm")),
            vec![(component("web"), Change::Reload)]
        );
        assert_eq!(
            t.classify(Path::new("/app/web/src/app.js")),
            vec![(component("web"), Change::Rebuild)]
        );
        // Nothing in the state directory counts.
        assert!(
            t.classify(Path::new("/app/.spin/files/api/x.txt"))
                .is_empty()
        );
    }

    #[test]
    fn skip_build_watches_only_the_wasm() {
        let t = targets(Mode::SkipBuild);
        assert!(t.classify(Path::new("/app/api/src/lib.rs")).is_empty());
        assert!(t.classify(Path::new("/app/static/a.txt")).is_empty());
        assert_eq!(
            t.classify(Path::new("/app/web/out/web.wasm")),
            vec![(component("web"), Change::Reload)]
        );
    }

    #[test]
    fn the_manifest_is_its_own_subject() {
        let t = targets(Mode::SkipBuild);
        assert_eq!(
            t.classify(Path::new("/app/spin.toml")),
            vec![(Subject::Manifest, Change::Reload)]
        );
    }

    #[test]
    fn only_selected_components_are_watched() {
        let t = Targets::new(&loaded(APP), &["web".to_owned()], Mode::Build).unwrap();
        assert_eq!(t.len(), 1);
        assert!(t.classify(Path::new("/app/api/src/lib.rs")).is_empty());
    }

    #[test]
    fn roots_are_the_literal_directories_without_overlap() {
        let t = targets(Mode::Build);
        let root = |dir: &str, recursive| Root {
            dir: dir.into(),
            recursive,
        };
        let roots = t.roots();
        assert!(roots.contains(&root("/app/api/src", true)), "{roots:?}");
        assert!(roots.contains(&root("/app/common/src", false)), "{roots:?}");
        assert!(roots.contains(&root("/app/web", true)), "{roots:?}");
        assert!(roots.contains(&root("/app", false)), "{roots:?}");
        assert!(
            !roots.iter().any(|r| r.dir == Path::new("/app/web/out")),
            "inside the recursive /app/web: {roots:?}"
        );
        let dirs: Vec<_> = roots.iter().map(|r| &r.dir).collect();
        let mut unique = dirs.clone();
        unique.dedup();
        assert_eq!(dirs.len(), unique.len(), "{roots:?}");
    }

    #[test]
    fn an_invalid_glob_names_the_manifest_the_component_and_the_field() {
        let text = APP.replace("\"src/**/*.rs\"", "\"src/[.rs\"");
        let err = Targets::new(&loaded(&text), &[], Mode::Build)
            .unwrap_err()
            .to_string();
        assert!(err.contains("/app/spin.toml"), "{err}");
        assert!(err.contains("component `api`"), "{err}");
        assert!(err.contains("`build.watch`"), "{err}");
        assert!(err.contains("src/[.rs"), "{err}");
    }

    #[test]
    fn normalize_applies_parent_components() {
        assert_eq!(
            normalize(Path::new("/app/api/../common/./src")),
            Path::new("/app/common/src")
        );
    }
}
