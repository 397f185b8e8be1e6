//! The one-way arrows of the README's module table, checked on the source text: a layer
//! uses only what is below it. Each rule lists every offending `file:line`.
//!
//! The data path: `etcd -> codec -> bank`, with `cinder` and `apiserver` beside it, all
//! on the domain `model`; `protection` orchestrates them; `engine` is the one application
//! API over protection (`api` carries it over HTTP); `cli` and `agent` are thin fronts.
//!
//! What counts as a use: every `crate::...` path in code (comments are skipped, so that a
//! doc link to a module above is not a dependency), `use` groups (`crate::{a, b::c}`)
//! expanded. `bank::pb` (the storage schema) is looked for as text too, whatever the path
//! it is reached by.

// Tests, examples and benchmarks: a panic with the value is the assertion.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, sorted.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn src() -> PathBuf {
    root().join("src")
}

/// Where a module's source lives: the library's `src/`, the I/O-free core crate
/// (`crates/core`: model, codec, resources) or the seeder's crate (`crates/seed`).
fn module_dir(module: &str) -> PathBuf {
    match module {
        "model" | "codec" | "resources" => root().join("crates/core/src").join(module),
        "seed" => root().join("crates/seed/src"),
        _ => src().join(module),
    }
}

/// The files of top-level module `module` (a directory, or `src/<module>.rs`).
fn module_files(module: &str) -> Vec<PathBuf> {
    let dir = module_dir(module);
    if dir.is_dir() {
        return sources(&dir);
    }
    let file = src().join(format!("{module}.rs"));
    assert!(file.is_file(), "no module {module}");
    vec![file]
}

/// A source line without its comment (a line comment at the start, or after code outside
/// a string literal, as far as a simple scan can tell).
fn code_of(line: &str) -> &str {
    let trimmed = line.trim_start();
    if trimmed.starts_with("//") || trimmed.starts_with("/*") || trimmed.starts_with('*') {
        return "";
    }
    let mut in_string = false;
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_string => i += 1,
            b'"' => in_string = !in_string,
            b'/' if !in_string && bytes.get(i + 1) == Some(&b'/') => return &line[..i],
            _ => {}
        }
        i += 1;
    }
    line
}

/// Reads a path tree at the start of `text` (`a::b::{c, d::e}`), appending each full path
/// to `out`, prefixed by `prefix`. Returns how many bytes it read.
fn path_tree(text: &str, prefix: &[String], out: &mut Vec<Vec<String>>) -> usize {
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut path = prefix.to_vec();
    loop {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if bytes.get(i) == Some(&b'{') {
            i += 1;
            loop {
                i += path_tree(&text[i..], &path, out);
                while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b',') {
                    i += 1;
                }
                if i >= bytes.len() || bytes[i] == b'}' {
                    return (i + 1).min(bytes.len());
                }
            }
        }
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
            i += 1;
        }
        if i > start {
            path.push(text[start..i].to_string());
        }
        if text[i..].starts_with("::") && i > start {
            i += 2;
            continue;
        }
        if path.len() > prefix.len() {
            out.push(path);
        }
        return i;
    }
}

/// Every `crate::` path used in the code of `file`, with its line number.
fn crate_paths(file: &Path) -> Vec<(usize, Vec<String>)> {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    // Code only, lines kept so that numbers stay right; groups may span lines.
    let code: Vec<&str> = text.lines().map(code_of).collect();
    let joined = code.join("\n");
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(found) = joined[at..].find("crate::") {
        let start = at + found;
        let preceded_by_ident = joined[..start]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
        at = start + "crate::".len();
        if preceded_by_ident {
            continue; // `$crate::`, `podbank::crate::`... not ours
        }
        let line = joined[..start].matches('\n').count() + 1;
        let mut paths = Vec::new();
        at += path_tree(&joined[at..], &[], &mut paths);
        out.extend(paths.into_iter().map(|p| (line, p)));
    }
    out
}

fn relative(file: &Path) -> String {
    file.strip_prefix(root())
        .unwrap_or(file)
        .display()
        .to_string()
}

/// The `file:line: crate::path` of every use, in `modules`, of a path under one of
/// `forbidden`.
fn uses(modules: &[&str], forbidden: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for module in modules {
        for file in module_files(module) {
            for (line, path) in crate_paths(&file) {
                if path
                    .first()
                    .is_some_and(|m| forbidden.contains(&m.as_str()))
                {
                    found.push(format!(
                        "{}:{line}: crate::{}",
                        relative(&file),
                        path.join("::")
                    ));
                }
            }
        }
    }
    found
}

fn assert_none(rule: &str, found: Vec<String>) {
    assert!(
        found.is_empty(),
        "{rule}; offending uses:\n  {}",
        found.join("\n  ")
    );
}

/// The layers below protection: I/O edges, the storage format and the model.
const LOWER: &[&str] = &[
    "bank",
    "codec",
    "etcd",
    "cinder",
    "apiserver",
    "resources",
    "model",
    "openstack",
];

#[test]
fn the_lower_layers_know_nothing_above_them() {
    assert_none(
        "bank, codec, etcd, cinder, apiserver, resources, model and openstack must not use \
         protection, the engine, the HTTP API or a front",
        uses(LOWER, &["cli", "agent", "engine", "protection", "api"]),
    );
}

#[test]
fn the_model_uses_no_other_module() {
    let others: Vec<&str> = [
        "agent",
        "api",
        "apiserver",
        "bank",
        "cinder",
        "cli",
        "codec",
        "engine",
        "etcd",
        "openstack",
        "protection",
        "resources",
    ]
    .to_vec();
    assert_none(
        "the model is used by every module and uses none of them",
        uses(&["model"], &others),
    );
}

#[test]
fn protection_knows_no_front_and_no_http() {
    assert_none(
        "protection orchestrates the layers below; it must not use the fronts or the HTTP API",
        uses(&["protection"], &["cli", "agent", "api"]),
    );
}

#[test]
fn the_engine_knows_no_front() {
    assert_none(
        "the engine is the application API the fronts call; it must not use them",
        uses(&["engine"], &["cli", "agent"]),
    );
}

/// The README's module table, between peers: what each module must not touch, beyond the
/// layers above it. (The seeder is a crate of its own that depends only on the core and
/// etcd-client, and the core crate has no I/O dependency: the compiler checks those.)
const PEER_RULES: &[(&str, &[&str], &str)] = &[
    (
        "model",
        &["codec", "resources"],
        "the model uses no other module",
    ),
    (
        "codec",
        &["resources"],
        "the storage format knows nothing of Karbor's resource types",
    ),
    (
        "etcd",
        &[
            "codec",
            "bank",
            "cinder",
            "apiserver",
            "openstack",
            "resources",
        ],
        "etcd hands out values as opaque bytes",
    ),
    (
        "bank",
        &["etcd", "codec", "cinder", "apiserver", "resources"],
        "the bank stores opaque objects and records (it uses openstack for Swift's identity)",
    ),
    (
        "openstack",
        &["cinder", "bank", "etcd", "codec", "apiserver", "resources"],
        "the OpenStack layer knows no service's API, no bank and no Kubernetes",
    ),
    (
        "cinder",
        &["etcd", "bank", "apiserver", "codec", "resources"],
        "Cinder knows no Kubernetes and no bank",
    ),
    (
        "apiserver",
        &["bank", "cinder", "etcd", "openstack"],
        "the API-server client knows no checkpoints and no Cinder",
    ),
    (
        "engine",
        &["api"],
        "the engine knows no HTTP (api carries the engine, not the reverse)",
    ),
    (
        "api",
        &["agent", "cli"],
        "the HTTP wire types and client know no front",
    ),
    (
        "agent",
        &["bank", "cinder", "apiserver", "openstack"],
        "the agent works through the engine, not the storage or OpenStack layers (it uses etcd \
         for leader election only)",
    ),
];

#[test]
fn peers_keep_the_readme_module_table() {
    let mut found = Vec::new();
    for (module, forbidden, why) in PEER_RULES {
        for hit in uses(&[module], forbidden) {
            found.push(format!("{module} ({why}): {hit}"));
        }
    }
    assert_none("a module uses a peer the README's table forbids", found);
}

#[test]
fn nothing_above_the_bank_reads_its_storage_schema() {
    let mut found = Vec::new();
    for file in sources(&src()) {
        if file.starts_with(src().join("bank")) {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("a source file");
        for (n, line) in text.lines().enumerate() {
            let code = code_of(line);
            if code.contains("bank::pb") || code.contains("format::pb") {
                found.push(format!("{}:{}: {}", relative(&file), n + 1, code.trim()));
            }
        }
        for (line, path) in crate_paths(&file) {
            let schema = path.first().is_some_and(|m| m == "bank")
                && path.iter().skip(1).take(2).any(|s| s == "pb");
            if schema {
                found.push(format!(
                    "{}:{line}: crate::{}",
                    relative(&file),
                    path.join("::")
                ));
            }
        }
    }
    found.dedup();
    assert_none(
        "the bank converts its protobuf records (bank::pb) to the model at its edge; nothing \
         outside src/bank reads them",
        found,
    );
}

#[test]
fn only_the_cli_knows_clap() {
    let mut found = Vec::new();
    for file in sources(&src()) {
        if file.starts_with(src().join("cli")) || file == src().join("main.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("a source file");
        for (n, line) in text.lines().enumerate() {
            let code = code_of(line);
            if code.contains("clap::") || code.contains("use clap") {
                found.push(format!("{}:{}: {}", relative(&file), n + 1, code.trim()));
            }
        }
    }
    assert_none(
        "flags are the CLI's: the types below it derive no clap traits (the CLI parses them \
         with their FromStr)",
        found,
    );
}

#[test]
fn the_path_reader_sees_groups_and_skips_comments() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("x.rs");
    std::fs::write(
        &file,
        "//! [`crate::cli`] in a doc\nuse crate::{bank::{pb, Bank}, model};\n\
         fn f() { crate::agent::run(); } // crate::engine\nlet s = \"//\"; crate::api::X;\n",
    )
    .expect("written");
    let paths: Vec<(usize, String)> = crate_paths(&file)
        .into_iter()
        .map(|(n, p)| (n, p.join("::")))
        .collect();
    let expected: Vec<(usize, String)> = [
        (2, "bank::pb"),
        (2, "bank::Bank"),
        (2, "model"),
        (3, "agent::run"),
        (4, "api::X"),
    ]
    .into_iter()
    .map(|(n, p)| (n, p.to_string()))
    .collect();
    assert_eq!(paths, expected);
}
