//! `ironfaas queue list|status|dlq|replay|delete`: asynchronous calls, as the gateway sees
//! them, and what to do with dead letters.

use std::time::Duration;

use clap::{Args, Subcommand};
use http::Method;

use serde::{Deserialize, Serialize};

use super::{GatewayArgs, duration_arg};
use crate::client::{Client, encode};
use crate::failure::{CmdResult, Failure};
use crate::output::{Progress, table};

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
        /// Wait for the call to end (succeeded, failed or dead-lettered); the exit code is then
        /// 0 only if it succeeded.
        #[arg(long)]
        wait: bool,
        /// With --wait: give up after this long (exit code 1).
        #[arg(long, default_value = "5m", value_parser = duration_arg, value_name = "DURATION")]
        timeout: Duration,
    },
    /// The dead letters, oldest first: calls that failed every attempt.
    Dlq {
        /// Only this function's dead letters (NAME or NAME.NAMESPACE).
        #[arg(long, value_name = "NAME")]
        function: Option<String>,
        /// At most this many (1 to 1000).
        #[arg(long, default_value_t = 100, value_name = "N")]
        limit: u32,
    },
    /// Put dead letters back in the queue, attempts reset: by call id, or --all.
    Replay {
        /// The call ids.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        ids: Vec<String>,
        /// Every dead letter there is now (of --function, if given); calls that die again
        /// meanwhile are not replayed twice.
        #[arg(long)]
        all: bool,
        /// With --all: only this function's dead letters (NAME or NAME.NAMESPACE).
        #[arg(long, value_name = "NAME")]
        function: Option<String>,
    },
    /// Delete dead letters for good.
    Delete {
        /// The call ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

/// Dead letters replayed per request by `replay --all`.
const REPLAY_PAGE: u32 = 200;

fn text(v: &serde_json::Value, key: &str) -> String {
    match &v[key] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// A dead letter that stays, with why.
#[derive(Debug, Serialize, Deserialize)]
struct NotDone {
    id: String,
    error: String,
}

/// What a bulk replay request did (the gateway's answer).
#[derive(Debug, Deserialize)]
struct ReplayPage {
    replayed: Vec<String>,
    failed: Vec<NotDone>,
    until: u64,
    more: bool,
}

/// What `replay` and `delete` did, printed with --json.
#[derive(Debug, Default, Serialize)]
struct Done {
    done: Vec<String>,
    failed: Vec<NotDone>,
}

impl Done {
    fn fail(&mut self, id: &str, e: Failure) -> CmdResult {
        // An unreachable gateway stops the command; a refusal is this id's alone.
        if e.code == 3 {
            return Err(e);
        }
        self.failed.push(NotDone {
            id: id.to_string(),
            error: e.message,
        });
        Ok(())
    }

    /// Prints the outcome (`verb`: what was done, also the JSON key of the done ids) and fails
    /// if anything was left.
    fn finish(self, json: bool, verb: &str) -> CmdResult {
        if json {
            let mut v = serde_json::Map::new();
            v.insert(verb.to_string(), serde_json::json!(self.done));
            v.insert("failed".to_string(), serde_json::json!(self.failed));
            println!(
                "{}",
                serde_json::to_string_pretty(&v).map_err(|e| Failure::failed(e.to_string()))?
            );
        }
        if self.failed.is_empty() {
            return Ok(());
        }
        let rows: Vec<Vec<String>> = self
            .failed
            .iter()
            .map(|f| vec![f.id.clone(), f.error.clone()])
            .collect();
        eprint!("{}", table(&["CALL ID", "ERROR"], &rows));
        Err(Failure::failed(format!(
            "{} of {} dead letters could not be {verb} (see above)",
            self.failed.len(),
            self.failed.len() + self.done.len()
        )))
    }
}

/// `replay --all`: asks the gateway for pages of replays over the dead letters there are now.
async fn replay_all(client: &Client, function: Option<&str>, json: bool) -> CmdResult {
    let progress = Progress::start("dead letters:");
    let mut done = Done::default();
    let mut until: Option<u64> = None;
    loop {
        let mut path = format!("/system/async/dead-letters/replay?limit={REPLAY_PAGE}");
        if let Some(f) = function {
            path.push_str(&format!("&function={}", encode(f)));
        }
        if let Some(u) = until {
            path.push_str(&format!("&until={u}"));
        }
        let page: ReplayPage = client
            .json(Method::POST, &path, LIMIT, "replaying dead letters")
            .await?;
        until = Some(page.until);
        let progressed = !page.replayed.is_empty();
        done.done.extend(page.replayed);
        for f in page.failed {
            // A dead letter that could not be replayed is listed again by the next page.
            if !done.failed.iter().any(|d| d.id == f.id) {
                done.failed.push(f);
            }
        }
        progress.step(&format!("{} calls queued again", done.done.len()));
        if !page.more || !progressed {
            break;
        }
    }
    let n = done.done.len();
    progress.finish(&match n {
        1 => "1 call is queued again".to_string(),
        n => format!("{n} calls are queued again"),
    });
    done.finish(json, "replayed")
}

/// `replay ID...` and `delete ID...`: one request per id.
async fn each(client: &Client, ids: &[String], replay: bool, json: bool) -> CmdResult {
    let mut done = Done::default();
    for id in ids {
        let (method, path, what) = if replay {
            let path = format!("/system/async/dead-letters/{}/replay", encode(id));
            (Method::POST, path, "replaying a dead letter")
        } else {
            let path = format!("/system/async/dead-letters/{}", encode(id));
            (Method::DELETE, path, "deleting a dead letter")
        };
        match client
            .json::<serde_json::Value>(method, &path, LIMIT, what)
            .await
        {
            Ok(_) => {
                eprintln!(
                    "{id} {}",
                    if replay {
                        "is queued again"
                    } else {
                        "is deleted"
                    }
                );
                done.done.push(id.clone());
            }
            Err(e) => done.fail(id, e)?,
        }
    }
    done.finish(json, if replay { "replayed" } else { "deleted" })
}

pub(super) async fn run(args: QueueArgs) -> CmdResult {
    let client = args.gateway.client(None)?;
    let value: serde_json::Value = match &args.command {
        QueueCommand::List => {
            client
                .json(Method::GET, "/system/async", LIMIT, "queue")
                .await?
        }
        QueueCommand::Status { id, wait, timeout } => {
            let path = format!("/system/async/{}", encode(id));
            if *wait {
                wait_for_end(&client, &path, id, *timeout).await?
            } else {
                client.json(Method::GET, &path, LIMIT, "queue").await?
            }
        }
        QueueCommand::Dlq { function, limit } => {
            let mut path = format!("/system/async/dead-letters?limit={limit}");
            if let Some(f) = function {
                path.push_str(&format!("&function={}", encode(f)));
            }
            client.json(Method::GET, &path, LIMIT, "queue").await?
        }
        QueueCommand::Replay {
            all: true,
            function,
            ..
        } => return replay_all(&client, function.as_deref(), args.json).await,
        QueueCommand::Replay {
            function: Some(_), ..
        } => {
            return Err(Failure::input(
                "--function picks the dead letters of `replay --all`; with call ids, leave it out \
                 (or use --all --function NAME)",
            ));
        }
        QueueCommand::Replay { ids, .. } => return each(&client, ids, true, args.json).await,
        QueueCommand::Delete { ids } => return each(&client, ids, false, args.json).await,
    };
    print(&args.command, &value, args.json)?;
    match &args.command {
        QueueCommand::Status { id, wait: true, .. } => verdict(id, &value),
        _ => Ok(()),
    }
}

/// The states a call does not leave.
const FINAL: [&str; 3] = ["succeeded", "failed", "deadLettered"];

/// `status --wait`: reads the call's record until it is in a final state, or `timeout` passed.
async fn wait_for_end(
    client: &Client,
    path: &str,
    id: &str,
    timeout: Duration,
) -> CmdResult<serde_json::Value> {
    let progress = Progress::start(id);
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(50);
    loop {
        let value: serde_json::Value = client.json(Method::GET, path, LIMIT, "queue").await?;
        let state = text(&value, "state");
        if FINAL.contains(&state.as_str()) {
            progress.clear();
            return Ok(value);
        }
        let left = timeout.saturating_sub(started.elapsed());
        if left.is_zero() {
            progress.clear();
            return Err(Failure::failed(format!(
                "call {id} is still {state} after {}; wait longer with --timeout",
                ironfaas_spec::duration::format_duration(timeout)
            )));
        }
        progress.step(&format!("{state}…"));
        tokio::time::sleep(pause.min(left)).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

/// `status --wait`'s exit: success only for a call that succeeded.
fn verdict(id: &str, value: &serde_json::Value) -> CmdResult {
    let state = text(value, "state");
    if state == "succeeded" {
        return Ok(());
    }
    let why = ["error", "lastError"]
        .iter()
        .map(|k| text(value, k))
        .find(|t| t != "-")
        .unwrap_or_else(|| format!("status {}", text(value, "status")));
    Err(Failure::failed(format!("call {id} ended {state}: {why}")))
}

/// Prints what the gateway answered: JSON, a table, or one call's fields.
fn print(command: &QueueCommand, value: &serde_json::Value, json: bool) -> CmdResult {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(value).map_err(|e| Failure::failed(e.to_string()))?
        );
        return Ok(());
    }
    let items: Vec<serde_json::Value> = value.as_array().cloned().unwrap_or_default();
    match (command, items.is_empty()) {
        (QueueCommand::List, true) => {
            eprintln!("no asynchronous calls queued, running, retrying or dead");
            return Ok(());
        }
        (QueueCommand::Dlq { function, .. }, true) => {
            match function {
                Some(f) => eprintln!("no dead letters of {f}"),
                None => eprintln!("no dead letters"),
            }
            return Ok(());
        }
        _ => {}
    }
    match command {
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
        QueueCommand::Dlq { .. } => {
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
