//! The CGI-style environment a forked function process gets (compat §4.3): one `Http_*`
//! variable per request header, plus the method, path and query.

use http::request::Parts;

/// `content-type` → `Content-Type`, as Go's `CanonicalMIMEHeaderKey` writes header names.
fn canonical(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        });
        upper = c == '-';
    }
    out
}

/// The `Http_*` variables for a request: `Http_Content_Type`, `Http_Method`, `Http_Path`,
/// `Http_Query` (only when there is one), `Http_Transfer_Encoding` (when chunked).
pub fn http_env(parts: &Parts) -> Vec<(String, String)> {
    let mut env = Vec::with_capacity(parts.headers.len() + 3);
    for name in parts.headers.keys() {
        // Only the first value of a repeated header, as the watchdogs do.
        if let Some(value) = parts.headers.get(name).and_then(|v| v.to_str().ok()) {
            env.push((
                format!("Http_{}", canonical(name.as_str()).replace('-', "_")),
                value.to_string(),
            ));
        }
    }
    env.push(("Http_Method".into(), parts.method.as_str().to_string()));
    env.push(("Http_Path".into(), parts.uri.path().to_string()));
    if let Some(query) = parts.uri.query().filter(|q| !q.is_empty()) {
        env.push(("Http_Query".into(), query.to_string()));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_names() {
        assert_eq!(canonical("content-type"), "Content-Type");
        assert_eq!(canonical("x-call-id"), "X-Call-Id");
        assert_eq!(canonical("USER-AGENT"), "User-Agent");
    }

    #[test]
    fn builds_http_env() {
        let req = http::Request::builder()
            .method("PUT")
            .uri("/sub/path?a=1&b=2")
            .header("Content-Type", "text/plain")
            .header("x-custom-header", "v1")
            .header("x-custom-header", "v2")
            .body(())
            .unwrap();
        let (parts, ()) = req.into_parts();
        let env = http_env(&parts);
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("Http_Content_Type"), Some("text/plain"));
        assert_eq!(get("Http_X_Custom_Header"), Some("v1"));
        assert_eq!(get("Http_Method"), Some("PUT"));
        assert_eq!(get("Http_Path"), Some("/sub/path"));
        assert_eq!(get("Http_Query"), Some("a=1&b=2"));
    }

    #[test]
    fn no_query_no_variable() {
        let (parts, ()) = http::Request::get("/").body(()).unwrap().into_parts();
        assert!(http_env(&parts).iter().all(|(k, _)| k != "Http_Query"));
    }
}
