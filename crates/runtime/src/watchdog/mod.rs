//! The watchdog: an HTTP server that runs a command once per request (of-watchdog's
//! `streaming` and `serializing` modes). The local provider runs it as a replica for fork-mode
//! templates; on Kubernetes it is the container's entry point (`ironfaas watchdog`).

mod cgi;
mod fork;

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use ironfaas_spec::duration::parse_duration;
use ironfaas_spec::template::Mode;
use tokio::net::{TcpListener, UnixListener};

/// A response body the watchdog sends.
pub type WatchdogBody = BoxBody<Bytes, io::Error>;

/// Where the watchdog listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A Unix socket path.
    Unix(PathBuf),
}

/// The watchdog's settings, read from the of-watchdog environment variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchdogConfig {
    /// The command run per request, split on whitespace (`fprocess`).
    pub argv: Vec<String>,
    /// `streaming` or `serializing`.
    pub mode: Mode,
    /// Where to listen: `IRONFAAS_SOCKET`, else `0.0.0.0:$port`.
    pub listen: ListenAddr,
    /// Per-request limit (`exec_timeout`; `0` = none).
    pub exec_timeout: Option<Duration>,
    /// Requests run at once; beyond that 429 (`max_inflight`; `0` = no limit).
    pub max_inflight: u32,
    /// The response Content-Type (`content_type`).
    pub content_type: String,
    /// How long in-flight requests may finish after SIGTERM (`write_timeout`).
    pub write_timeout: Duration,
    /// The largest request body serializing mode reads (`max_body_bytes`).
    pub max_body: usize,
    /// The descriptor to write one byte to once listening (`IRONFAAS_READY_FD`).
    pub ready_fd: Option<i32>,
}

fn env_duration(
    lookup: &dyn Fn(&str) -> Option<String>,
    key: &str,
    default: Duration,
) -> Result<Duration, String> {
    match lookup(key) {
        Some(v) if !v.trim().is_empty() => parse_duration(&v).map_err(|e| format!("{key}: {e}")),
        _ => Ok(default),
    }
}

fn env_number<T: std::str::FromStr>(
    lookup: &dyn Fn(&str) -> Option<String>,
    key: &str,
    default: T,
) -> Result<T, String> {
    match lookup(key) {
        Some(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .map_err(|_| format!("{key}: '{v}' is not a whole number ≥ 0")),
        _ => Ok(default),
    }
}

impl WatchdogConfig {
    /// Reads the settings from environment variables through `lookup`.
    pub fn from_env(lookup: &dyn Fn(&str) -> Option<String>) -> Result<WatchdogConfig, String> {
        let fprocess = lookup("fprocess")
            .or_else(|| lookup("function_process"))
            .unwrap_or_default();
        let argv: Vec<String> = fprocess.split_whitespace().map(str::to_string).collect();
        if argv.is_empty() {
            return Err(
                "fprocess is not set: give the command to run per request, e.g. \
                        fprocess='bash handler.sh'"
                    .into(),
            );
        }
        let mode_text = lookup("mode").unwrap_or_else(|| "streaming".into());
        let mode = match Mode::parse(&mode_text) {
            Some(mode) if mode.forks() => mode,
            _ => {
                return Err(format!(
                    "mode '{mode_text}' is not supported by the watchdog: use 'streaming' or \
                     'serializing' (http-mode functions serve HTTP themselves)"
                ));
            }
        };
        let listen = match lookup("IRONFAAS_SOCKET").filter(|s| !s.is_empty()) {
            Some(path) => ListenAddr::Unix(PathBuf::from(path)),
            None => {
                let port: u16 = env_number(lookup, "port", 8080)?;
                ListenAddr::Tcp(SocketAddr::from(([0, 0, 0, 0], port)))
            }
        };
        let exec_timeout = env_duration(lookup, "exec_timeout", Duration::from_secs(30))?;
        Ok(WatchdogConfig {
            argv,
            mode,
            listen,
            exec_timeout: (!exec_timeout.is_zero()).then_some(exec_timeout),
            max_inflight: env_number(lookup, "max_inflight", 0)?,
            content_type: lookup("content_type")
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "application/octet-stream".into()),
            write_timeout: env_duration(lookup, "write_timeout", Duration::from_secs(30))?,
            max_body: env_number(lookup, "max_body_bytes", 64 << 20)?,
            ready_fd: lookup("IRONFAAS_READY_FD")
                .and_then(|fd| fd.trim().parse().ok())
                .filter(|fd| *fd > 2),
        })
    }
}

/// Tells the platform that connections are accepted, and closes the descriptor so the
/// processes started per request do not inherit it.
fn signal_ready(fd: i32) {
    use std::os::fd::FromRawFd;
    #[allow(unsafe_code)]
    // SAFETY: the platform handed this descriptor (IRONFAAS_READY_FD) to this process for
    // exactly this one write; nothing else in the watchdog opens or uses it.
    let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    let _ = nix::unistd::write(&owned, b"1");
}

/// Shared by all requests of one watchdog.
struct State {
    config: WatchdogConfig,
    inflight: AtomicU32,
    shutting_down: AtomicBool,
}

/// Holds one in-flight slot until dropped.
struct Slot(Arc<State>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::SeqCst);
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<WatchdogBody> {
    let mut response = Response::new(Full::new(body.into()).map_err(|e| match e {}).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<WatchdogBody>, Infallible> {
    let path = req.uri().path();
    if path == "/_/health" || path == "/_/ready" {
        if req.method() != Method::GET {
            return Ok(text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n"));
        }
        if state.shutting_down.load(Ordering::SeqCst) {
            return Ok(text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n"));
        }
        let max = state.config.max_inflight;
        if path == "/_/ready" && max > 0 && state.inflight.load(Ordering::SeqCst) >= max {
            return Ok(text(StatusCode::TOO_MANY_REQUESTS, "busy\n"));
        }
        return Ok(text(StatusCode::OK, "OK"));
    }
    let before = state.inflight.fetch_add(1, Ordering::SeqCst);
    let slot = Slot(Arc::clone(&state));
    let max = state.config.max_inflight;
    if max > 0 && before >= max {
        let mut response = text(
            StatusCode::TOO_MANY_REQUESTS,
            format!("Concurrent request limit exceeded. Max concurrent requests: {max}\n"),
        );
        response.headers_mut().insert(
            "x-openfaas-internal",
            http::HeaderValue::from_static("faas-middleware"),
        );
        return Ok(response);
    }
    Ok(fork::run(&state.config, req, slot).await)
}

fn serve_connection<IO>(
    io: IO,
    state: Arc<State>,
    graceful: &hyper_util::server::graceful::GracefulShutdown,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| handle(Arc::clone(&state), req));
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), service);
    let conn = graceful.watch(conn);
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!("watchdog connection ended: {e}");
        }
    });
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish (up to
/// `write_timeout`).
pub async fn serve(config: WatchdogConfig, shutdown: impl Future<Output = ()>) -> io::Result<()> {
    enum Bound {
        Tcp(TcpListener),
        Unix(UnixListener),
    }
    let bound = match &config.listen {
        ListenAddr::Tcp(addr) => Bound::Tcp(TcpListener::bind(addr).await?),
        ListenAddr::Unix(path) => {
            let _ = std::fs::remove_file(path);
            Bound::Unix(UnixListener::bind(path)?)
        }
    };
    if let Some(fd) = config.ready_fd {
        signal_ready(fd);
    }
    let write_timeout = config.write_timeout;
    let state = Arc::new(State {
        config,
        inflight: AtomicU32::new(0),
        shutting_down: AtomicBool::new(false),
    });
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = match &bound {
            Bound::Tcp(listener) => tokio::select! {
                () = &mut shutdown => break,
                r = listener.accept() => r.map(|(stream, _)| {
                    let _ = stream.set_nodelay(true);
                    serve_connection(stream, Arc::clone(&state), &graceful);
                }),
            },
            Bound::Unix(listener) => tokio::select! {
                () = &mut shutdown => break,
                r = listener.accept() => r.map(|(stream, _)| {
                    serve_connection(stream, Arc::clone(&state), &graceful);
                }),
            },
        };
        if let Err(e) = accepted {
            tracing::warn!("watchdog accept failed: {e}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    state.shutting_down.store(true, Ordering::SeqCst);
    drop(bound);
    if tokio::time::timeout(write_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("watchdog: requests still running after write_timeout; exiting anyway");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
