//! `GET /api/v1/usage`: what calls cost, by activity type or caller, over the whole fleet
//! (the registry's ledger in the store); and the CPU quota of keys (`cpu_ms_per_minute`),
//! checked on invokes against the same ledger.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use activity_registry::ledger::USAGE_BUCKET_MS;
use activity_registry::{UsageGroup, UsageTotal};
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::access::now_ms;
use crate::json::ApiQuery;
use crate::{ApiError, ApiState, ErrorBody};

/// The default window of a usage query: the last 24 hours.
const DEFAULT_WINDOW_MS: u64 = 24 * 3600 * 1000;
/// How long a key's CPU use is reused before the store is read again.
const CPU_USE_FRESH: Duration = Duration::from_secs(1);

/// Query of `GET /api/v1/usage`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    /// Milliseconds since the Unix epoch: calls of the minutes that end after it (usage is
    /// kept per minute). Default: 24 hours ago.
    since: Option<u64>,
    /// `activity` (default) or `caller`.
    group_by: Option<UsageGroup>,
    /// Only this caller's calls (a key as `key_... (name)`, `workflow:TYPE`, `temporal`).
    caller: Option<String>,
}

/// What calls cost.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UsageReport {
    /// The query's `since`.
    pub since_ms: u64,
    /// What the rows are by.
    pub group_by: UsageGroup,
    /// One row per activity type or caller, largest CPU time first.
    pub rows: Vec<UsageTotal>,
}

/// `GET /api/v1/usage`.
#[utoipa::path(get, operation_id = "usage", path = "/api/v1/usage", tag = "activities",
    params(UsageQuery),
    responses(
        (status = 200, description = "Calls, failures, wall and CPU time, peak memory, fuel and outgoing traffic per activity type or caller, summed over every host of the fleet (each host writes what it counted every `registry.usage.flush_ms`)", body = UsageReport),
        (status = 400, description = "A query parameter is invalid", body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody)))]
pub async fn usage(
    State(state): State<Arc<ApiState>>,
    ApiQuery(query): ApiQuery<UsageQuery>,
) -> Result<Json<UsageReport>, ApiError> {
    let since_ms = query
        .since
        .unwrap_or_else(|| now_ms().saturating_sub(DEFAULT_WINDOW_MS));
    let group_by = query.group_by.unwrap_or_default();
    let rows = state
        .registry
        .usage(since_ms, group_by, query.caller)
        .await
        .map_err(|e| ApiError::unavailable("store_unavailable", e.to_string()))?;
    Ok(Json(UsageReport {
        since_ms,
        group_by,
        rows,
    }))
}

/// Each key's CPU use as last read: (when, this minute's start, its CPU ms, the minute
/// before's CPU ms).
#[derive(Default)]
pub struct CpuUse {
    read: Mutex<HashMap<String, (Instant, u64, f64, f64)>>,
}

/// Keys whose use is remembered at most.
const CPU_USE_KEPT: usize = 10_000;

impl CpuUse {
    /// `Err(wait)` when `who` used `limit` CPU milliseconds or more in the last minute
    /// (this minute's use plus the share of the minute before that is still within 60 s),
    /// by the fleet's ledger. A store that cannot be read lets the call through.
    pub async fn check(&self, state: &ApiState, who: &str, limit: u64) -> Result<(), Duration> {
        let now = now_ms();
        let minute = now - now % USAGE_BUCKET_MS;
        let cached = self
            .read
            .lock()
            .ok()
            .and_then(|r| r.get(who).copied())
            .filter(|(at, m, _, _)| *m == minute && at.elapsed() < CPU_USE_FRESH);
        let (this, before) = match cached {
            Some((_, _, this, before)) => (this, before),
            None => {
                let read = |since| {
                    state
                        .registry
                        .usage(since, UsageGroup::Caller, Some(who.to_string()))
                };
                let (this, both) = match tokio::try_join!(
                    read(minute),
                    read(minute - USAGE_BUCKET_MS)
                ) {
                    Ok((this, both)) => (
                        this.first().map_or(0.0, |r| r.cpu_ms),
                        both.first().map_or(0.0, |r| r.cpu_ms),
                    ),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read a key's CPU use; the call is let through");
                        return Ok(());
                    }
                };
                let before = (both - this).max(0.0);
                if let Ok(mut r) = self.read.lock() {
                    if r.len() >= CPU_USE_KEPT {
                        r.clear();
                    }
                    r.insert(who.to_string(), (Instant::now(), minute, this, before));
                }
                (this, before)
            }
        };
        let into_minute = (now - minute) as f64 / USAGE_BUCKET_MS as f64;
        let used = this + before * (1.0 - into_minute);
        if used < limit as f64 {
            return Ok(());
        }
        Err(Duration::from_millis(USAGE_BUCKET_MS - (now - minute)))
    }
}
