//! `ironfaas push`: upload the stack's built bundles to the gateway's function store (or
//! straight to a store with `--store s3://…`), streamed and checked by digest on arrival.

use std::time::{Duration, Instant};

use clap::Args;
use futures_util::TryStreamExt;
use http::{Method, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use ironfaas_spec::stack::Stack;
use ironfaas_store::{FunctionStore, StoreError};

use super::{DataDirArgs, GatewayArgs, StackArgs, load_stack};
use crate::client::{Client, RequestBody, encode};
use crate::failure::{CmdResult, Failure};
use crate::output::{Progress, size, took};
use crate::platform::{local_store, open_store};

/// Arguments of `push`.
#[derive(Debug, Args)]
pub struct PushArgs {
    #[command(flatten)]
    stack: StackArgs,
    #[command(flatten)]
    gateway: GatewayArgs,
    #[command(flatten)]
    data_dir: DataDirArgs,
    /// Push straight to this store (s3://BUCKET/PREFIX…, credentials from AWS_*) instead of
    /// through the gateway.
    #[arg(long, value_name = "URL")]
    store: Option<String>,
}

/// Where bundles go.
pub enum PushTarget<'a> {
    /// The gateway's store, through its API.
    Gateway(&'a Client),
    /// A store this process writes to directly.
    Store(FunctionStore),
}

/// Uploads one bundle file through the gateway.
async fn push_to_gateway(
    client: &Client,
    image: &str,
    digest: &ironfaas_store::Digest,
    file: &std::path::Path,
) -> CmdResult {
    let opened = tokio::fs::File::open(file)
        .await
        .map_err(|e| Failure::failed(format!("cannot read {}: {e}", file.display())))?;
    let frames = tokio_util::io::ReaderStream::new(opened).map_ok(Frame::data);
    let body: RequestBody = BodyExt::boxed(StreamBody::new(frames));
    let path = format!(
        "/system/store/bundles?image={}&digest={digest}",
        encode(image)
    );
    let headers = [(
        "content-type".to_string(),
        "application/octet-stream".to_string(),
    )];
    let answer = client
        .send(Method::PUT, &path, &headers, body, Duration::from_secs(600))
        .await?;
    if answer.status == StatusCode::CREATED || answer.status.is_success() {
        return Ok(());
    }
    let text = answer
        .body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Err(Failure::failed(format!(
        "pushing {image}: {}",
        String::from_utf8_lossy(&text).trim()
    )))
}

/// Pushes every function of `stack` that is built here (not `skip_build`) from the data
/// dir's store to `target`.
pub async fn push_all(stack: &Stack, data_dir: &DataDirArgs, target: &PushTarget<'_>) -> CmdResult {
    let local = local_store(&data_dir.resolve())?;
    for f in stack.functions.iter().filter(|f| !f.skip_build) {
        let progress = Progress::start(&f.name);
        let started = Instant::now();
        let digest = local.resolve(&f.image).await.map_err(|e| match e {
            StoreError::NotFound { .. } => Failure::input(format!(
                "{} is not built here; run `ironfaas build` first",
                f.image
            )),
            other => Failure::failed(other.to_string()),
        })?;
        let staged = tempfile::NamedTempFile::new().map_err(|e| Failure::failed(e.to_string()))?;
        let bytes = local
            .fetch_to(&digest, staged.path())
            .await
            .map_err(|e| Failure::failed(e.to_string()))?;
        progress.step(&format!("pushing {} ({})", f.image, size(bytes)));
        let pushed = match target {
            PushTarget::Gateway(client) => {
                push_to_gateway(client, &f.image, &digest, staged.path()).await
            }
            PushTarget::Store(store) => store
                .put_bundle(&f.image, staged.path(), &digest)
                .await
                .map_err(|e| Failure::failed(format!("pushing {}: {e}", f.image))),
        };
        match pushed {
            Ok(()) => progress.finish(&format!(
                "pushed {} ({}) in {}",
                f.image,
                size(bytes),
                took(started.elapsed())
            )),
            Err(e) => {
                progress.clear();
                return Err(e);
            }
        }
    }
    Ok(())
}

pub(super) async fn run(args: PushArgs) -> CmdResult {
    let stack = load_stack(&args.stack, None, false)?;
    match &args.store {
        Some(location) => {
            let store = open_store(Some(location), &args.data_dir.resolve()).await?;
            push_all(&stack, &args.data_dir, &PushTarget::Store(store)).await
        }
        None => {
            let client = args.gateway.client(Some(&stack))?;
            push_all(&stack, &args.data_dir, &PushTarget::Gateway(&client)).await
        }
    }
}
