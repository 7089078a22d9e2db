//! `ANY /async-function/NAME[.NAMESPACE][/PATH]`: check the call, store it durably, then
//! answer `202 Accepted` with its `X-Call-Id`. The caller's own `X-Call-Id` is the
//! idempotency key: the same id twice is one call.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use ironfaas_queue::{Enqueued, Job, QueueError, unix_ms};
use ironfaas_spec::names::FunctionRef;

use super::callback::valid_callback;
use super::stats::Refusal;
use crate::Gateway;
use crate::body::GatewayBody;
use crate::proxy::{Peer, message, new_call_id, parse_target, strip_hop_by_hop};
use crate::request_limits::{self, GuardedBody, Pace, check_declared_length, declared_length};

/// The `serve` flag that sets the largest asynchronous body.
const MAX_ASYNC_BODY_FLAG: &str = "--max-async-body";

/// The path prefix of asynchronous calls.
pub(crate) const PREFIX: &str = "/async-function/";

/// Stores one asynchronous call.
pub(crate) async fn enqueue(
    gateway: &Arc<Gateway>,
    req: Request<Incoming>,
    peer: &Peer,
) -> Response<GatewayBody> {
    let Some(queue) = gateway.queue.as_ref() else {
        return message(
            StatusCode::NOT_IMPLEMENTED,
            "asynchronous calls are not enabled on this gateway\n".into(),
        );
    };
    let path = req.uri().path().to_string();
    let Some((name, namespace, rest)) = parse_target(&path[PREFIX.len()..]) else {
        return message(
            StatusCode::NOT_FOUND,
            format!("no function in path {path}\n"),
        );
    };
    let function = FunctionRef::new(name, namespace);
    let Some(route) = gateway.provider.route(name, namespace) else {
        return message(
            StatusCode::NOT_FOUND,
            format!("function {function} not found\n"),
        );
    };
    if route.protected()
        && let crate::auth::Verdict::Refused(response) = gateway.auth.check(req.headers(), peer.ip)
    {
        return response;
    }
    let callback_url = match req.headers().get("x-callback-url").map(|v| v.to_str()) {
        None => None,
        Some(Ok(url)) => match valid_callback(url) {
            Ok(()) => Some(url.to_string()),
            Err(e) => return message(StatusCode::BAD_REQUEST, format!("{e}\n")),
        },
        Some(Err(_)) => {
            return message(
                StatusCode::BAD_REQUEST,
                "X-Callback-Url is not valid text\n".into(),
            );
        }
    };
    let policy = match gateway
        .policies
        .get(gateway.provider.as_ref(), &function)
        .await
    {
        Ok(policy) => policy,
        Err(e) => return message(StatusCode::NOT_FOUND, format!("{e}\n")),
    };
    let call_id = req
        .headers()
        .get("x-call-id")
        .cloned()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(new_call_id);
    let start = HeaderValue::from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64,
    );
    let query = req.uri().query().unwrap_or_default().to_string();
    let (mut parts, body) = req.into_parts();
    let limit = gateway.config.max_async_body_bytes as u64;
    if let Err(e) = check_declared_length(&parts.headers, limit, MAX_ASYNC_BODY_FLAG) {
        return message(e.status(), format!("{e}\n"));
    }
    // Room for the body until the queue has it: its declared length, else the largest.
    let declared = declared_length(&parts.headers).unwrap_or(limit);
    let Some(mut reserved) = gateway.async_bodies.take(declared) else {
        gateway.async_stats.refused(&function, Refusal::BodyMemory);
        return try_again(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the gateway is reading as many asynchronous call bodies as \
                 --async-body-memory ({} bytes) allows; try again in a moment\n",
                gateway.async_bodies.bytes()
            ),
        );
    };
    let guarded = GuardedBody::new(
        body,
        limit,
        MAX_ASYNC_BODY_FLAG,
        Pace::Total(gateway.config.read_timeout),
    );
    let body = match guarded.collect().await {
        Ok(collected) => {
            let body = collected.to_bytes();
            reserved.shrink_to(body.len() as u64);
            body
        }
        Err(e) => {
            return match request_limits::cause(e.as_ref()) {
                Some(limit) => message(limit.status(), format!("{limit}\n")),
                None => message(
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the body: {e}\n"),
                ),
            };
        }
    };
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.remove(header::EXPECT);
    parts.headers.insert("x-call-id", call_id.clone());
    parts.headers.insert("x-start-time", start.clone());
    if !parts.headers.contains_key("x-forwarded-for") {
        parts
            .headers
            .insert("x-forwarded-for", peer.forwarded_for.clone());
    }
    let id = call_id.to_str().unwrap_or_default().to_string();
    let mut job = Job::new(id, function, policy.attempts);
    job.method = parts.method.to_string();
    job.path = if rest == "/" {
        String::new()
    } else {
        rest.to_string()
    };
    job.query = query;
    job.headers = parts
        .headers
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.to_string(), v.to_string())))
        .collect();
    job.body = body;
    job.callback_url = callback_url;
    job.enqueued_at = unix_ms(SystemTime::now());
    let function = job.function.clone();
    match queue.enqueue(job).await {
        Ok(enqueued) => {
            if enqueued == Enqueued::New {
                gateway.async_stats.submitted(&function);
            }
            let mut response = Response::new(GatewayBody::empty());
            *response.status_mut() = StatusCode::ACCEPTED;
            response.headers_mut().insert("x-call-id", call_id);
            response.headers_mut().insert("x-start-time", start);
            response
        }
        Err(e @ QueueError::Full { .. }) => {
            gateway.async_stats.refused(&function, Refusal::QueueFull);
            tracing::warn!("asynchronous call to {function} refused: {e}");
            try_again(
                StatusCode::TOO_MANY_REQUESTS,
                format!("{e} (`ironfaas serve --async-max-queued` sets the limit)\n"),
            )
        }
        Err(e) => {
            tracing::error!("cannot store an asynchronous call: {e}");
            message(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Error queuing request: {e}\n"),
            )
        }
    }
}

/// A refusal of a call that may succeed a second later (`Retry-After: 1`).
fn try_again(status: StatusCode, text: String) -> Response<GatewayBody> {
    let mut response = message(status, text);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}
