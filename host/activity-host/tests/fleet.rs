//! A fleet: three hosts on one task queue sharing one PostgreSQL registry and users store,
//! against the real dev server and a real throw-away PostgreSQL cluster.

mod support;

use std::time::{Duration, Instant};

use activity_host::config::RegistryBackend;
use serde_json::{json, Value};
use support::{get_json, get_text, start, start_host_at, wait_closed, RunningHost};
use test_support::{eventually, DevServer, Postgres};

/// ValidateUser with a custom section appended: the same code, another digest.
fn variant(name: &str) -> Vec<u8> {
    let mut bytes = test_components::read(test_components::VALIDATE_USER);
    let payload = [&[name.len() as u8][..], name.as_bytes(), b"fleet"].concat();
    bytes.push(0);
    bytes.push(payload.len() as u8);
    bytes.extend_from_slice(&payload);
    bytes
}

fn fleet_host(server: &DevServer, pg: &Postgres, queue: &str) -> RunningHost {
    let (url, queue) = (pg.url(), queue.to_string());
    start_host_at(
        &server.address,
        move |c| {
            c.workflow.temporal.task_queue = queue;
            c.registry.backend = RegistryBackend::Postgres;
            c.registry.postgres_url = Some(url);
            c.registry.postgres_pool_size = 4;
            // Only the notifications can deliver a deploy in time.
            c.registry.reconcile_ms = 600_000;
        },
        true,
    )
}

/// The digest of ValidateUser that the host at `base` serves now (not the store's active one).
async fn serving_digest(http: &reqwest::Client, base: &str) -> Option<String> {
    let d: Value = http
        .get(format!("{base}/api/v1/activities/ValidateUser"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    d["serving_digest"].as_str().map(String::from)
}

/// `activity_executions_total` of ValidateUser by version, from one host's /metrics (the
/// hosts of this test share one process and so one recorder).
async fn executions_by_version(http: &reqwest::Client, base: &str) -> Vec<(String, u64)> {
    let text = get_text(http, format!("{base}/metrics")).await;
    text.lines()
        .filter(|l| l.starts_with(r#"activity_executions_total{activity_type="ValidateUser""#))
        .filter_map(|l| {
            let version = l.split("version=\"").nth(1)?.split('"').next()?.to_string();
            Some((version, l.rsplit(' ').next()?.parse().ok()?))
        })
        .collect()
}

async fn deploy(http: &reqwest::Client, base: &str, bytes: Vec<u8>) -> reqwest::Response {
    http.put(format!("{base}/api/v1/activities/ValidateUser"))
        .header("content-type", "application/wasm")
        .body(bytes)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn one_deploy_reaches_every_host_and_an_outage_of_the_database_loses_nothing() {
    let mut pg = Postgres::start().expect("postgres");
    let server = DevServer::start().expect("dev server");
    let queue = format!("fleet-{}", test_support::free_port());
    let http = reqwest::Client::new();
    // One after another: the first deploys the reference activities, the others find them.
    let mut hosts: Vec<RunningHost> = Vec::new();
    let mut digests = Vec::new();
    for _ in 0..3 {
        let host = fleet_host(&server, &pg, &queue);
        let ready = eventually(Duration::from_secs(60), || async {
            let ok = http
                .get(format!("{}/readyz", host.base))
                .send()
                .await
                .ok()?;
            if !ok.status().is_success() {
                return None;
            }
            serving_digest(&http, &host.base).await
        })
        .await;
        digests.push(ready.expect("host ready, serving ValidateUser"));
        hosts.push(host);
    }
    let bases: Vec<String> = hosts.iter().map(|h| h.base.clone()).collect();
    let v1 = digests[0].clone();
    assert!(digests.iter().all(|d| d == &v1), "{digests:?}");

    // A stream of workflows through every host's API while v2 is deployed.
    let stream = {
        let (http, bases) = (http.clone(), bases.clone());
        tokio::spawn(async move {
            let mut done = Vec::new();
            for i in 0..24 {
                let base = &bases[i % bases.len()];
                let user = format!("fleet-{i}");
                let body = json!({"user_id": user, "email": "f@example.com", "name": "F", "action": "create"});
                let (id, run) = start(&http, base, body).await;
                done.push((user, wait_closed(&http, base, &id, &run).await));
            }
            done
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let res = deploy(&http, &bases[0], variant("v2")).await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let deployed_at = Instant::now();
    let v2 = serving_digest(&http, &bases[0]).await.unwrap();
    assert_ne!(v1, v2);
    for base in &bases[1..] {
        let seen = eventually(Duration::from_secs(5), || async {
            (serving_digest(&http, base).await.as_deref() == Some(v2.as_str())).then_some(())
        })
        .await;
        assert!(seen.is_some(), "{base} never served v2");
    }
    let propagation = deployed_at.elapsed();
    eprintln!("v2 reached every host {propagation:?} after the deploy answered");
    assert!(propagation < Duration::from_secs(1), "took {propagation:?}");
    // Every host's heartbeat says which digest it serves; any host's API shows them all.
    let agreed = eventually(Duration::from_secs(5), || async {
        let d: Value = get_json(
            &http,
            format!("{}/api/v1/activities/ValidateUser", bases[2]),
        )
        .await;
        let hosts = d["hosts"].as_array()?.clone();
        (hosts.len() == 3 && hosts.iter().all(|h| h["digest"] == v2.as_str())).then_some(hosts)
    })
    .await;
    let hosts = agreed.expect("every live host reports v2");
    for base in &bases {
        let api = base.trim_start_matches("http://");
        assert!(
            hosts.iter().any(|h| h["api"] == api),
            "{api} missing from {hosts:?}"
        );
    }

    let done = stream.await.unwrap();
    for (user, closed) in &done {
        assert_eq!(closed["status"], "COMPLETED", "{user}: {closed}");
    }
    // Each ValidateUser ran on exactly one version, v1 or v2, and both served.
    let counts = executions_by_version(&http, &bases[0]).await;
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    assert!(total >= done.len() as u64, "{counts:?}");
    assert!(
        counts.iter().all(|(v, _)| v == &v1 || v == &v2),
        "{counts:?}"
    );
    assert!(
        counts.iter().any(|(v, n)| v == &v2 && *n > 0),
        "v2 never ran: {counts:?}"
    );
    // The users store is shared: a user created through host 0 is read through host 2.
    let user: Value = get_json(&http, format!("{}/api/v1/users/fleet-0", bases[2])).await;
    assert_eq!(user["user_id"], "fleet-0", "{user}");

    // PostgreSQL away for 10 s: loaded versions keep serving, deploys answer 503, and a
    // workflow whose CreateUser needs the store completes once the database is back.
    pg.stop();
    let body = json!({"user_id": "during-outage", "email": "o@example.com", "name": "O", "action": "create"});
    let (id, run) = start(&http, &bases[1], body).await;
    let refused = deploy(&http, &bases[0], variant("v3")).await;
    assert_eq!(refused.status(), 503);
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["error"]["code"], "registry_unavailable", "{error}");
    // ValidateUser needs no database: it keeps answering, here as a standalone activity.
    let invoked: Value = http
        .post(format!(
            "{}/api/v1/activities/ValidateUser/invoke",
            bases[2]
        ))
        .json(&json!({"args": [{"user_id": "u", "email": "u@example.com", "name": "U"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(invoked["result"]["valid"], true, "{invoked}");
    tokio::time::sleep(Duration::from_secs(10)).await;
    pg.start_again().expect("postgres back");
    let closed = wait_closed(&http, &bases[1], &id, &run).await;
    assert_eq!(closed["status"], "COMPLETED", "{closed}");
    // Deploys work again without a restart and still reach every host.
    let res = eventually(Duration::from_secs(15), || async {
        let res = deploy(&http, &bases[0], variant("v3")).await;
        (res.status() == 201).then_some(())
    })
    .await;
    assert!(res.is_some(), "deploys never worked again");
    let v3 = serving_digest(&http, &bases[0]).await.unwrap();
    for base in &bases[1..] {
        let seen = eventually(Duration::from_secs(10), || async {
            (serving_digest(&http, base).await.as_deref() == Some(v3.as_str())).then_some(())
        })
        .await;
        assert!(seen.is_some(), "{base} never served v3");
    }
}
