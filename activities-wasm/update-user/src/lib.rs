//! UpdateUser: changes the email and name of an existing user. A missing user is a
//! non-retryable `NotFound` failure; an update with the data already stored is a no-op.

wit_bindgen::generate!({ path: "../../wit", world: "update-user", generate_all });

include!("../../shared/store_glue.rs");

use wasi::logging::logging::{log, Level};

struct UpdateUser;

impl Guest for UpdateUser {
    fn update_user(user: User) -> Result<StoredUser, UserError> {
        check(&user.user_id, &user.email, &user.name)?;
        let bucket = open_users()?;
        let Some(mut stored) = load(&bucket, &user.user_id)? else {
            return Err(UserError::NotFound(format!(
                "user {:?} does not exist",
                user.user_id
            )));
        };
        if stored.has_same_data(&user.email, &user.name) {
            return Ok(to_wit(stored));
        }
        stored.email = user.email;
        stored.name = user.name;
        stored.version += 1;
        stored.updated_at_ms = user_store::now_ms();
        save(&bucket, &stored)?;
        log(
            Level::Info,
            "update-user",
            &format!(
                "updated user {:?} to version {}",
                stored.user_id, stored.version
            ),
        );
        Ok(to_wit(stored))
    }
}

export!(UpdateUser);
