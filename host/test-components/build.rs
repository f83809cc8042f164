//! Builds every component in `activities-wasm/` for `wasm32-wasip2` and writes their paths
//! as constants, so tests use freshly built guests and no binary is checked in.

use std::env;
use std::path::PathBuf;
use std::process::Command;

/// Components and the constant naming each.
const COMPONENTS: &[(&str, &str)] = &[
    ("VALIDATE_USER", "validate_user"),
    ("CREATE_USER", "create_user"),
    ("UPDATE_USER", "update_user"),
    ("DELETE_USER", "delete_user"),
    ("SEND_NOTIFICATION", "send_notification"),
    ("MISBEHAVING", "misbehaving"),
    ("SOCKET", "socket"),
    ("FORBIDDEN", "forbidden"),
];

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir
        .join("../..")
        .canonicalize()
        .expect("workspace root");
    let guests = root.join("activities-wasm");
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("set by cargo"));
    // A target directory of its own: the outer build holds the lock on the host's.
    let target_dir = env::var_os("GUEST_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| env::var_os("CARGO_TARGET_DIR").map(|d| PathBuf::from(d).join("guests")))
        .unwrap_or_else(|| root.join("target").join("guests"));

    println!("cargo:rerun-if-changed={}", root.join("wit").display());
    for entry in [
        "Cargo.toml",
        "Cargo.lock",
        "shared",
        "user-store",
        "validate-user",
        "create-user",
        "update-user",
        "delete-user",
        "send-notification",
        "misbehaving",
    ] {
        println!("cargo:rerun-if-changed={}", guests.join(entry).display());
    }
    println!("cargo:rerun-if-env-changed=GUEST_TARGET_DIR");
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");

    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&guests)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(&target_dir);
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
        // Under `cargo clippy` (make lint) the outer build runs rustc through clippy-driver;
        // the guests are built the way `make guests` builds them, so both share one build.
        "RUSTC_WORKSPACE_WRAPPER",
        "CLIPPY_ARGS",
        "CLIPPY_CONF_DIR",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd
        .status()
        .expect("run cargo to build the guest components");
    assert!(
        status.success(),
        "building activities-wasm for wasm32-wasip2 failed; is the target installed? \
         (rustup target add wasm32-wasip2)"
    );

    let built = target_dir.join("wasm32-wasip2").join("release");
    let mut code = String::new();
    for (constant, file) in COMPONENTS {
        let path = built.join(format!("{file}.wasm"));
        assert!(path.exists(), "{} was not built", path.display());
        code.push_str(&format!(
            "/// Path of the built `{file}` component.\npub const {constant}: &str = {:?};\n",
            path.display().to_string()
        ));
    }
    std::fs::write(out_dir.join("components.rs"), code).expect("write components.rs");
}
