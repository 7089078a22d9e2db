//! `ironfaas routes`: the custom routes (`com.ironfaas.route`) and the functions they lead to.

use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use http::Method;
use http_body_util::BodyExt;

use super::GatewayArgs;
use crate::client::full;
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
    let answer = client
        .send(
            Method::GET,
            "/system/routes",
            &[],
            full(Bytes::new()),
            Duration::from_secs(30),
        )
        .await?;
    let status = answer.status;
    let body = answer
        .body
        .collect()
        .await
        .map_err(|e| Failure::failed(e.to_string()))?
        .to_bytes();
    if !status.is_success() {
        return Err(Failure::failed(format!(
            "listing routes: {}",
            String::from_utf8_lossy(&body).trim()
        )));
    }
    let routes: Vec<Route> = serde_json::from_slice(&body)
        .map_err(|e| Failure::failed(format!("listing routes: {e}")))?;
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
