//! The module's files depend one way: no file of `rust/` uses one that uses it back, however
//! long the way round. Read from the sources, as a newcomer would read the imports.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Each module of the crate and the crate modules it names (`crate::name`).
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../rust"));
    let mut files = Vec::new();
    for entry in std::fs::read_dir(root).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            files.push((
                path.file_stem().unwrap().to_string_lossy().into_owned(),
                path,
            ));
        }
    }
    for entry in std::fs::read_dir(root.join("shim")).unwrap() {
        files.push(("shim".to_string(), entry.unwrap().path()));
    }
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let names: BTreeSet<String> = files.iter().map(|(n, _)| n.clone()).collect();
    for (name, path) in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let deps = graph.entry(name.clone()).or_default();
        for (i, _) in text.match_indices("crate::") {
            let rest = &text[i + 7..];
            let used: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if names.contains(&used) && &used != name {
                deps.insert(used);
            }
        }
        // `use crate::{a, b}` names several at once.
        for (i, _) in text.match_indices("crate::{") {
            let list = &text[i + 8..i + 8 + text[i + 8..].find('}').unwrap_or(0)];
            for used in list
                .split(',')
                .map(|s| s.trim().split("::").next().unwrap_or(""))
            {
                if names.contains(used) && used != name {
                    deps.insert(used.to_string());
                }
            }
        }
    }
    // The crate root declares every module; it is the top, not a dependency of anything.
    graph.remove("cr_main");
    for deps in graph.values_mut() {
        deps.remove("cr_main");
    }
    graph
}

#[test]
fn no_file_depends_on_one_that_depends_on_it() {
    let graph = imports();
    assert!(graph.len() > 20, "found only {} modules", graph.len());
    // Depth-first search for a cycle, reporting it whole.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if let Some(at) = path.iter().position(|p| p == node) {
            panic!("import cycle: {} -> {node}", path[at..].join(" -> "));
        }
        if done.contains(node) {
            return;
        }
        path.push(node.to_string());
        for dep in graph.get(node).into_iter().flatten() {
            visit(dep, graph, path, done);
        }
        path.pop();
        done.insert(node.to_string());
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        visit(node, &graph, &mut Vec::new(), &mut done);
    }
}
