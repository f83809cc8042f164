//! SendNotification: posts a notification as JSON to the webhook URL in its config
//! (`webhook_url`) through `wasi:http/outgoing-handler`. Without a webhook it records the
//! notification in the host's `notifications` key-value store (under its workflow and
//! activity id, so a retry writes the same record again) before it answers; a store that
//! cannot be written fails the call retryably, so no notification is reported sent and lost.

wit_bindgen::generate!({ path: "../../wit", world: "send-notification", generate_all });

use activity_host::activity::context;
use activity_host::activity::types::Failure;
use activity_host::users::types::Action;
use wasi::http::outgoing_handler;
use wasi::http::types::{Fields, Method, OutgoingBody, OutgoingRequest, Scheme};
use wasi::logging::logging::{log, Level};

/// Config key that holds the webhook URL.
const WEBHOOK_URL_KEY: &str = "webhook_url";
/// Config key of the webhook's bearer token: deploy with the secret `webhook_token` granted
/// and the guest holds only its placeholder; the host sends the value to the secret's hosts.
const WEBHOOK_TOKEN_KEY: &str = "webhook_token";
/// Key-value store of the notifications recorded without a webhook.
const NOTIFICATIONS_STORE: &str = "notifications";
/// Largest chunk `blocking-write-and-flush` accepts.
const WRITE_CHUNK: usize = 4096;

struct SendNotification;

impl Guest for SendNotification {
    fn send_notification(notification: Notification) -> Result<Delivery, UserError> {
        let info = context::info();
        let mut record = serde_json::json!({
            "user_id": notification.user_id,
            "email": notification.email,
            "action": match notification.action {
                Action::Create => "create",
                Action::Update => "update",
                Action::Delete => "delete",
            },
            "message": notification.message,
            "workflow_id": info.workflow_id,
            "activity_id": info.activity_id,
        });
        let body = record.to_string();
        let url = wasi::config::store::get(WEBHOOK_URL_KEY).map_err(|e| {
            failure(
                "ConfigUnavailable",
                format!("could not read config: {e:?}"),
                false,
            )
        })?;
        match url.filter(|u| !u.is_empty()) {
            None => {
                let at_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
                record["recorded_at_ms"] = at_ms.into();
                let key = format!(
                    "{}/{}",
                    info.workflow_id.unwrap_or_default(),
                    info.activity_id
                );
                let not_recorded = |e: wasi::keyvalue::store::Error| {
                    failure(
                        "NotificationNotRecorded",
                        format!("the host's notifications store: {e:?}"),
                        false,
                    )
                };
                wasi::keyvalue::store::open(NOTIFICATIONS_STORE)
                    .and_then(|bucket| bucket.set(&key, record.to_string().as_bytes()))
                    .map_err(not_recorded)?;
                log(Level::Info, "notification", &body);
                Ok(Delivery {
                    target: "host-log".into(),
                    status: None,
                })
            }
            Some(url) => {
                let key = format!(
                    "{}/{}",
                    info.workflow_id.unwrap_or_default(),
                    info.activity_id
                );
                let status = post_json(&url, &body, &key)?;
                match status {
                    200..=299 => Ok(Delivery {
                        target: url,
                        status: Some(status),
                    }),
                    408 | 429 | 500..=599 => Err(failure(
                        "WebhookUnavailable",
                        format!("webhook {url} answered {status}"),
                        false,
                    )),
                    _ => Err(failure(
                        "WebhookRejected",
                        format!("webhook {url} answered {status}"),
                        true,
                    )),
                }
            }
        }
    }
}

fn failure(kind: &str, message: String, non_retryable: bool) -> UserError {
    UserError::Failed(Failure {
        message,
        type_: Some(kind.into()),
        non_retryable,
        details: None,
    })
}

/// Posts `body` to `url` and answers the response status.
fn post_json(url: &str, body: &str, idempotency_key: &str) -> Result<u16, UserError> {
    let bad_url = |why: &str| {
        failure(
            "InvalidWebhookUrl",
            format!("webhook URL {url:?} {why}"),
            true,
        )
    };
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad_url("has no scheme"))?;
    let scheme = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        _ => return Err(bad_url("must start with http:// or https://")),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(bad_url("has no host"));
    }
    let token = wasi::config::store::get(WEBHOOK_TOKEN_KEY)
        .ok()
        .flatten()
        .filter(|t| !t.is_empty());
    let mut fields = vec![
        ("content-type".to_string(), b"application/json".to_vec()),
        (
            "content-length".to_string(),
            body.len().to_string().into_bytes(),
        ),
        (
            "idempotency-key".to_string(),
            idempotency_key.as_bytes().to_vec(),
        ),
    ];
    if let Some(token) = token {
        fields.push((
            "authorization".to_string(),
            format!("Bearer {token}").into_bytes(),
        ));
    }
    let headers = Fields::from_list(&fields)
        .map_err(|e| failure("InvalidWebhookRequest", format!("{e:?}"), true))?;
    let request = OutgoingRequest::new(headers);
    let set = request
        .set_method(&Method::Post)
        .and_then(|_| request.set_scheme(Some(&scheme)))
        .and_then(|_| request.set_authority(Some(authority)))
        .and_then(|_| request.set_path_with_query(Some(path)));
    if set.is_err() {
        return Err(bad_url("is not a valid request target"));
    }
    let outgoing = request
        .body()
        .map_err(|_| failure("InvalidWebhookRequest", "body taken twice".into(), true))?;
    let send_error = |e: String| {
        failure(
            "WebhookUnavailable",
            format!("could not call webhook {url}: {e}"),
            false,
        )
    };
    let response =
        outgoing_handler::handle(request, None).map_err(|e| send_error(format!("{e:?}")))?;
    {
        let stream = outgoing
            .write()
            .map_err(|_| send_error("body stream unavailable".into()))?;
        for chunk in body.as_bytes().chunks(WRITE_CHUNK) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| send_error(format!("{e:?}")))?;
        }
    }
    OutgoingBody::finish(outgoing, None).map_err(|e| send_error(format!("{e:?}")))?;
    response.subscribe().block();
    let incoming = response
        .get()
        .ok_or_else(|| send_error("no response".into()))?
        .map_err(|_| send_error("response taken twice".into()))?
        .map_err(|e| send_error(format!("{e:?}")))?;
    Ok(incoming.status())
}

export!(SendNotification);
