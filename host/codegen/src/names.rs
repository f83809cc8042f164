//! Names in the generated code: identifiers from activity and WIT names, safe in each
//! language.

/// Words of a name: split at `-`, `_`, `.`, spaces and lower-to-upper changes.
fn words(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut previous_lower = false;
    for c in name.chars() {
        if !c.is_ascii_alphanumeric() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            previous_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && previous_lower && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        current.push(c);
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// `PascalCase` of `name` (`validate-user`, `ValidateUser`, `v1.2-beta` -> `V12Beta`).
pub fn pascal(name: &str) -> String {
    let out: String = words(name)
        .iter()
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(first) => {
                    first.to_ascii_uppercase().to_string() + &c.as_str().to_ascii_lowercase()
                }
                None => String::new(),
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        format!("T{out}")
    } else {
        out
    }
}

/// `snake_case` of `name`.
pub fn snake(name: &str) -> String {
    words(name)
        .iter()
        .map(|w| w.to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join("_")
}

const PYTHON: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield",
];
const RUST: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut",
    "pub", "ref", "return", "self", "Self", "static", "struct", "super", "trait", "true", "type",
    "unsafe", "use", "where", "while", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "try", "typeof", "unsized", "virtual", "yield",
];
const TYPESCRIPT: &[&str] = &[
    "break",
    "case",
    "catch",
    "class",
    "const",
    "continue",
    "debugger",
    "default",
    "delete",
    "do",
    "else",
    "enum",
    "export",
    "extends",
    "false",
    "finally",
    "for",
    "function",
    "if",
    "import",
    "in",
    "instanceof",
    "new",
    "null",
    "return",
    "super",
    "switch",
    "this",
    "throw",
    "true",
    "try",
    "typeof",
    "var",
    "void",
    "while",
    "with",
    "let",
    "static",
    "yield",
    "await",
    "implements",
    "interface",
    "package",
    "private",
    "protected",
    "public",
];

/// Java's keywords and literals, the names a record component may not take (`Object`'s
/// methods), and the members of the stubs' own class.
const JAVA: &[&str] = &[
    "abstract",
    "assert",
    "boolean",
    "break",
    "byte",
    "case",
    "catch",
    "char",
    "class",
    "const",
    "continue",
    "default",
    "do",
    "double",
    "else",
    "enum",
    "extends",
    "final",
    "finally",
    "float",
    "for",
    "goto",
    "if",
    "implements",
    "import",
    "instanceof",
    "int",
    "interface",
    "long",
    "native",
    "new",
    "package",
    "private",
    "protected",
    "public",
    "return",
    "short",
    "static",
    "strictfp",
    "super",
    "switch",
    "synchronized",
    "this",
    "throw",
    "throws",
    "transient",
    "try",
    "void",
    "volatile",
    "while",
    "true",
    "false",
    "null",
    "var",
    "yield",
    "record",
    "sealed",
    "permits",
    // JAVA_KEYWORDS ends here.
    "clone",
    "finalize",
    "getClass",
    "hashCode",
    "notify",
    "notifyAll",
    "toString",
    "wait",
    "equals",
    "stub",
    "call",
    "callAsync",
    "typed",
    "raw",
    "options",
    "json",
    "readCase",
    "readPayload",
];

/// How many of `JAVA`'s names are keywords (the rest are taken members).
const JAVA_KEYWORDS: usize = 58;

/// `lowerCamelCase` of `name`.
fn camel(name: &str) -> String {
    let p = pascal(name);
    let mut c = p.chars();
    match c.next() {
        Some(f) => f.to_ascii_lowercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

/// A valid identifier for a function or field named `name` in `lang`: `snake_case` for
/// Python and Rust, `camelCase` for TypeScript and Java, with a `_` added to keywords and names
/// starting with a digit. The Temporal type name is kept beside it in the generated code.
pub fn identifier(lang: crate::Lang, name: &str) -> String {
    let (base, keywords) = match lang {
        crate::Lang::Python => (snake(name), PYTHON),
        crate::Lang::Rust => (snake(name), RUST),
        // Exported: functions and types of a Go package start with a capital.
        crate::Lang::Go => return pascal(name),
        crate::Lang::TypeScript => (camel(name), TYPESCRIPT),
        crate::Lang::Java => (camel(name), JAVA),
    };
    let base = if base.is_empty() {
        "activity".to_string()
    } else {
        base
    };
    if base.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{base}")
    } else if keywords.contains(&base.as_str()) {
        format!("{base}_")
    } else {
        base
    }
}

/// `package` if `lang` takes it as a package name: Go, one lowercase identifier; Java,
/// dot-separated identifiers, none a keyword.
pub(crate) fn check_package(lang: crate::Lang, package: &str) -> Result<&str, crate::CodegenError> {
    let identifier = |part: &str| {
        part.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let ok = match lang {
        crate::Lang::Go => {
            identifier(package)
                && !package.chars().any(|c| c.is_ascii_uppercase())
                && package != "_"
        }
        crate::Lang::Java => package
            .split('.')
            .all(|part| identifier(part) && !JAVA[..JAVA_KEYWORDS].contains(&part)),
        _ => false,
    };
    if ok {
        Ok(package)
    } else {
        Err(crate::CodegenError::InvalidPackage(format!(
            "{package:?} is not a {} package name",
            match lang {
                crate::Lang::Go => "Go (one lowercase identifier, such as activities)",
                _ => "Java (dot-separated identifiers, such as com.example.activities)",
            }
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Lang;

    #[test]
    fn names_become_identifiers_in_each_language() {
        assert_eq!(pascal("validate-user"), "ValidateUser");
        assert_eq!(pascal("ValidateUser"), "ValidateUser");
        assert_eq!(pascal("v1.2-beta"), "V12Beta");
        assert_eq!(pascal("2fa"), "T2fa");
        assert_eq!(identifier(Lang::Python, "ValidateUser"), "validate_user");
        assert_eq!(identifier(Lang::Python, "v1.2-beta"), "v1_2_beta");
        assert_eq!(identifier(Lang::Python, "import"), "import_");
        assert_eq!(identifier(Lang::Rust, "Type"), "type_");
        assert_eq!(identifier(Lang::Rust, "2fa"), "_2fa");
        assert_eq!(
            identifier(Lang::TypeScript, "send_notification"),
            "sendNotification"
        );
        assert_eq!(identifier(Lang::TypeScript, "Delete"), "delete_");
        assert_eq!(identifier(Lang::Java, "user_id"), "userId");
        assert_eq!(identifier(Lang::Java, "hash-code"), "hashCode_");
        assert_eq!(identifier(Lang::Java, "Class"), "class_");
        assert_eq!(JAVA[JAVA_KEYWORDS - 1], "permits");
        assert!(check_package(Lang::Java, "com.example.activities").is_ok());
        assert!(check_package(Lang::Java, "com.new.x").is_err());
        assert!(check_package(Lang::Java, "com..x").is_err());
        assert!(check_package(Lang::Go, "activities").is_ok());
        assert!(check_package(Lang::Go, "Activities").is_err());
        assert!(check_package(Lang::Go, "a-b").is_err());
    }
}
