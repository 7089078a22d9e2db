//! A real S3 server for tests: `s3s-fs` (objects as files under a directory) served over HTTP
//! on a loopback port, with SigV4 authentication for one access key.
//!
//! The server runs on its own thread with its own runtime, so it serves synchronous tests,
//! async tests of any runtime flavour, and child processes alike; it stops when dropped.
//!
//! ```no_run
//! # fn main() -> std::io::Result<()> {
//! use ironfaas_store::test_support::S3TestServer;
//! let dir = tempfile::tempdir()?;
//! let server = S3TestServer::start(dir.path(), "test-key", "test-secret")?;
//! server.create_bucket("functions")?;
//! let config = server.config("functions", "store"); // for FunctionStore::s3
//! let env = server.env(); // AWS_* variables for a child process
//! # Ok(()) }
//! ```

use std::io;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::path::{Path, PathBuf};

use hyper_util::rt::TokioIo;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;

use crate::s3::{DEFAULT_REGION, S3Config};

/// A running S3 test server; stops when dropped.
#[derive(Debug)]
pub struct S3TestServer {
    endpoint: String,
    access_key: String,
    secret_key: String,
    root: PathBuf,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn io_err(what: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("S3 test server: {what}: {e}"))
}

impl S3TestServer {
    /// Starts a server on a free loopback port, keeping objects under `root` (created if
    /// missing) and accepting only `access_key` with `secret_key`.
    pub fn start(root: &Path, access_key: &str, secret_key: &str) -> io::Result<S3TestServer> {
        S3TestServer::start_on(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            root,
            access_key,
            secret_key,
        )
    }

    /// [`S3TestServer::start`] on the address `addr` (port 0 picks a free one).
    pub fn start_on(
        addr: SocketAddr,
        root: &Path,
        access_key: &str,
        secret_key: &str,
    ) -> io::Result<S3TestServer> {
        std::fs::create_dir_all(root)
            .map_err(|e| io_err(&format!("cannot create {}", root.display()), e))?;
        let root = root
            .canonicalize()
            .map_err(|e| io_err(&format!("cannot resolve {}", root.display()), e))?;
        let fs = s3s_fs::FileSystem::new(&root).map_err(|e| {
            io_err(
                &format!("cannot serve {}", root.display()),
                format!("{e:?}"),
            )
        })?;
        let service = {
            let mut builder = S3ServiceBuilder::new(fs);
            builder.set_auth(SimpleAuth::from_single(access_key, secret_key));
            builder.build()
        };
        let listener =
            StdTcpListener::bind(addr).map_err(|e| io_err(&format!("cannot bind {addr}"), e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| io_err("cannot set up the listener", e))?;
        let local = listener
            .local_addr()
            .map_err(|e| io_err("cannot read the listener's address", e))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| io_err("cannot start a runtime", e))?;
        let (shutdown, mut stop) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("s3-test-server".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    loop {
                        let socket = tokio::select! {
                            accepted = listener.accept() => match accepted {
                                Ok((socket, _)) => socket,
                                Err(_) => continue,
                            },
                            _ = &mut stop => break,
                        };
                        let service = service.clone();
                        tokio::spawn(async move {
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(socket), service)
                                .await;
                        });
                    }
                });
            })
            .map_err(|e| io_err("cannot start its thread", e))?;
        Ok(S3TestServer {
            endpoint: format!("http://{local}"),
            access_key: access_key.to_string(),
            secret_key: secret_key.to_string(),
            root,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// The endpoint URL, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The access key it accepts.
    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    /// The secret key of that access key.
    pub fn secret_key(&self) -> &str {
        &self.secret_key
    }

    /// The region to sign for (any works; this is the default).
    pub fn region(&self) -> &str {
        DEFAULT_REGION
    }

    /// The directory the objects are kept in (`ROOT/BUCKET/KEY`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates the bucket `bucket` (a directory under the root).
    pub fn create_bucket(&self, bucket: &str) -> io::Result<()> {
        std::fs::create_dir_all(self.root.join(bucket))
            .map_err(|e| io_err(&format!("cannot create bucket {bucket}"), e))
    }

    /// The file that holds the object `key` of `bucket`, to inspect or damage it.
    pub fn object_path(&self, bucket: &str, key: &str) -> PathBuf {
        self.root.join(bucket).join(key)
    }

    /// A store configuration for `bucket` under `prefix` on this server.
    pub fn config(&self, bucket: &str, prefix: &str) -> S3Config {
        let mut config = S3Config::new(bucket)
            .with_prefix(prefix)
            .with_endpoint(&self.endpoint)
            .with_credentials(&self.access_key, &self.secret_key);
        config.region = Some(DEFAULT_REGION.to_string());
        config.allow_http = true;
        config
    }

    /// The `AWS_*` environment variables that point a process at this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", self.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_key.clone()),
            ("AWS_REGION", DEFAULT_REGION.to_string()),
            ("AWS_ALLOW_HTTP", "true".to_string()),
        ]
    }
}

impl Drop for S3TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
