//! The client commands (`deploy`, `activities ...`): they talk to a host's REST API.

use std::path::Path;

use activity_api::access::CreatedKey;
use activity_api::verify::VerifyReport;
use activity_api::views::{CancelSent, Started, WorkflowPage, WorkflowView};
use activity_api::UsageReport;
use activity_registry::access::{ApiKey, SecretView};
use activity_registry::rollout::RolloutPolicy;
use activity_registry::{ActivityDetails, ActivitySummary, DeployOutcome, VersionView};
use activity_runtime::egress::EgressRecord;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A failed client command: one line for the terminal.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The API did not answer.
    #[error("cannot reach the activity host API at {url}: {message}")]
    Unreachable {
        /// The URL.
        url: String,
        /// Why.
        message: String,
    },
    /// The API answered an error.
    #[error("{code}: {message}")]
    Api {
        /// The error code.
        code: String,
        /// The message.
        message: String,
    },
    /// The API answered something other than what the route documents.
    #[error("unexpected answer from {url}: {message}")]
    Unexpected {
        /// The URL.
        url: String,
        /// Why it does not fit.
        message: String,
    },
    /// The component file could not be read.
    #[error("cannot read {path}: {message}")]
    File {
        /// The path.
        path: String,
        /// Why.
        message: String,
    },
}

/// What a deploy sends besides the file.
#[derive(Debug, Default, Clone)]
pub struct DeployOptions {
    /// Hosts for outgoing HTTP.
    pub allow_hosts: Vec<String>,
    /// Key-value stores.
    pub kv_stores: Vec<String>,
    /// Secrets.
    pub secrets: Vec<String>,
    /// `KEY=VALUE` config values.
    pub config: Vec<String>,
    /// The export to call.
    pub export: Option<String>,
    /// Memory limit in bytes.
    pub max_memory_bytes: Option<u64>,
    /// Time limit in milliseconds.
    pub max_execution_ms: Option<u64>,
    /// Largest result in bytes.
    pub max_output_bytes: Option<u64>,
    /// Fuel budget per call.
    pub fuel: Option<u64>,
    /// Calls running at once per host.
    pub max_concurrent: Option<u32>,
    /// Rollout policy: `immediate`, `pinned` or `ramp`.
    pub rollout: Option<RolloutPolicy>,
    /// A ramp's share of runs.
    pub ramp_percent: Option<u8>,
}

impl DeployOptions {
    /// The deploy route's query parameters.
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut query: Vec<(&str, String)> = Vec::new();
        query.extend(self.allow_hosts.iter().map(|h| ("allow_host", h.clone())));
        query.extend(self.kv_stores.iter().map(|s| ("kv_store", s.clone())));
        query.extend(self.secrets.iter().map(|s| ("secret", s.clone())));
        query.extend(self.config.iter().map(|c| ("config", c.clone())));
        if let Some(e) = &self.export {
            query.push(("export", e.clone()));
        }
        for (key, value) in [
            ("max_memory_bytes", self.max_memory_bytes),
            ("max_execution_ms", self.max_execution_ms),
            ("max_output_bytes", self.max_output_bytes),
            ("fuel", self.fuel),
            ("max_concurrent", self.max_concurrent.map(u64::from)),
            ("ramp_percent", self.ramp_percent.map(u64::from)),
        ] {
            if let Some(v) = value {
                query.push((key, v.to_string()));
            }
        }
        if let Some(policy) = self.rollout {
            query.push(("rollout", policy.as_str().to_string()));
        }
        query
    }
}

/// The bytes of the component file a deploy or a verify sends.
fn read_component(file: &Path) -> Result<Vec<u8>, ClientError> {
    std::fs::read(file).map_err(|e| ClientError::File {
        path: file.display().to_string(),
        message: e.to_string(),
    })
}

/// A client of one host's REST API.
pub struct ApiClient {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
}

impl ApiClient {
    /// A client for `base` (`http://127.0.0.1:8080`).
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            http: {
                activity_oci::install_crypto_provider();
                reqwest::Client::new()
            },
            token: None,
        }
    }

    /// Sends `token` as the bearer token (the admin routes need it when the host has one).
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Starts `UserWorkflow` (`{user_id, email, name, action}`).
    pub async fn start_workflow(&self, request: &Value) -> Result<Started, ClientError> {
        let url = self.url("/api/v1/workflows/user");
        self.typed(&url, self.http.post(&url).json(request)).await
    }

    /// A workflow's status and result, error or progress.
    pub async fn show_workflow(
        &self,
        id: &str,
        run_id: Option<&str>,
    ) -> Result<WorkflowView, ClientError> {
        let query: Vec<(&str, String)> = run_id
            .map(|r| ("run_id", r.to_string()))
            .into_iter()
            .collect();
        let url = self.url(&format!("/api/v1/workflows/user/{id}"));
        self.typed(&url, self.http.get(&url).query(&query)).await
    }

    /// Sends the `cancel` signal.
    pub async fn cancel_workflow(&self, id: &str) -> Result<CancelSent, ClientError> {
        let url = self.url(&format!("/api/v1/workflows/user/{id}/cancel"));
        self.typed(&url, self.http.post(&url)).await
    }

    /// One page of recent runs.
    pub async fn list_workflows(
        &self,
        query: &[(&str, String)],
    ) -> Result<WorkflowPage, ClientError> {
        let url = self.url("/api/v1/workflows/user");
        self.typed(&url, self.http.get(&url).query(query)).await
    }

    /// Runs a deployed activity once (a Temporal standalone activity).
    pub async fn invoke(&self, name: &str, body: &Value, wait: bool) -> Result<Value, ClientError> {
        let url = self.url(&format!("/api/v1/activities/{name}/invoke"));
        let request = self
            .http
            .post(&url)
            .query(&[("wait", wait.to_string())])
            .json(body);
        self.answer(&url, request).await
    }

    /// The answer to `request`, read as `T`.
    async fn typed<T: DeserializeOwned>(
        &self,
        url: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let value = self.answer(url, request).await?;
        serde_json::from_value(value).map_err(|e| ClientError::Unexpected {
            url: url.into(),
            message: e.to_string(),
        })
    }

    async fn answer(
        &self,
        url: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<Value, ClientError> {
        let request = match &self.token {
            Some(t) => request.bearer_auth(t),
            None => request,
        };
        let res = request.send().await.map_err(|e| ClientError::Unreachable {
            url: url.into(),
            message: e.to_string(),
        })?;
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        let body: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status.is_success() {
            return Ok(body);
        }
        Err(ClientError::Api {
            code: body["error"]["code"]
                .as_str()
                .unwrap_or(status.as_str())
                .to_string(),
            message: body["error"]["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| body.to_string()),
        })
    }

    /// Deploys `file` as `name`.
    pub async fn deploy(
        &self,
        file: &Path,
        name: &str,
        options: &DeployOptions,
    ) -> Result<DeployOutcome, ClientError> {
        let bytes = read_component(file)?;
        let url = format!("{}/api/v1/activities/{name}", self.base);
        let request = self
            .http
            .put(&url)
            .query(&options.query())
            .header("content-type", "application/wasm")
            .body(bytes);
        self.typed(&url, request).await
    }

    /// Runs the candidate `file` on the last `last` completed executions of `name` that
    /// Temporal recorded and compares its results with theirs.
    pub async fn verify(
        &self,
        file: &Path,
        name: &str,
        options: &DeployOptions,
        last: Option<u64>,
    ) -> Result<VerifyReport, ClientError> {
        let bytes = read_component(file)?;
        let url = format!("{}/api/v1/activities/{name}/verify", self.base);
        let mut query = options.query();
        if let Some(n) = last {
            query.push(("last", n.to_string()));
        }
        let request = self
            .http
            .post(&url)
            .query(&query)
            .header("content-type", "application/wasm")
            .body(bytes);
        self.typed(&url, request).await
    }

    /// Deploys the OCI artifact `reference` (`oci://...`) as `name`: the host pulls it with
    /// its own registry credentials.
    pub async fn deploy_reference(
        &self,
        reference: &str,
        name: &str,
        options: &DeployOptions,
    ) -> Result<DeployOutcome, ClientError> {
        let url = format!("{}/api/v1/activities/{name}", self.base);
        let request = self
            .http
            .put(&url)
            .query(&options.query())
            .json(&serde_json::json!({ "source": reference }));
        self.typed(&url, request).await
    }

    /// Deploys `source`: an `oci://` reference, else a file path.
    pub async fn deploy_source(
        &self,
        source: &str,
        name: &str,
        options: &DeployOptions,
    ) -> Result<DeployOutcome, ClientError> {
        if source.starts_with(activity_oci::SCHEME) {
            self.deploy_reference(source, name, options).await
        } else {
            self.deploy(Path::new(source), name, options).await
        }
    }

    /// Lists activity types.
    pub async fn list(&self) -> Result<Vec<ActivitySummary>, ClientError> {
        let url = self.url("/api/v1/activities");
        self.typed(&url, self.http.get(&url)).await
    }

    /// Shows one activity type.
    pub async fn show(&self, name: &str) -> Result<ActivityDetails, ClientError> {
        let url = self.url(&format!("/api/v1/activities/{name}"));
        self.typed(&url, self.http.get(&url)).await
    }

    /// Rolls back to the previous version or to `digest`.
    pub async fn rollback(
        &self,
        name: &str,
        digest: Option<&str>,
    ) -> Result<VersionView, ClientError> {
        let url = format!("{}/api/v1/activities/{name}/rollback", self.base);
        let request = match digest {
            Some(d) => self.http.post(&url).json(&serde_json::json!({"digest": d})),
            None => self.http.post(&url),
        };
        self.typed(&url, request).await
    }

    /// The stub module in `lang` for `names` (every deployed activity when empty), in
    /// `package` (Go and Java) when given.
    pub async fn codegen(
        &self,
        lang: &str,
        names: &[String],
        package: Option<&str>,
    ) -> Result<String, ClientError> {
        let url = format!("{}/api/v1/codegen/{lang}", self.base);
        let query: Vec<(&str, &str)> = names
            .iter()
            .map(|n| ("name", n.as_str()))
            .chain(package.map(|p| ("package", p)))
            .collect();
        match self.answer(&url, self.http.get(&url).query(&query)).await? {
            Value::String(source) => Ok(source),
            other => Err(ClientError::Unexpected {
                url,
                message: format!("expected source text, got {other}"),
            }),
        }
    }

    /// Gives the candidate of `name` `percent` of runs.
    pub async fn ramp(&self, name: &str, percent: u64) -> Result<ActivityDetails, ClientError> {
        let url = format!("{}/api/v1/activities/{name}/ramp", self.base);
        let request = self
            .http
            .post(&url)
            .json(&serde_json::json!({ "percent": percent }));
        self.typed(&url, request).await
    }

    /// Makes the candidate of `name` active.
    pub async fn promote(&self, name: &str) -> Result<VersionView, ClientError> {
        let url = format!("{}/api/v1/activities/{name}/promote", self.base);
        self.typed(&url, self.http.post(&url)).await
    }

    /// Drops the candidate of `name`.
    pub async fn abort(
        &self,
        name: &str,
        reason: Option<&str>,
    ) -> Result<ActivityDetails, ClientError> {
        let url = format!("{}/api/v1/activities/{name}/abort", self.base);
        let request = match reason {
            Some(r) => self
                .http
                .post(&url)
                .json(&serde_json::json!({ "reason": r })),
            None => self.http.post(&url),
        };
        self.typed(&url, request).await
    }

    /// Removes an activity type.
    pub async fn remove(&self, name: &str) -> Result<Value, ClientError> {
        let url = format!("{}/api/v1/activities/{name}", self.base);
        self.answer(&url, self.http.delete(&url)).await
    }

    /// Creates an API key; the answer carries its token, once.
    pub async fn create_key(&self, key: &Value) -> Result<CreatedKey, ClientError> {
        let url = self.url("/api/v1/keys");
        self.typed(&url, self.http.post(&url).json(key)).await
    }

    /// Lists the API keys (never their tokens).
    pub async fn list_keys(&self) -> Result<Vec<ApiKey>, ClientError> {
        let url = self.url("/api/v1/keys");
        self.typed(&url, self.http.get(&url)).await
    }

    /// Revokes an API key.
    pub async fn revoke_key(&self, id: &str) -> Result<Value, ClientError> {
        let url = self.url(&format!("/api/v1/keys/{id}"));
        self.answer(&url, self.http.delete(&url)).await
    }

    /// Sets a secret's value and the hosts it may be sent to.
    pub async fn set_secret(
        &self,
        name: &str,
        value: &str,
        hosts: &[String],
    ) -> Result<SecretView, ClientError> {
        let url = self.url(&format!("/api/v1/secrets/{name}"));
        let body = serde_json::json!({"value": value, "hosts": hosts});
        self.typed(&url, self.http.put(&url).json(&body)).await
    }

    /// Lists the secrets (never their values).
    pub async fn list_secrets(&self) -> Result<Vec<SecretView>, ClientError> {
        let url = self.url("/api/v1/secrets");
        self.typed(&url, self.http.get(&url)).await
    }

    /// Removes a secret.
    pub async fn remove_secret(&self, name: &str) -> Result<Value, ClientError> {
        let url = self.url(&format!("/api/v1/secrets/{name}"));
        self.answer(&url, self.http.delete(&url)).await
    }

    /// What calls cost since `since_ms` (default: a day), by `group_by`.
    pub async fn usage(
        &self,
        since_ms: Option<u64>,
        group_by: &str,
        caller: Option<&str>,
    ) -> Result<UsageReport, ClientError> {
        let url = self.url("/api/v1/usage");
        let mut query: Vec<(&str, String)> = vec![("group_by", group_by.to_string())];
        query.extend(since_ms.map(|s| ("since", s.to_string())));
        query.extend(caller.map(|c| ("caller", c.to_string())));
        self.typed(&url, self.http.get(&url).query(&query)).await
    }

    /// The outgoing requests of `name` made at or after `since_ms`.
    pub async fn egress(
        &self,
        name: &str,
        since_ms: Option<u64>,
    ) -> Result<Vec<EgressRecord>, ClientError> {
        let url = self.url(&format!("/api/v1/activities/{name}/egress"));
        let query: Vec<(&str, u64)> = since_ms.map(|s| ("since", s)).into_iter().collect();
        self.typed(&url, self.http.get(&url).query(&query)).await
    }
}
