//! Readiness: a replica is ready when it writes to its ready pipe (`IRONFAAS_READY_FD`, which
//! every ironfaas template does as soon as it listens) or when its server answers an HTTP
//! request on its health path with anything but 503. Probes start at once, 100 µs apart,
//! back off to 0.5 ms in the first 20 ms, to 4 ms in the first second and to 20 ms later, so a
//! fast server is routed to within half a millisecond of listening even without the pipe (a
//! refused probe costs a connect(2) of a few microseconds).

use std::io;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use ironfaas_spec::duration::format_duration;
use ironfaas_spec::provider::Endpoint;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::process::Child;

/// The longest pause between two probes.
const MAX_PAUSE: Duration = Duration::from_millis(20);
/// The longest pause between two probes in the first second, when most replicas get ready.
const MAX_EARLY_PAUSE: Duration = Duration::from_millis(4);
/// The first pause between two probes.
const FIRST_PAUSE: Duration = Duration::from_micros(100);
/// The longest pause between two probes in the first milliseconds, when native servers and
/// most templates start listening.
const MAX_FIRST_PAUSE: Duration = Duration::from_micros(500);
/// How long the first, finest probing lasts.
const FIRST_PHASE: Duration = Duration::from_millis(20);
/// The longest one probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a replica never became ready.
#[derive(Debug)]
pub(crate) enum NotReady {
    /// Its process ended first.
    Exited(ExitStatus),
    /// It did not answer in time.
    TimedOut(Duration, String),
    /// Waiting for the process failed.
    Wait(io::Error),
}

impl std::fmt::Display for NotReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotReady::Exited(status) => {
                write!(f, "its process exited ({status}) before it was ready")
            }
            NotReady::TimedOut(after, last) => write!(
                f,
                "it did not answer its readiness probe within {} (last probe: {last})",
                format_duration(*after)
            ),
            NotReady::Wait(e) => write!(f, "cannot watch its process: {e}"),
        }
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, path: &str) -> io::Result<u16> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::with_capacity(64);
    let mut buf = [0u8; 64];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 1024 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    line.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .filter(|_| line.starts_with("HTTP/"))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "the answer is not HTTP"))
}

/// Sends one `GET path` to `endpoint` and returns the status code.
pub(crate) async fn probe(endpoint: &Endpoint, path: &str) -> io::Result<u16> {
    let attempt = async {
        match endpoint {
            Endpoint::Tcp(addr) => {
                exchange(tokio::net::TcpStream::connect(addr).await?, path).await
            }
            Endpoint::Unix(sock) => {
                exchange(tokio::net::UnixStream::connect(sock).await?, path).await
            }
        }
    };
    tokio::time::timeout(PROBE_TIMEOUT, attempt)
        .await
        .unwrap_or_else(|_| {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no answer within 2s",
            ))
        })
}

/// The environment variable naming the file descriptor a replica may write one byte to as
/// soon as it accepts connections; the platform then routes to it without waiting for a probe.
pub(crate) const READY_FD_ENV: &str = "IRONFAAS_READY_FD";
/// The environment variable naming the file descriptor a warm spare's runtime waits on (one
/// byte: load the function and listen; end of file: exit) when its template has `start_fd`.
pub(crate) const START_FD_ENV: &str = "IRONFAAS_START_FD";

/// A pipe between the platform and a replica: the replica inherits one end under the number
/// an environment variable names, the platform keeps the other.
pub(crate) struct ChildPipe {
    keep: std::os::fd::OwnedFd,
    give: std::os::fd::OwnedFd,
    var: &'static str,
}

/// The ready pipe: the replica writes, the platform reads.
pub(crate) type ReadyPipe = ChildPipe;

impl ChildPipe {
    /// A new ready pipe (both ends close-on-exec in this process, non-blocking).
    pub(crate) fn new() -> io::Result<ChildPipe> {
        let (read, write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)?;
        Ok(ChildPipe {
            keep: read,
            give: write,
            var: READY_FD_ENV,
        })
    }

    /// A new start pipe: the platform writes, the replica reads (blocking, in the replica).
    pub(crate) fn start() -> io::Result<ChildPipe> {
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        Ok(ChildPipe {
            keep: write,
            give: read,
            var: START_FD_ENV,
        })
    }

    /// The variable for the child: the number of the end it inherits.
    pub(crate) fn env(&self) -> (String, String) {
        use std::os::fd::AsRawFd;
        (self.var.to_string(), self.give.as_raw_fd().to_string())
    }

    /// Lets the child started by `cmd` keep its end across exec (it keeps its number).
    /// Add this after any other pre-exec step that closes descriptors.
    pub(crate) fn give_to(&self, cmd: &mut tokio::process::Command) {
        use std::os::fd::AsRawFd;
        let give = self.give.as_raw_fd();
        #[allow(unsafe_code)]
        // SAFETY: runs between fork and exec and only calls fcntl on a descriptor number taken
        // before the fork; it allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                if libc::fcntl(give, libc::F_SETFD, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }

    /// After the child started: closes this process's copy of the child's end and returns
    /// the platform's end.
    pub(crate) fn into_kept(self) -> std::os::fd::OwnedFd {
        drop(self.give);
        self.keep
    }

    /// After the child started, for the ready pipe: the read end, to await.
    pub(crate) fn into_receiver(self) -> io::Result<tokio::net::unix::pipe::Receiver> {
        tokio::net::unix::pipe::Receiver::from_owned_fd(self.into_kept())
    }
}

/// Resolves when the replica writes to its ready pipe; never when it closes it silently.
async fn signalled(pipe: Option<tokio::net::unix::pipe::Receiver>) {
    if let Some(mut pipe) = pipe {
        let mut byte = [0u8; 1];
        if matches!(pipe.read(&mut byte).await, Ok(1)) {
            return;
        }
    }
    std::future::pending::<()>().await;
}

/// Waits until the replica says it is ready on its pipe or answers a probe, its process
/// exits, or `limit` passes.
pub(crate) async fn wait_ready_or_signal(
    endpoint: &Endpoint,
    path: &str,
    child: &mut Child,
    limit: Duration,
    pipe: Option<tokio::net::unix::pipe::Receiver>,
) -> Result<(), NotReady> {
    tokio::select! {
        biased;
        () = signalled(pipe) => Ok(()),
        result = wait_ready(endpoint, path, child, limit) => result,
    }
}

/// Probes until the replica answers, its process exits, or `limit` passes.
pub(crate) async fn wait_ready(
    endpoint: &Endpoint,
    path: &str,
    child: &mut Child,
    limit: Duration,
) -> Result<(), NotReady> {
    let started = Instant::now();
    let mut pause = FIRST_PAUSE;
    let mut last: String;
    loop {
        match probe(endpoint, path).await {
            Ok(503) => last = "503 Service Unavailable".into(),
            Ok(_) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
        match child.try_wait() {
            Ok(Some(status)) => return Err(NotReady::Exited(status)),
            Ok(None) => {}
            Err(e) => return Err(NotReady::Wait(e)),
        }
        if started.elapsed() >= limit {
            return Err(NotReady::TimedOut(limit, last));
        }
        pause_for(pause).await;
        let elapsed = started.elapsed();
        let cap = if elapsed < FIRST_PHASE {
            MAX_FIRST_PAUSE
        } else if elapsed < Duration::from_secs(1) {
            MAX_EARLY_PAUSE
        } else {
            MAX_PAUSE
        };
        pause = (pause * 2).min(cap);
    }
}

/// Sleeps for `pause`; below a millisecond (finer than tokio's timer) on a blocking thread.
async fn pause_for(pause: Duration) {
    let fine = pause < Duration::from_millis(1);
    // A blocking thread that cannot be had falls back to the timer.
    if !fine
        || tokio::task::spawn_blocking(move || std::thread::sleep(pause))
            .await
            .is_err()
    {
        tokio::time::sleep(pause).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn probe_reads_the_status() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            for code in ["404 Not Found", "503 Service Unavailable"] {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 256];
                let _ = s.read(&mut buf).await;
                s.write_all(format!("HTTP/1.1 {code}\r\n\r\n").as_bytes())
                    .await
                    .unwrap();
            }
        });
        let ep = Endpoint::Tcp(addr);
        assert_eq!(probe(&ep, "/_/health").await.unwrap(), 404);
        assert_eq!(probe(&ep, "/_/health").await.unwrap(), 503);
        assert!(
            probe(&ep, "/_/health").await.is_err(),
            "nothing listens any more"
        );
    }

    #[tokio::test]
    async fn exit_before_ready_is_reported() {
        let mut child = tokio::process::Command::new("sh")
            .args(["-c", "exit 7"])
            .spawn()
            .unwrap();
        let ep = Endpoint::Unix("/nonexistent/sock".into());
        let err = wait_ready(&ep, "/", &mut child, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("exit status: 7"), "{err}");
    }

    #[tokio::test]
    async fn timeout_is_reported() {
        let mut child = tokio::process::Command::new("sleep")
            .arg("5")
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let ep = Endpoint::Unix("/nonexistent/sock".into());
        let err = wait_ready(&ep, "/", &mut child, Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(matches!(err, NotReady::TimedOut(..)), "{err}");
    }
}
