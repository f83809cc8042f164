//! `UserWorkflow`, the reference native workflow: create, update or delete a user through
//! the deployed activities, then notify.
//!
//! - create: ValidateUser -> CreateUser -> SendNotification
//! - update: ValidateUser -> UpdateUser -> SendNotification
//! - delete: DeleteUser -> SendNotification
//!
//! A failed validation fails the workflow at once (non-retryable, with the reasons) and
//! never reaches the store. The `progress` query tells the steps done, the step running and
//! the result so far; the `cancel` signal stops it before its next step.

use std::marker::PhantomData;

use crate::settings::ActivityCallSettings;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use temporalio_common::{ActivityDefinition, RetryPolicy};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ActivityOptions, ApplicationFailure, LocalActivityOptions, SyncWorkflowContext,
    WorkflowContext, WorkflowContextView, WorkflowResult, WorkflowTermination,
};

/// The workflow type name, as clients start it.
pub const WORKFLOW_TYPE: &str = "UserWorkflow";
/// Failure type of a workflow whose user did not pass validation.
pub const INVALID_USER: &str = "InvalidUser";

/// What to do with the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Create the user.
    Create,
    /// Change the user's email and name.
    Update,
    /// Remove the user.
    Delete,
}

impl Action {
    /// The action's past tense, for messages.
    pub fn past_tense(self) -> &'static str {
        match self {
            Action::Create => "created",
            Action::Update => "updated",
            Action::Delete => "deleted",
        }
    }

    /// The action's name in requests.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }
}

/// Where `UserWorkflow` runs its activities. Part of the run's input, so a replay makes the
/// same choice whatever the host's configuration says today.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActivityMode {
    /// As Temporal activities on the task queue: any host of the fleet (or any SDK worker
    /// serving the type) may run each one, with its own history events and heartbeats.
    #[default]
    Remote,
    /// As Temporal local activities, in the sandbox of the host that runs the workflow task:
    /// no dispatch through the server, results recorded in a marker.
    Local,
}

impl ActivityMode {
    /// The mode's name in requests and configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            ActivityMode::Remote => "remote",
            ActivityMode::Local => "local",
        }
    }
}

/// The workflow's input: `{"user_id","email","name","action"}`, and optionally
/// `"activity_mode": "remote" | "local"` (remote when absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRequest {
    /// The user's id.
    pub user_id: String,
    /// Email address.
    #[serde(default)]
    pub email: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// What to do.
    pub action: Action,
    /// Where the activities run.
    #[serde(default)]
    pub activity_mode: ActivityMode,
}

/// The user record activities take.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    /// The user's id.
    pub user_id: String,
    /// Email address.
    #[serde(default)]
    pub email: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
}

/// ValidateUser's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Validation {
    /// True when every check passed.
    pub valid: bool,
    /// One reason per failed check.
    pub reasons: Vec<String>,
}

/// SendNotification's input.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Notification {
    /// The user's id.
    pub user_id: String,
    /// Where the user is reached.
    pub email: String,
    /// What happened to the user.
    pub action: Action,
    /// The text.
    pub message: String,
}

/// The workflow's result (and its result so far, in `progress`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserOutcome {
    /// The user's id.
    pub user_id: String,
    /// The action performed.
    pub action: Option<Action>,
    /// The stored user after create or update, as CreateUser / UpdateUser answered it.
    pub user: Option<serde_json::Value>,
    /// After delete: whether a user was there to delete.
    pub deleted: Option<bool>,
    /// SendNotification's delivery receipt.
    pub notification: Option<serde_json::Value>,
}

/// Answer of the `progress` query.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Progress {
    /// Activity types completed, in order.
    pub steps_done: Vec<String>,
    /// The activity type running now, if any.
    pub running: Option<String>,
    /// True once a `cancel` signal arrived.
    pub cancel_requested: bool,
    /// The result so far.
    pub result: UserOutcome,
}

impl ActivityCallSettings {
    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy::builder()
            .initial_interval(self.initial_interval())
            .backoff_coefficient(self.backoff_coefficient)
            .maximum_interval(self.maximum_interval())
            .maximum_attempts(self.maximum_attempts)
            .build()
    }

    fn options(&self) -> ActivityOptions {
        ActivityOptions::with_start_to_close_timeout(self.start_to_close())
            .retry_policy(self.retry_policy())
            .maybe_heartbeat_timeout(self.heartbeat_timeout())
            .build()
    }

    /// The same timeout and retries for a local activity; the summary shows in the Web UI.
    fn local_options(&self, activity_type: &str) -> LocalActivityOptions {
        LocalActivityOptions::builder()
            .start_to_close_timeout(self.start_to_close())
            .retry_policy(self.retry_policy())
            .summary(format!(
                "{activity_type}, in-process on the workflow's host (sandboxed)"
            ))
            .build()
    }
}

/// An activity called by type name with typed input and output, the way a workflow in any
/// SDK calls a deployed activity.
struct Named<I, O> {
    name: &'static str,
    _types: PhantomData<fn(I) -> O>,
}

impl<I, O> Named<I, O> {
    const fn new(name: &'static str) -> Self {
        Self {
            name,
            _types: PhantomData,
        }
    }
}

impl<I, O> ActivityDefinition for Named<I, O>
where
    I: Serialize + DeserializeOwned + 'static,
    O: Serialize + DeserializeOwned + 'static,
{
    type Input = I;
    type Output = O;

    fn name(&self) -> &str {
        self.name
    }
}

const VALIDATE_USER: Named<User, Validation> = Named::new("ValidateUser");
const CREATE_USER: Named<User, serde_json::Value> = Named::new("CreateUser");
const UPDATE_USER: Named<User, serde_json::Value> = Named::new("UpdateUser");
const DELETE_USER: Named<String, bool> = Named::new("DeleteUser");
const SEND_NOTIFICATION: Named<Notification, serde_json::Value> = Named::new("SendNotification");

/// The reference workflow.
#[workflow]
#[derive(Default)]
pub struct UserWorkflow {
    settings: ActivityCallSettings,
    progress: Progress,
}

impl UserWorkflow {
    /// A workflow instance calling activities with `settings`.
    pub fn with_settings(settings: ActivityCallSettings) -> Self {
        Self {
            settings,
            progress: Progress::default(),
        }
    }
}

/// Stops with a cancellation when a `cancel` signal arrived.
fn check_cancel(ctx: &WorkflowContext<UserWorkflow>) -> WorkflowResult<()> {
    if ctx.state(|s| s.progress.cancel_requested) {
        return Err(WorkflowTermination::cancelled());
    }
    Ok(())
}

/// Runs one step: the activity `act` with `input`, remote or local as the run asked.
async fn call<I, O>(
    ctx: &mut WorkflowContext<UserWorkflow>,
    mode: ActivityMode,
    act: Named<I, O>,
    input: I,
) -> WorkflowResult<O>
where
    I: Serialize + DeserializeOwned + 'static,
    O: Serialize + DeserializeOwned + 'static,
{
    check_cancel(ctx)?;
    let step = act.name.to_string();
    ctx.state_mut(|s| s.progress.running = Some(step));
    let settings = ctx.state(|s| s.settings.clone());
    let output = match mode {
        ActivityMode::Remote => ctx.execute_activity(act, input, settings.options()).await?,
        ActivityMode::Local => {
            let options = settings.local_options(act.name);
            ctx.execute_local_activity(act, input, options).await?
        }
    };
    Ok(output)
}

fn finish(ctx: &mut WorkflowContext<UserWorkflow>, update: impl FnOnce(&mut UserOutcome)) {
    ctx.state_mut(|s| {
        if let Some(step) = s.progress.running.take() {
            s.progress.steps_done.push(step);
        }
        update(&mut s.progress.result);
    });
}

#[workflow_methods]
impl UserWorkflow {
    /// Runs the request.
    #[run(name = "UserWorkflow")]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        request: UserRequest,
    ) -> WorkflowResult<UserOutcome> {
        let user = User {
            user_id: request.user_id.clone(),
            email: request.email.clone(),
            name: request.name.clone(),
        };
        ctx.state_mut(|s| {
            s.progress.result.user_id = request.user_id.clone();
            s.progress.result.action = Some(request.action);
        });

        let mode = request.activity_mode;
        if request.action != Action::Delete {
            let validation = call(ctx, mode, VALIDATE_USER, user.clone()).await?;
            finish(ctx, |_| {});
            if !validation.valid {
                return Err(ApplicationFailure::builder(format!(
                    "user {:?} is invalid: {}",
                    request.user_id,
                    validation.reasons.join("; ")
                ))
                .type_name(INVALID_USER.to_string())
                .non_retryable(true)
                .details(validation.reasons)
                .build()
                .into());
            }
        }

        match request.action {
            Action::Create | Action::Update => {
                let act = if request.action == Action::Create {
                    CREATE_USER
                } else {
                    UPDATE_USER
                };
                let stored = call(ctx, mode, act, user).await?;
                finish(ctx, |r| r.user = Some(stored));
            }
            Action::Delete => {
                let deleted = call(ctx, mode, DELETE_USER, request.user_id.clone()).await?;
                finish(ctx, |r| r.deleted = Some(deleted));
            }
        }

        let notification = Notification {
            user_id: request.user_id.clone(),
            email: request.email.clone(),
            action: request.action,
            message: format!(
                "user {} was {}",
                request.user_id,
                request.action.past_tense()
            ),
        };
        let delivery = call(ctx, mode, SEND_NOTIFICATION, notification).await?;
        finish(ctx, |r| r.notification = Some(delivery));
        Ok(ctx.state(|s| s.progress.result.clone()))
    }

    /// Steps done, the step running and the result so far.
    #[query]
    pub fn progress(&self, _ctx: &WorkflowContextView) -> Progress {
        self.progress.clone()
    }

    /// Stops the workflow before its next step.
    #[signal]
    pub fn cancel(&mut self, _ctx: &mut SyncWorkflowContext<Self>) {
        self.progress.cancel_requested = true;
    }
}
