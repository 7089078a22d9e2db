//! `ironfaas list`: the deployed functions, as a table or JSON.

use clap::Args;

use super::{GatewayArgs, NamespaceArgs};
use crate::failure::{CmdResult, Failure};
use crate::output::table;

/// Arguments of `list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON (the API's FunctionStatus list) for scripts.
    #[arg(long)]
    json: bool,
    /// Print only the names.
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    namespace: NamespaceArgs,
    #[command(flatten)]
    gateway: GatewayArgs,
}

pub(super) async fn run(args: ListArgs) -> CmdResult {
    let client = args.gateway.client(None)?;
    let functions = client.list(&args.namespace.namespace).await?;
    if args.json {
        let json =
            serde_json::to_string_pretty(&functions).map_err(|e| Failure::failed(e.to_string()))?;
        println!("{json}");
        return Ok(());
    }
    if args.quiet {
        for f in &functions {
            println!("{}", f.name);
        }
        return Ok(());
    }
    if functions.is_empty() {
        eprintln!("no functions deployed (deploy some with `ironfaas up` or `ironfaas deploy`)");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = functions
        .iter()
        .map(|f| {
            vec![
                f.name.clone(),
                format!("{}", f.invocation_count as u64),
                format!("{}/{}", f.available_replicas, f.replicas),
                f.cold_starts.to_string(),
                f.spec.image.clone(),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &["FUNCTION", "INVOCATIONS", "READY", "COLD-STARTS", "IMAGE"],
            &rows
        )
    );
    Ok(())
}
