//! `ironfaas remove [NAME]`: remove one function, or every function of the stack.

use clap::Args;

use super::{GatewayArgs, NamespaceArgs, StackArgs, load_stack};
use crate::failure::CmdResult;

/// Arguments of `remove`.
#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// The function; without it, every function of the stack file.
    name: Option<String>,
    #[command(flatten)]
    stack: StackArgs,
    #[command(flatten)]
    namespace: NamespaceArgs,
    #[command(flatten)]
    gateway: GatewayArgs,
}

pub(super) async fn run(args: RemoveArgs) -> CmdResult {
    let (client, functions) = match &args.name {
        Some(name) => (
            args.gateway.client(None)?,
            vec![args.namespace.function(name)],
        ),
        None => {
            let stack = load_stack(&args.stack, None, false)?;
            let functions = stack
                .functions
                .iter()
                .map(|f| args.namespace.function(&f.name))
                .collect();
            (args.gateway.client(Some(&stack))?, functions)
        }
    };
    let mut first_failure = None;
    for function in functions {
        match client.remove(&function).await {
            Ok(()) => eprintln!("removed {function}"),
            Err(e) => {
                eprintln!("error: {e}");
                first_failure.get_or_insert(e);
            }
        }
    }
    first_failure.map_or(Ok(()), Err)
}
