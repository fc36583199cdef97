//! The layers listed at the top of `src/lib.rs` hold: every top-level module is in exactly
//! one layer, and no module names (`crate::…`, in code or docs) a module of its own layer
//! or one above it, so the import graph of `src/` has no cycles.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Module name -> layer, read from the numbered list in `src/lib.rs`'s docs.
fn layers(lib: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for line in lib.lines().take_while(|l| l.starts_with("//!")) {
        let text = line.trim_start_matches("//!").trim();
        let number = text.split_once(". ").and_then(|(n, _)| n.parse::<usize>().ok());
        if let Some(n) = number {
            // Module names are the backticked words before the colon.
            let head = text.split_once(':').map_or(text, |(h, _)| h);
            for name in head.split('`').skip(1).step_by(2) {
                assert!(out.insert(name.to_string(), n).is_none(), "`{name}` is listed twice");
            }
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_module_imports_from_its_own_layer_or_above() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let layers = layers(&lib);
    assert!(layers.len() > 10, "the layer list was not found in src/lib.rs: {layers:?}");

    // Every library module (a `pub mod` or `mod` line of lib.rs) is listed.
    for line in lib.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix("pub mod ").or_else(|| line.strip_prefix("mod ")) {
            let name = name.trim_end_matches(';');
            assert!(layers.contains_key(name), "module `{name}` is in no layer of src/lib.rs");
        }
    }

    let mut problems = Vec::new();
    for (module, &layer) in &layers {
        let mut files = Vec::new();
        let dir = src.join(module);
        if dir.is_dir() {
            rust_files(&dir, &mut files);
        } else {
            files.push(src.join(format!("{module}.rs")));
        }
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for (i, _) in text.match_indices("crate::") {
                let rest = &text[i + "crate::".len()..];
                let target: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                let Some(&target_layer) = layers.get(&target) else { continue };
                if target != *module && target_layer >= layer {
                    let line = text[..i].lines().count();
                    problems.push(format!(
                        "{}:{line}: `{module}` (layer {layer}) names `{target}` (layer {target_layer})",
                        file.strip_prefix(&src).unwrap().display()
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "imports against the layers:\n{}", problems.join("\n"));
}
