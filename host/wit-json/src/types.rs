//! [`WitType`]: a WIT type as plain data, taken from wasmtime's types once when a component
//! loads. Conversions run over it, the registry stores it with each version (so a host that
//! never runs a component can still check arguments against it), and JSON Schema is derived
//! from it.

use serde::{Deserialize, Serialize};
use wasmtime::component::Type;

use crate::{child, json_key, UnsupportedType};

/// A WIT type, as data.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum WitType {
    /// `bool`
    Bool,
    /// `s8`
    S8,
    /// `u8`
    U8,
    /// `s16`
    S16,
    /// `u16`
    U16,
    /// `s32`
    S32,
    /// `u32`
    U32,
    /// `s64`
    S64,
    /// `u64`
    U64,
    /// `f32`
    F32,
    /// `f64`
    F64,
    /// `char`
    Char,
    /// `string`
    String,
    /// `list<T>`
    List {
        /// `T`
        element: Box<WitType>,
    },
    /// `list<T, N>`
    FixedList {
        /// `T`
        element: Box<WitType>,
        /// `N`
        length: u32,
    },
    /// `map<K, V>`
    Map {
        /// `K`
        key: Box<WitType>,
        /// `V`
        value: Box<WitType>,
    },
    /// `record { .. }`
    Record {
        /// The fields, in order.
        fields: Vec<Field>,
    },
    /// `tuple<..>`
    Tuple {
        /// The element types, in order.
        types: Vec<WitType>,
    },
    /// `variant { .. }`
    Variant {
        /// The cases, in order.
        cases: Vec<Case>,
    },
    /// `enum { .. }`
    Enum {
        /// The case names, in order.
        names: Vec<String>,
    },
    /// `flags { .. }`
    Flags {
        /// The flag names, in order.
        names: Vec<String>,
    },
    /// `option<T>`
    Option {
        /// `T`
        some: Box<WitType>,
    },
    /// `result<T, E>`; either side may have no type.
    Result {
        /// `T`
        ok: Option<Box<WitType>>,
        /// `E`
        err: Option<Box<WitType>>,
    },
    /// A type that cannot cross a JSON boundary (`resource`, `future`, `stream`,
    /// `error-context`); [`WitType::check_supported`] refuses it.
    Unsupported {
        /// Its kind.
        kind: String,
    },
}

/// A record field.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Field {
    /// The WIT name (kebab-case).
    pub name: String,
    /// Its type.
    #[serde(flatten)]
    pub ty: WitType,
}

/// A variant case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Case {
    /// The WIT name (kebab-case).
    pub name: String,
    /// The payload's type, if the case has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<WitType>,
}

/// A function's parameters and result: what a caller's JSON must fit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Signature {
    /// Parameter names and types, in order.
    pub params: Vec<Param>,
    /// The result type, if the function returns one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<WitType>,
}

/// A named parameter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Param {
    /// The WIT name.
    pub name: String,
    /// Its type.
    #[serde(flatten)]
    pub ty: WitType,
}

fn boxed(ty: Type) -> Box<WitType> {
    Box::new(WitType::from(&ty))
}

impl From<&Type> for WitType {
    fn from(ty: &Type) -> Self {
        match ty {
            Type::Bool => Self::Bool,
            Type::S8 => Self::S8,
            Type::U8 => Self::U8,
            Type::S16 => Self::S16,
            Type::U16 => Self::U16,
            Type::S32 => Self::S32,
            Type::U32 => Self::U32,
            Type::S64 => Self::S64,
            Type::U64 => Self::U64,
            Type::Float32 => Self::F32,
            Type::Float64 => Self::F64,
            Type::Char => Self::Char,
            Type::String => Self::String,
            Type::List(l) => Self::List {
                element: boxed(l.ty()),
            },
            Type::FixedLengthList(l) => Self::FixedList {
                element: boxed(l.ty()),
                length: l.len(),
            },
            Type::Map(m) => Self::Map {
                key: boxed(m.key()),
                value: boxed(m.value()),
            },
            Type::Record(r) => Self::Record {
                fields: r
                    .fields()
                    .map(|f| Field {
                        name: f.name.to_string(),
                        ty: Self::from(&f.ty),
                    })
                    .collect(),
            },
            Type::Tuple(t) => Self::Tuple {
                types: t.types().map(|t| Self::from(&t)).collect(),
            },
            Type::Variant(v) => Self::Variant {
                cases: v
                    .cases()
                    .map(|c| Case {
                        name: c.name.to_string(),
                        payload: c.ty.as_ref().map(Self::from),
                    })
                    .collect(),
            },
            Type::Enum(e) => Self::Enum {
                names: e.names().map(str::to_string).collect(),
            },
            Type::Flags(f) => Self::Flags {
                names: f.names().map(str::to_string).collect(),
            },
            Type::Option(o) => Self::Option {
                some: boxed(o.ty()),
            },
            Type::Result(r) => Self::Result {
                ok: r.ok().map(boxed),
                err: r.err().map(boxed),
            },
            Type::Own(_) | Type::Borrow(_) => Self::unsupported("resource"),
            Type::Future(_) => Self::unsupported("future"),
            Type::Stream(_) => Self::unsupported("stream"),
            Type::ErrorContext => Self::unsupported("error-context"),
        }
    }
}

impl WitType {
    fn unsupported(kind: &str) -> Self {
        Self::Unsupported { kind: kind.into() }
    }

    /// Checks that values of this type can be converted to and from JSON; `path` names it in
    /// the error.
    pub fn check_supported(&self, path: &str) -> Result<(), UnsupportedType> {
        match self {
            Self::Unsupported { kind } => Err(UnsupportedType {
                path: path.to_string(),
                kind: kind.clone(),
            }),
            Self::List { element } | Self::FixedList { element, .. } => {
                element.check_supported(&format!("{path}[]"))
            }
            Self::Map { key, value } => {
                key.check_supported(&format!("{path}{{key}}"))?;
                value.check_supported(&format!("{path}{{value}}"))
            }
            Self::Record { fields } => fields
                .iter()
                .try_for_each(|f| f.ty.check_supported(&child(path, &json_key(&f.name)))),
            Self::Tuple { types } => types
                .iter()
                .enumerate()
                .try_for_each(|(i, t)| t.check_supported(&format!("{path}[{i}]"))),
            Self::Variant { cases } => cases.iter().try_for_each(|c| match &c.payload {
                Some(t) => t.check_supported(&child(path, &c.name)),
                None => Ok(()),
            }),
            Self::Option { some } => some.check_supported(path),
            Self::Result { ok, err } => {
                if let Some(t) = ok {
                    t.check_supported(&child(path, "ok"))?;
                }
                if let Some(t) = err {
                    t.check_supported(&child(path, "err"))?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// A short, user-facing name of the type, for error messages.
    pub fn name(&self) -> String {
        match self {
            Self::Bool => "bool".into(),
            Self::S8 => "s8".into(),
            Self::U8 => "u8".into(),
            Self::S16 => "s16".into(),
            Self::U16 => "u16".into(),
            Self::S32 => "s32".into(),
            Self::U32 => "u32".into(),
            Self::S64 => "s64".into(),
            Self::U64 => "u64".into(),
            Self::F32 => "f32".into(),
            Self::F64 => "f64".into(),
            Self::Char => "char (a string of one character)".into(),
            Self::String => "string".into(),
            Self::List { element } => format!("list<{}> (an array)", element.name()),
            Self::FixedList { element, length } => {
                format!("list<{}, {length}> (an array)", element.name())
            }
            Self::Map { .. } => "map".into(),
            Self::Record { fields } => {
                let fields: Vec<String> = fields.iter().map(|f| json_key(&f.name)).collect();
                format!("record {{{}}} (an object)", fields.join(", "))
            }
            Self::Tuple { types } => format!("tuple of {} (an array)", types.len()),
            Self::Variant { cases } => {
                let cases: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
                format!("variant {{{}}}", cases.join(" | "))
            }
            Self::Enum { names } => {
                let names: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
                format!("one of {}", names.join(", "))
            }
            Self::Option { some } => format!("option<{}> (a value or null)", some.name()),
            Self::Result { .. } => "result ({\"ok\": ...} or {\"err\": ...})".into(),
            Self::Flags { names } => format!("flags (an array of {})", names.join(", ")),
            Self::Unsupported { kind } => kind.clone(),
        }
    }
}

impl Signature {
    /// The signature of a function with `params` and `result`, in wasmtime's types.
    pub fn of<'a>(
        params: impl IntoIterator<Item = (&'a str, Type)>,
        result: Option<&Type>,
    ) -> Self {
        Self {
            params: params
                .into_iter()
                .map(|(name, ty)| Param {
                    name: name.to_string(),
                    ty: WitType::from(&ty),
                })
                .collect(),
            result: result.map(WitType::from),
        }
    }

    /// Checks that every parameter and the result can be converted to and from JSON.
    pub fn check_supported(&self) -> Result<(), UnsupportedType> {
        for p in &self.params {
            p.ty.check_supported(&p.name)?;
        }
        match &self.result {
            Some(t) => t.check_supported("result"),
            None => Ok(()),
        }
    }
}
