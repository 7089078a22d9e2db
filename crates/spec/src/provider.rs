//! The seam between the gateway and whatever runs functions (compat: the faas-provider
//! contract). The gateway holds no function state: it asks a [`Provider`] for everything, and
//! for each invocation takes a [`FunctionRoute`] whose ready [`Backend`]s it proxies to.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::names::FunctionRef;
use crate::wire::{FunctionDeployment, FunctionStatus, LogEntry, ProviderInfo, Secret};

/// Why a provider call failed; each variant maps to one HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The function does not exist (404).
    #[error("function {0} not found")]
    NotFound(FunctionRef),
    /// The function exists already (409).
    #[error("function {0} already exists; update it with PUT /system/functions (ironfaas deploy)")]
    AlreadyExists(FunctionRef),
    /// Something other than a function (a secret) does not exist (404).
    #[error("{0}")]
    Missing(String),
    /// Something other than a function (a secret) exists already (409).
    #[error("{0}")]
    Conflict(String),
    /// The request is invalid; the text says what to change (400).
    #[error("{0}")]
    Invalid(String),
    /// The provider could not do it; the text says why (500).
    #[error("{0}")]
    Failed(String),
}

/// Where a replica listens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// A TCP address, normally on loopback.
    Tcp(SocketAddr),
    /// A Unix domain socket.
    Unix(PathBuf),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp(addr) => write!(f, "tcp://{addr}"),
            Endpoint::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// How the gateway must treat calls to one backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvokeLimits {
    /// Requests one replica takes at once; 0 means no limit (`max_inflight`).
    pub max_inflight: u32,
    /// The longest a call may take before the gateway answers 504 (`exec_timeout`).
    pub exec_timeout: Option<Duration>,
}

/// One ready replica the gateway may send requests to.
#[derive(Debug)]
pub struct Backend {
    /// Unique among all backends this provider ever made; keys connection pools.
    pub id: u64,
    /// The replica's name, for logs and errors.
    pub name: String,
    /// Where it listens.
    pub endpoint: Endpoint,
    /// Limits for calls to it.
    pub limits: InvokeLimits,
    inflight: AtomicU32,
    draining: AtomicBool,
}

/// Why a backend did not take a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcquireError {
    /// It is at its `max_inflight`.
    Full,
    /// It is being drained and takes no new requests.
    Draining,
}

impl Backend {
    /// A backend with nothing in flight.
    pub fn new(id: u64, name: String, endpoint: Endpoint, limits: InvokeLimits) -> Self {
        Backend {
            id,
            name,
            endpoint,
            limits,
            inflight: AtomicU32::new(0),
            draining: AtomicBool::new(false),
        }
    }

    /// Requests in flight right now.
    pub fn inflight(&self) -> u32 {
        self.inflight.load(Ordering::Relaxed)
    }

    /// Whether it is being drained.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Takes one in-flight slot; the slot is given back when the guard drops.
    ///
    /// Paired with [`Backend::drain`]: a caller that got a guard is always seen by a drainer
    /// that checks [`Backend::inflight`] after `drain`, so no request reaches a stopped replica.
    pub fn try_acquire(self: &Arc<Self>) -> Result<InflightGuard, AcquireError> {
        let before = self.inflight.fetch_add(1, Ordering::SeqCst);
        let guard = InflightGuard(Arc::clone(self));
        if self.draining.load(Ordering::SeqCst) {
            return Err(AcquireError::Draining);
        }
        if self.limits.max_inflight > 0 && before >= self.limits.max_inflight {
            return Err(AcquireError::Full);
        }
        Ok(guard)
    }

    /// Stops new requests from being admitted; wait for [`Backend::inflight`] to reach zero.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }
}

/// An in-flight slot on a backend; dropping it frees the slot.
#[derive(Debug)]
pub struct InflightGuard(Arc<Backend>);

impl InflightGuard {
    /// The backend this slot is on.
    pub fn backend(&self) -> &Arc<Backend> {
        &self.0
    }
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The live routing entry of one function: the set of ready backends, swapped atomically,
/// and a signal for those waiting for the first one.
#[derive(Debug)]
pub struct FunctionRoute {
    /// The function.
    pub function: FunctionRef,
    backends: ArcSwap<Vec<Arc<Backend>>>,
    ready: tokio::sync::watch::Sender<usize>,
    protected: AtomicBool,
}

/// The annotation that makes calling a function require the gateway's credentials.
pub const AUTH_ANNOTATION: &str = "com.ironfaas.auth";

impl FunctionRoute {
    /// A route with no backends yet.
    pub fn new(function: FunctionRef) -> Self {
        FunctionRoute {
            function,
            backends: ArcSwap::from_pointee(Vec::new()),
            ready: tokio::sync::watch::Sender::new(0),
            protected: AtomicBool::new(false),
        }
    }

    /// The ready backends now.
    pub fn backends(&self) -> Arc<Vec<Arc<Backend>>> {
        self.backends.load_full()
    }

    /// Replaces the set of ready backends.
    pub fn set_backends(&self, backends: Vec<Arc<Backend>>) {
        let count = backends.len();
        self.backends.store(Arc::new(backends));
        self.ready
            .send_if_modified(|n| std::mem::replace(n, count) != count);
    }

    /// Whether calls need the gateway's credentials (annotation `com.ironfaas.auth: basic`).
    pub fn protected(&self) -> bool {
        self.protected.load(Ordering::Relaxed)
    }

    /// Sets whether calls need the gateway's credentials.
    pub fn set_protected(&self, protected: bool) {
        self.protected.store(protected, Ordering::Relaxed);
    }

    /// Waits until at least one backend is ready; false if `limit` passed first.
    pub async fn wait_ready(&self, limit: Duration) -> bool {
        let mut rx = self.ready.subscribe();
        matches!(
            tokio::time::timeout(limit, rx.wait_for(|n| *n > 0)).await,
            Ok(Ok(_))
        )
    }
}

/// Which log lines `Provider::logs` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRequest {
    /// The function.
    pub function: FunctionRef,
    /// Only this replica's lines.
    pub instance: Option<String>,
    /// Only the last this many lines (of those matching).
    pub tail: Option<usize>,
    /// Only lines written at or after this time.
    pub since: Option<std::time::SystemTime>,
    /// After the stored lines, keep streaming new ones.
    pub follow: bool,
}

/// Log lines as they come.
pub type LogStream = std::pin::Pin<Box<dyn futures_core::Stream<Item = LogEntry> + Send>>;

/// What runs functions: the local process provider, or Kubernetes.
#[async_trait::async_trait]
pub trait Provider: Send + Sync + 'static {
    /// Names and versions the provider.
    fn info(&self) -> ProviderInfo;

    /// Creates a function and waits until its replicas are ready.
    async fn deploy(&self, deployment: FunctionDeployment) -> Result<(), ProviderError>;

    /// Replaces an existing function's spec with a rolling update.
    async fn update(&self, deployment: FunctionDeployment) -> Result<(), ProviderError>;

    /// Removes a function, draining its replicas first.
    async fn remove(&self, function: &FunctionRef) -> Result<(), ProviderError>;

    /// Sets the desired number of replicas.
    async fn scale(&self, function: &FunctionRef, replicas: u64) -> Result<(), ProviderError>;

    /// One function's status.
    async fn status(&self, function: &FunctionRef) -> Result<FunctionStatus, ProviderError>;

    /// All functions in a namespace.
    async fn list(&self, namespace: &str) -> Result<Vec<FunctionStatus>, ProviderError>;

    /// The namespaces that hold functions, always including the default one.
    async fn namespaces(&self) -> Result<Vec<String>, ProviderError>;

    /// The secrets of a namespace, names only.
    async fn list_secrets(&self, namespace: &str) -> Result<Vec<Secret>, ProviderError>;

    /// Stores a new secret ([`ProviderError::Conflict`] when it exists).
    async fn create_secret(&self, secret: Secret) -> Result<(), ProviderError>;

    /// Replaces a secret's value ([`ProviderError::Missing`] when it does not exist).
    async fn update_secret(&self, secret: Secret) -> Result<(), ProviderError>;

    /// Deletes a secret ([`ProviderError::Missing`] when it does not exist).
    async fn delete_secret(&self, name: &str, namespace: &str) -> Result<(), ProviderError>;

    /// A function's output: stored lines, then new ones when following.
    async fn logs(&self, request: LogRequest) -> Result<LogStream, ProviderError>;

    /// The routing entry of a function, on the request path: must not block.
    fn route(&self, name: &str, namespace: &str) -> Option<Arc<FunctionRoute>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(max: u32) -> Arc<Backend> {
        let limits = InvokeLimits {
            max_inflight: max,
            exec_timeout: None,
        };
        Arc::new(Backend::new(
            1,
            "b".into(),
            Endpoint::Tcp(([127, 0, 0, 1], 1).into()),
            limits,
        ))
    }

    #[test]
    fn inflight_is_counted_and_released() {
        let b = backend(0);
        let g1 = b.try_acquire().unwrap();
        let g2 = b.try_acquire().unwrap();
        assert_eq!(b.inflight(), 2);
        drop(g1);
        drop(g2);
        assert_eq!(b.inflight(), 0);
    }

    #[test]
    fn max_inflight_refuses_beyond_limit() {
        let b = backend(2);
        let _g1 = b.try_acquire().unwrap();
        let _g2 = b.try_acquire().unwrap();
        assert_eq!(b.try_acquire().unwrap_err(), AcquireError::Full);
        assert_eq!(b.inflight(), 2, "a refused acquire gives its slot back");
    }

    #[test]
    fn draining_refuses_new_requests() {
        let b = backend(0);
        let g = b.try_acquire().unwrap();
        b.drain();
        assert_eq!(b.try_acquire().unwrap_err(), AcquireError::Draining);
        assert_eq!(b.inflight(), 1);
        drop(g);
        assert_eq!(b.inflight(), 0);
    }

    #[test]
    fn route_swaps_backends() {
        let r = FunctionRoute::new(FunctionRef::parse("f"));
        assert!(r.backends().is_empty());
        r.set_backends(vec![backend(0)]);
        assert_eq!(r.backends().len(), 1);
    }
}
