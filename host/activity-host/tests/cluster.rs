//! activity-host on Temporal as production runs it: the server built from source at the
//! version `deployments/versions.env` pins, on PostgreSQL (persistence and SQL visibility),
//! with the deployment's own config and dynamic config files, several history shards, and
//! mutual TLS required by the frontend. The hosts run as compose runs them (roles `server`
//! and `worker` on a PostgreSQL registry, the pinned rollout policy) and connect with their
//! client certificate; a Python SDK workflow calls a hosted activity with its own.

use crate::rollout::{pinned_run_across_a_deploy_and_a_killed_host, PINNED};
use crate::support;

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use support::fleet::{Fleet, Temporal};
use support::{get_json, invoke_ok, start, wait_closed};
use temporalio_client::grpc::WorkflowService;
use temporalio_client::tonic::IntoRequest;
use temporalio_common::protos::temporal::api::workflowservice::v1::GetClusterInfoRequest;
use test_support::{Postgres, TemporalCluster, Versions};

/// A fleet (an API host, `workers` worker hosts) on a fresh cluster.
async fn fleet_on_a_cluster(workers: usize) -> Fleet {
    let pg = Postgres::start().expect("postgres");
    let temporal = tokio::task::block_in_place(|| Temporal::cluster(&pg));
    Fleet::start_on(pg, temporal, workers, PINNED).await
}

fn cluster(fleet: &Fleet) -> &TemporalCluster {
    match &fleet.temporal {
        Temporal::Cluster(c) => c,
        Temporal::Dev(_) => unreachable!("a cluster fleet"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_invoke_and_a_python_workflow_run_on_a_cluster_with_mutual_tls() {
    let fleet = fleet_on_a_cluster(1).await;
    let versions = Versions::read();
    let (http, base) = (&fleet.http, &fleet.api.base);

    // The host read its server: the pinned version, standalone activities on.
    let ready = get_json(http, format!("{base}/readyz")).await;
    assert_eq!(
        ready["server"]["version"],
        versions.server.as_str(),
        "{ready}"
    );
    assert_eq!(ready["server"]["standalone_activities"], true, "{ready}");
    assert!(ready.get("limitations").is_none(), "{ready}");
    // The cluster runs the shard count the versions file names.
    let info = WorkflowService::get_cluster_info(
        &mut fleet.client.clone(),
        GetClusterInfoRequest::default().into_request(),
    )
    .await
    .expect("cluster info")
    .into_inner();
    assert_eq!(info.history_shard_count as u32, versions.history_shards);
    assert_eq!(info.server_version, versions.server);

    // The seed: create, update, delete through REST.
    let user = |action: &str| json!({"user_id": "cluster-1", "email": "c@example.com", "name": "C", "action": action});
    let (id, run) = start(http, base, user("create")).await;
    let done = wait_closed(http, base, &id, &run).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    let stored = get_json(http, format!("{base}/api/v1/users/cluster-1")).await;
    assert_eq!(stored["email"], "c@example.com", "{stored}");
    for action in ["update", "delete"] {
        let (id, run) = start(http, base, user(action)).await;
        let done = wait_closed(http, base, &id, &run).await;
        assert_eq!(done["status"], "COMPLETED", "{action}: {done}");
    }
    let gone = http
        .get(format!("{base}/api/v1/users/cluster-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);

    // A standalone activity through REST.
    let result = invoke_ok(
        http,
        base,
        "ValidateUser",
        json!([{"user_id": "u1", "email": "a@b.io", "name": "Ann"}]),
    )
    .await;
    assert_eq!(result["valid"], true, "{result}");

    // A Python SDK workflow with its own client certificate calls the hosted activity.
    let c = cluster(&fleet);
    let file = |n: &str| c.certs.file(n).display().to_string();
    let script = test_support::package_dir().join("tests/python/mtls_call.py");
    let caller_queue = format!("py-{}", test_support::free_port());
    let args = [
        script.display().to_string(),
        c.address.clone(),
        file("ca.pem"),
        file("host.pem"),
        file("host.key"),
        "temporal".into(),
        caller_queue,
        fleet.queue.clone(),
        "py-mtls-1".into(),
    ];
    let out = tokio::task::spawn_blocking(move || {
        Command::new(support::validator("python"))
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = support::output_text(&out);
    assert!(out.status.success(), "{text}");
    let answer: Value = serde_json::from_str(text.lines().last().unwrap_or("")).unwrap();
    assert_eq!(answer["valid"], true, "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn on_a_cluster_a_pinned_run_keeps_its_version_across_a_deploy_and_a_killed_host() {
    pinned_run_across_a_deploy_and_a_killed_host(fleet_on_a_cluster(2).await).await;
}

/// `activity-host worker` against the cluster with `tls` settings (file names in the
/// cluster's certificate directory): its exit and what it printed.
fn host_with(cluster: &TemporalCluster, tls: &[(&str, &str)]) -> (bool, String) {
    let data = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_activity-host"));
    command
        .arg("worker")
        .env(
            "ACTIVITY_HOST_WORKFLOW__TEMPORAL__ADDRESS",
            &cluster.address,
        )
        .env("ACTIVITY_HOST_DATA_DIR", data.path())
        .env(
            "ACTIVITY_HOST_RUNTIME__COMPILED_CACHE_DIR",
            support::shared_compiled_cache(),
        )
        .env(
            "ACTIVITY_HOST_API__LISTEN",
            format!("127.0.0.1:{}", test_support::free_port()),
        )
        .env("ACTIVITY_HOST_ACTIVITIES__DEPLOY_REFERENCE", "false")
        .env("RUST_LOG", "error");
    for (key, file) in tls {
        let value = if key.ends_with("SERVER_NAME") {
            file.to_string()
        } else {
            cluster.certs.file(file).display().to_string()
        };
        command.env(
            format!("ACTIVITY_HOST_WORKFLOW__TEMPORAL__TLS__{key}"),
            value,
        );
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // It must stop by itself; a minute is a deadline, not a pace.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    (out.status.success(), support::output_text(&out))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_with_a_wrong_or_missing_certificate_stops_at_start_naming_the_cause() {
    let pg = Postgres::start().expect("postgres");
    let cluster = tokio::task::block_in_place(|| TemporalCluster::start(&pg)).expect("cluster");
    let name = ("SERVER_NAME", "temporal");
    let cases: [(&[(&str, &str)], &str); 4] = [
        // A client certificate the frontend's CA did not sign.
        (
            &[
                ("SERVER_CA_FILE", "ca.pem"),
                ("CLIENT_CERT_FILE", "rogue.pem"),
                ("CLIENT_KEY_FILE", "rogue.key"),
                name,
            ],
            "refused this host's client certificate",
        ),
        // No client certificate at all.
        (
            &[("SERVER_CA_FILE", "ca.pem"), name],
            "requires a client certificate",
        ),
        // A frontend certificate from a CA the host does not trust.
        (
            &[
                ("SERVER_CA_FILE", "rogue-ca.pem"),
                ("CLIENT_CERT_FILE", "host.pem"),
                ("CLIENT_KEY_FILE", "host.key"),
                name,
            ],
            "is not trusted",
        ),
        // A key that does not belong to the certificate: refused before any connection.
        (
            &[
                ("SERVER_CA_FILE", "ca.pem"),
                ("CLIENT_CERT_FILE", "host.pem"),
                ("CLIENT_KEY_FILE", "rogue.key"),
                name,
            ],
            "do not belong together",
        ),
    ];
    tokio::task::block_in_place(|| {
        for (tls, cause) in cases {
            let (ok, text) = host_with(&cluster, tls);
            assert!(
                !ok && text.contains(cause),
                "{tls:?}: expected {cause:?}:\n{text}"
            );
        }
    });
}

#[test]
fn config_show_masks_the_temporal_api_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_activity-host"))
        .args(["config", "show", "--output", "json"])
        .env(
            "ACTIVITY_HOST_WORKFLOW__TEMPORAL__API_KEY",
            "tcld-very-secret-key",
        )
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = support::output_text(&out);
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("tcld-very-secret-key"), "{text}");
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["workflow"]["temporal"]["api_key"], "********");
}

/// A rotated client certificate needs no restart: the pair is read again at the next TLS
/// handshake once its files change on disk.
#[test]
fn a_rotated_client_certificate_is_presented_at_the_next_handshake() {
    use temporalio_client::ResolvesClientCert;
    let made = tempfile::tempdir().unwrap();
    let certs = test_support::Certificates::make(made.path()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("client.pem"), dir.path().join("client.key"));
    let install = |name: &str| {
        std::fs::copy(certs.file(&format!("{name}.pem")), &cert).unwrap();
        std::fs::copy(certs.file(&format!("{name}.key")), &key).unwrap();
    };
    let der = |name: &str| {
        use rustls::pki_types::pem::PemObject;
        rustls::pki_types::CertificateDer::from_pem_file(certs.file(&format!("{name}.pem")))
            .unwrap()
    };
    install("host");
    let rotating = activity_worker::connection::RotatingCertificate::load(&cert, &key).unwrap();
    let presented = || rotating.resolve(&[], &[]).unwrap().cert[0].clone();
    assert_eq!(presented(), der("host"));
    install("rogue");
    assert_eq!(presented(), der("rogue"), "the rotated pair");
    // A rotation caught half written keeps the last good pair.
    std::fs::write(&key, "not a key").unwrap();
    assert_eq!(presented(), der("rogue"));
}

#[test]
fn the_dynamic_config_passes_the_servers_own_check() {
    let server = Versions::read().server_bin_dir().join("server");
    let file = test_support::repo().join("deployments/temporal/dynamicconfig.yaml");
    let out = Command::new(&server)
        .arg("validate-dynamic-config")
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (make temporal-server)", server.display()));
    let text = support::output_text(&out);
    assert!(out.status.success(), "{text}");
    // The check exits 0 either way; what it found are its warnings.
    assert!(!text.contains("warning"), "{text}");
}

#[test]
fn the_operations_guide_builds_the_cluster_as_written() {
    let pg = Postgres::start().expect("postgres");
    let certs = tempfile::tempdir().unwrap();
    let repo = test_support::repo();
    let block = support::docs::section_sh_blocks("operations.md", "Temporal versions and settings")
        .into_iter()
        .find(|b| b.contains("make-certs.sh"))
        .expect("the cluster recipe");
    let (cli, host) = (
        test_support::temporal_cli().expect("temporal CLI"),
        std::path::PathBuf::from(env!("CARGO_BIN_EXE_activity-host")),
    );
    let path = format!(
        "{}:{}:{}",
        host.parent().unwrap().display(),
        cli.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let pg_port = pg.port.to_string();
    let certs_dir = certs.path().display().to_string();
    let mut ports: Vec<(String, String)> = test_support::temporal_cluster::cluster_ports()
        .into_iter()
        .map(|(k, p)| (k.to_string(), p.to_string()))
        .collect();
    ports.push((
        "TEMPORAL_FRONTEND_PORT".into(),
        test_support::free_port().to_string(),
    ));
    let mut env: Vec<(&str, &str)> = vec![
        ("PATH", &path),
        ("PGPORT", &pg_port),
        ("PGUSER", test_support::postgres::PG_USER),
        ("CERTS", &certs_dir),
    ];
    env.extend(ports.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    // The server started in the background is stopped by its pid file, whatever happened.
    struct Stop(std::path::PathBuf);
    impl Drop for Stop {
        fn drop(&mut self) {
            if let Ok(pid) = std::fs::read_to_string(&self.0) {
                let _ = Command::new("kill").arg(pid.trim()).status();
            }
        }
    }
    let _stop = Stop(certs.path().join("server.pid"));
    let out = support::docs::run_sh_block(&block, &repo, &env);
    let versions = Versions::read();
    assert!(
        out.contains(&format!("\"serverVersion\": \"{}\"", versions.server)),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "\"historyShardCount\": {}",
            versions.history_shards
        )),
        "{out}"
    );
    assert!(out.contains("client_cert_file:"), "{out}");
}
