//! Deploys, rollbacks and removals: each changes the store and what this host serves, one
//! change at a time.

use activity_runtime::{ActivityCatalog, ActivitySpec};

use crate::rollout::{Candidate, EventKind, RolloutEvent, RolloutPolicy, RolloutState};
use crate::serving::HeldVersion;
use crate::{
    check_name, metric, now_ms, CandidateView, DeployOutcome, DeployRequest, Registry,
    RegistryError, RolloutChange, VersionRecord, VersionView,
};

impl Registry {
    /// Validates, compiles, stores and activates a component as activity type `name`.
    pub async fn deploy(
        &self,
        name: &str,
        bytes: Vec<u8>,
        request: DeployRequest,
    ) -> Result<DeployOutcome, RegistryError> {
        let outcome = self.deploy_checked(name, bytes, request).await;
        let label = match &outcome {
            Ok(o) if o.changed => "deployed",
            Ok(_) => "unchanged",
            Err(RegistryError::Store(_)) => "unavailable",
            Err(_) => "refused",
        };
        // An invalid name is a client's text: it never becomes a label value.
        let activity_type = if check_name(name).is_ok() { name } else { "" };
        metrics::counter!(metric::DEPLOYS, "activity_type" => activity_type.to_string(), "outcome" => label)
            .increment(1);
        outcome
    }

    async fn deploy_checked(
        &self,
        name: &str,
        bytes: Vec<u8>,
        request: DeployRequest,
    ) -> Result<DeployOutcome, RegistryError> {
        check_name(name)?;
        if bytes.is_empty() {
            return Err(RegistryError::Empty);
        }
        if bytes.len() > self.max_component_bytes {
            return Err(RegistryError::TooLarge {
                size: bytes.len(),
                limit: self.max_component_bytes,
            });
        }
        let spec = ActivitySpec {
            activity_type: name.to_string(),
            export: request.export,
            grants: request.grants,
            limits: request.limits,
        };
        self.check_policy(&spec)?;
        if !spec.grants.secrets.is_empty() {
            let held = self.runtime.egress().secret_names();
            if let Some(missing) = spec.grants.secrets.iter().find(|n| !held.contains(*n)) {
                return Err(RegistryError::NoSuchSecret(missing.clone()));
            }
        }
        // Validate and compile before anything changes.
        let component = self.runtime.load(spec.clone(), &bytes).await?;
        let digest = component.digest().clone();
        let _change = self.changes.lock().await;
        let (versions, active) = {
            let name = name.to_string();
            self.blocking(move |s| s.versions(&name)).await?
        };
        if let Some(current) = versions.iter().find(|v| Some(v.seq) == active) {
            if current.digest == digest && current.spec == spec && current.source == request.source
            {
                // The same version again: its file is written again if it no longer hashes
                // to its digest, and it is served if loading it had failed.
                let stored = digest.clone();
                self.blocking(move |s| s.put_blob(&stored, &bytes)).await?;
                if self.get(name).is_none() {
                    self.serve(
                        name,
                        HeldVersion::compiled(current.seq, component, self.executes),
                    );
                }
                return Ok(DeployOutcome {
                    changed: false,
                    version: VersionView::of(current, active),
                    policy: request.rollout.unwrap_or(self.rollouts.settings.policy),
                    candidate: None,
                });
            }
        }
        let policy = request.rollout.unwrap_or(self.rollouts.settings.policy);
        let ramp = request
            .ramp_percent
            .unwrap_or(self.rollouts.settings.ramp_percent);
        if ramp > 100 {
            return Err(RegistryError::InvalidRamp(ramp.into()));
        }
        // A ramp needs a stable version to ramp from; the first version is simply active.
        let as_candidate = policy == RolloutPolicy::Ramp && active.is_some();
        let previous = {
            let n = name.to_string();
            self.blocking(move |s| s.rollout(&n)).await?
        };
        let record = VersionRecord {
            seq: 0,
            digest: digest.clone(),
            size: bytes.len() as u64,
            deployed_at_ms: now_ms(),
            deployed_by: request.deployed_by.clone(),
            spec,
            source: request.source,
            signature: Some(component.signature().as_ref().clone()),
        };
        let event = RolloutEvent {
            kind: EventKind::Deploy,
            at_ms: record.deployed_at_ms,
            by: request.deployed_by,
            reason: None,
            digest: Some(digest.clone()),
            ramp_percent: as_candidate.then_some(ramp),
        };
        let change = RolloutChange {
            // The store puts the new version's seq in the candidate.
            state: RolloutState {
                policy,
                candidate: as_candidate.then_some(Candidate {
                    seq: 0,
                    ramp_percent: ramp,
                }),
            },
            activate: None,
            // A candidate replaced by this deploy: its runs go to the new version.
            unpin: previous.candidate.map(|c| c.seq).into_iter().collect(),
            event: event.clone(),
        };
        // The version, its activation and its rollout in one transaction: a deploy that
        // answers an error left nothing live.
        let record = {
            let (name, digest) = (name.to_string(), digest.clone());
            self.blocking(move |s| {
                s.put_blob(&digest, &bytes)?;
                s.add_version(&name, record, !as_candidate, Some(change))
            })
            .await?
        };
        // The other hosts load this compilation instead of compiling again.
        self.share(&component).await;
        let candidate = as_candidate.then_some(Candidate {
            seq: record.seq,
            ramp_percent: ramp,
        });
        if !as_candidate {
            self.serve(
                name,
                HeldVersion::compiled(record.seq, component, self.executes),
            );
        }
        // Stored: from here on the deploy stands, whatever this host fails to catch up on
        // (the next reconcile does).
        if let Err(e) = self.rollout_changed(name, &event).await {
            tracing::warn!(activity = name, error = %e, "deployed; this host reads the rollout again at its next reconcile");
        }
        tracing::info!(activity = name, version = %digest, seq = record.seq, policy = policy.as_str(), candidate = as_candidate, "deployed");
        // What is active now: the new version, or (a candidate) the one read before the write.
        let version = match versions.iter().find(|v| Some(v.seq) == active) {
            Some(stable) if as_candidate => VersionView::of(stable, active),
            _ => VersionView::of(&record, Some(record.seq)),
        };
        Ok(DeployOutcome {
            changed: true,
            version,
            policy,
            candidate: candidate.map(|c| CandidateView::of(&record, c.ramp_percent)),
        })
    }

    /// Makes an earlier version active: the one before the active version, or the latest
    /// version with `digest`.
    pub async fn rollback(
        &self,
        name: &str,
        digest: Option<&str>,
        by: &str,
    ) -> Result<VersionView, RegistryError> {
        check_name(name)?;
        let _change = self.changes.lock().await;
        let (versions, active) = {
            let name = name.to_string();
            self.blocking(move |s| s.versions(&name)).await?
        };
        let Some(active_seq) = active else {
            return Err(RegistryError::NotFound(name.to_string()));
        };
        let current = versions.iter().find(|v| v.seq == active_seq);
        let target = match digest {
            Some(d) => versions
                .iter()
                .rev()
                .find(|v| v.digest.as_str() == d || v.digest.hex() == d)
                .ok_or_else(|| RegistryError::VersionNotFound {
                    name: name.into(),
                    digest: d.into(),
                })?,
            None => versions
                .iter()
                .rev()
                // The latest earlier version that differs: in its code or its settings.
                .find(|v| {
                    v.seq < active_seq
                        && current.is_none_or(|c| c.digest != v.digest || c.spec != v.spec)
                })
                .ok_or_else(|| RegistryError::NoEarlierVersion(name.into()))?,
        };
        let served = self.load_version(target).await?;
        let seq = target.seq;
        let state = {
            let n = name.to_string();
            self.blocking(move |s| s.rollout(&n)).await?
        };
        self.change_rollout(
            name,
            RolloutChange {
                // A rollback ends a ramp: its candidate goes too.
                state: RolloutState {
                    policy: state.policy,
                    candidate: None,
                },
                activate: Some(seq),
                // Runs pinned to the version rolled back from (or the candidate) follow.
                unpin: std::iter::once(active_seq)
                    .chain(state.candidate.map(|c| c.seq))
                    .collect(),
                event: RolloutEvent {
                    kind: EventKind::Rollback,
                    at_ms: now_ms(),
                    by: by.to_string(),
                    reason: None,
                    digest: Some(target.digest.clone()),
                    ramp_percent: None,
                },
            },
        )
        .await?;
        self.serve(name, served);
        self.rollouts.changed();
        tracing::info!(activity = name, version = %target.digest, seq, "rolled back");
        metrics::counter!(metric::ROLLBACKS, "activity_type" => name.to_string()).increment(1);
        Ok(VersionView::of(target, Some(target.seq)))
    }

    /// Stops serving `name` and forgets its history.
    pub async fn remove(&self, name: &str) -> Result<(), RegistryError> {
        check_name(name)?;
        let _change = self.changes.lock().await;
        let n = name.to_string();
        if !self.blocking(move |s| s.remove(&n)).await? {
            return Err(RegistryError::NotFound(name.to_string()));
        }
        if let Ok(mut s) = self.serving.write() {
            s.remove(name);
            metrics::gauge!(metric::SERVED).set(s.len() as f64);
        }
        self.hold_rollout(name, None);
        self.rollouts.changed();
        tracing::info!(activity = name, "removed");
        Ok(())
    }
}
