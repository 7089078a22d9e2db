//! Callbacks: the result of a stored call is POSTed to the caller's `X-Callback-Url` with the
//! function's body and headers plus `X-Call-Id`, `X-Function-Status`, `X-Function-Name`,
//! `X-Duration-Seconds`, `X-Retry` and `X-Retry-Max` (compat §2.3). A failed callback is
//! retried with back-off; redirects are followed with the body kept (unlike OpenFaaS CE).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, StatusCode, Uri};
use http_body_util::Full;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::error_chain;
use crate::proxy::strip_hop_by_hop;

/// Tries per callback.
const ATTEMPTS: u32 = 5;
/// Redirects followed per try.
const MAX_REDIRECTS: usize = 5;
/// The wait before the second try; it doubles.
const FIRST_WAIT: Duration = Duration::from_millis(250);
/// The longest one try may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// One callback to deliver.
pub(crate) struct Callback<'a> {
    /// Where to.
    pub url: &'a str,
    /// The call's id.
    pub call_id: &'a str,
    /// The function, as `name.namespace`.
    pub function: String,
    /// The function's status, or 503 when it could not be called.
    pub status: u16,
    /// From receipt of the call to its end.
    pub duration: Duration,
    /// The function's headers.
    pub headers: HeaderMap,
    /// The function's body.
    pub body: Bytes,
    /// Retries made (attempts − 1).
    pub retry: u32,
    /// Retries allowed (attempts allowed − 1).
    pub retry_max: u32,
}

/// Delivers callbacks.
pub(crate) struct Callbacks {
    http: Client<HttpConnector, Full<Bytes>>,
    /// For `https://` URLs; why not, when this machine has no certificate authorities.
    https: Result<Client<HttpsConnector<HttpConnector>, Full<Bytes>>, String>,
}

/// TLS for `https://` callbacks: the system's certificate authorities (or those of
/// `SSL_CERT_FILE` / `SSL_CERT_DIR`). The provider is named: the dependency tree enables two,
/// so rustls could not pick one by itself.
fn tls_config() -> Result<rustls::ClientConfig, String> {
    use hyper_rustls::ConfigBuilderExt;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_native_roots()
        .map(|b| b.with_no_client_auth())
        .map_err(|e| {
            format!(
                "no trusted certificate authorities found ({e}); install ca-certificates or set \
                 SSL_CERT_FILE"
            )
        })
}

impl Callbacks {
    /// A callback client for `http://` and `https://` URLs.
    pub fn new() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let https = tls_config().map(|config| {
            let mut tcp = connector.clone();
            tcp.enforce_http(false);
            let tls = HttpsConnectorBuilder::new()
                .with_tls_config(config)
                .https_only()
                .enable_http1()
                .wrap_connector(tcp);
            Client::builder(TokioExecutor::new()).build(tls)
        });
        if let Err(e) = &https {
            tracing::warn!("https:// callbacks cannot be delivered: {e}");
        }
        Callbacks {
            http: Client::builder(TokioExecutor::new()).build(connector),
            https,
        }
    }

    /// Sends `req` with the client for its scheme.
    async fn send(
        &self,
        req: Request<Full<Bytes>>,
    ) -> Result<http::Response<hyper::body::Incoming>, String> {
        let target = req.uri().to_string();
        let sent = if req.uri().scheme_str() == Some("https") {
            match &self.https {
                Ok(client) => client.request(req).await,
                Err(why) => return Err(format!("{target}: https:// is not available: {why}")),
            }
        } else {
            self.http.request(req).await
        };
        sent.map_err(|e| format!("{target}: {}", error_chain(&e)))
    }

    fn headers(cb: &Callback<'_>) -> HeaderMap {
        let mut headers = cb.headers.clone();
        strip_hop_by_hop(&mut headers);
        headers.remove(http::header::CONTENT_LENGTH);
        headers.remove(http::header::HOST);
        let mut set = |name: &'static str, value: String| {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        };
        set("x-call-id", cb.call_id.to_string());
        set("x-function-status", cb.status.to_string());
        set("x-function-name", cb.function.clone());
        set(
            "x-duration-seconds",
            format!("{:.6}", cb.duration.as_secs_f64()),
        );
        set("x-retry", cb.retry.to_string());
        set("x-retry-max", cb.retry_max.to_string());
        headers
    }

    /// One POST, following redirects with the body kept; the final status.
    async fn post(
        &self,
        url: &str,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<StatusCode, String> {
        let mut target: Uri = url
            .parse()
            .map_err(|e| format!("callback URL {url}: {e}"))?;
        for _ in 0..=MAX_REDIRECTS {
            let mut req = Request::post(target.clone())
                .body(Full::new(body.clone()))
                .map_err(|e| e.to_string())?;
            *req.headers_mut() = headers.clone();
            let response = tokio::time::timeout(TIMEOUT, self.send(req))
                .await
                .map_err(|_| format!("{target} did not answer within {}s", TIMEOUT.as_secs()))??;
            let status = response.status();
            if !status.is_redirection() {
                return Ok(status);
            }
            let location = response
                .headers()
                .get(http::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .ok_or_else(|| format!("{target} redirected ({status}) without a Location"))?;
            target = resolve(&target, location)?;
        }
        Err(format!("more than {MAX_REDIRECTS} redirects from {url}"))
    }

    /// Delivers `cb`, retrying transport errors and 5xx answers with back-off.
    pub async fn deliver(&self, cb: &Callback<'_>) -> Result<(), String> {
        let headers = Self::headers(cb);
        let mut wait = FIRST_WAIT;
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            match self.post(cb.url, &headers, &cb.body).await {
                Ok(status) if !status.is_server_error() => return Ok(()),
                Ok(status) => last = format!("{} answered {status}", cb.url),
                Err(e) => last = e,
            }
            if attempt < ATTEMPTS {
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
        }
        Err(format!(
            "callback for {} failed {ATTEMPTS} times: {last}",
            cb.call_id
        ))
    }
}

/// `location` (absolute, or a path) against `base`.
fn resolve(base: &Uri, location: &str) -> Result<Uri, String> {
    if location.contains("://") {
        return location
            .parse()
            .map_err(|e| format!("redirect to {location}: {e}"));
    }
    let scheme = base.scheme_str().unwrap_or("http");
    let authority = base.authority().map(|a| a.as_str()).unwrap_or_default();
    format!("{scheme}://{authority}{location}")
        .parse()
        .map_err(|e| format!("redirect to {location}: {e}"))
}

/// Checks an `X-Callback-Url`: an absolute `http://` or `https://` URL with a host.
pub(crate) fn valid_callback(url: &str) -> Result<(), String> {
    let uri: Uri = url
        .parse()
        .map_err(|_| format!("X-Callback-Url '{url}' is not a URL"))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(host)) if !host.is_empty() => Ok(()),
        _ => Err(format!(
            "X-Callback-Url '{url}' must be an absolute http:// or https:// URL"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_urls_are_checked() {
        assert!(valid_callback("http://127.0.0.1:9000/done").is_ok());
        assert!(valid_callback("https://hooks.example.no/x?y=1").is_ok());
        for bad in ["", "/relative", "ftp://x/y", "not a url", "http://"] {
            assert!(valid_callback(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn redirects_resolve() {
        let base: Uri = "http://a:1/x".parse().unwrap();
        assert_eq!(resolve(&base, "/y").unwrap().to_string(), "http://a:1/y");
        assert_eq!(
            resolve(&base, "http://b/z").unwrap().to_string(),
            "http://b/z"
        );
    }
}
