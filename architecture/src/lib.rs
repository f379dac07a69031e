//! The fitness test's reading of the code: which module of a crate uses which, from the
//! sources alone (no compiler, no dependencies), so that a circle between modules, a crate
//! that depends on one above it, or a file grown past a few hundred lines fails a test
//! that names what is wrong.
//!
//! A module is a file: `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`, `src/lib.rs` is the
//! root. A module uses another when its non-test code names a path into it: `crate::…`,
//! `super::…`, `self::…`, or a child module's name (`window::Monitor` in `drift/mod.rs`),
//! in a `use` tree or anywhere else. A path resolves to the longest module prefix it
//! names and then through that module's re-exports (`pub use`) to where the item is
//! defined: `crate::models::LoadedModel` is a use of `models::table`, so a circle cannot
//! hide behind a `mod.rs`. A module using its own descendants is not counted (that
//! arrow points down, as the module tree does); `mod` declarations are not uses.
//!
//! Test code (from a file's first top-level `#[cfg(test)]` on a `mod`) is left out, and
//! so are comments and string literals.

mod scan;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub use scan::{NamedPath, non_test_code, paths};

/// A module path within its crate: `["models", "table"]`; the root is empty.
pub type ModulePath = Vec<String>;

/// The modules of one crate and the uses between them.
#[derive(Debug, Default)]
pub struct Graph {
    /// Every module, with the file that holds it.
    pub modules: BTreeMap<ModulePath, PathBuf>,
    /// `from → to → the first path that made the use`, for modules of the crate.
    pub uses: BTreeMap<ModulePath, BTreeMap<ModulePath, String>>,
    /// Each module's re-exports: the name it exports → the path it names.
    exports: BTreeMap<ModulePath, BTreeMap<String, Vec<String>>>,
}

/// Writes a module path as Rust does (`crate` for the root).
pub fn display(m: &[String]) -> String {
    if m.is_empty() {
        "crate".into()
    } else {
        m.join("::")
    }
}

impl Graph {
    /// Reads the crate whose sources are under `src` (its `lib.rs` and modules; `main.rs`
    /// and `bin/` are programs that use the crate by name, not modules of it).
    pub fn read(src: &Path) -> std::io::Result<Graph> {
        let mut graph = Graph::default();
        for file in rust_files(src)? {
            let rel = file.strip_prefix(src).unwrap_or(&file);
            let mut parts: Vec<String> = rel
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            if parts.first().is_some_and(|p| p == "bin") || parts == ["main.rs"] {
                continue;
            }
            if let Some(last) = parts.last_mut() {
                *last = last.trim_end_matches(".rs").to_string();
            }
            if parts.last().is_some_and(|l| l == "mod") || parts == ["lib"] {
                parts.pop();
            }
            graph.modules.insert(parts, file);
        }
        let mut named = BTreeMap::new();
        for (module, file) in &graph.modules {
            let found = paths(&non_test_code(&std::fs::read_to_string(file)?));
            for p in &found {
                if let Some(name) = &p.exported_as {
                    graph
                        .exports
                        .entry(module.clone())
                        .or_default()
                        .insert(name.clone(), p.segments.clone());
                }
            }
            named.insert(module.clone(), found);
        }
        for (module, found) in named {
            let mut uses = BTreeMap::new();
            for p in found {
                let Some(target) = graph.resolve(&module, &p.segments, 0) else {
                    continue;
                };
                if !target.starts_with(&module) {
                    uses.entry(target).or_insert_with(|| p.segments.join("::"));
                }
            }
            graph.uses.insert(module, uses);
        }
        Ok(graph)
    }

    /// The module of this crate that `path`, written in `from`, names, followed through
    /// re-exports (`depth` of them so far); `None` for a path into another crate or to a
    /// local item.
    fn resolve(&self, from: &[String], path: &[String], depth: usize) -> Option<ModulePath> {
        let (module, rest) = self.module_of(from, path)?;
        let reexport = rest
            .first()
            .and_then(|name| self.exports.get(&module)?.get(name));
        match reexport {
            Some(source) if depth < 16 => self.resolve(&module, source, depth + 1).or(Some(module)),
            _ => Some(module),
        }
    }

    /// The longest module prefix `path` names from `from`, and the segments after it.
    fn module_of(&self, from: &[String], path: &[String]) -> Option<(ModulePath, Vec<String>)> {
        let (first, rest) = path.split_first()?;
        let mut base: Vec<String> = match first.as_str() {
            "crate" => Vec::new(),
            "self" => from.to_vec(),
            "super" => from.get(..from.len().checked_sub(1)?)?.to_vec(),
            child => {
                let mut m = from.to_vec();
                m.push(child.to_string());
                if !self.modules.contains_key(&m) {
                    return None;
                }
                from.to_vec()
            }
        };
        let mut rest = if first == "crate" || first == "self" || first == "super" {
            rest
        } else {
            path
        };
        while let Some(("super", tail)) = rest.split_first().map(|(h, t)| (h.as_str(), t)) {
            base.pop()?;
            rest = tail;
        }
        base.extend(rest.iter().cloned());
        (0..=base.len())
            .rev()
            .find(|&n| self.modules.contains_key(&base[..n]))
            .map(|n| (base[..n].to_vec(), base[n..].to_vec()))
    }

    /// The circles: each group of two or more modules that all reach each other, with
    /// the uses inside the group that close it (`from uses to (path)`).
    pub fn circles(&self) -> Vec<Circle> {
        strongly_connected(&self.uses)
            .into_iter()
            .filter(|group| group.len() > 1)
            .map(|group| {
                let members: BTreeSet<&ModulePath> = group.iter().collect();
                let mut uses = Vec::new();
                for from in &group {
                    for (to, path) in self.uses.get(from).into_iter().flatten() {
                        if members.contains(to) {
                            uses.push(format!("{} uses {} ({path})", display(from), display(to)));
                        }
                    }
                }
                Circle {
                    modules: group.iter().map(|m| display(m)).collect(),
                    uses,
                }
            })
            .collect()
    }
}

/// Modules that use each other in a circle, and the uses that close it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Circle {
    /// The modules, sorted.
    pub modules: Vec<String>,
    /// `a uses b (crate::b::X)`, for every use between them.
    pub uses: Vec<String>,
}

impl std::fmt::Display for Circle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "circle of {}:", self.modules.join(", "))?;
        for u in &self.uses {
            writeln!(f, "  {u}")?;
        }
        Ok(())
    }
}

/// Tarjan's strongly connected components of the use graph, each sorted.
fn strongly_connected(
    uses: &BTreeMap<ModulePath, BTreeMap<ModulePath, String>>,
) -> Vec<Vec<ModulePath>> {
    struct State<'a> {
        uses: &'a BTreeMap<ModulePath, BTreeMap<ModulePath, String>>,
        index: BTreeMap<&'a ModulePath, usize>,
        low: BTreeMap<&'a ModulePath, usize>,
        stack: Vec<&'a ModulePath>,
        on_stack: BTreeSet<&'a ModulePath>,
        out: Vec<Vec<ModulePath>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a ModulePath) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        let uses = s.uses;
        for w in uses.get(v).into_iter().flat_map(BTreeMap::keys) {
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.entry(v).or_insert(lw);
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.entry(v).or_insert(iw);
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut group = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                group.push(w.clone());
                if w == v {
                    break;
                }
            }
            group.sort();
            s.out.push(group);
        }
    }
    let mut s = State {
        uses,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in uses.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.out
}

/// Every `.rs` file under `dir`, sorted.
pub fn rust_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The workspace crates (`mercator-…`) a `Cargo.toml` depends on, in any dependency
/// table (normal, dev, build, per target): `cargo tree` shows them all.
pub fn workspace_dependencies(cargo_toml: &str) -> BTreeSet<String> {
    let mut in_deps = false;
    let mut out = BTreeSet::new();
    for line in cargo_toml.lines().map(str::trim) {
        if line.starts_with('[') {
            in_deps = line
                .trim_matches(|c| c == '[' || c == ']')
                .ends_with("dependencies");
            continue;
        }
        let name = line.split(['=', '.', ' ']).next().unwrap_or("");
        if in_deps && name.starts_with("mercator-") {
            out.insert(name.to_string());
        }
    }
    out
}

/// Lines of a file's code before its tests ([`scan::test_cut`]).
pub fn non_test_lines(text: &str) -> usize {
    scan::test_cut(text)
}

/// Which of `names` a file's code (its tests, comments and literals left out) uses as a
/// whole word: a crate (`tonic`, `mercator_proto`) or a function (`spawn_blocking`),
/// however the path to it is written.
pub fn names_used<'a>(text: &str, names: &[&'a str]) -> Vec<&'a str> {
    let code = non_test_code(text);
    let words: BTreeSet<&str> = code
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .collect();
    names
        .iter()
        .copied()
        .filter(|n| words.contains(n))
        .collect()
}
