//! How a worker makes a stored call: in the gateway's own process (the same path as a
//! synchronous call, no HTTP round trip to itself), or through a gateway's HTTP API for
//! `ironfaas worker` running elsewhere.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use ironfaas_queue::Job;
use ironfaas_spec::names::FunctionRef;
use ironfaas_spec::provider::ProviderError;
use ironfaas_spec::retry::RetryPolicy;
use ironfaas_spec::timestamp::parse_rfc3339;
use ironfaas_spec::wire::FunctionStatus;

use crate::Gateway;
use crate::body::UpstreamBody;

/// The largest function answer kept for the callback; the rest is dropped.
pub const MAX_ANSWER_BYTES: usize = 10 << 20;

/// What a function answered to a stored call.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status.
    pub status: u16,
    /// The headers.
    pub headers: HeaderMap,
    /// The body, at most [`MAX_ANSWER_BYTES`].
    pub body: Bytes,
    /// How long the function asked to wait before a retry (`Retry-After`).
    pub retry_after: Option<Duration>,
    /// Whether the platform, not the function, made this answer (`X-OpenFaaS-Internal`).
    pub internal: bool,
}

/// Makes stored calls.
#[async_trait::async_trait]
pub trait Invoker: Send + Sync + 'static {
    /// Calls the job's function; an error is a transport failure (retried).
    async fn invoke(&self, job: &Job) -> Result<Answer, String>;

    /// The function's retry policy; `None` when the function does not exist, an error when
    /// that cannot be told now (the call is then retried later).
    async fn policy(&self, function: &FunctionRef) -> Result<Option<RetryPolicy>, String>;
}

/// `Retry-After`: seconds, or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate(value)?;
    Some(at.duration_since(SystemTime::now()).unwrap_or_default())
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) as a time.
fn httpdate(value: &str) -> Option<SystemTime> {
    let parts: Vec<&str> = value.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = months.iter().position(|m| m == month)? + 1;
    parse_rfc3339(&format!("{year}-{month:02}-{day:0>2}T{time}Z")).ok()
}

/// Reads at most [`MAX_ANSWER_BYTES`] of `body`, draining the rest.
async fn read_capped<B>(body: B) -> Bytes
where
    B: Body<Data = Bytes> + Unpin,
{
    let mut body = body;
    let mut out = BytesMut::new();
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(data) = frame.into_data()
            && out.len() < MAX_ANSWER_BYTES
        {
            let room = MAX_ANSWER_BYTES - out.len();
            out.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    out.freeze()
}

/// The request a job describes, with its stored headers and body.
fn request(job: &Job) -> Result<Request<Full<Bytes>>, String> {
    let method = Method::from_bytes(job.method.as_bytes())
        .map_err(|e| format!("method {}: {e}", job.method))?;
    let mut req = Request::builder().method(method);
    for (name, value) in &job.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            req = req.header(name, value);
        }
    }
    req.body(Full::new(job.body.clone()))
        .map_err(|e| e.to_string())
}

/// The path and query the function sees.
fn path_and_query(job: &Job) -> String {
    let path = if job.path.is_empty() {
        "/"
    } else {
        job.path.as_str()
    };
    if job.query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", job.query)
    }
}

/// Calls functions in the gateway's own process.
pub(crate) struct InProcess {
    /// The gateway.
    pub gateway: Arc<Gateway>,
}

#[async_trait::async_trait]
impl Invoker for InProcess {
    async fn invoke(&self, job: &Job) -> Result<Answer, String> {
        let req = request(job)?.map(UpstreamBody::Buffered);
        let response =
            crate::proxy::call_in_process(&self.gateway, &job.function, req, &path_and_query(job))
                .await;
        let (parts, body) = response.into_parts();
        let body = read_capped(body).await;
        Ok(Answer {
            status: parts.status.as_u16(),
            retry_after: retry_after(&parts.headers),
            internal: parts.headers.contains_key("x-openfaas-internal"),
            headers: parts.headers,
            body,
        })
    }

    async fn policy(&self, function: &FunctionRef) -> Result<Option<RetryPolicy>, String> {
        match self
            .gateway
            .policies
            .get(self.gateway.provider.as_ref(), function)
            .await
        {
            Ok(policy) => Ok(Some(policy)),
            Err(ProviderError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Calls functions through a gateway's HTTP API.
pub struct HttpInvoker {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    authorization: Option<HeaderValue>,
}

impl HttpInvoker {
    /// An invoker for the gateway at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str) -> HttpInvoker {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        // The gateway bounds every call by its upstream timeout; keepalive probes find a
        // connection whose gateway vanished (rebooted, cut off) in about a minute, where the
        // call would otherwise wait for good and its lease be kept alive for good.
        connector.set_keepalive(Some(Duration::from_secs(30)));
        connector.set_keepalive_interval(Some(Duration::from_secs(10)));
        connector.set_keepalive_retries(Some(3));
        HttpInvoker {
            base: base.trim_end_matches('/').to_string(),
            client: Client::builder(TokioExecutor::new()).build(connector),
            authorization: None,
        }
    }

    /// Sends `authorization` (e.g. `Basic …`, the admin's credentials) with calls whose job
    /// carries no `Authorization` header of its own, so functions that need credentials can be
    /// called.
    pub fn with_authorization(
        mut self,
        authorization: Option<&str>,
    ) -> Result<HttpInvoker, String> {
        self.authorization = authorization
            .map(|a| {
                HeaderValue::from_str(a)
                    .map_err(|_| "the credentials cannot be sent in a header".to_string())
            })
            .transpose()?;
        Ok(self)
    }
}

#[async_trait::async_trait]
impl Invoker for HttpInvoker {
    async fn invoke(&self, job: &Job) -> Result<Answer, String> {
        let mut req = request(job)?;
        let uri = format!(
            "{}/function/{}{}",
            self.base,
            job.function,
            path_and_query(job)
        );
        *req.uri_mut() = uri.parse().map_err(|e| format!("{uri}: {e}"))?;
        req.headers_mut().remove(http::header::HOST);
        if let Some(authorization) = &self.authorization {
            req.headers_mut()
                .entry(http::header::AUTHORIZATION)
                .or_insert_with(|| authorization.clone());
        }
        let response = self.client.request(req).await.map_err(|e| e.to_string())?;
        let (parts, body) = response.into_parts();
        let body = read_capped(body).await;
        Ok(Answer {
            status: parts.status.as_u16(),
            retry_after: retry_after(&parts.headers),
            internal: parts.headers.contains_key("x-openfaas-internal"),
            headers: parts.headers,
            body,
        })
    }

    async fn policy(&self, function: &FunctionRef) -> Result<Option<RetryPolicy>, String> {
        let uri = format!(
            "{}/system/function/{}?namespace={}",
            self.base, function.name, function.namespace
        );
        let mut req = Request::get(&uri)
            .body(Full::new(Bytes::new()))
            .map_err(|e| e.to_string())?;
        if let Some(authorization) = &self.authorization {
            req.headers_mut()
                .insert(http::header::AUTHORIZATION, authorization.clone());
        }
        let response = self
            .client
            .request(req)
            .await
            .map_err(|e| format!("cannot reach the gateway at {}: {e}", self.base))?;
        match response.status() {
            StatusCode::NOT_FOUND => return Ok(None),
            StatusCode::UNAUTHORIZED => {
                return Err(format!(
                    "the gateway at {} refused the worker's credentials; run `ironfaas login` \
                     or set IRONFAAS_PASSWORD for the worker",
                    self.base
                ));
            }
            s if !s.is_success() => return Err(format!("GET {uri} answered {s}")),
            _ => {}
        }
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let status: FunctionStatus = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        Ok(Some(
            RetryPolicy::from_spec(&status.spec).unwrap_or_default(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(http::header::RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            http::header::RETRY_AFTER,
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        assert_eq!(
            retry_after(&h),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        assert_eq!(
            httpdate("Sun, 06 Nov 1994 08:49:37 GMT"),
            parse_rfc3339("1994-11-06T08:49:37Z").ok()
        );
        h.insert(http::header::RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn jobs_become_requests() {
        let mut job = Job::new("id", FunctionRef::parse("f"), 3);
        job.method = "PUT".into();
        job.path = "/a".into();
        job.query = "x=1".into();
        job.headers = vec![("X-Test".into(), "v".into())];
        let req = request(&job).unwrap();
        assert_eq!(req.method().as_str(), "PUT");
        assert_eq!(req.headers()["x-test"], "v");
        assert_eq!(path_and_query(&job), "/a?x=1");
        job.path.clear();
        job.query.clear();
        assert_eq!(path_and_query(&job), "/");
    }
}
