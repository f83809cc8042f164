//! `activity-host new NAME`: scaffolds an activity component crate that builds with plain
//! `cargo build --target wasm32-wasip2` and with `cargo component build`, with the host's
//! WIT packages vendored under `wit/deps/` so it builds anywhere.

use std::path::{Path, PathBuf};

/// The host's WIT packages an activity may import, vendored into every new crate.
const WIT_DEPS: &[(&str, &str)] = &[
    (
        "activity/activity.wit",
        include_str!("../../../wit/deps/activity/activity.wit"),
    ),
    ("cli/cli.wit", include_str!("../../../wit/deps/cli/cli.wit")),
    (
        "clocks/clocks.wit",
        include_str!("../../../wit/deps/clocks/clocks.wit"),
    ),
    (
        "config/store.wit",
        include_str!("../../../wit/deps/config/store.wit"),
    ),
    (
        "config/world.wit",
        include_str!("../../../wit/deps/config/world.wit"),
    ),
    (
        "filesystem/filesystem.wit",
        include_str!("../../../wit/deps/filesystem/filesystem.wit"),
    ),
    (
        "http/http.wit",
        include_str!("../../../wit/deps/http/http.wit"),
    ),
    ("io/io.wit", include_str!("../../../wit/deps/io/io.wit")),
    (
        "keyvalue/atomic.wit",
        include_str!("../../../wit/deps/keyvalue/atomic.wit"),
    ),
    (
        "keyvalue/batch.wit",
        include_str!("../../../wit/deps/keyvalue/batch.wit"),
    ),
    (
        "keyvalue/store.wit",
        include_str!("../../../wit/deps/keyvalue/store.wit"),
    ),
    (
        "keyvalue/watch.wit",
        include_str!("../../../wit/deps/keyvalue/watch.wit"),
    ),
    (
        "keyvalue/world.wit",
        include_str!("../../../wit/deps/keyvalue/world.wit"),
    ),
    (
        "logging/logging.wit",
        include_str!("../../../wit/deps/logging/logging.wit"),
    ),
    (
        "random/random.wit",
        include_str!("../../../wit/deps/random/random.wit"),
    ),
    (
        "sockets/sockets.wit",
        include_str!("../../../wit/deps/sockets/sockets.wit"),
    ),
];

/// Why a crate could not be scaffolded.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The activity type name is not usable.
    #[error("{0}")]
    Name(String),
    /// The directory exists.
    #[error("{0} already exists; choose another --dir or remove it")]
    Exists(String),
    /// Writing failed.
    #[error("write {path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
}

/// `GreetUser` -> `greet-user`: the crate, world and export name.
pub fn kebab(name: &str) -> String {
    activity_runtime::load::export_name_for(name)
}

/// The files of a new activity crate for activity type `name`.
pub fn files(name: &str) -> Vec<(PathBuf, String)> {
    let kebab = kebab(name);
    let snake = kebab.replace('-', "_");
    let mut out = vec![
        (
            PathBuf::from("Cargo.toml"),
            CARGO_TOML.replace("{kebab}", &kebab).replace(
                "{component_dependencies}",
                &component_dependencies("wit/deps"),
            ),
        ),
        (
            PathBuf::from("src/lib.rs"),
            LIB_RS
                .replace("{kebab}", &kebab)
                .replace("{snake}", &snake)
                .replace("{Name}", name),
        ),
        (
            PathBuf::from("wit/world.wit"),
            WORLD_WIT.replace("{kebab}", &kebab).replace("{Name}", name),
        ),
        (
            PathBuf::from("README.md"),
            README
                .replace("{kebab}", &kebab)
                .replace("{snake}", &snake)
                .replace("{Name}", name),
        ),
        // cargo-component writes its generated bindings into src/.
        (
            PathBuf::from(".gitignore"),
            "/target\n/src/bindings.rs\n".to_string(),
        ),
    ];
    out.extend(
        WIT_DEPS
            .iter()
            .map(|(p, text)| (Path::new("wit/deps").join(p), text.to_string())),
    );
    out
}

/// The `package` a vendored WIT file declares (`wasi:http@0.2.12` -> `wasi:http`).
fn package_of(text: &str) -> Option<&str> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("package "))
        .map(|p| {
            p.trim_end_matches(';')
                .split('@')
                .next()
                .unwrap_or(p)
                .trim()
        })
}

/// `[package.metadata.component.target.dependencies]` entries for every vendored package,
/// under `deps` (relative to the crate): cargo-component resolves WIT packages from these
/// paths, not from a `deps/` folder.
pub fn component_dependencies(deps: &str) -> String {
    let mut packages: Vec<(&str, &str)> = WIT_DEPS
        .iter()
        .filter_map(|(path, text)| Some((package_of(text)?, path.split('/').next()?)))
        .collect();
    packages.sort();
    packages.dedup();
    packages
        .iter()
        .map(|(package, dir)| format!("\"{package}\" = {{ path = \"{deps}/{dir}\" }}\n"))
        .collect()
}

/// Writes a new activity crate for `name` into `dir` (which must not exist).
pub fn scaffold(name: &str, dir: &Path) -> Result<Vec<PathBuf>, ScaffoldError> {
    activity_registry::check_name(name).map_err(|e| ScaffoldError::Name(e.to_string()))?;
    if name.contains('.') || !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(ScaffoldError::Name(format!(
            "{name:?}: a new activity's name starts with a letter and has no '.', so it can name a crate and a WIT world"
        )));
    }
    if dir.exists() {
        return Err(ScaffoldError::Exists(dir.display().to_string()));
    }
    let mut written = Vec::new();
    for (rel, text) in files(name) {
        let path = dir.join(&rel);
        let io = |e: std::io::Error| ScaffoldError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        std::fs::write(&path, text).map_err(io)?;
        written.push(rel);
    }
    Ok(written)
}

const CARGO_TOML: &str = r#"[package]
name = "{kebab}"
version = "0.1.0"
edition = "2021"

[lib]
crate-type = ["cdylib"]

[dependencies]
wit-bindgen = "0.63"

# `cargo component build` reads the WIT world from here.
[package.metadata.component]
package = "my:{kebab}"

[package.metadata.component.target]
path = "wit"
world = "{kebab}"

# The WIT packages under wit/deps, for cargo-component (plain cargo reads wit/deps itself).
[package.metadata.component.target.dependencies]
{component_dependencies}
[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
strip = true
panic = "abort"

# A crate of its own, even inside another workspace.
[workspace]
"#;

const WORLD_WIT: &str = r#"package my:{kebab}@0.1.0;

/// The activity's typed input and output. Callers pass the input as JSON
/// (`{"name": "Ann", "language": "en"}`); keys are the field names with '-' written '_'.
interface types {
    record request {
        name: string,
        language: option<string>,
    }

    record greeting {
        text: string,
        attempt: u32,
    }
}

/// The activity {Name}: its export is named after the activity type in kebab case.
world {kebab} {
    use types.{request, greeting};
    use activity-host:activity/types@0.1.0.{failure};
    import activity-host:activity/context@0.1.0;
    import wasi:logging/logging@0.1.0-draft;

    export {kebab}: func(request: request) -> result<greeting, failure>;
}
"#;

const LIB_RS: &str = r#"//! The activity {Name}.

wit_bindgen::generate!({ path: "wit", world: "{kebab}", generate_all });

// The world's `use` brings `Request`, `Greeting` and `Failure` into scope.
use activity_host::activity::context;
use wasi::logging::logging::{log, Level};

struct Component;

impl Guest for Component {
    fn {snake}(request: Request) -> Result<Greeting, Failure> {
        let name = request.name.trim();
        if name.is_empty() {
            // A typed failure: Temporal sees type "InvalidName" and does not retry.
            return Err(Failure {
                message: "name must not be empty".into(),
                type_: Some("InvalidName".into()),
                non_retryable: true,
                details: None,
            });
        }
        let text = match request.language.as_deref() {
            Some("fr") => format!("Bonjour, {name} !"),
            Some("de") => format!("Hallo, {name}!"),
            _ => format!("Hello, {name}!"),
        };
        let info = context::info();
        log(Level::Info, "{kebab}", &format!("greeted {name} (version {})", info.version));
        Ok(Greeting {
            text,
            attempt: info.attempt,
        })
    }
}

export!(Component);
"#;

const README: &str = r#"# {Name}

A Temporal activity for activity-host, as a WebAssembly component.

```sh
# build (either way)
cargo build --release --target wasm32-wasip2    # target/wasm32-wasip2/release/{snake}.wasm
cargo component build --release                 # target/wasm32-wasip1/release/{snake}.wasm

# deploy to a running host, then call it
activity-host deploy target/wasm32-wasip2/release/{snake}.wasm --name {Name}
activity-host invoke {Name} --input '{"name":"Ann","language":"fr"}'
temporal activity execute --type {Name} --task-queue user-task-queue   --activity-id try-1 --start-to-close-timeout 10s --input '{"name":"Ann"}'

# or: rebuild, deploy and call on every save
activity-host watch . --name {Name} --input '{"name":"Ann"}'
```

The contract is `wit/world.wit`; `wit/deps/` holds the host's packages
(`activity-host:activity` for context and failures, WASI logging, key-value, config, HTTP).
Import what the activity needs, and grant it at deploy time (`--kv-store`, `--allow-host`).
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_crate_names_everything_after_the_activity() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("greet-user");
        let written = scaffold("GreetUser", &target).unwrap();
        assert!(written.contains(&PathBuf::from("wit/deps/activity/activity.wit")));
        let lib = std::fs::read_to_string(target.join("src/lib.rs")).unwrap();
        assert!(lib.contains("fn greet_user(request: Request)"), "{lib}");
        let world = std::fs::read_to_string(target.join("wit/world.wit")).unwrap();
        assert!(world.contains("export greet-user: func"), "{world}");
        assert!(matches!(
            scaffold("GreetUser", &target),
            Err(ScaffoldError::Exists(_))
        ));
        assert!(matches!(
            scaffold("9lives", &dir.path().join("x")),
            Err(ScaffoldError::Name(_))
        ));
        assert!(matches!(
            scaffold("Bad Name", &dir.path().join("y")),
            Err(ScaffoldError::Name(_))
        ));
    }
}
