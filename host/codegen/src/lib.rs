//! Typed client stubs for deployed activities, generated from their WIT signatures: the
//! types (Python `TypedDict`s, TypeScript interfaces, Rust serde types, Go structs, Java
//! records) and one function per
//! activity that schedules it by its Temporal type name with the SDK's own call and decodes
//! its result and its typed failure.
//!
//! The types follow the host's JSON mapping exactly (`wit_json`): record keys with `_`,
//! enum cases and flags as strings, variants as `{"case": payload}` (a case without payload
//! as its name), options as the value or `null`, results as `{"ok": v}` / `{"err": e}`.
//! Components do not carry WIT type names, so types are named from where they appear: a
//! parameter's record after the parameter (`user` -> `User`), a result after the activity
//! (`ValidateUserOutput`), a field's type after its parent and the field; two places with
//! the same type share the first name.

mod go;
mod java;
mod model;
mod names;
mod python;
mod rust;
mod typescript;

pub use model::Activity;
pub use names::identifier;

/// A target language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// Python, for the `temporalio` SDK's workflows.
    Python,
    /// TypeScript, for `@temporalio/workflow`.
    TypeScript,
    /// Rust, for the `temporalio-sdk` crate's workflows.
    Rust,
    /// Go, for `go.temporal.io/sdk/workflow`.
    Go,
    /// Java, for `io.temporal:temporal-sdk`'s workflows.
    Java,
}

/// The failure types the host itself raises (`activity_runtime::failure::kinds::ALL`; the
/// stubs' test checks that the two lists agree).
pub const HOST_FAILURES: &[&str] = &[
    "ActivityFailure",
    "ActivityError",
    "GuestTrap",
    "TimeLimitExceeded",
    "MemoryLimitExceeded",
    "FuelExhausted",
    "StackOverflow",
    "OutputTooLarge",
    "InvalidArguments",
    "InstancePoolExhausted",
    "InstantiationFailed",
    "ConcurrencyLimitReached",
    "MemoryBudgetExhausted",
];

impl Lang {
    /// Every language, as named on the command line.
    pub const ALL: &[(&str, Lang)] = &[
        ("python", Lang::Python),
        ("typescript", Lang::TypeScript),
        ("rust", Lang::Rust),
        ("go", Lang::Go),
        ("java", Lang::Java),
    ];

    /// The usual file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Lang::Python => "py",
            Lang::TypeScript => "ts",
            Lang::Rust => "rs",
            Lang::Go => "go",
            Lang::Java => "java",
        }
    }

    /// The package the module is in when none is asked for (Go and Java; the others have no
    /// package clause).
    pub fn default_package(self) -> Option<&'static str> {
        match self {
            Lang::Go | Lang::Java => Some("activities"),
            _ => None,
        }
    }
}

impl std::str::FromStr for Lang {
    type Err = CodegenError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(s) || (s == "ts" && *name == "typescript"))
            .map(|(_, l)| *l)
            .ok_or_else(|| CodegenError::UnknownLanguage(s.to_string()))
    }
}

/// Why no code was generated.
#[derive(Debug, thiserror::Error)]
pub enum CodegenError {
    /// A language that is not offered.
    #[error("unknown language {0:?}: use python, typescript, rust, go or java")]
    UnknownLanguage(String),
    /// A package name the language does not take.
    #[error("{0}")]
    InvalidPackage(String),
    /// A WIT type with no JSON mapping.
    #[error("activity {activity}: {path} is a {kind}, which has no JSON mapping")]
    Unsupported {
        /// The activity type.
        activity: String,
        /// Where (parameter, field, ...).
        path: String,
        /// The WIT kind (`resource`, `stream`, ...).
        kind: String,
    },
    /// Nothing to generate.
    #[error("no activities to generate")]
    Empty,
}

/// The stub module for `activities` in `lang`, scheduling them on `task_queue` by default.
pub fn generate(
    lang: Lang,
    activities: &[Activity],
    task_queue: &str,
) -> Result<String, CodegenError> {
    generate_in(lang, activities, task_queue, None)
}

/// [`generate`], in `package` (Go: the package clause; Java: the dotted package the class
/// `Activities` is in); `None`: [`Lang::default_package`].
pub fn generate_in(
    lang: Lang,
    activities: &[Activity],
    task_queue: &str,
    package: Option<&str>,
) -> Result<String, CodegenError> {
    let package = match (package, lang.default_package()) {
        (None, default) => default.unwrap_or_default(),
        (Some(_), None) => {
            return Err(CodegenError::InvalidPackage(
                "a package applies to go and java only".into(),
            ))
        }
        (Some(p), Some(_)) => names::check_package(lang, p)?,
    };
    if activities.is_empty() {
        return Err(CodegenError::Empty);
    }
    let model = model::Model::build(activities)?;
    Ok(match lang {
        Lang::Python => python::render(&model, task_queue),
        Lang::TypeScript => typescript::render(&model, task_queue),
        Lang::Rust => rust::render(&model, task_queue),
        Lang::Go => go::render(&model, task_queue, package),
        Lang::Java => java::render(&model, task_queue, package),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use wit_json::{Field, Param, Signature, WitType};

    fn signature(ty: WitType) -> Signature {
        Signature {
            params: vec![Param {
                name: "in".into(),
                ty,
            }],
            result: Some(WitType::Bool),
        }
    }

    #[test]
    fn a_type_without_json_mapping_is_refused_naming_where_it_is() {
        let sig = signature(WitType::Record {
            fields: vec![Field {
                name: "handle".into(),
                ty: WitType::Unsupported {
                    kind: "resource".into(),
                },
            }],
        });
        let err = generate(
            Lang::Python,
            &[Activity {
                name: "Open",
                signature: &sig,
            }],
            "q",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("Open") && err.contains("parameter in.handle") && err.contains("resource"),
            "{err}"
        );
        assert!(matches!(
            generate(Lang::Rust, &[], "q"),
            Err(CodegenError::Empty)
        ));
        assert!("cobol".parse::<Lang>().is_err());
        assert_eq!("ts".parse::<Lang>().unwrap(), Lang::TypeScript);
    }

    #[test]
    fn names_that_are_not_identifiers_keep_their_temporal_name() {
        let sig = signature(WitType::String);
        let activities = [Activity {
            name: "v1.2-beta",
            signature: &sig,
        }];
        let py = generate(Lang::Python, &activities, "q").unwrap();
        assert!(
            py.contains("async def v1_2_beta(") && py.contains("\"v1.2-beta\","),
            "{py}"
        );
        let ts = generate(Lang::TypeScript, &activities, "q").unwrap();
        assert!(
            ts.contains("\"v1.2-beta\"(in_: string): Promise<boolean>;"),
            "{ts}"
        );
        let rs = generate(Lang::Rust, &activities, "q").unwrap();
        assert!(
            rs.contains("pub async fn v1_2_beta<W>(") && rs.contains("\"v1.2-beta\""),
            "{rs}"
        );
    }
}
