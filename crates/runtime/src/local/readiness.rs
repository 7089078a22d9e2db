//! Readiness: a replica is ready when its server answers an HTTP request on its health path
//! with anything but 503. Probes start at once and back off from 1 ms, so a fast server is
//! routed to within a millisecond or two of listening.

use std::io;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use ironfaas_spec::duration::format_duration;
use ironfaas_spec::provider::Endpoint;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::process::Child;

/// The longest pause between two probes.
const MAX_PAUSE: Duration = Duration::from_millis(20);
/// The longest one probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a replica never became ready.
#[derive(Debug)]
pub(crate) enum NotReady {
    /// Its process ended first.
    Exited(ExitStatus),
    /// It did not answer in time.
    TimedOut(Duration, String),
    /// Waiting for the process failed.
    Wait(io::Error),
}

impl std::fmt::Display for NotReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotReady::Exited(status) => {
                write!(f, "its process exited ({status}) before it was ready")
            }
            NotReady::TimedOut(after, last) => write!(
                f,
                "it did not answer its readiness probe within {} (last probe: {last})",
                format_duration(*after)
            ),
            NotReady::Wait(e) => write!(f, "cannot watch its process: {e}"),
        }
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, path: &str) -> io::Result<u16> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::with_capacity(64);
    let mut buf = [0u8; 64];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 1024 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    line.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .filter(|_| line.starts_with("HTTP/"))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "the answer is not HTTP"))
}

/// Sends one `GET path` to `endpoint` and returns the status code.
pub(crate) async fn probe(endpoint: &Endpoint, path: &str) -> io::Result<u16> {
    let attempt = async {
        match endpoint {
            Endpoint::Tcp(addr) => {
                exchange(tokio::net::TcpStream::connect(addr).await?, path).await
            }
            Endpoint::Unix(sock) => {
                exchange(tokio::net::UnixStream::connect(sock).await?, path).await
            }
        }
    };
    tokio::time::timeout(PROBE_TIMEOUT, attempt)
        .await
        .unwrap_or_else(|_| {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no answer within 2s",
            ))
        })
}

/// Probes until the replica answers, its process exits, or `limit` passes.
pub(crate) async fn wait_ready(
    endpoint: &Endpoint,
    path: &str,
    child: &mut Child,
    limit: Duration,
) -> Result<(), NotReady> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(1);
    let mut last: String;
    loop {
        match probe(endpoint, path).await {
            Ok(503) => last = "503 Service Unavailable".into(),
            Ok(_) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
        match child.try_wait() {
            Ok(Some(status)) => return Err(NotReady::Exited(status)),
            Ok(None) => {}
            Err(e) => return Err(NotReady::Wait(e)),
        }
        if started.elapsed() >= limit {
            return Err(NotReady::TimedOut(limit, last));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn probe_reads_the_status() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            for code in ["404 Not Found", "503 Service Unavailable"] {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 256];
                let _ = s.read(&mut buf).await;
                s.write_all(format!("HTTP/1.1 {code}\r\n\r\n").as_bytes())
                    .await
                    .unwrap();
            }
        });
        let ep = Endpoint::Tcp(addr);
        assert_eq!(probe(&ep, "/_/health").await.unwrap(), 404);
        assert_eq!(probe(&ep, "/_/health").await.unwrap(), 503);
        assert!(
            probe(&ep, "/_/health").await.is_err(),
            "nothing listens any more"
        );
    }

    #[tokio::test]
    async fn exit_before_ready_is_reported() {
        let mut child = tokio::process::Command::new("sh")
            .args(["-c", "exit 7"])
            .spawn()
            .unwrap();
        let ep = Endpoint::Unix("/nonexistent/sock".into());
        let err = wait_ready(&ep, "/", &mut child, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("exit status: 7"), "{err}");
    }

    #[tokio::test]
    async fn timeout_is_reported() {
        let mut child = tokio::process::Command::new("sleep")
            .arg("5")
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let ep = Endpoint::Unix("/nonexistent/sock".into());
        let err = wait_ready(&ep, "/", &mut child, Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(matches!(err, NotReady::TimedOut(..)), "{err}");
    }
}
