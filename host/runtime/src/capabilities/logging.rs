//! `wasi:logging/logging`: guest log lines go to `tracing`, tagged with the activity's
//! type and version, at the level the guest chose.

use std::sync::Arc;

use wasmtime::component::{HasData, Linker};

use super::bindings::wasi::logging::logging::{self, Level};
use super::context::{ActivityInfo, CallContext};
use crate::ComponentDigest;

/// Sees what guests do besides returning results (the notification recorder is one).
pub trait GuestObserver: Send + Sync {
    /// Called for each `wasi:logging` line a guest writes.
    fn guest_log(&self, info: &ActivityInfo, level: &str, context: &str, message: &str);
}

/// What `wasi:logging` sees of one call.
pub struct LoggingView<'a> {
    /// The call's context (activity type and id for the log fields).
    pub call: &'a CallContext,
    /// The version running.
    pub version: &'a ComponentDigest,
    /// Who else sees the lines.
    pub observer: Option<&'a Arc<dyn GuestObserver>>,
}

/// The interfaces of this room, for the import check.
pub(crate) const OFFERS: &[(&str, crate::grants::Capability)] =
    &[("wasi:logging/logging", crate::grants::Capability::Logging)];

/// The capability, for the linker.
pub struct Logging;

impl HasData for Logging {
    type Data<'a> = LoggingView<'a>;
}

/// Adds `wasi:logging/logging` to `linker`.
pub fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> LoggingView<'_>,
) -> wasmtime::Result<()> {
    logging::add_to_linker::<T, Logging>(linker, get)
}

/// Longest guest log message kept, in bytes; longer ones are cut.
const MAX_MESSAGE_BYTES: usize = 16 << 10;

impl logging::Host for LoggingView<'_> {
    fn log(&mut self, level: Level, context: String, message: String) -> wasmtime::Result<()> {
        let message = truncate(&message, MAX_MESSAGE_BYTES);
        let activity = self.call.info.activity_type.as_str();
        let activity_id = self.call.info.activity_id.as_str();
        let version = self.version.as_str();
        macro_rules! emit {
            ($lvl:ident) => {
                tracing::$lvl!(target: "guest", activity, activity_id, version, context = context.as_str(), "{message}")
            };
        }
        match level {
            Level::Trace => emit!(trace),
            Level::Debug => emit!(debug),
            Level::Info => emit!(info),
            Level::Warn => emit!(warn),
            Level::Error | Level::Critical => emit!(error),
        }
        if let Some(observer) = self.observer {
            observer.guest_log(&self.call.info, level_name(level), &context, message);
        }
        Ok(())
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Trace => "trace",
        Level::Debug => "debug",
        Level::Info => "info",
        Level::Warn => "warn",
        Level::Error => "error",
        Level::Critical => "critical",
    }
}

/// Cuts `s` to at most `max` bytes on a character boundary.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(super::truncate("héllo", 2), "h");
        assert_eq!(super::truncate("abc", 5), "abc");
    }
}
