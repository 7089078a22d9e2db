//! `ironfaas invoke NAME`: call a function with the body from stdin; its answer goes to stdout.

use std::io::{IsTerminal, Read, Write};
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use http::Method;
use http_body_util::BodyExt;

use super::deploy::key_value;
use super::{GatewayArgs, NamespaceArgs};
use crate::client::{encode, full};
use crate::failure::{CmdResult, Failure};

/// Arguments of `invoke`.
#[derive(Debug, Args)]
pub struct InvokeArgs {
    /// The function.
    name: String,
    /// The HTTP method.
    #[arg(short = 'm', long, default_value = "POST")]
    method: String,
    /// A request header KEY=VALUE (repeatable).
    #[arg(short = 'H', long = "header", value_name = "KEY=VALUE")]
    headers: Vec<String>,
    /// A query parameter KEY=VALUE (repeatable).
    #[arg(long = "query", value_name = "KEY=VALUE")]
    query: Vec<String>,
    /// The path after the function's name, e.g. /orders/7.
    #[arg(long, default_value = "/")]
    path: String,
    /// The request's Content-Type.
    #[arg(long, default_value = "text/plain")]
    content_type: String,
    /// Queue the call (POST /async-function/…) and print its call id instead of the answer.
    #[arg(short = 'a', long = "async")]
    asynchronous: bool,
    /// With --async: where to POST the result.
    #[arg(long, requires = "asynchronous", value_name = "URL")]
    callback_url: Option<String>,
    /// Give up after this long.
    #[arg(long, default_value = "5m", value_parser = super::duration_arg)]
    timeout: Duration,
    #[command(flatten)]
    namespace: NamespaceArgs,
    #[command(flatten)]
    gateway: GatewayArgs,
}

/// `a=1&b=x%20y` from `["a=1", "b=x y"]`.
fn query_string(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

pub(super) async fn run(args: InvokeArgs) -> CmdResult {
    let method = Method::from_bytes(args.method.to_uppercase().as_bytes())
        .map_err(|_| Failure::input(format!("'{}' is not an HTTP method", args.method)))?;
    let mut headers = vec![("content-type".to_string(), args.content_type.clone())];
    for h in &args.headers {
        let pair = match h.split_once(':') {
            Some((k, v)) if !h.contains('=') => (k.trim().to_string(), v.trim().to_string()),
            _ => key_value(h, "header")?,
        };
        headers.push(pair);
    }
    let query: Vec<(String, String)> = args
        .query
        .iter()
        .map(|q| key_value(q, "query"))
        .collect::<CmdResult<_>>()?;
    let function = args.namespace.function(&args.name);
    let target = if args.namespace.namespace.is_empty() {
        args.name.clone()
    } else {
        function.to_string()
    };
    if let Some(url) = &args.callback_url {
        headers.push(("x-callback-url".to_string(), url.clone()));
    }
    let prefix = if args.asynchronous {
        "async-function"
    } else {
        "function"
    };
    let mut path = format!("/{prefix}/{target}/{}", args.path.trim_start_matches('/'));
    if !query.is_empty() {
        path.push('?');
        path.push_str(&query_string(&query));
    }
    let mut body = Vec::new();
    if std::io::stdin().is_terminal() {
        eprintln!("Reading the request body from stdin - end it with Ctrl-D");
    }
    std::io::stdin()
        .read_to_end(&mut body)
        .map_err(|e| Failure::input(format!("cannot read stdin: {e}")))?;
    let client = args.gateway.client(None)?;
    let mut answer = client
        .send(
            method,
            &path,
            &headers,
            full(Bytes::from(body)),
            args.timeout,
        )
        .await?;
    if args.asynchronous && answer.status == http::StatusCode::ACCEPTED {
        let id = answer.call_id.unwrap_or_default();
        eprintln!("Function submitted asynchronously (see `ironfaas queue status {id}`).");
        println!("{id}");
        return Ok(());
    }
    let mut stdout = std::io::stdout().lock();
    while let Some(frame) = answer.body.frame().await {
        let frame = frame
            .map_err(|e| Failure::failed(format!("the answer of {function} broke off: {e}")))?;
        if let Ok(data) = frame.into_data() {
            stdout
                .write_all(&data)
                .map_err(|e| Failure::failed(format!("cannot write to stdout: {e}")))?;
            let _ = stdout.flush();
        }
    }
    if answer.status.is_success() {
        Ok(())
    } else {
        Err(Failure::failed(format!(
            "{function} answered {}",
            answer.status
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_queries() {
        let q = query_string(&[("a".into(), "1".into()), ("b c".into(), "x&y=z".into())]);
        assert_eq!(q, "a=1&b%20c=x%26y%3Dz");
    }
}
