//! Test harness: the real `ironfaas` binary, a temporary data dir, a free port, real HTTP.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The admin password every test platform is started with.
pub const ADMIN_PASSWORD: &str = "e2e-admin-password";

/// The binary under test.
pub fn ironfaas() -> &'static str {
    env!("CARGO_BIN_EXE_ironfaas")
}

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// A running `ironfaas serve` with its own data dir.
pub struct Platform {
    /// The gateway's base URL, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    /// The data dir.
    pub data: PathBuf,
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    _keep: Option<tempfile::TempDir>,
}

fn read_log(child: &mut Child, log: Arc<Mutex<Vec<String>>>) -> String {
    let stderr = child.stderr.take().expect("stderr piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent && let Some(rest) = line.split("listening on ").nth(1) {
                let url = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                let _ = tx.send(url);
                sent = true;
            }
            log.lock().unwrap().push(line);
        }
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("the gateway did not report its address")
}

impl Platform {
    /// Starts a platform on a free port with a fresh data dir.
    pub fn start() -> Platform {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().to_path_buf();
        Self::start_in(data, Some(dir), &[])
    }

    /// Starts a platform on a free port with a fresh data dir and extra `serve` flags.
    pub fn start_with(extra: &[&str]) -> Platform {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().to_path_buf();
        Self::start_in(data, Some(dir), extra)
    }

    /// Starts a platform on `data` (kept by the caller) with extra `serve` flags.
    pub fn start_in(data: PathBuf, keep: Option<tempfile::TempDir>, extra: &[&str]) -> Platform {
        Self::start_in_env(data, keep, extra, &[])
    }

    /// Starts a platform on `data` with extra `serve` flags and environment variables.
    pub fn start_in_env(
        data: PathBuf,
        keep: Option<tempfile::TempDir>,
        extra: &[&str],
        env: &[(&str, String)],
    ) -> Platform {
        let mut child = Command::new(ironfaas())
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .args(extra)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("IRONFAAS_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("IRONFAAS_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ironfaas serve");
        let log = Arc::new(Mutex::new(Vec::new()));
        let url = read_log(&mut child, Arc::clone(&log));
        Platform {
            url,
            data,
            child,
            log,
            _keep: keep,
        }
    }

    /// Runs an `ironfaas` command against this platform from `cwd`.
    pub fn cli(&self, cwd: &Path, args: &[&str]) -> Output {
        self.cli_with_stdin(cwd, args, b"")
    }

    /// Runs an `ironfaas` command with `stdin` as its input.
    pub fn cli_with_stdin(&self, cwd: &Path, args: &[&str], stdin: &[u8]) -> Output {
        run_cli(
            cwd,
            args,
            stdin,
            &[
                ("OPENFAAS_URL", &self.url),
                ("IRONFAAS_DATA_DIR", &self.data.display().to_string()),
            ],
        )
    }

    /// Everything `serve` logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Stops `serve` with SIGTERM and waits for it; returns whether it exited cleanly.
    pub fn stop(mut self) -> bool {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Kills `serve` with SIGKILL (no clean-up) and waits for it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- ironfaas serve log ---\n{}\n---", self.log());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `ironfaas ARGS` in `cwd` with `env` and `stdin`.
pub fn run_cli(cwd: &Path, args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Output {
    use std::io::Write;
    let mut child = Command::new(ironfaas())
        .args(args)
        .current_dir(cwd)
        .env("IRONFAAS_PASSWORD", ADMIN_PASSWORD)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ironfaas");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin).expect("write stdin");
    drop(input);
    child.wait_with_output().expect("wait for ironfaas")
}

/// The text of a command's stdout and stderr, for assertions and failure messages.
pub fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Asserts the command succeeded and returns its stdout.
#[track_caller]
pub fn ok(output: &Output) -> String {
    let (stdout, stderr) = text(output);
    assert!(
        output.status.success(),
        "command failed ({}):\nstdout: {stdout}\nstderr: {stderr}",
        output.status
    );
    stdout
}

/// A project folder with a stack file and handler folders.
pub struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    /// An empty project.
    pub fn new() -> Project {
        Project {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// Its folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `contents` at `rel` (creating folders).
    pub fn write(&self, rel: &str, contents: &str) -> &Self {
        let path = self.dir.path().join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, contents).expect("write");
        self
    }

    /// Copies the file `from` to `rel` with mode 0755.
    pub fn install_executable(&self, from: &Path, rel: &str) -> &Self {
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir.path().join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::copy(from, &path).expect("copy executable");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        self
    }
}

/// The native echo function (tests/fixtures/native_echo.rs), compiled once and shared by the
/// test processes through the target dir (keyed by the source's hash).
pub fn native_echo() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        use std::hash::{Hash, Hasher};
        let source = repo().join("tests/fixtures/native_echo.rs");
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        std::fs::read(&source)
            .expect("read native_echo.rs")
            .hash(&mut hasher);
        let out = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("native-echo-{:016x}", hasher.finish()));
        if out.is_file() {
            return out;
        }
        let partial = out.with_extension(format!("partial-{}", std::process::id()));
        let status = Command::new("rustc")
            .args(["-O", "--edition", "2021", "-o"])
            .arg(&partial)
            .arg(&source)
            .status()
            .expect("run rustc");
        assert!(
            status.success(),
            "compiling the native echo function failed"
        );
        std::fs::rename(&partial, &out).expect("publish the native echo binary");
        out
    })
}

/// A blocking HTTP client with generous timeouts that sends the admin's credentials.
pub fn http() -> reqwest::blocking::Client {
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("admin:{ADMIN_PASSWORD}"));
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Basic {token}").parse().expect("header"),
    );
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .default_headers(headers)
        .build()
        .expect("http client")
}

/// A blocking HTTP client that sends no credentials.
pub fn anonymous() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("http client")
}

/// Polls `check` every 50 ms until it holds or `limit` passes.
#[track_caller]
pub fn eventually(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out after {limit:?} waiting for {what}");
}

/// Copies the folder `from` into `to`, skipping `build/` folders.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            if entry.file_name() != "build" {
                copy_tree(&entry.path(), &target);
            }
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// A nats-server with JetStream on a free port and a temp store dir.
pub struct Nats {
    /// `nats://127.0.0.1:PORT`.
    pub url: String,
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Nats {
    /// Starts one; fails the test with the fix when nats-server is not installed.
    pub fn start() -> Nats {
        let port = free_port();
        let mut nats = Nats {
            url: format!("nats://127.0.0.1:{port}"),
            port,
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        nats.restart();
        nats
    }

    fn binary() -> PathBuf {
        let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .chain([PathBuf::from("/usr/sbin")])
            .map(|d| d.join("nats-server"))
            .find(|p| p.is_file());
        found.expect("nats-server is not installed: run scripts/install-test-deps (Debian package nats-server)")
    }

    /// Starts (again) on the same port and store dir.
    pub fn restart(&mut self) {
        let child = Command::new(Self::binary())
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
        eventually("nats-server to listen", Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
        });
    }

    /// Kills it with SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One callback: its headers (lower-case names) and body.
pub type Callback = (std::collections::HashMap<String, String>, String);

/// What a callback receiver got: per call id, the callbacks.
#[derive(Debug, Clone, Default)]
pub struct Received {
    /// Callbacks by call id.
    pub calls: std::collections::HashMap<String, Vec<Callback>>,
}

/// An HTTP server that records every callback POSTed to it; `/redirect` answers 307 to `/`,
/// `/slow?s=N` answers N seconds after it has recorded the callback.
pub struct CallbackServer {
    /// Its base URL.
    pub url: String,
    received: Arc<Mutex<Received>>,
}

impl CallbackServer {
    /// Starts one on a free port.
    pub fn start() -> CallbackServer {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Received::default()));
        let shared = Arc::clone(&received);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut stream = stream;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                        let mut headers = std::collections::HashMap::new();
                        loop {
                            let mut h = String::new();
                            reader.read_line(&mut h).unwrap();
                            let h = h.trim_end();
                            if h.is_empty() {
                                break;
                            }
                            if let Some((k, v)) = h.split_once(':') {
                                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                            }
                        }
                        let length: usize = headers
                            .get("content-length")
                            .and_then(|l| l.parse().ok())
                            .unwrap_or(0);
                        let mut body = vec![0u8; length];
                        reader.read_exact(&mut body).unwrap();
                        if target == "/redirect" {
                            let _ = stream.write_all(b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /\r\nContent-Length: 0\r\n\r\n");
                            continue;
                        }
                        let id = headers.get("x-call-id").cloned().unwrap_or_default();
                        shared
                            .lock()
                            .unwrap()
                            .calls
                            .entry(id)
                            .or_default()
                            .push((headers, String::from_utf8_lossy(&body).into_owned()));
                        if let Some(secs) = target.strip_prefix("/slow?s=") {
                            let secs = secs.parse().expect("/slow?s=SECONDS");
                            std::thread::sleep(Duration::from_secs_f64(secs));
                        }
                        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
                    }
                });
            }
        });
        CallbackServer { url, received }
    }

    /// What arrived so far.
    pub fn received(&self) -> Received {
        self.received.lock().unwrap().clone()
    }
}

/// The gateway's `/metrics`, parsed (the parse must succeed).
pub fn scrape(url: &str) -> prometheus_parse::Scrape {
    let text = http()
        .get(format!("{url}/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let lines = text.lines().map(|l| Ok(l.to_string()));
    prometheus_parse::Scrape::parse(lines).expect("the Prometheus text parser accepts /metrics")
}

/// The value of the first sample of `name` with `labels` (counters, gauges, untyped).
pub fn metric(
    samples: &[prometheus_parse::Sample],
    name: &str,
    labels: &[(&str, &str)],
) -> Option<f64> {
    samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
}

/// A loopback port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
