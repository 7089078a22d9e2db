//! The OpenFaaS API's JSON request bodies and the strings in them that the gateway
//! interprets, from arbitrary bytes, as a client (or anyone reaching the gateway) sends them.
//!
//! The same bytes are read as each body the gateway parses (`FunctionDeployment` on
//! `POST`/`PUT /system/functions`, `DeleteFunctionRequest`, `ScaleServiceRequest`, `Secret`)
//! and as the `FunctionStatus` a gateway reads back from another. Beyond "no panic, no hang",
//! it asserts:
//! - a body that parses serializes, and reads back as the same value (the wire names and the
//!   `omitempty`/`null` rules agree with each other; a status's empty `createdAt` comes back
//!   as Go's zero time, as OpenFaaS writes it);
//! - what the gateway derives from a deployment's labels and annotations (scaling policy,
//!   retry policy, custom routes, the function's name and namespace, its image) is refused
//!   with a message or holds what its parser promises, and using it (replicas for a load,
//!   back-off waits) does not panic;
//! - the raw bytes as text, as they reach the gateway in a path or a query (`?since=`, a
//!   `name.namespace` id, a duration), are parsed without panicking.

#![no_main]

use std::time::Duration;

use ironfaas_spec::duration::{format_duration, parse_duration};
use ironfaas_spec::names::{FunctionRef, normalize_image, validate_name, validate_secret_name};
use ironfaas_spec::retry::RetryPolicy;
use ironfaas_spec::routes::{RESERVED, ROUTE_ANNOTATION, match_prefix, parse_routes};
use ironfaas_spec::scaling::ScalePolicy;
use ironfaas_spec::timestamp::{format_rfc3339_nanos, parse_rfc3339};
use ironfaas_spec::wire::{
    DeleteFunctionRequest, FunctionDeployment, FunctionStatus, ScaleServiceRequest, Secret,
};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

fuzz_target!(|data: &[u8]| {
    if let Some(d) = round_trip::<FunctionDeployment>(data) {
        check_spec(&d.service, &d.spec);
    }
    if let Ok(status) = serde_json::from_slice::<FunctionStatus>(data) {
        // Not an exact round trip: an empty `createdAt` is written as Go's zero time.
        let json = serde_json::to_vec(&status).expect("a status serializes");
        let back: FunctionStatus = serde_json::from_slice(&json).expect("a status parses back");
        assert_eq!(back.spec, status.spec, "spec changed through JSON");
        check_spec(&status.name, &status.spec);
    }
    if let Some(req) = round_trip::<DeleteFunctionRequest>(data) {
        let _ = FunctionRef::new(req.function_name, req.namespace).validate();
    }
    if let Some(req) = round_trip::<ScaleServiceRequest>(data) {
        let _ = FunctionRef::parse(&req.service_name).validate();
    }
    if let Some(secret) = round_trip::<Secret>(data) {
        let _ = validate_secret_name(&secret.name);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        check_text(text);
    }
});

/// Parses `data` as a `T`; a `T` that parses must survive a round trip through JSON.
fn round_trip<T>(data: &[u8]) -> Option<T>
where
    T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug,
{
    let value: T = serde_json::from_slice(data).ok()?;
    let json = serde_json::to_vec(&value).expect("a parsed body serializes");
    let back: T = serde_json::from_slice(&json).unwrap_or_else(|e| {
        panic!(
            "{value:?} serialized as {} which does not parse: {e}",
            String::from_utf8_lossy(&json)
        )
    });
    assert_eq!(back, value, "changed through JSON");
    Some(value)
}

/// What the gateway and the providers derive from a function's spec.
fn check_spec(name: &str, spec: &ironfaas_spec::wire::FunctionSpec) {
    let _ = FunctionRef::parse(name).validate();
    let _ = validate_name(name);
    if let Ok(image) = normalize_image(&spec.image) {
        assert_eq!(
            normalize_image(&image).as_ref(),
            Ok(&image),
            "not idempotent"
        );
    }
    match ScalePolicy::from_labels(spec.labels.as_ref()) {
        Ok(policy) => {
            assert!(policy.min <= policy.max && policy.max >= 1, "{policy:?}");
            assert!(policy.wake_replicas() >= 1);
            for load in [0.0, 0.5, 1.0, 1e3, 1e300, f64::INFINITY, f64::NAN, -1.0] {
                let wanted = policy.desired_for(load);
                assert!(
                    (policy.min..=policy.max).contains(&wanted),
                    "{wanted} replicas for load {load} outside {policy:?}"
                );
            }
            let _ = policy.summary();
        }
        Err(message) => assert!(!message.is_empty()),
    }
    match RetryPolicy::from_spec(spec) {
        Ok(policy) => {
            assert!(policy.attempts >= 1 && policy.min_wait <= policy.max_wait);
            for attempt in [0, 1, 2, 31, 64, u32::MAX] {
                for jitter in [0.0, 0.5, 1.0, -3.0, 7.0] {
                    for asked in [None, Some(Duration::ZERO), Some(Duration::MAX)] {
                        let wait = policy.backoff(attempt, jitter, asked);
                        assert!(
                            wait >= policy.min_wait && wait <= policy.max_wait,
                            "wait {wait:?} after attempt {attempt} outside {policy:?}"
                        );
                    }
                }
            }
        }
        Err(message) => assert!(!message.is_empty()),
    }
    if let Some(value) = spec.annotation(ROUTE_ANNOTATION)
        && let Ok(prefixes) = parse_routes(value)
    {
        for prefix in prefixes {
            assert!(
                prefix.starts_with('/') && !prefix.ends_with('/'),
                "{prefix:?}"
            );
            assert!(
                !RESERVED.contains(&prefix.as_str()),
                "{prefix:?} is reserved"
            );
            assert_eq!(match_prefix(&prefix, &prefix), Some("/"));
        }
    }
}

/// The bytes as text in a URL: an id, a `?since=` time, a duration, a route to match.
fn check_text(text: &str) {
    let id = FunctionRef::parse(text);
    if id.validate().is_ok() {
        assert_eq!(FunctionRef::parse(&id.to_string()), id);
    }
    if let Ok(at) = parse_rfc3339(text) {
        let shown = format_rfc3339_nanos(at);
        assert_eq!(parse_rfc3339(&shown), Ok(at), "{text:?} shown as {shown:?}");
    }
    if let Ok(d) = parse_duration(text) {
        let _ = format_duration(d);
    }
    for prefix in ["/api", "/api/v2"] {
        if let Some(rest) = match_prefix(prefix, text) {
            assert!(rest.starts_with('/'), "{rest:?} left of {text:?}");
        }
    }
}
