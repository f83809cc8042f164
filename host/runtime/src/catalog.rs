//! Where a caller (the worker, above all) finds the component serving an activity type at
//! the moment a call arrives.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::ActivityComponent;

/// Looks up the active component of an activity type. The registry implements it; so does
/// [`ActivityTable`], a plain in-memory map.
pub trait ActivityCatalog: Send + Sync + 'static {
    /// The component serving `activity_type` now, if one is deployed.
    fn get(&self, activity_type: &str) -> Option<Arc<ActivityComponent>>;
    /// Names of the deployed activity types, for error messages.
    fn names(&self) -> Vec<String>;
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
