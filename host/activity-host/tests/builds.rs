//! The build CI pays for: `cargo build -p activity-host` (`make dev`, `make install`) and
//! `cargo test --workspace` resolve every shared dependency with the same features, so the
//! test build reuses the binary's build instead of compiling the dependency graph again.

use std::collections::{BTreeMap, BTreeSet};

/// Each package (`name vX.Y.Z`) and its features, as `cargo tree` resolves them for `args`.
fn resolved(args: &[&str]) -> BTreeMap<String, BTreeSet<String>> {
    let repo = test_support::repo();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["tree", "--locked", "--prefix", "none", "-f", "{p}|{f}"])
        .args(args)
        .current_dir(repo)
        .output()
        .unwrap();
    let text = super::support::output_text(&out);
    assert!(out.status.success(), "cargo tree {args:?}: {text}");
    let mut packages: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some((package, features)) = line.trim_end_matches(" (*)").split_once('|') else {
            continue;
        };
        // "name vX.Y.Z (/path)" for workspace members: the name and version are the key.
        let key = package.split(' ').take(2).collect::<Vec<_>>().join(" ");
        packages.entry(key).or_default().extend(
            features
                .split(',')
                .filter(|f| !f.is_empty())
                .map(String::from),
        );
    }
    packages
}

#[test]
fn the_binary_and_the_test_build_resolve_the_same_features() {
    let binary = resolved(&["-p", "activity-host", "-e", "normal,build"]);
    let tests = resolved(&["--workspace", "-e", "normal,build,dev"]);
    assert!(binary.len() > 100, "{binary:?}");
    let differing: Vec<String> = binary
        .iter()
        .filter_map(|(package, features)| {
            let more: Vec<&String> = tests.get(package)?.difference(features).collect();
            (!more.is_empty()).then(|| format!("{package}: {more:?}"))
        })
        .collect();
    assert!(
        differing.is_empty(),
        "the test build turns on features the binary's build does not; add them to \
         host/workspace-hack/Cargo.toml so both are one build:\n{}",
        differing.join("\n")
    );
}

/// Every Rust file under `dir`, recursively, but for installed packages (`node_modules`:
/// the TypeScript SDK ships its core's Rust sources).
fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.file_name().is_some_and(|n| n == "node_modules") {
            continue;
        }
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A target directory shared by two checkouts (CI's and a developer's, on one machine) keeps
/// a test binary built in the other checkout when the sources are older than it; a path baked
/// in with `env!("CARGO_MANIFEST_DIR")` then names the other checkout (the wit-json
/// snapshots were looked for there, and failed). Tests find their files from the directory
/// cargo gives them at run time (`test_support::package_dir`, `test_support::repo`).
#[test]
fn tests_find_their_files_at_run_time() {
    let host = test_support::repo().join("host");
    let mut files = Vec::new();
    for package in std::fs::read_dir(&host).unwrap().flatten() {
        for part in ["tests", "benches"] {
            let dir = package.path().join(part);
            if dir.is_dir() {
                rust_files(&dir, &mut files);
            }
        }
    }
    rust_files(&host.join("test-support/src"), &mut files);
    let baked = concat!("env!(\"CARGO_", "MANIFEST_DIR\")");
    let offenders: Vec<String> = files
        .iter()
        .filter(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .any(|l| l.contains(baked) && !l.trim_start().starts_with("//"))
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        files.len() > 20 && offenders.is_empty(),
        "{} files read; these bake the package path in at compile time: {offenders:?}",
        files.len()
    );
}
