//! The build CI pays for: `cargo build -p activity-host` (`make dev`, `make install`) and
//! `cargo test --workspace` resolve every shared dependency with the same features, so the
//! test build reuses the binary's build instead of compiling the dependency graph again.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Each package (`name vX.Y.Z`) and its features, as `cargo tree` resolves them for `args`.
fn resolved(args: &[&str]) -> BTreeMap<String, BTreeSet<String>> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
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
