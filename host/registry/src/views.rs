//! What the registry answers: deploy requests and outcomes, versions, summaries and details
//! as the API shows them.

use activity_runtime::{ActivityLimits, ComponentDigest, Grants};
use serde::{Deserialize, Serialize};

use crate::rollout::{RolloutEvent, RolloutPolicy};
use crate::{ArtifactSource, VersionRecord};

/// What a deployment asks for besides the bytes.
#[derive(Debug, Clone, Default)]
pub struct DeployRequest {
    /// The export to call, when not the default.
    pub export: Option<String>,
    /// Capabilities granted.
    pub grants: Grants,
    /// Limits per call.
    pub limits: ActivityLimits,
    /// Who deploys (for the history).
    pub deployed_by: String,
    /// The OCI artifact the bytes were pulled from, when deployed by reference.
    pub source: Option<ArtifactSource>,
    /// How it reaches calls; `None`: `registry.rollout.policy`.
    pub rollout: Option<RolloutPolicy>,
    /// A ramp's share of runs; `None`: `registry.rollout.ramp_percent`.
    pub ramp_percent: Option<u8>,
}

/// A version as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VersionView {
    /// Position in the history.
    pub seq: u64,
    /// Content digest.
    pub digest: ComponentDigest,
    /// Bytes.
    pub size: u64,
    /// When deployed, ms since the Unix epoch.
    pub deployed_at_ms: u64,
    /// Who deployed it.
    pub deployed_by: String,
    /// The export called.
    pub export: Option<String>,
    /// Grants.
    pub grants: Grants,
    /// Limits.
    pub limits: ActivityLimits,
    /// True for the version serving now.
    pub active: bool,
    /// The OCI artifact it was pulled from, when deployed by reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<ArtifactSource>,
}

impl VersionView {
    pub(crate) fn of(r: &VersionRecord, active: Option<u64>) -> Self {
        Self {
            seq: r.seq,
            digest: r.digest.clone(),
            size: r.size,
            deployed_at_ms: r.deployed_at_ms,
            deployed_by: r.deployed_by.clone(),
            export: r.spec.export.clone(),
            grants: r.spec.grants.clone(),
            limits: r.spec.limits,
            active: Some(r.seq) == active,
            source: r.source.clone(),
        }
    }
}

/// An activity type in the listing.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ActivitySummary {
    /// Activity type name.
    pub name: String,
    /// The active version's digest.
    pub active_digest: ComponentDigest,
    /// The active version's position in the history.
    pub active_seq: u64,
    /// When the active version was deployed.
    pub deployed_at_ms: u64,
}

/// An activity type with its history.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ActivityDetails {
    /// Activity type name.
    pub name: String,
    /// The active version's digest.
    pub active_digest: Option<ComponentDigest>,
    /// The digest this host serves now: the active one, once this host has loaded it.
    pub serving_digest: Option<ComponentDigest>,
    /// Every version, oldest first.
    pub versions: Vec<VersionView>,
    /// The policy of the latest deploy.
    pub policy: RolloutPolicy,
    /// The version on trial, while a ramp runs.
    pub candidate: Option<CandidateView>,
    /// The candidate this host holds now: the store's, once this host has loaded it.
    pub serving_candidate: Option<ComponentDigest>,
    /// Rollout events, newest first (the latest 20).
    pub events: Vec<RolloutEvent>,
    /// Runs and standalone activities pinned to a version of this type.
    pub pins: u64,
    /// With a shared store: every live host and the digest it serves (`null` when it does
    /// not serve this type).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Vec<HostServing>>,
}

/// What one live host of the fleet serves of an activity type.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HostServing {
    /// The host's id.
    pub host_id: String,
    /// Its REST API address.
    pub api: String,
    /// The digest it serves.
    pub digest: Option<String>,
    /// Milliseconds since its last heartbeat.
    pub last_seen_ms_ago: u64,
}

/// The result of a deploy.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeployOutcome {
    /// False when the same component with the same grants and limits was already active.
    pub changed: bool,
    /// The active version after the deploy.
    pub version: VersionView,
    /// The deploy's rollout policy.
    pub policy: RolloutPolicy,
    /// The candidate, when the deploy ramps.
    pub candidate: Option<CandidateView>,
}

/// A version on trial and its share of runs.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CandidateView {
    /// Position in the history.
    pub seq: u64,
    /// Content digest.
    pub digest: ComponentDigest,
    /// Percent of runs that get it.
    pub ramp_percent: u8,
    /// When deployed, ms since the Unix epoch.
    pub deployed_at_ms: u64,
    /// Who deployed it.
    pub deployed_by: String,
}

impl CandidateView {
    pub(crate) fn of(r: &VersionRecord, ramp_percent: u8) -> Self {
        Self {
            seq: r.seq,
            digest: r.digest.clone(),
            ramp_percent,
            deployed_at_ms: r.deployed_at_ms,
            deployed_by: r.deployed_by.clone(),
        }
    }
}
