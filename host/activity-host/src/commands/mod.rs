//! Client commands that live in rooms of their own (the rest are still in `main.rs`): each
//! module owns its clap arguments and its run function; `main.rs` only hands off.

pub mod oci;

/// How a command prints its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// A summary for people.
    Text,
    /// The JSON answer.
    Json,
}

/// Prints `value` as JSON, or the summary.
pub fn print<T: serde::Serialize>(output: Output, value: &T, summary: impl FnOnce(&T) -> String) {
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        ),
        Output::Text => println!("{}", summary(value)),
    }
}
