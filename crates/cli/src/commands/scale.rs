//! `ironfaas scale NAME --replicas N`: set the replicas and wait until they are ready.

use std::time::{Duration, Instant};

use clap::Args;

use super::{GatewayArgs, NamespaceArgs};
use crate::failure::{CmdResult, Failure};
use crate::output::{Progress, took};

/// Arguments of `scale`.
#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// The function.
    name: String,
    /// The number of replicas.
    #[arg(short, long)]
    replicas: u64,
    /// Return at once instead of waiting until the replicas are ready.
    #[arg(long)]
    no_wait: bool,
    /// How long to wait for the replicas.
    #[arg(long, default_value = "60s", value_parser = super::duration_arg)]
    timeout: Duration,
    #[command(flatten)]
    namespace: NamespaceArgs,
    #[command(flatten)]
    gateway: GatewayArgs,
}

pub(super) async fn run(args: ScaleArgs) -> CmdResult {
    let client = args.gateway.client(None)?;
    let function = args.namespace.function(&args.name);
    client.scale(&function, args.replicas).await?;
    if args.no_wait {
        eprintln!("{function}: scaling to {} replica(s)", args.replicas);
        return Ok(());
    }
    let progress = Progress::start(&args.name);
    let started = Instant::now();
    loop {
        let status = client.status(&function).await?.ok_or_else(|| {
            Failure::failed(format!("function {function} was removed while scaling"))
        })?;
        let ready = status
            .instances
            .iter()
            .filter(|i| i.state == "ready")
            .count() as u64;
        progress.step(&format!("{ready}/{} replicas ready", args.replicas));
        if ready == args.replicas && status.instances.len() as u64 == args.replicas {
            progress.finish(&format!(
                "{} replica(s) ready in {}",
                args.replicas,
                took(started.elapsed())
            ));
            return Ok(());
        }
        if started.elapsed() > args.timeout {
            progress.clear();
            return Err(Failure::failed(format!(
                "{function}: only {ready} of {} replicas ready after {}; see `ironfaas describe {}`",
                args.replicas,
                took(args.timeout),
                args.name
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
