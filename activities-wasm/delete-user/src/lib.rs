//! DeleteUser: removes a user. Deleting a user that is not there succeeds and answers
//! false, so a retried delete is harmless.

wit_bindgen::generate!({ path: "../../wit", world: "delete-user", generate_all });

include!("../../shared/store_glue.rs");

use wasi::logging::logging::{log, Level};

struct DeleteUser;

impl Guest for DeleteUser {
    fn delete_user(user_id: String) -> Result<bool, UserError> {
        if user_id.is_empty() {
            return Err(UserError::Invalid(
                vec!["user_id: must not be empty".into()],
            ));
        }
        let bucket = open_users()?;
        if load(&bucket, &user_id)?.is_none() {
            return Ok(false);
        }
        bucket
            .delete(&user_store::key(&user_id))
            .map_err(|e| unavailable("delete the user", e))?;
        log(
            Level::Info,
            "delete-user",
            &format!("deleted user {user_id:?}"),
        );
        Ok(true)
    }
}

export!(DeleteUser);
