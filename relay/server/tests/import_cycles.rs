//! No new import cycle between the modules of `relay/server/src`.
//!
//! Reads every `crate::` path in the crate's source files (in `use` lines and
//! in code), draws an edge from the file's module to the module the path
//! names, and finds the strongly connected components. Every edge inside a
//! component is part of a cycle, and fails this test unless it is listed in
//! [`KNOWN`], which is empty: there is no import cycle in `relay/server/src`. The crate root (`lib.rs`: `Relay`, the router) sits above every
//! module and is not a node.

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Edges on an import cycle that are tolerated: none. The reshape of issue 26
/// removed every cycle; any edge that closes one fails this test.
const KNOWN: &[(&str, &str)] = &[];

/// The module a source file is (`asynch/mod.rs` is `asynch`, `soap/elt.rs`
/// is `soap::elt`); `None` for the crate roots.
fn module_of(rel: &Path) -> Option<String> {
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let file = parts.pop()?;
    let stem = file.strip_suffix(".rs")?;
    if parts.is_empty() && matches!(stem, "lib" | "main") {
        return None;
    }
    if stem != "mod" {
        parts.push(stem.to_owned());
    }
    Some(parts.join("::"))
}

/// Every path after `crate::` in `code`, with `{a, b::{c}}` groups expanded.
fn crate_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().last();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `relay_crate::`, not ours
        }
        expand("", rest, &mut out);
    }
    out
}

/// Reads one path (or group) at the start of `s`, prefixed with `prefix`.
fn expand(prefix: &str, s: &str, out: &mut Vec<String>) {
    let s = s.trim_start();
    if let Some(inner) = s.strip_prefix('{') {
        let mut depth = 0usize;
        let mut start = 0usize;
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    expand(prefix, &inner[start..i], out);
                    return;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(prefix, &inner[start..i], out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        return;
    }
    let mut path = prefix.to_owned();
    let mut s = s;
    loop {
        let end = s
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(s.len());
        if end == 0 {
            break;
        }
        if !path.is_empty() {
            path.push_str("::");
        }
        path.push_str(&s[..end]);
        s = &s[end..];
        match s.strip_prefix("::") {
            Some(next) if next.trim_start().starts_with('{') => {
                expand(&path, next, out);
                return;
            }
            Some(next) => s = next,
            None => break,
        }
    }
    if !path.is_empty() {
        out.push(path);
    }
}

/// The `from -> to` module edges of `relay/server/src`.
fn edges() -> BTreeSet<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut todo = vec![src.clone()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let modules: BTreeMap<PathBuf, Option<String>> = files
        .iter()
        .map(|f| {
            (
                f.clone(),
                module_of(f.strip_prefix(&src).expect("under src")),
            )
        })
        .collect();
    let known: BTreeSet<&String> = modules.values().flatten().collect();
    let mut edges = BTreeSet::new();
    for (file, from) in &modules {
        let Some(from) = from else { continue };
        let text = std::fs::read_to_string(file).expect("read source");
        let code: String = text
            .lines()
            .map(|l| l.split("//").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        for path in crate_paths(&code) {
            // The longest prefix of the path that is a module.
            let segments: Vec<&str> = path.split("::").collect();
            let to = (1..=segments.len())
                .rev()
                .map(|n| segments[..n].join("::"))
                .find(|m| known.contains(m));
            if let Some(to) = to
                && &to != from
            {
                edges.insert((from.clone(), to));
            }
        }
    }
    edges
}

/// The edges that lie on a cycle (both ends in one strongly connected
/// component), by Tarjan's algorithm.
fn cycle_edges(edges: &BTreeSet<(String, String)>) -> BTreeSet<(String, String)> {
    let mut graph: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (a, b) in edges {
        graph.entry(a).or_default().push(b);
        graph.entry(b).or_default();
    }
    struct Tarjan<'a> {
        graph: &'a BTreeMap<&'a str, Vec<&'a str>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        component: BTreeMap<&'a str, usize>,
        next: usize,
        components: usize,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, v: &'a str) {
            self.index.insert(v, self.next);
            self.low.insert(v, self.next);
            self.next += 1;
            self.stack.push(v);
            self.on_stack.insert(v);
            for &w in &self.graph[v] {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    self.component.insert(w, self.components);
                    if w == v {
                        break;
                    }
                }
                self.components += 1;
            }
        }
    }
    let mut t = Tarjan {
        graph: &graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        component: BTreeMap::new(),
        next: 0,
        components: 0,
    };
    for &v in graph.keys() {
        if !t.index.contains_key(v) {
            t.visit(v);
        }
    }
    edges
        .iter()
        .filter(|(a, b)| t.component[a.as_str()] == t.component[b.as_str()])
        .cloned()
        .collect()
}

#[test]
fn the_reader_expands_grouped_and_nested_imports() {
    let paths =
        crate_paths("use crate::{a::{b, c::D}, e};\nlet x = crate::f::g(1);\nuse relay_crate::x;");
    assert_eq!(paths, ["a::b", "a::c::D", "e", "f::g"]);
}

#[test]
fn the_cycle_finder_finds_exactly_the_edges_on_a_cycle() {
    let e = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    let edges = BTreeSet::from([e("a", "b"), e("b", "c"), e("c", "a"), e("c", "d")]);
    assert_eq!(
        cycle_edges(&edges),
        BTreeSet::from([e("a", "b"), e("b", "c"), e("c", "a")])
    );
}

#[test]
fn no_import_cycle_in_relay_server_beyond_the_known_one() {
    let edges = edges();
    assert!(
        edges.len() > 20,
        "the reader found too few imports: {edges:?}"
    );
    let on_cycles = cycle_edges(&edges);
    let known: BTreeSet<(String, String)> = KNOWN
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
    let new: Vec<String> = on_cycles
        .difference(&known)
        .map(|(a, b)| format!("    (\"{a}\", \"{b}\"),"))
        .collect();
    assert!(
        new.is_empty(),
        "import edges that close a cycle in relay/server/src (remove them; \
         KNOWN may only shrink, never grow):\n{}",
        new.join("\n")
    );
    let gone: Vec<_> = known.difference(&on_cycles).collect();
    assert!(
        gone.is_empty(),
        "edges in KNOWN no longer on a cycle (remove them from KNOWN): {gone:?}"
    );
}
