//! The reference activities called through the runtime with valid and invalid JSON.

use crate::support;

use std::sync::Arc;

use activity_runtime::{kinds, ActivitySpec, KeyPage, KeyValueBackend, KeyValueError, Runtime};
use activity_sqlite::SqliteKeyValue;
use serde_json::json;
use support::{call, load, reference_spec, runtime};
use test_support::HttpSink;

fn seed_user() -> serde_json::Value {
    json!({"user_id": "user-123", "email": "test@example.com", "name": "Test User"})
}

#[tokio::test]
async fn validate_user_accepts_a_good_user_and_names_every_bad_field() {
    let rt = runtime();
    let a = load(
        &rt,
        reference_spec("ValidateUser"),
        test_components::VALIDATE_USER,
    )
    .await;
    let ok = call(&rt, &a, json!([seed_user()])).await.unwrap();
    assert_eq!(ok, json!({"valid": true, "reasons": []}));

    // A workflow may pass its whole input, `action` included: extra keys are ignored.
    let with_action =
        json!([{"user_id": "u1", "email": "a@b.io", "name": "A", "action": "create"}]);
    assert_eq!(
        call(&rt, &a, with_action).await.unwrap()["valid"],
        json!(true)
    );

    let bad = call(
        &rt,
        &a,
        json!([{"user_id": "", "email": "nope", "name": ""}]),
    )
    .await
    .unwrap();
    assert_eq!(bad["valid"], json!(false));
    let reasons: Vec<&str> = bad["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(
        reasons[0].starts_with("user_id:")
            && reasons[1].starts_with("email:")
            && reasons[2].starts_with("name:")
    );
}

#[tokio::test]
async fn wrong_json_names_the_field_path_and_expected_type() {
    let rt = runtime();
    let a = load(
        &rt,
        reference_spec("ValidateUser"),
        test_components::VALIDATE_USER,
    )
    .await;
    let err = call(&rt, &a, json!([{"user_id": "u", "email": 5, "name": "n"}]))
        .await
        .unwrap_err();
    assert_eq!(err.kind, kinds::INVALID_ARGUMENTS);
    assert!(err.non_retryable);
    assert!(
        err.message.contains("argument 0 (user).email"),
        "{}",
        err.message
    );
    assert!(err.message.contains("expected string"), "{}", err.message);

    let missing = call(&rt, &a, json!([{"user_id": "u", "email": "a@b.io"}]))
        .await
        .unwrap_err();
    assert!(
        missing.message.contains("(user).name") && missing.message.contains("missing"),
        "{}",
        missing.message
    );

    let count = call(&rt, &a, json!([])).await.unwrap_err();
    assert!(
        count.message.contains("expected 1 argument(s), found 0"),
        "{}",
        count.message
    );
}

#[tokio::test]
async fn create_update_delete_cycle_is_idempotent() {
    let rt = runtime();
    let create = load(
        &rt,
        reference_spec("CreateUser"),
        test_components::CREATE_USER,
    )
    .await;
    let update = load(
        &rt,
        reference_spec("UpdateUser"),
        test_components::UPDATE_USER,
    )
    .await;
    let delete = load(
        &rt,
        reference_spec("DeleteUser"),
        test_components::DELETE_USER,
    )
    .await;

    let created = call(&rt, &create, json!([seed_user()])).await.unwrap();
    assert_eq!(created["user_id"], "user-123");
    assert_eq!(created["version"], 1);
    // The same user again is a no-op answering the stored record.
    let again = call(&rt, &create, json!([seed_user()])).await.unwrap();
    assert_eq!(again, created);
    // A different user under the same id is a typed, non-retryable conflict.
    let conflict = call(
        &rt,
        &create,
        json!([{"user_id": "user-123", "email": "other@example.com", "name": "X"}]),
    )
    .await
    .unwrap_err();
    assert_eq!(conflict.kind, "Conflict");
    assert!(conflict.non_retryable);
    assert_eq!(
        conflict.details.as_ref().unwrap()["conflict"]["email"],
        "test@example.com"
    );

    let updated = call(
        &rt,
        &update,
        json!([{"user_id": "user-123", "email": "new@example.com", "name": "New"}]),
    )
    .await
    .unwrap();
    assert_eq!(updated["version"], 2);
    assert_eq!(updated["email"], "new@example.com");
    assert_eq!(updated["created_at_ms"], created["created_at_ms"]);

    assert_eq!(
        call(&rt, &delete, json!(["user-123"])).await.unwrap(),
        json!(true)
    );
    assert_eq!(
        call(&rt, &delete, json!(["user-123"])).await.unwrap(),
        json!(false)
    );

    let missing = call(&rt, &update, json!([seed_user()])).await.unwrap_err();
    assert_eq!(missing.kind, "NotFound");
    assert!(missing.non_retryable);
    assert!(missing.message.contains("user-123"), "{}", missing.message);
}

#[tokio::test]
async fn create_refuses_invalid_users_without_storing() {
    let rt = runtime();
    let create = load(
        &rt,
        reference_spec("CreateUser"),
        test_components::CREATE_USER,
    )
    .await;
    let err = call(
        &rt,
        &create,
        json!([{"user_id": "x", "email": "bad", "name": "N"}]),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, "Invalid");
    assert!(err.message.starts_with("email:"), "{}", err.message);
    let update = load(
        &rt,
        reference_spec("UpdateUser"),
        test_components::UPDATE_USER,
    )
    .await;
    let not_there = call(
        &rt,
        &update,
        json!([{"user_id": "x", "email": "a@b.io", "name": "N"}]),
    )
    .await
    .unwrap_err();
    assert_eq!(not_there.kind, "NotFound");
}

#[tokio::test]
async fn send_notification_posts_json_to_the_webhook() {
    let sink = HttpSink::start(200).await;
    let rt = runtime();
    let mut spec = reference_spec("SendNotification");
    spec.grants.allowed_hosts = vec![sink.addr.to_string()];
    spec.grants
        .config
        .insert("webhook_url".into(), sink.url("/hooks/users"));
    let a = load(&rt, spec, test_components::SEND_NOTIFICATION).await;
    let n = json!({"user_id": "user-123", "email": "test@example.com", "action": "create", "message": "welcome"});
    let out = call(&rt, &a, json!([n])).await.unwrap();
    assert_eq!(out["status"], 200);
    let got = sink.requests();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].method, "POST");
    assert_eq!(got[0].path, "/hooks/users");
    assert_eq!(got[0].headers["content-type"], "application/json");
    let body: serde_json::Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body["user_id"], "user-123");
    assert_eq!(body["action"], "create");
    assert_eq!(body["message"], "welcome");
}

#[tokio::test]
async fn send_notification_maps_webhook_errors_to_retry_decisions() {
    let rt = runtime();
    for (status, kind, non_retryable) in [
        (503, "WebhookUnavailable", false),
        (400, "WebhookRejected", true),
    ] {
        let sink = HttpSink::start(status).await;
        let mut spec = reference_spec("SendNotification");
        spec.grants.allowed_hosts = vec![sink.addr.to_string()];
        spec.grants
            .config
            .insert("webhook_url".into(), sink.url("/"));
        let a = load(&rt, spec, test_components::SEND_NOTIFICATION).await;
        let n = json!({"user_id": "u", "email": "a@b.io", "action": "delete", "message": ""});
        let err = call(&rt, &a, json!([n])).await.unwrap_err();
        assert_eq!(
            (err.kind.as_str(), err.non_retryable),
            (kind, non_retryable),
            "{err}"
        );
    }
}

/// SendNotification imports outgoing HTTP, so it needs a grant even when no webhook is set;
/// without one it records notifications in the `notifications` store.
fn notifier_without_webhook() -> ActivitySpec {
    let mut spec = ActivitySpec::new("SendNotification");
    spec.grants.allowed_hosts = vec!["hooks.invalid".into()];
    spec.grants.key_value_stores = vec!["notifications".into()];
    spec
}

#[tokio::test]
async fn send_notification_without_webhook_is_recorded_by_the_host() {
    let kv = Arc::new(SqliteKeyValue::in_memory().unwrap());
    let rt = Runtime::new(&support::small_pool())
        .unwrap()
        .with_key_value(kv.clone());
    let a = load(
        &rt,
        notifier_without_webhook(),
        test_components::SEND_NOTIFICATION,
    )
    .await;
    let n = json!({"user_id": "u", "email": "a@b.io", "action": "update", "message": "hi"});
    let out = call(&rt, &a, json!([n])).await.unwrap();
    assert_eq!(out, json!({"target": "host-log", "status": null}));
    // Recorded before the call answered, under its workflow and activity id (a retry
    // writes the same key again).
    let keys = kv.list_keys("notifications", None).unwrap().keys;
    assert_eq!(keys.len(), 1, "{keys:?}");
    let stored: serde_json::Value =
        serde_json::from_slice(&kv.get("notifications", &keys[0]).unwrap().unwrap()).unwrap();
    assert_eq!(stored["action"], "update", "{stored}");
    assert!(stored["recorded_at_ms"].as_u64().unwrap() > 0, "{stored}");
}

/// A key-value backend whose every operation fails.
struct Down;

impl KeyValueBackend for Down {
    fn get(&self, _: &str, _: &str) -> Result<Option<Vec<u8>>, KeyValueError> {
        Err(KeyValueError::Backend("down".into()))
    }
    fn set(&self, _: &str, _: &str, _: &[u8]) -> Result<(), KeyValueError> {
        Err(KeyValueError::Backend("down".into()))
    }
    fn delete(&self, _: &str, _: &str) -> Result<(), KeyValueError> {
        Err(KeyValueError::Backend("down".into()))
    }
    fn exists(&self, _: &str, _: &str) -> Result<bool, KeyValueError> {
        Err(KeyValueError::Backend("down".into()))
    }
    fn list_keys(&self, _: &str, _: Option<u64>) -> Result<KeyPage, KeyValueError> {
        Err(KeyValueError::Backend("down".into()))
    }
}

#[tokio::test]
async fn a_notification_that_cannot_be_recorded_fails_retryably() {
    let rt = Runtime::new(&support::small_pool())
        .unwrap()
        .with_key_value(Arc::new(Down));
    let a = load(
        &rt,
        notifier_without_webhook(),
        test_components::SEND_NOTIFICATION,
    )
    .await;
    let n = json!({"user_id": "u", "email": "a@b.io", "action": "create", "message": "hi"});
    let failed = call(&rt, &a, json!([n])).await.unwrap_err();
    assert!(!failed.non_retryable, "{failed:?}");
    assert_eq!(failed.kind, "NotificationNotRecorded", "{failed:?}");
}

#[tokio::test]
async fn unknown_enum_case_is_refused() {
    let rt = runtime();
    let a = load(
        &rt,
        notifier_without_webhook(),
        test_components::SEND_NOTIFICATION,
    )
    .await;
    let n = json!({"user_id": "u", "email": "a@b.io", "action": "explode", "message": "hi"});
    let err = call(&rt, &a, json!([n])).await.unwrap_err();
    assert_eq!(err.kind, kinds::INVALID_ARGUMENTS);
    assert!(
        err.message.contains("(notification).action"),
        "{}",
        err.message
    );
    assert!(err.message.contains("\"create\""), "{}", err.message);
}
