//! The import rules of docs/ARCHITECTURE.md, checked on the source: which top-level module
//! of the library imports which (test code left out), no cycle between them, and the named
//! rules (`replay`, `har`, `diff`, `store` never reach into `proxy`; `ucwa` knows neither
//! storage nor the recording layer; `redact` works without the recording layer; the layers
//! below `anonymize` know it only as `recording::ExchangeFilter`). A change
//! that brings an upward import back fails here with the file that made it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level module → the top-level modules it imports, with one file per edge as evidence.
type Graph = BTreeMap<String, BTreeMap<String, PathBuf>>;

/// Items the crate root re-exports from a module of its own.
const ROOT_ITEMS: &[(&str, &str)] = &[
    ("Error", "error"),
    ("Result", "error"),
    ("BoxError", "error"),
    ("Progress", "progress"),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The library's code of a file: unit tests (a `#[cfg(test)]` module, a `tests.rs`) and
/// comments are left out.
fn library_code(path: &Path) -> String {
    if path.file_name().is_some_and(|n| n == "tests.rs") {
        return String::new();
    }
    let text = std::fs::read_to_string(path).expect("a source file");
    let code = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => &text,
    };
    code.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules named after `crate::` in `code`.
fn imported(code: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        let names: Vec<&str> = match rest.strip_prefix('{') {
            Some(group) => group
                .split('}')
                .next()
                .unwrap_or("")
                .split(',')
                .map(|n| n.trim().split("::").next().unwrap_or(""))
                .collect(),
            None => vec![
                rest.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .next()
                    .unwrap_or(""),
            ],
        };
        for name in names {
            let module = ROOT_ITEMS
                .iter()
                .find(|(item, _)| *item == name)
                .map_or(name, |(_, m)| *m);
            if modules.contains(module) {
                out.insert(module.to_string());
            }
        }
    }
    out
}

fn graph() -> Graph {
    let src = src();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let top = |path: &Path| -> String {
        let rel = path.strip_prefix(&src).expect("under src");
        let first = rel.components().next().expect("a component");
        first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string()
    };
    // The binary's files (main.rs, cli/) may use anything; lib.rs only declares.
    let modules: BTreeSet<String> = files
        .iter()
        .map(|f| top(f))
        .filter(|m| !["main", "cli", "lib"].contains(&m.as_str()))
        .collect();
    let mut graph = Graph::new();
    for file in &files {
        let from = top(file);
        if !modules.contains(&from) {
            continue;
        }
        let edges = graph.entry(from.clone()).or_default();
        for to in imported(&library_code(file), &modules) {
            if to != from {
                edges.entry(to).or_insert_with(|| file.clone());
            }
        }
    }
    graph
}

/// A cycle through `start`, as the list of modules on it.
fn cycle_from(graph: &Graph, start: &str) -> Option<Vec<String>> {
    fn walk(graph: &Graph, at: &str, start: &str, path: &mut Vec<String>) -> bool {
        for next in graph.get(at).into_iter().flat_map(|e| e.keys()) {
            if next == start {
                return true;
            }
            if path.contains(next) {
                continue;
            }
            path.push(next.clone());
            if walk(graph, next, start, path) {
                return true;
            }
            path.pop();
        }
        false
    }
    let mut path = vec![start.to_string()];
    walk(graph, start, start, &mut path).then_some(path)
}

#[test]
fn no_cycle_between_top_level_modules() {
    let graph = graph();
    for module in graph.keys() {
        if let Some(cycle) = cycle_from(&graph, module) {
            let evidence: Vec<String> = cycle
                .iter()
                .zip(cycle.iter().cycle().skip(1))
                .map(|(a, b)| format!("{a} -> {b} ({})", graph[a][b].display()))
                .collect();
            panic!("import cycle: {}", evidence.join(", "));
        }
    }
}

#[test]
fn the_named_import_rules_hold() {
    let graph = graph();
    let forbidden = [
        ("replay", "proxy"),
        ("har", "proxy"),
        ("diff", "proxy"),
        ("store", "proxy"),
        ("ucwa", "store"),
        ("ucwa", "recording"),
        ("redact", "recording"),
        ("redact", "store"),
        ("recording", "store"),
        ("sim", "recording"),
        ("sim", "store"),
        ("recording", "anonymize"),
        ("store", "anonymize"),
        ("redact", "anonymize"),
        ("ucwa", "anonymize"),
        ("anonymize", "proxy"),
    ];
    let mut broken = Vec::new();
    for (from, to) in forbidden {
        if let Some(file) = graph.get(from).and_then(|e| e.get(to)) {
            broken.push(format!("{from} imports {to} ({})", file.display()));
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn the_graph_is_read_from_the_source() {
    // The checks above would pass on an empty graph: make sure edges that exist are found.
    let graph = graph();
    for (from, to) in [
        ("proxy", "recording"),
        ("recording", "ucwa"),
        ("store", "recording"),
    ] {
        assert!(
            graph.get(from).is_some_and(|e| e.contains_key(to)),
            "{from} -> {to} not found in {graph:?}"
        );
    }
    let modules = BTreeSet::from(["recording".to_string(), "error".to_string()]);
    assert_eq!(
        imported("use crate::{recording::Exchange, Error};", &modules),
        modules
    );
}
