//! `ironfaas routes`: the custom routes (`com.ironfaas.route`) and the functions they lead to.

use std::time::Duration;

use clap::Args;
use http::Method;

use super::GatewayArgs;
use crate::failure::{CmdResult, Failure};
use crate::output::table;

/// Arguments of `routes`.
#[derive(Debug, Args)]
pub struct RoutesArgs {
    /// Print JSON for scripts.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    gateway: GatewayArgs,
}

#[derive(serde::Deserialize, serde::Serialize)]
struct Route {
    prefix: String,
    function: String,
    namespace: String,
}

pub(super) async fn run(args: RoutesArgs) -> CmdResult {
    let client = args.gateway.client(None)?;
    let routes: Vec<Route> = client
        .json(
            Method::GET,
            "/system/routes",
            Duration::from_secs(30),
            "listing routes",
        )
        .await?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&routes).map_err(|e| Failure::failed(e.to_string()))?
        );
    } else if routes.is_empty() {
        eprintln!("no routes: give a function the annotation com.ironfaas.route: /your/prefix");
    } else {
        let rows: Vec<Vec<String>> = routes
            .iter()
            .map(|r| {
                vec![
                    r.prefix.clone(),
                    format!("{}.{}", r.function, r.namespace),
                    format!("{}{}", client.base(), r.prefix),
                ]
            })
            .collect();
        print!("{}", table(&["PREFIX", "FUNCTION", "URL"], &rows));
    }
    Ok(())
}
