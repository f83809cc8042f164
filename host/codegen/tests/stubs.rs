//! The stubs for every WIT type the test component exports (and the reference activities),
//! in each language, checked by that language's own tools: the Rust module is compiled
//! here (`generated/stubs.rs` must equal what the generator writes now, and rustfmt must
//! leave it unchanged), the Python module passes `mypy --strict`, the TypeScript module
//! passes `tsc --strict` against `@temporalio/workflow`; and a caller's type error is caught
//! by each checker.

#[path = "generated/stubs.rs"]
mod stubs;

use std::path::{Path, PathBuf};
use std::process::Command;

use activity_codegen::{Activity, Lang};
use activity_runtime::{ActivitySpec, Grants, Runtime, RuntimeConfig, Signature};

/// The test component's exports, each as an activity type named after it.
const EXPORTS: &[&str] = &[
    "add",
    "echo",
    "echo-many",
    "trap",
    "spin",
    "heartbeat-then-fail",
    "allocate",
    "huge-output",
    "read-file",
    "read-env",
    "fetch",
    "fail",
    "info",
    "heartbeat",
    "resume",
    "config-get",
    "strict-validate-user",
];

fn signatures() -> Vec<(String, Signature)> {
    let runtime = Runtime::new(&RuntimeConfig::default()).expect("runtime");
    let grants = Grants {
        allowed_hosts: vec!["*".into()],
        key_value_stores: vec!["*".into()],
        ..Default::default()
    };
    let tokio = tokio::runtime::Runtime::new().expect("tokio");
    let mut out = Vec::new();
    let load = |name: &str, export: Option<&str>, path: &str| {
        let spec = ActivitySpec {
            export: export.map(str::to_string),
            grants: grants.clone(),
            ..ActivitySpec::new(name)
        };
        let component = tokio
            .block_on(runtime.load(spec, &test_components::read(path)))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        (name.to_string(), component.signature().as_ref().clone())
    };
    for (name, path) in test_components::REFERENCE_ACTIVITIES {
        out.push(load(name, None, path));
    }
    for export in EXPORTS {
        let name = activity_codegen::identifier(Lang::TypeScript, export);
        let name = name[..1].to_uppercase() + &name[1..];
        out.push(load(&name, Some(export), test_components::MISBEHAVING));
    }
    out
}

fn generate(lang: Lang) -> String {
    let signatures = signatures();
    let activities: Vec<Activity> = signatures
        .iter()
        .map(|(name, signature)| Activity { name, signature })
        .collect();
    activity_codegen::generate(lang, &activities, "user-task-queue").expect("generate")
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// This package's directory, as cargo gives it to the running test (not the path baked in
/// at compile time: a target directory shared by two checkouts may hold the other's binary).
fn package_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .expect("run the tests with cargo test")
}

fn repo() -> PathBuf {
    package_dir().join("../..")
}

/// A tool of the project's Python environment (`VALIDATORS_BIN`, else `.venv/bin`).
fn venv(tool: &str) -> PathBuf {
    std::env::var_os("VALIDATORS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv/bin"))
        .join(tool)
}

#[test]
fn rust_stubs_are_current_formatted_and_compile() {
    let generated = generate(Lang::Rust);
    let committed = package_dir().join("tests/generated/stubs.rs");
    if std::env::var_os("UPDATE_STUBS").is_some() {
        std::fs::write(&committed, &generated).unwrap();
    }
    assert_eq!(
        std::fs::read_to_string(&committed).unwrap(),
        generated,
        "tests/generated/stubs.rs is stale: run with UPDATE_STUBS=1"
    );
    let (ok, text) = run(Command::new("rustfmt")
        .args(["--check", "--edition", "2021"])
        .arg(&committed));
    assert!(ok, "rustfmt would change the generated Rust:\n{text}");
    // The module compiles as part of this test; its types round-trip the host's JSON.
    let user: stubs::User =
        serde_json::from_str(r#"{"user_id":"u","email":"e@x.io","name":"N"}"#).unwrap();
    assert_eq!(user.user_id, "u");
    let failure: stubs::CreateUserError =
        serde_json::from_str(r#"{"invalid":["name: must not be empty"]}"#).unwrap();
    assert!(matches!(failure, stubs::CreateUserError::Invalid(_)));
}

#[test]
fn python_stubs_pass_mypy_and_catch_a_callers_type_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("stubs.py"), generate(Lang::Python)).unwrap();
    std::fs::write(
        dir.path().join("caller.py"),
        "from stubs import User, validate_user\n\n\
         async def check() -> bool:\n    \
             user: User = {\"user_id\": \"u\", \"email\": \"e@x.io\", \"name\": \"N\"}\n    \
             return (await validate_user(user))[\"valid\"]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("wrong.py"),
        "from stubs import validate_user\n\n\
         async def check() -> bool:\n    \
             return (await validate_user({\"user_id\": \"u\", \"email\": 42, \"name\": \"N\"}))[\"valid\"]\n",
    )
    .unwrap();
    let mypy = |file: &str| {
        run(Command::new(venv("mypy"))
            .args(["--strict", "--no-incremental", file])
            .current_dir(dir.path()))
    };
    for file in ["stubs.py", "caller.py"] {
        let (ok, text) = mypy(file);
        assert!(ok, "mypy {file}:\n{text}");
    }
    let (ok, text) = mypy("wrong.py");
    assert!(
        !ok && text.contains("\"email\""),
        "mypy accepted a wrong field:\n{text}"
    );
    let (ok, text) = run(Command::new(venv("ruff"))
        .args(["format", "--check", "--line-length", "100", "stubs.py"])
        .current_dir(dir.path()));
    assert!(ok, "ruff would reformat the generated Python:\n{text}");
}

#[test]
fn typescript_stubs_pass_tsc_and_catch_a_callers_type_error() {
    let package = package_dir().join("tests/typescript");
    let modules = package.join("node_modules");
    assert!(
        modules.join(".bin/tsc").exists(),
        "run `npm ci` in {} (make test does)",
        package.display()
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        package.join("tsconfig.json"),
        dir.path().join("tsconfig.json"),
    )
    .unwrap();
    std::os::unix::fs::symlink(&modules, dir.path().join("node_modules")).unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("stubs.ts"), generate(Lang::TypeScript)).unwrap();
    let caller = "import { activities, hostFailure, User } from './stubs';\n\
        export async function check(): Promise<string> {\n  \
            const user: User = { user_id: 'u', email: 'e@x.io', name: 'N' };\n  \
            try {\n    \
                const v = await activities().ValidateUser(user);\n    \
                return v.valid ? 'valid' : v.reasons.join(', ');\n  \
            } catch (err) {\n    \
                return hostFailure(err)?.type ?? 'other';\n  \
            }\n}\n";
    std::fs::write(src.join("caller.ts"), caller).unwrap();
    let tsc = || {
        run(Command::new(modules.join(".bin/tsc"))
            .args(["-p", "."])
            .current_dir(dir.path()))
    };
    let (ok, text) = tsc();
    assert!(ok, "tsc:\n{text}");
    std::fs::write(
        src.join("caller.ts"),
        caller.replace("email: 'e@x.io'", "email: 42"),
    )
    .unwrap();
    let (ok, text) = tsc();
    assert!(
        !ok && text.contains("caller.ts(3,") && text.contains("TS2322"),
        "tsc accepted a wrong field:\n{text}"
    );
}

/// The Go toolchain with the module cache the Makefile's Go builds use (outside the clone),
/// and the Go version on the machine (the test module's `go` line asks for no newer one).
fn go(dir: &Path, args: &[&str]) -> (bool, String) {
    let cache = std::env::var_os("GO_CACHE_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/activity-host/go")
        });
    run(Command::new("go")
        .args(args)
        .env("GOPATH", cache)
        .env("GOFLAGS", "-modcacherw")
        .env("GOTOOLCHAIN", "local")
        .current_dir(dir))
}

#[test]
fn go_stubs_pass_gofmt_vet_and_their_json_test_and_catch_a_callers_type_error() {
    let module = package_dir().join("tests/go");
    let dir = tempfile::tempdir().unwrap();
    for file in ["go.mod", "go.sum", "caller.go", "json_test.go"] {
        std::fs::copy(module.join(file), dir.path().join(file)).unwrap();
    }
    // The committed stubs (tests/go/activities/stubs.go, for reading) are what the
    // generator writes now.
    let generated = generate(Lang::Go);
    let committed = module.join("activities/stubs.go");
    if std::env::var_os("UPDATE_STUBS").is_some() {
        std::fs::write(&committed, &generated).unwrap();
    }
    assert_eq!(
        std::fs::read_to_string(&committed).unwrap(),
        generated,
        "tests/go/activities/stubs.go is stale: run with UPDATE_STUBS=1"
    );
    let package = dir.path().join("activities");
    std::fs::create_dir(&package).unwrap();
    std::fs::write(package.join("stubs.go"), generated).unwrap();
    let (ok, text) = run(Command::new("gofmt").arg("-l").arg(&package));
    assert!(ok && text.trim().is_empty(), "gofmt would change:\n{text}");
    let (ok, text) = go(dir.path(), &["vet", "./..."]);
    assert!(ok, "go vet:\n{text}");
    // The variants' and results' JSON forms are the host's (json_test.go).
    let (ok, text) = go(dir.path(), &["test", "./..."]);
    assert!(ok, "go test:\n{text}");
    let caller = std::fs::read_to_string(dir.path().join("caller.go")).unwrap();
    std::fs::write(
        dir.path().join("caller.go"),
        caller.replace("Email: \"e@x.io\"", "Email: 42"),
    )
    .unwrap();
    let (ok, text) = go(dir.path(), &["vet", "./..."]);
    assert!(
        !ok && text.contains("caller.go:") && text.contains("cannot use 42"),
        "go vet accepted a wrong field:\n{text}"
    );
}

#[test]
fn the_stubs_name_every_failure_type_the_host_raises() {
    assert_eq!(
        activity_codegen::HOST_FAILURES,
        activity_runtime::failure::kinds::ALL
    );
}

/// Maven with the local repository the Makefile fills (outside the clone), in `dir`.
fn mvn(dir: &Path, args: &[&str]) -> (bool, String) {
    let repository = std::env::var_os("MAVEN_REPO")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/activity-host/m2")
        });
    run(Command::new("mvn")
        .args(["-B", "-q", "--no-transfer-progress"])
        .arg(format!("-Dmaven.repo.local={}", repository.display()))
        .args(args)
        .current_dir(dir))
}

#[test]
fn java_stubs_pass_javac_lint_and_their_json_check_and_catch_a_callers_type_error() {
    let module = package_dir().join("tests/java");
    let generated = generate(Lang::Java);
    let committed = module.join("src/main/java/activities/Activities.java");
    if std::env::var_os("UPDATE_STUBS").is_some() {
        std::fs::create_dir_all(committed.parent().unwrap()).unwrap();
        std::fs::write(&committed, &generated).unwrap();
    }
    assert_eq!(
        std::fs::read_to_string(&committed).unwrap_or_default(),
        generated,
        "tests/java/src/main/java/activities/Activities.java is stale: run with UPDATE_STUBS=1"
    );
    let dir = tempfile::tempdir().unwrap();
    let copy = |from: &Path, to: &Path| {
        run(Command::new("cp").arg("-r").arg(from).arg(to));
    };
    copy(&module.join("pom.xml"), dir.path());
    copy(&module.join("src"), dir.path());
    // javac -Xlint:all -Werror (the pom's compiler arguments), then the JSON forms through
    // the SDK's own data converter.
    let classpath = dir.path().join("classpath.txt");
    let (ok, text) = mvn(
        dir.path(),
        &[
            "compile",
            "dependency:build-classpath",
            &format!("-Dmdep.outputFile={}", classpath.display()),
        ],
    );
    assert!(ok, "mvn compile:\n{text}");
    let classpath = format!(
        "{}:{}",
        dir.path().join("target/classes").display(),
        std::fs::read_to_string(&classpath).unwrap().trim()
    );
    let (ok, text) = run(Command::new("java")
        .args(["-cp", &classpath, "stubcheck.JsonCheck"])
        .current_dir(dir.path()));
    assert!(ok && text.contains("json forms: ok"), "JsonCheck:\n{text}");
    let caller_path = dir.path().join("src/main/java/stubcheck/Caller.java");
    let caller = std::fs::read_to_string(&caller_path).unwrap();
    assert!(caller.contains("\"e@x.io\""), "{caller}");
    std::fs::write(&caller_path, caller.replace("\"e@x.io\"", "42")).unwrap();
    let (ok, text) = mvn(dir.path(), &["compile"]);
    assert!(
        !ok && text.contains("Caller.java") && text.contains("incompatible types"),
        "javac accepted a wrong field:\n{text}"
    );
}
