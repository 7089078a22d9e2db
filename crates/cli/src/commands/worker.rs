//! `ironfaas worker`: make stored asynchronous calls from a NATS JetStream queue in a separate
//! process (to scale out), calling functions through a gateway. The same worker code as the
//! gateway's own workers.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use ironfaas_gateway::asynchronous::{
    AsyncStats, HttpInvoker, WorkerConfig, run_workers, serve_metrics,
};

use super::{GatewayArgs, duration_arg};
use crate::failure::{CmdResult, Failure};
use crate::platform::{open_queue, shutdown_signal};

/// Arguments of `worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The queue: nats://HOST:PORT (the embedded queue lives inside `ironfaas serve`).
    #[arg(long, env = "IRONFAAS_QUEUE", value_name = "URL")]
    queue: String,
    /// Calls made at once.
    #[arg(long, env = "IRONFAAS_ASYNC_WORKERS", default_value_t = 64)]
    concurrency: usize,
    /// How long a lease on a call lasts; it is extended while the call and its callback run.
    #[arg(long, env = "IRONFAAS_ASYNC_LEASE", default_value = "30s", value_parser = duration_arg)]
    lease: Duration,
    /// Serve this worker's metrics (GET /metrics, Prometheus text) on this address, e.g.
    /// 0.0.0.0:9101; none when not given.
    #[arg(long, env = "IRONFAAS_WORKER_METRICS", value_name = "ADDR")]
    metrics_listen: Option<std::net::SocketAddr>,
    #[command(flatten)]
    gateway: GatewayArgs,
}

pub(super) async fn run(args: WorkerArgs) -> CmdResult {
    if !args.queue.starts_with("nats://") {
        return Err(Failure::input(
            "ironfaas worker needs a shared queue: --queue nats://HOST:PORT (the embedded queue \
             lives inside `ironfaas serve`, whose own workers make its calls)",
        ));
    }
    let client = args.gateway.client(None)?;
    let queue = open_queue(Some(&args.queue), std::path::Path::new("."), None).await?;
    // The gateway's credentials, for functions that need them (com.ironfaas.auth: basic).
    let invoker = Arc::new(
        HttpInvoker::new(client.base())
            .with_authorization(client.authorization())
            .map_err(Failure::input)?,
    );
    let config = WorkerConfig {
        concurrency: args.concurrency,
        lease: args.lease,
        ..WorkerConfig::default()
    };
    let stats = match args.metrics_listen {
        None => None,
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                Failure::input(format!(
                    "cannot serve metrics on {addr}: {e}; pick a free address with \
                     --metrics-listen (or leave it out)"
                ))
            })?;
            let stats = Arc::new(AsyncStats::default());
            tokio::spawn(serve_metrics(listener, Arc::clone(&stats)));
            eprintln!("ironfaas worker: metrics on http://{addr}/metrics");
            Some(stats)
        }
    };
    eprintln!(
        "ironfaas worker: {} calls at once from {}, through {}",
        args.concurrency,
        args.queue,
        client.base()
    );
    run_workers(queue, invoker, config, stats, shutdown_signal()).await;
    Ok(())
}
