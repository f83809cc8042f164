//! What an autoscaler reads: the task queue's backlog and the host's slots as metrics, from a
//! real dev server; and the autoscaling manifests (KEDA's ScaledObject against KEDA's own CRD
//! schemas, the HorizontalPodAutoscaler against Kubernetes') naming what the host serves.

use crate::support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use activity_worker::activities::{SLOTS_AVAILABLE, SLOTS_IN_USE, SLOTS_MAX};
use activity_worker::backlog::metric::BACKLOG_TASKS;
use serde_json::{json, Value};
use support::fleet::{host_process_with, wait_healthy};
use support::{get_text, start, start_host_at, validator};
use test_support::{eventually, DevServer, Postgres};

/// The value of `name` with every label in `labels`, from a `/metrics` page.
fn gauge(metrics: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_backlog_and_the_slots_are_metrics_an_autoscaler_reads() {
    let server = tokio::task::spawn_blocking(DevServer::start)
        .await
        .unwrap()
        .unwrap();
    let http = support::http();
    // An API host alone on its task queue: nothing polls it, so the workflows wait there.
    let api = start_host_at(&server.address, |c| c.worker.backlog_poll_ms = 200, false);
    let queue = api.task_queue.clone();
    let base = api.base.clone();
    wait_healthy(&http, &base).await;
    for i in 0..3 {
        let body = json!({"user_id": format!("backlog-{i}"), "email": "a@b.io", "name": "Ann", "action": "create"});
        start(&http, &base, body).await;
    }
    let labels = [("task_queue", queue.as_str()), ("task_type", "workflow")];
    let waiting = eventually(Duration::from_secs(60), || async {
        let page = get_text(&http, format!("{base}/metrics")).await;
        gauge(&page, BACKLOG_TASKS, &labels).filter(|n| *n >= 3.0)
    })
    .await;
    assert!(
        waiting.is_some(),
        "the API host does not report 3 waiting workflow tasks"
    );

    // A worker on the queue takes them; the API host's figure falls back to 0. The worker is
    // a process of its own: the slot gauges have no labels, and every host this test binary
    // runs in-process shares one metrics recorder.
    let pg = Postgres::start().expect("postgres");
    let worker = host_process_with(
        "worker",
        true,
        &pg,
        &server.address,
        &queue,
        &[("ACTIVITY_HOST_WORKER__MAX_CONCURRENT_ACTIVITIES", "7")],
    );
    wait_healthy(&http, &worker.base).await;
    let drained = eventually(Duration::from_secs(90), || async {
        let page = get_text(&http, format!("{base}/metrics")).await;
        gauge(&page, BACKLOG_TASKS, &labels).filter(|n| *n == 0.0)
    })
    .await;
    assert!(drained.is_some(), "the backlog is not reported drained");
    let page = get_text(&http, format!("{}/metrics", worker.base)).await;
    assert_eq!(gauge(&page, SLOTS_MAX, &[]), Some(7.0), "{page}");
    let in_use = gauge(&page, SLOTS_IN_USE, &[]).expect("slots in use");
    let available = gauge(&page, SLOTS_AVAILABLE, &[]).expect("slots available");
    assert_eq!(in_use + available, 7.0, "{page}");
}

fn manifests(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(test_support::repo().join(path)).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| serde::Deserialize::deserialize(doc).unwrap())
        .collect()
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
}

/// Runs the strict CRD check of `manifest`; answers whether it passed, and its output.
fn crd_check(manifest: &Path) -> (bool, String) {
    let schemas = test_support::repo().join("host/activity-host/tests/schemas");
    let out = std::process::Command::new(validator("python"))
        .arg(schemas.join("validate_crds.py"))
        .arg(schemas.join("keda-2.20.2"))
        .arg(manifest)
        .output()
        .unwrap();
    (out.status.success(), support::output_text(&out))
}

#[test]
fn the_autoscaling_manifests_validate_and_read_what_the_host_serves() {
    let repo = test_support::repo();
    let dir: PathBuf = repo.join("deployments/kubernetes/autoscaling");
    let out = std::process::Command::new(validator("kubernetes-validate"))
        .arg("--strict")
        .arg(dir.join("hpa-backlog.yaml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", support::output_text(&out));
    let (ok, text) = crd_check(&dir.join("keda.yaml"));
    assert!(ok, "{text}");
    assert!(
        text.contains("ScaledObject activity-host-worker: valid"),
        "{text}"
    );
    // The check refuses a field KEDA does not have (the HPA's name for the floor).
    let tmp = tempfile::tempdir().unwrap();
    let typo = tmp.path().join("keda.yaml");
    let keda_text = std::fs::read_to_string(dir.join("keda.yaml")).unwrap();
    std::fs::write(&typo, keda_text.replace("minReplicaCount", "minReplicas")).unwrap();
    let (ok, text) = crd_check(&typo);
    assert!(!ok && text.contains("minReplicas"), "{text}");

    // Both read what the host serves, for the queue and the Deployment the manifests ship.
    let config = manifests("deployments/kubernetes/configmap.yaml");
    let config: Value = serde_yaml::from_str(
        of_kind(&config, "ConfigMap")["data"]["config.yaml"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let temporal = &config["workflow"]["temporal"];
    let worker = manifests("deployments/kubernetes/worker.yaml");
    let deployment = &of_kind(&worker, "Deployment")["metadata"]["name"];
    let keda = manifests("deployments/kubernetes/autoscaling/keda.yaml");
    let scaled = &of_kind(&keda, "ScaledObject")["spec"];
    assert_eq!(&scaled["scaleTargetRef"]["name"], deployment);
    let triggers = scaled["triggers"].as_array().unwrap();
    let by_type = |t: &str| {
        triggers
            .iter()
            .find(|x| x["type"] == t)
            .unwrap_or_else(|| panic!("no {t} trigger"))
    };
    let t = &by_type("temporal")["metadata"];
    assert_eq!(t["endpoint"], temporal["address"]);
    assert_eq!(t["namespace"], temporal["namespace"]);
    assert_eq!(t["taskQueue"], temporal["task_queue"]);
    assert_eq!(t["queueTypes"], "workflow,activity");
    let query = by_type("prometheus")["metadata"]["query"].as_str().unwrap();
    assert!(query.contains(SLOTS_IN_USE), "{query}");
    // The TLS it authenticates with is the Secret the workers mount, key by key.
    let secret = manifests("deployments/kubernetes/secret.yaml");
    let tls = secret
        .iter()
        .find(|d| d["metadata"]["name"] == "activity-host-temporal-tls")
        .expect("the Temporal TLS secret");
    let auth = of_kind(&keda, "TriggerAuthentication");
    for r in auth["spec"]["secretTargetRef"].as_array().unwrap() {
        assert_eq!(r["name"], tls["metadata"]["name"]);
        let key = r["key"].as_str().unwrap();
        assert!(
            !tls["stringData"][key].is_null() || !tls["data"][key].is_null(),
            "{key}"
        );
    }

    let hpa = manifests("deployments/kubernetes/autoscaling/hpa-backlog.yaml");
    let spec = &of_kind(&hpa, "HorizontalPodAutoscaler")["spec"];
    assert_eq!(&spec["scaleTargetRef"]["name"], deployment);
    let metrics = spec["metrics"].as_array().unwrap();
    let external = &metrics.iter().find(|m| m["type"] == "External").unwrap()["external"];
    assert_eq!(external["metric"]["name"], BACKLOG_TASKS);
    assert_eq!(
        external["metric"]["selector"]["matchLabels"]["task_queue"],
        temporal["task_queue"]
    );
    let pods = &metrics.iter().find(|m| m["type"] == "Pods").unwrap()["pods"];
    assert_eq!(pods["metric"]["name"], SLOTS_IN_USE);
}
