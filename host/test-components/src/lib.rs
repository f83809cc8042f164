//! Paths of the guest components in `activities-wasm/`, built for `wasm32-wasip2` by this
//! crate's build script. Tests read the bytes with [`read`].

include!(concat!(env!("OUT_DIR"), "/components.rs"));

/// The reference activities: activity type name and component path.
pub const REFERENCE_ACTIVITIES: &[(&str, &str)] = &[
    ("ValidateUser", VALIDATE_USER),
    ("CreateUser", CREATE_USER),
    ("UpdateUser", UPDATE_USER),
    ("DeleteUser", DELETE_USER),
    ("SendNotification", SEND_NOTIFICATION),
];

/// The bytes of a built component.
pub fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read component {path}: {e}"))
}
