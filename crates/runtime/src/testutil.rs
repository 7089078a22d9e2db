//! Helpers for the runtime's tests: one HTTP/1 request over a Unix socket.

use std::path::Path;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

/// Sends `req` on a fresh connection to the Unix socket at `path`.
pub async fn unix_request(
    path: &Path,
    req: Request<Full<Bytes>>,
) -> (StatusCode, HeaderMap, Bytes) {
    let stream = tokio::net::UnixStream::connect(path)
        .await
        .expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let response = sender.send_request(req).await.expect("send");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    (parts.status, parts.headers, body)
}

/// Waits until something listens on the Unix socket at `path`.
pub async fn wait_for_socket(path: &Path) {
    for _ in 0..500 {
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("nothing listens on {}", path.display());
}
