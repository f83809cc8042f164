//! What the Temporal server this host talks to is and can do, read once connected: its
//! version (`GetSystemInfo`) and the namespace's capabilities (`DescribeNamespace`). The
//! host says plainly what a server cannot do instead of failing opaquely later: standalone
//! activities (REST invoke, `verify` of invoked executions) need Temporal Server 1.32.0 or
//! newer with `activity.enableStandalone` on for the namespace.

use serde::{Deserialize, Serialize};
use temporalio_client::grpc::WorkflowService;
use temporalio_client::tonic::IntoRequest;
use temporalio_client::Client;
use temporalio_common::protos::temporal::api::namespace::v1::namespace_info::Capabilities;
use temporalio_common::protos::temporal::api::workflowservice::v1::{
    DescribeNamespaceRequest, GetSystemInfoRequest,
};

/// The first Temporal Server release that runs standalone activities.
pub const STANDALONE_ACTIVITIES_SINCE: (u64, u64, u64) = (1, 32, 0);

/// What the server is and what the namespace can do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServerFacts {
    /// The server's version, as it reports it (`1.32.2`).
    pub version: String,
    /// The namespace the host uses.
    pub namespace: String,
    /// Standalone activities run in the namespace (REST invoke, `temporal activity execute`).
    pub standalone_activities: bool,
    /// Workflow starts may ask for eager execution.
    pub eager_workflow_start: bool,
}

impl ServerFacts {
    /// Asks the server.
    pub async fn read(client: &Client, namespace: &str) -> Result<Self, String> {
        let mut c = client.clone();
        let info = WorkflowService::get_system_info(
            &mut c,
            GetSystemInfoRequest::default().into_request(),
        )
        .await
        .map_err(|e| format!("GetSystemInfo: {}", e.message()))?
        .into_inner();
        let described = WorkflowService::describe_namespace(
            &mut c,
            DescribeNamespaceRequest {
                namespace: namespace.to_string(),
                ..Default::default()
            }
            .into_request(),
        )
        .await
        .map_err(|e| format!("DescribeNamespace {namespace}: {}", e.message()))?
        .into_inner();
        let capabilities = described
            .namespace_info
            .and_then(|i| i.capabilities)
            .unwrap_or_default();
        Ok(Self::from_answers(
            info.server_version,
            namespace,
            &capabilities,
        ))
    }

    /// The facts from the server's answers.
    pub fn from_answers(version: String, namespace: &str, capabilities: &Capabilities) -> Self {
        Self {
            version,
            namespace: namespace.to_string(),
            standalone_activities: capabilities.standalone_activities,
            eager_workflow_start: capabilities.eager_workflow_start,
        }
    }

    /// Why standalone activities cannot run on this server, in words an operator can act
    /// on; `None` when they can.
    pub fn standalone_activities_missing(&self) -> Option<String> {
        if self.standalone_activities {
            return None;
        }
        let (major, minor, patch) = STANDALONE_ACTIVITIES_SINCE;
        let since = format!("{major}.{minor}.{patch}");
        Some(match parse_version(&self.version) {
            Some(v) if v >= STANDALONE_ACTIVITIES_SINCE => format!(
                "Temporal Server {} has standalone activities switched off for namespace {} \
                 (dynamic config activity.enableStandalone)",
                self.version, self.namespace
            ),
            _ => format!(
                "Temporal Server {} does not run standalone activities: they need Temporal \
                 Server {since} or newer",
                if self.version.is_empty() {
                    "(version not reported)"
                } else {
                    &self.version
                }
            ),
        })
    }
}

/// `major.minor.patch` of a version such as `1.32.2` or `v1.32.0-rc.1`.
fn parse_version(text: &str) -> Option<(u64, u64, u64)> {
    let core = text.trim().trim_start_matches('v');
    let core = core.split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
    Some((
        parts.next()??,
        parts.next()??,
        parts.next().flatten().unwrap_or(0),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(version: &str, standalone: bool) -> ServerFacts {
        let capabilities = Capabilities {
            standalone_activities: standalone,
            ..Default::default()
        };
        ServerFacts::from_answers(version.into(), "default", &capabilities)
    }

    #[test]
    fn a_server_that_runs_standalone_activities_needs_no_word() {
        assert_eq!(facts("1.32.2", true).standalone_activities_missing(), None);
    }

    #[test]
    fn an_older_server_is_named_with_the_minimum() {
        let why = facts("1.28.1", false)
            .standalone_activities_missing()
            .unwrap();
        assert!(
            why.contains("1.28.1") && why.contains("1.32.0 or newer"),
            "{why}"
        );
        let why = facts("", false).standalone_activities_missing().unwrap();
        assert!(why.contains("not reported"), "{why}");
    }

    #[test]
    fn a_recent_server_with_the_feature_off_names_the_switch() {
        for version in ["1.32.0", "v1.33.1-rc.2"] {
            let why = facts(version, false)
                .standalone_activities_missing()
                .unwrap();
            assert!(why.contains("activity.enableStandalone"), "{why}");
        }
    }

    #[test]
    fn versions_parse_with_prefixes_and_suffixes() {
        assert_eq!(parse_version("1.32.2"), Some((1, 32, 2)));
        assert_eq!(parse_version("v1.32.0-rc.1"), Some((1, 32, 0)));
        assert_eq!(parse_version("1.31"), Some((1, 31, 0)));
        assert_eq!(parse_version("dev"), None);
    }
}
