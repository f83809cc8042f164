//! A test component that echoes every WIT type and misbehaves when asked to.
// The generated bindings for `echo` take one argument per kitchen-sink field.
#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({ path: "../../../wit", world: "activity-host:testing/misbehaving", generate_all });

use std::hint::black_box;

use activity_host::activity::context;
use wasi::http::outgoing_handler;
use wasi::http::types::{Fields, Method, OutgoingBody, OutgoingRequest, Scheme};
use wasi::logging::logging::{log, Level};

struct Misbehaving;

impl Guest for Misbehaving {
    fn add(a: u32, b: u32) -> u32 {
        a.wrapping_add(b)
    }

    fn echo(value: KitchenSink) -> KitchenSink {
        value
    }

    fn echo_many(
        a: Shape,
        b: Color,
        c: Permissions,
        d: Vec<Option<i32>>,
    ) -> (Shape, Color, Permissions, Vec<Option<i32>>) {
        (a, b, c, d)
    }

    fn trap(message: String) {
        panic!("{message}");
    }

    fn spin() {
        let mut n: u64 = 0;
        loop {
            n = black_box(n.wrapping_add(1));
        }
    }

    fn spin_until_cancelled() -> u64 {
        let mut rounds = 0;
        let mut last = std::time::Instant::now();
        context::heartbeat(None);
        while !context::is_cancelled() {
            rounds += 1;
            if last.elapsed() >= std::time::Duration::from_millis(50) {
                context::heartbeat(None);
                last = std::time::Instant::now();
            }
        }
        rounds
    }

    fn heartbeat_then_fail() -> Result<Option<String>, Failure> {
        match context::last_heartbeat_details() {
            Some(details) => Ok(Some(details)),
            None => {
                context::heartbeat(Some("{\"n\":0}"));
                Err(Failure {
                    message: "first attempt fails on purpose".into(),
                    type_: Some("TryAgain".into()),
                    non_retryable: false,
                    details: None,
                })
            }
        }
    }

    fn allocate(mib: u32) -> u64 {
        let chunk = (mib.max(1) as usize) << 20;
        let mut kept: Vec<Vec<u8>> = Vec::new();
        let mut total = 0u64;
        loop {
            let mut block = vec![1u8; chunk];
            black_box(&mut block);
            total += chunk as u64;
            kept.push(block);
            if total > (1 << 40) {
                return total;
            }
        }
    }

    fn recurse(depth: u64) -> u64 {
        deep(depth)
    }

    fn huge_output(bytes: u64) -> String {
        "x".repeat(bytes as usize)
    }

    fn read_file(path: String) -> Result<String, String> {
        std::fs::read_to_string(&path).map_err(|e| e.to_string())
    }

    fn read_env() -> Vec<(String, String)> {
        std::env::vars().collect()
    }

    fn fetch(url: String) -> Result<u16, String> {
        get(&url)
    }

    fn post_config(url: String, key: String) -> Result<u16, String> {
        let value = wasi::config::store::get(&key)
            .map_err(|e| format!("{e:?}"))?
            .unwrap_or_default();
        send(
            &url,
            Method::Post,
            &[("x-token", &value)],
            format!("token={value}").as_bytes(),
        )
    }

    fn fail(failure: Failure) -> Result<String, Failure> {
        Err(failure)
    }

    fn info() -> ActivityInfo {
        context::info()
    }

    fn heartbeat(count: u32) -> Option<String> {
        let previous = context::last_heartbeat_details();
        for i in 0..count {
            context::heartbeat(Some(&format!("{{\"n\":{i}}}")));
        }
        previous
    }

    fn resume(steps: u32, step_ms: u32) -> u32 {
        let start = context::last_heartbeat_details()
            .and_then(|d| {
                let digits: String = d
                    .split("\"step\":")
                    .nth(1)?
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                digits.parse::<u32>().ok()
            })
            .map_or(0, |last| last + 1);
        for i in start..steps {
            std::thread::sleep(std::time::Duration::from_millis(u64::from(step_ms)));
            context::heartbeat(Some(&format!("{{\"step\":{i}}}")));
        }
        start
    }

    fn log(message: String) {
        log(Level::Info, "misbehaving", &message);
    }

    fn strict_validate_user(user: User) -> Validation {
        Validation {
            valid: false,
            reasons: vec![format!(
                "{}: rejected by the strict validator",
                user.user_id
            )],
        }
    }

    fn unruly_validate_user(user: User) -> Validation {
        match user.name.as_str() {
            "trap" => panic!("unruly-validate-user: asked to trap for {}", user.user_id),
            "spin" => {
                Self::spin();
                unreachable!()
            }
            _ => Validation {
                valid: true,
                reasons: Vec::new(),
            },
        }
    }

    fn config_get(key: String) -> Option<String> {
        wasi::config::store::get(&key).ok().flatten()
    }
}

/// Recursion whose frames live on wasm's own stack (no locals in linear memory), so running
/// out of stack is wasm's stack-overflow trap rather than a wild write below Rust's shadow stack.
fn deep(depth: u64) -> u64 {
    if depth == 0 {
        return 0;
    }
    1 + deep(black_box(depth - 1))
}

fn get(url: &str) -> Result<u16, String> {
    send(url, Method::Get, &[], b"")
}

/// Sends one request with `headers` and `body`; answers the status.
fn send(url: &str, method: Method, headers: &[(&str, &str)], body: &[u8]) -> Result<u16, String> {
    let (scheme, rest) = url.split_once("://").ok_or("no scheme")?;
    let scheme = if scheme == "https" {
        Scheme::Https
    } else {
        Scheme::Http
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let fields: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect();
    let request = OutgoingRequest::new(Fields::from_list(&fields).map_err(|e| format!("{e:?}"))?);
    request.set_method(&method).map_err(|_| "method")?;
    request.set_scheme(Some(&scheme)).map_err(|_| "scheme")?;
    request
        .set_authority(Some(authority))
        .map_err(|_| "authority")?;
    request
        .set_path_with_query(Some(path))
        .map_err(|_| "path")?;
    let outgoing = request.body().map_err(|_| "body")?;
    let response = outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
    if !body.is_empty() {
        let stream = outgoing.write().map_err(|_| "stream")?;
        stream
            .blocking_write_and_flush(body)
            .map_err(|e| format!("{e:?}"))?;
    }
    OutgoingBody::finish(outgoing, None).map_err(|e| format!("{e:?}"))?;
    response.subscribe().block();
    let incoming = response
        .get()
        .ok_or("no response")?
        .map_err(|_| "taken twice")?
        .map_err(|e| format!("{e:?}"))?;
    Ok(incoming.status())
}

export!(Misbehaving);
