//! `wasi:logging/logging`: guest log lines go to `tracing`, tagged with the activity's
//! type and version, at the level the guest chose.

use super::bindings::wasi::logging::logging::{self, Level};
use crate::state::ActivityState;

/// Longest guest log message kept, in bytes; longer ones are cut.
const MAX_MESSAGE_BYTES: usize = 16 << 10;

impl logging::Host for ActivityState {
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
        if let Some(observer) = &self.observer {
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
