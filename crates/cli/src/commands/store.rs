//! `ironfaas store list|remove|gc`: the gateway's function store.

use std::time::Duration;

use clap::{Args, Subcommand};
use http::Method;

use super::GatewayArgs;
use crate::failure::{CmdResult, Failure};
use crate::output::{size, table};

/// How long one request to the gateway may take.
const LIMIT: Duration = Duration::from_secs(120);

/// Arguments of `store`.
#[derive(Debug, Args)]
pub struct StoreArgs {
    #[command(subcommand)]
    command: StoreCommand,
    #[command(flatten)]
    gateway: GatewayArgs,
}

#[derive(Debug, Subcommand)]
enum StoreCommand {
    /// Every image in the store with its digest and size.
    List {
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Forget an image (its bundle is removed by the next gc when nothing uses it).
    Remove {
        /// The image reference.
        image: String,
    },
    /// Remove bundles that no image and no deployed function uses.
    Gc,
}

pub(super) async fn run(args: StoreArgs) -> CmdResult {
    let client = args.gateway.client(None)?;
    match args.command {
        StoreCommand::List { json } => {
            let list: serde_json::Value = client
                .json(Method::GET, "/system/store", LIMIT, "store")
                .await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&list)
                        .map_err(|e| Failure::failed(e.to_string()))?
                );
                return Ok(());
            }
            let rows: Vec<Vec<String>> = list
                .as_array()
                .into_iter()
                .flatten()
                .map(|i| {
                    let digest = i["digest"].as_str().unwrap_or_default();
                    vec![
                        i["image"].as_str().unwrap_or_default().to_string(),
                        digest
                            .strip_prefix("sha256:")
                            .map_or(digest, |h| &h[..12.min(h.len())])
                            .to_string(),
                        size(i["size"].as_u64().unwrap_or(0)),
                    ]
                })
                .collect();
            print!("{}", table(&["IMAGE", "DIGEST", "SIZE"], &rows));
        }
        StoreCommand::Remove { image } => {
            let path = format!(
                "/system/store?image={}",
                image.replace('/', "%2F").replace(':', "%3A")
            );
            let _: serde_json::Value = client.json(Method::DELETE, &path, LIMIT, "store").await?;
            eprintln!(
                "removed {image} from the store (its bundle goes at the next `ironfaas store gc` when unused)"
            );
        }
        StoreCommand::Gc => {
            let report: serde_json::Value = client
                .json(Method::POST, "/system/store/gc", LIMIT, "store")
                .await?;
            let removed = report["removed"].as_array().map_or(0, Vec::len);
            eprintln!(
                "removed {removed} bundle(s), freed {}; kept {}, {} too recent to remove",
                size(report["freedBytes"].as_u64().unwrap_or(0)),
                report["kept"],
                report["recent"]
            );
        }
    }
    Ok(())
}
