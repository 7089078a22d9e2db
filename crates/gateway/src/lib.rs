//! The ironfaas gateway: the OpenFaaS system API and the invocation proxy, served by one
//! HTTP/1 server. The gateway keeps no function state; it asks its [`Provider`].

mod api;
pub mod asynchronous;
pub mod auth;
mod autoscaler;
pub mod body;
mod error_chain;
mod metrics;
mod proxy;
pub mod request_limits;
mod routes;
mod scale_from_zero;
mod ui;

pub use error_chain::error_chain;

use std::convert::Infallible;
use std::io;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use axum::Router;
use http::{HeaderValue, Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use ironfaas_spec::provider::Provider;
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::body::GatewayBody;
use crate::metrics::Metrics;
use crate::proxy::Peer;
use crate::proxy::pool::Pools;

/// Gateway settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayConfig {
    /// The longest a call to a function may take (`upstream_timeout`).
    pub upstream_timeout: Duration,
    /// The longest a client may take to send a request body the gateway reads itself (an
    /// asynchronous call, an API request), or to pause while uploading a bundle (`read_timeout`).
    pub read_timeout: Duration,
    /// The longest a client may take to send a request's headers, and the longest an idle
    /// keep-alive connection stays open.
    pub header_timeout: Duration,
    /// The largest request line and headers (then 431).
    pub max_header_bytes: usize,
    /// The largest body of a synchronous call or route call (then 413).
    pub max_body_bytes: u64,
    /// Client connections open at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// How long in-flight calls may finish after shutdown starts.
    pub shutdown_grace: Duration,
    /// How long a call waits for a replica of a function that has none ready.
    pub scale_from_zero_timeout: Duration,
    /// How often the autoscaler looks at the load.
    pub autoscale_interval: Duration,
    /// Replicas are removed only when no recommendation of this long window needed them.
    pub scale_down_window: Duration,
    /// The largest bundle `PUT /system/store/bundles` accepts.
    pub max_bundle_bytes: u64,
    /// The largest body an asynchronous call may have (then 413).
    pub max_async_body_bytes: usize,
    /// The memory the bodies of asynchronous calls being read and stored may take at once
    /// (beyond, a call is refused with 503).
    pub async_body_memory: u64,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            upstream_timeout: Duration::from_secs(60),
            read_timeout: Duration::from_secs(65),
            header_timeout: Duration::from_secs(30),
            max_header_bytes: 64 << 10,
            max_body_bytes: 64 << 20,
            max_connections: 10_000,
            shutdown_grace: Duration::from_secs(30),
            scale_from_zero_timeout: Duration::from_secs(30),
            autoscale_interval: autoscaler::DEFAULT_INTERVAL,
            scale_down_window: Duration::from_secs(30),
            max_bundle_bytes: 1 << 30,
            max_async_body_bytes: 10 << 20,
            async_body_memory: 512 << 20,
        }
    }
}

impl GatewayConfig {
    /// Checks the settings: every timeout and limit above zero, room for 8 to 256 KiB of
    /// headers.
    pub fn validate(&self) -> Result<(), String> {
        for (value, flag) in [
            (self.upstream_timeout, "--upstream-timeout"),
            (self.read_timeout, "--read-timeout"),
            (self.header_timeout, "--header-timeout"),
        ] {
            if value.is_zero() {
                return Err(format!("{flag} must be more than 0"));
            }
        }
        if !(8 << 10..=256 << 10).contains(&self.max_header_bytes) {
            return Err(format!(
                "--max-header-size must be between 8Ki and 256Ki (it is {} bytes): browsers \
                 send several KiB of headers, and more than 256Ki only helps attackers",
                self.max_header_bytes
            ));
        }
        if self.max_body_bytes == 0 || self.max_connections == 0 {
            return Err("--max-body and --max-connections must be more than 0".into());
        }
        if self.async_body_memory < self.max_async_body_bytes as u64 {
            return Err(format!(
                "--async-body-memory ({} bytes) must be at least --max-async-body ({} bytes), \
                 or no body of the largest size could ever be read",
                self.async_body_memory, self.max_async_body_bytes
            ));
        }
        Ok(())
    }
}

/// What every request handler shares.
pub(crate) struct Gateway {
    provider: Arc<dyn Provider>,
    config: GatewayConfig,
    pools: Pools,
    metrics: Metrics,
    async_stats: Arc<asynchronous::AsyncStats>,
    async_bodies: asynchronous::BodyBudget,
    served_by: HeaderValue,
    turn: AtomicUsize,
    waking: scale_from_zero::Waking,
    routes: routes::RouteTable,
    store: Option<ironfaas_store::FunctionStore>,
    queue: Option<Arc<dyn ironfaas_queue::Queue>>,
    policies: asynchronous::Policies,
    auth: auth::Auth,
}

/// What the gateway drives: the provider, and optionally the function store (for pushes) and
/// the queue of asynchronous calls (with the workers that make them).
pub struct Backends {
    /// Runs the functions.
    pub provider: Arc<dyn Provider>,
    /// The store the provider reads bundles from.
    pub store: Option<ironfaas_store::FunctionStore>,
    /// Stored asynchronous calls.
    pub queue: Option<Arc<dyn ironfaas_queue::Queue>>,
    /// The workers making stored calls in this process; none when `ironfaas worker`s do.
    pub workers: Option<asynchronous::WorkerConfig>,
    /// The credentials `/system/*`, `/ui/*` and protected functions need; `None` turns
    /// authentication off.
    pub credentials: Option<auth::Credentials>,
}

struct App {
    gateway: Arc<Gateway>,
    router: Router,
}

async fn dispatch(
    app: Arc<App>,
    req: Request<Incoming>,
    peer: Arc<Peer>,
) -> Result<Response<GatewayBody>, Infallible> {
    let path = req.uri().path();
    if (path == "/system"
        || path.starts_with("/system/")
        || path == "/ui"
        || path.starts_with("/ui/"))
        && let auth::Verdict::Refused(response) = app.gateway.auth.check(req.headers(), peer.ip)
    {
        return Ok(response);
    }
    if path.starts_with(proxy::PREFIX) {
        return Ok(proxy::invoke(&app.gateway, req, &peer).await);
    }
    if path.starts_with(asynchronous::enqueue::PREFIX) {
        return Ok(asynchronous::enqueue::enqueue(&app.gateway, req, &peer).await);
    }
    if let Some((function, rest)) = app.gateway.routes.lookup(path) {
        let rest = rest.to_string();
        return Ok(proxy::invoke_route(&app.gateway, req, &peer, &function, &rest).await);
    }
    // API bodies arrive within the read timeout; a bundle upload may take longer as long as
    // its bytes keep coming.
    let pace = if path.starts_with(api::STORE_UPLOAD) {
        request_limits::Pace::Stall(app.gateway.config.read_timeout)
    } else {
        request_limits::Pace::Total(app.gateway.config.read_timeout)
    };
    let req = req.map(|body| request_limits::GuardedBody::new(body, u64::MAX, "", pace));
    let response = app.router.clone().oneshot(req).await?;
    Ok(response.map(GatewayBody::Api))
}

/// Serves the gateway on `listener` (with `store`, the function store the provider reads, for
/// pushes) until `shutdown` resolves, then lets in-flight calls
/// finish (up to the shutdown grace).
pub async fn serve(
    listener: TcpListener,
    backends: Backends,
    config: GatewayConfig,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    config.validate().map_err(io::Error::other)?;
    let Backends {
        provider,
        store,
        queue,
        workers,
        credentials,
    } = backends;
    let gateway = Arc::new(Gateway {
        provider,
        config,
        pools: Pools::default(),
        metrics: Metrics::default(),
        async_stats: Arc::default(),
        async_bodies: asynchronous::BodyBudget::new(config.async_body_memory),
        served_by: HeaderValue::from_static(concat!("ironfaas/", env!("CARGO_PKG_VERSION"))),
        turn: AtomicUsize::new(0),
        waking: scale_from_zero::Waking::default(),
        routes: routes::RouteTable::default(),
        store,
        queue,
        policies: asynchronous::Policies::default(),
        auth: auth::Auth::new(credentials),
    });
    gateway.routes.refresh(gateway.provider.as_ref()).await;
    let app = Arc::new(App {
        router: api::router(Arc::clone(&gateway)),
        gateway: Arc::clone(&gateway),
    });
    let pruner = {
        let gateway = Arc::clone(&gateway);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(proxy::PRUNE_EVERY);
            loop {
                tick.tick().await;
                gateway.pools.prune();
                gateway.routes.refresh(gateway.provider.as_ref()).await;
            }
        })
    };
    let autoscaler = tokio::spawn(autoscaler::Autoscaler::new(Arc::clone(&gateway)).run());
    let (stop_workers, workers_stopped) = tokio::sync::oneshot::channel::<()>();
    let workers = match (gateway.queue.clone(), workers) {
        (Some(queue), Some(config)) => {
            let invoker = Arc::new(asynchronous::invoker::InProcess {
                gateway: Arc::clone(&gateway),
            });
            Some(tokio::spawn(asynchronous::run_workers(
                queue,
                invoker,
                config,
                Some(Arc::clone(&gateway.async_stats)),
                async move {
                    let _ = workers_stopped.await;
                },
            )))
        }
        _ => None,
    };
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout)
        .max_header_size(config.max_header_bytes);
    let connections = Arc::new(tokio::sync::Semaphore::new(config.max_connections));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = Arc::clone(&connections).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, remote) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = Arc::clone(&app);
        let peer = Arc::new(Peer::new(remote));
        let service = hyper::service::service_fn(move |req| {
            dispatch(Arc::clone(&app), req, Arc::clone(&peer))
        });
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("connection from {remote} ended: {e}");
            }
            drop(permit);
        });
    }
    drop(listener);
    pruner.abort();
    autoscaler.abort();
    let _ = stop_workers.send(());
    if let Some(workers) = workers {
        let _ = tokio::time::timeout(config.shutdown_grace, workers).await;
    }
    if tokio::time::timeout(config.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("calls still in flight after the shutdown grace; closing them");
    }
    Ok(())
}
