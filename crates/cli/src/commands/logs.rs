//! `ironfaas logs NAME`: a function's output, optionally following new lines.

use std::io::Write;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use clap::Args;
use http::Method;
use http_body_util::BodyExt;
use ironfaas_spec::duration::parse_duration;
use ironfaas_spec::timestamp::{format_rfc3339, parse_rfc3339};
use ironfaas_spec::wire::LogEntry;

use super::{GatewayArgs, NamespaceArgs};
use crate::client::full;
use crate::failure::{CmdResult, Failure};

/// Arguments of `logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The function.
    name: String,
    /// Keep streaming new lines until Ctrl-C.
    #[arg(short, long)]
    follow: bool,
    /// Only lines from this long ago (e.g. 5m, 1h) or since this RFC 3339 time.
    #[arg(long, value_name = "DURATION|TIME")]
    since: Option<String>,
    /// Only the last N lines.
    #[arg(long, value_name = "N")]
    tail: Option<usize>,
    /// Only the lines of this replica (see `ironfaas describe`).
    #[arg(long)]
    instance: Option<String>,
    /// Print the API's NDJSON log entries.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    namespace: NamespaceArgs,
    #[command(flatten)]
    gateway: GatewayArgs,
}

/// `5m` → now − 5 minutes; an RFC 3339 time as is.
fn since(text: &str) -> CmdResult<String> {
    if let Ok(ago) = parse_duration(text) {
        let at = SystemTime::now()
            .checked_sub(ago)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        return Ok(format_rfc3339(at));
    }
    parse_rfc3339(text)
        .map_err(|e| Failure::input(format!("--since: {e}; or give a duration like 5m")))?;
    Ok(text.to_string())
}

pub(super) async fn run(args: LogsArgs) -> CmdResult {
    let function = args.namespace.function(&args.name);
    let mut query = format!(
        "/system/logs?name={}&namespace={}",
        function.name, function.namespace
    );
    if args.follow {
        query.push_str("&follow=true");
    }
    if let Some(tail) = args.tail {
        query.push_str(&format!("&tail={tail}"));
    }
    if let Some(text) = &args.since {
        query.push_str(&format!("&since={}", since(text)?));
    }
    if let Some(instance) = &args.instance {
        query.push_str(&format!("&instance={instance}"));
    }
    let client = args.gateway.client(None)?;
    let mut answer = client
        .send(
            Method::GET,
            &query,
            &[],
            full(Bytes::new()),
            Duration::from_secs(30),
        )
        .await?;
    if !answer.status.is_success() {
        let body = answer
            .body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        return Err(Failure::failed(format!(
            "logs of {function}: {}",
            String::from_utf8_lossy(&body).trim()
        )));
    }
    let mut pending = Vec::new();
    let mut stdout = std::io::stdout().lock();
    while let Some(frame) = answer.body.frame().await {
        let frame = frame.map_err(|e| Failure::failed(format!("the log stream broke off: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        pending.extend_from_slice(&data);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let out = if args.json {
                String::from_utf8_lossy(&line).into_owned()
            } else {
                match serde_json::from_slice::<LogEntry>(&line) {
                    Ok(e) => format!("{} {} {}\n", e.timestamp, e.instance, e.text),
                    Err(_) => continue,
                }
            };
            stdout
                .write_all(out.as_bytes())
                .map_err(|e| Failure::failed(format!("cannot write to stdout: {e}")))?;
            let _ = stdout.flush();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_durations_and_times() {
        let t = since("5m").unwrap();
        assert!(parse_rfc3339(&t).is_ok());
        assert_eq!(
            since("2024-01-01T00:00:00Z").unwrap(),
            "2024-01-01T00:00:00Z"
        );
        assert!(since("last tuesday").is_err());
    }
}
