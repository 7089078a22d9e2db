//! One process per request: the body goes to its stdin, its stdout is the response.

use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use ironfaas_spec::duration::format_duration;
use ironfaas_spec::template::Mode;
use nix::sys::signal::Signal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, Command};
use tokio_util::io::ReaderStream;

use super::{Slot, WatchdogBody, WatchdogConfig, cgi, text};
use crate::process::{isolate_group, signal_group};

/// Runs the configured command for one request.
pub(super) async fn run(
    config: &WatchdogConfig,
    req: Request<Incoming>,
    slot: Slot,
) -> Response<WatchdogBody> {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let mut cmd = Command::new(&config.argv[0]);
    cmd.args(&config.argv[1..])
        .envs(cgi::http_env(&parts))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    isolate_group(&mut cmd);
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            tracing::error!("cannot start fprocess '{}': {e}", config.argv.join(" "));
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot start the function's process: {e}\n"),
            );
        }
    };
    match config.mode {
        Mode::Serializing => serializing(config, child, body, started).await,
        _ => {
            let stdin = child.stdin.take();
            tokio::spawn(copy_body(body, stdin));
            streaming(config, child, slot).await
        }
    }
}

/// Feeds the request body to the process as it arrives, then closes stdin.
async fn copy_body(mut body: Incoming, stdin: Option<ChildStdin>) {
    let Some(mut stdin) = stdin else { return };
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        if let Ok(data) = frame.into_data()
            && stdin.write_all(&data).await.is_err()
        {
            // The process closed stdin early; it does not want the rest.
            break;
        }
    }
}

fn with_content_type(
    mut response: Response<WatchdogBody>,
    content_type: &str,
) -> Response<WatchdogBody> {
    if let Ok(value) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

/// Streams stdout back as it is written, with status 200. The answer starts with the first
/// output (or the end of the process), as OpenFaaS's of-watchdog sends its headers on the first
/// write: a process that reads its whole body before writing is answered only once it has, so
/// a body cut off by the gateway (over `--max-body`) is refused there rather than answered.
async fn streaming(
    config: &WatchdogConfig,
    mut child: Child,
    slot: Slot,
) -> Response<WatchdogBody> {
    let stdout = child.stdout.take();
    let pid = child.id();
    let exec_timeout = config.exec_timeout;
    tokio::spawn(async move {
        let _slot = slot;
        let limit = exec_timeout.unwrap_or(Duration::MAX);
        match tokio::time::timeout(limit, child.wait()).await {
            Ok(Ok(status)) if !status.success() => tracing::warn!("function process {status}"),
            Ok(_) => {}
            Err(_) => {
                tracing::warn!(
                    "function process killed: it ran longer than exec_timeout ({})",
                    format_duration(limit)
                );
                if let Some(pid) = pid {
                    signal_group(pid, Signal::SIGKILL);
                }
            }
        }
    });
    let body = match stdout {
        Some(stdout) => {
            let mut output = ReaderStream::new(stdout);
            let first = output.next().await;
            let frames = futures_util::stream::iter(first)
                .chain(output)
                .map_ok(Frame::data);
            BodyExt::boxed(StreamBody::new(frames))
        }
        None => Full::new(Bytes::new()).map_err(|e| match e {}).boxed(),
    };
    let response = Response::new(body);
    with_content_type(response, &config.content_type)
}

/// Buffers the body, runs the process to completion and answers with all of stdout.
async fn serializing(
    config: &WatchdogConfig,
    mut child: Child,
    body: Incoming,
    started: Instant,
) -> Response<WatchdogBody> {
    let input = match Limited::new(body, config.max_body).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            let _ = child.start_kill();
            let too_big = e
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some();
            return if too_big {
                text(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("request body is larger than {} bytes\n", config.max_body),
                )
            } else {
                text(
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the request body: {e}\n"),
                )
            };
        }
    };
    let mut stdin = child.stdin.take();
    let writer = tokio::spawn(async move {
        if let Some(stdin) = stdin.as_mut() {
            let _ = stdin.write_all(&input).await;
        }
    });
    let mut stdout = child.stdout.take();
    let pid = child.id();
    let run = async {
        let mut output = Vec::new();
        if let Some(out) = stdout.as_mut() {
            out.read_to_end(&mut output).await?;
        }
        let status = child.wait().await?;
        Ok::<_, std::io::Error>((status, output))
    };
    let limit = config.exec_timeout.unwrap_or(Duration::MAX);
    let outcome = tokio::time::timeout(limit, run).await;
    writer.abort();
    let seconds = format!("{:.6}", started.elapsed().as_secs_f64());
    let mut response = match outcome {
        Err(_) => {
            if let Some(pid) = pid {
                signal_group(pid, Signal::SIGKILL);
            }
            text(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "the function ran longer than exec_timeout ({})\n",
                    format_duration(limit)
                ),
            )
        }
        Ok(Err(e)) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("function process failed: {e}\n"),
        ),
        Ok(Ok((status, output))) if !status.success() => {
            let mut body = format!("function process {status}\n").into_bytes();
            body.extend_from_slice(&output);
            text(StatusCode::INTERNAL_SERVER_ERROR, body)
        }
        Ok(Ok((_, output))) => {
            let response = Response::new(
                Full::new(Bytes::from(output))
                    .map_err(|e| match e {})
                    .boxed(),
            );
            with_content_type(response, &config.content_type)
        }
    };
    if let Ok(value) = HeaderValue::from_str(&seconds) {
        response.headers_mut().insert("x-duration-seconds", value);
    }
    response
}
