//! Real sandboxes, as root: what a function can see and do, and what its limits do to it.
//! Missing root, bubblewrap or cgroups fails these tests (never skips them).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use tokio::io::AsyncReadExt;

use super::*;
use crate::testutil::{unix_request, wait_for_socket};

const PATH: &str = "/usr/local/bin:/usr/bin:/bin";

async fn support() -> SandboxSupport {
    let support = SandboxSupport::detect().await;
    assert!(
        support.is_ready(),
        "the sandbox tests need root, bubblewrap and cgroups: run scripts/install-test-deps \
         as root. Missing: {}",
        support.missing().join("; ")
    );
    support
}

/// A data dir like the platform's, at /srv (a data dir under /var or /tmp would be out of
/// the sandbox's sight anyway, proving nothing): bundles, secrets, a queue file, run and
/// work dirs.
struct Fixture {
    data: tempfile::TempDir,
    identity: Identity,
    function: FunctionRef,
}

static REPLICAS: AtomicU32 = AtomicU32::new(0);

impl Fixture {
    fn new(name: &str, files: &[(&str, &str)]) -> Fixture {
        let data = tempfile::Builder::new()
            .prefix("ironfaas-sandbox-test")
            .tempdir_in("/srv")
            .unwrap();
        // Others may pass through (bwrap runs as the function) but not list it.
        fs::set_permissions(data.path(), fs::Permissions::from_mode(0o711)).unwrap();
        let uids = UidAllocator::open(&data.path().join("uids")).unwrap();
        let function = FunctionRef::new(name, "openfaas-fn");
        let identity = uids.identity(&function).unwrap();
        let other = uids
            .identity(&FunctionRef::new("other", "openfaas-fn"))
            .unwrap();
        let bundle = data.path().join("bundles").join(name);
        fs::create_dir_all(&bundle).unwrap();
        for dir in [data.path().join("bundles"), bundle.clone()] {
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        }
        for (file, text) in files {
            let path = bundle.join(file);
            fs::write(&path, text).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        }
        fs::create_dir_all(data.path().join("secrets")).unwrap();
        fs::set_permissions(
            data.path().join("secrets"),
            fs::Permissions::from_mode(0o711),
        )
        .unwrap();
        write_secrets(
            &data.path().join("secrets").join(name),
            identity,
            &[("api-key", b"s3cret")],
        )
        .unwrap();
        write_secrets(
            &data.path().join("secrets/other"),
            other,
            &[("db-password", b"hunter2")],
        )
        .unwrap();
        // World-readable, so only hiding keeps it from the function.
        fs::create_dir_all(data.path().join("queue")).unwrap();
        fs::set_permissions(data.path().join("queue"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(data.path().join("queue/jobs"), "job data").unwrap();
        fs::set_permissions(
            data.path().join("queue/jobs"),
            fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        Fixture {
            data,
            identity,
            function,
        }
    }

    fn dir(&self, rel: &str) -> PathBuf {
        self.data.path().join(rel)
    }

    fn spec(&self, limits: Limits) -> SandboxSpec {
        let n = REPLICAS.fetch_add(1, Ordering::Relaxed);
        let replica = format!("test-{}-{}-{n}", self.function.name, std::process::id());
        let socket_dir = self.dir(&format!("run/{replica}"));
        let work_dir = self.dir(&format!("work/{replica}"));
        for dir in ["run", "work"] {
            fs::create_dir_all(self.dir(dir)).unwrap();
            fs::set_permissions(self.dir(dir), fs::Permissions::from_mode(0o711)).unwrap();
        }
        prepare_owned_dir(&socket_dir, self.identity, 0o700).unwrap();
        prepare_owned_dir(&work_dir, self.identity, 0o700).unwrap();
        SandboxSpec {
            function: self.function.clone(),
            cgroup: format!("{}-{replica}", std::process::id()),
            replica,
            identity: self.identity,
            bundle_dir: self.dir(&format!("bundles/{}", self.function.name)),
            socket_dir: Some(socket_dir),
            work_dir: Some(work_dir),
            secrets_dir: Some(self.dir(&format!("secrets/{}", self.function.name))),
            network: true,
            limits,
            hidden: vec![self.data.path().to_path_buf()],
            tmp_size: Some(16 << 20),
        }
    }

    fn env(&self, spec: &SandboxSpec) -> Vec<(String, String)> {
        let socket = spec.socket_dir.as_ref().unwrap().join("r.sock");
        vec![
            ("PATH".into(), PATH.into()),
            ("HOME".into(), "/tmp".into()),
            ("IRONFAAS_SOCKET".into(), socket.display().to_string()),
            ("DATA".into(), self.data.path().display().to_string()),
        ]
    }
}

fn limits(memory: Option<u64>, pids: u64) -> Limits {
    Limits {
        memory_bytes: memory,
        cpu_millis: Some(1000),
        pids,
    }
}

/// Runs the command to its end (bounded): status, stdout, stderr.
async fn run(mut cmd: tokio::process::Command) -> (ExitStatus, String, String) {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("the sandboxed process did not finish in 60s")
        .expect("spawn bwrap");
    (
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `key=value` lines as a lookup.
fn report(stdout: &str) -> impl Fn(&str) -> String + '_ {
    move |key: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
            .unwrap_or_else(|| panic!("no {key}= in the report:\n{stdout}"))
            .to_string()
    }
}

const LOOK_AROUND: &str = r#"#!/bin/sh
echo "pids=$(ls /proc | grep -E '^[0-9]+$' | tr '\n' ' ')"
can_write() { if (echo x > "$1") 2>/dev/null; then echo yes; else echo no; fi; }
echo "fds=$(ls /proc/self/fd | tr '\n' ' ')"
echo "uid=$(id -u)"
echo "gid=$(id -g)"
echo "groups=$(id -G)"
echo "cwd=$(pwd)"
echo "hostname=$(hostname)"
echo "socket=$IRONFAAS_SOCKET"
echo "secret=$(cat /var/openfaas/secrets/api-key 2>&1)"
echo "secrets=$(ls /var/openfaas/secrets | tr '\n' ' ')"
echo "other_secret=$(cat "$DATA/secrets/other/db-password" 2>&1)"
echo "queue=$(cat "$DATA/queue/jobs" 2>&1)"
echo "data_listing=$(ls -A "$DATA" 2>&1 | tr '\n' ' ')"
echo "pid1=$(cat /proc/1/comm)"
echo "write_tmp=$(can_write /tmp/x)"
echo "write_shm=$(can_write /dev/shm/x)"
echo "write_work=$(can_write /var/openfaas/work/x)"
echo "write_socket_dir=$(can_write /run/ironfaas/x)"
echo "write_root=$(can_write /x)"
echo "write_etc=$(can_write /etc/ironfaas-test)"
echo "write_usr=$(can_write /usr/ironfaas-test)"
echo "write_srv=$(can_write /srv/ironfaas-test)"
echo "write_var=$(can_write /var/ironfaas-test)"
echo "write_home=$(can_write /home/ironfaas-test)"
echo "write_dev=$(can_write /dev/x)"
echo "write_run=$(can_write /run/x)"
echo "write_bundle=$(can_write /home/app/x)"
echo "write_secret=$(can_write /var/openfaas/secrets/api-key)"
listing=""
for d in /sys/fs/cgroup/memory/ironfaas /sys/fs/cgroup/ironfaas; do
    if [ -d "$d" ]; then listing="$listing$(ls -A "$d" | tr '\n' ' ')"; fi
done
echo "cgroup_listing=$listing"
grep -E '^(CapEff|CapBnd|CapPrm|NoNewPrivs|Seccomp):' /proc/self/status | sed 's/:\s*/=/'
"#;

#[tokio::test]
async fn a_function_sees_only_its_own_files_and_processes() {
    let support = support().await;
    let fixture = Fixture::new("look", &[("look.sh", LOOK_AROUND)]);
    let spec = fixture.spec(limits(Some(64 << 20), 64));
    let env = fixture.env(&spec);
    let bundle = spec.bundle_dir.clone();
    let sandbox = Sandbox::new(&support, spec.clone()).unwrap();
    let cmd = sandbox.command(&bundle.join("look.sh"), &[], &env).unwrap();
    let (status, stdout, stderr) = run(cmd).await;
    assert!(status.success(), "{status}\n{stdout}\n{stderr}");
    let get = report(&stdout);

    let uid = fixture.identity.uid.to_string();
    assert_eq!(get("uid"), uid, "runs as the function's own uid");
    assert_eq!(get("gid"), uid);
    assert_eq!(get("groups"), uid, "and no other group");
    assert_ne!(get("uid"), "0");
    assert_eq!(get("cwd"), BUNDLE_DIR);
    assert_eq!(
        get("fds").trim(),
        "0 1 2 3",
        "no descriptor of the platform leaks in (3 is ls reading the directory)"
    );
    assert_eq!(get("hostname"), spec.replica);
    assert_eq!(
        get("socket"),
        "/run/ironfaas/r.sock",
        "host paths are rewritten"
    );

    assert_eq!(get("secret"), "s3cret", "its declared secret is readable");
    assert_eq!(
        get("secrets").trim(),
        "api-key",
        "and is the only one there"
    );
    assert!(
        get("other_secret").contains("No such file"),
        "another function's secret is invisible: {}",
        get("other_secret")
    );
    assert!(
        get("queue").contains("No such file"),
        "the data dir is hidden: {}",
        get("queue")
    );
    assert_eq!(get("data_listing").trim(), "", "the data dir shows empty");

    let pids: Vec<&str> = stdout
        .lines()
        .find_map(|l| l.strip_prefix("pids="))
        .unwrap()
        .split_whitespace()
        .collect();
    assert!(
        pids.len() <= 8 && pids.iter().all(|p| p.parse::<u32>().unwrap() < 10),
        "only the sandbox's own processes are visible: {pids:?}"
    );
    assert_eq!(
        get("pid1"),
        "bwrap",
        "PID 1 is the sandbox's init, not the host's"
    );

    for writable in ["write_tmp", "write_shm", "write_work", "write_socket_dir"] {
        assert_eq!(get(writable), "yes", "{writable}");
    }
    for read_only in [
        "write_root",
        "write_etc",
        "write_usr",
        "write_srv",
        "write_var",
        "write_home",
        "write_dev",
        "write_run",
        "write_bundle",
        "write_secret",
    ] {
        assert_eq!(get(read_only), "no", "{read_only}");
    }
    assert_eq!(
        get("cgroup_listing").trim(),
        "",
        "other replicas' cgroups are not listed"
    );
    for caps in ["CapEff", "CapBnd", "CapPrm"] {
        assert_eq!(
            get(caps),
            "0000000000000000",
            "{caps}: every capability dropped"
        );
    }
    assert_eq!(get("NoNewPrivs"), "1");
    assert_eq!(get("Seccomp"), "2", "a seccomp filter is installed");
    assert_eq!(sandbox.exit_reason(), None);
}

const ESCAPES: &str = r#"
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
def errno_of(result):
    return "ok" if result >= 0 else os.strerror(ctypes.get_errno())
libc.syscall.restype = ctypes.c_long
print("unshare_user=" + errno_of(libc.unshare(0x10000000)))
print("unshare_mount=" + errno_of(libc.unshare(0x00020000)))
print("unshare_files=" + errno_of(libc.unshare(0x00000400)))
print("mount=" + errno_of(libc.mount(b"none", b"/tmp", b"tmpfs", 0, None)))
print("keyctl=" + errno_of(libc.syscall(250, 0, -3, 0)))
print("ptrace=" + errno_of(libc.ptrace(0, 0, None, None)))
print("clone3=" + errno_of(libc.syscall(435, None, 0)))
pid = os.fork()
if pid == 0:
    os._exit(7)
print("fork=" + str(os.waitpid(pid, 0)[1] >> 8))
"#;

#[tokio::test]
async fn seccomp_refuses_escape_system_calls() {
    let support = support().await;
    let fixture = Fixture::new("escape", &[("escape.py", ESCAPES)]);
    let spec = fixture.spec(limits(None, 64));
    let env = fixture.env(&spec);
    let sandbox = Sandbox::new(&support, spec.clone()).unwrap();
    let cmd = sandbox
        .command(
            Path::new("/usr/bin/python3"),
            &[spec.bundle_dir.join("escape.py").display().to_string()],
            &env,
        )
        .unwrap();
    let (status, stdout, stderr) = run(cmd).await;
    assert!(status.success(), "{status}\n{stdout}\n{stderr}");
    let get = report(&stdout);
    // Without the filter an unprivileged process may create a user namespace, use its
    // keyrings and ask to be traced: only seccomp makes these fail.
    assert_eq!(get("unshare_user"), "Operation not permitted");
    assert_eq!(get("unshare_mount"), "Operation not permitted");
    assert_eq!(get("keyctl"), "Operation not permitted");
    assert_eq!(get("ptrace"), "Operation not permitted");
    assert_eq!(get("mount"), "Operation not permitted");
    // clone3 looks absent so the C library falls back to clone; plain fork still works.
    assert_eq!(get("clone3"), "Function not implemented");
    assert_eq!(
        get("unshare_files"),
        "ok",
        "unshare without namespaces is allowed"
    );
    assert_eq!(get("fork"), "7");
}

const SERVER: &str = r#"
import os, socket, sys
port = int(sys.argv[1])
try:
    socket.create_connection(("127.0.0.1", port), timeout=2).close()
    tcp = "connected"
except OSError as e:
    tcp = "refused: " + type(e).__name__
path = os.environ["IRONFAAS_SOCKET"]
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(path)
server.listen(4)
body = ("tcp=" + tcp).encode()
while True:
    conn, _ = server.accept()
    # Readiness probes connect and leave without a request.
    if conn.recv(65536):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
    conn.close()
"#;

/// Starts the server with or without network; returns what it says about reaching the
/// test's TCP listener, asked over its Unix socket.
async fn tcp_from_inside(network: bool) -> String {
    let support = support().await;
    let fixture = Fixture::new("net", &[("server.py", SERVER)]);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut spec = fixture.spec(limits(None, 64));
    spec.network = network;
    let env = fixture.env(&spec);
    let host_socket = spec.socket_dir.as_ref().unwrap().join("r.sock");
    let sandbox = Sandbox::new(&support, spec.clone()).unwrap();
    let mut cmd = sandbox
        .command(
            Path::new("/usr/bin/python3"),
            &[
                spec.bundle_dir.join("server.py").display().to_string(),
                port.to_string(),
            ],
            &env,
        )
        .unwrap();
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    wait_for_socket(&host_socket).await;
    let (status, _, body) = unix_request(
        &host_socket,
        Request::get("/").body(Full::new(Bytes::new())).unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let _ = child.kill().await;
    drop(listener);
    String::from_utf8_lossy(&body).into_owned()
}

#[tokio::test]
async fn without_network_only_the_unix_socket_reaches_the_function() {
    let body = tcp_from_inside(false).await;
    assert!(body.starts_with("tcp=refused"), "{body}");
}

#[tokio::test]
async fn with_network_the_function_reaches_the_host_loopback() {
    let body = tcp_from_inside(true).await;
    assert_eq!(body, "tcp=connected");
}

#[tokio::test]
async fn going_over_the_memory_limit_is_an_oom_kill_the_platform_can_name() {
    let support = support().await;
    let fixture = Fixture::new("hog", &[]);
    let spec = fixture.spec(limits(Some(64 << 20), 64));
    let env = fixture.env(&spec);
    let sandbox = Sandbox::new(&support, spec).unwrap();
    // 300 MB of touched pages (bytes of 'x', not lazily zeroed memory).
    let cmd = sandbox
        .command(
            Path::new("/usr/bin/python3"),
            &[
                "-c".into(),
                "b = b'x' * (300 * 1024 * 1024); print('survived')".into(),
            ],
            &env,
        )
        .unwrap();
    let (status, stdout, stderr) = run(cmd).await;
    assert!(!status.success(), "{status}\n{stdout}\n{stderr}");
    assert!(!stdout.contains("survived"));
    assert!(sandbox.cgroup().oom_killed(), "{status}: {stderr}");
    assert_eq!(
        sandbox.exit_reason().as_deref(),
        Some("killed: out of memory (limit 64Mi)")
    );
    let peak = sandbox.cgroup().memory_peak().unwrap();
    assert!(peak <= 64 << 20, "peak {peak} is over the limit");
}

const FORKS: &str = r#"
import os, time
children = 0
refused = 0
for _ in range(100):
    try:
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
        children += 1
    except BlockingIOError:
        refused += 1
print("children=%d" % children)
print("refused=%d" % refused)
"#;

#[tokio::test]
async fn a_fork_bomb_stops_at_the_pids_limit() {
    let support = support().await;
    let fixture = Fixture::new("forks", &[("forks.py", FORKS)]);
    let spec = fixture.spec(limits(Some(256 << 20), 32));
    let env = fixture.env(&spec);
    let script = spec.bundle_dir.join("forks.py").display().to_string();
    let sandbox = Sandbox::new(&support, spec).unwrap();
    let cmd = sandbox
        .command(Path::new("/usr/bin/python3"), &[script], &env)
        .unwrap();
    let (status, stdout, stderr) = run(cmd).await;
    assert!(status.success(), "{status}\n{stdout}\n{stderr}");
    let get = report(&stdout);
    let children: u64 = get("children").parse().unwrap();
    // 32 = bwrap, its init, python and 29 children.
    assert_eq!(children, 29, "{stdout}");
    assert_eq!(get("refused"), "71");
    assert!(sandbox.cgroup().pids_refused() > 0);
    assert_eq!(
        sandbox.exit_reason(),
        None,
        "a pids limit is not an OOM kill"
    );
}

#[tokio::test]
async fn sigterm_reaches_the_function_and_the_cgroup_goes_with_the_sandbox() {
    let support = support().await;
    let fixture = Fixture::new("term", &[]);
    let spec = fixture.spec(limits(None, 64));
    let env = fixture.env(&spec);
    let sandbox = Sandbox::new(&support, spec).unwrap();
    let dirs = sandbox.cgroup().dirs().to_vec();
    assert!(dirs.iter().all(|d| d.is_dir()));
    let mut cmd = sandbox
        .command(
            Path::new("/bin/sh"),
            &[
                "-c".into(),
                "trap 'echo graceful; exit 0' TERM; echo up; while :; do sleep 0.05; done".into(),
            ],
            &env,
        )
        .unwrap();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    let bwrap_pid = child.id().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 3];
    stdout.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"up\n");
    assert!(
        sandbox.cgroup().pids().contains(&(bwrap_pid as i32)),
        "bwrap joined the cgroup before it ran"
    );
    sandbox.signal(bwrap_pid, nix::sys::signal::Signal::SIGTERM);
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).await.unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(rest, "graceful\n");
    drop(sandbox);
    assert!(
        dirs.iter().all(|d| !d.exists()),
        "cgroups removed: {dirs:?}"
    );
}

#[tokio::test]
async fn unreachable_mount_sources_are_explained() {
    let support = support().await;
    let fixture = Fixture::new("closed", &[]);
    let spec = fixture.spec(limits(None, 64));
    fs::set_permissions(fixture.dir("bundles"), fs::Permissions::from_mode(0o700)).unwrap();
    let err = Sandbox::new(&support, spec).unwrap_err();
    assert!(err.0.contains("chmod o+x"), "{err}");
    assert!(err.0.contains("the bundle dir"), "{err}");
}

const PERL_SERVER: &str = r#"
use IO::Socket::UNIX;
my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Local => $ENV{IRONFAAS_SOCKET}, Listen => 8) or die "listen: $!";
while (my $c = $s->accept) {
    my $req = '';
    while ($req !~ /\r\n\r\n/) { my $n = sysread($c, $req, 4096, length $req); last unless $n; }
    print $c "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
    close $c;
}
"#;

/// Milliseconds from spawn to the first answered request.
async fn time_to_first_answer(
    mut cmd: tokio::process::Command,
    socket: &Path,
) -> (f64, tokio::process::Child) {
    let _ = fs::remove_file(socket);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let start = Instant::now();
    let child = cmd.spawn().unwrap();
    loop {
        if let Ok(mut stream) = tokio::net::UnixStream::connect(socket).await {
            use tokio::io::AsyncWriteExt;
            stream
                .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .unwrap();
            let mut answer = Vec::new();
            stream.read_to_end(&mut answer).await.unwrap();
            assert!(answer.starts_with(b"HTTP/1.1 200 OK"));
            return (start.elapsed().as_secs_f64() * 1000.0, child);
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no answer");
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

/// The minimum and the median.
fn min_median(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[0], v[v.len() / 2])
}

/// Start-up cost of the sandbox: process start to first answered request, median of 20,
/// with and without it, for a fast-starting server (perl) and python. A measurement, not a
/// check: run it with `--ignored --nocapture`.
#[tokio::test]
#[ignore = "a measurement: run with --ignored --nocapture"]
async fn startup_overhead() {
    let support = support().await;
    let fixture = Fixture::new(
        "bench",
        &[("server.pl", PERL_SERVER), ("server.py", SERVER)],
    );
    let runs = 20;
    for (label, program, script) in [
        ("perl", "/usr/bin/perl", "server.pl"),
        ("python3", "/usr/bin/python3", "server.py"),
    ] {
        let mut plain = Vec::new();
        let mut boxed = Vec::new();
        let mut setup = Vec::new();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port().to_string();
        for _ in 0..runs {
            let mut spec = fixture.spec(limits(Some(256 << 20), 64));
            if std::env::var_os("NOCPU").is_some() {
                spec.limits.cpu_millis = None;
            }
            let env = fixture.env(&spec);
            let socket = spec.socket_dir.as_ref().unwrap().join("r.sock");
            let script = spec.bundle_dir.join(script).display().to_string();
            let args = vec![script, port.clone()];

            let mut cmd = tokio::process::Command::new(program);
            cmd.args(&args).env_clear().envs(env.iter().cloned());
            let (ms, mut child) = time_to_first_answer(cmd, &socket).await;
            plain.push(ms);
            let _ = child.kill().await;

            let before = Instant::now();
            let sandbox = Sandbox::new(&support, spec).unwrap();
            let cmd = sandbox.command(Path::new(program), &args, &env).unwrap();
            setup.push(before.elapsed().as_secs_f64() * 1000.0);
            let (ms, mut child) = time_to_first_answer(cmd, &socket).await;
            boxed.push(ms);
            let _ = child.kill().await;
            let _ = child.wait().await;
            drop(sandbox);
        }
        let ((p_min, p), (b_min, b), (_, s)) =
            (min_median(plain), min_median(boxed), min_median(setup));
        println!(
            "{label}: unsandboxed {p:.1} ms (min {p_min:.1}), sandboxed {b:.1} ms (min \
             {b_min:.1}): +{:.1} ms median, +{:.1} ms min; creating the cgroup and command \
             {s:.1} ms; median of {runs}",
            b - p,
            b_min - p_min
        );
    }
}
