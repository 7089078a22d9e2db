//! `ironfaas serve`: run the platform in the foreground.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use ironfaas_gateway::GatewayConfig;

use super::{DataDirArgs, duration_arg, size_arg};
use crate::failure::CmdResult;
use crate::platform::{
    Platform, PlatformOptions, QueueLimits, SandboxMode, SpareSandbox, shutdown_signal,
};
use ironfaas_gateway::asynchronous::WorkerConfig;

/// Options of the platform, shared by `serve` and `up`.
#[derive(Debug, Clone, Args)]
pub struct PlatformArgs {
    #[command(flatten)]
    pub data_dir: DataDirArgs,
    /// The longest a function call may take; a function's exec_timeout may not be longer.
    #[arg(long, env = "IRONFAAS_UPSTREAM_TIMEOUT", default_value = "60s", value_parser = duration_arg)]
    pub upstream_timeout: Duration,
    /// The longest a client may take to send the body of an asynchronous call or an API
    /// request (then 408), or may pause while uploading a bundle.
    #[arg(long, env = "IRONFAAS_READ_TIMEOUT", default_value = "65s", value_parser = duration_arg)]
    pub read_timeout: Duration,
    /// The longest a client may take to send a request's headers, and how long an idle
    /// keep-alive connection stays open.
    #[arg(long, env = "IRONFAAS_HEADER_TIMEOUT", default_value = "30s", value_parser = duration_arg)]
    pub header_timeout: Duration,
    /// The largest request line and headers, 8Ki to 256Ki (then 431).
    #[arg(long, env = "IRONFAAS_MAX_HEADER_SIZE", default_value = "64Ki", value_parser = size_arg)]
    pub max_header_size: u64,
    /// The largest body of a synchronous call or route call, e.g. 64Mi (then 413).
    #[arg(long, env = "IRONFAAS_MAX_BODY", default_value = "64Mi", value_parser = size_arg)]
    pub max_body: u64,
    /// Client connections open at once; further clients wait until one closes.
    #[arg(long, env = "IRONFAAS_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
    /// How long a new replica may take to answer its readiness probe.
    #[arg(long, env = "IRONFAAS_READY_TIMEOUT", default_value = "60s", value_parser = duration_arg)]
    pub ready_timeout: Duration,
    /// How long a call waits for a replica when its function has none ready (then 503).
    #[arg(long, env = "IRONFAAS_SCALE_FROM_ZERO_TIMEOUT", default_value = "30s", value_parser = duration_arg)]
    pub scale_from_zero_timeout: Duration,
    /// How often the autoscaler looks at each function's load.
    #[arg(long, env = "IRONFAAS_AUTOSCALE_INTERVAL", default_value = "1s", value_parser = duration_arg)]
    pub autoscale_interval: Duration,
    /// The function store: s3://BUCKET/PREFIX[?endpoint=URL&region=R&allow_http=true] for S3
    /// or MinIO (credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY), or a folder; by
    /// default the data dir's store folder.
    #[arg(long, env = "IRONFAAS_STORE", value_name = "URL")]
    pub store: Option<String>,
    /// The queue of asynchronous calls: nats://HOST:PORT for NATS JetStream (2.9+); by default
    /// an embedded durable queue in the data dir.
    #[arg(long, env = "IRONFAAS_QUEUE", value_name = "URL")]
    pub queue: Option<String>,
    /// Asynchronous calls made at once by this process (0: leave them to `ironfaas worker`s).
    #[arg(long, env = "IRONFAAS_ASYNC_WORKERS", default_value_t = 64)]
    pub async_workers: usize,
    /// How long a worker's lease on a call lasts; it is extended while the call and its callback
    /// run.
    #[arg(long, env = "IRONFAAS_ASYNC_LEASE", default_value = "30s", value_parser = duration_arg)]
    pub async_lease: Duration,
    /// The most asynchronous calls waiting or running in the queue; beyond, a call is refused
    /// with 429 (0: no limit). With NATS it is the jobs stream's message limit, retry copies
    /// included.
    #[arg(long, env = "IRONFAAS_ASYNC_MAX_QUEUED", default_value_t = 1_000_000)]
    pub async_max_queued: u64,
    /// The most dead letters kept; beyond, the oldest are deleted (and logged) (0: keep all).
    #[arg(
        long,
        env = "IRONFAAS_ASYNC_MAX_DEAD_LETTERS",
        default_value_t = 100_000
    )]
    pub async_max_dead_letters: u64,
    /// The largest body of an asynchronous call, e.g. 10Mi (then 413).
    #[arg(long, env = "IRONFAAS_MAX_ASYNC_BODY", default_value = "10Mi", value_parser = size_arg)]
    pub max_async_body: u64,
    /// The memory the bodies of asynchronous calls being read may take at once (a body takes
    /// its Content-Length, or --max-async-body while it streams); beyond, a call is refused
    /// with 503. At least --max-async-body.
    #[arg(long, env = "IRONFAAS_ASYNC_BODY_MEMORY", default_value = "512Mi", value_parser = size_arg)]
    pub async_body_memory: u64,
    /// Run replicas in a sandbox (namespaces, their own uid, cgroup limits, seccomp): auto uses
    /// it when this machine supports it (as root with bubblewrap and cgroups).
    #[arg(long, env = "IRONFAAS_SANDBOX", value_enum, default_value = "auto")]
    pub sandbox: SandboxMode,
    /// Require the admin's credentials (basic auth) on /system/*, /ui/* and functions with the
    /// annotation com.ironfaas.auth: basic; the password is made on first start (or taken from
    /// IRONFAAS_ADMIN_PASSWORD) and kept in DATA_DIR/auth/. `--auth off` serves them to anyone.
    #[arg(long, env = "IRONFAAS_AUTH", value_name = "on|off", default_value = "on",
          value_parser = on_off, action = clap::ArgAction::Set, num_args = 0..=1,
          default_missing_value = "on")]
    pub auth: bool,
    /// With the sandbox, a function scaled to zero keeps one spare replica: its sandbox built,
    /// its program not started (two small bubblewrap processes, no function code running). The
    /// next call then waits only for the program to start. `off` makes the sandbox per start;
    /// `warm` also starts the runtime of templates that support it (python3-http, node), which
    /// then waits before loading the function's code.
    #[arg(long, env = "IRONFAAS_SPARE_SANDBOX", value_enum, default_value = "on")]
    pub spare_sandbox: SpareSandbox,
    /// The autoscaler removes replicas only when no recommendation of this window needed them.
    #[arg(long, env = "IRONFAAS_SCALE_DOWN_WINDOW", default_value = "30s", value_parser = duration_arg)]
    pub scale_down_window: Duration,
}

impl PlatformArgs {
    /// The platform's options, listening on `listen`.
    pub fn options(&self, listen: SocketAddr) -> PlatformOptions {
        PlatformOptions {
            listen,
            data_dir: self.data_dir.resolve(),
            gateway: GatewayConfig {
                upstream_timeout: self.upstream_timeout,
                read_timeout: self.read_timeout,
                header_timeout: self.header_timeout,
                max_header_bytes: usize::try_from(self.max_header_size).unwrap_or(usize::MAX),
                max_body_bytes: self.max_body,
                max_connections: self.max_connections,
                scale_from_zero_timeout: self.scale_from_zero_timeout,
                autoscale_interval: self.autoscale_interval,
                scale_down_window: self.scale_down_window,
                max_async_body_bytes: self.max_async_body as usize,
                async_body_memory: self.async_body_memory,
                ..GatewayConfig::default()
            },
            ready_timeout: self.ready_timeout,
            store: self.store.clone(),
            queue: self.queue.clone(),
            queue_limits: QueueLimits {
                queued: self.async_max_queued,
                dead: self.async_max_dead_letters,
            },
            sandbox: self.sandbox,
            spare_sandbox: self.spare_sandbox,
            auth: self.auth,
            workers: (self.async_workers > 0).then_some(WorkerConfig {
                concurrency: self.async_workers,
                lease: self.async_lease,
                ..WorkerConfig::default()
            }),
        }
    }
}

/// Parses `on`/`off` (also true/false, yes/no).
fn on_off(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        other => Err(format!("'{other}' is not on or off")),
    }
}

/// Arguments of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address the gateway listens on.
    #[arg(long, env = "IRONFAAS_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    #[command(flatten)]
    platform: PlatformArgs,
}

pub(super) async fn run(args: ServeArgs) -> CmdResult {
    if let Some(low) = crate::doctor::low_limits() {
        tracing::warn!("{low}");
    }
    let shutdown = shutdown_signal();
    let platform = Platform::start(&args.platform.options(args.listen)).await?;
    eprintln!(
        "ironfaas gateway listening on http://{} — press Ctrl-C to stop",
        platform.addr
    );
    shutdown.await;
    eprintln!("stopping: finishing calls in flight and stopping replicas");
    platform.stop().await
}
