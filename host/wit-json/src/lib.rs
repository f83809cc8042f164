//! Conversion between JSON values and WebAssembly component-model values, driven by WIT types.
//!
//! Temporal carries activity arguments and results as JSON payloads; activity components
//! export typed functions. This crate maps one to the other by the export's types:
//!
//! | WIT | JSON |
//! | --- | --- |
//! | `bool` | `true` / `false` |
//! | integers | numbers, range-checked; no fractions (`1.0` and `1e3` are integers, as in JSON Schema) |
//! | `f32`, `f64` | numbers; `"NaN"`, `"Infinity"`, `"-Infinity"` for the non-finite values |
//! | `char` | a string of one character |
//! | `string` | a string |
//! | `list<T>`, `tuple<..>`, fixed-length list | arrays |
//! | `record` | an object whose keys are the field names with `-` written `_` (`user-id` <-> `"user_id"`); the kebab-case name is accepted too, unknown keys are ignored, a missing `option` field is `none` |
//! | `variant` | `{"case-name": payload}`; a case without payload is `{"case-name": null}` or just `"case-name"` |
//! | `enum` | the case name as a string |
//! | `flags` | an array of the names that are set |
//! | `option<T>` | the value or `null`; when `T` is itself an option, `some(v)` is `[v]` so that `some(none)` stays distinct |
//! | `result<T, E>` | `{"ok": value}` or `{"err": value}` (`null` when the side has no type) |
//! | `map<K, V>` | an object when `K` is `string`, otherwise an array of `[key, value]` pairs |
//!
//! Resources, futures, streams and error contexts cannot cross a JSON boundary:
//! [`WitType::check_supported`] rejects them before a component is accepted.
//!
//! The conversions run over [`WitType`], a WIT type as plain data taken from wasmtime's types
//! once per component ([`WitType::from`]), which also serializes: a registry stores each
//! version's [`Signature`] so a host can check arguments without compiling the component.

mod schema;
mod to_json;
mod to_val;
mod types;

use serde_json::Value;
use wasmtime::component::Val;

pub use schema::DIALECT;
pub use to_json::to_json;
pub use to_val::to_val;
pub use types::{Case, Field, Param, Signature, WitType};

/// Why a JSON value could not be converted to a WIT value, or back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: expected {expected}, found {found}")]
pub struct ConvertError {
    /// Where in the value the problem is, for example `user.email` or `numbers[3]`.
    pub path: String,
    /// What the WIT type needs there.
    pub expected: String,
    /// What was there instead.
    pub found: String,
}

/// A WIT type that cannot be represented as JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: type {kind} cannot be passed as JSON")]
pub struct UnsupportedType {
    /// Where the type occurs.
    pub path: String,
    /// The kind of type (`resource`, `stream`, ...).
    pub kind: String,
}

/// The JSON key for a WIT field name: `-` is written `_`.
pub fn json_key(wit_name: &str) -> String {
    wit_name.replace('-', "_")
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Converts a list of JSON arguments to the parameters of a function.
///
/// Each parameter is one argument, in order; errors name the parameter
/// (`argument 1 (email)`).
pub fn args_to_vals(args: &[Value], params: &[Param]) -> Result<Vec<Val>, ArgsError> {
    if args.len() != params.len() {
        return Err(ArgsError::Count {
            expected: params.len(),
            found: args.len(),
        });
    }
    params
        .iter()
        .zip(args)
        .enumerate()
        .map(|(i, (p, arg))| {
            to_val(arg, &p.ty, &format!("argument {i} ({})", p.name)).map_err(ArgsError::Convert)
        })
        .collect()
}

/// Why a list of JSON arguments does not fit a function's parameters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    /// The number of arguments differs from the number of parameters.
    #[error("expected {expected} argument(s), found {found}")]
    Count {
        /// Parameters of the function.
        expected: usize,
        /// Arguments given.
        found: usize,
    },
    /// One argument has the wrong shape.
    #[error(transparent)]
    Convert(#[from] ConvertError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_keys_use_underscores() {
        assert_eq!(json_key("user-id"), "user_id");
        assert_eq!(json_key("plain"), "plain");
    }

    #[test]
    fn floats_encode_non_finite_values_as_strings() {
        use crate::to_json::float_json;
        use crate::to_val::float;
        assert_eq!(float_json(f64::NAN), Value::String("NaN".into()));
        assert_eq!(
            float_json(f64::NEG_INFINITY),
            Value::String("-Infinity".into())
        );
        assert_eq!(
            float(&Value::String("Infinity".into())),
            Some(f64::INFINITY)
        );
        assert_eq!(float(&Value::String("nope".into())), None);
    }
}
