//! Validation rules and the stored form of users, shared by the user activity components.
//!
//! This crate has no WIT bindings of its own: each activity component converts between
//! its generated types and these plain ones, so the rules live in one place.

use serde::{Deserialize, Serialize};

/// Name of the key-value store (`wasi:keyvalue/store.open`) that holds users.
pub const STORE: &str = "users";

/// Longest accepted user id, in bytes.
pub const MAX_USER_ID_LEN: usize = 128;
/// Longest accepted email address, in bytes (RFC 5321 path limit).
pub const MAX_EMAIL_LEN: usize = 254;
/// Longest accepted local part of an email address, in bytes.
pub const MAX_EMAIL_LOCAL_LEN: usize = 64;
/// Longest accepted display name, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// The key under which a user is stored.
pub fn key(user_id: &str) -> String {
    format!("user:{user_id}")
}

/// A user as the store holds it, serialized as JSON with snake_case keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredUser {
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub version: u32,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
}

impl StoredUser {
    /// Encodes the user for the store.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing a struct of strings and integers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes a stored user, naming the key when the bytes are not a user.
    pub fn from_bytes(user_id: &str, bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes)
            .map_err(|e| format!("stored value for user {user_id:?} is not a user record: {e}"))
    }

    /// True when the stored user already has this email and name.
    pub fn has_same_data(&self, email: &str, name: &str) -> bool {
        self.email == email && self.name == name
    }
}

/// Milliseconds since the Unix epoch, from the guest's wall clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Checks a user and returns one reason per failed check, empty when valid.
pub fn validate(user_id: &str, email: &str, name: &str) -> Vec<String> {
    let mut reasons = Vec::new();
    validate_user_id(user_id, &mut reasons);
    validate_email(email, &mut reasons);
    validate_name(name, &mut reasons);
    reasons
}

fn validate_user_id(user_id: &str, reasons: &mut Vec<String>) {
    if user_id.is_empty() {
        reasons.push("user_id: must not be empty".into());
    } else if user_id.len() > MAX_USER_ID_LEN {
        reasons.push(format!("user_id: must be at most {MAX_USER_ID_LEN} bytes"));
    } else if !user_id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
    {
        reasons.push("user_id: may contain only letters, digits, '-', '_', '.' and '@'".into());
    }
}

fn validate_email(email: &str, reasons: &mut Vec<String>) {
    if email.is_empty() {
        reasons.push("email: must not be empty".into());
        return;
    }
    if email.len() > MAX_EMAIL_LEN {
        reasons.push(format!("email: must be at most {MAX_EMAIL_LEN} bytes"));
        return;
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        reasons.push("email: must not contain spaces or control characters".into());
        return;
    }
    let Some((local, domain)) = email.split_once('@') else {
        reasons.push("email: must contain '@'".into());
        return;
    };
    if domain.contains('@') {
        reasons.push("email: must contain exactly one '@'".into());
        return;
    }
    if local.is_empty() {
        reasons.push("email: the part before '@' must not be empty".into());
    } else if local.len() > MAX_EMAIL_LOCAL_LEN {
        reasons.push(format!(
            "email: the part before '@' must be at most {MAX_EMAIL_LOCAL_LEN} bytes"
        ));
    } else if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        reasons.push("email: the part before '@' has a misplaced '.'".into());
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        reasons.push("email: the domain must contain a '.'".into());
    } else if labels.iter().any(|l| {
        l.is_empty()
            || l.starts_with('-')
            || l.ends_with('-')
            || !l.chars().all(|c| c.is_alphanumeric() || c == '-')
    }) {
        reasons.push("email: the domain is not a valid host name".into());
    }
}

fn validate_name(name: &str, reasons: &mut Vec<String>) {
    if name.trim().is_empty() {
        reasons.push("name: must not be empty".into());
    } else if name.chars().count() > MAX_NAME_CHARS {
        reasons.push(format!("name: must be at most {MAX_NAME_CHARS} characters"));
    } else if name.chars().any(char::is_control) {
        reasons.push("name: must not contain control characters".into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_seed_user() {
        assert!(validate("user-123", "test@example.com", "Test User").is_empty());
    }

    #[test]
    fn names_each_failed_field() {
        let reasons = validate("", "not-an-email", " ");
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert!(reasons[0].starts_with("user_id:"));
        assert!(reasons[1].starts_with("email:"));
        assert!(reasons[2].starts_with("name:"));
    }

    #[test]
    fn rejects_malformed_emails() {
        for bad in [
            "a@b",
            "@example.com",
            "a@@example.com",
            "a b@example.com",
            "a@-x.com",
            "a..b@x.com",
        ] {
            assert!(!validate("u", bad, "N").is_empty(), "{bad} was accepted");
        }
    }

    #[test]
    fn stored_user_round_trips() {
        let u = StoredUser {
            user_id: "u".into(),
            email: "e@x.io".into(),
            name: "N".into(),
            version: 1,
            created_at_ms: 5,
            updated_at_ms: 6,
        };
        assert_eq!(StoredUser::from_bytes("u", &u.to_bytes()).unwrap(), u);
        assert!(StoredUser::from_bytes("u", b"nope").is_err());
    }
}
