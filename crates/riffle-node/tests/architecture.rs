//! The shape of the workspace, checked: the crate graph has no circle and points the way
//! `ARCHITECTURE.md` draws it; no plugin crate depends on the engine; benchmarks and test
//! fixtures stay out of libraries' release builds; the modules of the ingestion and
//! controller crates import each other without a circle; and their files and functions stay
//! small enough to read.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn crates_dir() -> PathBuf {
    // The directory cargo runs the test in (a build reused from another checkout keeps
    // the compile-time path).
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("..")
}

/// A manifest's workspace dependencies by section (`dependencies`, `dev-dependencies`),
/// and whether each is optional.
fn manifest(krate: &str) -> BTreeMap<String, BTreeMap<String, bool>> {
    let text = std::fs::read_to_string(crates_dir().join(krate).join("Cargo.toml")).unwrap();
    let mut out: BTreeMap<String, BTreeMap<String, bool>> = BTreeMap::new();
    let mut section = String::new();
    for line in text.lines().map(str::trim) {
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.to_string();
            continue;
        }
        if !section.ends_with("dependencies") {
            continue;
        }
        let Some(name) = line.split(['.', '=', ' ']).next().filter(|n| !n.is_empty()) else {
            continue;
        };
        if name.starts_with('#') {
            continue;
        }
        out.entry(section.clone())
            .or_default()
            .insert(name.to_string(), line.contains("optional = true"));
    }
    out
}

fn workspace_crates() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(crates_dir())
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            e.path()
                .join("Cargo.toml")
                .is_file()
                .then(|| e.file_name().to_string_lossy().to_string())
        })
        .collect();
    v.sort();
    v
}

fn normal_deps(krate: &str) -> BTreeSet<String> {
    manifest(krate)
        .remove("dependencies")
        .unwrap_or_default()
        .into_keys()
        .collect()
}

#[test]
fn test_the_crate_graph_has_no_circle_and_points_down() {
    let crates = workspace_crates();
    let graph: BTreeMap<String, BTreeSet<String>> = crates
        .iter()
        .map(|c| {
            let deps = normal_deps(c)
                .into_iter()
                .filter(|d| crates.contains(d))
                .collect();
            (c.clone(), deps)
        })
        .collect();
    // Depth-first search for a back edge.
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) {
        path.push(n.to_string());
        match state.get(n) {
            Some(1) => panic!("crate circle: {}", path.join(" -> ")),
            Some(2) => {}
            _ => {
                state.insert(n.to_string(), 1);
                for d in &g[n] {
                    visit(d, g, state, path);
                }
                state.insert(n.to_string(), 2);
            }
        }
        path.pop();
    }
    let mut state = BTreeMap::new();
    for c in graph.keys() {
        visit(c, &graph, &mut state, &mut Vec::new());
    }
    // The layers of ARCHITECTURE.md: a crate depends only on crates of lower layers.
    let layer = |c: &str| match c {
        "riffle-common" => 0,
        "riffle-config" | "riffle-functions" => 1,
        "riffle-stream" | "riffle-segment" | "riffle-storage" | "riffle-agg-example" => 2,
        "riffle-fetcher-example" => 3,
        "riffle-kafka" | "riffle-kinesis" | "riffle-pulsar" | "riffle-redis" | "riffle-nats"
        | "riffle-decode" | "riffle-catalog" | "riffle-transform" => 3,
        "riffle-ingest" | "riffle-query" => 4,
        "riffle-controller" => 5,
        "riffle-server" => 6,
        "riffle-node" => 7,
        "riffle-bench" | "riffle-fuzz" => 8,
        "riffle" => 9,
        other => panic!("crate {other} has no layer in this test: add it"),
    };
    for (c, deps) in &graph {
        for d in deps {
            assert!(
                layer(d) < layer(c),
                "{c} depends on {d}, which is not below it"
            );
        }
    }
}

#[test]
fn test_plugins_benchmarks_and_fixtures_stay_out_of_libraries() {
    for c in workspace_crates() {
        let m = manifest(&c);
        // No library depends on the benchmarks; only the binary does.
        if c != "riffle" {
            for (section, deps) in &m {
                assert!(
                    !deps.contains_key("riffle-bench"),
                    "{c} [{section}] depends on riffle-bench"
                );
            }
        }
        // The aggregation plugin example sees only the plugin API.
        if c == "riffle-agg-example" {
            let engine: Vec<String> = normal_deps(&c)
                .into_iter()
                .filter(|d| d.starts_with("riffle") && d != "riffle-functions")
                .collect();
            assert!(
                engine.is_empty(),
                "the plugin example depends on {engine:?}"
            );
        }
        // The fetcher plugin example sees only the fetcher API.
        if c == "riffle-fetcher-example" {
            let engine: Vec<String> = normal_deps(&c)
                .into_iter()
                .filter(|d| d.starts_with("riffle") && d != "riffle-storage")
                .collect();
            assert!(
                engine.is_empty(),
                "the fetcher plugin example depends on {engine:?}"
            );
        }
        // Stream plugins draw below the engine, in their tests too.
        if c == "riffle-kafka"
            || c == "riffle-kinesis"
            || c == "riffle-pulsar"
            || c == "riffle-stream"
        {
            for (section, deps) in &m {
                for engine in [
                    "riffle-ingest",
                    "riffle-controller",
                    "riffle-node",
                    "riffle-catalog",
                ] {
                    assert!(
                        !deps.contains_key(engine),
                        "plugin {c} [{section}] depends on {engine}"
                    );
                }
            }
        }
    }
    assert!(
        !normal_deps("riffle-ingest").contains("parquet"),
        "parquet is a dependency of the ingestion library"
    );
    // Fixture modules compile only with the `testsuite` feature; crash points only with
    // `failpoints`.
    for (krate, module) in [
        ("riffle-kafka", "pub mod testing;"),
        ("riffle-kinesis", "pub mod testing;"),
        ("riffle-pulsar", "pub mod testing;"),
        ("riffle-redis", "pub mod testing;"),
        ("riffle-nats", "pub mod testing;"),
        ("riffle-storage", "pub mod testing;"),
        ("riffle-stream", "pub mod conformance;"),
    ] {
        let lib = std::fs::read_to_string(crates_dir().join(krate).join("src/lib.rs")).unwrap();
        let lines: Vec<&str> = lib.lines().collect();
        let at = lines
            .iter()
            .position(|l| l.trim() == module)
            .unwrap_or_else(|| panic!("{krate}: `{module}` not found"));
        assert_eq!(
            lines[at - 1].trim(),
            "#[cfg(feature = \"testsuite\")]",
            "{krate}: `{module}` is compiled into release builds"
        );
        let optional = &manifest(krate)["dependencies"];
        if let Some(anyhow) = optional.get("anyhow") {
            assert!(
                anyhow,
                "{krate}: anyhow (for its fixtures) must be optional"
            );
        }
    }
    let fp = std::fs::read_to_string(crates_dir().join("riffle-common/src/failpoint.rs")).unwrap();
    assert!(
        fp.contains("#[cfg(feature = \"failpoints\")]\npub fn failpoint"),
        "crash points are compiled into release builds"
    );
}

/// The `crate::x` modules a file imports.
fn imports(src: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in src.match_indices("crate::") {
        let rest = &src[i + 7..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if name.chars().next().is_some_and(|c| c.is_lowercase()) {
            out.insert(name);
        }
    }
    out
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn test_ingestion_and_controller_modules_import_without_a_circle() {
    for krate in ["riffle-ingest", "riffle-controller"] {
        let src = crates_dir().join(krate).join("src");
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for f in rust_files(&src) {
            let module = f.file_stem().unwrap().to_string_lossy().to_string();
            if module == "lib" || module == "tests" {
                continue;
            }
            let text = std::fs::read_to_string(&f).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            let mut deps = imports(code);
            deps.remove(&module);
            graph.insert(module, deps);
        }
        // Kahn's algorithm: whatever cannot be ordered is on a circle.
        let mut left = graph.clone();
        loop {
            let ready: Vec<String> = left
                .iter()
                .filter(|(_, deps)| deps.iter().all(|d| !left.contains_key(d)))
                .map(|(m, _)| m.clone())
                .collect();
            if ready.is_empty() {
                break;
            }
            for m in ready {
                left.remove(&m);
            }
        }
        assert!(
            left.is_empty(),
            "{krate}: modules on an import circle: {left:?}"
        );
    }
}

#[test]
fn test_ingestion_and_controller_files_and_functions_are_small() {
    for krate in ["riffle-ingest", "riffle-controller"] {
        for f in rust_files(&crates_dir().join(krate).join("src")) {
            let text = std::fs::read_to_string(&f).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            assert!(
                lines.len() <= 600,
                "{} has {} lines",
                f.display(),
                lines.len()
            );
            let code_end = lines
                .iter()
                .position(|l| l.trim() == "#[cfg(test)]")
                .unwrap_or(lines.len());
            for (i, l) in lines[..code_end].iter().enumerate() {
                let t = l.trim_start();
                let is_fn = [
                    "fn ",
                    "pub fn ",
                    "pub(crate) fn ",
                    "async fn ",
                    "pub async fn ",
                    "pub(crate) async fn ",
                ]
                .iter()
                .any(|p| t.starts_with(p));
                if !is_fn || l.trim_end().ends_with(';') {
                    continue;
                }
                let indent = l.len() - t.len();
                let close = " ".repeat(indent) + "}";
                let end = lines[i..code_end]
                    .iter()
                    .position(|x| *x == close)
                    .map(|n| i + n)
                    .unwrap_or(i);
                assert!(
                    end - i < 80,
                    "{}:{}: a function of {} lines",
                    f.display(),
                    i + 1,
                    end - i + 1
                );
            }
        }
    }
}
