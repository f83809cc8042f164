//! The fleet's hosts table: heartbeats out, live hosts in.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::{off_thread, FleetHost, FleetStore, Registry, RegistryError, FLEET_LIVENESS};

impl Registry {
    /// The registry of a fleet: heartbeats go to `fleet`, and details show every live host.
    pub fn with_fleet(mut self, fleet: Arc<dyn FleetStore>) -> Self {
        self.fleet = Some(fleet);
        self
    }

    /// Records in the fleet table that this host is alive and what it serves (a no-op
    /// without a fleet).
    pub async fn heartbeat(
        &self,
        host_id: &str,
        api: &str,
        started_at_ms: u64,
    ) -> Result<(), RegistryError> {
        let Some(fleet) = self.fleet.clone() else {
            return Ok(());
        };
        let serving: BTreeMap<String, String> = self
            .serving
            .read()
            .map(|s| {
                s.iter()
                    .map(|(name, c)| (name.clone(), c.digest.as_str().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let (host_id, api) = (host_id.to_string(), api.to_string());
        off_thread(fleet, move |f| {
            f.beat(&host_id, &api, started_at_ms, &serving)
        })
        .await
    }

    /// The live hosts of the fleet, `None` without a fleet.
    pub async fn fleet(&self) -> Result<Option<Vec<FleetHost>>, RegistryError> {
        let Some(fleet) = self.fleet.clone() else {
            return Ok(None);
        };
        off_thread(fleet, |f| f.live(FLEET_LIVENESS))
            .await
            .map(Some)
    }
}
