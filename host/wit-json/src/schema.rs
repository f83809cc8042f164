//! JSON Schema (2020-12) of a [`WitType`]: exactly the JSON the host's conversion accepts, in
//! its canonical spelling. The host also accepts a few aliases the schema leaves out (a record
//! field or a case under its kebab-case name, a payload-less case as a bare string inside a
//! `result`), so every value the schema accepts converts, and every value the conversion
//! refuses the schema refuses too.

use serde_json::{json, Map, Value};

use crate::{json_key, Signature, WitType};

/// The JSON Schema dialect of every schema here.
pub const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

fn integer(min: i128, max: i128) -> Value {
    json!({"type": "integer", "minimum": min, "maximum": max})
}

fn float(max: Option<f64>) -> Value {
    let mut number = json!({"type": "number"});
    if let Some(max) = max {
        number["minimum"] = json!(-max);
        number["maximum"] = json!(max);
    }
    json!({"anyOf": [number, {"enum": ["NaN", "Infinity", "-Infinity"]}]})
}

fn exactly(items: Vec<Value>) -> Value {
    let n = items.len();
    if n == 0 {
        // `prefixItems` must not be empty.
        return json!({"type": "array", "maxItems": 0});
    }
    json!({"type": "array", "prefixItems": items, "minItems": n, "maxItems": n})
}

/// `{"name": payload}` and nothing else.
fn tagged(name: &str, payload: Value) -> Value {
    json!({
        "type": "object",
        "properties": {name: payload},
        "required": [name],
        "additionalProperties": false,
    })
}

impl WitType {
    /// The JSON Schema of this type's JSON form.
    pub fn json_schema(&self) -> Value {
        match self {
            Self::Bool => json!({"type": "boolean"}),
            Self::S8 => integer(i8::MIN.into(), i8::MAX.into()),
            Self::U8 => integer(0, u8::MAX.into()),
            Self::S16 => integer(i16::MIN.into(), i16::MAX.into()),
            Self::U16 => integer(0, u16::MAX.into()),
            Self::S32 => integer(i32::MIN.into(), i32::MAX.into()),
            Self::U32 => integer(0, u32::MAX.into()),
            Self::S64 => integer(i64::MIN.into(), i64::MAX.into()),
            Self::U64 => integer(0, u64::MAX.into()),
            Self::F32 => float(Some(f32::MAX.into())),
            Self::F64 => float(None),
            Self::Char => json!({"type": "string", "minLength": 1, "maxLength": 1}),
            Self::String => json!({"type": "string"}),
            Self::List { element } => json!({"type": "array", "items": element.json_schema()}),
            Self::FixedList { element, length } => json!({
                "type": "array",
                "items": element.json_schema(),
                "minItems": length,
                "maxItems": length,
            }),
            Self::Map { key, value } => {
                let pairs = json!({
                    "type": "array",
                    "items": exactly(vec![key.json_schema(), value.json_schema()]),
                });
                if matches!(key.as_ref(), WitType::String) {
                    let object =
                        json!({"type": "object", "additionalProperties": value.json_schema()});
                    json!({"anyOf": [object, pairs]})
                } else {
                    pairs
                }
            }
            Self::Record { fields } => {
                let mut properties = Map::new();
                let mut required = Vec::new();
                for f in fields {
                    let key = json_key(&f.name);
                    if !matches!(f.ty, WitType::Option { .. }) {
                        required.push(Value::String(key.clone()));
                    }
                    properties.insert(key, f.ty.json_schema());
                }
                json!({"type": "object", "properties": properties, "required": required})
            }
            Self::Tuple { types } => exactly(types.iter().map(WitType::json_schema).collect()),
            Self::Variant { cases } => {
                let cases: Vec<Value> = cases
                    .iter()
                    .map(|c| match &c.payload {
                        Some(t) => tagged(&c.name, t.json_schema()),
                        None => json!({"anyOf": [
                            {"const": c.name},
                            tagged(&c.name, json!({"type": "null"})),
                        ]}),
                    })
                    .collect();
                json!({"oneOf": cases})
            }
            Self::Enum { names } => json!({"enum": names}),
            Self::Flags { names } => json!({"type": "array", "items": {"enum": names}}),
            Self::Option { some } => {
                let inner = match some.as_ref() {
                    // `some(v)` of a nested option is `[v]`, so `some(none)` stays distinct.
                    WitType::Option { .. } => exactly(vec![some.json_schema()]),
                    _ => some.json_schema(),
                };
                json!({"anyOf": [{"type": "null"}, inner]})
            }
            Self::Result { ok, err } => {
                let side = |t: &Option<Box<WitType>>| match t {
                    Some(t) => t.json_schema(),
                    None => json!({"type": "null"}),
                };
                json!({"oneOf": [tagged("ok", side(ok)), tagged("err", side(err))]})
            }
            // Refused when a component loads; nothing converts to it.
            Self::Unsupported { .. } => json!(false),
        }
    }
}

impl Signature {
    /// The schema of an activity with this signature: `parameters` (the arguments array),
    /// `result` (what a completed call returns: the `ok` side of a `result`, else the value),
    /// and `failure` (an application failure; its `details` carry the `err` side of a
    /// `result` when the export returns one).
    pub fn json_schema(&self, title: &str) -> Value {
        let parameters: Vec<Value> = self
            .params
            .iter()
            .map(|p| {
                let mut schema = p.ty.json_schema();
                if let Value::Object(map) = &mut schema {
                    map.insert("title".into(), Value::String(p.name.clone()));
                }
                schema
            })
            .collect();
        let (result, details) = match &self.result {
            Some(WitType::Result { ok, err }) => (
                ok.as_ref()
                    .map_or(json!({"type": "null"}), |t| t.json_schema()),
                err.as_ref().map_or(json!(true), |t| t.json_schema()),
            ),
            Some(t) => (t.json_schema(), json!(true)),
            None => (json!({"type": "null"}), json!(true)),
        };
        json!({
            "$schema": DIALECT,
            "title": title,
            "type": "object",
            "properties": {
                "parameters": exactly(parameters),
                "result": result,
                "failure": {
                    "type": "object",
                    "properties": {
                        "type": {"type": "string"},
                        "message": {"type": "string"},
                        "non_retryable": {"type": "boolean"},
                        "details": {"anyOf": [{"type": "null"}, details]},
                    },
                    "required": ["type", "message", "non_retryable"],
                },
            },
        })
    }
}
