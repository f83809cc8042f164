//! The language-independent part: which types get names, in which order they are defined
//! (a type after the types it uses), and what each activity takes, answers and fails with.

use std::collections::{HashMap, HashSet};

use wit_json::{Signature, WitType};

use crate::names::pascal;
use crate::CodegenError;

/// An activity type to generate a function for: its Temporal type name and its signature.
#[derive(Debug, Clone, Copy)]
pub struct Activity<'a> {
    /// The activity type name, as Temporal schedules it.
    pub name: &'a str,
    /// Its export's parameters and result.
    pub signature: &'a Signature,
}

/// The host's `activity-host:activity/types.failure` record, by its shape.
fn is_failure_record(ty: &WitType) -> bool {
    match ty {
        WitType::Record { fields } => ["message", "type", "non-retryable"]
            .iter()
            .all(|n| fields.iter().any(|f| f.name == *n)),
        _ => false,
    }
}

/// A named type: a record, variant, enum, flags or a `result` inside a value.
pub(crate) struct Def {
    pub name: String,
    pub ty: WitType,
}

/// What one activity takes and answers.
pub(crate) struct ActivityModel {
    /// The Temporal type name.
    pub name: String,
    /// Parameters: WIT name and type.
    pub params: Vec<(String, WitType)>,
    /// What a completed call answers (the `ok` side of a `result`); `None`: `null`.
    pub output: Option<WitType>,
    /// The `err` side of a `result`: the details of its typed failure.
    pub error: Option<WitType>,
    /// The failure types its `err` side can produce (variant or enum cases), if known.
    pub failure_types: Vec<String>,
}

pub(crate) struct Model {
    /// Named types, each after the types it uses.
    pub defs: Vec<Def>,
    names: HashMap<WitType, String>,
    taken: HashSet<String>,
    pub activities: Vec<ActivityModel>,
}

impl Model {
    pub fn build(activities: &[Activity]) -> Result<Self, CodegenError> {
        let mut model = Model {
            defs: Vec::new(),
            names: HashMap::new(),
            taken: HashSet::new(),
            activities: Vec::new(),
        };
        for a in activities {
            let base = pascal(a.name);
            let mut params = Vec::new();
            for p in &a.signature.params {
                let hint = pascal(&p.name);
                let hint = if model.hint_free(&hint, &p.ty) {
                    hint
                } else {
                    format!("{base}{hint}")
                };
                model.collect(&p.ty, &hint, a.name, &format!("parameter {}", p.name))?;
                params.push((p.name.clone(), p.ty.clone()));
            }
            let (output, error) = match &a.signature.result {
                Some(WitType::Result { ok, err }) => {
                    (ok.as_deref().cloned(), err.as_deref().cloned())
                }
                other => (other.clone(), None),
            };
            if let Some(t) = &output {
                model.collect(t, &format!("{base}Output"), a.name, "result")?;
            }
            if let Some(t) = &error {
                model.collect(t, &format!("{base}Error"), a.name, "error")?;
            }
            let failure_types = match &error {
                // A case carrying the host's `failure` record fails with that record's own type.
                Some(WitType::Variant { cases }) => cases
                    .iter()
                    .filter(|c| !c.payload.as_ref().is_some_and(is_failure_record))
                    .map(|c| pascal(&c.name))
                    .collect(),
                Some(WitType::Enum { names }) => names.iter().map(|n| pascal(n)).collect(),
                _ => Vec::new(),
            };
            model.activities.push(ActivityModel {
                name: a.name.to_string(),
                params,
                output,
                error,
                failure_types,
            });
        }
        Ok(model)
    }

    /// Every failure type a call can produce, once each: the host's own
    /// ([`crate::HOST_FAILURES`]), then the activities' WIT error cases.
    pub fn failure_types(&self) -> Vec<String> {
        let mut seen = HashSet::new();
        crate::HOST_FAILURES
            .iter()
            .map(|s| s.to_string())
            .chain(self.activities.iter().flat_map(|a| a.failure_types.clone()))
            .filter(|f| seen.insert(f.clone()))
            .collect()
    }

    /// The name of a named type.
    pub fn name_of(&self, ty: &WitType) -> Option<&str> {
        self.names.get(ty).map(String::as_str)
    }

    fn hint_free(&self, hint: &str, ty: &WitType) -> bool {
        !self.taken.contains(hint) || self.names.get(ty).is_some_and(|n| n == hint)
    }

    fn collect(
        &mut self,
        ty: &WitType,
        hint: &str,
        activity: &str,
        path: &str,
    ) -> Result<(), CodegenError> {
        match ty {
            WitType::Record { fields } => {
                for f in fields {
                    let child = format!("{hint}{}", pascal(&f.name));
                    self.collect(&f.ty, &child, activity, &format!("{path}.{}", f.name))?;
                }
                self.register(ty, hint);
            }
            WitType::Variant { cases } => {
                for c in cases {
                    if let Some(p) = &c.payload {
                        let child = format!("{hint}{}", pascal(&c.name));
                        self.collect(p, &child, activity, &format!("{path}.{}", c.name))?;
                    }
                }
                self.register(ty, hint);
            }
            WitType::Enum { .. } | WitType::Flags { .. } => self.register(ty, hint),
            WitType::Result { ok, err } => {
                if let Some(t) = ok {
                    self.collect(t, &format!("{hint}Ok"), activity, &format!("{path}.ok"))?;
                }
                if let Some(t) = err {
                    self.collect(t, &format!("{hint}Err"), activity, &format!("{path}.err"))?;
                }
                self.register(ty, hint);
            }
            WitType::List { element } | WitType::FixedList { element, .. } => self.collect(
                element,
                &format!("{hint}Item"),
                activity,
                &format!("{path}[]"),
            )?,
            WitType::Map { key, value } => {
                self.collect(key, &format!("{hint}Key"), activity, &format!("{path}.key"))?;
                self.collect(
                    value,
                    &format!("{hint}Value"),
                    activity,
                    &format!("{path}.value"),
                )?;
            }
            WitType::Option { some } => self.collect(some, hint, activity, path)?,
            WitType::Tuple { types } => {
                for (i, t) in types.iter().enumerate() {
                    self.collect(t, &format!("{hint}{i}"), activity, &format!("{path}.{i}"))?;
                }
            }
            WitType::Unsupported { kind } => {
                return Err(CodegenError::Unsupported {
                    activity: activity.to_string(),
                    path: path.to_string(),
                    kind: kind.clone(),
                })
            }
            _ => {}
        }
        Ok(())
    }

    fn register(&mut self, ty: &WitType, hint: &str) {
        if self.names.contains_key(ty) {
            return;
        }
        let mut name = hint.to_string();
        let mut n = 2;
        while self.taken.contains(&name) {
            name = format!("{hint}{n}");
            n += 1;
        }
        self.taken.insert(name.clone());
        self.names.insert(ty.clone(), name.clone());
        self.defs.push(Def {
            name,
            ty: ty.clone(),
        });
    }
}
