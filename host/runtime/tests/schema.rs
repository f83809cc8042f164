//! The JSON Schema of an activity, derived from its WIT signature, against the host's own
//! conversion (`wit_json::to_val`), over every type the test component's exports take and
//! return: values generated from the types validate and convert, and values near them (a
//! random part replaced by arbitrary JSON) that the schema accepts also convert, so whatever
//! the conversion refuses, the schema refuses.

use crate::support;

use std::sync::atomic::{AtomicUsize, Ordering};

use activity_runtime::{Grants, Signature, WitType};
use proptest::prelude::*;
use proptest::strategy::{BoxedStrategy, Union};
use serde_json::{json, Map, Value};
use support::{float_json, load, misbehaving_spec, runtime};

/// Exports of the misbehaving component whose signatures cover every kind of WIT type.
const EXPORTS: &[&str] = &[
    "echo",
    "echo-many",
    "add",
    "fail",
    "read-file",
    "fetch",
    "heartbeat-then-fail",
    "info",
];

fn signatures() -> Vec<(String, Signature)> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let runtime = runtime();
        let mut out = Vec::new();
        for export in EXPORTS {
            let spec = misbehaving_spec(export, Grants::default(), Default::default());
            let component = load(&runtime, spec, test_components::MISBEHAVING).await;
            out.push((export.to_string(), component.signature().as_ref().clone()));
        }
        out
    })
}

/// A compiled schema, and whether an instance validates against it.
struct Validator {
    schemas: boon::Schemas,
    index: boon::SchemaIndex,
}

impl Validator {
    fn new(schema: Value) -> Self {
        let mut schemas = boon::Schemas::new();
        let mut compiler = boon::Compiler::new();
        let url = "https://activity-host.invalid/schema.json";
        compiler.add_resource(url, schema).unwrap();
        let index = compiler.compile(url, &mut schemas).unwrap();
        Self { schemas, index }
    }

    /// True when `{part: instance}` validates: the activity schema's `part` accepts it.
    fn accepts(&self, part: &str, instance: &Value) -> bool {
        self.schemas
            .validate(&json!({ part: instance }), self.index)
            .is_ok()
    }
}

fn arbitrary_json() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        prop_oneof![Just("ok"), Just("err"), Just("NaN"), Just("red"), Just("x")]
            .prop_map(Value::from),
        ".{0,3}".prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z_]{1,8}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}

/// JSON of type `ty`; with `loose`, any part may be replaced by arbitrary JSON.
fn value_of(ty: &WitType, loose: bool) -> BoxedStrategy<Value> {
    let valid = valid_of(ty, loose);
    if loose {
        prop_oneof![6 => valid, 1 => arbitrary_json()].boxed()
    } else {
        valid
    }
}

fn valid_of(ty: &WitType, loose: bool) -> BoxedStrategy<Value> {
    let array = |items: Vec<BoxedStrategy<Value>>| items.prop_map(Value::Array).boxed();
    match ty {
        WitType::Bool => any::<bool>().prop_map(Value::from).boxed(),
        WitType::S8 => any::<i8>().prop_map(Value::from).boxed(),
        WitType::U8 => any::<u8>().prop_map(Value::from).boxed(),
        WitType::S16 => any::<i16>().prop_map(Value::from).boxed(),
        WitType::U16 => any::<u16>().prop_map(Value::from).boxed(),
        WitType::S32 => any::<i32>().prop_map(Value::from).boxed(),
        WitType::U32 => any::<u32>().prop_map(Value::from).boxed(),
        WitType::S64 => any::<i64>().prop_map(Value::from).boxed(),
        WitType::U64 => any::<u64>().prop_map(Value::from).boxed(),
        WitType::F32 => any::<f32>().prop_map(|f| float_json(f.into())).boxed(),
        WitType::F64 => any::<f64>().prop_map(float_json).boxed(),
        WitType::Char => any::<char>()
            .prop_map(|c| Value::from(c.to_string()))
            .boxed(),
        WitType::String => ".{0,12}".prop_map(Value::from).boxed(),
        WitType::List { element } => proptest::collection::vec(value_of(element, loose), 0..4)
            .prop_map(Value::Array)
            .boxed(),
        WitType::FixedList { element, length } => {
            array(vec![value_of(element, loose); *length as usize])
        }
        WitType::Map { key, value } => {
            let pair =
                (value_of(key, loose), value_of(value, loose)).prop_map(|(k, v)| json!([k, v]));
            proptest::collection::vec(pair, 0..3)
                .prop_map(Value::Array)
                .boxed()
        }
        WitType::Record { fields } => {
            let fields: Vec<BoxedStrategy<(String, Option<Value>)>> = fields
                .iter()
                .map(|f| {
                    let key = wit_json::json_key(&f.name);
                    let value = value_of(&f.ty, loose);
                    match f.ty {
                        // A missing option field is `none`.
                        WitType::Option { .. } => proptest::option::of(value)
                            .prop_map(move |v| (key.clone(), v))
                            .boxed(),
                        _ => value.prop_map(move |v| (key.clone(), Some(v))).boxed(),
                    }
                })
                .collect();
            fields
                .prop_map(|fields| {
                    let map: Map<String, Value> = fields
                        .into_iter()
                        .filter_map(|(k, v)| Some((k, v?)))
                        .collect();
                    Value::Object(map)
                })
                .boxed()
        }
        WitType::Tuple { types } => array(types.iter().map(|t| value_of(t, loose)).collect()),
        WitType::Variant { cases } => Union::new(cases.iter().map(|c| {
            let name = c.name.clone();
            match &c.payload {
                Some(t) => value_of(t, loose)
                    .prop_map(move |v| json!({ name.clone(): v }))
                    .boxed(),
                None => prop_oneof![Just(json!(name.clone())), Just(json!({ name: null }))].boxed(),
            }
        }))
        .boxed(),
        WitType::Enum { names } => proptest::sample::select(names.clone())
            .prop_map(Value::from)
            .boxed(),
        WitType::Flags { names } => proptest::sample::subsequence(names.clone(), 0..=names.len())
            .prop_map(|n| json!(n))
            .boxed(),
        WitType::Option { some } => {
            let inner = value_of(some, loose);
            let inner = match some.as_ref() {
                WitType::Option { .. } => inner.prop_map(|v| json!([v])).boxed(),
                _ => inner,
            };
            prop_oneof![Just(Value::Null), inner].boxed()
        }
        WitType::Result { ok, err } => {
            let side = |t: &Option<Box<WitType>>, key: &'static str| match t {
                Some(t) => value_of(t, loose)
                    .prop_map(move |v| json!({ key: v }))
                    .boxed(),
                None => Just(json!({ key: null })).boxed(),
            };
            prop_oneof![side(ok, "ok"), side(err, "err")].boxed()
        }
        WitType::Unsupported { kind } => panic!("{kind} in a loaded signature"),
    }
}

/// The arguments array of a signature.
fn arguments(signature: &Signature, loose: bool) -> BoxedStrategy<Value> {
    let params: Vec<BoxedStrategy<Value>> = signature
        .params
        .iter()
        .map(|p| value_of(&p.ty, loose))
        .collect();
    params.prop_map(Value::Array).boxed()
}

fn converts(signature: &Signature, args: &Value) -> Result<(), String> {
    let args = args.as_array().ok_or("not an array")?;
    wit_json::args_to_vals(args, &signature.params)
        .map(drop)
        .map_err(|e| e.to_string())
}

#[test]
fn generated_values_validate_and_convert_and_the_schema_never_accepts_what_the_host_refuses() {
    for (export, signature) in signatures() {
        let schema = Validator::new(signature.json_schema(&export));
        let config = ProptestConfig::with_cases(96);
        proptest!(config, |(args in arguments(&signature, false))| {
            prop_assert!(schema.accepts("parameters", &args), "{export}: schema refuses {args}");
            prop_assert!(converts(&signature, &args).is_ok(), "{export}: host refuses {args}: {:?}", converts(&signature, &args));
        });
        let refused = AtomicUsize::new(0);
        proptest!(config, |(args in arguments(&signature, true))| {
            if schema.accepts("parameters", &args) {
                prop_assert!(converts(&signature, &args).is_ok(), "{export}: the schema accepts {args}, the host refuses it: {:?}", converts(&signature, &args));
            } else {
                refused.fetch_add(1, Ordering::Relaxed);
            }
        });
        // Not vacuous: the near values include ones both refuse.
        if !signature.params.is_empty() {
            assert!(
                refused.into_inner() > 0,
                "{export}: no near value was refused"
            );
        }
        // The result side too: what a completed call returns fits `result`.
        if let Some(result) = &signature.result {
            let ok_side = match result {
                WitType::Result { ok, .. } => ok.as_deref().cloned(),
                other => Some(other.clone()),
            };
            if let Some(ok) = ok_side {
                proptest!(config, |(value in value_of(&ok, false))| {
                    prop_assert!(schema.accepts("result", &value), "{export}: result schema refuses {value}");
                });
            }
        }
    }
}

#[test]
fn the_schema_refuses_what_the_host_refuses_in_known_cases() {
    let signatures = signatures();
    let (_, echo) = signatures.iter().find(|(e, _)| e == "echo").unwrap();
    let schema = Validator::new(echo.json_schema("echo"));
    for bad in [
        json!([]),
        json!([{}]),
        json!([1]),
        json!("x"),
        json!([null, null]),
    ] {
        assert!(converts(echo, &bad).is_err(), "{bad}");
        assert!(!schema.accepts("parameters", &bad), "{bad}");
    }
}
