//! When no webhook is configured, SendNotification hands notifications to the host's log
//! under the `notification` context; this observer records them in the `notifications`
//! store, where `GET /api/v1/notifications` reads them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;

use activity_runtime::{ActivityInfo, GuestObserver, KeyValueBackend};

/// Log context under which guests hand notifications to the host.
pub const NOTIFICATION_CONTEXT: &str = "notification";

/// Records guest notifications in a key-value store. Writes happen on a thread of their
/// own, so a guest's log call never waits for the database.
pub struct NotificationRecorder {
    writes: mpsc::Sender<(String, Vec<u8>)>,
    sequence: AtomicU64,
}

impl NotificationRecorder {
    /// A recorder writing to `store`.
    pub fn new(store: Arc<dyn KeyValueBackend>) -> Self {
        let (writes, queue) = mpsc::channel::<(String, Vec<u8>)>();
        std::thread::Builder::new()
            .name("notification-recorder".into())
            .spawn(move || {
                for (key, bytes) in queue {
                    if let Err(e) = store.set(activity_api::NOTIFICATIONS_STORE, &key, &bytes) {
                        tracing::warn!(error = %e, "could not record a notification");
                    }
                }
            })
            .ok();
        Self {
            writes,
            sequence: AtomicU64::new(0),
        }
    }
}

impl GuestObserver for NotificationRecorder {
    fn guest_log(&self, info: &ActivityInfo, _level: &str, context: &str, message: &str) {
        if context != NOTIFICATION_CONTEXT {
            return;
        }
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        // Sortable by time; the sequence keeps two in the same millisecond apart.
        let key = format!(
            "{millis:016}-{:08}-{}",
            self.sequence.fetch_add(1, Ordering::Relaxed),
            info.activity_id
        );
        // The notification is JSON from the guest; anything else is kept as a string.
        let value =
            serde_json::from_str::<serde_json::Value>(message).unwrap_or_else(|_| message.into());
        let bytes = serde_json::to_vec(&value).unwrap_or_default();
        if self.writes.send((key, bytes)).is_err() {
            tracing::warn!("the notification recorder stopped; notification dropped");
        }
    }
}
