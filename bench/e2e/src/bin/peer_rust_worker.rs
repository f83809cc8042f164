//! The reference `UserWorkflow` and its five activities as a plain Temporal Rust SDK worker:
//! the same workflow code as activity-host, activities as ordinary Rust functions doing the
//! same work (the validation rules of `user-store`, the same SQLite key-value table, the same
//! webhook call). The gap between it and activity-host is the cost of the sandbox.

use std::sync::Arc;

use activity_runtime::KeyValueBackend;
use activity_sqlite::SqliteKeyValue;
use activity_worker::workflow::{Notification, User, Validation};
use activity_worker::UserWorkflow;
use anyhow::Context;
use clap::Parser;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::runtime::worker_tuner::{FixedSizeSlotSupplier, TunerHolder};
use temporalio_sdk::runtime::PollerBehavior;
use temporalio_sdk::{Worker, WorkerOptions};
use user_store::StoredUser;

/// Command line.
#[derive(Parser)]
struct Args {
    /// Temporal frontend.
    #[arg(long, default_value = "localhost:7233")]
    address: String,
    #[arg(long, default_value = "default")]
    namespace: String,
    #[arg(long, default_value = "user-task-queue")]
    task_queue: String,
    /// The SQLite database of the users store.
    #[arg(long)]
    db: std::path::PathBuf,
    /// Webhook SendNotification posts to; none: it only logs.
    #[arg(long)]
    webhook_url: Option<String>,
    #[arg(long, default_value_t = 100)]
    max_concurrent_activities: usize,
    /// Workflow task polls at once (activity-host's default).
    #[arg(long, default_value_t = 10)]
    workflow_pollers: usize,
    /// Activity task polls at once (activity-host's default).
    #[arg(long, default_value_t = 10)]
    activity_pollers: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Delivery {
    target: String,
    status: Option<u16>,
}

struct UserActivities {
    store: Arc<SqliteKeyValue>,
    webhook_url: Option<String>,
    http: reqwest::Client,
}

fn failure(
    kind: &str,
    message: String,
    non_retryable: bool,
    details: Option<Value>,
) -> ActivityError {
    ActivityError::application(
        ApplicationFailure::builder(message)
            .type_name(kind.to_string())
            .non_retryable(non_retryable)
            .maybe_details(details)
            .build(),
    )
}

fn check(user: &User) -> Result<(), ActivityError> {
    let reasons = user_store::validate(&user.user_id, &user.email, &user.name);
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(failure(
            "Invalid",
            reasons.join("; "),
            true,
            Some(json!(reasons)),
        ))
    }
}

/// Runs a store operation off the async threads, as activity-host runs its key-value calls.
async fn blocking<T: Send + 'static>(
    store: &Arc<SqliteKeyValue>,
    op: impl FnOnce(&SqliteKeyValue) -> Result<T, activity_runtime::KeyValueError> + Send + 'static,
) -> Result<T, ActivityError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || op(&store))
        .await
        .map_err(|e| failure("StoreUnavailable", e.to_string(), false, None))?
        .map_err(|e| failure("StoreUnavailable", e.to_string(), false, None))
}

impl UserActivities {
    async fn load(&self, user_id: &str) -> Result<Option<StoredUser>, ActivityError> {
        let key = user_store::key(user_id);
        let bytes = blocking(&self.store, move |s| s.get(user_store::STORE, &key)).await?;
        bytes
            .map(|b| StoredUser::from_bytes(user_id, &b))
            .transpose()
            .map_err(|m| failure("CorruptRecord", m, true, None))
    }

    async fn save(&self, user: &StoredUser) -> Result<(), ActivityError> {
        let (key, value) = (user_store::key(&user.user_id), user.to_bytes());
        blocking(&self.store, move |s| s.set(user_store::STORE, &key, &value)).await
    }
}

/// The activities. The macro also makes a constant per activity, for workflows to name it;
/// this worker's workflow calls them by type name instead, hence the allowance.
mod implementation {
    #![allow(dead_code)]
    use super::*;

    #[activities]
    impl UserActivities {
        #[activity(name = "ValidateUser")]
        async fn validate_user(
            self: Arc<Self>,
            _ctx: ActivityContext,
            user: User,
        ) -> Result<Validation, ActivityError> {
            let reasons = user_store::validate(&user.user_id, &user.email, &user.name);
            Ok(Validation {
                valid: reasons.is_empty(),
                reasons,
            })
        }

        #[activity(name = "CreateUser")]
        async fn create_user(
            self: Arc<Self>,
            _ctx: ActivityContext,
            user: User,
        ) -> Result<StoredUser, ActivityError> {
            check(&user)?;
            if let Some(existing) = self.load(&user.user_id).await? {
                return if existing.has_same_data(&user.email, &user.name) {
                    Ok(existing)
                } else {
                    let message = format!("user {:?} exists with other data", user.user_id);
                    Err(failure(
                        "Conflict",
                        message,
                        true,
                        serde_json::to_value(existing).ok(),
                    ))
                };
            }
            let now = user_store::now_ms();
            let stored = StoredUser {
                user_id: user.user_id,
                email: user.email,
                name: user.name,
                version: 1,
                created_at_ms: now,
                updated_at_ms: now,
            };
            self.save(&stored).await?;
            Ok(stored)
        }

        #[activity(name = "UpdateUser")]
        async fn update_user(
            self: Arc<Self>,
            _ctx: ActivityContext,
            user: User,
        ) -> Result<StoredUser, ActivityError> {
            check(&user)?;
            let Some(mut stored) = self.load(&user.user_id).await? else {
                let message = format!("user {:?} does not exist", user.user_id);
                return Err(failure("NotFound", message, true, None));
            };
            if !stored.has_same_data(&user.email, &user.name) {
                stored.email = user.email;
                stored.name = user.name;
                stored.version += 1;
                stored.updated_at_ms = user_store::now_ms();
                self.save(&stored).await?;
            }
            Ok(stored)
        }

        #[activity(name = "DeleteUser")]
        async fn delete_user(
            self: Arc<Self>,
            _ctx: ActivityContext,
            user_id: String,
        ) -> Result<bool, ActivityError> {
            if user_id.is_empty() {
                return Err(failure(
                    "Invalid",
                    "user_id: must not be empty".into(),
                    true,
                    None,
                ));
            }
            if self.load(&user_id).await?.is_none() {
                return Ok(false);
            }
            let key = user_store::key(&user_id);
            blocking(&self.store, move |s| s.delete(user_store::STORE, &key)).await?;
            Ok(true)
        }

        #[activity(name = "SendNotification")]
        async fn send_notification(
            self: Arc<Self>,
            ctx: ActivityContext,
            notification: Notification,
        ) -> Result<Delivery, ActivityError> {
            let Some(url) = self.webhook_url.clone() else {
                tracing::info!(?notification, "notification");
                return Ok(Delivery {
                    target: "host-log".into(),
                    status: None,
                });
            };
            let info = ctx.info();
            let workflow_id = info.workflow_id.clone().unwrap_or_default();
            let body = json!({
                "user_id": notification.user_id,
                "email": notification.email,
                "action": notification.action.as_str(),
                "message": notification.message,
                "workflow_id": workflow_id,
                "activity_id": info.activity_id,
            });
            let response = self
                .http
                .post(&url)
                .header(
                    "idempotency-key",
                    format!("{workflow_id}/{}", info.activity_id),
                )
                .json(&body)
                .send()
                .await
                .map_err(|e| {
                    failure(
                        "WebhookUnavailable",
                        format!("could not call webhook {url}: {e}"),
                        false,
                        None,
                    )
                })?;
            let status = response.status().as_u16();
            match status {
                200..=299 => Ok(Delivery {
                    target: url,
                    status: Some(status),
                }),
                408 | 429 | 500..=599 => Err(failure(
                    "WebhookUnavailable",
                    format!("webhook {url} answered {status}"),
                    false,
                    None,
                )),
                _ => Err(failure(
                    "WebhookRejected",
                    format!("webhook {url} answered {status}"),
                    true,
                    None,
                )),
            }
        }
    }
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let args = Args::parse();
    // The SDK's workflow half is !Send: run it on this thread's multi-threaded runtime, as
    // activity-host does.
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let client = activity_worker::connect(&args.address, &args.namespace).await?;
    let runtime = temporalio_sdk::Runtime::from_current_tokio(Default::default())
        .context("Temporal core runtime")?;
    let activities = UserActivities {
        store: Arc::new(SqliteKeyValue::open(&args.db).context("users store")?),
        webhook_url: args.webhook_url,
        http: {
            // The workspace builds reqwest without a TLS provider of its own (see activity-oci).
            let _ = rustls::crypto::ring::default_provider().install_default();
            reqwest::Client::new()
        },
    };
    let tuner = TunerHolder::builder()
        .workflow_task_slot_supplier(FixedSizeSlotSupplier::new(100))
        .activity_task_slot_supplier(FixedSizeSlotSupplier::new(args.max_concurrent_activities))
        .local_activity_task_slot_supplier(FixedSizeSlotSupplier::new(1))
        .nexus_task_slot_supplier(FixedSizeSlotSupplier::new(1))
        .build();
    let options = WorkerOptions::new(args.task_queue)
        .register_workflow_with_factory::<UserWorkflow, _>(UserWorkflow::default)?
        .register_activities(activities)
        .max_cached_workflows(1000)
        .workflow_task_poller_behavior(PollerBehavior::SimpleMaximum(args.workflow_pollers))
        .activity_task_poller_behavior(PollerBehavior::SimpleMaximum(args.activity_pollers))
        .max_eager_activity_reservations_per_workflow_task(3)
        .tuner(tuner)
        .build();
    let mut worker = Worker::new(&runtime, client, options)?;
    let stop = worker.shutdown_handle();
    println!("worker started");
    let run = worker.run();
    tokio::pin!(run);
    tokio::select! {
        r = &mut run => r?,
        _ = tokio::signal::ctrl_c() => { stop(); run.await?; }
    }
    Ok(())
}
