// Glue shared by the store-backed user activities (create, update, delete).
// Included with `include!` after each crate's `wit_bindgen::generate!`, because every
// component has its own generated types and a library crate cannot name them.

use activity_host::activity::types::Failure;
use activity_host::users::types as users;
use wasi::keyvalue::store::{self, Bucket};

/// Opens the users store, or answers a retryable failure.
fn open_users() -> Result<Bucket, users::UserError> {
    store::open(user_store::STORE).map_err(|e| unavailable("open the users store", e))
}

/// Reads a user, or `None` when absent.
fn load(bucket: &Bucket, user_id: &str) -> Result<Option<user_store::StoredUser>, users::UserError> {
    let bytes = bucket
        .get(&user_store::key(user_id))
        .map_err(|e| unavailable("read the user", e))?;
    bytes
        .map(|b| user_store::StoredUser::from_bytes(user_id, &b))
        .transpose()
        .map_err(|message| {
            users::UserError::Failed(Failure {
                message,
                type_: Some("CorruptRecord".into()),
                non_retryable: true,
                details: None,
            })
        })
}

#[allow(dead_code)] // delete removes instead
/// Writes a user.
fn save(bucket: &Bucket, user: &user_store::StoredUser) -> Result<(), users::UserError> {
    bucket
        .set(&user_store::key(&user.user_id), &user.to_bytes())
        .map_err(|e| unavailable("write the user", e))
}

/// A store error becomes a retryable failure: a later attempt may find the store back.
fn unavailable(what: &str, error: store::Error) -> users::UserError {
    let reason = match error {
        store::Error::NoSuchStore => "no such store".to_string(),
        store::Error::AccessDenied => "access denied".to_string(),
        store::Error::Other(m) => m,
    };
    users::UserError::Failed(Failure {
        message: format!("could not {what}: {reason}"),
        type_: Some("StoreUnavailable".into()),
        non_retryable: false,
        details: None,
    })
}

#[allow(dead_code)] // not every activity converts records back
/// Converts the store's form to the WIT record.
fn to_wit(user: user_store::StoredUser) -> users::StoredUser {
    users::StoredUser {
        user_id: user.user_id,
        email: user.email,
        name: user.name,
        version: user.version,
        created_at_ms: user.created_at_ms,
        updated_at_ms: user.updated_at_ms,
    }
}

#[allow(dead_code)] // delete checks only the id
/// Refuses input that fails validation before touching the store.
fn check(user_id: &str, email: &str, name: &str) -> Result<(), users::UserError> {
    let reasons = user_store::validate(user_id, email, name);
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(users::UserError::Invalid(reasons))
    }
}
