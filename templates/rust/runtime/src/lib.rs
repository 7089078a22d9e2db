//! The request and response of an ironfaas `rust` function.
//!
//! The function crate (`function/`) exposes
//!
//! ```ignore
//! use ironfaas_function::{Request, Response};
//!
//! pub fn handle(req: Request) -> Response {
//!     Response::text(format!("hello {}", req.query_param("name").unwrap_or_default()))
//! }
//! ```
//!
//! and the template's server (`main/`) calls it once per HTTP request, each connection on a
//! thread of its own (so `handle` may run on several threads at once). A panic in `handle`
//! answers `500 Internal Server Error`; the server keeps serving.
//!
//! Standard library only.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// Request headers in the order they arrived; names are looked up case-insensitively.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers {
    pairs: Vec<(String, String)>,
}

impl Headers {
    /// Headers from (name, value) pairs, in order.
    pub fn new(pairs: Vec<(String, String)>) -> Headers {
        Headers { pairs }
    }

    /// The first value of header `name` (any case), if it was sent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name` (any case), in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether header `name` (any case) was sent.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// All (name, value) pairs as sent.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// How many header lines were sent.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether no header was sent.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// One HTTP request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`, ... as sent.
    pub method: String,
    /// The path, percent-decoded (`/a%20b` is `/a b`); always starts with `/` (or is `*`).
    pub path: String,
    /// The raw query string, without the `?` (empty if none); see [`Request::query_param`].
    pub query: String,
    /// The request headers.
    pub headers: Headers,
    /// The request body (a chunked body is already decoded).
    pub body: Vec<u8>,
}

impl Request {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// The first value of query parameter `name`, decoded (`%xx` and `+` for space).
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// Every value of query parameter `name`, decoded, in order.
    pub fn query_param_all(&self, name: &str) -> Vec<String> {
        self.query_pairs()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v)
            .collect()
    }

    /// All query parameters as decoded (name, value) pairs, in order.
    pub fn query_params(&self) -> Vec<(String, String)> {
        self.query_pairs().collect()
    }

    fn query_pairs(&self) -> impl Iterator<Item = (String, String)> + '_ {
        self.query.split('&').filter(|p| !p.is_empty()).map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
    }

    /// The body as text (invalid UTF-8 is replaced by U+FFFD).
    pub fn body_text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }
}

/// One HTTP response. The server always sends it with `Content-Length`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code, 200 to 999.
    pub status: u16,
    /// Response headers, in order. `Content-Length` and `Transfer-Encoding` are set by the
    /// server and ignored here; `Connection: close` closes the connection after the response.
    pub headers: Vec<(String, String)>,
    /// The response body.
    pub body: Vec<u8>,
}

impl Default for Response {
    fn default() -> Response {
        Response::new(200)
    }
}

impl Response {
    /// An empty response with `status` and no headers.
    #[must_use]
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// 200 with a `text/plain; charset=utf-8` body.
    #[must_use]
    pub fn text(body: impl Into<String>) -> Response {
        Response::bytes("text/plain; charset=utf-8", body.into().into_bytes())
    }

    /// 200 with a `text/html; charset=utf-8` body.
    #[must_use]
    pub fn html(body: impl Into<String>) -> Response {
        Response::bytes("text/html; charset=utf-8", body.into().into_bytes())
    }

    /// 200 with an `application/json` body that is already JSON text (see [`json_string`]).
    #[must_use]
    pub fn json_str(json: impl Into<String>) -> Response {
        Response::bytes("application/json", json.into().into_bytes())
    }

    /// 200 with `body` of type `content_type`.
    #[must_use]
    pub fn bytes(content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response::new(200)
            .with_header("Content-Type", content_type)
            .with_body(body)
    }

    /// The same response with status `status`.
    #[must_use]
    pub fn with_status(mut self, status: u16) -> Response {
        self.status = status;
        self
    }

    /// The same response with header `name` set to `value` (replacing any of that name).
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Response {
        let name = name.into();
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
        self.headers.push((name, value.into()));
        self
    }

    /// The same response with one more `name: value` header (for headers sent several times,
    /// like `Set-Cookie`).
    #[must_use]
    pub fn append_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The same response with body `body`.
    #[must_use]
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Response {
        self.body = body.into();
        self
    }

    /// The first value of response header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl From<&str> for Response {
    fn from(text: &str) -> Response {
        Response::text(text)
    }
}

impl From<String> for Response {
    fn from(text: String) -> Response {
        Response::text(text)
    }
}

/// Decodes `%xx` escapes (and `+` as a space if `plus_as_space`); invalid escapes are kept
/// as they are and invalid UTF-8 becomes U+FFFD.
pub fn percent_decode(raw: &str, plus_as_space: bool) -> String {
    if !(raw.contains('%') || plus_as_space && raw.contains('+')) {
        return raw.to_string();
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(if b == b'+' && plus_as_space { b' ' } else { b });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `text` as a JSON string literal, quotes included: `json_string("a\"b")` is `"a\"b"`.
/// Handy for building small JSON bodies for [`Response::json_str`] without a JSON crate.
pub fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_are_decoded() {
        let req = Request {
            query: "a=1&b=x+y&b=%2F%zz&c&=v".into(),
            ..Request::default()
        };
        assert_eq!(req.query_param("a").as_deref(), Some("1"));
        assert_eq!(req.query_param_all("b"), ["x y", "/%zz"]);
        assert_eq!(req.query_param("c").as_deref(), Some(""));
        assert_eq!(req.query_param("missing"), None);
        assert_eq!(req.query_params().len(), 5);
    }

    #[test]
    fn headers_are_case_insensitive() {
        let h = Headers::new(vec![("X-A".into(), "1".into()), ("x-a".into(), "2".into())]);
        assert_eq!(h.get("x-A"), Some("1"));
        assert_eq!(h.get_all("X-a").collect::<Vec<_>>(), ["1", "2"]);
        assert!(!h.contains("x-b"));
    }

    #[test]
    fn response_builders() {
        let r = Response::text("hi")
            .with_status(201)
            .with_header("content-type", "text/csv");
        assert_eq!(r.status, 201);
        assert_eq!(
            r.headers,
            [("content-type".to_string(), "text/csv".to_string())]
        );
        assert_eq!(json_string("a\"\\\n\u{1}é"), "\"a\\\"\\\\\\n\\u0001é\"");
        assert_eq!(percent_decode("%41%4", false), "A%4");
    }
}
