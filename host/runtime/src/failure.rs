//! Activity failures: what the guest returned as an error, or what went wrong running it,
//! in the shape of a Temporal application failure.

use serde::Serialize;
use serde_json::Value;
use wasmtime::component::Val;
use wit_json::WitType;

/// Failure types the host itself raises. Guests choose their own for their errors.
pub mod kinds {
    /// A guest's `failure` without a type.
    pub const ACTIVITY_FAILURE: &str = "ActivityFailure";
    /// A guest error value that is not a variant, enum or failure.
    pub const ACTIVITY_ERROR: &str = "ActivityError";
    /// The guest trapped (a panic, an unreachable, a bad memory access).
    pub const GUEST_TRAP: &str = "GuestTrap";
    /// The call ran past its time limit or deadline.
    pub const TIME_LIMIT_EXCEEDED: &str = "TimeLimitExceeded";
    /// The guest tried to grow its memory past its limit.
    pub const MEMORY_LIMIT_EXCEEDED: &str = "MemoryLimitExceeded";
    /// The guest used up its fuel budget.
    pub const FUEL_EXHAUSTED: &str = "FuelExhausted";
    /// The guest recursed past its stack.
    pub const STACK_OVERFLOW: &str = "StackOverflow";
    /// The result was larger than the activity's output limit.
    pub const OUTPUT_TOO_LARGE: &str = "OutputTooLarge";
    /// The arguments did not fit the export's parameter types.
    pub const INVALID_ARGUMENTS: &str = "InvalidArguments";
    /// No instance slot was free in the pool.
    pub const INSTANCE_POOL_EXHAUSTED: &str = "InstancePoolExhausted";
    /// The component could not be instantiated for another reason.
    pub const INSTANTIATION_FAILED: &str = "InstantiationFailed";
    /// The activity type's `max_concurrent` calls were running until this call's time ran
    /// out (retryable).
    pub const CONCURRENCY_LIMIT_REACHED: &str = "ConcurrencyLimitReached";
    /// The calls in flight held the host's memory budget (`runtime.memory_budget_bytes`)
    /// until this call's time ran out (retryable).
    pub const MEMORY_BUDGET_EXHAUSTED: &str = "MemoryBudgetExhausted";

    /// Every failure type the host raises.
    pub const ALL: &[&str] = &[
        ACTIVITY_FAILURE,
        ACTIVITY_ERROR,
        GUEST_TRAP,
        TIME_LIMIT_EXCEEDED,
        MEMORY_LIMIT_EXCEEDED,
        FUEL_EXHAUSTED,
        STACK_OVERFLOW,
        OUTPUT_TOO_LARGE,
        INVALID_ARGUMENTS,
        INSTANCE_POOL_EXHAUSTED,
        INSTANTIATION_FAILED,
        CONCURRENCY_LIMIT_REACHED,
        MEMORY_BUDGET_EXHAUSTED,
    ];
}

/// A failed activity call, shaped like Temporal's `ApplicationFailure`.
#[derive(Debug, Clone, PartialEq, Serialize, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct ActivityFailure {
    /// The failure type callers match on.
    #[serde(rename = "type")]
    pub kind: String,
    /// Human-readable message.
    pub message: String,
    /// True when retrying cannot help.
    pub non_retryable: bool,
    /// Structured details (the guest's error value, or the failure's details).
    pub details: Option<Value>,
}

impl ActivityFailure {
    /// A host-raised failure.
    pub fn new(kind: &str, message: impl Into<String>, non_retryable: bool) -> Self {
        Self {
            kind: kind.to_string(),
            message: message.into(),
            non_retryable,
            details: None,
        }
    }
}

/// True when `ty` is `activity-host:activity/types.failure`, recognised by its fields.
fn is_failure_type(ty: &WitType) -> bool {
    let WitType::Record { fields } = ty else {
        return false;
    };
    let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
    names == ["message", "type", "non-retryable", "details"]
}

fn failure_from_record(val: &Val) -> Option<ActivityFailure> {
    let Val::Record(fields) = val else {
        return None;
    };
    let mut failure = ActivityFailure::new(kinds::ACTIVITY_FAILURE, "", false);
    for (name, v) in fields {
        match (name.as_str(), v) {
            ("message", Val::String(s)) => failure.message = s.clone(),
            ("type", Val::Option(Some(t))) => {
                if let Val::String(s) = t.as_ref() {
                    if !s.is_empty() {
                        failure.kind = s.clone();
                    }
                }
            }
            ("non-retryable", Val::Bool(b)) => failure.non_retryable = *b,
            ("details", Val::Option(Some(d))) => {
                if let Val::String(s) = d.as_ref() {
                    failure.details =
                        Some(serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone())));
                }
            }
            _ => {}
        }
    }
    Some(failure)
}

/// `not-found` -> `NotFound`.
fn pascal_case(name: &str) -> String {
    name.split(['-', '_'])
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn message_of(json: &Value) -> Option<String> {
    match json {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) if items.iter().all(Value::is_string) && !items.is_empty() => Some(
            items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("; "),
        ),
        _ => None,
    }
}

/// Turns a guest's error value into a failure. A `failure` (or a variant case carrying one)
/// maps exactly; a variant or enum case becomes a non-retryable failure typed by the case
/// name; anything else a non-retryable `ActivityError`. The value is kept as details.
pub(crate) fn from_error_value(
    val: Option<&Val>,
    ty: Option<&WitType>,
    activity: &str,
) -> ActivityFailure {
    let (Some(val), Some(ty)) = (val, ty) else {
        return ActivityFailure::new(
            kinds::ACTIVITY_ERROR,
            format!("{activity} returned an error"),
            true,
        );
    };
    if is_failure_type(ty) {
        if let Some(f) = failure_from_record(val) {
            return f;
        }
    }
    let details = wit_json::to_json(val, ty).ok();
    match (val, ty) {
        (Val::Variant(case, payload), WitType::Variant { cases }) => {
            let case_ty = cases
                .iter()
                .find(|c| &c.name == case)
                .and_then(|c| c.payload.as_ref());
            if let (Some(p), Some(t)) = (payload, case_ty) {
                if is_failure_type(t) {
                    if let Some(f) = failure_from_record(p) {
                        return f;
                    }
                }
            }
            let payload_json = details.as_ref().and_then(|d| d.get(case.as_str()));
            let message = payload_json
                .and_then(message_of)
                .unwrap_or_else(|| format!("{activity} returned error {case}"));
            ActivityFailure {
                kind: pascal_case(case),
                message,
                non_retryable: true,
                details,
            }
        }
        (Val::Enum(case), _) => ActivityFailure {
            kind: pascal_case(case),
            message: format!("{activity} returned error {case}"),
            non_retryable: true,
            details,
        },
        _ => {
            let message = details
                .as_ref()
                .and_then(message_of)
                .unwrap_or_else(|| format!("{activity} returned an error"));
            ActivityFailure {
                kind: kinds::ACTIVITY_ERROR.into(),
                message,
                non_retryable: true,
                details,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_names_become_failure_types() {
        assert_eq!(pascal_case("not-found"), "NotFound");
        assert_eq!(pascal_case("conflict"), "Conflict");
        assert_eq!(pascal_case("store_unavailable"), "StoreUnavailable");
    }

    #[test]
    fn messages_come_from_strings_and_string_lists() {
        assert_eq!(message_of(&Value::from("x")).as_deref(), Some("x"));
        assert_eq!(
            message_of(&serde_json::json!(["a", "b"])).as_deref(),
            Some("a; b")
        );
        assert_eq!(message_of(&serde_json::json!({"a": 1})), None);
    }
}
