//! The gateway's REST API as the CLI uses it.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use ironfaas_gateway::error_chain;
use ironfaas_spec::names::FunctionRef;
use ironfaas_spec::wire::{
    DeleteFunctionRequest, FunctionDeployment, FunctionStatus, GatewayInfo, ScaleServiceRequest,
};
use serde::de::DeserializeOwned;

use crate::failure::{CmdResult, Failure};

/// Calls that should answer at once.
const QUICK: Duration = Duration::from_secs(30);
/// Deploys wait until replicas are ready.
const DEPLOY: Duration = Duration::from_secs(180);

/// A request body: complete, or streamed from a file.
pub type RequestBody = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

/// A complete request body.
pub fn full(bytes: Bytes) -> RequestBody {
    Full::new(bytes).map_err(|e| match e {}).boxed()
}

/// A client of one gateway.
pub struct Client {
    base: String,
    http: HttpClient<HttpConnector, RequestBody>,
    login: Option<String>,
}

/// Whether a deploy created a function or updated one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deployed {
    /// It was new.
    Created,
    /// It existed and was updated.
    Updated,
}

/// A call's answer, with its body still streaming.
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The `X-Call-Id` of the call, when the answer has one.
    pub call_id: Option<String>,
    /// The body.
    pub body: Incoming,
}

impl Client {
    /// A client of the gateway at `base` (normalised, no trailing slash).
    pub fn new(base: &str, login: Option<&crate::credentials::Login>) -> Client {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(3)));
        connector.set_nodelay(true);
        Client {
            base: base.to_string(),
            http: HttpClient::builder(TokioExecutor::new()).build(connector),
            login: login.map(crate::credentials::Login::header),
        }
    }

    /// The gateway's URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The `Authorization` header this client sends, when it has credentials.
    pub fn authorization(&self) -> Option<&str> {
        self.login.as_deref()
    }

    fn unreachable(&self, e: impl std::fmt::Display) -> Failure {
        Failure::unreachable(format!(
            "cannot reach the gateway at {}: {e}\nstart one with `ironfaas serve` (or `ironfaas up`), \
             or point to yours with --gateway URL or OPENFAAS_URL",
            self.base
        ))
    }

    /// Sends a request and returns the answer with its body unread.
    pub async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        headers: &[(String, String)],
        body: RequestBody,
        limit: Duration,
    ) -> CmdResult<Answer> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path_and_query}", self.base));
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        if let Some(login) = &self.login {
            req = req.header(header::AUTHORIZATION, login.as_str());
        }
        let req = req
            .body(body)
            .map_err(|e| Failure::input(format!("invalid request: {e}")))?;
        let response = tokio::time::timeout(limit, self.http.request(req))
            .await
            .map_err(|_| self.unreachable(format!("no answer within {}s", limit.as_secs())))?
            .map_err(|e| self.unreachable(error_chain(&e)))?;
        let (parts, body) = response.into_parts();
        let call_id = parts
            .headers
            .get("x-call-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok(Answer {
            status: parts.status,
            call_id,
            body,
        })
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        json: Option<Vec<u8>>,
        limit: Duration,
    ) -> CmdResult<(StatusCode, Bytes)> {
        let headers = if json.is_some() {
            vec![(
                header::CONTENT_TYPE.to_string(),
                "application/json".to_string(),
            )]
        } else {
            Vec::new()
        };
        let answer = self
            .send(
                method,
                path,
                &headers,
                full(Bytes::from(json.unwrap_or_default())),
                limit,
            )
            .await?;
        let body = answer
            .body
            .collect()
            .await
            .map_err(|e| self.unreachable(format!("the answer broke off: {e}")))?
            .to_bytes();
        Ok((answer.status, body))
    }

    fn failure(status: StatusCode, body: &[u8], what: &str) -> Failure {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        if text.is_empty() {
            Failure::failed(format!("{what}: the gateway answered {status}"))
        } else {
            Failure::failed(format!("{what}: {text}"))
        }
    }

    fn parse<T: DeserializeOwned>(body: &[u8], what: &str) -> CmdResult<T> {
        serde_json::from_slice(body)
            .map_err(|e| Failure::failed(format!("{what}: unexpected answer: {e}")))
    }

    /// A request without a body whose answer is JSON (`null` when the answer is empty); `what`
    /// names the operation in errors.
    pub async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        limit: Duration,
        what: &str,
    ) -> CmdResult<T> {
        let (status, body) = self.call(method, path, None, limit).await?;
        if !status.is_success() {
            return Err(Self::failure(status, &body, what));
        }
        if body.trim_ascii().is_empty() {
            return Self::parse(b"null", what);
        }
        Self::parse(&body, what)
    }

    /// Whether a gateway answers `/healthz` within `limit`.
    pub async fn healthy(&self, limit: Duration) -> bool {
        matches!(self.call(Method::GET, "/healthz", None, limit).await, Ok((s, _)) if s.is_success())
    }

    /// `GET /system/info`.
    pub async fn info(&self) -> CmdResult<GatewayInfo> {
        let (status, body) = self.call(Method::GET, "/system/info", None, QUICK).await?;
        if !status.is_success() {
            return Err(Self::failure(
                status,
                &body,
                "reading the gateway's version",
            ));
        }
        Self::parse(&body, "reading the gateway's version")
    }

    /// `GET /system/functions?namespace=`.
    pub async fn list(&self, namespace: &str) -> CmdResult<Vec<FunctionStatus>> {
        let path = format!("/system/functions?namespace={namespace}");
        let (status, body) = self.call(Method::GET, &path, None, QUICK).await?;
        if !status.is_success() {
            return Err(Self::failure(status, &body, "listing functions"));
        }
        Self::parse(&body, "listing functions")
    }

    /// `GET /system/function/{name}`; `None` when it does not exist.
    pub async fn status(&self, function: &FunctionRef) -> CmdResult<Option<FunctionStatus>> {
        let path = format!(
            "/system/function/{}?namespace={}",
            function.name, function.namespace
        );
        let (status, body) = self.call(Method::GET, &path, None, QUICK).await?;
        match status {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Self::parse(&body, "reading the function's status").map(Some),
            s => Err(Self::failure(
                s,
                &body,
                &format!("reading the status of {function}"),
            )),
        }
    }

    /// Deploys: `PUT` first, then `POST` when the function does not exist yet (as faas-cli).
    pub async fn deploy(&self, d: &FunctionDeployment) -> CmdResult<Deployed> {
        let json = serde_json::to_vec(d).map_err(|e| Failure::failed(e.to_string()))?;
        let (status, body) = self
            .call(Method::PUT, "/system/functions", Some(json.clone()), DEPLOY)
            .await?;
        if status.is_success() {
            return Ok(Deployed::Updated);
        }
        if status != StatusCode::NOT_FOUND {
            return Err(Self::failure(
                status,
                &body,
                &format!("updating {}", d.service),
            ));
        }
        let (status, body) = self
            .call(Method::POST, "/system/functions", Some(json), DEPLOY)
            .await?;
        if status.is_success() {
            Ok(Deployed::Created)
        } else {
            Err(Self::failure(
                status,
                &body,
                &format!("deploying {}", d.service),
            ))
        }
    }

    /// `DELETE /system/functions`.
    pub async fn remove(&self, function: &FunctionRef) -> CmdResult {
        let req = DeleteFunctionRequest {
            function_name: function.name.clone(),
            namespace: function.namespace.clone(),
        };
        let json = serde_json::to_vec(&req).map_err(|e| Failure::failed(e.to_string()))?;
        let (status, body) = self
            .call(Method::DELETE, "/system/functions", Some(json), DEPLOY)
            .await?;
        match status {
            s if s.is_success() => Ok(()),
            StatusCode::NOT_FOUND => Err(Failure::failed(format!(
                "function {function} is not deployed"
            ))),
            s => Err(Self::failure(s, &body, &format!("removing {function}"))),
        }
    }

    /// `POST /system/scale-function/{name}`.
    pub async fn scale(&self, function: &FunctionRef, replicas: u64) -> CmdResult {
        let req = ScaleServiceRequest {
            service_name: function.name.clone(),
            replicas,
            namespace: function.namespace.clone(),
        };
        let json = serde_json::to_vec(&req).map_err(|e| Failure::failed(e.to_string()))?;
        let path = format!("/system/scale-function/{}", function.name);
        let (status, body) = self.call(Method::POST, &path, Some(json), QUICK).await?;
        match status {
            s if s.is_success() => Ok(()),
            StatusCode::NOT_FOUND => Err(Failure::failed(format!(
                "function {function} is not deployed"
            ))),
            s => Err(Self::failure(s, &body, &format!("scaling {function}"))),
        }
    }
}

/// `s` as one URL path segment or query value: every byte but ASCII letters, digits and `-._~`
/// percent-encoded.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Normalises a gateway URL as faas-cli does: lower-case, no trailing `/`, `http://` if no scheme.
pub fn normalize_gateway(url: &str) -> String {
    let url = url.trim().trim_end_matches('/').to_lowercase();
    if url.starts_with("http://") || url.starts_with("https://") {
        url
    } else {
        format!("http://{url}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_urls() {
        assert_eq!(
            normalize_gateway("127.0.0.1:8080/"),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            normalize_gateway("HTTP://GW.example:31112"),
            "http://gw.example:31112"
        );
        assert_eq!(normalize_gateway("https://gw/"), "https://gw");
    }
}
