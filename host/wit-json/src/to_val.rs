//! JSON -> component-model values, by [`WitType`].

use serde_json::Value;
use wasmtime::component::Val;

use crate::{child, json_key, ConvertError, WitType};

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

fn mismatch(path: &str, ty: &WitType, json: &Value) -> ConvertError {
    mismatch_msg(path, ty.name(), json)
}

fn mismatch_msg(path: &str, expected: impl std::fmt::Display, json: &Value) -> ConvertError {
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

fn missing(path: String, ty: &WitType, what: &str) -> ConvertError {
    ConvertError {
        path,
        expected: ty.name(),
        found: what.into(),
    }
}

/// Converts a JSON value to a WIT value of type `ty`. `path` names the value in errors.
pub fn to_val(json: &Value, ty: &WitType, path: &str) -> Result<Val, ConvertError> {
    let bad = || mismatch(path, ty, json);
    let items = |element: &WitType, values: &[Value]| -> Result<Vec<Val>, ConvertError> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| to_val(v, element, &format!("{path}[{i}]")))
            .collect()
    };
    Ok(match ty {
        WitType::Bool => Val::Bool(json.as_bool().ok_or_else(bad)?),
        WitType::S8 => Val::S8(int(json, path, ty)?),
        WitType::U8 => Val::U8(int(json, path, ty)?),
        WitType::S16 => Val::S16(int(json, path, ty)?),
        WitType::U16 => Val::U16(int(json, path, ty)?),
        WitType::S32 => Val::S32(int(json, path, ty)?),
        WitType::U32 => Val::U32(int(json, path, ty)?),
        WitType::S64 => Val::S64(int(json, path, ty)?),
        WitType::U64 => Val::U64(int(json, path, ty)?),
        WitType::F32 => {
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
        WitType::F64 => Val::Float64(float(json).ok_or_else(bad)?),
        WitType::Char => {
            let s = json.as_str().ok_or_else(bad)?;
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Val::Char(c),
                _ => return Err(bad()),
            }
        }
        WitType::String => Val::String(json.as_str().ok_or_else(bad)?.to_string()),
        WitType::List { element } => Val::List(items(element, json.as_array().ok_or_else(bad)?)?),
        WitType::FixedList { element, length } => {
            let values = json.as_array().ok_or_else(bad)?;
            if values.len() != *length as usize {
                return Err(bad());
            }
            Val::FixedLengthList(items(element, values)?)
        }
        WitType::Map { key, value } => {
            let pairs = match (json, key.as_ref()) {
                (Value::Object(obj), WitType::String) => obj
                    .iter()
                    .map(|(k, v)| Ok((Val::String(k.clone()), to_val(v, value, &child(path, k))?)))
                    .collect::<Result<Vec<_>, ConvertError>>()?,
                (Value::Array(values), _) => values
                    .iter()
                    .enumerate()
                    .map(|(i, pair)| {
                        let p = format!("{path}[{i}]");
                        match pair.as_array().map(Vec::as_slice) {
                            Some([k, v]) => Ok((to_val(k, key, &p)?, to_val(v, value, &p)?)),
                            _ => Err(mismatch_msg(&p, "a [key, value] pair", pair)),
                        }
                    })
                    .collect::<Result<Vec<_>, ConvertError>>()?,
                _ => return Err(bad()),
            };
            Val::Map(pairs)
        }
        WitType::Record { fields } => {
            let obj = json.as_object().ok_or_else(bad)?;
            let mut out = Vec::with_capacity(fields.len());
            for f in fields {
                let key = json_key(&f.name);
                let p = child(path, &key);
                let value = obj.get(&key).or_else(|| obj.get(&f.name));
                let val = match (value, &f.ty) {
                    (Some(v), _) => to_val(v, &f.ty, &p)?,
                    (None, WitType::Option { .. }) => Val::Option(None),
                    (None, _) => return Err(missing(p, &f.ty, "nothing (the field is missing)")),
                };
                out.push((f.name.clone(), val));
            }
            Val::Record(out)
        }
        WitType::Tuple { types } => {
            let values = json.as_array().ok_or_else(bad)?;
            if values.len() != types.len() {
                return Err(bad());
            }
            Val::Tuple(
                types
                    .iter()
                    .zip(values)
                    .enumerate()
                    .map(|(i, (ty, v))| to_val(v, ty, &format!("{path}[{i}]")))
                    .collect::<Result<_, _>>()?,
            )
        }
        WitType::Variant { cases } => {
            let (name, payload) = tagged(json).ok_or_else(bad)?;
            let case = cases
                .iter()
                .find(|c| c.name == name || json_key(&c.name) == name)
                .ok_or_else(bad)?;
            let p = child(path, &case.name);
            let payload = match (&case.payload, payload) {
                (None, None | Some(Value::Null)) => None,
                (Some(t), Some(v)) => Some(Box::new(to_val(v, t, &p)?)),
                (Some(t), None) => {
                    return Err(missing(p, t, "nothing (the case needs a payload)"));
                }
                (None, Some(other)) => {
                    return Err(mismatch_msg(&p, "null (the case has no payload)", other))
                }
            };
            Val::Variant(case.name.clone(), payload)
        }
        WitType::Enum { names } => {
            let s = json.as_str().ok_or_else(bad)?;
            let name = names
                .iter()
                .find(|n| *n == s || json_key(n) == s)
                .ok_or_else(bad)?;
            Val::Enum(name.clone())
        }
        WitType::Flags { names } => {
            let values = json.as_array().ok_or_else(bad)?;
            let mut set: Vec<String> = Vec::new();
            for (i, item) in values.iter().enumerate() {
                let s = item.as_str();
                let name = names
                    .iter()
                    .find(|n| Some(n.as_str()) == s || Some(json_key(n).as_str()) == s)
                    .ok_or_else(|| mismatch(&format!("{path}[{i}]"), ty, item))?;
                if !set.contains(name) {
                    set.push(name.clone());
                }
            }
            Val::Flags(set)
        }
        WitType::Option { some } => match (json, some.as_ref()) {
            (Value::Null, _) => Val::Option(None),
            (Value::Array(values), WitType::Option { .. }) if values.len() == 1 => {
                Val::Option(Some(Box::new(to_val(&values[0], some, path)?)))
            }
            (_, WitType::Option { .. }) => {
                return Err(mismatch_msg(
                    path,
                    "null or [value] (a nested option)",
                    json,
                ))
            }
            _ => Val::Option(Some(Box::new(to_val(json, some, path)?))),
        },
        WitType::Result { ok, err } => {
            let (name, payload) = tagged(json).ok_or_else(bad)?;
            let side = |t: &Option<Box<WitType>>, key: &str| -> Result<_, ConvertError> {
                let p = child(path, key);
                match (t, payload) {
                    (None, None | Some(Value::Null)) => Ok(None),
                    (Some(t), Some(v)) => Ok(Some(Box::new(to_val(v, t, &p)?))),
                    (Some(t), None) => Err(missing(p, t, "nothing")),
                    (None, Some(other)) => Err(mismatch_msg(&p, "null", other)),
                }
            };
            match name {
                "ok" => Val::Result(Ok(side(ok, "ok")?)),
                "err" => Val::Result(Err(side(err, "err")?)),
                _ => return Err(bad()),
            }
        }
        WitType::Unsupported { .. } => return Err(bad()),
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

/// 2^64 and 2^63, exactly, as floats.
const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;
const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;

fn int<T>(json: &Value, path: &str, ty: &WitType) -> Result<T, ConvertError>
where
    T: TryFrom<i64> + TryFrom<u64>,
{
    let out_of_range = || mismatch_msg(path, format!("{} (an integer in range)", ty.name()), json);
    let Value::Number(n) = json else {
        return Err(mismatch(path, ty, json));
    };
    if let Some(u) = n.as_u64() {
        T::try_from(u).map_err(|_| out_of_range())
    } else if let Some(i) = n.as_i64() {
        T::try_from(i).map_err(|_| out_of_range())
    } else {
        // An integer written with a fraction or an exponent (`1.0`, `1e3`: integers to JSON
        // Schema too) converts; a fraction, or an integer beyond 64 bits, is never truncated.
        match n.as_f64().filter(|f| f.fract() == 0.0) {
            Some(f) if (0.0..TWO_POW_64).contains(&f) => {
                T::try_from(f as u64).map_err(|_| out_of_range())
            }
            Some(f) if (-TWO_POW_63..0.0).contains(&f) => {
                T::try_from(f as i64).map_err(|_| out_of_range())
            }
            _ => Err(out_of_range()),
        }
    }
}

/// A JSON number, or one of the strings non-finite floats are written as.
pub(crate) fn float(json: &Value) -> Option<f64> {
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
