//! `ironfaas up`: build the stack, deploy it, and when no gateway answers on a loopback
//! address, run the platform right here until Ctrl-C.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use clap::Args;

use super::build::{build_all, stack_dir_guess};
use super::deploy::{deploy_all, stack_deployment};
use super::push::{PushTarget, push_all};
use super::serve::PlatformArgs;
use super::{GatewayArgs, StackArgs, load_stack};
use crate::client::Client;
use crate::failure::{CmdResult, Failure};
use crate::platform::{Platform, shutdown_signal};
use crate::templates::Templates;

/// Arguments of `up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    stack: StackArgs,
    #[command(flatten)]
    gateway: GatewayArgs,
    #[command(flatten)]
    platform: PlatformArgs,
    /// Build only; do not deploy.
    #[arg(long)]
    skip_deploy: bool,
}

/// The loopback socket address of a gateway URL, if it is one.
fn loopback_addr(url: &str) -> Option<SocketAddr> {
    let authority = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = authority.split('/').next().unwrap_or(authority);
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    with_port
        .to_socket_addrs()
        .ok()?
        .find(|a| a.ip().is_loopback())
}

pub(super) async fn run(args: UpArgs) -> CmdResult {
    let cwd = std::env::current_dir().map_err(|e| Failure::failed(e.to_string()))?;
    let templates = Templates::load(&stack_dir_guess(&args.stack, &cwd));
    let stack = load_stack(&args.stack, Some(&templates), true)?;
    build_all(&stack, &templates, &args.platform.data_dir).await?;
    if args.skip_deploy {
        return Ok(());
    }
    let client = args.gateway.client(Some(&stack))?;
    let deployments = stack.functions.iter().map(stack_deployment).collect();
    if client.healthy(Duration::from_millis(800)).await {
        push_all(
            &stack,
            &args.platform.data_dir,
            &PushTarget::Gateway(&client),
        )
        .await?;
        return deploy_all(&client, deployments).await;
    }
    let Some(listen) = loopback_addr(client.base()) else {
        return Err(Failure::unreachable(format!(
            "no gateway answers at {}; start it there (`ironfaas serve`) or use a loopback \
             --gateway to run one here",
            client.base()
        )));
    };
    let platform = Platform::start(&args.platform.options(listen)).await?;
    let login = crate::credentials::for_gateway(client.base(), &args.platform.data_dir.resolve())?;
    let client = Client::new(client.base(), login.as_ref());
    eprintln!(
        "started an ironfaas gateway on http://{} (data dir {})",
        platform.addr,
        args.platform.data_dir.resolve().display()
    );
    let deployed = match push_all(
        &stack,
        &args.platform.data_dir,
        &PushTarget::Gateway(&client),
    )
    .await
    {
        Ok(()) => deploy_all(&client, deployments).await,
        Err(e) => Err(e),
    };
    if let Err(e) = deployed {
        let _ = platform.stop().await;
        return Err(e);
    }
    eprintln!("serving; press Ctrl-C to stop");
    shutdown_signal().await;
    eprintln!("stopping: finishing calls in flight and stopping replicas");
    platform.stop().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_urls() {
        assert_eq!(
            loopback_addr("http://127.0.0.1:8080"),
            Some("127.0.0.1:8080".parse().unwrap())
        );
        assert!(loopback_addr("http://localhost:9999").is_some_and(|a| a.port() == 9999));
        assert_eq!(loopback_addr("http://10.1.2.3:8080"), None);
    }
}
