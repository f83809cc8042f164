//! A bill per call, the way a platform team reads it: each REST invoke answers what it cost
//! (from the result's metadata in Temporal's history), `GET /api/v1/usage` and
//! `activity-host usage` sum the calls by activity type and by caller (the key of an invoke,
//! the workflow type of a workflow's call), a key's `cpu_ms_per_minute` refuses its invokes
//! once spent, and the sums survive a restart of the host; docs/operations.md's commands run
//! as written.

use std::time::Duration;

use serde_json::{json, Value};
use test_support::{eventually, DevServer};

use crate::support::{cli, http, output_text, start_host_with, RunningHost};

const ADMIN: &str = "usage-admin-token";

fn host(server: &DevServer, data: &std::path::Path) -> RunningHost {
    let data = data.to_path_buf();
    start_host_with(server, move |c| {
        c.data_dir.0 = data;
        c.api.admin_token = Some(ADMIN.into());
        c.registry.usage.flush_ms = 200;
    })
}

async fn ready(http: &reqwest::Client, base: &str) {
    eventually(Duration::from_secs(60), || async {
        let res = http.get(format!("{base}/readyz")).send().await.ok()?;
        (res.status() == 200).then_some(())
    })
    .await
    .expect("the host gets ready");
}

async fn usage(http: &reqwest::Client, base: &str, query: &str) -> Value {
    http.get(format!("{base}/api/v1/usage?{query}"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn row<'a>(report: &'a Value, key: &str) -> Option<&'a Value> {
    report["rows"]
        .as_array()?
        .iter()
        .find(|r| r["key"].as_str() == Some(key))
}

fn user(id: &str) -> Value {
    json!({"user_id": id, "name": "Ada", "email": "ada@example.com"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_are_billed_per_activity_and_caller_limited_by_cpu_quota_and_kept() {
    let server = tokio::task::spawn_blocking(DevServer::start)
        .await
        .unwrap()
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let http = http();
    let first = host(&server, data.path());
    let base = first.base.clone();
    ready(&http, &base).await;

    // An invoker key with a CPU quota of 1 ms a minute.
    let created: Value = http
        .post(format!("{base}/api/v1/keys"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "metered", "role": "invoker", "cpu_ms_per_minute": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(created["key"]["cpu_ms_per_minute"], 1, "{created}");
    let token = created["token"].as_str().unwrap().to_string();
    let who = format!("{} (metered)", created["key"]["id"].as_str().unwrap());

    // Its invokes answer what they cost, until the quota is spent.
    let invoke = || {
        http.post(format!("{base}/api/v1/activities/ValidateUser/invoke"))
            .bearer_auth(&token)
            .json(&json!([user("u1")]))
            .send()
    };
    let done = std::sync::atomic::AtomicU64::new(0);
    let refused = eventually(Duration::from_secs(60), || async {
        let res = invoke().await.ok()?;
        if res.status() == 429 {
            let retry = res.headers()["retry-after"].to_str().unwrap().to_string();
            let body: Value = res.json().await.unwrap();
            return Some((retry, body));
        }
        let answer: Value = res.json().await.ok()?;
        assert_eq!(answer["status"], "COMPLETED", "{answer}");
        let bill = &answer["usage"];
        assert!(bill["wall_ms"].as_f64().unwrap() > 0.0, "{answer}");
        assert!(bill["cpu_ms"].as_f64().unwrap() > 0.0, "{answer}");
        assert!(bill["peak_memory_bytes"].as_u64().unwrap() > 0, "{answer}");
        assert_eq!(bill["egress_requests"], 0, "{answer}");
        done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        None
    })
    .await
    .expect("the key's quota is spent within a minute");
    let (retry, body) = refused;
    let completed = done.load(std::sync::atomic::Ordering::SeqCst);
    assert!(completed >= 1, "refused before any call");
    assert_eq!(body["error"]["code"], "cpu_quota_exceeded", "{body}");
    assert!(retry.parse::<u64>().unwrap() >= 1);
    println!("{completed} invokes before the quota of 1 CPU ms a minute refused the next");

    // A workflow's calls are billed to its type.
    let started = http
        .post(format!("{base}/api/v1/workflows/user"))
        .bearer_auth(ADMIN)
        .json(&json!({"user_id": "u2", "email": "u2@example.com", "name": "U Two", "action": "create"}))
        .send()
        .await
        .unwrap();
    assert!(
        started.status().is_success(),
        "{}",
        started.text().await.unwrap()
    );

    // Usage by caller and by activity: the key's invokes, and the workflow's calls.
    let by_caller = eventually(Duration::from_secs(60), || async {
        let report = usage(&http, &base, "group_by=caller&since=0").await;
        let wf = row(&report, "workflow:UserWorkflow")?;
        (wf["calls"].as_u64()? >= 2).then_some(report)
    })
    .await
    .expect("the workflow's calls are counted");
    let key_row = row(&by_caller, &who).expect("the key's row").clone();
    assert_eq!(key_row["calls"], completed, "{by_caller}");
    assert_eq!(key_row["failures"], 0);
    assert!(key_row["cpu_ms"].as_f64().unwrap() >= 1.0, "{key_row}");
    let by_activity = usage(&http, &base, "group_by=activity&since=0").await;
    let validate = row(&by_activity, "ValidateUser").expect("ValidateUser's row");
    assert!(
        validate["calls"].as_u64().unwrap() > completed,
        "{by_activity}"
    );
    // Only one caller's calls; a bad grouping is refused.
    let only = usage(&http, &base, &format!("since=0&caller={}", urlencode(&who))).await;
    assert_eq!(only["rows"].as_array().unwrap().len(), 1, "{only}");
    let bad = http
        .get(format!("{base}/api/v1/usage?group_by=version"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    // The usage metrics name the caller.
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("activity_usage_cpu_microseconds_total")
                && l.contains(&format!("caller=\"{who}\""))),
        "no usage metric for the key"
    );

    // After a restart on the same data, the sums are there, and the CLI prints them.
    drop(first);
    let second = host(&server, data.path());
    let base = second.base.clone();
    ready(&http, &base).await;
    let after = usage(&http, &base, "group_by=caller&since=0").await;
    assert_eq!(row(&after, &who), Some(&key_row), "{after}");
    let out = cli(
        &base,
        &[
            "usage",
            "--group-by",
            "caller",
            "--since",
            "1d",
            "--output",
            "csv",
            "--token",
            ADMIN,
        ],
    );
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(
            "key,calls,failures,wall_ms,cpu_ms,peak_memory_bytes,fuel,egress_requests,egress_bytes"
        )
    );
    assert!(
        lines.any(|l| l.starts_with(&format!("{who},{completed},0,"))),
        "{text}"
    );
    let table = cli(&base, &["usage", "--token", ADMIN]);
    let table_text = output_text(&table);
    assert!(table.status.success(), "{table_text}");
    assert!(
        table_text.lines().any(|l| l.starts_with("ValidateUser ")),
        "{table_text}"
    );

    // docs/operations.md's usage commands, run as written.
    let dir = tempfile::tempdir().unwrap();
    for block in crate::support::docs::section_sh_blocks("operations.md", "Usage and quotas") {
        let out = crate::support::docs::run_sh_block(
            &block,
            dir.path(),
            &[("ACTIVITY_HOST_API", &base), ("ACTIVITY_HOST_TOKEN", ADMIN)],
        );
        assert!(out.contains("workflow:UserWorkflow"), "{out}");
    }
    let csv = std::fs::read_to_string(dir.path().join("usage.csv")).unwrap();
    assert!(csv.contains(&who), "{csv}");
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
