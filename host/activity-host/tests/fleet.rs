//! A fleet: host processes on one task queue sharing one PostgreSQL registry and users store,
//! against the real dev server and a real throw-away PostgreSQL cluster.

use crate::support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::fleet::{host_process, wait_healthy, HostProcess};
use support::{get_json, get_text, start, try_get_json, try_start, wait_closed};
use test_support::{eventually, DevServer, Postgres};

/// ValidateUser with a custom section appended: the same code, another digest.
fn variant(name: &str) -> Vec<u8> {
    let bytes = test_components::read(test_components::VALIDATE_USER);
    test_support::with_custom_section(&bytes, name, b"fleet")
}

/// The digest of ValidateUser that the host at `base` serves now (not the store's active one).
async fn serving_digest(http: &reqwest::Client, base: &str) -> Option<String> {
    let d = try_get_json(http, format!("{base}/api/v1/activities/ValidateUser")).await?;
    d["serving_digest"].as_str().map(String::from)
}

/// `activity_executions_total` of ValidateUser by version, from one host's /metrics.
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

/// `n` host processes (`activity-host dev`: worker and API) started one after another (the
/// first deploys the reference activities, the others find them), each ready; answers them
/// and the ValidateUser digest they all serve.
async fn start_fleet(
    http: &reqwest::Client,
    server: &DevServer,
    pg: &Postgres,
    queue: &str,
    n: usize,
) -> (Vec<HostProcess>, String) {
    let mut hosts = Vec::new();
    let mut digests = Vec::new();
    for _ in 0..n {
        let host = host_process("dev", true, pg, &server.address, queue);
        wait_healthy(http, &host.base).await;
        let digest = eventually(Duration::from_secs(60), || serving_digest(http, &host.base)).await;
        digests.push(digest.expect("host serving ValidateUser"));
        hosts.push(host);
    }
    let v1 = digests[0].clone();
    assert!(digests.iter().all(|d| d == &v1), "{digests:?}");
    (hosts, v1)
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
    let http = support::http();
    let (hosts, v1) = start_fleet(&http, &server, &pg, &queue, 3).await;
    let bases: Vec<String> = hosts.iter().map(|h| h.base.clone()).collect();

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
        let seen = eventually(Duration::from_secs(60), || async {
            (serving_digest(&http, base).await.as_deref() == Some(v2.as_str())).then_some(())
        })
        .await;
        assert!(seen.is_some(), "{base} never served v2");
    }
    // How fast is bench-fleet's to measure; here, that it arrives.
    let propagation = deployed_at.elapsed();
    eprintln!("v2 reached every host {propagation:?} after the deploy answered");
    // Every host's heartbeat says which digest it serves; any host's API shows them all.
    let agreed = eventually(Duration::from_secs(60), || async {
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
    let mut counts = Vec::new();
    for base in &bases {
        counts.extend(executions_by_version(&http, base).await);
    }
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
    let body = json!({"args": [{"user_id": "u", "email": "u@example.com", "name": "U"}]});
    let invoked = support::invoke_ok(&http, &bases[2], "ValidateUser", body).await;
    assert_eq!(invoked["valid"], true, "{invoked}");
    tokio::time::sleep(Duration::from_secs(10)).await;
    pg.start_again().expect("postgres back");
    let closed = wait_closed(&http, &bases[1], &id, &run).await;
    assert_eq!(closed["status"], "COMPLETED", "{closed}");
    // Deploys work again without a restart and still reach every host.
    let res = eventually(Duration::from_secs(60), || async {
        let res = deploy(&http, &bases[0], variant("v3")).await;
        (res.status() == 201).then_some(())
    })
    .await;
    assert!(res.is_some(), "deploys never worked again");
    let v3 = serving_digest(&http, &bases[0]).await.unwrap();
    for base in &bases[1..] {
        let seen = eventually(Duration::from_secs(60), || async {
            (serving_digest(&http, base).await.as_deref() == Some(v3.as_str())).then_some(())
        })
        .await;
        assert!(seen.is_some(), "{base} never served v3");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hosts_reconnect_by_themselves_when_temporal_restarts_under_load() {
    let pg = Postgres::start().expect("postgres");
    let mut server = DevServer::start().expect("dev server");
    let queue = format!("fleet-{}", test_support::free_port());
    let http = support::http();
    let (hosts, _) = start_fleet(&http, &server, &pg, &queue, 2).await;
    let bases: Vec<String> = hosts.iter().map(|h| h.base.clone()).collect();
    let mut started = Vec::new();
    for i in 0..6 {
        let base = &bases[i % bases.len()];
        let body = json!({"user_id": format!("before-{i}"), "email": "r@example.com", "name": "R", "action": "create"});
        started.push((base.clone(), start(&http, base, body).await));
    }
    // Down and up on the same port and database file, with workflows in flight.
    server.restart().expect("dev server back");
    for i in 0..6 {
        let base = &bases[i % bases.len()];
        let body = json!({"user_id": format!("after-{i}"), "email": "r@example.com", "name": "R", "action": "create"});
        // The API reconnects too: the first starts may answer 503 while it does.
        let (id, run) = eventually(Duration::from_secs(60), || try_start(&http, base, &body))
            .await
            .expect("starts work again after the restart");
        started.push((base.clone(), (id, run)));
    }
    for (base, (id, run)) in &started {
        let closed =
            support::wait_closed_within(&http, base, id, run, Duration::from_secs(90)).await;
        assert_eq!(closed["status"], "COMPLETED", "{id}: {closed}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_by_reference_is_pulled_once_and_every_host_gets_it_from_the_store() {
    let pg = Postgres::start().expect("postgres");
    let server = DevServer::start().expect("dev server");
    let mut registry = test_support::OciRegistry::start(None).expect("docker-registry");
    let queue = format!("fleet-{}", test_support::free_port());
    let http = support::http();
    let (hosts, v1) = start_fleet(&http, &server, &pg, &queue, 2).await;
    let bases: Vec<String> = hosts.iter().map(|h| h.base.clone()).collect();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), variant("oci")).unwrap();
    let tag = format!("{}/fleet/validate-user:1", registry.host());
    let mut push = std::process::Command::new(env!("CARGO_BIN_EXE_activity-host"));
    push.arg("push").arg(file.path()).arg(&tag).arg("--quiet");
    let pinned = String::from_utf8(support::run_ok(push).await.stdout).unwrap();
    let source = format!("oci://{}", pinned.trim());

    let res = http
        .put(format!("{}/api/v1/activities/ValidateUser", bases[0]))
        .json(&json!({ "source": source }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    // The registry goes away: the other host still gets the version, from the shared store.
    registry.stop();
    let v2 = serving_digest(&http, &bases[0]).await.unwrap();
    assert_ne!(v1, v2);
    let seen = eventually(Duration::from_secs(60), || async {
        (serving_digest(&http, &bases[1]).await.as_deref() == Some(v2.as_str())).then_some(())
    })
    .await;
    assert!(
        seen.is_some(),
        "the second host never served the pulled version"
    );
    let details = get_json(
        &http,
        format!("{}/api/v1/activities/ValidateUser", bases[1]),
    )
    .await;
    let active = details["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["active"] == true)
        .cloned()
        .unwrap();
    assert_eq!(active["source"]["reference"], source.as_str(), "{details}");
    // A deploy by reference while the registry is down: 503 on any host, nothing changes.
    let res = http
        .put(format!("{}/api/v1/activities/ValidateUser", bases[1]))
        .json(&json!({ "source": format!("oci://{tag}") }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(
        serving_digest(&http, &bases[1]).await.as_deref(),
        Some(v2.as_str())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_killed_during_deploys_leaves_a_whole_version_active() {
    let pg = Postgres::start().expect("postgres");
    let server = DevServer::start().expect("dev server");
    let http = support::http();
    let mut deployed = vec![];
    for round in 0..6u64 {
        let mut host = host_process("server", false, &pg, &server.address, "q");
        let base = host.base.clone();
        wait_healthy(&http, &base).await;
        let bytes = variant(&format!("round{round}"));
        deployed.push(
            activity_runtime::ComponentDigest::of(&bytes)
                .as_str()
                .to_string(),
        );
        let request = deploy(&http, &base, bytes);
        if round == 0 {
            // One whole version first.
            assert_eq!(request.await.status(), 201);
        } else {
            // Then killed at a different point of the deploy each round: before, during or
            // after its transaction.
            let _ = tokio::time::timeout(Duration::from_millis(5 * round * round), request).await;
        }
        host.kill9();
    }
    // A fresh host finds one whole version active, and serves it.
    let mut host = host_process("server", false, &pg, &server.address, "q");
    let base = host.base.clone();
    let details = eventually(Duration::from_secs(60), || async {
        let d = try_get_json(&http, format!("{base}/api/v1/activities/ValidateUser")).await?;
        d["serving_digest"].is_string().then_some(d)
    })
    .await;
    host.kill9();
    let d = details.expect("a fresh host serves ValidateUser");
    let active = d["active_digest"].as_str().unwrap();
    assert_eq!(d["serving_digest"], active, "{d}");
    assert!(
        deployed.iter().any(|v| v == active),
        "{active} is none of {deployed:?}"
    );
    for v in d["versions"].as_array().unwrap() {
        assert!(deployed.iter().any(|x| x == &v["digest"]), "{v}");
    }
}

/// `activity_task_slots_in_use` of the worker process at `base`.
async fn slots_in_use(http: &reqwest::Client, base: &str) -> f64 {
    let text = get_text(http, format!("{base}/metrics")).await;
    text.lines()
        .find_map(|l| l.strip_prefix("activity_task_slots_in_use "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_killed_mid_activity_loses_no_work() {
    let pg = Postgres::start().expect("postgres");
    let server = DevServer::start().expect("dev server");
    let http = support::http();
    let queue = format!("fleet-{}", test_support::free_port());
    // The API host deploys the reference activities; two worker hosts serve them.
    let api_host = host_process("server", true, &pg, &server.address, &queue);
    let api = api_host.base.clone();
    wait_healthy(&http, &api).await;
    let mut workers: Vec<HostProcess> = (0..2)
        .map(|_| host_process("worker", false, &pg, &server.address, &queue))
        .collect();
    for w in &workers {
        wait_healthy(&http, &w.base).await;
    }
    // A long activity that heartbeats its progress: 40 steps of 100 ms.
    let res = http
        .put(format!(
            "{api}/api/v1/activities/Resume?export=resume&allow_host=hosts.invalid"
        ))
        .header("content-type", "application/wasm")
        .body(test_components::read(test_components::MISBEHAVING))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());

    let caller_queue = format!("caller-{}", test_support::free_port());
    let _caller = test_support::caller::start_caller_worker(&server.address, &caller_queue);
    let client = activity_worker::connect(&server.address, "default")
        .await
        .unwrap();
    let mut request =
        test_support::caller::CallRequest::new("Resume", vec![json!(40), json!(100)], &queue);
    request.heartbeat_timeout_ms = Some(1500);
    request.start_to_close_ms = 60_000;
    let call = {
        let (client, caller_queue) = (client.clone(), caller_queue.clone());
        tokio::spawn(async move {
            test_support::caller::call(&client, &caller_queue, "resume-after-kill", request).await
        })
    };
    // Find the worker running Resume (nothing else runs yet), let it heartbeat a while.
    let running = eventually(Duration::from_secs(60), || async {
        for (i, w) in workers.iter().enumerate() {
            if slots_in_use(&http, &w.base).await >= 1.0 {
                return Some(i);
            }
        }
        None
    })
    .await
    .expect("one worker runs Resume");
    // Users created meanwhile, through the API host; some of their activities die too.
    let mut users = Vec::new();
    for i in 0..4 {
        let body = json!({"user_id": format!("kill-{i}"), "email": "k@example.com", "name": "K", "action": "create"});
        users.push(start(&http, &api, body).await);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // kill -9.
    workers.remove(running).kill9();

    let result = call.await.unwrap();
    assert!(result.failures.is_empty(), "{:?}", result.failures);
    let resumed_at = result
        .output
        .as_ref()
        .and_then(|v| v.as_u64())
        .expect("a step");
    assert!(
        resumed_at > 0,
        "the retry started over instead of resuming: {result:?}"
    );
    assert!(resumed_at < 40, "{result:?}");
    for (id, run) in &users {
        let closed =
            support::wait_closed_within(&http, &api, id, run, Duration::from_secs(60)).await;
        assert_eq!(closed["status"], "COMPLETED", "{id}: {closed}");
        assert_eq!(
            closed["result"]["user"]["version"], 1,
            "created once: {closed}"
        );
    }
}
