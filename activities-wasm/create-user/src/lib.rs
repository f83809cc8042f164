//! CreateUser: stores a new user. Creating the same user again with the same data is a
//! no-op that answers the stored user; a different user under the same id is a conflict.

wit_bindgen::generate!({ path: "../../wit", world: "create-user", generate_all });

include!("../../shared/store_glue.rs");

use wasi::logging::logging::{log, Level};

struct CreateUser;

impl Guest for CreateUser {
    fn create_user(user: User) -> Result<StoredUser, UserError> {
        check(&user.user_id, &user.email, &user.name)?;
        let bucket = open_users()?;
        if let Some(existing) = load(&bucket, &user.user_id)? {
            return if existing.has_same_data(&user.email, &user.name) {
                log(
                    Level::Info,
                    "create-user",
                    &format!("user {:?} already exists with the same data", user.user_id),
                );
                Ok(to_wit(existing))
            } else {
                Err(UserError::Conflict(to_wit(existing)))
            };
        }
        let now = user_store::now_ms();
        let stored = user_store::StoredUser {
            user_id: user.user_id,
            email: user.email,
            name: user.name,
            version: 1,
            created_at_ms: now,
            updated_at_ms: now,
        };
        save(&bucket, &stored)?;
        log(
            Level::Info,
            "create-user",
            &format!("created user {:?}", stored.user_id),
        );
        Ok(to_wit(stored))
    }
}

export!(CreateUser);
