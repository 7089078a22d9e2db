//! A real S3 server for end-to-end tests: s3s-fs over HTTP on loopback, with SigV4 auth.
//!
//! ```text
//! cargo run -p ironfaas-store --features test-support --example s3_server -- \
//!     [--root DIR] [--port N] [--access-key K] [--secret-key S] [--bucket NAME]...
//! ```
//!
//! Prints one JSON line once it accepts requests, then serves until it is killed:
//! `{"endpoint":"http://127.0.0.1:PORT","region":"us-east-1","access_key":"…",
//! "secret_key":"…","root":"…","buckets":["…"]}`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use ironfaas_store::test_support::S3TestServer;

const USAGE: &str = "usage: s3_server [--root DIR] [--port N] [--access-key K] [--secret-key S] \
                     [--bucket NAME]...";

struct Args {
    root: Option<PathBuf>,
    port: u16,
    access_key: String,
    secret_key: String,
    buckets: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        root: None,
        port: 0,
        access_key: "ironfaas-test".into(),
        secret_key: "ironfaas-test-secret".into(),
        buckets: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--root" => args.root = Some(PathBuf::from(value()?)),
            "--port" => {
                let v = value()?;
                args.port = v
                    .parse()
                    .map_err(|_| format!("--port '{v}' is not a port number\n{USAGE}"))?;
            }
            "--access-key" => args.access_key = value()?,
            "--secret-key" => args.secret_key = value()?,
            "--bucket" => args.buckets.push(value()?),
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument '{other}'\n{USAGE}")),
        }
    }
    Ok(args)
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let root = match args.root {
        Some(root) => root,
        None => tempfile::Builder::new()
            .prefix("ironfaas-s3-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary root: {e}"))?
            .keep(),
    };
    let server = S3TestServer::start_on(
        SocketAddr::from(([127, 0, 0, 1], args.port)),
        &root,
        &args.access_key,
        &args.secret_key,
    )
    .map_err(|e| e.to_string())?;
    for bucket in &args.buckets {
        server.create_bucket(bucket).map_err(|e| e.to_string())?;
    }
    let line = serde_json::json!({
        "endpoint": server.endpoint(),
        "region": server.region(),
        "access_key": server.access_key(),
        "secret_key": server.secret_key(),
        "root": server.root(),
        "buckets": args.buckets,
    });
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| format!("cannot write to stdout: {e}"))?;
    drop(out);
    loop {
        std::thread::park();
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("s3_server: {e}");
        std::process::exit(2);
    }
}
