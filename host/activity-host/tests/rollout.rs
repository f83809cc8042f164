//! Rollouts on a fleet: host processes sharing a real PostgreSQL registry, the real dev
//! server, real components; workflows on a plain SDK worker call the activities by name, and
//! the version of every call is read from its result's version metadata.

use crate::support;

use std::time::Duration;

use serde_json::{json, Value};
use support::fleet::{held_in, versions, Fleet};
use support::{get_json, start, wait_closed};
use test_support::caller::CallSeries;
use test_support::eventually;

/// ValidateUser with a custom section: the same code, another digest.
fn same_code(tag: &str) -> Vec<u8> {
    let bytes = test_components::read(test_components::VALIDATE_USER);
    test_support::with_custom_section(&bytes, tag, b"rollout")
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn user(id: &str, name: &str) -> Value {
    json!({"user_id": id, "email": "r@example.com", "name": name})
}

/// The production rollout policy, as compose and Kubernetes configure it.
pub const PINNED: &[(&str, &str)] = &[("ACTIVITY_HOST_REGISTRY__ROLLOUT__POLICY", "pinned")];

#[tokio::test(flavor = "multi_thread")]
async fn a_pinned_run_finishes_on_its_version_across_a_deploy_and_a_killed_host() {
    pinned_run_across_a_deploy_and_a_killed_host(Fleet::start(2, PINNED).await).await;
}

/// A run pinned to v1 keeps it across a deploy of v2 and the loss of the host it ran on; a
/// later run gets v2; `verify` replays the recorded calls. `fleet` has two workers and the
/// pinned policy (the dev server's, and the cluster test's).
pub async fn pinned_run_across_a_deploy_and_a_killed_host(mut fleet: Fleet) {
    let v1 = fleet.details(&fleet.api.base).await["active_digest"]
        .as_str()
        .unwrap()
        .to_string();

    // A run that calls ValidateUser, then waits for a signal.
    fleet
        .start_series("pinned-old", fleet.series(user("old", "Old"), 3, true))
        .await;
    let first = eventually(Duration::from_secs(60), || async {
        (fleet.completed_calls("pinned-old").await >= 1).then_some(())
    })
    .await;
    assert!(first.is_some(), "the first call never completed");

    // v2 (a validator that rejects everyone) deployed with the configured policy: pinned.
    let deployed = fleet
        .deploy(
            "export=strict-validate-user&allow_host=hosts.invalid",
            test_components::read(test_components::MISBEHAVING),
        )
        .await;
    assert_eq!(deployed["policy"], "pinned");
    let v2 = deployed["version"]["digest"].as_str().unwrap().to_string();
    assert_ne!(v1, v2);

    // Kill one worker host: the run's later calls go to the other, which never saw it.
    fleet.workers.remove(0).kill9();
    fleet
        .client
        .get_workflow_handle::<CallSeries>("pinned-old")
        .signal(
            CallSeries::go,
            (),
            temporalio_client::WorkflowSignalOptions::default(),
        )
        .await
        .expect("signal");
    let old = versions(&fleet.result("pinned-old").await);
    assert_eq!(
        old,
        vec![v1.clone(), v1.clone(), v1.clone()],
        "pinned to v1"
    );

    // A run that starts after the deploy gets v2 for every call.
    fleet
        .start_series("pinned-new", fleet.series(user("new", "New"), 2, false))
        .await;
    let new = fleet.result("pinned-new").await;
    assert_eq!(versions(&new), vec![v2.clone(), v2.clone()]);
    assert_eq!(new[0].output.as_ref().unwrap()["valid"], false, "{new:?}");
    let details = fleet.details(&fleet.api.base).await;
    assert!(details["pins"].as_u64().unwrap() >= 2, "{details}");
    assert_eq!(details["events"][0]["kind"], "deploy");

    // Verify: v1's code against the recorded calls of ValidateUser (v1's and v2's), then
    // v2's. Each differs from the other's recorded answers; the CLI exits non-zero.
    let dir = tempfile::tempdir().unwrap();
    let strict = dir.path().join("strict.wasm");
    std::fs::write(&strict, test_components::read(test_components::MISBEHAVING)).unwrap();
    // Visibility trails closed runs by up to a second: verify until all five calls are found.
    let (out, report) = eventually(Duration::from_secs(60), || async {
        let out = support::cli(
            &fleet.api.base,
            &[
                "verify",
                "ValidateUser",
                strict.to_str().unwrap(),
                "--export",
                "strict-validate-user",
                "--allow-host",
                "hosts.invalid",
                "--last",
                "50",
                "--output",
                "json",
            ],
        );
        let report: Value = serde_json::from_slice(&out.stdout).ok()?;
        (report["cases"].as_array()?.len() == 5).then_some((out, report))
    })
    .await
    .expect("a report on five recorded calls");
    assert!(!out.status.success(), "verify must fail on differences");
    assert_eq!(report["failed"], 0, "{report}");
    assert_eq!(report["same"], 2, "v2's own two calls: {report}");
    assert_eq!(
        report["different"], 3,
        "the pinned run's three v1 calls: {report}"
    );
    let different = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["status"] == "different")
        .unwrap();
    assert!(
        different["diff"]
            .as_array()
            .unwrap()
            .iter()
            .any(|op| op["path"] == "/valid"),
        "{different}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ramp_splits_runs_and_a_failing_candidate_is_aborted_on_every_host() {
    let fleet = Fleet::start(
        2,
        &[
            (
                "ACTIVITY_HOST_REGISTRY__ROLLOUT__AUTO_ABORT__FAILURE_RATE",
                "0.3",
            ),
            (
                "ACTIVITY_HOST_REGISTRY__ROLLOUT__AUTO_ABORT__MIN_CALLS",
                "6",
            ),
        ],
    )
    .await;
    let stable = fleet.details(&fleet.api.base).await["active_digest"]
        .as_str()
        .unwrap()
        .to_string();

    // 30% of 200 runs on a candidate with the same code.
    let deployed = fleet
        .deploy("rollout=ramp&ramp_percent=30", same_code("ramp"))
        .await;
    let candidate = deployed["candidate"]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(deployed["version"]["digest"], stable.as_str());
    for w in std::iter::once(&fleet.api).chain(&fleet.workers) {
        let holds = eventually(Duration::from_secs(60), || async {
            (fleet.held_candidate(&w.base).await? == candidate).then_some(())
        })
        .await;
        assert!(holds.is_some(), "{} never loaded the candidate", w.base);
    }
    let runs = 200;
    let mut started = Vec::new();
    for i in 0..runs {
        let id = format!("ramp-{i}");
        fleet
            .start_series(&id, fleet.series(user(&format!("r{i}"), "Ramp"), 2, false))
            .await;
        started.push(id);
    }
    let mut on_candidate = 0;
    for id in &started {
        let v = versions(&fleet.result(id).await);
        assert_eq!(v[0], v[1], "{id} ran two versions: {v:?}");
        assert!(v[0] == stable || v[0] == candidate, "{v:?}");
        on_candidate += usize::from(v[0] == candidate);
    }
    let share = on_candidate as f64 / runs as f64;
    println!("ramp 30%: {on_candidate} of {runs} runs on the candidate ({share:.3})");
    assert!((0.23..=0.37).contains(&share), "candidate share {share}");

    // A candidate that traps on a third of inputs, for every run: aborted by itself.
    let deployed = fleet
        .deploy(
            "rollout=ramp&ramp_percent=100&export=unruly-validate-user&allow_host=hosts.invalid",
            test_components::read(test_components::MISBEHAVING),
        )
        .await;
    let unruly = deployed["candidate"]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    for w in std::iter::once(&fleet.api).chain(&fleet.workers) {
        let holds = eventually(Duration::from_secs(60), || async {
            (fleet.held_candidate(&w.base).await? == unruly).then_some(())
        })
        .await;
        assert!(holds.is_some(), "{} never loaded the candidate", w.base);
    }
    // One watcher per host, from before the first call: when does it drop the candidate?
    let watchers: Vec<_> = std::iter::once(&fleet.api)
        .chain(&fleet.workers)
        .map(|w| {
            let (http, base, unruly) = (fleet.http.clone(), w.base.clone(), unruly.clone());
            tokio::spawn(async move {
                loop {
                    let text = http
                        .get(format!("{base}/metrics"))
                        .send()
                        .await
                        .ok()?
                        .text()
                        .await
                        .ok()?;
                    if held_in(&text).as_deref() != Some(unruly.as_str()) {
                        return Some(now_ms());
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
        })
        .collect();
    let mut started = Vec::new();
    for i in 0..30 {
        let id = format!("unruly-{i}");
        let name = if i % 3 == 0 { "trap" } else { "Fine" };
        let mut series = fleet.series(user(&format!("u{i}"), name), 1, false);
        // A trapped call retries until the abort reaches its host: 150 attempts 200 ms
        // apart, 30 s, however slow the machine. A run still trapping after that was pinned
        // to the aborted candidate (a host that had not heard of the abort re-pinned it).
        series.call.maximum_attempts = 150;
        fleet.start_series(&id, series).await;
        started.push(id);
    }
    // Every host drops the candidate; measured from the abort event's time.
    let aborted = eventually(Duration::from_secs(60), || async {
        let d = fleet.details(&fleet.api.base).await;
        let event = d["events"][0].clone();
        (event["kind"] == "abort").then_some(event)
    })
    .await
    .expect("the candidate was aborted");
    assert_eq!(aborted["by"], "automatic-abort", "{aborted}");
    println!("abort: {}", aborted["reason"]);
    let at_ms = aborted["at_ms"].as_u64().unwrap();
    let mut slowest = 0;
    for watcher in watchers {
        let dropped = tokio::time::timeout(Duration::from_secs(10), watcher)
            .await
            .expect("every host drops the candidate")
            .unwrap()
            .expect("the host answers /metrics");
        slowest = slowest.max(dropped.saturating_sub(at_ms));
    }
    println!("abort reached every host within {slowest} ms of its event (each polled every 10 ms)");
    assert!(
        slowest < 1000,
        "abort took {slowest} ms to reach every host"
    );

    // No workflow failed: the trapped calls were retried on the stable version.
    for id in &started {
        let results = fleet.result(id).await;
        assert!(results[0].failures.is_empty(), "{id}: {:?}", results[0]);
    }
    let details = fleet.details(&fleet.api.base).await;
    assert!(details["candidate"].is_null(), "{details}");
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_keeps_the_real_store_untouched_and_passes_an_identical_candidate() {
    let fleet = Fleet::start(1, &[]).await;
    let (http, base) = (fleet.http.clone(), fleet.api.base.clone());
    // A user created, then deleted: CreateUser's recorded input names a user that is gone.
    for action in ["create", "delete"] {
        let (id, run) = start(
            &http,
            &base,
            json!({"user_id": "verify-1", "email": "v@example.com", "name": "V", "action": action}),
        )
        .await;
        let done = wait_closed(&http, &base, &id, &run).await;
        assert_eq!(done["status"], "COMPLETED", "{done}");
    }
    let dir = tempfile::tempdir().unwrap();
    let create = dir.path().join("create.wasm");
    std::fs::write(&create, test_components::read(test_components::CREATE_USER)).unwrap();
    let report = eventually(Duration::from_secs(60), || async {
        let out = support::cli(
            &base,
            &[
                "verify",
                "CreateUser",
                create.to_str().unwrap(),
                "--kv-store",
                "users",
                "--output",
                "json",
            ],
        );
        let report: Value = serde_json::from_slice(&out.stdout).ok()?;
        (!report["cases"].as_array()?.is_empty()).then_some(report)
    })
    .await
    .expect("a report on the recorded CreateUser");
    assert_eq!(report["cases"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report["failed"], 0, "{report}");
    // The candidate created the user again, in its scratch layer only.
    let res = http
        .get(format!("{base}/api/v1/users/verify-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404, "the real store was written");

    // The same code as ValidateUser's active version: every case is the same; exit 0.
    for i in 0..3 {
        let (id, run) = start(
            &http,
            &base,
            json!({"user_id": format!("same-{i}"), "email": "s@example.com", "name": "S", "action": "create"}),
        )
        .await;
        wait_closed(&http, &base, &id, &run).await;
    }
    let same = dir.path().join("same.wasm");
    std::fs::write(&same, same_code("identical")).unwrap();
    let (out, text) = eventually(Duration::from_secs(60), || async {
        let out = support::cli(
            &base,
            &[
                "verify",
                "ValidateUser",
                same.to_str().unwrap(),
                "--last",
                "3",
            ],
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.contains("on 3 recorded").then_some((out, text))
    })
    .await
    .expect("a report on three recorded calls");
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("3 same, 0 different, 0 failed"), "{text}");

    // docs/operations.md's rollout commands, run as written.
    std::fs::write(dir.path().join("validate_user_v2.wasm"), same_code("v2")).unwrap();
    std::fs::write(dir.path().join("validate_user_v3.wasm"), same_code("v3")).unwrap();
    let blocks = support::docs::section_sh_blocks("operations.md", "Rolling out a new version");
    assert_eq!(blocks.len(), 2, "{blocks:?}");
    for block in &blocks {
        support::docs::run_sh_block(block, dir.path(), &[("ACTIVITY_HOST_API", &base)]);
    }
    let details = get_json(&http, format!("{base}/api/v1/activities/ValidateUser")).await;
    let kinds: Vec<&str> = details["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds[..5],
        ["abort", "deploy", "promote", "ramp", "deploy"],
        "{details}"
    );
    assert_eq!(details["events"][0]["reason"], "errors in staging");
    assert_eq!(
        details["active_digest"],
        activity_runtime::ComponentDigest::of(&same_code("v2")).as_str()
    );
    assert!(details["candidate"].is_null());

    // Bad input: not a component, parameters that do not fit, an unknown type, a bad `last`.
    let post = |path: &str, body: Vec<u8>| {
        http.post(format!("{base}{path}"))
            .header("content-type", "application/wasm")
            .body(body)
    };
    support::assert_errors(vec![
        (
            post(
                "/api/v1/activities/ValidateUser/verify",
                b"not wasm".to_vec(),
            ),
            422,
            "component_refused",
        ),
        (
            post(
                "/api/v1/activities/ValidateUser/verify?export=add&allow_host=hosts.invalid",
                test_components::read(test_components::MISBEHAVING),
            ),
            422,
            "signature_mismatch",
        ),
        (
            post("/api/v1/activities/Nope/verify", same_code("x")),
            404,
            "activity_not_found",
        ),
        (
            post(
                "/api/v1/activities/ValidateUser/verify?last=0",
                same_code("x"),
            ),
            400,
            "invalid_parameter",
        ),
        (
            http.post(format!("{base}/api/v1/activities/ValidateUser/promote")),
            409,
            "no_candidate",
        ),
        (
            http.post(format!("{base}/api/v1/activities/ValidateUser/ramp"))
                .json(&json!({"percent": 101})),
            400,
            "invalid_ramp",
        ),
        (
            http.put(format!(
                "{base}/api/v1/activities/ValidateUser?rollout=sideways"
            ))
            .header("content-type", "application/wasm")
            .body(same_code("y")),
            400,
            "invalid_parameter",
        ),
    ])
    .await;
}
