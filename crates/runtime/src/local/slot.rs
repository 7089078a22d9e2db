//! A replica slot: one task that keeps one replica of one version running. It starts the
//! process, waits until it answers, offers it to the gateway, restarts it with back-off when
//! it ends, and on stop drains it before terminating it.

use std::io::Write;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use ironfaas_spec::provider::{Backend, Endpoint};
use ironfaas_spec::template::Listen;
use ironfaas_spec::timestamp::format_rfc3339;
use ironfaas_spec::wire::InstanceStatus;
use nix::sys::signal::Signal;
use tokio::process::{Child, Command};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::logs::{LogStore, capture};
use super::readiness::{ChildPipe, ReadyPipe, wait_ready_or_signal};
use super::runspec::RunSpec;
use super::secrets::SecretStore;
use super::{LocalConfig, SpareMode};
use crate::process::{isolate_group, signal_group};
use crate::sandbox::{
    Identity, SECRETS_DIR, Sandbox, SandboxSpec, SandboxSupport, StartGate, UidAllocator, WORK_DIR,
    prepare_owned_dir, write_secrets,
};

/// The first pause before a restart; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// The longest pause between restarts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A replica that ran this long is considered healthy again: its back-off resets.
const HEALTHY_AFTER: Duration = Duration::from_secs(30);
/// Lines of output quoted when a start fails.
const TAIL_LINES: usize = 15;

/// Where a slot is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Its process runs but has not answered yet.
    Starting,
    /// It answers and takes requests.
    Ready,
    /// Its process ended; it waits before starting again.
    Backoff,
    /// It takes no new requests and finishes the ones it has.
    Draining,
    /// It has stopped for good.
    Stopped,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Ready => "ready",
            Phase::Backoff => "backoff",
            Phase::Draining => "draining",
            Phase::Stopped => "stopped",
        }
    }
}

/// How the first start of a slot went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Not decided yet.
    Pending,
    /// The replica became ready.
    Ready,
    /// It failed; the text says why, with its last output.
    Failed(String),
}

#[derive(Debug)]
struct SlotState {
    phase: Phase,
    pid: Option<u32>,
    endpoint: Option<Endpoint>,
    backend: Option<Arc<Backend>>,
    started_at: Option<SystemTime>,
    restarts: u64,
    last_exit: Option<String>,
}

/// What every slot of a provider shares.
#[derive(Clone)]
pub(crate) struct SlotContext {
    /// Provider settings.
    pub config: Arc<LocalConfig>,
    /// Unique numbers for backends and socket names.
    pub ids: Arc<AtomicU64>,
    /// The function's log.
    pub logs: Arc<LogStore>,
    /// The function's name, for logs.
    pub function: String,
    /// Where the function's secrets come from.
    pub secrets: Arc<SecretStore>,
    /// Function uids, when replicas are sandboxed.
    pub uids: Option<Arc<UidAllocator>>,
    /// Recomputes the function's ready backends; called after every phase change.
    pub publish: Arc<dyn Fn() + Send + Sync>,
}

/// One replica slot.
pub(crate) struct Slot {
    /// `function-N`, also the replica's HOSTNAME.
    pub name: String,
    /// What it runs.
    pub run: Arc<RunSpec>,
    state: Mutex<SlotState>,
    outcome: watch::Sender<Outcome>,
    cancel: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
    /// A spare: its first process builds its sandbox and waits before the program starts,
    /// until [`Slot::release`].
    held: AtomicBool,
    release: Notify,
}

/// What a spare's program waits behind.
enum Gate {
    /// bwrap waits for its seccomp filter: the program has not started.
    Sandbox(StartGate),
    /// The program has started and waits for a byte on its `IRONFAAS_START_FD`.
    Program(std::os::fd::OwnedFd),
}

impl Gate {
    fn open(self) -> Result<(), String> {
        match self {
            Gate::Sandbox(gate) => gate.open().map_err(|e| e.to_string()),
            Gate::Program(fd) => std::fs::File::from(fd)
                .write_all(b"s")
                .map_err(|e| format!("cannot tell the waiting program to start: {e}")),
        }
    }
}

/// A running replica process.
struct Running {
    /// Its sandbox (cgroup and all), while it runs sandboxed.
    sandbox: Option<Sandbox>,
    /// Where it says it is ready, until read.
    ready_pipe: Option<tokio::net::unix::pipe::Receiver>,
    child: Child,
    pid: Option<u32>,
    endpoint: Endpoint,
    output: [JoinHandle<()>; 2],
}

impl Slot {
    /// Creates the slot and starts its task.
    pub fn start(name: String, run: Arc<RunSpec>, ctx: SlotContext) -> Arc<Slot> {
        Slot::create(name, run, ctx, false)
    }

    /// Creates a spare that waits until [`Slot::release`]: a warm one (`--spare-sandbox warm`,
    /// a template with `start_fd`) with its program started, before it loads the function;
    /// another with its sandbox built, before the program starts (without the sandbox such a
    /// spare starts at once, like [`Slot::start`]).
    pub fn start_spare(name: String, run: Arc<RunSpec>, ctx: SlotContext) -> Arc<Slot> {
        Slot::create(name, run, ctx, true)
    }

    /// Lets a spare's program start (and every later start of this slot go straight on).
    pub fn release(&self) {
        self.held.store(false, Ordering::Relaxed);
        self.release.notify_one();
    }

    fn create(name: String, run: Arc<RunSpec>, ctx: SlotContext, held: bool) -> Arc<Slot> {
        let slot = Arc::new(Slot {
            name,
            run,
            state: Mutex::new(SlotState {
                phase: Phase::Starting,
                pid: None,
                endpoint: None,
                backend: None,
                started_at: None,
                restarts: 0,
                last_exit: None,
            }),
            outcome: watch::Sender::new(Outcome::Pending),
            cancel: CancellationToken::new(),
            task: Mutex::new(None),
            held: AtomicBool::new(held),
            release: Notify::new(),
        });
        let task = tokio::spawn(supervise(Arc::clone(&slot), ctx));
        *slot.task.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
        slot
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut SlotState) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The backend to route to, when ready.
    pub fn backend(&self) -> Option<Arc<Backend>> {
        self.with_state(|s| {
            if s.phase == Phase::Ready {
                s.backend.clone()
            } else {
                None
            }
        })
    }

    /// Whether it is ready.
    pub fn is_ready(&self) -> bool {
        self.with_state(|s| s.phase == Phase::Ready)
    }

    /// Requests in flight on it now.
    pub fn inflight(&self) -> u32 {
        self.with_state(|s| s.backend.as_ref().map_or(0, |b| b.inflight()))
    }

    /// Waits until the first start succeeded or failed, or `limit` passed.
    pub async fn first_outcome(&self, limit: Duration) -> Outcome {
        let mut rx = self.outcome.subscribe();
        let decided = tokio::time::timeout(limit, rx.wait_for(|o| *o != Outcome::Pending)).await;
        match decided {
            Ok(Ok(outcome)) => outcome.clone(),
            Ok(Err(_)) => {
                Outcome::Failed(format!("replica {} stopped before it was ready", self.name))
            }
            Err(_) => Outcome::Failed(format!(
                "replica {} was not ready after {}s",
                self.name,
                limit.as_secs()
            )),
        }
    }

    /// Drains and stops the replica; returns when its process is gone.
    pub async fn stop(&self) {
        self.cancel.cancel();
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    /// The replica as the API shows it.
    pub fn instance(&self) -> InstanceStatus {
        self.with_state(|s| InstanceStatus {
            name: self.name.clone(),
            pid: s.pid,
            endpoint: s
                .endpoint
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            state: s.phase.as_str().to_string(),
            started_at: s.started_at.map(format_rfc3339).unwrap_or_default(),
            restarts: s.restarts,
            last_exit: s.last_exit.clone().unwrap_or_default(),
            inflight: s.backend.as_ref().map_or(0, |b| u64::from(b.inflight())),
        })
    }

    fn set_phase(&self, phase: Phase, ctx: &SlotContext) {
        self.with_state(|s| {
            s.phase = phase;
            if phase != Phase::Ready && phase != Phase::Draining {
                s.backend = None;
            }
            if matches!(phase, Phase::Backoff | Phase::Stopped) {
                s.pid = None;
            }
        });
        (ctx.publish)();
    }

    fn fail(&self, why: String, ctx: &SlotContext) {
        let tail = ctx.logs.tail(&self.name, TAIL_LINES);
        let mut message = format!("replica {}: {why}", self.name);
        if !tail.is_empty() {
            message.push_str("; its last output:\n");
            for line in tail {
                message.push_str("    ");
                message.push_str(&line);
                message.push('\n');
            }
        }
        tracing::warn!("function {}: {}", ctx.function, message.trim_end());
        self.outcome.send_if_modified(|o| {
            let first = *o == Outcome::Pending;
            if first {
                *o = Outcome::Failed(message.trim_end().to_string());
            }
            first
        });
    }

    fn endpoint(&self, ctx: &SlotContext, id: u64) -> Result<Endpoint, String> {
        match self.run.listen {
            // A folder per replica: a sandboxed replica sees (and may write) its own only.
            Listen::Unix => Ok(Endpoint::Unix(
                ctx.config.run_dir.join(format!("r{id}")).join("s"),
            )),
            Listen::Tcp => free_port().map(Endpoint::Tcp),
        }
    }

    /// Writes the secrets the function declares into this replica's own folder on the host,
    /// readable by `identity` only; `None` when it declares none.
    fn write_secrets(
        &self,
        ctx: &SlotContext,
        identity: Identity,
    ) -> Result<Option<PathBuf>, String> {
        let run = &self.run;
        if run.secrets.is_empty() {
            return Ok(None);
        }
        let dir = ctx.config.run_dir.join("secrets").join(&self.name);
        let values: Vec<(String, Vec<u8>)> = run
            .secrets
            .iter()
            .map(|name| {
                ctx.secrets
                    .read(name, &run.function.namespace)
                    .map(|v| (name.clone(), v))
            })
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        let borrowed: Vec<(&str, &[u8])> = values
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        write_secrets(&dir, identity, &borrowed).map_err(|e| e.to_string())?;
        Ok(Some(dir))
    }

    /// The sandbox for one start of this replica: its own socket dir, its secrets, the
    /// function's uid and limits.
    fn sandbox(
        &self,
        ctx: &SlotContext,
        support: &SandboxSupport,
        socket_dir: Option<&std::path::Path>,
    ) -> Result<Sandbox, String> {
        let run = &self.run;
        let uids = ctx
            .uids
            .as_ref()
            .ok_or("sandboxing needs the uid allocator")?;
        let identity = uids.identity(&run.function).map_err(|e| e.to_string())?;
        if let Some(dir) = socket_dir {
            prepare_owned_dir(dir, identity, 0o700).map_err(|e| e.to_string())?;
        }
        let secrets_dir = self.write_secrets(ctx, identity)?;
        let work_dir = if run.writable {
            let dir = work_dir(ctx, run);
            prepare_owned_dir(&dir, identity, 0o700).map_err(|e| e.to_string())?;
            Some(dir)
        } else {
            None
        };
        let spec = SandboxSpec {
            function: run.function.clone(),
            replica: self.name.clone(),
            cgroup: format!("{}-{}", ctx.config.instance(), self.name),
            identity,
            bundle_dir: run.cwd.clone(),
            socket_dir: socket_dir.map(std::path::Path::to_path_buf),
            work_dir,
            secrets_dir,
            network: run.network,
            limits: run.resources,
            hidden: vec![ctx.config.data_dir.clone()],
            tmp_size: None,
        };
        Sandbox::new(support, spec).map_err(|e| e.to_string())
    }

    /// Starts the replica's process; for a `held` spare also returns the gate it waits behind.
    fn spawn(
        &self,
        ctx: &SlotContext,
        endpoint: &Endpoint,
        held: bool,
    ) -> Result<(Running, Option<Gate>), String> {
        let run = &self.run;
        let pipe = ReadyPipe::new().map_err(|e| format!("cannot create the ready pipe: {e}"))?;
        let mut env = run.env.clone();
        env.push(("HOSTNAME".into(), self.name.clone()));
        env.push(pipe.env());
        // A warm spare: the program starts now and waits on its start pipe (so its sandbox is
        // not held); any other spare is held by its sandbox, before the program starts.
        let start_pipe = if held && run.start_fd && ctx.config.spare == SpareMode::Warm {
            let start =
                ChildPipe::start().map_err(|e| format!("cannot create the start pipe: {e}"))?;
            env.push(start.env());
            Some(start)
        } else {
            None
        };
        match endpoint {
            Endpoint::Unix(path) => {
                let _ = std::fs::remove_file(path);
                if let Some(dir) = path.parent() {
                    create_private_dir(dir)?;
                }
                env.push(("IRONFAAS_SOCKET".into(), path.display().to_string()));
            }
            Endpoint::Tcp(addr) => {
                env.push(("PORT".into(), addr.port().to_string()));
                env.push(("HOST".into(), addr.ip().to_string()));
            }
        }
        if run.writable {
            let dir = match &ctx.config.sandbox {
                Some(_) => PathBuf::from(WORK_DIR),
                None => {
                    let dir = work_dir(ctx, run);
                    std::fs::create_dir_all(&dir)
                        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                    dir
                }
            };
            env.push(("IRONFAAS_WORK_DIR".into(), dir.display().to_string()));
        }
        let hold_sandbox = held && start_pipe.is_none();
        let mut gate = None;
        let (mut cmd, sandbox) = match &ctx.config.sandbox {
            Some(support) => {
                if !run.secrets.is_empty() {
                    env.push(("IRONFAAS_SECRETS_DIR".into(), SECRETS_DIR.into()));
                }
                let socket_dir = match endpoint {
                    Endpoint::Unix(path) => path.parent(),
                    Endpoint::Tcp(_) => None,
                };
                let sandbox = self.sandbox(ctx, support, socket_dir)?;
                let cmd = if hold_sandbox {
                    let (cmd, held_gate) = sandbox
                        .held_command(&run.program, &run.args, &env)
                        .map_err(|e| e.to_string())?;
                    gate = Some(Gate::Sandbox(held_gate));
                    cmd
                } else {
                    sandbox
                        .command(&run.program, &run.args, &env)
                        .map_err(|e| e.to_string())?
                };
                (cmd, Some(sandbox))
            }
            None => {
                // Without the sandbox nothing can show the secrets at /var/openfaas/secrets:
                // they go in the replica's own folder (readable by the platform's user only),
                // named by IRONFAAS_SECRETS_DIR.
                if let Some(dir) = self.write_secrets(ctx, Identity::current())? {
                    env.push(("IRONFAAS_SECRETS_DIR".into(), dir.display().to_string()));
                }
                let mut cmd = Command::new(&run.program);
                cmd.args(&run.args)
                    .env_clear()
                    .envs(env.iter().map(|(k, v)| (k, v)))
                    .current_dir(&run.cwd);
                (cmd, None)
            }
        };
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        isolate_group(&mut cmd);
        pipe.give_to(&mut cmd);
        if let Some(start) = &start_pipe {
            start.give_to(&mut cmd);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", run.program.display()))?;
        let ready_pipe = pipe.into_receiver().ok();
        let stdout = child
            .stdout
            .take()
            .map(|r| capture(r, ctx.logs.clone(), self.name.clone()));
        let stderr = child
            .stderr
            .take()
            .map(|r| capture(r, ctx.logs.clone(), self.name.clone()));
        let (Some(stdout), Some(stderr)) = (stdout, stderr) else {
            return Err("the replica's output pipes were not set up".into());
        };
        let pid = child.id();
        self.with_state(|s| {
            s.pid = pid;
            s.endpoint = Some(endpoint.clone());
            s.started_at = Some(SystemTime::now());
        });
        let running = Running {
            sandbox,
            ready_pipe,
            child,
            pid,
            endpoint: endpoint.clone(),
            output: [stdout, stderr],
        };
        if let Some(start) = start_pipe {
            gate = Some(Gate::Program(start.into_kept()));
        }
        Ok((running, gate))
    }
}

/// The function's private writable folder on the host (`IRONFAAS_WORK_DIR`), shared by its
/// replicas and kept across restarts.
fn work_dir(ctx: &SlotContext, run: &RunSpec) -> PathBuf {
    ctx.config
        .data_dir
        .join("work")
        .join(&run.function.namespace)
        .join(&run.function.name)
}

/// Sleeps `pause`, or returns false at once when the slot is stopped.
async fn pause_or_stop(slot: &Slot, pause: Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(pause) => true,
        () = slot.cancel.cancelled() => false,
    }
}

/// Terminates a replica: SIGTERM to its group, SIGKILL after `grace`.
async fn terminate(running: &mut Running, grace: Duration) {
    if let Some(pid) = running.pid {
        match &running.sandbox {
            // SIGTERM to bwrap would end the sandbox at once: signal the function itself.
            Some(sandbox) => sandbox.signal(pid, Signal::SIGTERM),
            None => signal_group(pid, Signal::SIGTERM),
        }
        if tokio::time::timeout(grace, running.child.wait())
            .await
            .is_err()
        {
            signal_group(pid, Signal::SIGKILL);
        }
        // Whatever it forked goes with it.
        signal_group(pid, Signal::SIGKILL);
    }
    if let Some(sandbox) = &running.sandbox {
        sandbox.kill();
    }
    let _ = running.child.wait().await;
}

/// Waits (bounded) for the output readers, so the last lines are in the ring.
async fn flush_output(running: &mut Running) {
    for reader in &mut running.output {
        let _ = tokio::time::timeout(Duration::from_millis(200), reader).await;
    }
}

/// After the replica's process ended: its last output, whatever it forked, its sandbox and its
/// endpoint.
async fn clear_after_exit(running: &mut Running) {
    flush_output(running).await;
    // Whatever it forked goes with it.
    if let Some(pid) = running.pid {
        signal_group(pid, Signal::SIGKILL);
    }
    if let Some(sandbox) = &running.sandbox {
        sandbox.kill();
    }
    cleanup(&running.endpoint);
}

fn cleanup(endpoint: &Endpoint) {
    match endpoint {
        Endpoint::Unix(path) => {
            let _ = std::fs::remove_file(path);
            if let Some(dir) = path.parent() {
                let _ = std::fs::remove_dir(dir);
            }
        }
        Endpoint::Tcp(addr) => {
            ports_given().remove(&addr.port());
        }
    }
}

/// Loopback ports handed to replicas that have not stopped yet.
fn ports_given() -> std::sync::MutexGuard<'static, std::collections::HashSet<u16>> {
    static GIVEN: std::sync::OnceLock<Mutex<std::collections::HashSet<u16>>> =
        std::sync::OnceLock::new();
    GIVEN
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// A free loopback port for a replica that listens on TCP. The kernel's free port is free
/// only until someone binds it: one handed to a replica that has not bound it yet could be
/// handed out again when many replicas start at once, so ports given and not yet returned are
/// skipped (the probes stay bound meanwhile, so the kernel offers other ones).
fn free_port() -> Result<std::net::SocketAddr, String> {
    let mut probes = Vec::new();
    let mut given = ports_given();
    for _ in 0..64 {
        let probe = std::net::TcpListener::bind(("127.0.0.1", 0))
            .map_err(|e| format!("cannot find a free port: {e}"))?;
        let addr = probe
            .local_addr()
            .map_err(|e| format!("cannot find a free port: {e}"))?;
        if given.insert(addr.port()) {
            return Ok(addr);
        }
        probes.push(probe);
    }
    Err("cannot find a free port: 64 tries all gave ports handed to replicas already".into())
}

/// Creates a replica's socket folder, mode 0700 (the sandbox then gives it to the function's
/// uid).
fn create_private_dir(dir: &std::path::Path) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!("cannot create {}: {e}", dir.display())),
    }
}

async fn supervise(slot: Arc<Slot>, ctx: SlotContext) {
    let config = Arc::clone(&ctx.config);
    let mut backoff = FIRST_BACKOFF;
    while !slot.cancel.is_cancelled() {
        let id = ctx.ids.fetch_add(1, Ordering::Relaxed);
        // A spare stays held (a failed or ended spare is made again, still waiting) until it
        // is released.
        let held = slot.held.load(Ordering::Relaxed);
        let started = slot
            .endpoint(&ctx, id)
            .and_then(|ep| slot.spawn(&ctx, &ep, held).inspect_err(|_| cleanup(&ep)));
        let mut running = match started {
            Ok((mut running, Some(gate))) => {
                // A spare: its sandbox is built; the program starts when it is released.
                tokio::select! {
                    () = slot.release.notified() => {}
                    status = running.child.wait() => {
                        // The waiting process ended (killed, or bwrap failed): make it again.
                        drop(gate);
                        clear_after_exit(&mut running).await;
                        let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
                        // Not a failed start: nobody waits for a spare yet.
                        tracing::warn!(
                            "function {}: spare {} ended while waiting ({status}); making it again",
                            ctx.function, slot.name
                        );
                        slot.set_phase(Phase::Backoff, &ctx);
                        if !pause_or_stop(&slot, backoff).await {
                            break;
                        }
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                    () = slot.cancel.cancelled() => {
                        drop(gate);
                        terminate(&mut running, Duration::ZERO).await;
                        cleanup(&running.endpoint);
                        break;
                    }
                }
                slot.with_state(|s| s.started_at = Some(SystemTime::now()));
                // A gate that cannot open leaves bwrap without its filter: it exits, and the
                // readiness wait below reports that and restarts the replica.
                if let Err(e) = gate.open() {
                    tracing::warn!("function {}: replica {}: {e}", ctx.function, slot.name);
                }
                running
            }
            Ok((running, None)) => running,
            Err(why) => {
                slot.fail(why, &ctx);
                slot.set_phase(Phase::Backoff, &ctx);
                if !pause_or_stop(&slot, backoff).await {
                    break;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        slot.set_phase(Phase::Starting, &ctx);
        let ready = tokio::select! {
            r = wait_ready_or_signal(
                &running.endpoint,
                &slot.run.ready_path,
                &mut running.child,
                config.ready_timeout,
                running.ready_pipe.take(),
            ) => r,
            () = slot.cancel.cancelled() => {
                terminate(&mut running, config.stop_grace).await;
                cleanup(&running.endpoint);
                break;
            }
        };
        if let Err(why) = ready {
            terminate(&mut running, Duration::ZERO).await;
            flush_output(&mut running).await;
            cleanup(&running.endpoint);
            slot.with_state(|s| s.restarts += 1);
            slot.fail(why.to_string(), &ctx);
            slot.set_phase(Phase::Backoff, &ctx);
            if !pause_or_stop(&slot, backoff).await {
                break;
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
            continue;
        }
        let backend = Arc::new(Backend::new(
            id,
            slot.name.clone(),
            running.endpoint.clone(),
            slot.run.limits,
        ));
        slot.with_state(|s| s.backend = Some(Arc::clone(&backend)));
        slot.set_phase(Phase::Ready, &ctx);
        slot.outcome.send_if_modified(|o| {
            let first = *o == Outcome::Pending;
            if first {
                *o = Outcome::Ready;
            }
            first
        });
        let up_since = Instant::now();
        tokio::select! {
            status = running.child.wait() => {
                backend.drain();
                slot.set_phase(Phase::Backoff, &ctx);
                clear_after_exit(&mut running).await;
                let mut status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
                if let Some(reason) = running.sandbox.as_ref().and_then(Sandbox::exit_reason) {
                    status = format!("{status}, {reason}");
                }
                ctx.logs.push(&slot.name, format!("[ironfaas] replica {} exited ({status}); restarting", slot.name));
                slot.with_state(|s| {
                    s.restarts += 1;
                    s.last_exit = Some(status.clone());
                });
                if up_since.elapsed() >= HEALTHY_AFTER {
                    backoff = FIRST_BACKOFF;
                }
                tracing::warn!(
                    "function {}: replica {} exited ({status}); restarting in {}ms",
                    ctx.function, slot.name, backoff.as_millis()
                );
                if !pause_or_stop(&slot, backoff).await {
                    break;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            () = slot.cancel.cancelled() => {
                backend.drain();
                slot.set_phase(Phase::Draining, &ctx);
                let drain_until = Instant::now() + slot.run.drain_timeout(&config);
                while backend.inflight() > 0 && Instant::now() < drain_until {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                terminate(&mut running, config.stop_grace).await;
                cleanup(&running.endpoint);
                break;
            }
        }
    }
    slot.set_phase(Phase::Stopped, &ctx);
    slot.outcome.send_if_modified(|o| {
        let first = *o == Outcome::Pending;
        if first {
            *o = Outcome::Failed(format!(
                "replica {} was stopped before it was ready",
                slot.name
            ));
        }
        first
    });
}

/// Where unix sockets of replicas go: under the data dir when the path is short enough for a
/// socket address, else a per-data-dir folder in the temp dir.
pub(crate) fn run_dir_for(data_dir: &std::path::Path) -> PathBuf {
    let preferred = data_dir.join("run");
    // sun_path holds 108 bytes with the final NUL; leave room for "/r<20 digits>/s".
    if preferred.as_os_str().len() <= 80 {
        return preferred;
    }
    let hash = data_dir
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        });
    std::env::temp_dir().join(format!("ironfaas-{hash:016x}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_handed_out_are_never_handed_out_twice_until_returned() {
        let ports: Vec<std::net::SocketAddr> = (0..300).map(|_| free_port().unwrap()).collect();
        let distinct: std::collections::HashSet<u16> = ports.iter().map(|a| a.port()).collect();
        assert_eq!(distinct.len(), ports.len(), "a port was handed out twice");
        for addr in &ports {
            cleanup(&Endpoint::Tcp(*addr));
        }
        assert!(
            ports.iter().all(|a| !ports_given().contains(&a.port())),
            "returned ports can be handed out again"
        );
    }
}
