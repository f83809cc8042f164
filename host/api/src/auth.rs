//! Who calls, and whether they may: every route's [`Need`] ([`ROUTES`]), the caller found
//! from the bearer token (the bootstrap `api.admin_token` or an API key from the registry
//! store), the per-key and per-activity-type rate limits of invokes and starts.
//!
//! Auth is on when `api.admin_token` is set. Off (a loopback host, `make dev`), every caller
//! is the anonymous admin.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use activity_registry::access::{token_hash, AccessStore, ApiKey, Need, Role};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::guard::token_matches;
use crate::{ApiError, ApiState};

/// Every route with what it needs. A route missing here is refused (`500 route_without_role`)
/// and fails the role-matrix test: a new route must say who may call it.
pub const ROUTES: &[(&str, &str, Need)] = &[
    ("GET", "/healthz", Need::Public),
    ("GET", "/readyz", Need::Public),
    ("GET", "/metrics", Need::Public),
    ("GET", "/api/v1/openapi.json", Need::Public),
    ("GET", "/docs", Need::Public),
    ("GET", "/docs/{file}", Need::Public),
    ("GET", "/api/v1/activities", Need::Read),
    ("GET", "/api/v1/activities/{name}", Need::Read),
    ("GET", "/api/v1/activities/{name}/schema", Need::Read),
    ("GET", "/api/v1/activities/{name}/egress", Need::Read),
    ("GET", "/api/v1/codegen/{lang}", Need::Read),
    (
        "GET",
        "/api/v1/activities/{name}/executions/{activity_id}",
        Need::Read,
    ),
    ("GET", "/api/v1/workflows/user", Need::Read),
    ("GET", "/api/v1/workflows/user/{workflow_id}", Need::Read),
    ("GET", "/api/v1/users/{user_id}", Need::Read),
    ("GET", "/api/v1/notifications", Need::Read),
    ("GET", "/api/v1/usage", Need::Read),
    ("POST", "/api/v1/workflows/user", Need::Invoke),
    (
        "POST",
        "/api/v1/workflows/user/{workflow_id}/cancel",
        Need::Invoke,
    ),
    ("POST", "/api/v1/activities/{name}/invoke", Need::Invoke),
    ("PUT", "/api/v1/activities/{name}", Need::Deploy),
    ("DELETE", "/api/v1/activities/{name}", Need::Deploy),
    ("POST", "/api/v1/activities/{name}/rollback", Need::Deploy),
    ("POST", "/api/v1/activities/{name}/ramp", Need::Deploy),
    ("POST", "/api/v1/activities/{name}/promote", Need::Deploy),
    ("POST", "/api/v1/activities/{name}/abort", Need::Deploy),
    ("POST", "/api/v1/activities/{name}/verify", Need::Deploy),
    ("GET", "/api/v1/keys", Need::Admin),
    ("POST", "/api/v1/keys", Need::Admin),
    ("DELETE", "/api/v1/keys/{id}", Need::Admin),
    ("GET", "/api/v1/secrets", Need::Admin),
    ("PUT", "/api/v1/secrets/{name}", Need::Admin),
    ("DELETE", "/api/v1/secrets/{name}", Need::Admin),
];

/// The routes that name no activity type which a key limited to some types may call: each
/// answers with those types only. Every other such route (workflows, users, notifications,
/// keys, secrets) is refused to it.
pub const SCOPE_FILTERED: &[&str] = &["/api/v1/activities", "/api/v1/codegen/{lang}"];

/// What `route` (the router's pattern) needs for `method`; `None` for a route not listed.
pub fn need_of(method: &str, route: &str) -> Option<Need> {
    ROUTES
        .iter()
        .find(|(m, p, _)| *m == method && *p == route)
        .map(|(_, _, need)| *need)
}

/// The caller of a request, as the handlers see it (a request extension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Who, in records and logs: `anonymous` (auth off), `admin-token`, or a key's id and name
    /// (`key_0123abcd (ci-deployer)`).
    pub who: String,
    /// What it may do.
    pub role: Role,
    /// The key, when it is one.
    pub key: Option<ApiKey>,
}

impl Caller {
    /// The caller on a host with auth off.
    pub fn anonymous() -> Self {
        Self {
            who: "anonymous".into(),
            role: Role::Admin,
            key: None,
        }
    }

    /// True when the caller may see or act on activity type `name`: always, but for a key
    /// limited to other types.
    pub fn covers(&self, name: &str) -> bool {
        self.key.as_ref().is_none_or(|k| k.covers(name))
    }

    fn of_key(key: ApiKey) -> Self {
        Self {
            who: format!("{} ({})", key.id, key.name),
            role: key.role,
            key: Some(key),
        }
    }
}

/// How long a key read from the store is trusted: a revoked key is refused on every host
/// within this (no notification needed).
pub const KEY_CACHE: Duration = Duration::from_millis(500);

/// Keys by token hash, each as read at most [`KEY_CACHE`] ago.
pub struct KeyCache {
    store: Arc<dyn AccessStore>,
    cached: Mutex<HashMap<String, (Instant, Option<ApiKey>)>>,
}

/// Tokens remembered; beyond it the cache starts over (unknown tokens cannot grow it
/// without bound).
const KEYS_CACHED: usize = 10_000;

impl KeyCache {
    /// A cache over `store`.
    pub fn new(store: Arc<dyn AccessStore>) -> Self {
        Self {
            store,
            cached: Mutex::default(),
        }
    }

    /// The store behind it.
    pub fn store(&self) -> &Arc<dyn AccessStore> {
        &self.store
    }

    /// Whether `token` was read from the store less than [`KEY_CACHE`] ago.
    fn cached(&self, token: &str) -> bool {
        self.cached.lock().is_ok_and(|cached| {
            cached
                .get(&token_hash(token))
                .is_some_and(|(at, _)| at.elapsed() < KEY_CACHE)
        })
    }

    /// The live (not revoked) key whose token is `token`.
    async fn find(&self, token: &str) -> Result<Option<ApiKey>, ApiError> {
        let hash = token_hash(token);
        if let Ok(cached) = self.cached.lock() {
            if let Some((at, key)) = cached.get(&hash) {
                if at.elapsed() < KEY_CACHE {
                    return Ok(key.clone());
                }
            }
        }
        // Trusted from when the read started: a read that began before a revocation was
        // committed and answered after it still expires within KEY_CACHE of the commit.
        let read_at = Instant::now();
        let store = self.store.clone();
        let lookup = hash.clone();
        let key = tokio::task::spawn_blocking(move || store.key_by_hash(&lookup))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?
            .map_err(|e| ApiError::unavailable("store_unavailable", e.to_string()))?
            .filter(|k| k.revoked_at_ms.is_none());
        if let Ok(mut cached) = self.cached.lock() {
            if cached.len() >= KEYS_CACHED {
                cached.clear();
            }
            cached.insert(hash, (read_at, key.clone()));
        }
        Ok(key)
    }
}

/// Buckets kept; past it, those untouched for a minute are dropped, and all of them if
/// that is not enough: callers' addresses cannot grow the map without bound.
const BUCKETS_KEPT: usize = 10_000;

/// A token bucket per key: `per_minute` calls a minute, bursts up to that many.
#[derive(Default)]
pub struct RateLimits {
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
    /// Keys' CPU use, for their `cpu_ms_per_minute`.
    pub cpu: crate::usage::CpuUse,
}

impl RateLimits {
    /// Takes one call from `key`'s bucket of `per_minute`; `Err(wait)` when it is empty.
    /// Written here rather than taken from a crate: a dozen lines, and the answer needs the
    /// exact wait for `Retry-After`.
    pub fn take(&self, key: &str, per_minute: u32) -> Result<(), Duration> {
        self.bucket(key, per_minute, true)
    }

    /// Whether `key`'s bucket of `per_minute` has a call left, without taking it.
    pub fn peek(&self, key: &str, per_minute: u32) -> Result<(), Duration> {
        self.bucket(key, per_minute, false)
    }

    fn bucket(&self, key: &str, per_minute: u32, take: bool) -> Result<(), Duration> {
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        let capacity = f64::from(per_minute.max(1));
        let rate = capacity / 60.0;
        let now = Instant::now();
        if buckets.len() >= BUCKETS_KEPT && !buckets.contains_key(key) {
            // A bucket untouched for a minute is full again: forgetting it changes nothing.
            buckets.retain(|_, (_, at)| now.duration_since(*at) < Duration::from_secs(60));
            if buckets.len() >= BUCKETS_KEPT {
                buckets.clear();
            }
        }
        let (tokens, at) = buckets.entry(key.to_string()).or_insert((capacity, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate).min(capacity);
        *at = now;
        if *tokens >= 1.0 {
            if take {
                *tokens -= 1.0;
            }
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / rate))
        }
    }
}

fn bearer(request: &Request) -> Option<String> {
    request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_string())
}

/// The activity type a route acts on: the `{name}` segment of `/api/v1/activities/{name}...`.
fn activity_of(route: &str, path: &str) -> Option<String> {
    let segments = route.split('/').zip(path.split('/'));
    segments
        .into_iter()
        .find(|(r, _)| *r == "{name}")
        .filter(|_| route.starts_with("/api/v1/activities/"))
        .map(|(_, p)| p.to_string())
}

/// `429` with `Retry-After`: `what`, and when to try again.
fn too_many(code: &'static str, what: &str, wait: Duration) -> Response {
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    let mut res = refuse(
        StatusCode::TOO_MANY_REQUESTS,
        code,
        format!("{what}; retry in {secs} s"),
    );
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    res
}

fn refuse(status: StatusCode, code: &'static str, message: String) -> Response {
    let mut res = ApiError {
        status,
        code,
        message,
    }
    .into_response();
    if status == StatusCode::UNAUTHORIZED {
        res.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    res
}

/// Finds the caller, checks the route's [`Need`], the key's activity types and the rate
/// limits, and hands the [`Caller`] to the handler. `401` without valid credentials, `403`
/// when the caller's role or activity types do not allow the route, `429` with
/// `Retry-After` over a rate limit.
pub async fn authorize(
    State(state): State<Arc<ApiState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let method = request.method().as_str().to_string();
    let Some(need) = need_of(&method, &route) else {
        return refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "route_without_role",
            format!("{method} {route} has no role in the route table"),
        );
    };
    if need == Need::Public {
        return next.run(request).await;
    }
    let token = bearer(&request);
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<crate::listener::Peer>>()
        .map(|c| c.0 .0.ip());
    let caller = match identify(&state, token, peer).await {
        Ok(caller) => caller,
        Err(res) => {
            crate::guard::discard(request.into_body());
            return res;
        }
    };
    tracing::Span::current().record("caller", caller.who.as_str());
    if !caller.role.allows(need) {
        crate::guard::discard(request.into_body());
        return refuse(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "{} has role {}, which may not call {method} {route}",
                caller.who,
                caller.role.as_str()
            ),
        );
    }
    let activity = activity_of(&route, request.uri().path());
    if let Some(key) = caller.key.as_ref().filter(|k| !k.activities.is_empty()) {
        // A key limited to activity types reaches only what is about them: its types'
        // routes, and the lists that answer with its types only.
        let in_scope = match &activity {
            Some(activity) => key.covers(activity),
            None => SCOPE_FILTERED.contains(&route.as_str()),
        };
        if !in_scope {
            crate::guard::discard(request.into_body());
            return refuse(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "{} may act only on activity types {}, not call {method} {route}",
                    caller.who,
                    key.activities.join(", ")
                ),
            );
        }
    }
    if need == Need::Invoke && method == "POST" && !route.ends_with("/cancel") {
        if let Err(wait) = rate_limit(&state, &caller, activity.as_deref()) {
            crate::guard::discard(request.into_body());
            return too_many("rate_limited", "over the rate limit", wait);
        }
    }
    let cpu_quota = caller.key.as_ref().and_then(|k| k.cpu_ms_per_minute);
    if let Some(limit) = cpu_quota.filter(|_| route == "/api/v1/activities/{name}/invoke") {
        if let Err(wait) = state.rates.cpu.check(&state, &caller.who, limit).await {
            crate::guard::discard(request.into_body());
            return too_many(
                "cpu_quota_exceeded",
                &format!("over the key's {limit} CPU ms a minute"),
                wait,
            );
        }
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}

/// The per-key limit (the key's `per_minute`, else `api.quotas.per_key_per_minute`), then
/// the per-activity-type one (`api.quotas.per_activity_per_minute`).
fn rate_limit(state: &ApiState, caller: &Caller, activity: Option<&str>) -> Result<(), Duration> {
    let quotas = &state.settings.quotas;
    let per_key = caller
        .key
        .as_ref()
        .and_then(|k| k.per_minute)
        .or(quotas.per_key_per_minute);
    if let Some(limit) = per_key {
        state.rates.take(&format!("key:{}", caller.who), limit)?;
    }
    if let (Some(limit), Some(activity)) = (quotas.per_activity_per_minute, activity) {
        state.rates.take(&format!("activity:{activity}"), limit)?;
    }
    Ok(())
}

/// Who presents the request's bearer token: the anonymous admin with auth off. An API-key
/// token matching no live key counts against its client address (`peer`); past
/// `api.quotas.failed_auth_per_minute`, a token not in the cache gets `429` before any
/// store lookup.
async fn identify(
    state: &ApiState,
    token: Option<String>,
    peer: Option<std::net::IpAddr>,
) -> Result<Caller, Response> {
    let Some(admin_token) = state.settings.admin_token.as_deref() else {
        return Ok(Caller::anonymous());
    };
    let Some(token) = token else {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "missing_token",
            "this route needs Authorization: Bearer <API key or admin token>".into(),
        ));
    };
    if token_matches(&token, admin_token) {
        return Ok(Caller {
            who: "admin-token".into(),
            role: Role::Admin,
            key: None,
        });
    }
    let failures = peer
        .zip(state.settings.quotas.failed_auth_per_minute)
        .map(|(peer, limit)| (format!("failed-auth:{peer}"), limit));
    let found = match &state.keys {
        Some(keys) if token.starts_with("ahk_") => {
            if let Some((bucket, limit)) = &failures {
                if !keys.cached(&token) {
                    if let Err(wait) = state.rates.peek(bucket, *limit) {
                        return Err(too_many(
                            "too_many_failed_auths",
                            "too many unknown API keys from this address",
                            wait,
                        ));
                    }
                }
            }
            let found = keys.find(&token).await;
            if let (Ok(None), Some((bucket, limit))) = (&found, &failures) {
                let _ = state.rates.take(bucket, *limit);
            }
            found
        }
        _ => Ok(None),
    };
    match found {
        Ok(Some(key)) => Ok(Caller::of_key(key)),
        Ok(None) => Err(refuse(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the bearer token is neither a live API key nor the admin token".into(),
        )),
        Err(e) => Err(e.into_response()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_activity_of_a_route_is_its_name_segment() {
        assert_eq!(
            activity_of(
                "/api/v1/activities/{name}/invoke",
                "/api/v1/activities/Foo/invoke"
            ),
            Some("Foo".into())
        );
        assert_eq!(
            activity_of("/api/v1/activities", "/api/v1/activities"),
            None
        );
        assert_eq!(
            activity_of("/api/v1/workflows/{workflow_id}", "/api/v1/workflows/x"),
            None
        );
    }

    #[test]
    fn a_bucket_refuses_past_its_rate_and_says_how_long_to_wait() {
        let limits = RateLimits::default();
        for _ in 0..3 {
            assert!(limits.take("k", 3).is_ok());
        }
        let wait = limits.take("k", 3).unwrap_err();
        assert!(
            wait > Duration::from_secs(15) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert!(limits.take("other", 3).is_ok());
    }
}
