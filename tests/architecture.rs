//! The module map in `src/lib.rs` is the code: every `crate::X` path in the non-test code of
//! every source file goes from a module to one on a lower line of the map, so the modules
//! have no cycle, and a module the map does not list is an error.
//!
//! The map is the fenced block under "# Architecture" in `src/lib.rs`: one line per layer,
//! top to bottom, modules separated by spaces; `main` (the binary) and `lib` stand outside.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The layers of the map, top first.
fn map_layers() -> Vec<Vec<String>> {
    let lib = std::fs::read_to_string(Path::new(ROOT).join("src/lib.rs")).unwrap();
    let doc: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect();
    let start = doc
        .iter()
        .position(|l| l.trim() == "# Architecture")
        .expect("src/lib.rs has an # Architecture section");
    let fence = start
        + doc[start..]
            .iter()
            .position(|l| l.starts_with("```"))
            .expect("the architecture section has a fenced map");
    doc[fence + 1..]
        .iter()
        .take_while(|l| !l.starts_with("```"))
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .filter(|layer| !layer.is_empty())
        .collect()
}

/// Every .rs file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`src/data/fetch/mod.rs` -> `data`).
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative.components().next().unwrap().as_os_str();
    let first = first.to_string_lossy();
    first.strip_suffix(".rs").unwrap_or(&first).to_string()
}

/// Code before the first `#[cfg(test)]` line, without `//` comments.
fn non_test_code(text: &str) -> String {
    text.lines()
        .take_while(|l| !l.starts_with("#[cfg(test)]"))
        .map(|l| l.find("//").map_or(l, |i| &l[..i]))
        .collect::<Vec<_>>()
        .join("\n")
}

fn identifier_at(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// The modules named by `crate::X` and `crate::{X, Y::Z}` paths.
fn used_modules(code: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    for (index, _) in code.match_indices("crate::") {
        let rest = &code[index + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for item in group.split(',') {
                let name = identifier_at(item.trim());
                if !name.is_empty() {
                    used.insert(name);
                }
            }
        } else {
            used.insert(identifier_at(rest));
        }
    }
    used
}

fn module_edges() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(ROOT).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(&src, f)).collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let from = module_of(&src, file);
        let code = non_test_code(&std::fs::read_to_string(file).unwrap());
        let entry = edges.entry(from.clone()).or_default();
        for to in used_modules(&code) {
            if to != from && modules.contains(&to) {
                entry.insert(to);
            }
        }
    }
    edges
}

#[test]
fn every_module_uses_only_modules_below_it_on_the_map() {
    let layers = map_layers();
    let mut level = BTreeMap::new();
    for (index, layer) in layers.iter().enumerate() {
        for module in layer {
            assert!(
                level.insert(module.clone(), index).is_none(),
                "src/lib.rs: {module} is on two lines of the map"
            );
        }
    }
    let mut problems = Vec::new();
    for (from, targets) in module_edges() {
        if from == "main" || from == "lib" {
            continue;
        }
        let Some(&from_level) = level.get(&from) else {
            problems.push(format!("{from} is not on the map"));
            continue;
        };
        for to in targets {
            match level.get(&to) {
                None => problems.push(format!("{to} (used by {from}) is not on the map")),
                Some(&to_level) if to_level <= from_level => problems.push(format!(
                    "{from} uses {to}, which the map puts {} it",
                    if to_level == from_level {
                        "beside"
                    } else {
                        "above"
                    }
                )),
                Some(_) => {}
            }
        }
    }
    assert!(
        problems.is_empty(),
        "src/lib.rs's map is not the code:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_map_lists_no_module_that_does_not_exist() {
    let edges = module_edges();
    for module in map_layers().into_iter().flatten() {
        assert!(
            edges.contains_key(&module),
            "src/lib.rs: the map lists {module}, which has no source file"
        );
    }
}

#[test]
fn paths_in_groups_and_plain_paths_are_both_read() {
    let code = "use crate::{alpha, beta::Gamma};\nfn f() { crate::delta::run() }";
    let used = used_modules(code);
    assert_eq!(
        used.into_iter().collect::<Vec<_>>(),
        ["alpha", "beta", "delta"]
    );
    assert_eq!(
        non_test_code("a\n// crate::x\n#[cfg(test)]\ncrate::y"),
        "a\n"
    );
}
