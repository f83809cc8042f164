//! UserWorkflow's in-process mode: its WASM activities run as Temporal local activities on
//! the host that runs the workflow, in the same sandbox, with the version of each call in
//! the history, the same typed failures, and histories that replay deterministically.

use crate::support;

use std::collections::HashMap;
use std::time::Duration;

use activity_worker::payload::VERSION_METADATA;
use activity_worker::UserWorkflow;
use serde_json::{json, Value};
use support::{get_json, start, wait_closed_within, Session};
use temporalio_client::{
    WorkflowExecutionInfo, WorkflowFetchHistoryOptions, WorkflowHandle, WorkflowHistory,
};
use temporalio_common::protos::temporal::api::enums::v1::EventType;
use temporalio_common::protos::temporal::api::history::v1::History;
use temporalio_common::protos::temporal::api::history::v1::{
    history_event::Attributes, HistoryEvent,
};
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};

/// The events of a run, from Temporal.
async fn history(session: &Session, id: &str, run_id: &str) -> Vec<HistoryEvent> {
    let client = activity_worker::connect(&session.server.address, "default")
        .await
        .unwrap();
    let handle: WorkflowHandle<_, UserWorkflow> = WorkflowHandle::new(
        client,
        WorkflowExecutionInfo::builder()
            .namespace("default".to_string())
            .workflow_id(id.to_string())
            .run_id(run_id.to_string())
            .build(),
    );
    handle
        .fetch_history(WorkflowFetchHistoryOptions::default())
        .into_events()
        .await
        .unwrap()
}

/// The activity-host-version metadata of every activity result in the history: from
/// ActivityTaskCompleted events (remote) and local activity markers (local).
fn versions(events: &[HistoryEvent]) -> (Vec<String>, Vec<String>) {
    let version = |metadata: &HashMap<String, Vec<u8>>| {
        metadata
            .get(VERSION_METADATA)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    let (mut remote, mut local) = (Vec::new(), Vec::new());
    for e in events {
        match &e.attributes {
            Some(Attributes::ActivityTaskCompletedEventAttributes(a)) => remote.extend(
                a.result
                    .iter()
                    .flat_map(|p| &p.payloads)
                    .filter_map(|p| version(&p.metadata)),
            ),
            Some(Attributes::MarkerRecordedEventAttributes(m)) => local.extend(
                m.details
                    .get("result")
                    .iter()
                    .flat_map(|p| &p.payloads)
                    .filter_map(|p| version(&p.metadata)),
            ),
            _ => {}
        }
    }
    (remote, local)
}

fn count(events: &[HistoryEvent], kind: EventType) -> usize {
    events.iter().filter(|e| e.event_type() == kind).count()
}

fn create(user_id: &str, mode: &str) -> Value {
    json!({"user_id": user_id, "email": "same@example.com", "name": "Local Test",
           "action": "create", "activity_mode": mode})
}

#[tokio::test(flavor = "multi_thread")]
async fn the_in_process_mode_gives_the_same_result_and_store_with_versions_and_replays() {
    let session = Session::start().await;
    let (http, base) = (&session.http, &session.base);
    let digests: HashMap<String, String> = get_json(http, format!("{base}/api/v1/activities"))
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_string(),
                a["active_digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();

    let mut runs = Vec::new();
    for (user, mode) in [("mode-remote", "remote"), ("mode-local", "local")] {
        let (id, run) = start(http, base, create(user, mode)).await;
        let done = wait_closed_within(http, base, &id, &run, Duration::from_secs(60)).await;
        assert_eq!(done["status"], "COMPLETED", "{mode}: {done}");
        let stored = get_json(http, format!("{base}/api/v1/users/{user}")).await;
        runs.push((mode, id, run, done, stored));
    }
    // Same result and same stored user, but for the ids and clocks.
    let strip = |v: &Value| {
        let mut v = v.clone();
        for key in ["user_id", "created_at_ms", "updated_at_ms"] {
            if let Some(o) = v.as_object_mut() {
                o.remove(key);
            }
            if let Some(o) = v["user"].as_object_mut() {
                o.remove(key);
            }
        }
        v
    };
    let (remote, local) = (&runs[0], &runs[1]);
    assert_eq!(
        strip(&remote.3["result"]["user"]),
        strip(&local.3["result"]["user"])
    );
    assert_eq!(
        remote.3["result"]["notification"],
        local.3["result"]["notification"]
    );
    assert_eq!(strip(&remote.4), strip(&local.4));

    // Each call's version is in the history: remote as activity results, local in markers.
    let expected: Vec<String> = ["ValidateUser", "CreateUser", "SendNotification"]
        .iter()
        .map(|n| digests[*n].clone())
        .collect();
    let mut histories = Vec::new();
    for (mode, id, run, _, _) in &runs {
        let events = history(&session, id, run).await;
        let (remote_versions, local_versions) = versions(&events);
        match *mode {
            "remote" => {
                assert_eq!(remote_versions, expected, "remote versions");
                assert!(local_versions.is_empty());
                assert_eq!(count(&events, EventType::ActivityTaskScheduled), 3);
            }
            _ => {
                assert_eq!(local_versions, expected, "local versions");
                assert!(remote_versions.is_empty());
                assert_eq!(count(&events, EventType::ActivityTaskScheduled), 0);
                assert_eq!(count(&events, EventType::MarkerRecorded), 3);
            }
        }
        histories.push(WorkflowHistory::from(History { events }));
    }

    // Both histories replay against the workflow code: the mode is in the run's input, so
    // what the host's configuration says now does not matter.
    let options = WorkflowReplayerOptions::new()
        .register_workflow_with_factory::<UserWorkflow, _>(UserWorkflow::default)
        .unwrap()
        .build();
    let replayer = WorkflowReplayer::new(options).unwrap();
    for (history, (mode, ..)) in histories.into_iter().zip(&runs) {
        replayer
            .replay_workflow(history)
            .await
            .unwrap_or_else(|e| panic!("{mode} history does not replay: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trap_and_a_time_limit_fail_the_activity_with_the_same_types_in_both_modes() {
    let session = Session::start_with(|c| {
        c.worker.user_workflow.maximum_attempts = 2;
    })
    .await;
    let (http, base) = (&session.http, &session.base);
    // ValidateUser replaced by one that traps or spins, by the user's name.
    let component = std::fs::read(test_components::MISBEHAVING).unwrap();
    let res = http
        .put(format!(
            "{base}/api/v1/activities/ValidateUser?export=unruly-validate-user&allow_host=hosts.invalid&max_execution_ms=1000"
        ))
        .header("content-type", "application/wasm")
        .body(component)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());

    for mode in ["remote", "local"] {
        for (name, failure) in [("trap", "GuestTrap"), ("spin", "TimeLimitExceeded")] {
            let user = format!("unruly-{name}-{mode}");
            let body = json!({"user_id": user, "email": "u@example.com", "name": name,
                              "action": "create", "activity_mode": mode});
            let (id, run) = start(http, base, body).await;
            let done = wait_closed_within(http, base, &id, &run, Duration::from_secs(60)).await;
            assert_eq!(done["status"], "FAILED", "{mode}/{name}: {done}");
            let text = done["error"].to_string();
            assert!(text.contains(failure), "{mode}/{name}: {text}");
            let events = history(&session, &id, &run).await;
            // The activity failed; no workflow task did.
            assert_eq!(
                count(&events, EventType::WorkflowTaskFailed),
                0,
                "{mode}/{name}: a workflow task failed"
            );
            assert_eq!(
                count(&events, EventType::WorkflowExecutionFailed),
                1,
                "{mode}/{name}"
            );
        }
    }
}
