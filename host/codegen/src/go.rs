//! Go stubs for the `go.temporal.io/sdk` workflow package: structs with `json` tags, string
//! types with constants for enums and flags, variants and results as structs with one
//! pointer per case (and their JSON forms), one function per activity that schedules it by
//! its Temporal type name with `workflow.ExecuteActivity`, and `HostError` with a sentinel
//! per failure type for `errors.Is`. The output is what `gofmt` would write.

use std::fmt::Write;

use wit_json::{json_key, WitType};

use crate::model::Model;
use crate::names::pascal;

fn ty(model: &Model, t: &WitType) -> String {
    if let Some(name) = model.name_of(t) {
        return name.to_string();
    }
    match t {
        WitType::Bool => "bool".into(),
        WitType::S8 => "int8".into(),
        WitType::U8 => "uint8".into(),
        WitType::S16 => "int16".into(),
        WitType::U16 => "uint16".into(),
        WitType::S32 => "int32".into(),
        WitType::U32 => "uint32".into(),
        WitType::S64 => "int64".into(),
        WitType::U64 => "uint64".into(),
        WitType::F32 => "float32".into(),
        WitType::F64 => "float64".into(),
        WitType::Char | WitType::String => "string".into(),
        WitType::List { element } | WitType::FixedList { element, .. } => {
            format!("[]{}", ty(model, element))
        }
        WitType::Map { key, value } => match key.as_ref() {
            WitType::String => format!("map[string]{}", ty(model, value)),
            // `[[key, value], ...]` in JSON.
            _ => "[][2]json.RawMessage".into(),
        },
        // `[a, b, ...]` in JSON, each element decoded by the caller.
        WitType::Tuple { types } => format!("[{}]json.RawMessage", types.len()),
        WitType::Option { some } => match some.as_ref() {
            // `[value]` or `null`: the inner option inside a one-element array.
            WitType::Option { .. } => format!("*[1]{}", ty(model, some)),
            s => format!("*{}", ty(model, s)),
        },
        _ => "json.RawMessage".into(),
    }
}

/// Lines of cells aligned the way gofmt's tabwriter does: each column but the last padded
/// to its widest cell plus one space.
fn aligned(rows: &[Vec<String>]) -> Vec<String> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter(|r| r.len() > c + 1)
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|row| {
            let mut line = String::from("\t");
            for (c, cell) in row.iter().enumerate() {
                if c + 1 < row.len() {
                    let _ = write!(line, "{cell:<w$} ", w = widths[c]);
                } else {
                    line.push_str(cell);
                }
            }
            line
        })
        .collect()
}

fn push_lines(out: &mut String, lines: Vec<String>) {
    for l in lines {
        out.push_str(&l);
        out.push('\n');
    }
}

/// A case of a variant or result: its JSON name, its Go field and payload type, and whether
/// a payload-less case is written `"name"` (variants) or `{"name": null}` (results).
struct GoCase {
    json: String,
    field: String,
    payload: Option<String>,
    bare_name: bool,
}

fn one_of(out: &mut String, name: &str, cases: &[GoCase]) {
    let _ = writeln!(
        out,
        "// {name} holds exactly one of its cases: the one non-nil field."
    );
    let _ = writeln!(out, "type {name} struct {{");
    let rows: Vec<Vec<String>> = cases
        .iter()
        .map(|c| {
            let t = c.payload.as_deref().unwrap_or("struct{}");
            vec![c.field.clone(), format!("*{t}")]
        })
        .collect();
    push_lines(out, aligned(&rows));
    let _ = writeln!(out, "}}\n");
    let _ = writeln!(
        out,
        "// MarshalJSON writes the set case the way the host reads it."
    );
    let _ = writeln!(out, "func (v {name}) MarshalJSON() ([]byte, error) {{");
    let _ = writeln!(out, "\tswitch {{");
    for c in cases {
        let _ = writeln!(out, "\tcase v.{} != nil:", c.field);
        match (&c.payload, c.bare_name) {
            (Some(_), _) => {
                let _ = writeln!(
                    out,
                    "\t\treturn json.Marshal(map[string]any{{{:?}: v.{}}})",
                    c.json, c.field
                );
            }
            (None, true) => {
                let _ = writeln!(out, "\t\treturn json.Marshal({:?})", c.json);
            }
            (None, false) => {
                let _ = writeln!(
                    out,
                    "\t\treturn json.Marshal(map[string]any{{{:?}: nil}})",
                    c.json
                );
            }
        }
    }
    let _ = writeln!(out, "\t}}");
    let _ = writeln!(
        out,
        "\treturn nil, errors.New(\"{name}: no case is set\")\n}}\n"
    );
    let _ = writeln!(
        out,
        "// UnmarshalJSON reads a case the way the host writes it."
    );
    let _ = writeln!(out, "func (v *{name}) UnmarshalJSON(data []byte) error {{");
    let payload = if cases.iter().any(|c| c.payload.is_some()) {
        "payload"
    } else {
        "_"
    };
    let _ = writeln!(out, "\tcase_, {payload}, err := splitCase(data)");
    let _ = writeln!(out, "\tif err != nil {{\n\t\treturn err\n\t}}");
    let _ = writeln!(out, "\t*v = {name}{{}}");
    let _ = writeln!(out, "\tswitch case_ {{");
    for c in cases {
        let _ = writeln!(out, "\tcase {:?}:", c.json);
        match &c.payload {
            Some(t) => {
                let _ = writeln!(out, "\t\tv.{} = new({t})", c.field);
                let _ = writeln!(out, "\t\treturn json.Unmarshal(payload, v.{})", c.field);
            }
            None => {
                let _ = writeln!(out, "\t\tv.{} = &struct{{}}{{}}", c.field);
                let _ = writeln!(out, "\t\treturn nil");
            }
        }
    }
    let _ = writeln!(out, "\t}}");
    let _ = writeln!(
        out,
        "\treturn fmt.Errorf(\"{name}: unknown case %q\", case_)\n}}\n"
    );
}

fn string_type(out: &mut String, name: &str, names: &[String]) {
    let _ = writeln!(out, "// {name} is one of the {name}... constants.");
    let _ = writeln!(out, "type {name} string\n");
    let _ = writeln!(out, "const (");
    let rows: Vec<Vec<String>> = names
        .iter()
        .map(|n| {
            vec![
                format!("{name}{}", pascal(n)),
                name.to_string(),
                format!("= {n:?}"),
            ]
        })
        .collect();
    push_lines(out, aligned(&rows));
    let _ = writeln!(out, ")\n");
}

fn def(out: &mut String, model: &Model, name: &str, t: &WitType) {
    match t {
        WitType::Record { fields } => {
            let _ = writeln!(out, "type {name} struct {{");
            let rows: Vec<Vec<String>> = fields
                .iter()
                .map(|f| {
                    let optional = if matches!(f.ty, WitType::Option { .. }) {
                        ",omitempty"
                    } else {
                        ""
                    };
                    vec![
                        pascal(&f.name),
                        ty(model, &f.ty),
                        format!("`json:\"{}{optional}\"`", json_key(&f.name)),
                    ]
                })
                .collect();
            push_lines(out, aligned(&rows));
            let _ = writeln!(out, "}}\n");
        }
        WitType::Variant { cases } => {
            let cases: Vec<GoCase> = cases
                .iter()
                .map(|c| GoCase {
                    json: c.name.clone(),
                    field: pascal(&c.name),
                    payload: c.payload.as_ref().map(|p| ty(model, p)),
                    bare_name: true,
                })
                .collect();
            one_of(out, name, &cases);
        }
        WitType::Enum { names } => string_type(out, name, names),
        WitType::Flags { names } => {
            let flag = format!("{name}Flag");
            let _ = writeln!(out, "// {name} is the set flags.");
            let _ = writeln!(out, "type {name} []{flag}\n");
            string_type(out, &flag, names);
        }
        WitType::Result { ok, err } => {
            let side = |json: &str, field: &str, s: &Option<Box<WitType>>| GoCase {
                json: json.into(),
                field: field.into(),
                payload: s.as_ref().map(|t| ty(model, t)),
                bare_name: false,
            };
            one_of(out, name, &[side("ok", "Ok", ok), side("err", "Err", err)]);
        }
        _ => {}
    }
}

const HEADER: &str = r#"// Package {package} has typed calls of activities deployed on activity-host.
//
// Generated by `activity-host codegen --lang go`; do not edit. Each function schedules its
// activity by its Temporal type name with workflow.ExecuteActivity, with the options of the
// workflow context it is given (the host's task queue and a 30 s start-to-close timeout
// where they set none). A failed call answers a *HostError; compare it with the Err...
// sentinels: errors.Is(err, ErrConflict).
"#;

const IMPORTS: &str = r#"import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

"#;

const HELPERS: &str = r#"// HostError is a failed call's failure: its type (an error case of the activity's WIT
// result, such as "Conflict", or a failure of the host, such as "GuestTrap"), message, and
// details (the error value), read with Details.
type HostError struct {
	Type         string
	Message      string
	NonRetryable bool
	cause        *temporal.ApplicationError
}

func (e *HostError) Error() string { return e.Type + ": " + e.Message }

// Unwrap answers the SDK's application error.
func (e *HostError) Unwrap() error {
	if e.cause == nil {
		return nil
	}
	return e.cause
}

// Is reports whether target is the sentinel of this failure's type.
func (e *HostError) Is(target error) bool {
	t, ok := target.(*HostError)
	return ok && t.cause == nil && t.Type == e.Type
}

// Details decodes the failure's details (the activity's error value) into ptr.
func (e *HostError) Details(ptr any) error {
	if e.cause == nil || !e.cause.HasDetails() {
		return errors.New(e.Type + ": the failure has no details")
	}
	return e.cause.Details(ptr)
}

// activityContext is ctx with the host's task queue and a 30 s start-to-close timeout where
// ctx's activity options set none.
func activityContext(ctx workflow.Context) workflow.Context {
	options := workflow.GetActivityOptions(ctx)
	if options.TaskQueue == "" {
		options.TaskQueue = TaskQueue
	}
	if options.StartToCloseTimeout == 0 && options.ScheduleToCloseTimeout == 0 {
		options.StartToCloseTimeout = 30 * time.Second
	}
	return workflow.WithActivityOptions(ctx, options)
}

// call runs activity with args and decodes its result into out (nil: none).
func call(ctx workflow.Context, activity string, out any, args ...any) error {
	err := workflow.ExecuteActivity(activityContext(ctx), activity, args...).Get(ctx, out)
	var failure *temporal.ApplicationError
	if errors.As(err, &failure) {
		return &HostError{
			Type:         failure.Type(),
			Message:      failure.Message(),
			NonRetryable: failure.NonRetryable(),
			cause:        failure,
		}
	}
	return err
}

// splitCase reads a case as the host writes it: "name", or {"name": payload}.
func splitCase(data []byte) (string, json.RawMessage, error) {
	var name string
	if json.Unmarshal(data, &name) == nil {
		return name, nil, nil
	}
	var cases map[string]json.RawMessage
	if err := json.Unmarshal(data, &cases); err != nil {
		return "", nil, err
	}
	if len(cases) != 1 {
		return "", nil, fmt.Errorf("want one case, got %d", len(cases))
	}
	for name, payload := range cases {
		return name, payload, nil
	}
	return "", nil, nil
}
"#;

pub(crate) fn render(model: &Model, task_queue: &str, package: &str) -> String {
    let mut out = HEADER.replace("{package}", package);
    let _ = writeln!(out, "package {package}\n");
    out.push_str(IMPORTS);
    let _ = writeln!(
        out,
        "// TaskQueue is the task queue the host serves.\nconst TaskQueue = {task_queue:?}\n"
    );
    let failures = model.failure_types();
    let _ = writeln!(
        out,
        "// Sentinels of the failure types: the host's own (ErrGuestTrap, ...) and the error\n\
         // cases of the activities' WIT results. Compare with errors.Is."
    );
    let _ = writeln!(out, "var (");
    let rows: Vec<Vec<String>> = failures
        .iter()
        .map(|f| {
            vec![
                format!("Err{}", pascal(f)),
                format!("= &HostError{{Type: {f:?}}}"),
            ]
        })
        .collect();
    push_lines(&mut out, aligned(&rows));
    let _ = writeln!(out, ")\n");
    for d in &model.defs {
        def(&mut out, model, &d.name, &d.ty);
    }
    out.push_str(HELPERS);
    for a in &model.activities {
        let function = pascal(&a.name);
        let params: Vec<(String, String)> = a
            .params
            .iter()
            .map(|(n, t)| (go_param(n), ty(model, t)))
            .collect();
        let signature: Vec<String> = std::iter::once("ctx workflow.Context".to_string())
            .chain(params.iter().map(|(n, t)| format!("{n} {t}")))
            .collect();
        let args: String = params.iter().map(|(n, _)| format!(", {n}")).collect();
        let _ = writeln!(out, "\n// {function} runs activity {:?}.", a.name);
        if !a.failure_types.is_empty() {
            let sentinels: Vec<String> = a
                .failure_types
                .iter()
                .map(|f| format!("Err{}", pascal(f)))
                .collect();
            let _ = writeln!(out, "// It fails with {}.", sentinels.join(", "));
        }
        if let Some(e) = &a.error {
            let _ = writeln!(
                out,
                "// A failure's Details decode into a {}.",
                ty(model, e)
            );
        }
        match &a.output {
            Some(t) => {
                let output = ty(model, t);
                let _ = writeln!(
                    out,
                    "func {function}({}) ({output}, error) {{",
                    signature.join(", ")
                );
                let _ = writeln!(out, "\tvar out {output}");
                let _ = writeln!(out, "\terr := call(ctx, {:?}, &out{args})", a.name);
                let _ = writeln!(out, "\treturn out, err\n}}");
            }
            None => {
                let _ = writeln!(out, "func {function}({}) error {{", signature.join(", "));
                let _ = writeln!(out, "\treturn call(ctx, {:?}, nil{args})\n}}", a.name);
            }
        }
    }
    out
}

/// A parameter name: lowerCamelCase, never a Go keyword or a name the stubs use.
fn go_param(name: &str) -> String {
    const TAKEN: &[&str] = &[
        "break",
        "case",
        "chan",
        "const",
        "continue",
        "default",
        "defer",
        "else",
        "fallthrough",
        "for",
        "func",
        "go",
        "goto",
        "if",
        "import",
        "interface",
        "map",
        "package",
        "range",
        "return",
        "select",
        "struct",
        "switch",
        "type",
        "var",
        "ctx",
        "out",
        "err",
        "call",
        "json",
        "errors",
        "fmt",
        "time",
        "temporal",
        "workflow",
    ];
    let p = pascal(name);
    let mut c = p.chars();
    let camel = match c.next() {
        Some(f) => f.to_ascii_lowercase().to_string() + c.as_str(),
        None => "arg".to_string(),
    };
    if TAKEN.contains(&camel.as_str()) {
        format!("{camel}_")
    } else {
        camel
    }
}
