//! Conversion between JSON values and WebAssembly component-model values, driven by WIT types.
//!
//! Temporal carries activity arguments and results as JSON payloads; activity components
//! export typed functions. This crate maps one to the other by the export's types:
//!
//! | WIT | JSON |
//! | --- | --- |
//! | `bool` | `true` / `false` |
//! | integers | numbers, range-checked; no fractions |
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
//! [`check_supported`] rejects them before a component is accepted.

use std::fmt;

use serde_json::{Map, Number, Value};
use wasmtime::component::{Type, Val};

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

/// Checks that values of `ty` can be converted to and from JSON.
pub fn check_supported(ty: &Type, path: &str) -> Result<(), UnsupportedType> {
    let unsupported = |kind: &str| {
        Err(UnsupportedType {
            path: path.to_string(),
            kind: kind.to_string(),
        })
    };
    match ty {
        Type::Own(_) | Type::Borrow(_) => unsupported("resource"),
        Type::Future(_) => unsupported("future"),
        Type::Stream(_) => unsupported("stream"),
        Type::ErrorContext => unsupported("error-context"),
        Type::List(l) => check_supported(&l.ty(), &format!("{path}[]")),
        Type::FixedLengthList(l) => check_supported(&l.ty(), &format!("{path}[]")),
        Type::Map(m) => {
            check_supported(&m.key(), &format!("{path}{{key}}"))?;
            check_supported(&m.value(), &format!("{path}{{value}}"))
        }
        Type::Record(r) => r
            .fields()
            .try_for_each(|f| check_supported(&f.ty, &child(path, &json_key(f.name)))),
        Type::Tuple(t) => t
            .types()
            .enumerate()
            .try_for_each(|(i, t)| check_supported(&t, &format!("{path}[{i}]"))),
        Type::Variant(v) => v.cases().try_for_each(|c| match c.ty {
            Some(t) => check_supported(&t, &child(path, c.name)),
            None => Ok(()),
        }),
        Type::Option(o) => check_supported(&o.ty(), path),
        Type::Result(r) => {
            if let Some(t) = r.ok() {
                check_supported(&t, &child(path, "ok"))?;
            }
            if let Some(t) = r.err() {
                check_supported(&t, &child(path, "err"))?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// A short, user-facing name of a WIT type, for error messages.
pub fn type_name(ty: &Type) -> String {
    match ty {
        Type::Bool => "bool".into(),
        Type::S8 => "s8".into(),
        Type::U8 => "u8".into(),
        Type::S16 => "s16".into(),
        Type::U16 => "u16".into(),
        Type::S32 => "s32".into(),
        Type::U32 => "u32".into(),
        Type::S64 => "s64".into(),
        Type::U64 => "u64".into(),
        Type::Float32 => "f32".into(),
        Type::Float64 => "f64".into(),
        Type::Char => "char (a string of one character)".into(),
        Type::String => "string".into(),
        Type::List(l) => format!("list<{}> (an array)", type_name(&l.ty())),
        Type::FixedLengthList(l) => format!("list<{}, {}> (an array)", type_name(&l.ty()), l.len()),
        Type::Map(_) => "map".into(),
        Type::Record(r) => {
            let fields: Vec<String> = r.fields().map(|f| json_key(f.name)).collect();
            format!("record {{{}}} (an object)", fields.join(", "))
        }
        Type::Tuple(t) => format!("tuple of {} (an array)", t.types().len()),
        Type::Variant(v) => {
            let cases: Vec<&str> = v.cases().map(|c| c.name).collect();
            format!("variant {{{}}}", cases.join(" | "))
        }
        Type::Enum(e) => {
            let names: Vec<String> = e.names().map(|n| format!("\"{n}\"")).collect();
            format!("one of {}", names.join(", "))
        }
        Type::Option(o) => format!("option<{}> (a value or null)", type_name(&o.ty())),
        Type::Result(_) => "result ({\"ok\": ...} or {\"err\": ...})".into(),
        Type::Flags(f) => {
            let names: Vec<&str> = f.names().collect();
            format!("flags (an array of {})", names.join(", "))
        }
        Type::Own(_) | Type::Borrow(_) => "resource".into(),
        Type::Future(_) => "future".into(),
        Type::Stream(_) => "stream".into(),
        Type::ErrorContext => "error-context".into(),
    }
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn describe(json: &Value) -> String {
    match json {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) if s.len() <= 40 => format!("string {s:?}"),
        Value::String(s) => format!("a string of {} bytes", s.len()),
        Value::Array(a) => format!("an array of {} items", a.len()),
        Value::Object(_) => "an object".into(),
    }
}

fn mismatch(path: &str, ty: &Type, json: &Value) -> ConvertError {
    ConvertError {
        path: if path.is_empty() {
            "value".into()
        } else {
            path.into()
        },
        expected: type_name(ty),
        found: describe(json),
    }
}

fn mismatch_msg(path: &str, expected: impl fmt::Display, json: &Value) -> ConvertError {
    ConvertError {
        path: if path.is_empty() {
            "value".into()
        } else {
            path.into()
        },
        expected: expected.to_string(),
        found: describe(json),
    }
}

/// Converts a JSON value to a WIT value of type `ty`. `path` names the value in errors.
pub fn to_val(json: &Value, ty: &Type, path: &str) -> Result<Val, ConvertError> {
    let bad = || mismatch(path, ty, json);
    Ok(match ty {
        Type::Bool => Val::Bool(json.as_bool().ok_or_else(bad)?),
        Type::S8 => Val::S8(int(json, path, ty)?),
        Type::U8 => Val::U8(int(json, path, ty)?),
        Type::S16 => Val::S16(int(json, path, ty)?),
        Type::U16 => Val::U16(int(json, path, ty)?),
        Type::S32 => Val::S32(int(json, path, ty)?),
        Type::U32 => Val::U32(int(json, path, ty)?),
        Type::S64 => Val::S64(int(json, path, ty)?),
        Type::U64 => Val::U64(int(json, path, ty)?),
        Type::Float32 => {
            let f = float(json).ok_or_else(bad)?;
            if f.is_finite() && f.abs() > f32::MAX as f64 {
                return Err(mismatch_msg(
                    path,
                    "f32 (a number within f32's range)",
                    json,
                ));
            }
            Val::Float32(f as f32)
        }
        Type::Float64 => Val::Float64(float(json).ok_or_else(bad)?),
        Type::Char => {
            let s = json.as_str().ok_or_else(bad)?;
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Val::Char(c),
                _ => return Err(bad()),
            }
        }
        Type::String => Val::String(json.as_str().ok_or_else(bad)?.to_string()),
        Type::List(l) => {
            let items = json.as_array().ok_or_else(bad)?;
            let elem = l.ty();
            Val::List(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| to_val(v, &elem, &format!("{path}[{i}]")))
                    .collect::<Result<_, _>>()?,
            )
        }
        Type::FixedLengthList(l) => {
            let items = json.as_array().ok_or_else(bad)?;
            if items.len() != l.len() as usize {
                return Err(bad());
            }
            let elem = l.ty();
            Val::FixedLengthList(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| to_val(v, &elem, &format!("{path}[{i}]")))
                    .collect::<Result<_, _>>()?,
            )
        }
        Type::Map(m) => {
            let (kt, vt) = (m.key(), m.value());
            let pairs = match (json, &kt) {
                (Value::Object(obj), Type::String) => obj
                    .iter()
                    .map(|(k, v)| Ok((Val::String(k.clone()), to_val(v, &vt, &child(path, k))?)))
                    .collect::<Result<Vec<_>, ConvertError>>()?,
                (Value::Array(items), _) => items
                    .iter()
                    .enumerate()
                    .map(|(i, pair)| {
                        let p = format!("{path}[{i}]");
                        match pair.as_array().map(Vec::as_slice) {
                            Some([k, v]) => Ok((to_val(k, &kt, &p)?, to_val(v, &vt, &p)?)),
                            _ => Err(mismatch_msg(&p, "a [key, value] pair", pair)),
                        }
                    })
                    .collect::<Result<Vec<_>, ConvertError>>()?,
                _ => return Err(bad()),
            };
            Val::Map(pairs)
        }
        Type::Record(r) => {
            let obj = json.as_object().ok_or_else(bad)?;
            let mut fields = Vec::new();
            for f in r.fields() {
                let key = json_key(f.name);
                let p = child(path, &key);
                let value = obj.get(&key).or_else(|| obj.get(f.name));
                let val = match (value, &f.ty) {
                    (Some(v), _) => to_val(v, &f.ty, &p)?,
                    (None, Type::Option(_)) => Val::Option(None),
                    (None, _) => {
                        return Err(ConvertError {
                            path: p,
                            expected: type_name(&f.ty),
                            found: "nothing (the field is missing)".into(),
                        })
                    }
                };
                fields.push((f.name.to_string(), val));
            }
            Val::Record(fields)
        }
        Type::Tuple(t) => {
            let items = json.as_array().ok_or_else(bad)?;
            if items.len() != t.types().len() {
                return Err(bad());
            }
            Val::Tuple(
                t.types()
                    .zip(items)
                    .enumerate()
                    .map(|(i, (ty, v))| to_val(v, &ty, &format!("{path}[{i}]")))
                    .collect::<Result<_, _>>()?,
            )
        }
        Type::Variant(v) => {
            let (name, payload) = tagged(json).ok_or_else(bad)?;
            let case = v
                .cases()
                .find(|c| c.name == name || json_key(c.name) == name)
                .ok_or_else(bad)?;
            let p = child(path, case.name);
            let payload = match (case.ty, payload) {
                (None, None | Some(Value::Null)) => None,
                (Some(t), Some(v)) => Some(Box::new(to_val(v, &t, &p)?)),
                (Some(t), None) => {
                    return Err(ConvertError {
                        path: p,
                        expected: type_name(&t),
                        found: "nothing (the case needs a payload)".into(),
                    })
                }
                (None, Some(other)) => {
                    return Err(mismatch_msg(&p, "null (the case has no payload)", other))
                }
            };
            Val::Variant(case.name.to_string(), payload)
        }
        Type::Enum(e) => {
            let s = json.as_str().ok_or_else(bad)?;
            let name = e
                .names()
                .find(|n| *n == s || json_key(n) == s)
                .ok_or_else(bad)?;
            Val::Enum(name.to_string())
        }
        Type::Flags(f) => {
            let items = json.as_array().ok_or_else(bad)?;
            let mut set = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let s = item.as_str();
                let name = f
                    .names()
                    .find(|n| Some(*n) == s || Some(json_key(n).as_str()) == s)
                    .ok_or_else(|| mismatch(&format!("{path}[{i}]"), ty, item))?;
                if !set.iter().any(|n| n == name) {
                    set.push(name.to_string());
                }
            }
            Val::Flags(set)
        }
        Type::Option(o) => {
            let inner = o.ty();
            match (json, &inner) {
                (Value::Null, _) => Val::Option(None),
                (Value::Array(items), Type::Option(_)) if items.len() == 1 => {
                    Val::Option(Some(Box::new(to_val(&items[0], &inner, path)?)))
                }
                (_, Type::Option(_)) => {
                    return Err(mismatch_msg(
                        path,
                        "null or [value] (a nested option)",
                        json,
                    ))
                }
                _ => Val::Option(Some(Box::new(to_val(json, &inner, path)?))),
            }
        }
        Type::Result(r) => {
            let (name, payload) = tagged(json).ok_or_else(bad)?;
            let side = |t: Option<Type>, key: &str| -> Result<Option<Box<Val>>, ConvertError> {
                let p = child(path, key);
                match (t, payload) {
                    (None, None | Some(Value::Null)) => Ok(None),
                    (Some(t), Some(v)) => Ok(Some(Box::new(to_val(v, &t, &p)?))),
                    (Some(t), None) => Err(ConvertError {
                        path: p,
                        expected: type_name(&t),
                        found: "nothing".into(),
                    }),
                    (None, Some(other)) => Err(mismatch_msg(&p, "null", other)),
                }
            };
            match name {
                "ok" => Val::Result(Ok(side(r.ok(), "ok")?)),
                "err" => Val::Result(Err(side(r.err(), "err")?)),
                _ => return Err(bad()),
            }
        }
        Type::Own(_) | Type::Borrow(_) | Type::Future(_) | Type::Stream(_) | Type::ErrorContext => {
            return Err(bad())
        }
    })
}

/// Reads `{"name": payload}` or a bare `"name"`.
fn tagged(json: &Value) -> Option<(&str, Option<&Value>)> {
    match json {
        Value::String(s) => Some((s.as_str(), None)),
        Value::Object(obj) if obj.len() == 1 => {
            let (k, v) = obj.iter().next()?;
            Some((k.as_str(), Some(v)))
        }
        _ => None,
    }
}

fn int<T>(json: &Value, path: &str, ty: &Type) -> Result<T, ConvertError>
where
    T: TryFrom<i64> + TryFrom<u64>,
{
    let out_of_range = || {
        mismatch_msg(
            path,
            format!("{} (an integer in range)", type_name(ty)),
            json,
        )
    };
    let Value::Number(n) = json else {
        return Err(mismatch(path, ty, json));
    };
    if let Some(u) = n.as_u64() {
        T::try_from(u).map_err(|_| out_of_range())
    } else if let Some(i) = n.as_i64() {
        T::try_from(i).map_err(|_| out_of_range())
    } else {
        // A fraction, or an integer beyond 64 bits: never silently truncated.
        Err(out_of_range())
    }
}

fn float(json: &Value) -> Option<f64> {
    match json {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

fn float_json(f: f64) -> Value {
    match Number::from_f64(f) {
        Some(n) => Value::Number(n),
        None if f.is_nan() => Value::String("NaN".into()),
        None if f > 0.0 => Value::String("Infinity".into()),
        None => Value::String("-Infinity".into()),
    }
}

/// Converts a WIT value to JSON. `ty` is the value's type, needed to encode nested options.
pub fn to_json(val: &Val, ty: &Type) -> Result<Value, ConvertError> {
    to_json_at(val, ty, "")
}

fn to_json_at(val: &Val, ty: &Type, path: &str) -> Result<Value, ConvertError> {
    let shape_error = || ConvertError {
        path: if path.is_empty() {
            "value".into()
        } else {
            path.into()
        },
        expected: type_name(ty),
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
        (Val::List(items) | Val::FixedLengthList(items), Type::List(l)) => {
            array_json(items, &l.ty(), path)?
        }
        (Val::List(items) | Val::FixedLengthList(items), Type::FixedLengthList(l)) => {
            array_json(items, &l.ty(), path)?
        }
        (Val::Map(pairs), Type::Map(m)) => {
            let (kt, vt) = (m.key(), m.value());
            if matches!(kt, Type::String) {
                let mut obj = Map::new();
                for (k, v) in pairs {
                    let Val::String(key) = k else {
                        return Err(shape_error());
                    };
                    obj.insert(key.clone(), to_json_at(v, &vt, &child(path, key))?);
                }
                Value::Object(obj)
            } else {
                Value::Array(
                    pairs
                        .iter()
                        .map(|(k, v)| {
                            Ok(Value::Array(vec![
                                to_json_at(k, &kt, path)?,
                                to_json_at(v, &vt, path)?,
                            ]))
                        })
                        .collect::<Result<_, ConvertError>>()?,
                )
            }
        }
        (Val::Record(fields), Type::Record(r)) => {
            let mut obj = Map::new();
            for ((name, v), f) in fields.iter().zip(r.fields()) {
                let key = json_key(name);
                let p = child(path, &key);
                obj.insert(key, to_json_at(v, &f.ty, &p)?);
            }
            Value::Object(obj)
        }
        (Val::Tuple(items), Type::Tuple(t)) => Value::Array(
            items
                .iter()
                .zip(t.types())
                .enumerate()
                .map(|(i, (v, ty))| to_json_at(v, &ty, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        (Val::Variant(name, payload), Type::Variant(v)) => {
            let case = v.cases().find(|c| c.name == name).ok_or_else(shape_error)?;
            let inner = match (payload, case.ty) {
                (Some(p), Some(t)) => to_json_at(p, &t, &child(path, name))?,
                (None, _) => Value::Null,
                (Some(_), None) => return Err(shape_error()),
            };
            single(name, inner)
        }
        (Val::Enum(name), _) => Value::String(name.clone()),
        (Val::Flags(names), _) => Value::Array(names.iter().cloned().map(Value::String).collect()),
        (Val::Option(None), _) => Value::Null,
        (Val::Option(Some(v)), Type::Option(o)) => {
            let inner = o.ty();
            let json = to_json_at(v, &inner, path)?;
            if matches!(inner, Type::Option(_)) {
                Value::Array(vec![json])
            } else {
                json
            }
        }
        (Val::Result(res), Type::Result(r)) => {
            let (key, payload, t) = match res {
                Ok(p) => ("ok", p, r.ok()),
                Err(p) => ("err", p, r.err()),
            };
            let inner = match (payload, t) {
                (Some(p), Some(t)) => to_json_at(p, &t, &child(path, key))?,
                (None, _) => Value::Null,
                (Some(_), None) => return Err(shape_error()),
            };
            single(key, inner)
        }
        _ => return Err(shape_error()),
    })
}

fn array_json(items: &[Val], elem: &Type, path: &str) -> Result<Value, ConvertError> {
    Ok(Value::Array(
        items
            .iter()
            .enumerate()
            .map(|(i, v)| to_json_at(v, elem, &format!("{path}[{i}]")))
            .collect::<Result<_, _>>()?,
    ))
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

/// Converts a list of JSON arguments to the parameters of a function.
///
/// `params` are the function's parameter names and types. Each parameter is one argument,
/// in order; errors name the parameter (`argument 1 (email)`).
pub fn args_to_vals<'a>(
    args: &[Value],
    params: impl ExactSizeIterator<Item = (&'a str, Type)>,
) -> Result<Vec<Val>, ArgsError> {
    if args.len() != params.len() {
        return Err(ArgsError::Count {
            expected: params.len(),
            found: args.len(),
        });
    }
    params
        .zip(args)
        .enumerate()
        .map(|(i, ((name, ty), arg))| {
            to_val(arg, &ty, &format!("argument {i} ({name})")).map_err(ArgsError::Convert)
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

    #[test]
    fn primitive_conversions_check_ranges() {
        assert_eq!(
            to_val(&Value::from(255), &Type::U8, "x").unwrap(),
            Val::U8(255)
        );
        let err = to_val(&Value::from(256), &Type::U8, "x").unwrap_err();
        assert_eq!(err.path, "x");
        assert!(err.expected.contains("u8"), "{err}");
        assert!(to_val(&Value::from(-1), &Type::U32, "x").is_err());
        assert!(to_val(&serde_json::json!(1.5), &Type::S32, "x").is_err());
        assert_eq!(
            to_val(&Value::from(u64::MAX), &Type::U64, "x").unwrap(),
            Val::U64(u64::MAX)
        );
        assert_eq!(
            to_val(&Value::from(i64::MIN), &Type::S64, "x").unwrap(),
            Val::S64(i64::MIN)
        );
        assert!(to_val(&serde_json::json!(1e300), &Type::Float32, "x").is_err());
    }

    #[test]
    fn chars_are_single_character_strings() {
        assert_eq!(
            to_val(&Value::from("é"), &Type::Char, "c").unwrap(),
            Val::Char('é')
        );
        assert!(to_val(&Value::from("ab"), &Type::Char, "c").is_err());
        assert!(to_val(&Value::from(""), &Type::Char, "c").is_err());
    }

    #[test]
    fn argument_count_is_checked() {
        let err = args_to_vals(&[], [("a", Type::U32)].into_iter()).unwrap_err();
        assert_eq!(
            err,
            ArgsError::Count {
                expected: 1,
                found: 0
            }
        );
    }
}
