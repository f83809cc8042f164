//! ValidateUser: checks a user's id, email and name and answers every reason it fails.

wit_bindgen::generate!({ path: "../../wit", world: "validate-user", generate_all });

use wasi::logging::logging::{log, Level};

struct ValidateUser;

impl Guest for ValidateUser {
    fn validate_user(user: User) -> Validation {
        let reasons = user_store::validate(&user.user_id, &user.email, &user.name);
        if !reasons.is_empty() {
            log(
                Level::Info,
                "validate-user",
                &format!("user {:?} is invalid: {}", user.user_id, reasons.join("; ")),
            );
        }
        Validation {
            valid: reasons.is_empty(),
            reasons,
        }
    }
}

export!(ValidateUser);
