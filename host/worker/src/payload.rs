//! Temporal payloads <-> JSON. Activities speak JSON (`json/plain`); `binary/null` is `null`.

use std::collections::HashMap;

use serde_json::Value;
use temporalio_common::protos::temporal::api::common::v1::Payload;

/// Metadata key naming a payload's encoding.
pub const ENCODING: &str = "encoding";
/// JSON text.
pub const JSON_PLAIN: &str = "json/plain";
/// No value.
pub const BINARY_NULL: &str = "binary/null";
/// Metadata key carrying the digest of the component version that produced a result.
pub const VERSION_METADATA: &str = "activity-host-version";
/// Metadata key carrying what the call that produced a result cost (JSON: wall and CPU
/// milliseconds, peak memory, fuel, outgoing requests and bytes).
pub const USAGE_METADATA: &str = "activity-host-usage";

/// A payload the host cannot read as JSON.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// The encoding is not JSON.
    #[error("argument {index} has encoding {encoding:?}; activity hosts accept JSON (json/plain) arguments")]
    Encoding {
        /// Position of the argument.
        index: usize,
        /// Its encoding.
        encoding: String,
    },
    /// The bytes are not valid JSON.
    #[error("argument {index} is not valid JSON: {source}")]
    Json {
        /// Position of the argument.
        index: usize,
        /// The parse error.
        source: serde_json::Error,
    },
}

/// Reads one payload as JSON.
pub fn to_json(index: usize, payload: &Payload) -> Result<Value, PayloadError> {
    let encoding = payload
        .metadata
        .get(ENCODING)
        .map(|e| String::from_utf8_lossy(e).into_owned())
        .unwrap_or_default();
    match encoding.as_str() {
        BINARY_NULL => Ok(Value::Null),
        // Some SDKs write JSON without metadata, or as json/protobuf for messages.
        JSON_PLAIN | "" | "json/protobuf" => serde_json::from_slice(&payload.data)
            .map_err(|source| PayloadError::Json { index, source }),
        _ => Err(PayloadError::Encoding { index, encoding }),
    }
}

/// Reads all payloads as JSON arguments.
pub fn args_to_json(payloads: &[Payload]) -> Result<Vec<Value>, PayloadError> {
    payloads
        .iter()
        .enumerate()
        .map(|(i, p)| to_json(i, p))
        .collect()
}

/// Writes JSON as a payload, `null` as `binary/null` the way the SDKs' default converters do.
pub fn from_json(value: &Value) -> Payload {
    if value.is_null() {
        return Payload {
            metadata: HashMap::from([(ENCODING.into(), BINARY_NULL.as_bytes().to_vec())]),
            ..Default::default()
        };
    }
    Payload {
        metadata: HashMap::from([(ENCODING.into(), JSON_PLAIN.as_bytes().to_vec())]),
        // Serializing a `Value` cannot fail.
        data: serde_json::to_vec(value).unwrap_or_default(),
        ..Default::default()
    }
}

/// A payload from JSON text written by a guest; text that is not JSON is sent as a JSON string.
pub fn from_json_text(text: &str) -> Payload {
    match serde_json::from_str::<Value>(text) {
        Ok(v) => from_json(&v),
        Err(_) => from_json(&Value::String(text.to_string())),
    }
}

/// A payload's content as JSON text, for guests that read heartbeat details.
pub fn to_json_text(payload: &Payload) -> Option<String> {
    to_json(0, payload).ok().map(|v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_round_trips_and_null_is_binary_null() {
        let v = json!({"user_id": "u", "n": [1, 2]});
        assert_eq!(to_json(0, &from_json(&v)).unwrap(), v);
        let null = from_json(&Value::Null);
        assert_eq!(null.metadata[ENCODING], BINARY_NULL.as_bytes());
        assert_eq!(to_json(0, &null).unwrap(), Value::Null);
    }

    #[test]
    fn non_json_payloads_are_refused_by_position() {
        let p = Payload {
            metadata: HashMap::from([(ENCODING.into(), b"binary/plain".to_vec())]),
            data: vec![1, 2],
            ..Default::default()
        };
        let err = args_to_json(&[from_json(&json!(1)), p])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("argument 1") && err.contains("binary/plain"),
            "{err}"
        );
        let bad = Payload {
            data: b"{nope".to_vec(),
            ..Default::default()
        };
        assert!(matches!(to_json(0, &bad), Err(PayloadError::Json { .. })));
    }

    #[test]
    fn heartbeat_text_that_is_not_json_becomes_a_string() {
        assert_eq!(
            to_json(0, &from_json_text("{\"n\":1}")).unwrap(),
            json!({"n": 1})
        );
        assert_eq!(
            to_json(0, &from_json_text("step 3")).unwrap(),
            json!("step 3")
        );
    }
}
