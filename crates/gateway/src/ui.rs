//! The web portal: the static files of `crates/gateway/ui/`, embedded at build time (see
//! `build.rs`) and served at `/ui/`; `/` redirects there. The portal routes in the browser
//! (`/ui/functions/NAME`), so a path whose last segment has no file extension and names no
//! file is answered with `index.html`; a missing file with an extension is a 404.
//!
//! Every answer carries an ETag and `Cache-Control: no-cache`: browsers keep the files but
//! ask again each time (a cheap 304), so a new gateway binary is picked up at once even
//! though the file names do not change.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

mod assets {
    include!(concat!(env!("OUT_DIR"), "/ui_assets.rs"));
}

/// Where the portal lives.
const HOME: &str = "/ui/";

/// The page every portal route starts from.
const INDEX: &str = "index.html";

/// What the portal's pages may load and talk to: only this gateway, nothing inline.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
                   frame-ancestors 'none'";

/// The portal's routes: `/` (a redirect), `/ui` and everything under `/ui/`.
pub(crate) fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/", get(home))
        .route("/ui", get(index))
        .route("/ui/", get(index))
        .route("/ui/{*path}", get(asset))
}

async fn home() -> Response {
    (
        StatusCode::TEMPORARY_REDIRECT,
        [(header::LOCATION, HeaderValue::from_static(HOME))],
    )
        .into_response()
}

async fn index(headers: HeaderMap) -> Response {
    serve(INDEX, &headers)
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&path, &headers)
}

/// The embedded file for `path` (relative to `ui/`), with the fallback to the index page.
fn lookup(path: &str) -> Option<&'static (&'static str, &'static [u8], &'static str)> {
    let path = path.trim_start_matches('/');
    let path = if path.is_empty() { INDEX } else { path };
    let find = |p: &str| assets::ASSETS.iter().find(|(name, _, _)| *name == p);
    find(path).or_else(|| {
        let last = path.rsplit('/').next().unwrap_or(path);
        if last.contains('.') {
            None
        } else {
            find(INDEX)
        }
    })
}

/// The Content-Type of a file, by its extension.
fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        Some("webmanifest") => "application/manifest+json",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Whether `If-None-Match` names `etag` (or `*`).
fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*")
}

fn serve(path: &str, request: &HeaderMap) -> Response {
    let Some((name, body, etag)) = lookup(path) else {
        return crate::api::text(
            StatusCode::NOT_FOUND,
            format!("no file {HOME}{path} in the portal"),
        );
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::ETAG, HeaderValue::from_static(etag));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if not_modified(request, etag) {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(name)),
    );
    if name.ends_with(".html") {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        );
    }
    (StatusCode::OK, headers, *body).into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    async fn get(path: &str, if_none_match: Option<&str>) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut req = Request::get(path);
        if let Some(tag) = if_none_match {
            req = req.header(header::IF_NONE_MATCH, tag);
        }
        let response = router::<()>()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes().to_vec();
        (parts.status, parts.headers, bytes)
    }

    fn header_of(headers: &HeaderMap, name: header::HeaderName) -> &str {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    #[tokio::test]
    async fn root_redirects_to_the_portal() {
        let (status, headers, _) = get("/", None).await;
        assert_eq!(status, StatusCode::TEMPORARY_REDIRECT);
        assert_eq!(header_of(&headers, header::LOCATION), "/ui/");
    }

    #[tokio::test]
    async fn serves_the_index_with_its_policy() {
        for path in ["/ui", "/ui/", "/ui/index.html"] {
            let (status, headers, body) = get(path, None).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert_eq!(
                header_of(&headers, header::CONTENT_TYPE),
                "text/html; charset=utf-8"
            );
            assert_eq!(header_of(&headers, header::CACHE_CONTROL), "no-cache");
            assert!(header_of(&headers, header::CONTENT_SECURITY_POLICY).contains("'self'"));
            assert!(String::from_utf8_lossy(&body).contains("<!doctype html>"));
        }
    }

    #[tokio::test]
    async fn every_file_has_its_content_type() {
        for (name, contents, _) in assets::ASSETS {
            let (status, headers, body) = get(&format!("/ui/{name}"), None).await;
            assert_eq!(status, StatusCode::OK, "{name}");
            assert_ne!(
                header_of(&headers, header::CONTENT_TYPE),
                "application/octet-stream",
                "{name} has no known Content-Type"
            );
            assert_eq!(&body, contents, "{name}");
        }
        let (_, headers, _) = get("/ui/js/app.js", None).await;
        assert_eq!(
            header_of(&headers, header::CONTENT_TYPE),
            "text/javascript; charset=utf-8"
        );
        let (_, headers, _) = get("/ui/style.css", None).await;
        assert_eq!(
            header_of(&headers, header::CONTENT_TYPE),
            "text/css; charset=utf-8"
        );
    }

    #[tokio::test]
    async fn answers_304_to_a_known_etag() {
        let (_, headers, _) = get("/ui/js/app.js", None).await;
        let etag = header_of(&headers, header::ETAG).to_string();
        assert!(etag.starts_with('"'), "{etag}");
        let (status, headers, body) = get("/ui/js/app.js", Some(&etag)).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED);
        assert_eq!(header_of(&headers, header::ETAG), etag);
        assert!(body.is_empty());
        let (status, _, _) = get("/ui/js/app.js", Some(&format!("\"other\", W/{etag}"))).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED);
        let (status, _, _) = get("/ui/js/app.js", Some("\"other\"")).await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn portal_routes_fall_back_to_the_index_but_missing_files_do_not() {
        let (status, headers, _) = get("/ui/functions/echo", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            header_of(&headers, header::CONTENT_TYPE),
            "text/html; charset=utf-8"
        );
        let (status, _, body) = get("/ui/missing.js", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(String::from_utf8_lossy(&body).contains("missing.js"));
    }
}
