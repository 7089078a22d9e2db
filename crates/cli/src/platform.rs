//! The platform in this process: the gateway with the local provider and the local store.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ironfaas_gateway::asynchronous::WorkerConfig;
use ironfaas_gateway::auth::Credentials;
use ironfaas_gateway::{Backends, GatewayConfig};
use ironfaas_queue::{EmbeddedOptions, EmbeddedQueue, NatsOptions, NatsQueue, Queue};
use ironfaas_runtime::local::{LocalConfig, LocalProvider, SpareMode};
use ironfaas_runtime::sandbox::SandboxSupport;
use ironfaas_store::{FunctionStore, local_store_dir};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::credentials;
use crate::failure::{CmdResult, Failure};

/// How to run the platform.
#[derive(Debug, Clone)]
pub struct PlatformOptions {
    /// Where the gateway listens.
    pub listen: SocketAddr,
    /// The data dir.
    pub data_dir: PathBuf,
    /// Gateway timeouts.
    pub gateway: GatewayConfig,
    /// How long a replica may take to become ready.
    pub ready_timeout: Duration,
    /// The function store: `s3://BUCKET/PREFIX` (or a path); the data dir's store when unset.
    pub store: Option<String>,
    /// The queue of asynchronous calls: `nats://HOST:PORT`; embedded in the data dir when unset.
    pub queue: Option<String>,
    /// What the queue holds at most.
    pub queue_limits: QueueLimits,
    /// Workers making asynchronous calls in this process; none when `ironfaas worker`s do.
    pub workers: Option<WorkerConfig>,
    /// Whether replicas run sandboxed.
    pub sandbox: SandboxMode,
    /// What a sandboxed function scaled to zero keeps ready for its next start.
    pub spare_sandbox: SpareSandbox,
    /// Whether `/system/*`, `/ui/*` and protected functions need the admin's credentials.
    pub auth: bool,
}

/// The admin credentials of a data dir, made on first use: user `admin` and the password from
/// `$IRONFAAS_ADMIN_PASSWORD`, else a random one, in files only the platform's user can read.
fn admin_credentials(data_dir: &Path) -> CmdResult<Credentials> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let (user_file, password_file) = (
        credentials::user_file(data_dir),
        credentials::password_file(data_dir),
    );
    if let (Ok(user), Ok(password)) = (
        std::fs::read_to_string(&user_file),
        std::fs::read_to_string(&password_file),
    ) {
        return Ok(Credentials {
            user: user.trim().to_string(),
            password: password.trim().to_string(),
        });
    }
    let password = match std::env::var("IRONFAAS_ADMIN_PASSWORD")
        .ok()
        .filter(|p| !p.trim().is_empty())
    {
        Some(p) => p.trim().to_string(),
        None => {
            let mut bytes = [0u8; 18];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
                .map_err(|_| Failure::failed("no randomness for the admin password"))?;
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)
        }
    };
    let dir = user_file.parent().unwrap_or(data_dir);
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::failed(format!("cannot create {}: {e}", dir.display())))?;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    for (path, text) in [(&user_file, "admin"), (&password_file, password.as_str())] {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
            .map_err(|e| Failure::failed(format!("cannot write {}: {e}", path.display())))?;
    }
    eprintln!(
        "generated the admin password for basic authentication: user admin, password in {} \
         (log in with `ironfaas login`)",
        password_file.display()
    );
    Ok(Credentials {
        user: "admin".into(),
        password,
    })
}

/// Whether replicas run sandboxed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SandboxMode {
    /// When this machine supports it (root, bubblewrap, cgroups); said once when it does not.
    Auto,
    /// Always; refuse to start without support.
    On,
    /// Never: replicas are plain processes that see what the platform sees.
    Off,
}

/// What a sandboxed function scaled to zero keeps ready (`--spare-sandbox`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SpareSandbox {
    /// One replica whose sandbox is built and whose program waits to start.
    On,
    /// Nothing: the next call waits for the sandbox to be made.
    Off,
    /// As `on`, and the runtime of templates that support it (python3-http, node) has started
    /// too and waits before loading the function (a few MiB more per function at zero).
    Warm,
}

impl From<SpareSandbox> for SpareMode {
    fn from(mode: SpareSandbox) -> SpareMode {
        match mode {
            SpareSandbox::On => SpareMode::On,
            SpareSandbox::Off => SpareMode::Off,
            SpareSandbox::Warm => SpareMode::Warm,
        }
    }
}

/// The sandbox support to run replicas with, per `mode`.
async fn sandbox_support(mode: SandboxMode) -> CmdResult<Option<Arc<SandboxSupport>>> {
    if mode == SandboxMode::Off {
        tracing::warn!("replicas run without a sandbox (--sandbox off)");
        return Ok(None);
    }
    let support = SandboxSupport::detect().await;
    if support.is_ready() {
        tracing::info!("{support}");
        return Ok(Some(Arc::new(support)));
    }
    let missing = support.missing().join("; ");
    if mode == SandboxMode::On {
        return Err(Failure::input(format!(
            "--sandbox on, but this machine cannot sandbox replicas: {missing}"
        )));
    }
    tracing::warn!(
        "replicas run WITHOUT a sandbox: {missing}; run `ironfaas doctor` for the fixes"
    );
    Ok(None)
}

/// The gateway's backlog of connections not yet accepted; the kernel caps it at
/// `net.core.somaxconn` (which `ironfaas doctor` checks). tokio's `bind` asks for only 128.
const LISTEN_BACKLOG: u32 = 4096;

/// A listening socket on `addr` with [`LISTEN_BACKLOG`].
fn listen(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// What a queue holds at most (0: no limit).
#[derive(Debug, Clone, Copy)]
pub struct QueueLimits {
    /// Calls waiting or running.
    pub queued: u64,
    /// Dead letters (the oldest go first).
    pub dead: u64,
}

/// The queue at `location` (`nats://…`), else the embedded one in the data dir, with `limits`
/// (`None`, for a process that does not enqueue: whatever the NATS streams say).
pub async fn open_queue(
    location: Option<&str>,
    data_dir: &Path,
    limits: Option<QueueLimits>,
) -> CmdResult<Arc<dyn Queue>> {
    match location {
        Some(url) if url.starts_with("nats://") => {
            let options = NatsOptions {
                max_jobs: limits.map(|l| l.queued),
                max_dead: limits.map(|l| l.dead),
                ..NatsOptions::default()
            };
            let queue = NatsQueue::connect(url, options)
                .await
                .map_err(|e| Failure::failed(format!("queue {url}: {e}")))?;
            Ok(Arc::new(queue))
        }
        Some(other) => Err(Failure::input(format!(
            "--queue {other}: give nats://HOST:PORT, or leave it out for the embedded queue"
        ))),
        None => {
            let dir = data_dir.join("queue");
            let options = EmbeddedOptions {
                max_live: limits.map_or(0, |l| l.queued),
                max_dead: limits.map_or(0, |l| l.dead),
                ..EmbeddedOptions::default()
            };
            let queue = EmbeddedQueue::open_with(&dir, options)
                .map_err(|e| Failure::failed(format!("queue in {}: {e}", dir.display())))?;
            Ok(Arc::new(queue))
        }
    }
}

/// A running platform.
pub struct Platform {
    /// Where it listens.
    pub addr: SocketAddr,
    provider: Arc<LocalProvider>,
    stop: oneshot::Sender<()>,
    server: JoinHandle<std::io::Result<()>>,
}

/// The local function store of a data dir.
pub fn local_store(data_dir: &Path) -> CmdResult<FunctionStore> {
    FunctionStore::local(&local_store_dir(data_dir)).map_err(|e| Failure::failed(e.to_string()))
}

/// The function store at `location` (`s3://BUCKET/PREFIX?endpoint=…`, `file:///dir` or a path,
/// with credentials from the `AWS_*` variables), else the data dir's.
pub async fn open_store(location: Option<&str>, data_dir: &Path) -> CmdResult<FunctionStore> {
    match location {
        Some(location) => FunctionStore::open(location)
            .await
            .map_err(|e| Failure::failed(format!("function store {location}: {e}"))),
        None => local_store(data_dir),
    }
}

impl Platform {
    /// Opens the data dir, restores deployed functions and starts serving.
    pub async fn start(options: &PlatformOptions) -> CmdResult<Platform> {
        options.gateway.validate().map_err(Failure::input)?;
        std::fs::create_dir_all(&options.data_dir).map_err(|e| {
            Failure::failed(format!(
                "cannot create the data dir {}: {e}",
                options.data_dir.display()
            ))
        })?;
        let listener = listen(options.listen).map_err(|e| {
            Failure::failed(format!(
                "cannot listen on {}: {e}; is another gateway running there? Use --listen ADDR:PORT",
                options.listen
            ))
        })?;
        let addr = listener
            .local_addr()
            .map_err(|e| Failure::failed(e.to_string()))?;
        let exe = std::env::current_exe()
            .map_err(|e| Failure::failed(format!("cannot find the ironfaas executable: {e}")))?;
        let mut config = LocalConfig::new(&options.data_dir, exe);
        config.ready_timeout = options.ready_timeout;
        config.max_exec_timeout = options.gateway.upstream_timeout;
        config.sandbox = sandbox_support(options.sandbox).await?;
        config.spare = options.spare_sandbox.into();
        let store = open_store(options.store.as_deref(), &options.data_dir).await?;
        let provider = LocalProvider::open(config, store.clone())
            .await
            .map_err(Failure::failed)?;
        let (stop, stopped) = oneshot::channel::<()>();
        let queue = open_queue(
            options.queue.as_deref(),
            &options.data_dir,
            Some(options.queue_limits),
        )
        .await?;
        let backends = Backends {
            provider: provider.clone(),
            store: Some(store),
            queue: Some(queue),
            workers: options.workers,
            credentials: if options.auth {
                Some(admin_credentials(&options.data_dir)?)
            } else {
                None
            },
        };
        let server = tokio::spawn(ironfaas_gateway::serve(
            listener,
            backends,
            options.gateway,
            async move {
                let _ = stopped.await;
            },
        ));
        tracing::info!(
            "gateway listening on http://{addr} (data dir {})",
            options.data_dir.display()
        );
        Ok(Platform {
            addr,
            provider,
            stop,
            server,
        })
    }

    /// Stops taking calls, lets running ones finish, and stops every replica.
    pub async fn stop(self) -> CmdResult {
        let _ = self.stop.send(());
        let served = self.server.await;
        self.provider.shutdown().await;
        match served {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Failure::failed(format!("the gateway failed: {e}"))),
            Err(e) => Err(Failure::failed(format!(
                "the gateway stopped unexpectedly: {e}"
            ))),
        }
    }
}

/// Resolves when the process gets Ctrl-C or SIGTERM. The handlers are installed when this is
/// called, not when the future is first polled: call it before saying the process is ready, so
/// a signal sent right after that is not lost to the default action.
pub fn shutdown_signal() -> impl Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        match (interrupt, terminate) {
            (Ok(mut interrupt), Ok(mut terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            }
            (Ok(mut only), Err(_)) | (Err(_), Ok(mut only)) => {
                only.recv().await;
            }
            (Err(_), Err(_)) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}
