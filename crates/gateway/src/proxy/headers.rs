//! The headers the gateway adds and strips on the way to a replica and back (compat §2.1).

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// `X-Call-Id`: one id per call, echoed to the caller.
pub(crate) const CALL_ID: HeaderName = HeaderName::from_static("x-call-id");
/// `X-Start-Time`: when the gateway received the call, in Unix nanoseconds.
pub(crate) const START_TIME: HeaderName = HeaderName::from_static("x-start-time");
/// `X-Duration-Seconds`: how long the function took.
pub(crate) const DURATION: HeaderName = HeaderName::from_static("x-duration-seconds");
/// `X-OpenFaaS-Internal`: marks an error made by the platform, not the function.
pub(crate) const INTERNAL: HeaderName = HeaderName::from_static("x-openfaas-internal");
const FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const SERVED_BY: HeaderName = HeaderName::from_static("x-served-by");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");

/// Headers that concern one connection only and are never passed on.
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    PROXY_CONNECTION,
    KEEP_ALIVE,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Removes hop-by-hop headers, including any the `Connection` header names.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if !headers.keys().any(|name| HOP_BY_HOP.contains(name)) {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
}

/// Prepares a caller's headers for the replica.
pub(crate) fn to_replica(
    headers: &mut HeaderMap,
    forwarded_for: &HeaderValue,
    call_id: &HeaderValue,
    start: &HeaderValue,
) {
    strip_hop_by_hop(headers);
    // The gateway answered any `Expect: 100-continue` itself.
    headers.remove(header::EXPECT);
    headers.insert(CALL_ID, call_id.clone());
    headers.insert(START_TIME, start.clone());
    if !headers.contains_key(FORWARDED_FOR) {
        headers.insert(FORWARDED_FOR, forwarded_for.clone());
    }
    if !headers.contains_key(FORWARDED_HOST)
        && let Some(host) = headers.get(header::HOST).cloned()
    {
        headers.insert(FORWARDED_HOST, host);
    }
    if !headers.contains_key(header::HOST) {
        headers.insert(header::HOST, HeaderValue::from_static("localhost"));
    }
}

/// Prepares a replica's response headers for the caller.
pub(crate) fn to_caller(
    headers: &mut HeaderMap,
    call_id: HeaderValue,
    start: HeaderValue,
    served_by: &HeaderValue,
    request_content_type: Option<HeaderValue>,
    seconds: f64,
) {
    strip_hop_by_hop(headers);
    headers.insert(CALL_ID, call_id);
    headers.insert(START_TIME, start);
    headers.insert(SERVED_BY, served_by.clone());
    if !headers.contains_key(DURATION)
        && let Ok(value) = HeaderValue::from_str(&format!("{seconds:.6}"))
    {
        headers.insert(DURATION, value);
    }
    if !headers.contains_key(header::CONTENT_TYPE) {
        headers.insert(
            header::CONTENT_TYPE,
            request_content_type.unwrap_or(HeaderValue::from_static("text/plain")),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret-hop"),
        );
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(header::UPGRADE, HeaderValue::from_static("h2c"));
        h.insert("x-keep", HeaderValue::from_static("yes"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert_eq!(h["x-keep"], "yes");
    }

    #[test]
    fn request_headers_for_the_replica() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("gw.example:8080"));
        h.insert(header::EXPECT, HeaderValue::from_static("100-continue"));
        let id = HeaderValue::from_static("abc");
        let start = HeaderValue::from_static("123");
        to_replica(&mut h, &HeaderValue::from_static("10.1.2.3"), &id, &start);
        assert_eq!(h[CALL_ID], "abc");
        assert_eq!(h[START_TIME], "123");
        assert_eq!(h["x-forwarded-for"], "10.1.2.3");
        assert_eq!(h["x-forwarded-host"], "gw.example:8080");
        assert!(!h.contains_key(header::EXPECT));
    }

    #[test]
    fn forwarded_headers_from_a_proxy_in_front_are_kept() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("192.0.2.7"));
        let v = HeaderValue::from_static("x");
        to_replica(&mut h, &HeaderValue::from_static("127.0.0.1"), &v, &v);
        assert_eq!(h["x-forwarded-for"], "192.0.2.7");
        assert_eq!(h[header::HOST], "localhost");
    }

    #[test]
    fn response_headers_for_the_caller() {
        let mut h = HeaderMap::new();
        let served = HeaderValue::from_static("ironfaas/0");
        let id = HeaderValue::from_static("id");
        to_caller(&mut h, id.clone(), id.clone(), &served, None, 0.0125);
        assert_eq!(h[DURATION], "0.012500");
        assert_eq!(h[header::CONTENT_TYPE], "text/plain");
        let mut h = HeaderMap::new();
        h.insert(DURATION, HeaderValue::from_static("1.5"));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        to_caller(&mut h, id.clone(), id, &served, None, 0.1);
        assert_eq!(h[DURATION], "1.5", "the watchdog's own figure wins");
        assert_eq!(h[header::CONTENT_TYPE], "application/json");
    }
}
