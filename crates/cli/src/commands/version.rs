//! `ironfaas version`: the CLI's version, and the gateway's when one answers.

use std::time::Duration;

use clap::Args;

use super::GatewayArgs;
use crate::failure::CmdResult;

/// Arguments of `version`.
#[derive(Debug, Args)]
pub struct VersionArgs {
    #[command(flatten)]
    gateway: GatewayArgs,
}

pub(super) async fn run(args: VersionArgs) -> CmdResult {
    println!("ironfaas CLI: {}", env!("CARGO_PKG_VERSION"));
    let client = args.gateway.client(None)?;
    if !client.healthy(Duration::from_secs(2)).await {
        println!("gateway: not reachable at {}", client.base());
        return Ok(());
    }
    let info = client.info().await?;
    println!(
        "gateway: {} at {} ({})",
        info.version.release,
        client.base(),
        info.arch
    );
    println!(
        "provider: {} {} ({})",
        info.provider.provider, info.provider.version.release, info.provider.orchestration
    );
    Ok(())
}
