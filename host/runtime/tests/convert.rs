//! JSON <-> WIT conversion through a real component: every WIT type round-trips through the
//! `echo` export, and wrong JSON is refused with the field path and expected type.

use crate::support;

use activity_runtime::{kinds, Grants};
use proptest::prelude::*;
use serde_json::{json, Value};
use support::{call, float_json, misbehaving, runtime};

fn f32_json(f: f32) -> Value {
    float_json(f.into())
}

fn f64_json(f: f64) -> Value {
    float_json(f)
}

fn shape() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<f64>().prop_map(|r| json!({"circle": f64_json(r)})),
        (any::<f32>(), any::<f32>())
            .prop_map(|(w, h)| json!({"rectangle": [f32_json(w), f32_json(h)]})),
        Just(json!({"point": null})),
        ".{0,12}".prop_map(|s| json!({"named": s})),
    ]
}

fn kitchen_sink() -> impl Strategy<Value = Value> {
    let numbers = (
        any::<bool>(),
        any::<i8>(),
        any::<u8>(),
        any::<i16>(),
        any::<u16>(),
        any::<i32>(),
        any::<u32>(),
        any::<i64>(),
        any::<u64>(),
        any::<f32>(),
        any::<f64>(),
        any::<char>(),
    );
    let rest = (
        ".{0,40}",
        proptest::collection::vec(any::<u32>(), 0..8),
        (".{0,8}", any::<i64>()),
        prop_oneof![Just("red"), Just("green"), Just("blue-ish")],
        proptest::sample::subsequence(vec!["read", "write", "execute-all"], 0..=3),
        shape(),
        proptest::option::of(".{0,8}"),
        proptest::option::of(proptest::option::of(any::<u8>())),
        prop_oneof![
            any::<u16>().prop_map(|n| json!({"ok": n})),
            ".{0,8}".prop_map(|s| json!({"err": s}))
        ],
        prop_oneof![Just(json!({"ok": null})), Just(json!({"err": null}))],
        proptest::collection::vec(any::<u8>(), 0..16),
    );
    (numbers, rest).prop_map(|(n, r)| {
        json!({
            "flag": n.0, "small": n.1, "byte": n.2, "short": n.3, "ushort": n.4, "int": n.5,
            "uint": n.6, "long": n.7, "ulong": n.8, "single": f32_json(n.9), "double": f64_json(n.10),
            "letter": n.11.to_string(), "text": r.0, "numbers": r.1, "pair": [r.2 .0, r.2 .1],
            "color": r.3, "permissions": r.4, "shape": r.5, "maybe": r.6,
            "nested_maybe": match r.7 { None => Value::Null, Some(inner) => json!([inner]) },
            "outcome": r.8, "bare_outcome": r.9, "bytes": r.10,
        })
    })
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        // -0.0 and 0.0 compare equal; integers written as floats compare by value.
        (Value::Number(x), Value::Number(y)) => {
            x.as_f64() == y.as_f64() && x.is_f64() == y.is_f64() || x == y
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

#[test]
fn every_wit_type_round_trips() {
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let rt = runtime();
    let echo = tokio.block_on(misbehaving(&rt, "echo", Grants::default()));
    let config = ProptestConfig {
        cases: 64,
        ..ProptestConfig::default()
    };
    proptest!(config, |(value in kitchen_sink())| {
        let out = tokio.block_on(call(&rt, &echo, json!([value.clone()]))).unwrap();
        prop_assert!(same(&out, &value), "sent {value}\n got {out}");
    });
}

#[tokio::test]
async fn several_parameters_each_take_one_argument() {
    let rt = runtime();
    let a = misbehaving(&rt, "echo-many", Grants::default()).await;
    let args = json!(["point", "green", ["write", "read"], [1, null, -3]]);
    let out = call(&rt, &a, args).await.unwrap();
    assert_eq!(
        out,
        json!([{"point": null}, "green", ["read", "write"], [1, null, -3]])
    );
}

#[tokio::test]
async fn wrong_json_is_refused_with_its_path() {
    let rt = runtime();
    let a = misbehaving(&rt, "echo-many", Grants::default()).await;
    let cases = [
        (
            json!([{"circle": "big"}, "green", [], []]),
            "argument 0 (a).circle",
            "f64",
        ),
        (
            json!([{"triangle": 1}, "green", [], []]),
            "argument 0 (a)",
            "variant",
        ),
        (
            json!(["point", "purple", [], []]),
            "argument 1 (b)",
            "\"blue-ish\"",
        ),
        (
            json!(["point", "red", ["fly"], []]),
            "argument 2 (c)[0]",
            "flags",
        ),
        (
            json!(["point", "red", [], [1, 2.5]]),
            "argument 3 (d)[1]",
            "s32",
        ),
        (
            json!(["point", "red", [], [3_000_000_000u64]]),
            "argument 3 (d)[0]",
            "in range",
        ),
        (
            json!(["point", "red", []]),
            "expected 4 argument(s), found 3",
            "",
        ),
    ];
    for (args, path, expected) in cases {
        let err = call(&rt, &a, args.clone()).await.unwrap_err();
        assert_eq!(err.kind, kinds::INVALID_ARGUMENTS, "{args}");
        assert!(err.message.contains(path), "{args}: {}", err.message);
        assert!(err.message.contains(expected), "{args}: {}", err.message);
    }
}
