//! The reference activities the host deploys in `dev`, with their grants.

use activity_runtime::ActivitySpec;

/// Key-value store the user activities keep users in.
pub const USERS_STORE: &str = "users";

/// The reference activities: activity type and component file name.
pub const REFERENCE_ACTIVITIES: &[(&str, &str)] = &[
    ("ValidateUser", "validate_user.wasm"),
    ("CreateUser", "create_user.wasm"),
    ("UpdateUser", "update_user.wasm"),
    ("DeleteUser", "delete_user.wasm"),
    ("SendNotification", "send_notification.wasm"),
];

/// The spec of a reference activity: the user activities may open the users store;
/// SendNotification may call the webhook's host, when there is one, and records
/// notifications in the `notifications` store when there is none.
pub fn spec(activity_type: &str, webhook_url: Option<&str>) -> ActivitySpec {
    let mut spec = ActivitySpec::new(activity_type);
    match activity_type {
        "CreateUser" | "UpdateUser" | "DeleteUser" => {
            spec.grants.key_value_stores = vec![USERS_STORE.into()];
        }
        "SendNotification" => {
            // Outgoing HTTP is granted only towards the webhook; without one, every request
            // is refused and notifications are recorded in the host's store.
            spec.grants.allowed_hosts = webhook_hosts(webhook_url);
            spec.grants.key_value_stores = vec![activity_api::NOTIFICATIONS_STORE.into()];
            if let Some(url) = webhook_url {
                spec.grants.config.insert("webhook_url".into(), url.into());
            }
        }
        _ => {}
    }
    spec
}

/// The hosts SendNotification may call: the webhook's authority (and, for `localhost`, the
/// loopback addresses it resolves to, which a grant must name), else a name that never
/// resolves. The operator named the webhook, so the host's egress policy admits them too.
pub fn webhook_hosts(webhook_url: Option<&str>) -> Vec<String> {
    let Some(url) = webhook_url.and_then(|u| url::Url::parse(u).ok()) else {
        return vec!["webhook.invalid".into()];
    };
    let Some(host) = url.host_str() else {
        return vec!["webhook.invalid".into()];
    };
    let with_port = |h: &str| match url.port() {
        Some(port) => format!("{h}:{port}"),
        None => h.to_string(),
    };
    let mut hosts = vec![with_port(host)];
    if host.eq_ignore_ascii_case("localhost") {
        hosts.push(with_port("127.0.0.1"));
        hosts.push(with_port("[::1]"));
    }
    hosts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_grant_follows_the_webhook() {
        let s = spec("SendNotification", Some("http://127.0.0.1:9000/hook"));
        assert_eq!(s.grants.allowed_hosts, vec!["127.0.0.1:9000"]);
        assert_eq!(s.grants.config["webhook_url"], "http://127.0.0.1:9000/hook");
        let none = spec("SendNotification", None);
        assert_eq!(none.grants.allowed_hosts, vec!["webhook.invalid"]);
        assert_eq!(
            spec("CreateUser", None).grants.key_value_stores,
            vec!["users"]
        );
    }
}
