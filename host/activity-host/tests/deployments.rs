//! The deployment files are checked with real validators (no container engine runs here):
//! the compose file against the compose-spec schema, the Kubernetes manifests against the
//! Kubernetes schemas (strict), the Dockerfile's build steps against the Makefile's, and the
//! Grafana dashboard's metric names against what `/metrics` serves after a run.

use crate::support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};
use support::{get_json, start, validator, wait_closed, Session};

fn repo() -> PathBuf {
    test_support::repo()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn run(cmd: &mut std::process::Command) -> String {
    let out = cmd.output().unwrap();
    let text = support::output_text(&out);
    assert!(out.status.success(), "{cmd:?}: {text}");
    text
}

#[test]
fn the_compose_file_follows_the_compose_spec_and_the_seed() {
    let file = repo().join("deployments/docker/docker-compose.yml");
    run(std::process::Command::new(validator("check-jsonschema"))
        .args(["--builtin-schema", "vendor.compose-spec"])
        .arg(&file));
    let compose: Value =
        serde_yaml::from_str(&read("deployments/docker/docker-compose.yml")).unwrap();
    let services = compose["services"].as_object().unwrap();
    for name in [
        "temporal",
        "temporal-db",
        "temporal-ui",
        "activity-host",
        "api",
    ] {
        assert!(services.contains_key(name), "service {name} missing");
    }
    assert_eq!(compose["services"]["temporal-ui"]["ports"][0], "8088:8080");
    // Temporal runs the shared server config and dynamic config (what the cluster test runs),
    // with the certificates every client presents mounted from ./tls.
    let temporal = &compose["services"]["temporal"];
    let mounts: Vec<&str> = temporal["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    for (file, env) in [
        ("../temporal/config.yaml", None),
        (
            "../temporal/dynamicconfig.yaml",
            Some("TEMPORAL_DYNAMIC_CONFIG"),
        ),
    ] {
        let mount = mounts
            .iter()
            .find(|m| m.starts_with(file))
            .unwrap_or_else(|| panic!("{file} not mounted: {mounts:?}"));
        let inside = mount.split(':').nth(1).unwrap();
        assert!(
            repo().join("deployments/docker").join(file).exists(),
            "{file}"
        );
        if let Some(env) = env {
            assert_eq!(temporal["environment"][env], inside, "{env}");
        } else {
            assert!(
                temporal["command"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|a| a == inside),
                "the server is started with {inside}"
            );
        }
    }
    let dynamic: Value =
        serde_yaml::from_str(&read("deployments/temporal/dynamicconfig.yaml")).unwrap();
    for (key, value) in temporal_dev_server::DYNAMIC_CONFIG {
        assert_eq!(
            dynamic[key][0]["value"].to_string(),
            *value,
            "{key} in the cluster's dynamic config"
        );
    }
    for name in ["temporal", "temporal-ui", "activity-host", "api"] {
        let volumes = compose["services"][name]["volumes"].to_string();
        assert!(
            volumes.contains("./tls:"),
            "{name} has no certificates: {volumes}"
        );
    }
    for (name, service) in services {
        let image = service["image"].as_str().unwrap();
        let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or("");
        assert!(
            !tag.is_empty() && tag != "latest",
            "{name}: image {image} is not pinned"
        );
        assert!(
            service["healthcheck"].is_object()
                || ["temporal-ui", "temporal-schema"].contains(&name.as_str()),
            "{name}: no healthcheck"
        );
    }
}

/// The image tag of `service` in the compose file.
fn compose_tag(compose: &Value, service: &str) -> String {
    let image = compose["services"][service]["image"].as_str().unwrap();
    image.rsplit_once(':').unwrap().1.to_string()
}

#[test]
fn every_deployment_names_the_versions_the_cluster_test_runs() {
    let v = test_support::Versions::read();
    let compose: Value =
        serde_yaml::from_str(&read("deployments/docker/docker-compose.yml")).unwrap();
    assert_eq!(compose_tag(&compose, "temporal"), v.server);
    assert_eq!(compose_tag(&compose, "temporal-schema"), v.server);
    assert_eq!(compose_tag(&compose, "temporal-ui"), v.ui);
    assert_eq!(compose_tag(&compose, "temporal-db"), v.postgres);
    // The server config creates the cluster with the shard count the file names.
    let config = read("deployments/temporal/config.yaml");
    assert!(
        config.contains(&format!("numHistoryShards: {}", v.history_shards)),
        "numHistoryShards"
    );
    // Kubernetes assumes an existing cluster: it says which version.
    let configmap = read("deployments/kubernetes/configmap.yaml");
    assert!(
        configmap.contains(&format!("Temporal Server {}", v.server)),
        "configmap"
    );
    // The docs' version table names them too.
    let ops = read("docs/operations.md");
    for (what, version) in [("server", &v.server), ("UI", &v.ui)] {
        assert!(
            ops.contains(&format!("`{version}`")),
            "docs/operations.md: the {what} version {version}"
        );
    }
    // The PostgreSQL the tests run is the major version that ships.
    let bin = test_support::postgres::postgres_bin().expect("PostgreSQL");
    let out = run(std::process::Command::new(bin.join("postgres")).arg("--version"));
    let major = out
        .split_whitespace()
        .find_map(|w| w.split('.').next()?.parse::<u32>().ok())
        .unwrap_or_else(|| panic!("no version in {out}"));
    assert_eq!(major.to_string(), v.postgres, "{out}");
}

#[test]
fn the_kubernetes_manifests_validate_strictly_and_their_config_loads() {
    let dir = repo().join("deployments/kubernetes");
    let files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    let text = run(std::process::Command::new(validator("kubernetes-validate"))
        .arg("--strict")
        .args(&files));
    let mut kinds = BTreeSet::new();
    // What a pod's shutdown may take, from the ConfigMap: the drain delay, the worker's
    // graceful shutdown and the longest activity.
    let mut shutdown_ms = None;
    let mut deployments = Vec::new();
    for file in &files {
        for doc in serde_yaml::Deserializer::from_str(&std::fs::read_to_string(file).unwrap()) {
            let v: Value = serde::Deserialize::deserialize(doc).unwrap();
            kinds.insert(v["kind"].as_str().unwrap().to_string());
            if v["kind"] == "ConfigMap" {
                // The configuration it carries is one the host accepts.
                let tmp = tempfile::tempdir().unwrap();
                let config = tmp.path().join("config.yaml");
                let text = v["data"]["config.yaml"].as_str().unwrap();
                let c: Value = serde_yaml::from_str(text).unwrap();
                let delay = c["api"]["shutdown_delay_ms"].as_u64().unwrap_or(0);
                assert!(delay > 0, "no api.shutdown_delay_ms in the ConfigMap");
                shutdown_ms = Some(
                    delay
                        + c["worker"]["graceful_shutdown_ms"].as_u64().unwrap()
                        + c["runtime"]["limits"]["max_execution_ms"].as_u64().unwrap(),
                );
                std::fs::write(&config, text).unwrap();
                run(
                    std::process::Command::new(env!("CARGO_BIN_EXE_activity-host"))
                        .args(["config", "show", "--config"])
                        .arg(&config)
                        .env("ACTIVITY_HOST_API__ADMIN_TOKEN", "a-token-long-enough-0123")
                        .env(
                            "ACTIVITY_HOST_REGISTRY__POSTGRES_URL",
                            "postgres://activity:x@db:5432/activities",
                        ),
                );
            }
            if v["kind"] == "Deployment" {
                let spec = &v["spec"]["template"]["spec"];
                let grace = spec["terminationGracePeriodSeconds"].as_u64().unwrap();
                let c = &spec["containers"][0];
                let pre_stop = c["lifecycle"]["preStop"]["sleep"]["seconds"]
                    .as_u64()
                    .expect("a preStop sleep");
                deployments.push((file.display().to_string(), grace, pre_stop));
                for probe in ["livenessProbe", "readinessProbe"] {
                    assert!(c[probe]["httpGet"]["path"].is_string(), "{probe}");
                }
                assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
            }
        }
    }
    // Kubernetes kills a pod at the grace period: it must cover the preStop sleep and the
    // whole shutdown.
    let shutdown_ms = shutdown_ms.expect("a ConfigMap");
    for (file, grace, pre_stop) in &deployments {
        assert!(
            grace * 1000 > pre_stop * 1000 + shutdown_ms,
            "{file}: terminationGracePeriodSeconds {grace} does not cover a {pre_stop} s preStop and a {shutdown_ms} ms shutdown"
        );
    }
    for kind in [
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    ] {
        assert!(kinds.contains(kind), "no {kind} ({text})");
    }
}

#[test]
fn the_dockerfile_builds_what_the_makefile_builds() {
    let makefile = read("Makefile");
    let dockerfile = read("deployments/docker/Dockerfile");
    let toolchain = makefile
        .lines()
        .find_map(|l| l.strip_prefix("TOOLCHAIN"))
        .and_then(|l| l.split(":=").nth(1))
        .unwrap()
        .trim()
        .to_string();
    assert!(
        dockerfile.contains(&format!("FROM rust:{toolchain}-")),
        "toolchain {toolchain}"
    );
    let guests = makefile
        .lines()
        .skip_while(|l| !l.starts_with("guests:"))
        .nth(1)
        .unwrap()
        .trim()
        .split(" --target-dir")
        .next()
        .unwrap()
        .to_string();
    let runs: Vec<&str> = dockerfile
        .lines()
        .filter_map(|l| l.strip_prefix("RUN "))
        .collect();
    assert!(
        runs.iter().any(|r| r.starts_with(&guests)),
        "{guests:?} not in {runs:?}"
    );
    assert!(runs
        .iter()
        .any(|r| r.contains("cargo build --release --locked -p activity-host")));
    for (_, file) in activity_host::reference::REFERENCE_ACTIVITIES {
        assert!(
            dockerfile.contains(&format!("release/{file}")),
            "{file} not in the image"
        );
    }
    // The healthcheck command the compose file uses exists.
    run(std::process::Command::new(env!("CARGO_BIN_EXE_activity-host")).args(["health", "--help"]));
}

/// Metric names a PromQL expression reads (label names in `by (...)` and `{...}` left out).
fn metric_names(expr: &str) -> Vec<String> {
    let mut expr = expr.to_string();
    for (open, close) in [("by (", ')'), ("{", '}')] {
        while let Some(i) = expr.find(open) {
            let end = expr[i..].find(close).map_or(expr.len(), |j| i + j + 1);
            expr.replace_range(i..end, " ");
        }
    }
    let mut out = Vec::new();
    let mut word = String::new();
    for c in expr.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            if word.starts_with("activity_") || word.starts_with("http_") {
                out.push(word.clone());
            }
            word.clear();
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn every_metric_the_dashboard_reads_is_served_after_a_run() {
    let dashboard: Value =
        serde_json::from_str(&read("deployments/grafana/activity-host-dashboard.json")).unwrap();
    let mut wanted = BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            wanted.extend(metric_names(target["expr"].as_str().unwrap()));
        }
    }
    assert!(wanted.len() >= 12, "{wanted:?}");

    let session = Session::start().await;
    let (http, base) = (session.http.clone(), session.base.clone());
    // A run that touches every metric: a workflow, a deploy and a rollback, a call that
    // breaches its time limit, a task for a type that is not deployed.
    let (id, run_id) = start(
        &http,
        &base,
        json!({"user_id": "m1", "email": "m1@example.com", "name": "M", "action": "create"}),
    )
    .await;
    assert_eq!(
        wait_closed(&http, &base, &id, &run_id).await["status"],
        "COMPLETED"
    );
    let spinner = test_components::read(test_components::MISBEHAVING);
    for limit in ["100", "200"] {
        let res = http
            .put(format!("{base}/api/v1/activities/Spinner?export=spin&allow_host=x.invalid&max_execution_ms={limit}"))
            .header("content-type", "application/wasm")
            .body(spinner.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
    }
    let rolled = http
        .post(format!("{base}/api/v1/activities/Spinner/rollback"))
        .send()
        .await
        .unwrap();
    assert_eq!(rolled.status(), 200);
    let spun = http
        .post(format!("{base}/api/v1/activities/Spinner/invoke"))
        .json(&json!({"args": [], "maximum_attempts": 1}))
        .send()
        .await
        .unwrap();
    let spun: Value = spun.json().await.unwrap();
    assert_eq!(spun["error"]["type"], "TimeLimitExceeded", "{spun}");
    let queue = session.host.task_queue.clone();
    let server = &session.server;
    tokio::task::block_in_place(|| {
        server.cli(&[
            "activity",
            "execute",
            "--type",
            "Ghost",
            "--task-queue",
            &queue,
            "--activity-id",
            "ghost-1",
            "--start-to-close-timeout",
            "2s",
            "--schedule-to-close-timeout",
            "2s",
            "--retry-maximum-attempts",
            "1",
        ])
    })
    .unwrap();

    let served = test_support::eventually(Duration::from_secs(60), || async {
        let text = http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        let names: BTreeSet<String> = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| l.split(['{', ' ']).next())
            .map(str::to_string)
            .collect();
        wanted.is_subset(&names).then_some(names)
    })
    .await;
    assert!(
        served.is_some(),
        "dashboard metrics missing from /metrics: {wanted:?}"
    );
    let listed = get_json(&http, format!("{base}/api/v1/activities/Spinner")).await;
    assert_eq!(listed["versions"].as_array().unwrap().len(), 2);
}
