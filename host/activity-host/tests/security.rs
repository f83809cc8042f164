//! A shared host secured as docs/operations.md ("Securing a host") says, on a fleet of two
//! host processes over one PostgreSQL: the docs' key and secret commands run as written; a
//! revoked key is refused by every host within a second; a secret reaches only its bound host
//! (a sink on loopback, named through the hosts' resolver override) while another allowed
//! host receives the placeholder; the egress audit lists both; a grant outside the host-wide
//! policy is refused; and the secret's value appears in no log line, metric or API answer of
//! the whole run.

use crate::support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::fleet::{host_process_with, wait_healthy, HostProcess};
use test_support::{DevServer, HttpSink, Postgres};

const ADMIN: &str = "fleet-admin-token-0123456789";
const SECRET: &str = "wh-s3cr3t-7f1c9e2a-value";
const SECRETS_KEY: &str = "4f2a9c0e1b7d3e5f6a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f";

/// The section's command blocks, in order.
fn doc_blocks() -> Vec<String> {
    support::docs::section_sh_blocks("operations.md", "Securing a host")
}

/// Runs `block` in `dir` against `api` as the admin.
fn run_block(block: &str, dir: &std::path::Path, api: &str, env: &[(&str, &str)]) -> String {
    let mut all = vec![("ACTIVITY_HOST_API", api), ("ACTIVITY_HOST_TOKEN", ADMIN)];
    all.extend_from_slice(env);
    support::docs::run_sh_block(block, dir, &all)
}

async fn send(request: reqwest::RequestBuilder, answers: &mut Vec<String>) -> (u16, Value) {
    let res = request.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    answers.push(text.clone());
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fleet_secured_as_documented_keeps_keys_secrets_and_egress_in_line() {
    let pg = Postgres::start().expect("postgres");
    let server = tokio::task::spawn_blocking(DevServer::start)
        .await
        .unwrap()
        .unwrap();
    let bound = HttpSink::start(200).await;
    let other = HttpSink::start(200).await;
    let dir = tempfile::tempdir().unwrap();
    // The hosts' own configuration: loopback names for the sinks, a policy admitting
    // loopback (the sinks) but not the 10/8 range.
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        "runtime:\n  egress:\n    allowed_hosts: [\"*\", \"127.0.0.0/8\"]\n    resolve:\n      bound.test: [\"127.0.0.1\"]\n      other.test: [\"127.0.0.1\"]\n      hooks.example.com: [\"127.0.0.1\"]\n",
    )
    .unwrap();
    let queue = format!("secure-{}", test_support::free_port());
    let config_path = config.display().to_string();
    let env = [
        ("ACTIVITY_HOST_CONFIG", config_path.as_str()),
        ("ACTIVITY_HOST_API__ADMIN_TOKEN", ADMIN),
        ("ACTIVITY_HOST_REGISTRY__SECRETS_KEY", SECRETS_KEY),
        ("RUST_LOG", "info"),
    ];
    let hosts: Vec<HostProcess> = (0..2)
        .map(|_| host_process_with("dev", false, &pg, &server.address, &queue, &env))
        .collect();
    let http = support::http();
    for h in &hosts {
        wait_healthy(&http, &h.base).await;
    }
    let (a, b) = (hosts[0].base.clone(), hosts[1].base.clone());
    let mut answers = Vec::new();

    // The docs' first block: keys of two roles, listed.
    let blocks = doc_blocks();
    assert_eq!(blocks.len(), 3, "{blocks:?}");
    let listed = run_block(&blocks[0], dir.path(), &a, &[]);
    assert!(
        listed.contains("ci-deployer") && listed.contains("order-service"),
        "{listed}"
    );
    // Each token is printed once, on the line after its key.
    let tokens: Vec<&str> = listed.lines().filter(|l| l.starts_with("ahk_")).collect();
    assert_eq!(tokens.len(), 2, "{listed}");
    let invoker = tokens[1].to_string();

    // A key of our own to revoke, used on both hosts first.
    let (_, created) = send(
        http.post(format!("{a}/api/v1/keys"))
            .bearer_auth(ADMIN)
            .json(&json!({"name": "short-lived", "role": "reader"})),
        &mut answers,
    )
    .await;
    let (doomed_id, doomed) = (
        created["key"]["id"].as_str().unwrap().to_string(),
        created["token"].as_str().unwrap().to_string(),
    );
    for base in [&a, &b] {
        let (status, _) = send(
            http.get(format!("{base}/api/v1/activities"))
                .bearer_auth(&doomed),
            &mut answers,
        )
        .await;
        assert_eq!(status, 200, "{base}");
    }
    // The docs' second block revokes it; once the key cache time has passed after the CLI
    // answered, every request on either host is refused (a slower machine only sends them
    // later, which cannot turn a refusal into a pass).
    let started = Instant::now();
    run_block(&blocks[1], dir.path(), &a, &[("KEY_ID", &doomed_id)]);
    let trusted_until = Instant::now() + activity_api::auth::KEY_CACHE;
    let mut refused_by = Vec::new();
    while refused_by.len() < 2 {
        for base in [&a, &b] {
            if refused_by.contains(base) {
                continue;
            }
            let sent = Instant::now();
            let (status, _) = send(
                http.get(format!("{base}/api/v1/activities"))
                    .bearer_auth(&doomed),
                &mut answers,
            )
            .await;
            if status == 401 {
                refused_by.push(base.clone());
            } else {
                assert!(
                    sent < trusted_until,
                    "{base} served the revoked key {:?} past the key cache time",
                    sent - trusted_until
                );
            }
        }
        assert!(
            trusted_until.elapsed() < Duration::from_secs(60),
            "still served a minute on by some host"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "revocation refused on both hosts after {:?} (the CLI's own start included)",
        started.elapsed()
    );

    // The docs' third block: the secret, SendNotification deployed with it, the audit.
    std::fs::write(
        dir.path().join("send_notification.wasm"),
        test_components::read(test_components::SEND_NOTIFICATION),
    )
    .unwrap();
    let out = run_block(&blocks[2], dir.path(), &a, &[("WEBHOOK_TOKEN", SECRET)]);
    assert!(out.contains("set secret webhook_token"), "{out}");

    // A component posting the granted secret: to its bound host, and to another.
    let (pb, po) = (bound.addr.port(), other.addr.port());
    let grants = format!(
        "export=post-config&secret=webhook_token&allow_host=bound.test:{pb}&allow_host=other.test:{po}&allow_host=127.0.0.1:{pb}&allow_host=127.0.0.1:{po}"
    );
    let wasm = test_components::read(test_components::MISBEHAVING);
    let deploy = |query: String| {
        http.put(format!("{a}/api/v1/activities/Poster?{query}"))
            .bearer_auth(ADMIN)
            .header("content-type", "application/wasm")
            .body(wasm.clone())
    };
    // Bind the secret's hosts to bound.test (the docs bound it to hooks.example.com).
    let (status, _) = send(
        http.put(format!("{a}/api/v1/secrets/webhook_token"))
            .bearer_auth(ADMIN)
            .json(&json!({"value": SECRET, "hosts": [format!("http://bound.test:{pb}")]})),
        &mut answers,
    )
    .await;
    assert_eq!(status, 200);
    // Deployed after the secret changed: a host serving Poster has read the new binding.
    let (status, body) = send(deploy(grants.clone()), &mut answers).await;
    assert_eq!(status, 201, "{body}");
    // Outside the host-wide policy: refused with the reason, nothing deployed.
    let (status, body) = send(
        deploy("export=fetch&allow_host=10.0.0.5:80".into()),
        &mut answers,
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "outside_egress_policy", "{body}");

    // The docs' invoker key invokes through host B; the secret reached the other host of
    // the fleet by its notification.
    let poster_key = invoker.clone();
    for (host, port) in [("bound.test", pb), ("other.test", po)] {
        let url = format!("http://{host}:{port}/hook");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, body) = send(
                http.post(format!("{b}/api/v1/activities/Poster/invoke"))
                    .bearer_auth(&poster_key)
                    .json(&json!([url, "webhook_token"])),
                &mut answers,
            )
            .await;
            // Host B answers 404 until the deploy's notification reached it.
            assert!(status == 200 || status == 404, "{status} {body}");
            if body["status"] == "COMPLETED" {
                assert_eq!(body["result"], 200, "{body}");
                break;
            }
            // A host that has not heard of the deploy yet fails it as not deployed.
            assert!(Instant::now() < deadline, "{body}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let at_bound = bound.requests();
    assert_eq!(at_bound.last().unwrap().headers["x-token"], SECRET);
    assert_eq!(at_bound.last().unwrap().body, format!("token={SECRET}"));
    let at_other = other.requests();
    let placeholder = activity_runtime::egress::placeholder("webhook_token");
    assert_eq!(at_other.last().unwrap().headers["x-token"], placeholder);

    // The audit, from whichever hosts ran the calls.
    let mut records = Vec::new();
    for base in [&a, &b] {
        let (status, body) = send(
            http.get(format!("{base}/api/v1/activities/Poster/egress?since=0"))
                .bearer_auth(&poster_key),
            &mut answers,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        records.extend(body.as_array().unwrap().iter().cloned());
    }
    let sent: Vec<&Value> = records.iter().filter(|r| r["outcome"] == "sent").collect();
    let to_bound = sent
        .iter()
        .find(|r| r["host"] == "bound.test")
        .expect("bound.test audited");
    assert_eq!(to_bound["secrets"], json!(["webhook_token"]));
    assert_eq!(to_bound["status"], 200);
    assert_eq!(to_bound["address"], format!("127.0.0.1:{pb}"));
    assert!(to_bound["activity_id"].is_string());
    let to_other = sent
        .iter()
        .find(|r| r["host"] == "other.test")
        .expect("other.test audited");
    assert!(to_other.get("secrets").is_none(), "{to_other}");

    // The invoker may not read keys; the deployer's key, limited to SendNotification, may
    // not touch Poster.
    let (status, _) = send(
        http.get(format!("{a}/api/v1/keys"))
            .bearer_auth(&poster_key),
        &mut answers,
    )
    .await;
    assert_eq!(status, 403);
    let (status, body) = send(
        http.post(format!("{b}/api/v1/activities/Poster/rollback"))
            .bearer_auth(tokens[0]),
        &mut answers,
    )
    .await;
    assert_eq!(status, 403, "{body}");

    // The value is nowhere: logs, metrics, API answers, config show.
    for h in &hosts {
        let (_, _) = send(http.get(format!("{}/metrics", h.base)), &mut answers).await;
        let (_, _) = send(
            http.get(format!("{}/api/v1/secrets", h.base))
                .bearer_auth(ADMIN),
            &mut answers,
        )
        .await;
        let (_, _) = send(
            http.get(format!("{}/api/v1/activities/Poster", h.base))
                .bearer_auth(ADMIN),
            &mut answers,
        )
        .await;
    }
    let shown = run_block(
        "activity-host config show",
        dir.path(),
        &a,
        &[
            ("ACTIVITY_HOST_CONFIG", &config_path),
            ("ACTIVITY_HOST_REGISTRY__SECRETS_KEY", SECRETS_KEY),
        ],
    );
    assert!(
        !shown.contains(SECRETS_KEY),
        "config show prints the secrets key"
    );
    answers.push(shown);
    let logs: Vec<String> = hosts.iter().map(HostProcess::logs).collect();
    assert!(
        logs.iter().any(|l| l.contains("outgoing request")),
        "the hosts logged no egress line"
    );
    for (what, text) in answers
        .iter()
        .map(|a| ("an API answer", a))
        .chain(logs.iter().map(|l| ("a host's log", l)))
    {
        assert!(!text.contains(SECRET), "{what} holds the secret: {text}");
    }
}
