//! The worker against the real Temporal dev server, with real components.

mod support;

use std::time::{Duration, Instant};

use activity_runtime::ActivitySpec;
use activity_worker::workflow::{Action, UserRequest};
use activity_worker::{UserWorkflow, WorkerSettings};
use serde_json::json;
use support::caller::{self, CallRequest};
use support::Harness;
use temporalio_client::errors::WorkflowGetResultError;
use temporalio_client::{WorkflowGetResultOptions, WorkflowStartOptions};

fn request(user_id: &str, email: &str, name: &str, action: Action) -> UserRequest {
    UserRequest {
        user_id: user_id.into(),
        email: email.into(),
        name: name.into(),
        action,
        activity_mode: Default::default(),
    }
}

async fn run_user(
    h: &Harness,
    id: &str,
    req: UserRequest,
) -> Result<activity_worker::workflow::UserOutcome, WorkflowGetResultError> {
    let handle = h
        .client
        .start_workflow(
            UserWorkflow::run,
            req,
            WorkflowStartOptions::new(h.task_queue.clone(), id).build(),
        )
        .await
        .unwrap();
    handle.get_result(WorkflowGetResultOptions::default()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn create_update_delete_cycle_through_temporal() {
    let h = Harness::start().await;
    let created = run_user(
        &h,
        "wf-create",
        request("user-123", "test@example.com", "Test User", Action::Create),
    )
    .await
    .unwrap();
    assert_eq!(created.user.as_ref().unwrap()["email"], "test@example.com");
    assert_eq!(created.notification.as_ref().unwrap()["status"], 200);
    assert_eq!(h.stored_user("user-123").unwrap()["name"], "Test User");

    let updated = run_user(
        &h,
        "wf-update",
        request("user-123", "new@example.com", "New Name", Action::Update),
    )
    .await
    .unwrap();
    assert_eq!(updated.user.as_ref().unwrap()["version"], 2);
    assert_eq!(
        h.stored_user("user-123").unwrap()["email"],
        "new@example.com"
    );

    let deleted = run_user(&h, "wf-delete", request("user-123", "", "", Action::Delete))
        .await
        .unwrap();
    assert_eq!(deleted.deleted, Some(true));
    assert!(h.stored_user("user-123").is_none());

    let notes = h.sink.requests();
    let actions: Vec<String> = notes
        .iter()
        .map(|r| {
            serde_json::from_str::<serde_json::Value>(&r.body).unwrap()["action"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(actions, ["create", "update", "delete"]);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_users_fail_the_workflow_without_retries_or_writes() {
    let h = Harness::start().await;
    let err = run_user(
        &h,
        "wf-invalid",
        request("user-9", "not-an-email", "", Action::Create),
    )
    .await
    .unwrap_err();
    let WorkflowGetResultError::Failed(failure) = err else {
        panic!("expected a failure, got {err:?}")
    };
    let text = format!("{failure:?}");
    assert!(text.contains("InvalidUser"), "{text}");
    assert!(text.contains("email:") && text.contains("name:"), "{text}");
    assert!(h.stored_user("user-9").is_none());
    assert!(h.sink.requests().is_empty());
    // The workflow failed at once: one ValidateUser attempt, no retry of the workflow.
    let history = h
        .server
        .cli(&[
            "workflow",
            "show",
            "--workflow-id",
            "wf-invalid",
            "-o",
            "json",
        ])
        .unwrap();
    let history = String::from_utf8_lossy(&history.stdout);
    assert_eq!(
        history.matches("\"ActivityTaskScheduled\"").count()
            + history
                .matches("EVENT_TYPE_ACTIVITY_TASK_SCHEDULED")
                .count(),
        1,
        "{history}"
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn workflows_call_activities_by_name_with_json() {
    let h = Harness::start().await;
    let queue = format!("caller-{}", test_support::free_port());
    let _caller = caller::start_caller_worker(&h.server.address, &queue);
    let user = json!({"user_id": "by-name", "email": "a@b.io", "name": "By Name"});
    let calls = [
        (
            "ValidateUser",
            vec![user.clone()],
            json!({"valid": true, "reasons": []}),
        ),
        ("DeleteUser", vec![json!("nobody")], json!(false)),
    ];
    for (i, (activity, args, expected)) in calls.into_iter().enumerate() {
        let out = caller::call(
            &h.client,
            &queue,
            &format!("by-name-{i}"),
            CallRequest::new(activity, args, &h.task_queue),
        )
        .await;
        assert_eq!(out.output, Some(expected), "{activity}: {out:?}");
    }
    let created = caller::call(
        &h.client,
        &queue,
        "by-name-create",
        CallRequest::new("CreateUser", vec![user], &h.task_queue),
    )
    .await;
    assert_eq!(created.output.unwrap()["version"], 1);
    assert_eq!(h.stored_user("by-name").unwrap()["email"], "a@b.io");
    let n = json!({"user_id": "by-name", "email": "a@b.io", "action": "create", "message": "hi"});
    let sent = caller::call(
        &h.client,
        &queue,
        "by-name-notify",
        CallRequest::new("SendNotification", vec![n], &h.task_queue),
    )
    .await;
    assert_eq!(sent.output.unwrap()["status"], 200);

    // A typed error from the guest arrives as a non-retryable failure of its case name.
    let missing = json!({"user_id": "ghost", "email": "g@b.io", "name": "G"});
    let failed = caller::call(
        &h.client,
        &queue,
        "by-name-missing",
        CallRequest::new("UpdateUser", vec![missing], &h.task_queue),
    )
    .await;
    assert!(
        failed.failures.iter().any(|(k, _)| k == "NotFound"),
        "{failed:?}"
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_activity_deployed_while_a_workflow_waits_lets_it_finish() {
    let h = Harness::start().await;
    let queue = format!("caller-{}", test_support::free_port());
    let _caller = caller::start_caller_worker(&h.server.address, &queue);
    let mut req = CallRequest::new(
        "CheckUser",
        vec![json!({"user_id": "u", "email": "a@b.io", "name": "N"})],
        &h.task_queue,
    );
    req.maximum_attempts = 0;
    let client = h.client.clone();
    let waiting =
        tokio::spawn(async move { caller::call(&client, &queue, "late-deploy", req).await });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!waiting.is_finished());
    h.deploy(
        ActivitySpec::new("CheckUser"),
        test_components::VALIDATE_USER,
    )
    .await;
    let out = tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.output, Some(json!({"valid": true, "reasons": []})));
    h.shutdown().await;
}

fn misbehaving(export: &str, activity_type: &str) -> ActivitySpec {
    let mut spec = ActivitySpec::new(activity_type);
    spec.export = Some(export.into());
    spec.grants.allowed_hosts = vec!["hosts.invalid".into()];
    spec
}

#[tokio::test(flavor = "multi_thread")]
async fn heartbeat_details_survive_a_retry() {
    let h = Harness::start().await;
    h.deploy(
        misbehaving("heartbeat-then-fail", "HeartbeatThenFail"),
        test_components::MISBEHAVING,
    )
    .await;
    let queue = format!("caller-{}", test_support::free_port());
    let _caller = caller::start_caller_worker(&h.server.address, &queue);
    let mut req = CallRequest::new("HeartbeatThenFail", vec![], &h.task_queue);
    req.heartbeat_timeout_ms = Some(5_000);
    let out = caller::call(&h.client, &queue, "heartbeat-retry", req).await;
    assert_eq!(out.output, Some(json!("{\"n\":0}")), "{out:?}");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cancellation_reaches_the_guest() {
    // A grace period (600 s) and a start-to-close timeout (120 s) both beyond the bound
    // below: an answer within it can only come from the guest noticing the cancellation
    // itself, never from the interruption or the timeout.
    let h = Harness::start_with(WorkerSettings {
        cancel_grace_ms: 600_000,
        ..WorkerSettings::default()
    })
    .await;
    h.deploy(
        misbehaving("spin-until-cancelled", "SpinUntilCancelled"),
        test_components::MISBEHAVING,
    )
    .await;
    let queue = format!("caller-{}", test_support::free_port());
    let _caller = caller::start_caller_worker(&h.server.address, &queue);
    let mut req = CallRequest::new("SpinUntilCancelled", vec![], &h.task_queue);
    req.start_to_close_ms = 120_000;
    req.heartbeat_timeout_ms = Some(2_000);
    req.cancel_after_ms = Some(1_000);
    let started = Instant::now();
    let out = caller::call(&h.client, &queue, "cancel-guest", req).await;
    assert!(out.cancelled, "{out:?}");
    assert!(
        started.elapsed() < Duration::from_secs(100),
        "took {:?}",
        started.elapsed()
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_looping_guest_is_stopped_at_its_start_to_close_timeout() {
    let h = Harness::start().await;
    h.deploy(misbehaving("spin", "Spin"), test_components::MISBEHAVING)
        .await;
    let queue = format!("caller-{}", test_support::free_port());
    let _caller = caller::start_caller_worker(&h.server.address, &queue);
    let mut req = CallRequest::new("Spin", vec![], &h.task_queue);
    req.start_to_close_ms = 1_000;
    req.maximum_attempts = 1;
    let out = caller::call(&h.client, &queue, "spin-timeout", req).await;
    assert!(out.output.is_none());
    assert!(
        out.failures
            .iter()
            .any(|(k, _)| k == "TimeLimitExceeded" || k.starts_with("Timeout")),
        "{out:?}"
    );
    // The worker keeps serving.
    let ok = run_user(
        &h,
        "after-spin",
        request("after-spin", "a@b.io", "After", Action::Create),
    )
    .await
    .unwrap();
    assert_eq!(ok.user.unwrap()["user_id"], "after-spin");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_activity_type_that_is_not_deployed_is_a_retryable_failure_naming_it() {
    let h = Harness::start().await;
    let queue = format!("caller-{}", test_support::free_port());
    let _caller = caller::start_caller_worker(&h.server.address, &queue);
    let mut req = CallRequest::new("NoSuchActivity", vec![], &h.task_queue);
    req.maximum_attempts = 2;
    let out = caller::call(&h.client, &queue, "not-deployed", req).await;
    let (kind, message) = out
        .failures
        .iter()
        .find(|(k, _)| k == "ActivityNotDeployed")
        .expect("ActivityNotDeployed");
    assert_eq!(kind, "ActivityNotDeployed");
    assert!(
        message.contains("NoSuchActivity") && message.contains("ValidateUser"),
        "{message}"
    );
    h.shutdown().await;
}
