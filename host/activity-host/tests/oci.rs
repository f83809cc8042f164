//! Components from OCI registries, against a real registry (Debian's `docker-registry`, the
//! CNCF distribution server) started here on a free port: push, pull, deploy by tag and by
//! digest, a tampered layer, a registry that stops, passwords right and wrong, and interop
//! with a third-party client (`oras`, from PyPI).

use crate::support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use support::{api_only, cli, run_ok, Session};
use test_support::{eventually, OciRegistry};

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_activity-host"));
    cmd.env("RUST_LOG", "error")
        // No Docker config of the machine's user leaks into these tests.
        .env(
            "DOCKER_CONFIG",
            std::env::temp_dir().join("no-docker-config"),
        )
        .current_dir(std::env::temp_dir());
    cmd
}

/// `activity-host push FILE REF --output json`, which must succeed.
async fn push(file: &str, reference: &str) -> Value {
    let mut cmd = bin();
    cmd.args(["push", file, reference, "--output", "json"]);
    serde_json::from_slice(&run_ok(cmd).await.stdout).unwrap()
}

/// `PUT /api/v1/activities/{name}` with `{"source": source}`.
async fn deploy_ref(http: &reqwest::Client, base: &str, name: &str, source: &str) -> (u16, Value) {
    let res = http
        .put(format!("{base}/api/v1/activities/{name}"))
        .json(&json!({ "source": source }))
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

async fn show(http: &reqwest::Client, base: &str, name: &str) -> (u16, Value) {
    let res = http
        .get(format!("{base}/api/v1/activities/{name}"))
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

fn sha256_of(path: &str) -> String {
    activity_oci::sha256_digest(&std::fs::read(path).unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn push_pull_deploy_by_tag_and_digest_and_refuse_what_does_not_match() {
    let mut registry = tokio::task::spawn_blocking(|| OciRegistry::start(None))
        .await
        .unwrap()
        .expect("docker-registry");
    let session = Session::start().await;
    let (http, base) = (&session.http, session.base.as_str());
    let file = test_components::VALIDATE_USER;
    let tag = format!("{}/team/validate-user:1.0.0", registry.host());

    // Push: the manifest digest, the layer is the component's own digest.
    let pushed = push(file, &tag).await;
    let digest = pushed["digest"].as_str().unwrap().to_string();
    assert!(digest.starts_with("sha256:"), "{pushed}");
    assert_eq!(pushed["layer_digest"], sha256_of(file), "{pushed}");

    // Pull by tag writes the same bytes.
    let out = tempfile::tempdir().unwrap();
    let pulled_file = out.path().join("pulled.wasm");
    let mut cmd = bin();
    cmd.args(["pull", &format!("oci://{tag}"), "-o"])
        .arg(&pulled_file)
        .args(["--output", "json"]);
    let pulled: Value = serde_json::from_slice(&run_ok(cmd).await.stdout).unwrap();
    assert_eq!(pulled["digest"], digest.as_str(), "{pulled}");
    assert_eq!(
        std::fs::read(&pulled_file).unwrap(),
        std::fs::read(file).unwrap()
    );

    // Deploy by tag through the CLI: the version records the reference and the digest.
    let out = cli(
        base,
        &[
            "deploy",
            &format!("oci://{tag}"),
            "--name",
            "OciValidate",
            "--output",
            "json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deployed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(deployed["changed"], true, "{deployed}");
    assert_eq!(deployed["version"]["digest"], sha256_of(file), "{deployed}");
    assert_eq!(
        deployed["version"]["source"],
        json!({"reference": format!("oci://{tag}"), "manifest_digest": digest}),
        "{deployed}"
    );
    let text = cli(base, &["activities", "show", "OciValidate"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains(&format!("from oci://{tag} ({digest})")),
        "{text}"
    );
    let body = json!({"args": [{"user_id": "o1", "email": "o1@example.com", "name": "O"}]});
    let result = support::invoke_ok(http, base, "OciValidate", body.clone()).await;
    assert_eq!(result["valid"], true, "{result}");

    // The same tag again is a no-op; by digest is a new record of the same bytes.
    let (status, again) = deploy_ref(http, base, "OciValidate", &format!("oci://{tag}")).await;
    assert_eq!(
        (status, again["changed"].clone()),
        (200, json!(false)),
        "{again}"
    );
    let pinned = format!("oci://{}", pushed["pinned"].as_str().unwrap());
    let (status, by_digest) = deploy_ref(http, base, "OciValidate", &pinned).await;
    assert_eq!(status, 201, "{by_digest}");
    assert_eq!(by_digest["version"]["source"]["reference"], pinned.as_str());
    assert_eq!(
        by_digest["version"]["source"]["manifest_digest"],
        digest.as_str()
    );

    // A manifest names the artifact as its source.
    let manifest_dir = tempfile::tempdir().unwrap();
    let manifest = manifest_dir.path().join("activities.toml");
    std::fs::write(
        &manifest,
        format!("[activity.OciApplied]\nsource = \"{pinned}\"\n"),
    )
    .unwrap();
    let out = cli(
        base,
        &["apply", manifest.to_str().unwrap(), "--output", "json"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let applied: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(applied[0]["changed"], true, "{applied}");
    let (_, details) = show(http, base, "OciApplied").await;
    assert_eq!(
        details["versions"][0]["source"]["reference"],
        pinned.as_str(),
        "{details}"
    );

    // What does not match is refused, and nothing changes.
    let other_digest = format!("sha256:{}", "0".repeat(64));
    let repo = format!("oci://{}/team/validate-user", registry.host());
    let tampered_tag = format!("{}/team/tampered:1", registry.host());
    let tampered = push(test_components::CREATE_USER, &tampered_tag).await;
    let blob = registry.blob_file(tampered["layer_digest"].as_str().unwrap());
    let mut bytes = std::fs::read(&blob).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&blob, bytes).unwrap();
    for (name, source, status, code) in [
        (
            "OciValidate",
            format!("{repo}@{other_digest}"),
            404,
            "artifact_not_found",
        ),
        (
            "OciValidate",
            format!("{repo}:no-such-tag"),
            404,
            "artifact_not_found",
        ),
        (
            "Tampered",
            format!("oci://{tampered_tag}"),
            422,
            "artifact_digest_mismatch",
        ),
        (
            "OciValidate",
            "oci://Not A Reference".to_string(),
            400,
            "invalid_reference",
        ),
        ("OciValidate", tag.clone(), 400, "invalid_reference"),
    ] {
        let (got, error) = deploy_ref(http, base, name, &source).await;
        assert_eq!(
            (got, error["error"]["code"].as_str()),
            (status, Some(code)),
            "{source}: {error}"
        );
    }
    let (status, _) = show(http, base, "Tampered").await;
    assert_eq!(status, 404, "a refused pull deploys nothing");
    let res = http
        .put(format!("{base}/api/v1/activities/OciValidate"))
        .header("content-type", "application/json")
        .body(r#"{"source": "oci://x/y:1", "extra": 1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    // The registry stops: a clear 503, the active version keeps serving; back, deploys work.
    registry.stop();
    let (status, error) = deploy_ref(http, base, "OciValidate", &format!("oci://{tag}")).await;
    assert_eq!(status, 503, "{error}");
    assert_eq!(
        error["error"]["code"], "oci_registry_unreachable",
        "{error}"
    );
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&registry.host()),
        "{error}"
    );
    let (_, details) = show(http, base, "OciValidate").await;
    assert_eq!(
        details["versions"].as_array().unwrap().len(),
        2,
        "{details}"
    );
    assert_eq!(details["active_digest"], sha256_of(file), "{details}");
    let result = support::invoke_ok(http, base, "OciValidate", body).await;
    assert_eq!(result["valid"], true, "{result}");
    let _registry = tokio::task::spawn_blocking(move || {
        registry.start_again().expect("registry back");
        registry
    })
    .await
    .unwrap();
    let (status, back) = deploy_ref(http, base, "OciValidate", &format!("oci://{tag}")).await;
    assert_eq!(status, 201, "{back}");
}

#[tokio::test(flavor = "multi_thread")]
async fn authenticated_registries_take_docker_config_flags_and_configured_passwords() {
    let registry = tokio::task::spawn_blocking(|| OciRegistry::start(Some(("ci", "s3cret"))))
        .await
        .unwrap()
        .expect("docker-registry");
    let host = registry.host();
    let tag = format!("{host}/team/notify:2.0.0");
    let file = test_components::SEND_NOTIFICATION;

    // No credentials: refused, saying so.
    let out = bin().args(["push", file, &tag]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refused the credentials (anonymous)"),
        "{stderr}"
    );

    // The Docker config file's entry (what `docker login` writes).
    let docker = tempfile::tempdir().unwrap();
    std::fs::write(
        docker.path().join("config.json"),
        json!({"auths": {host.clone(): {"auth": "Y2k6czNjcmV0"}}}).to_string(),
    )
    .unwrap();
    let mut cmd = bin();
    cmd.env("DOCKER_CONFIG", docker.path())
        .args(["push", file, &tag, "--output", "json"]);
    let pushed: Value = serde_json::from_slice(&run_ok(cmd).await.stdout).unwrap();

    // --username with --password-stdin: a wrong password is refused, the right one pulls.
    for (password, ok) in [("wrong", false), ("s3cret", true)] {
        let dir = tempfile::tempdir().unwrap();
        let mut child = bin()
            .args(["pull", &tag, "--username", "ci", "--password-stdin", "-o"])
            .arg(dir.path().join("n.wasm"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.success(),
            ok,
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if !ok {
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains("credentials from the command line"),
                "{stderr}"
            );
        }
    }

    // The host's own credentials, from a password file read at each pull.
    let secrets = tempfile::tempdir().unwrap();
    let password_file = secrets.path().join("registry-password");
    std::fs::write(&password_file, "wrong\n").unwrap();
    let (registry_host, file_path) = (host.clone(), password_file.display().to_string());
    let (api, http) = api_only(move |c| {
        c.oci.docker_config = false;
        c.oci.registries.insert(
            registry_host,
            activity_oci::RegistrySettings {
                username: Some("ci".into()),
                password_file: Some(file_path),
                ..Default::default()
            },
        );
    })
    .await;
    // Grants ride in the query string as with bytes: SendNotification needs outgoing HTTP
    // and its notifications store.
    let notify = "Notify?allow_host=hooks.example.com&kv_store=notifications";
    let (status, error) = deploy_ref(&http, &api.base, notify, &format!("oci://{tag}")).await;
    assert_eq!(status, 502, "{error}");
    assert_eq!(
        error["error"]["code"], "oci_registry_unauthorized",
        "{error}"
    );
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("oci.registries"),
        "{error}"
    );
    assert!(
        !error.to_string().contains("wrong"),
        "the password never shows: {error}"
    );
    std::fs::write(&password_file, "s3cret\n").unwrap();
    let (status, deployed) = deploy_ref(&http, &api.base, notify, &format!("oci://{tag}")).await;
    assert_eq!(status, 201, "{deployed}");
    assert_eq!(
        deployed["version"]["source"]["manifest_digest"],
        pushed["digest"]
    );
    assert_eq!(
        deployed["version"]["grants"]["allowed_hosts"],
        json!(["hooks.example.com"])
    );

    // `config show` masks the registry password.
    let config = secrets.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "oci:\n  registries:\n    \"{host}\":\n      username: ci\n      password: s3cret\n"
        ),
    )
    .unwrap();
    let mut cmd = bin();
    cmd.arg("--config").arg(&config).args(["config", "show"]);
    let shown = String::from_utf8(run_ok(cmd).await.stdout).unwrap();
    assert!(
        shown.contains("username: ci") && !shown.contains("s3cret"),
        "{shown}"
    );
}

/// The `oras` client (PyPI) in the project's venv runs `script` with `args`.
async fn oras(script: &str, args: &[&str]) -> String {
    let mut cmd = Command::new(support::validator("python"));
    cmd.arg("-c").arg(script).args(args);
    String::from_utf8(run_ok(cmd).await.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_third_party_client_pulls_ours_and_pushes_what_we_deploy() {
    let registry = tokio::task::spawn_blocking(|| OciRegistry::start(None))
        .await
        .unwrap()
        .expect("docker-registry");
    let host = registry.host();
    let watched = tempfile::tempdir().unwrap();
    let watch_dir = watched.path().to_path_buf();
    let (api, http) = api_only(move |c| {
        c.oci.docker_config = false;
        c.activities.watch_dir = Some(watch_dir);
    })
    .await;

    // Ours, pulled by oras: one application/wasm layer named by its title.
    let ours = format!("{host}/team/validate-user:oras");
    push(test_components::VALIDATE_USER, &ours).await;
    let out = tempfile::tempdir().unwrap();
    let pulled = oras(
        "import sys, oras.client\n\
         c = oras.client.OrasClient(insecure=True)\n\
         m = c.get_manifest(sys.argv[1])\n\
         print(m['config']['mediaType'], m['layers'][0]['mediaType'])\n\
         print(c.pull(target=sys.argv[1], outdir=sys.argv[2])[0])",
        &[&ours, out.path().to_str().unwrap()],
    )
    .await;
    let lines: Vec<&str> = pulled.lines().collect();
    assert_eq!(
        lines[0], "application/vnd.wasm.config.v0+json application/wasm",
        "{pulled}"
    );
    assert!(lines[1].ends_with("validate_user.wasm"), "{pulled}");
    assert_eq!(
        std::fs::read(lines[1]).unwrap(),
        std::fs::read(test_components::VALIDATE_USER).unwrap()
    );

    // The watched directory: a NAME.json alone naming the artifact deploys it.
    std::fs::write(
        watched.path().join("Watched.json"),
        json!({"source": format!("oci://{ours}")}).to_string(),
    )
    .unwrap();
    let details = eventually(Duration::from_secs(60), || async {
        let (status, details) = show(&http, &api.base, "Watched").await;
        (status == 200).then_some(details)
    })
    .await
    .expect("the watched directory deploys the artifact");
    assert_eq!(
        details["versions"][0]["source"]["reference"],
        format!("oci://{ours}"),
        "{details}"
    );
    assert_eq!(
        details["active_digest"],
        sha256_of(test_components::VALIDATE_USER)
    );

    // Theirs: oras pushes a component with the Wasm layout; the host deploys it.
    let theirs = format!("{host}/other-team/delete-user:3");
    let work = tempfile::tempdir().unwrap();
    std::fs::copy(
        test_components::DELETE_USER,
        work.path().join("delete.wasm"),
    )
    .unwrap();
    std::fs::write(
        work.path().join("config.json"),
        json!({"architecture": "wasm", "os": "wasip2", "layerDigests": [sha256_of(test_components::DELETE_USER)]}).to_string(),
    )
    .unwrap();
    let mut cmd = Command::new(support::validator("python"));
    cmd.current_dir(work.path()).arg("-c").arg(
        "import sys, oras.client\n\
         c = oras.client.OrasClient(insecure=True)\n\
         c.push(target=sys.argv[1], files=['delete.wasm:application/wasm'],\n\
                manifest_config='config.json:application/vnd.wasm.config.v0+json')",
    );
    cmd.arg(&theirs);
    run_ok(cmd).await;
    let (status, deployed) = deploy_ref(
        &http,
        &api.base,
        "TheirDelete?kv_store=users",
        &format!("oci://{theirs}"),
    )
    .await;
    assert_eq!(status, 201, "{deployed}");
    assert_eq!(
        deployed["version"]["digest"],
        sha256_of(test_components::DELETE_USER)
    );

    // A generic artifact (a text layer) is not a component: refused, with the reason.
    std::fs::write(work.path().join("notes.txt"), "not wasm").unwrap();
    let text = format!("{host}/other-team/notes:1");
    let mut cmd = Command::new(support::validator("python"));
    cmd.current_dir(work.path()).arg("-c").arg(
        "import sys, oras.client\n\
         oras.client.OrasClient(insecure=True).push(target=sys.argv[1], files=['notes.txt:text/plain'])",
    );
    cmd.arg(&text);
    run_ok(cmd).await;
    let (status, error) = deploy_ref(&http, &api.base, "Notes", &format!("oci://{text}")).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (422, Some("not_a_wasm_artifact")),
        "{error}"
    );
    assert!(Path::new(test_components::DELETE_USER).exists());
}
