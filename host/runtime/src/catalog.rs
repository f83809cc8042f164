//! Where a caller (the worker, above all) finds the component serving an activity type at
//! the moment a call arrives.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use crate::{ActivityComponent, ActivityFailure, ComponentDigest, Usage};

/// Who a call belongs to: what a rollout chooses a version by.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallKey {
    /// The workflow that scheduled it; `None` for a standalone activity.
    pub workflow_id: Option<String>,
    /// That workflow's run.
    pub run_id: Option<String>,
    /// The activity id.
    pub activity_id: String,
}

/// A call that ran, as the catalog is told of it.
#[derive(Debug, Clone, Copy)]
pub struct Finished<'a> {
    /// Its activity type.
    pub activity_type: &'a str,
    /// The version that ran.
    pub digest: &'a ComponentDigest,
    /// Its failure, if it failed.
    pub failure: Option<&'a ActivityFailure>,
    /// What it cost.
    pub usage: &'a Usage,
    /// Who it is billed to: the API key of a REST invoke, else the workflow type that
    /// scheduled it, else `temporal` (a standalone activity started by a Temporal client).
    pub caller: &'a str,
}

/// Why a call has no component.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unresolved {
    /// No version of the activity type is deployed on this host.
    #[error("not deployed on this host")]
    NotDeployed,
    /// The version the call must run cannot be known or loaded now (the registry's store is
    /// unreachable, the version's code does not load): the call is to be retried, not run on
    /// another version.
    #[error("{0}")]
    Unavailable(String),
}

/// The component for one call, or why there is none.
pub type Resolved = Result<Arc<ActivityComponent>, Unresolved>;

/// A boxed future borrowing the catalog (the trait is used as `dyn`).
pub type CatalogFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Looks up the active component of an activity type. The registry implements it; so does
/// [`ActivityTable`], a plain in-memory map.
pub trait ActivityCatalog: Send + Sync + 'static {
    /// The component serving `activity_type` now, if one is deployed.
    fn get(&self, activity_type: &str) -> Option<Arc<ActivityComponent>>;
    /// Names of the deployed activity types, for error messages.
    fn names(&self) -> Vec<String>;
    /// The component for one call of `activity_type` by `key`: a rollout may choose another
    /// version than the active one (the version a run is pinned to, a ramp's candidate).
    /// By default, the active one.
    fn resolve<'a>(
        &'a self,
        activity_type: &'a str,
        key: &'a CallKey,
    ) -> CatalogFuture<'a, Resolved> {
        let _ = key;
        Box::pin(async move { self.get(activity_type).ok_or(Unresolved::NotDeployed) })
    }
    /// Told after each call: the version that ran, its failure if it failed (a rollout
    /// counts a candidate's failures), what it cost and whom it is billed to. By default,
    /// nothing.
    fn finished<'a>(&'a self, call: Finished<'a>) -> CatalogFuture<'a, ()> {
        let _ = call;
        Box::pin(async {})
    }
}

/// An in-memory catalog: activity type -> component.
#[derive(Default)]
pub struct ActivityTable {
    entries: RwLock<BTreeMap<String, Arc<ActivityComponent>>>,
}

impl ActivityTable {
    /// Makes `component` the active one for its activity type. Calls already running keep
    /// the component they started with.
    pub fn insert(&self, component: ActivityComponent) {
        let name = component.spec().activity_type.clone();
        if let Ok(mut e) = self.entries.write() {
            e.insert(name, Arc::new(component));
        }
    }

    /// Removes an activity type.
    pub fn remove(&self, activity_type: &str) -> bool {
        self.entries
            .write()
            .map(|mut e| e.remove(activity_type).is_some())
            .unwrap_or(false)
    }
}

impl ActivityCatalog for ActivityTable {
    fn get(&self, activity_type: &str) -> Option<Arc<ActivityComponent>> {
        self.entries.read().ok()?.get(activity_type).cloned()
    }

    fn names(&self) -> Vec<String> {
        self.entries
            .read()
            .map(|e| e.keys().cloned().collect())
            .unwrap_or_default()
    }
}
