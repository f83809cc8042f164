//! Component-model values -> JSON, by [`WitType`] (needed to write nested options).

use serde_json::{Map, Number, Value};
use wasmtime::component::Val;

use crate::{child, json_key, ConvertError, WitType};

/// Converts a WIT value to JSON. `ty` is the value's type, needed to encode nested options.
pub fn to_json(val: &Val, ty: &WitType) -> Result<Value, ConvertError> {
    to_json_at(val, ty, "")
}

pub(crate) fn float_json(f: f64) -> Value {
    match Number::from_f64(f) {
        Some(n) => Value::Number(n),
        None if f.is_nan() => Value::String("NaN".into()),
        None if f > 0.0 => Value::String("Infinity".into()),
        None => Value::String("-Infinity".into()),
    }
}

fn to_json_at(val: &Val, ty: &WitType, path: &str) -> Result<Value, ConvertError> {
    let shape_error = || ConvertError {
        path: if path.is_empty() {
            "value".into()
        } else {
            path.into()
        },
        expected: ty.name(),
        found: format!("component value {}", val_kind(val)),
    };
    Ok(match (val, ty) {
        (Val::Bool(b), _) => Value::Bool(*b),
        (Val::S8(n), _) => Value::from(*n),
        (Val::U8(n), _) => Value::from(*n),
        (Val::S16(n), _) => Value::from(*n),
        (Val::U16(n), _) => Value::from(*n),
        (Val::S32(n), _) => Value::from(*n),
        (Val::U32(n), _) => Value::from(*n),
        (Val::S64(n), _) => Value::from(*n),
        (Val::U64(n), _) => Value::from(*n),
        (Val::Float32(f), _) => float_json(f64::from(*f)),
        (Val::Float64(f), _) => float_json(*f),
        (Val::Char(c), _) => Value::String(c.to_string()),
        (Val::String(s), _) => Value::String(s.clone()),
        (
            Val::List(items) | Val::FixedLengthList(items),
            WitType::List { element } | WitType::FixedList { element, .. },
        ) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| to_json_at(v, element, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        (Val::Map(pairs), WitType::Map { key, value }) => {
            if matches!(key.as_ref(), WitType::String) {
                let mut obj = Map::new();
                for (k, v) in pairs {
                    let Val::String(k) = k else {
                        return Err(shape_error());
                    };
                    obj.insert(k.clone(), to_json_at(v, value, &child(path, k))?);
                }
                Value::Object(obj)
            } else {
                Value::Array(
                    pairs
                        .iter()
                        .map(|(k, v)| {
                            Ok(Value::Array(vec![
                                to_json_at(k, key, path)?,
                                to_json_at(v, value, path)?,
                            ]))
                        })
                        .collect::<Result<_, ConvertError>>()?,
                )
            }
        }
        (Val::Record(values), WitType::Record { fields }) => {
            let mut obj = Map::new();
            for ((name, v), f) in values.iter().zip(fields) {
                let key = json_key(name);
                let p = child(path, &key);
                obj.insert(key, to_json_at(v, &f.ty, &p)?);
            }
            Value::Object(obj)
        }
        (Val::Tuple(items), WitType::Tuple { types }) => Value::Array(
            items
                .iter()
                .zip(types)
                .enumerate()
                .map(|(i, (v, ty))| to_json_at(v, ty, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        (Val::Variant(name, payload), WitType::Variant { cases }) => {
            let case = cases
                .iter()
                .find(|c| &c.name == name)
                .ok_or_else(shape_error)?;
            let inner = match (payload, &case.payload) {
                (Some(p), Some(t)) => to_json_at(p, t, &child(path, name))?,
                (None, _) => Value::Null,
                (Some(_), None) => return Err(shape_error()),
            };
            single(name, inner)
        }
        (Val::Enum(name), _) => Value::String(name.clone()),
        (Val::Flags(names), _) => Value::Array(names.iter().cloned().map(Value::String).collect()),
        (Val::Option(None), _) => Value::Null,
        (Val::Option(Some(v)), WitType::Option { some }) => {
            let json = to_json_at(v, some, path)?;
            if matches!(some.as_ref(), WitType::Option { .. }) {
                Value::Array(vec![json])
            } else {
                json
            }
        }
        (Val::Result(res), WitType::Result { ok, err }) => {
            let (key, payload, t) = match res {
                Ok(p) => ("ok", p, ok),
                Err(p) => ("err", p, err),
            };
            let inner = match (payload, t) {
                (Some(p), Some(t)) => to_json_at(p, t, &child(path, key))?,
                (None, _) => Value::Null,
                (Some(_), None) => return Err(shape_error()),
            };
            single(key, inner)
        }
        _ => return Err(shape_error()),
    })
}

fn single(key: &str, value: Value) -> Value {
    let mut obj = Map::new();
    obj.insert(key.to_string(), value);
    Value::Object(obj)
}

fn val_kind(val: &Val) -> &'static str {
    match val {
        Val::Bool(_) => "bool",
        Val::S8(_) | Val::U8(_) | Val::S16(_) | Val::U16(_) => "small integer",
        Val::S32(_) | Val::U32(_) | Val::S64(_) | Val::U64(_) => "integer",
        Val::Float32(_) | Val::Float64(_) => "float",
        Val::Char(_) => "char",
        Val::String(_) => "string",
        Val::List(_) | Val::FixedLengthList(_) => "list",
        Val::Map(_) => "map",
        Val::Record(_) => "record",
        Val::Tuple(_) => "tuple",
        Val::Variant(..) => "variant",
        Val::Enum(_) => "enum",
        Val::Option(_) => "option",
        Val::Result(_) => "result",
        Val::Flags(_) => "flags",
        Val::Resource(_) => "resource",
        Val::Future(_) => "future",
        Val::Stream(_) => "stream",
        Val::ErrorContext(_) => "error-context",
    }
}
