//! Synchronous invocation: `ANY /function/NAME[.NAMESPACE][/PATH]`. The gateway picks the ready
//! replica with the fewest calls in flight and streams the call to it over a pooled
//! connection, with no hop in between.

mod headers;
pub(crate) use headers::strip_hop_by_hop;
pub(crate) mod pool;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::{HeaderValue, Method, Request, Response, StatusCode, Uri, header};
use hyper::body::Incoming;
use ironfaas_spec::duration::format_duration;
use ironfaas_spec::names::DEFAULT_NAMESPACE;
use ironfaas_spec::names::FunctionRef;
use ironfaas_spec::provider::{AcquireError, Backend, FunctionRoute, InflightGuard};

use self::headers::{CALL_ID, INTERNAL};
use crate::Gateway;
use crate::auth::Verdict;
use crate::body::{GatewayBody, ProxiedBody, UpstreamBody};
use crate::request_limits::{self, GuardedBody, Pace, check_declared_length};
use crate::scale_from_zero::{NotReady, wait_for_replica};

/// The path prefix of synchronous invocations.
pub(crate) const PREFIX: &str = "/function/";

pub(crate) fn message(status: StatusCode, text: String) -> Response<GatewayBody> {
    let mut response = Response::new(GatewayBody::full(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// An error made by the platform rather than the function.
fn internal(status: StatusCode, text: String) -> Response<GatewayBody> {
    let mut response = message(status, text);
    response
        .headers_mut()
        .insert(INTERNAL, HeaderValue::from_static("proxy"));
    response
}

/// Splits `NAME[.NAMESPACE][/PATH]` into name, namespace and the path the replica sees.
pub(crate) fn parse_target(after_prefix: &str) -> Option<(&str, &str, &str)> {
    let (id, rest) = match after_prefix.find('/') {
        Some(i) => (&after_prefix[..i], &after_prefix[i..]),
        None => (after_prefix, "/"),
    };
    let valid = !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !valid {
        return None;
    }
    let (name, namespace) = id.rsplit_once('.').unwrap_or((id, DEFAULT_NAMESPACE));
    Some((name, namespace, rest))
}

/// Takes a slot on the least busy backend that has room.
fn pick(backends: &[Arc<Backend>], start: usize) -> Result<InflightGuard, Option<u32>> {
    let n = backends.len();
    if n == 0 {
        return Err(None);
    }
    let least_busy = (0..n)
        .map(|k| (start + k) % n)
        .min_by_key(|&i| backends[i].inflight());
    if let Some(i) = least_busy
        && let Ok(guard) = backends[i].try_acquire()
    {
        return Ok(guard);
    }
    let mut full_limit = None;
    let mut tried = vec![false; n];
    for _ in 0..n {
        let candidate = (0..n)
            .map(|k| (start + k) % n)
            .filter(|&i| !tried[i])
            .min_by_key(|&i| backends[i].inflight());
        let Some(i) = candidate else { break };
        tried[i] = true;
        match backends[i].try_acquire() {
            Ok(guard) => return Ok(guard),
            Err(AcquireError::Full) => full_limit = Some(backends[i].limits.max_inflight),
            Err(AcquireError::Draining) => {}
        }
    }
    Err(full_limit)
}

/// The URI a replica sees: the path after the function's prefix, and the caller's query.
fn upstream_uri(rest: &str, query: Option<&str>) -> Option<Uri> {
    match query {
        Some(q) => Uri::try_from(format!("{rest}?{q}")).ok(),
        None => Uri::try_from(rest).ok(),
    }
}

/// `ANY /function/NAME[.NAMESPACE][/PATH]`: proxies the call to the function the path names.
pub(crate) async fn invoke(
    gateway: &Arc<Gateway>,
    req: Request<Incoming>,
    peer: &Peer,
) -> Response<GatewayBody> {
    let path = req.uri().path();
    let Some((name, namespace, rest)) = parse_target(&path[PREFIX.len()..]) else {
        return message(
            StatusCode::NOT_FOUND,
            format!("no function in path {path}\n"),
        );
    };
    let Some(route) = gateway.provider.route(name, namespace) else {
        return message(
            StatusCode::NOT_FOUND,
            format!("function {name}.{namespace} not found\n"),
        );
    };
    let uri = upstream_uri(rest, req.uri().query());
    call(gateway, req, peer, &route, uri).await
}

/// A synchronous call to `route`'s function, whether named in `/function/…` or reached
/// through a custom route: `uri` is what the replica sees (`None`: the path was invalid).
/// Checks the credentials of a protected function and the body's size, then forwards it.
async fn call(
    gateway: &Arc<Gateway>,
    req: Request<Incoming>,
    peer: &Peer,
    route: &FunctionRoute,
    uri: Option<Uri>,
) -> Response<GatewayBody> {
    let Some(uri) = uri else {
        return message(
            StatusCode::BAD_REQUEST,
            format!("invalid path {}\n", req.uri()),
        );
    };
    if route.protected()
        && let Verdict::Refused(response) = gateway.auth.check(req.headers(), peer.ip)
    {
        return response;
    }
    let req = match streamed(gateway, req) {
        Ok(req) => req,
        Err(refused) => return *refused,
    };
    forward(gateway, req, &peer.forwarded_for, route, uri).await
}

/// The caller's request with its body streamed within the gateway's `--max-body`; refused
/// with 413 at once when its `Content-Length` says it is bigger.
fn streamed(
    gateway: &Gateway,
    req: Request<Incoming>,
) -> Result<Request<UpstreamBody>, Box<Response<GatewayBody>>> {
    let limit = gateway.config.max_body_bytes;
    if let Err(e) = check_declared_length(req.headers(), limit, MAX_BODY_FLAG) {
        return Err(Box::new(message(e.status(), format!("{e}\n"))));
    }
    Ok(req.map(|body| {
        UpstreamBody::Streamed(GuardedBody::new(
            body,
            limit,
            MAX_BODY_FLAG,
            Pace::Unbounded,
        ))
    }))
}

/// The `serve` flag that sets the largest synchronous body.
const MAX_BODY_FLAG: &str = "--max-body";

/// A call on a custom route (`com.ironfaas.route`): proxies it to the route's function with
/// the rest of the path.
pub(crate) async fn invoke_route(
    gateway: &Arc<Gateway>,
    req: Request<Incoming>,
    peer: &Peer,
    function: &FunctionRef,
    rest: &str,
) -> Response<GatewayBody> {
    let Some(route) = gateway.provider.route(&function.name, &function.namespace) else {
        return message(
            StatusCode::NOT_FOUND,
            format!("the function {function} of this route is gone\n"),
        );
    };
    let uri = upstream_uri(rest, req.uri().query());
    call(gateway, req, peer, &route, uri).await
}

/// An asynchronous call taken from the queue: the same path as a synchronous one, in this
/// process. `path_and_query` is what the replica sees.
pub(crate) async fn call_in_process(
    gateway: &Arc<Gateway>,
    function: &FunctionRef,
    mut req: Request<UpstreamBody>,
    path_and_query: &str,
) -> Response<GatewayBody> {
    let Some(route) = gateway.provider.route(&function.name, &function.namespace) else {
        return internal(
            StatusCode::NOT_FOUND,
            format!("function {function} not found\n"),
        );
    };
    let Ok(uri) = Uri::try_from(path_and_query) else {
        return message(
            StatusCode::BAD_REQUEST,
            format!("invalid path {path_and_query}\n"),
        );
    };
    *req.uri_mut() = uri.clone();
    let forwarded_for = req
        .headers()
        .get("x-forwarded-for")
        .cloned()
        .unwrap_or(HeaderValue::from_static("127.0.0.1"));
    forward(gateway, req, &forwarded_for, &route, uri).await
}

/// Proxies one call to a ready replica of `route`'s function, waking it when it has none.
async fn forward(
    gateway: &Arc<Gateway>,
    req: Request<UpstreamBody>,
    forwarded_for: &HeaderValue,
    route: &FunctionRoute,
    uri: Uri,
) -> Response<GatewayBody> {
    let started = Instant::now();
    let start_nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let name = &route.function.name;
    if !matches!(
        *req.method(),
        Method::GET
            | Method::POST
            | Method::PUT
            | Method::PATCH
            | Method::DELETE
            | Method::OPTIONS
            | Method::HEAD
    ) {
        return message(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("method {} is not allowed\n", req.method()),
        );
    }
    let metrics = gateway.metrics.function(&route.function);
    metrics.started();
    let turn = gateway.turn.fetch_add(1, Ordering::Relaxed);
    let mut picked = pick(&route.backends(), turn);
    if matches!(picked, Err(None)) {
        match wait_for_replica(gateway, route, &metrics).await {
            Ok(()) => picked = pick(&route.backends(), turn),
            Err(NotReady::TimedOut(limit)) => {
                metrics.finished(503, started.elapsed());
                return internal(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "No endpoints available for: {name}. No replica became ready within {} \
                         (the scale-from-zero timeout); see `ironfaas describe {name}`\n",
                        format_duration(limit)
                    ),
                );
            }
            Err(NotReady::Failed(why)) => {
                metrics.finished(503, started.elapsed());
                return internal(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("No endpoints available for: {name}. Starting one failed: {why}\n"),
                );
            }
        }
    }
    let slot = match picked {
        Ok(slot) => slot,
        Err(None) => {
            metrics.finished(503, started.elapsed());
            return internal(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("No endpoints available for: {name}.\n"),
            );
        }
        Err(Some(max)) => {
            metrics.finished(429, started.elapsed());
            let mut response = message(
                StatusCode::TOO_MANY_REQUESTS,
                format!("Concurrent request limit exceeded. Max concurrent requests: {max}\n"),
            );
            response
                .headers_mut()
                .insert(INTERNAL, HeaderValue::from_static("faas-middleware"));
            return response;
        }
    };
    let backend = Arc::clone(slot.backend());
    let exec_timeout = backend
        .limits
        .exec_timeout
        .filter(|t| *t < gateway.config.upstream_timeout);
    let limit = exec_timeout.unwrap_or(gateway.config.upstream_timeout);
    let deadline = tokio::time::Instant::from_std(started + limit);

    let function = route.function.clone();
    let (mut parts, body) = req.into_parts();
    let call_id = parts
        .headers
        .get(CALL_ID)
        .cloned()
        .unwrap_or_else(new_call_id);
    let start = HeaderValue::from(start_nanos as u64);
    let request_content_type = parts.headers.get(header::CONTENT_TYPE).cloned();
    headers::to_replica(&mut parts.headers, forwarded_for, &call_id, &start);
    parts.uri = uri;
    parts.version = http::Version::HTTP_11;
    let upstream = Request::from_parts(parts, body);

    let pool = gateway.pools.get(&backend);
    let mut deadline_timer = Box::pin(tokio::time::sleep_until(deadline));
    let sent = tokio::select! {
        biased;
        sent = pool.send(upstream) => Some(sent),
        () = deadline_timer.as_mut() => None,
    };
    let (response, sender) = match sent {
        Some(Ok(exchange)) => exchange,
        Some(Err(e)) if let Some(limit) = request_limits::cause(&e) => {
            metrics.finished(limit.status().as_u16(), started.elapsed());
            return message(limit.status(), format!("{limit}\n"));
        }
        Some(Err(e)) => {
            tracing::warn!("call {call_id:?} to {function} on {}: {e}", backend.name);
            metrics.finished(502, started.elapsed());
            let mut response = Response::new(GatewayBody::empty());
            *response.status_mut() = StatusCode::BAD_GATEWAY;
            return response;
        }
        None => {
            metrics.finished(
                if exec_timeout.is_some() { 504 } else { 502 },
                started.elapsed(),
            );
            return match exec_timeout {
                Some(t) => internal(
                    StatusCode::GATEWAY_TIMEOUT,
                    format!(
                        "function {function} did not answer within its exec_timeout ({})\n",
                        format_duration(t)
                    ),
                ),
                None => {
                    tracing::warn!(
                        "call {call_id:?} to {function} timed out after the upstream timeout ({})",
                        format_duration(limit)
                    );
                    let mut response = Response::new(GatewayBody::empty());
                    *response.status_mut() = StatusCode::BAD_GATEWAY;
                    response
                }
            };
        }
    };
    let (mut parts, body) = response.into_parts();
    metrics.finished(parts.status.as_u16(), started.elapsed());
    headers::to_caller(
        &mut parts.headers,
        call_id,
        start,
        &gateway.served_by,
        request_content_type,
        started.elapsed().as_secs_f64(),
    );
    let body = ProxiedBody::new(body, pool, sender, slot, deadline_timer);
    Response::from_parts(parts, GatewayBody::Proxied(body))
}

/// What the gateway knows of the client connection a call came on.
pub(crate) struct Peer {
    /// The client's address.
    pub ip: std::net::IpAddr,
    /// `X-Forwarded-For` for calls on this connection: the client's IP address.
    pub forwarded_for: HeaderValue,
}

impl Peer {
    /// The connection from `remote`.
    pub(crate) fn new(remote: SocketAddr) -> Self {
        let ip = remote.ip().to_string();
        Peer {
            ip: remote.ip(),
            forwarded_for: HeaderValue::from_str(&ip)
                .unwrap_or(HeaderValue::from_static("unknown")),
        }
    }
}

/// A new call id: a time-ordered UUID (version 7: milliseconds since 1970, then random bits),
/// formatted without an intermediate String. Ids that grow with time land at the end of the
/// async queue's id index instead of on a random page of it, so a batch of enqueues rewrites
/// a few index pages rather than one per job.
pub(crate) fn new_call_id() -> HeaderValue {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let text = uuid::Uuid::now_v7().hyphenated().encode_lower(&mut buf);
    HeaderValue::from_str(text).unwrap_or(HeaderValue::from_static("0"))
}

/// How long until idle pools of vanished replicas are dropped.
pub(crate) const PRUNE_EVERY: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;
    use ironfaas_spec::provider::{Endpoint, InvokeLimits};

    #[test]
    fn parses_targets() {
        assert_eq!(parse_target("echo"), Some(("echo", "openfaas-fn", "/")));
        assert_eq!(parse_target("echo/"), Some(("echo", "openfaas-fn", "/")));
        assert_eq!(
            parse_target("echo.team/a/b"),
            Some(("echo", "team", "/a/b"))
        );
        assert_eq!(parse_target(""), None);
        assert_eq!(parse_target("bad name/x"), None);
    }

    fn backends(limits: &[u32]) -> Vec<Arc<Backend>> {
        limits
            .iter()
            .enumerate()
            .map(|(i, &max)| {
                let l = InvokeLimits {
                    max_inflight: max,
                    exec_timeout: None,
                };
                Arc::new(Backend::new(
                    i as u64,
                    format!("b{i}"),
                    Endpoint::Tcp(([127, 0, 0, 1], 1).into()),
                    l,
                ))
            })
            .collect()
    }

    #[test]
    fn picks_the_least_busy() {
        let b = backends(&[0, 0, 0]);
        let _g0 = b[0].try_acquire().unwrap();
        let _g2 = b[2].try_acquire().unwrap();
        let g = pick(&b, 0).unwrap();
        assert_eq!(g.backend().id, 1);
    }

    #[test]
    fn spreads_ties_by_turn() {
        let b = backends(&[0, 0, 0]);
        assert_eq!(pick(&b, 1).unwrap().backend().id, 1);
        assert_eq!(pick(&b, 2).unwrap().backend().id, 2);
    }

    #[test]
    fn full_and_empty() {
        assert_eq!(pick(&[], 0).unwrap_err(), None);
        let b = backends(&[1, 1]);
        let _a = pick(&b, 0).unwrap();
        let _b = pick(&b, 0).unwrap();
        assert_eq!(pick(&b, 0).unwrap_err(), Some(1));
        drop((_a, _b));
        b[0].drain();
        b[1].drain();
        assert_eq!(
            pick(&b, 0).unwrap_err(),
            None,
            "draining backends take nothing"
        );
    }
}
