//! `ironfaas queue list|status|dlq|replay`: asynchronous calls, as the gateway sees them.

use std::time::Duration;

use clap::{Args, Subcommand};
use http::Method;

use super::GatewayArgs;
use crate::failure::{CmdResult, Failure};
use crate::output::table;

/// How long one request to the gateway may take.
const LIMIT: Duration = Duration::from_secs(30);

/// Arguments of `queue`.
#[derive(Debug, Args)]
pub struct QueueArgs {
    #[command(subcommand)]
    command: QueueCommand,
    /// Print JSON for scripts.
    #[arg(long, global = true)]
    json: bool,
    #[command(flatten)]
    gateway: GatewayArgs,
}

#[derive(Debug, Subcommand)]
enum QueueCommand {
    /// Calls queued, running, retrying and dead per function.
    List,
    /// One call's state by its X-Call-Id.
    Status {
        /// The call id.
        id: String,
    },
    /// The dead letters: calls that failed every attempt.
    Dlq,
    /// Put a dead letter back in the queue, attempts reset.
    Replay {
        /// The call id.
        id: String,
    },
}

fn text(v: &serde_json::Value, key: &str) -> String {
    match &v[key] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".into(),
        other => other.to_string(),
    }
}

pub(super) async fn run(args: QueueArgs) -> CmdResult {
    let client = args.gateway.client(None)?;
    let value: serde_json::Value = match &args.command {
        QueueCommand::List => {
            client
                .json(Method::GET, "/system/async", LIMIT, "queue")
                .await?
        }
        QueueCommand::Status { id } => {
            client
                .json(Method::GET, &format!("/system/async/{id}"), LIMIT, "queue")
                .await?
        }
        QueueCommand::Dlq => {
            client
                .json(Method::GET, "/system/async/dead-letters", LIMIT, "queue")
                .await?
        }
        QueueCommand::Replay { id } => {
            let _: serde_json::Value = client
                .json(
                    Method::POST,
                    &format!("/system/async/dead-letters/{id}/replay"),
                    LIMIT,
                    "queue",
                )
                .await?;
            eprintln!("{id} is queued again");
            return Ok(());
        }
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&value).map_err(|e| Failure::failed(e.to_string()))?
        );
        return Ok(());
    }
    let items: Vec<serde_json::Value> = value.as_array().cloned().unwrap_or_default();
    match args.command {
        QueueCommand::List => {
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|d| {
                    ["function", "queued", "running", "retrying", "dead"]
                        .iter()
                        .map(|k| text(d, k))
                        .collect()
                })
                .collect();
            print!(
                "{}",
                table(
                    &["FUNCTION", "QUEUED", "RUNNING", "RETRYING", "DEAD"],
                    &rows
                )
            );
        }
        QueueCommand::Dlq => {
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|j| {
                    vec![
                        text(j, "id"),
                        text(j, "function"),
                        text(j, "attempts"),
                        text(j, "lastError"),
                    ]
                })
                .collect();
            print!(
                "{}",
                table(&["CALL ID", "FUNCTION", "ATTEMPTS", "LAST ERROR"], &rows)
            );
        }
        _ => {
            for (key, v) in value.as_object().into_iter().flatten() {
                let text = match v {
                    serde_json::Value::String(s) => s.clone(),
                    // Times are milliseconds since the epoch on the wire; people read dates.
                    serde_json::Value::Number(n) if key.ends_with("At") => n
                        .as_u64()
                        .map(|ms| {
                            ironfaas_spec::timestamp::format_rfc3339(
                                std::time::UNIX_EPOCH + Duration::from_millis(ms),
                            )
                        })
                        .unwrap_or_else(|| n.to_string()),
                    other => other.to_string(),
                };
                println!("{key:<14}{text}");
            }
        }
    }
    Ok(())
}
