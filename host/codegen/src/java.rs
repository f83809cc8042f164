//! Java stubs for the Temporal Java SDK (`io.temporal:temporal-sdk`): one file, class
//! `Activities`, holding records with Jackson's `@JsonProperty` for WIT records, enums for enums
//! and flags, sealed interfaces of records for variants and results (with their JSON forms),
//! one method per activity (and an `...Async` twin answering a `Promise`) that schedules it by
//! its Temporal type name over an untyped activity stub, and an exception class per failure
//! type, all under `Activities.HostFailure`.

use std::fmt::Write;

use wit_json::{json_key, WitType};

use crate::model::Model;
use crate::names::{identifier, pascal, snake};
use crate::Lang;

/// Simple names the stubs use (imports and their own classes): a WIT type named the same gets
/// `Type` added.
const TAKEN_TYPES: &[&str] = &[
    "JsonCreator",
    "JsonProperty",
    "JsonValue",
    "JsonParser",
    "ObjectCodec",
    "TypeReference",
    "DeserializationContext",
    "JsonMappingException",
    "JsonNode",
    "JsonDeserialize",
    "StdDeserializer",
    "NullNode",
    "TypeFactory",
    "ActivityOptions",
    "ActivityFailure",
    "ApplicationFailure",
    "ActivityStub",
    "Promise",
    "Workflow",
    "IOException",
    "Type",
    "BigInteger",
    "Duration",
    "Collections",
    "List",
    "Map",
    "Set",
    "Activities",
    "HostFailure",
    "String",
    "Object",
    "Boolean",
    "Byte",
    "Short",
    "Integer",
    "Long",
    "Float",
    "Double",
    "Void",
    "Override",
    "SuppressWarnings",
    "RuntimeException",
    "Class",
    "Reader",
];

/// The Java name of a named WIT type.
fn type_name(name: &str) -> String {
    if TAKEN_TYPES.contains(&name) || name.ends_with("Failure") {
        format!("{name}Type")
    } else {
        name.to_string()
    }
}

/// The type as a reference type (generic arguments, options).
fn boxed(model: &Model, t: &WitType) -> String {
    if let Some(name) = model.name_of(t) {
        let name = type_name(name);
        return match t {
            WitType::Flags { .. } => format!("Set<{name}>"),
            _ => name,
        };
    }
    match t {
        WitType::Bool => "Boolean".into(),
        WitType::S8 => "Byte".into(),
        WitType::U8 | WitType::S16 => "Short".into(),
        WitType::U16 | WitType::S32 => "Integer".into(),
        WitType::U32 | WitType::S64 => "Long".into(),
        WitType::U64 => "BigInteger".into(),
        WitType::F32 => "Float".into(),
        WitType::F64 => "Double".into(),
        WitType::Char | WitType::String => "String".into(),
        WitType::List { element } | WitType::FixedList { element, .. } => {
            format!("List<{}>", boxed(model, element))
        }
        WitType::Map { key, value } => match key.as_ref() {
            WitType::String => format!("Map<String, {}>", boxed(model, value)),
            // `[[key, value], ...]` in JSON.
            _ => "List<List<JsonNode>>".into(),
        },
        // `[a, b, ...]` in JSON, each element read by the caller.
        WitType::Tuple { .. } => "List<JsonNode>".into(),
        WitType::Option { some } => match some.as_ref() {
            // `[value]` or `null`: the inner option inside a one-element list.
            WitType::Option { .. } => format!("List<{}>", boxed(model, some)),
            s => boxed(model, s),
        },
        _ => "JsonNode".into(),
    }
}

/// The type where a value is always present (record components, parameters, results):
/// a primitive for numbers and booleans.
fn plain(model: &Model, t: &WitType) -> String {
    match t {
        WitType::Bool => "boolean".into(),
        WitType::S8 => "byte".into(),
        WitType::U8 | WitType::S16 => "short".into(),
        WitType::U16 | WitType::S32 => "int".into(),
        WitType::U32 | WitType::S64 => "long".into(),
        WitType::F32 => "float".into(),
        WitType::F64 => "double".into(),
        _ => boxed(model, t),
    }
}

/// A member name (record component, parameter).
fn member(name: &str) -> String {
    identifier(Lang::Java, name)
}

/// An enum constant: `SCREAMING_SNAKE_CASE`.
fn constant(name: &str) -> String {
    let s = snake(name).to_ascii_uppercase();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{s}")
    } else {
        s
    }
}

/// A case of a variant or result: its JSON name, its record's name and payload type, and
/// whether a payload-less case is written `"name"` (variants) or `{"name": null}` (results).
struct Case {
    json: String,
    record: String,
    payload: Option<String>,
    bare_name: bool,
}

fn one_of(out: &mut String, name: &str, cases: &[Case]) {
    let _ = writeln!(
        out,
        "    /** A WIT variant or result: one of its cases, each a record ({{@code \"name\"}} or {{@code {{\"name\": payload}}}} in JSON). */"
    );
    let _ = writeln!(out, "    @JsonDeserialize(using = {name}.Reader.class)");
    let _ = writeln!(out, "    public sealed interface {name} {{");
    for c in cases {
        let _ = writeln!(out, "        /** Case {:?}. */", c.json);
        match &c.payload {
            Some(t) => {
                let _ = writeln!(
                    out,
                    "        record {}({t} value) implements {name} {{",
                    c.record
                );
                let _ = writeln!(
                    out,
                    "            @JsonValue public Map<String, Object> json() {{ return Collections.singletonMap({:?}, value); }}",
                    c.json
                );
            }
            None => {
                let _ = writeln!(out, "        record {}() implements {name} {{", c.record);
                if c.bare_name {
                    let _ = writeln!(
                        out,
                        "            @JsonValue public String json() {{ return {:?}; }}",
                        c.json
                    );
                } else {
                    let _ = writeln!(
                        out,
                        "            @JsonValue public Map<String, Object> json() {{ return Collections.singletonMap({:?}, null); }}",
                        c.json
                    );
                }
            }
        }
        let _ = writeln!(out, "        }}");
    }
    let _ = writeln!(
        out,
        "        /** Reads a case the way the host writes it. */"
    );
    let _ = writeln!(
        out,
        "        final class Reader extends StdDeserializer<{name}> {{"
    );
    let _ = writeln!(
        out,
        "            private static final long serialVersionUID = 1L;"
    );
    let _ = writeln!(
        out,
        "            public Reader() {{ super({name}.class); }}"
    );
    let _ = writeln!(out, "            @Override");
    let _ = writeln!(
        out,
        "            public {name} deserialize(JsonParser parser, DeserializationContext context) throws IOException {{"
    );
    let _ = writeln!(
        out,
        "                Map.Entry<String, JsonNode> one = readCase(parser);"
    );
    let _ = writeln!(out, "                switch (one.getKey()) {{");
    for c in cases {
        let _ = writeln!(out, "                    case {:?}:", c.json);
        match &c.payload {
            Some(t) => {
                let _ = writeln!(
                    out,
                    "                        return new {}(readPayload(parser, one.getValue(), new TypeReference<{t}>() {{}}));",
                    c.record
                );
            }
            None => {
                let _ = writeln!(out, "                        return new {}();", c.record);
            }
        }
    }
    let _ = writeln!(out, "                    default:");
    let _ = writeln!(
        out,
        "                        throw JsonMappingException.from(parser, \"{name}: unknown case \" + one.getKey());"
    );
    let _ = writeln!(out, "                }}");
    let _ = writeln!(out, "            }}");
    let _ = writeln!(out, "        }}");
    let _ = writeln!(out, "    }}\n");
}

fn enumeration(out: &mut String, name: &str, names: &[String], what: &str) {
    let _ = writeln!(out, "    /** {what} */");
    let _ = writeln!(out, "    public enum {name} {{");
    let constants: Vec<String> = names
        .iter()
        .map(|n| format!("        @JsonProperty({n:?}) {}", constant(n)))
        .collect();
    let _ = writeln!(out, "{}", constants.join(",\n"));
    let _ = writeln!(out, "    }}\n");
}

/// A record or case name that is neither the enclosing type's nor its reader's.
fn case_record(parent: &str, case: &str) -> String {
    let name = pascal(case);
    if name == parent || name == "Reader" {
        format!("{name}Case")
    } else {
        name
    }
}

fn def(out: &mut String, model: &Model, name: &str, t: &WitType) {
    match t {
        WitType::Record { fields } => {
            let components: Vec<String> = fields
                .iter()
                .map(|f| {
                    let t = if matches!(f.ty, WitType::Option { .. }) {
                        boxed(model, &f.ty)
                    } else {
                        plain(model, &f.ty)
                    };
                    format!(
                        "@JsonProperty({:?}) {t} {}",
                        json_key(&f.name),
                        member(&f.name)
                    )
                })
                .collect();
            let _ = writeln!(out, "    /** A WIT record. */");
            if components.is_empty() {
                // Jackson writes no empty bean: the record is `{}` by hand.
                let _ = writeln!(out, "    public record {name}() {{");
                let _ = writeln!(
                    out,
                    "        @JsonValue public Map<String, Object> json() {{ return Map.of(); }}"
                );
                let _ = writeln!(
                    out,
                    "        @JsonCreator public static {name} of(Map<String, Object> ignored) {{ return new {name}(); }}"
                );
                let _ = writeln!(out, "    }}\n");
            } else {
                let _ = writeln!(out, "    public record {name}(");
                let _ = writeln!(
                    out,
                    "            {}) {{}}\n",
                    components.join(",\n            ")
                );
            }
        }
        WitType::Variant { cases } => {
            let cases: Vec<Case> = cases
                .iter()
                .map(|c| Case {
                    json: c.name.clone(),
                    record: case_record(name, &c.name),
                    payload: c.payload.as_ref().map(|p| boxed(model, p)),
                    bare_name: true,
                })
                .collect();
            one_of(out, name, &cases);
        }
        WitType::Enum { names } => enumeration(out, name, names, "A WIT enum."),
        WitType::Flags { names } => enumeration(
            out,
            name,
            names,
            "A WIT flag; a value of the flags is a {@code Set} of them.",
        ),
        WitType::Result { ok, err } => {
            let side = |json: &str, record: &str, s: &Option<Box<WitType>>| Case {
                json: json.into(),
                record: case_record(name, record),
                payload: s.as_ref().map(|t| boxed(model, t)),
                bare_name: false,
            };
            one_of(out, name, &[side("ok", "Ok", ok), side("err", "Err", err)]);
        }
        _ => {}
    }
}

const HEADER: &str = r#"
import com.fasterxml.jackson.annotation.JsonCreator;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.annotation.JsonValue;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.ObjectCodec;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.DeserializationContext;
import com.fasterxml.jackson.databind.JsonMappingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.annotation.JsonDeserialize;
import com.fasterxml.jackson.databind.deser.std.StdDeserializer;
import com.fasterxml.jackson.databind.node.NullNode;
import com.fasterxml.jackson.databind.type.TypeFactory;
import io.temporal.activity.ActivityOptions;
import io.temporal.failure.ActivityFailure;
import io.temporal.failure.ApplicationFailure;
import io.temporal.workflow.ActivityStub;
import io.temporal.workflow.Promise;
import io.temporal.workflow.Workflow;
import java.io.IOException;
import java.lang.reflect.Type;
import java.math.BigInteger;
import java.time.Duration;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Typed calls of activities deployed on activity-host, for workflow code.
 *
 * <p>Generated by {@code activity-host codegen --lang java}; do not edit. Each method schedules
 * its activity by its Temporal type name over an untyped activity stub, with the options given
 * to the constructor (the host's task queue and a 30 s start-to-close timeout where they set
 * none). A failed call throws a {@link HostFailure}: one subclass per failure type, such as
 * {@code ConflictFailure} for an error case of the activity's WIT result or
 * {@code GuestTrapFailure} for a failure of the host. To let an uncaught one fail the workflow
 * (rather than its task), name {@code HostFailure.class} in the worker's
 * {@code WorkflowImplementationOptions.setFailWorkflowExceptionTypes}.
 */
public final class Activities {
"#;

const HELPERS: &str = r#"    /** A failed call: its failure type, message and details (the activity's error value). */
    public static class HostFailure extends RuntimeException {
        private static final long serialVersionUID = 1L;
        private final String type;
        private final boolean nonRetryable;
        private final transient ApplicationFailure failure;

        HostFailure(ApplicationFailure failure, ActivityFailure cause) {
            super(failure.getType() + ": " + failure.getOriginalMessage(), cause);
            this.type = failure.getType();
            this.nonRetryable = failure.isNonRetryable();
            this.failure = failure;
        }

        /** The failure type: an error case such as "Conflict", or the host's, such as "GuestTrap". */
        public String type() { return type; }

        /** Whether the host marked it not to be retried. */
        public boolean nonRetryable() { return nonRetryable; }

        /** The failure's message, without its type. */
        public String failureMessage() { return failure.getOriginalMessage(); }

        /** The failure's details (the activity's error value) as a {@code type}. */
        public <T> T details(Class<T> type) {
            if (failure.getDetails().getSize() == 0) {
                throw new IllegalStateException(this.type + ": the failure has no details");
            }
            return failure.getDetails().get(type);
        }
    }

    private final ActivityStub stub;

    /** Calls with {@code options}, completed with the host's task queue and a 30 s start-to-close timeout where they set none. */
    public Activities(ActivityOptions options) {
        ActivityOptions.Builder builder = ActivityOptions.newBuilder(options);
        if (options.getTaskQueue() == null) {
            builder.setTaskQueue(TASK_QUEUE);
        }
        if (options.getStartToCloseTimeout() == null && options.getScheduleToCloseTimeout() == null) {
            builder.setStartToCloseTimeout(Duration.ofSeconds(30));
        }
        this.stub = Workflow.newUntypedActivityStub(builder.build());
    }

    /** Calls on the host's task queue with a 30 s start-to-close timeout. */
    public Activities() {
        this(ActivityOptions.newBuilder().build());
    }

    @SuppressWarnings("unchecked")
    private static <T> Class<T> raw(Type type) {
        return (Class<T>) TypeFactory.rawClass(type);
    }

    private <T> T call(String activity, TypeReference<T> result, Object... args) {
        try {
            return stub.execute(activity, raw(result.getType()), result.getType(), args);
        } catch (ActivityFailure e) {
            throw typed(e);
        }
    }

    private <T> Promise<T> callAsync(String activity, TypeReference<T> result, Object... args) {
        return stub.<T>executeAsync(activity, raw(result.getType()), result.getType(), args)
                .handle((value, failure) -> {
                    if (failure == null) {
                        return value;
                    }
                    throw failure instanceof ActivityFailure ? typed((ActivityFailure) failure) : failure;
                });
    }

    /** The typed failure for an activity's failure, or the failure itself when it carries no type. */
    private static RuntimeException typed(ActivityFailure e) {
        if (!(e.getCause() instanceof ApplicationFailure)) {
            return e;
        }
        ApplicationFailure failure = (ApplicationFailure) e.getCause();
        switch (failure.getType()) {
"#;

const CASE_READERS: &str = r#"
    /** A case as the host writes it: {@code "name"} or {@code {"name": payload}}. */
    static Map.Entry<String, JsonNode> readCase(JsonParser parser) throws IOException {
        JsonNode node = parser.readValueAsTree();
        if (node != null && node.isTextual()) {
            return Map.entry(node.textValue(), NullNode.getInstance());
        }
        if (node != null && node.isObject() && node.size() == 1) {
            return node.fields().next();
        }
        throw JsonMappingException.from(parser, "want \"name\" or {\"name\": payload}, got " + node);
    }

    static <T> T readPayload(JsonParser parser, JsonNode node, TypeReference<T> type) throws IOException {
        ObjectCodec codec = parser.getCodec();
        try (JsonParser payload = codec.treeAsTokens(node)) {
            payload.nextToken();
            return codec.readValue(payload, type);
        }
    }
"#;

pub(crate) fn render(model: &Model, task_queue: &str, package: &str) -> String {
    let mut out = format!("package {package};\n{HEADER}");
    let _ = writeln!(
        out,
        "    /** The task queue the host serves. */\n    public static final String TASK_QUEUE = {task_queue:?};\n"
    );
    let failures = model.failure_types();
    for d in &model.defs {
        def(&mut out, model, &type_name(&d.name), &d.ty);
    }
    out.push_str(HELPERS);
    for f in &failures {
        let _ = writeln!(out, "            case {f:?}:");
        let _ = writeln!(
            out,
            "                return new {}Failure(failure, e);",
            pascal(f)
        );
    }
    let _ = writeln!(out, "            default:");
    let _ = writeln!(out, "                return new HostFailure(failure, e);");
    let _ = writeln!(out, "        }}\n    }}");
    for f in &failures {
        let class = format!("{}Failure", pascal(f));
        let _ = writeln!(out, "\n    /** A failure of type {f:?}. */");
        let _ = writeln!(
            out,
            "    public static final class {class} extends HostFailure {{"
        );
        let _ = writeln!(
            out,
            "        private static final long serialVersionUID = 1L;\n"
        );
        let _ = writeln!(
            out,
            "        {class}(ApplicationFailure failure, ActivityFailure cause) {{ super(failure, cause); }}"
        );
        let _ = writeln!(out, "    }}");
    }
    for a in &model.activities {
        let method = member(&a.name);
        let params: Vec<(String, String)> = a
            .params
            .iter()
            .map(|(n, t)| (member(n), plain(model, t)))
            .collect();
        let signature: Vec<String> = params.iter().map(|(n, t)| format!("{t} {n}")).collect();
        let args: String = params.iter().map(|(n, _)| format!(", {n}")).collect();
        let (result, boxed_result) = match &a.output {
            Some(t) => (plain(model, t), boxed(model, t)),
            None => ("void".to_string(), "Void".to_string()),
        };
        let mut doc = format!("Runs activity {:?}.", a.name);
        if !a.failure_types.is_empty() {
            let classes: Vec<String> = a
                .failure_types
                .iter()
                .map(|f| format!("{{@link {}Failure}}", pascal(f)))
                .collect();
            let _ = write!(doc, " It fails with {}", classes.join(", "));
            if let Some(e) = &a.error {
                let _ = write!(doc, ", whose details are a {{@code {}}}", boxed(model, e));
            }
            doc.push('.');
        }
        let _ = writeln!(out, "\n    /** {doc} */");
        let _ = writeln!(
            out,
            "    public {result} {method}({}) {{",
            signature.join(", ")
        );
        let call = format!(
            "call({:?}, new TypeReference<{boxed_result}>() {{}}{args})",
            a.name
        );
        if a.output.is_some() {
            let _ = writeln!(out, "        return {call};");
        } else {
            let _ = writeln!(out, "        {call};");
        }
        let _ = writeln!(out, "    }}");
        let _ = writeln!(
            out,
            "\n    /** Starts activity {:?}; the promise fails as {{@link #{method}}} throws. */",
            a.name
        );
        let _ = writeln!(
            out,
            "    public Promise<{boxed_result}> {method}Async({}) {{",
            signature.join(", ")
        );
        let _ = writeln!(
            out,
            "        return callAsync({:?}, new TypeReference<{boxed_result}>() {{}}{args});",
            a.name
        );
        let _ = writeln!(out, "    }}");
    }
    out.push_str(CASE_READERS);
    out.push_str("}\n");
    out
}
