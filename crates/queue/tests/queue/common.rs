//! Test harness: a fresh queue per test, and a real nats-server on a free port.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ironfaas_queue::{EmbeddedOptions, EmbeddedQueue, NatsOptions, NatsQueue, Queue};
use tempfile::TempDir;

/// What keeps a test's backend alive (its temp dir, its server).
pub enum Guard {
    Embedded(#[allow(dead_code)] TempDir),
    Nats(#[allow(dead_code)] NatsServer),
}

/// A fresh embedded queue in a temp dir.
pub fn embedded() -> (Arc<dyn Queue>, Guard) {
    embedded_with(EmbeddedOptions::default())
}

/// A fresh embedded queue in a temp dir, with `options`.
pub fn embedded_with(options: EmbeddedOptions) -> (Arc<dyn Queue>, Guard) {
    let dir = TempDir::new().unwrap();
    let q = EmbeddedQueue::open_with(dir.path(), options).unwrap();
    (Arc::new(q), Guard::Embedded(dir))
}

/// A fresh NATS queue on its own nats-server.
pub async fn nats() -> (Arc<dyn Queue>, Guard) {
    let server = NatsServer::start();
    let q = connect(&server.url()).await;
    (Arc::new(q), Guard::Nats(server))
}

/// Options that make the tests quick: short polling and discovery.
pub fn test_options() -> NatsOptions {
    NatsOptions {
        poll_interval: Duration::from_millis(20),
        discovery_interval: Duration::from_millis(200),
        request_timeout: Duration::from_secs(2),
        ..NatsOptions::default()
    }
}

/// Connects, retrying while the server's JetStream is starting.
pub async fn connect(url: &str) -> NatsQueue {
    connect_with(url, test_options()).await
}

/// Connects with `options`, retrying while the server's JetStream is starting.
pub async fn connect_with(url: &str, options: NatsOptions) -> NatsQueue {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match NatsQueue::connect(url, options.clone()).await {
            Ok(q) => return q,
            Err(e) if Instant::now() < deadline => {
                eprintln!("waiting for nats-server: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("could not connect to the test nats-server: {e}"),
        }
    }
}

/// The nats-server binary; fails the test with the fix when it is missing.
fn nats_server_bin() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path).chain([PathBuf::from("/usr/sbin")]) {
        let candidate = dir.join("nats-server");
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "nats-server is not installed (not on PATH nor in /usr/sbin); the NATS queue tests need \
         it: run scripts/install-test-deps (it installs the Debian package nats-server)"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A nats-server with JetStream in a temp dir, killed when dropped.
pub struct NatsServer {
    child: Option<Child>,
    pub port: u16,
    dir: TempDir,
}

impl NatsServer {
    /// Starts a server on a free port with a fresh store dir.
    pub fn start() -> NatsServer {
        let dir = TempDir::new().unwrap();
        let mut server = NatsServer {
            child: None,
            port: free_port(),
            dir,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let store: &Path = self.dir.path();
        let mut child = Command::new(nats_server_bin())
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(store)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting nats-server");
        // Wait for "Server is ready", keep draining its log afterwards.
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains("Server is ready")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(15))
            .expect("nats-server did not get ready within 15 s");
        self.child = Some(child);
    }

    /// The client URL.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server with SIGKILL.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Starts the server again on the same port and store dir.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill9();
    }
}
