//! One snapshot per WIT type: its stored form (what a registry keeps with each version), its
//! name in messages, a JSON value it accepts with the component value it becomes and the JSON
//! it converts back to, and a JSON value it refuses with the error. Snapshots live in
//! `tests/snapshots/`; a change to any of them is a change to the contract.

use serde_json::{json, Value};
use wit_json::{args_to_vals, to_json, to_val, ArgsError, Case, Field, Param, Signature, WitType};

fn list(element: WitType) -> WitType {
    WitType::List {
        element: Box::new(element),
    }
}

fn option(some: WitType) -> WitType {
    WitType::Option {
        some: Box::new(some),
    }
}

fn field(name: &str, ty: WitType) -> Field {
    Field {
        name: name.into(),
        ty,
    }
}

fn names(n: &[&str]) -> Vec<String> {
    n.iter().map(|s| s.to_string()).collect()
}

/// Every kind of WIT type the host converts, with a value it accepts and one it refuses.
fn cases() -> Vec<(&'static str, WitType, Value, Value)> {
    let user = WitType::Record {
        fields: vec![
            field("user-id", WitType::String),
            field("age", WitType::U8),
            field("nickname", option(WitType::String)),
        ],
    };
    vec![
        ("bool", WitType::Bool, json!(true), json!("true")),
        ("s8", WitType::S8, json!(-128), json!(128)),
        ("u8", WitType::U8, json!(255), json!(-1)),
        ("s16", WitType::S16, json!(-32768), json!(1.5)),
        ("u16", WitType::U16, json!(65535), json!(65536)),
        ("s32", WitType::S32, json!(-7), json!(null)),
        ("u32", WitType::U32, json!(4_000_000_000u32), json!(-1)),
        ("s64", WitType::S64, json!(i64::MIN), json!("1")),
        ("u64", WitType::U64, json!(u64::MAX), json!(-5)),
        ("f32", WitType::F32, json!("NaN"), json!(1e300)),
        ("f64", WitType::F64, json!(-0.25), json!("nope")),
        ("char", WitType::Char, json!("é"), json!("ab")),
        ("string", WitType::String, json!("hello"), json!(5)),
        (
            "list",
            list(WitType::U32),
            json!([1, 2, 3]),
            json!([1, "2"]),
        ),
        (
            "fixed-list",
            WitType::FixedList {
                element: Box::new(WitType::Bool),
                length: 2,
            },
            json!([true, false]),
            json!([true]),
        ),
        (
            "map-string-keys",
            WitType::Map {
                key: Box::new(WitType::String),
                value: Box::new(WitType::U8),
            },
            json!({"a": 1}),
            json!({"a": 300}),
        ),
        (
            "map-other-keys",
            WitType::Map {
                key: Box::new(WitType::U32),
                value: Box::new(WitType::String),
            },
            json!([[1, "one"]]),
            json!([[1]]),
        ),
        (
            "record",
            user.clone(),
            json!({"user_id": "u1", "age": 30}),
            json!({"user-id": "u1"}),
        ),
        (
            "tuple",
            WitType::Tuple {
                types: vec![WitType::String, WitType::S64],
            },
            json!(["a", -1]),
            json!(["a"]),
        ),
        (
            "variant",
            WitType::Variant {
                cases: vec![
                    Case {
                        name: "circle".into(),
                        payload: Some(WitType::F64),
                    },
                    Case {
                        name: "point".into(),
                        payload: None,
                    },
                ],
            },
            json!({"circle": 2.5}),
            json!({"circle": null}),
        ),
        (
            "enum",
            WitType::Enum {
                names: names(&["red", "blue-ish"]),
            },
            json!("blue_ish"),
            json!("green"),
        ),
        (
            "flags",
            WitType::Flags {
                names: names(&["read", "write"]),
            },
            json!(["write", "read", "write"]),
            json!(["execute"]),
        ),
        ("option", option(WitType::U8), json!(null), json!("x")),
        (
            "nested-option",
            option(option(WitType::U8)),
            json!([null]),
            json!(5),
        ),
        (
            "result",
            WitType::Result {
                ok: Some(Box::new(user)),
                err: None,
            },
            json!({"err": null}),
            json!({"maybe": 1}),
        ),
    ]
}

/// Snapshots are read from this package's `tests/snapshots` as cargo gives the running test
/// its directory: a test binary built in another checkout sharing the target directory
/// would otherwise look for them in that checkout.
fn snapshots() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    if let Some(dir) = std::env::var_os("CARGO_MANIFEST_DIR") {
        settings.set_snapshot_path(std::path::Path::new(&dir).join("tests/snapshots"));
    }
    settings
}

#[test]
fn every_wit_type_has_its_snapshot() {
    let _snapshots = snapshots().bind_to_scope();
    for (name, ty, good, bad) in cases() {
        let val = to_val(&good, &ty, "arg").unwrap_or_else(|e| panic!("{name}: {e}"));
        let back = to_json(&val, &ty).unwrap_or_else(|e| panic!("{name}: {e}"));
        let refused = to_val(&bad, &ty, "arg").expect_err(name);
        // The stored form reads back as the same type.
        let stored = serde_json::to_value(&ty).unwrap();
        assert_eq!(
            serde_json::from_value::<WitType>(stored.clone()).unwrap(),
            ty
        );
        ty.check_supported(name).unwrap();
        insta::assert_json_snapshot!(
            name,
            json!({
                "stored": stored,
                "name": ty.name(),
                "accepts": good,
                "value": format!("{val:?}"),
                "back": back,
                "refuses": bad,
                "error": refused.to_string(),
            })
        );
    }
}

#[test]
fn types_that_cannot_cross_json_are_refused_with_their_path() {
    let ty = WitType::Record {
        fields: vec![field(
            "items",
            list(WitType::Unsupported {
                kind: "resource".into(),
            }),
        )],
    };
    let err = ty.check_supported("argument").unwrap_err();
    assert_eq!(
        err.to_string(),
        "argument.items[]: type resource cannot be passed as JSON"
    );
}

#[test]
fn integers_are_range_checked_and_never_truncated() {
    for (ty, ok, bad) in [
        (WitType::U8, json!(255), json!(256)),
        (WitType::U32, json!(0), json!(-1)),
        (WitType::S32, json!(-1.0), json!(1.5)),
        (WitType::U16, json!(1e3), json!(65536.0)),
        (WitType::U64, json!(u64::MAX), json!(1e20)),
        (WitType::S64, json!(i64::MIN), json!(u64::MAX)),
    ] {
        assert!(to_val(&ok, &ty, "x").is_ok(), "{ok} as {ty:?}");
        let err = to_val(&bad, &ty, "x").unwrap_err();
        assert_eq!(err.path, "x");
        assert!(err.expected.contains(&ty.name()), "{err}");
    }
}

#[test]
fn arguments_are_counted_and_named() {
    let signature = Signature {
        params: vec![
            Param {
                name: "user".into(),
                ty: WitType::String,
            },
            Param {
                name: "age".into(),
                ty: WitType::U8,
            },
        ],
        result: None,
    };
    assert_eq!(
        args_to_vals(&[json!("a")], &signature.params).unwrap_err(),
        ArgsError::Count {
            expected: 2,
            found: 1
        }
    );
    let err = args_to_vals(&[json!("a"), json!(-1)], &signature.params).unwrap_err();
    assert_eq!(
        err.to_string(),
        "argument 1 (age): expected u8 (an integer in range), found number -1"
    );
    snapshots().bind(|| insta::assert_json_snapshot!("signature", signature));
}
