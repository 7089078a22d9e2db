//! Replicas in a sandbox: bubblewrap for the namespaces and mounts, cgroups for the limits, a
//! seccomp deny-list for the usual escape system calls, and an unprivileged uid per function.
//!
//! How a sandboxed replica starts (see [`Sandbox::command`]): the platform (root) creates the
//! replica's cgroups with their limits and builds a `bwrap` command line. Between fork and exec
//! the child joins those cgroups (so the function never runs unlimited), drops to the
//! function's uid/gid with no supplementary groups, sets no-new-privileges and the parent-death
//! signal, and only then execs `bwrap`. bwrap itself therefore runs unprivileged: it creates a
//! user namespace that maps only the function's uid to itself, plus mount, PID, IPC, UTS,
//! cgroup (and, with `network: false`, network) namespaces, mounts the view described below, drops every
//! capability (the bounding set too), installs the seccomp filter and execs the function.
//!
//! What a function sees:
//! - the host file system read-only, as any unprivileged local user would (files it may not
//!   read stay unreadable), with `/proc` (its own PID namespace only), a minimal `/dev`, a
//!   writable tmpfs `/tmp` (and `/dev/shm`; `/var/tmp` links to `/tmp`), and its own empty,
//!   read-only `/run`, `/var` and `/home` instead of the host's (host state and users' files
//!   stay out);
//! - the paths in [`SandboxSpec::hidden`] (the platform's data dir: bundles, secrets, queue)
//!   replaced by empty read-only directories;
//! - its bundle read-only at [`BUNDLE_DIR`] (also its working directory), its secrets
//!   read-only at [`SECRETS_DIR`], its socket directory writable at [`SOCKET_DIR`], and, when
//!   the root file system is not read-only for it, a writable work dir at [`WORK_DIR`].
//!
//! Paths in the program, its arguments and its environment that point into the bundle, socket,
//! secrets or work dir are rewritten to where the sandbox shows them; for example
//! `IRONFAAS_SOCKET=/var/lib/ironfaas/run/r7/r7.sock` becomes `/run/ironfaas/r7.sock`.
//!
//! Stopping: SIGTERM must reach the function, not bwrap (bwrap would die at once and take the
//! function with it): use [`Sandbox::signal`], then SIGKILL the process group (or
//! [`Sandbox::kill`]) after the grace period. After the process ended, [`Sandbox::exit_reason`]
//! says whether the memory limit killed it, and dropping the [`Sandbox`] removes its cgroups.
//!
//! [`SandboxSupport::detect`] says whether this machine can sandbox at all and, if not, exactly
//! what is missing and how to fix it; [`user_namespaces`], [`seccomp_support`] and
//! [`try_bwrap`] explain a failed test sandbox further (for `ironfaas doctor`).
//!
//! Start-up cost (the `startup_overhead` test measures it): bwrap's own work (three processes,
//! the namespaces, about twenty mounts) takes about 5 ms at best on a 2-core machine, but it
//! hands control between processes several times, so on a busy machine it grows with the
//! scheduling delay. Joining a cgroup can wait for an RCU grace period (7-20 ms measured on a
//! busy machine) when no other cgroup migration happened just before; the kernel's
//! `favordynmods` cgroup mount option (Linux 6.0+) is meant to remove that wait (not measured).

mod cgroup;
mod dirs;
mod launch;
mod mounts;
mod seccomp;
mod support;
#[cfg(test)]
mod tests;
mod uids;
mod userns;

pub use ironfaas_spec::names::FunctionRef;
use std::path::PathBuf;

use ironfaas_spec::stack::quantity::{parse_cpu_millis, parse_memory};
use ironfaas_spec::wire::{FunctionResources, FunctionSpec};

pub use cgroup::{Cgroup, CgroupRoot, CgroupVersion};
pub use dirs::{prepare_owned_dir, write_secrets};
pub use launch::Sandbox;
pub use seccomp::{StartGate, seccomp_support};
pub use support::{SandboxSupport, try_bwrap};
pub use uids::UidAllocator;
pub use userns::user_namespaces;

/// Where the bundle appears inside the sandbox (read-only; also the working directory).
pub const BUNDLE_DIR: &str = "/home/app";
/// Where the function's secrets appear, one read-only file per secret (OpenFaaS' path).
pub const SECRETS_DIR: &str = "/var/openfaas/secrets";
/// Where the replica's socket directory appears (writable).
pub const SOCKET_DIR: &str = "/run/ironfaas";
/// Where the writable work dir appears when the root file system is not read-only.
pub const WORK_DIR: &str = "/var/openfaas/work";
/// The annotation that turns the network off for a function (`none`).
pub const NETWORK_ANNOTATION: &str = "com.ironfaas.network";

/// Whether `spec` keeps the network: everything but `com.ironfaas.network: none` does.
pub fn wants_network(spec: &FunctionSpec) -> bool {
    spec.annotation(NETWORK_ANNOTATION)
        .is_none_or(|v| !v.trim().eq_ignore_ascii_case("none"))
}

/// Why a sandbox could not be set up; the text says what failed and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SandboxError(pub String);

impl SandboxError {
    fn new(message: impl Into<String>) -> SandboxError {
        SandboxError(message.into())
    }
}

/// The unprivileged user and group a function runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Identity {
    /// Its uid (never 0).
    pub uid: u32,
    /// Its gid (never 0).
    pub gid: u32,
}

impl Identity {
    /// The platform's own uid and gid (for a replica that runs without the sandbox).
    pub fn current() -> Identity {
        Identity {
            uid: nix::unistd::getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
        }
    }
}

/// What a replica may use, enforced by its cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Memory in bytes (no swap on top); `None` for no limit.
    pub memory_bytes: Option<u64>,
    /// CPU time in millicores (`500` = half a core); `None` for no limit.
    pub cpu_millis: Option<u64>,
    /// Processes and threads, bwrap's two included.
    pub pids: u64,
}

impl Limits {
    /// The pids limit when none is configured: plenty for thread pools, far from a fork bomb.
    pub const DEFAULT_PIDS: u64 = 512;

    /// Limits from a deployment's `limits` (`memory: 128Mi`, `cpu: 500m`), empty fields
    /// meaning no limit, with `pids` processes at most.
    pub fn from_resources(
        resources: Option<&FunctionResources>,
        pids: u64,
    ) -> Result<Limits, SandboxError> {
        let text = |s: Option<&String>| s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        let memory = text(resources.map(|r| &r.memory));
        let cpu = text(resources.map(|r| &r.cpu));
        let memory_bytes = memory
            .map(|m| parse_memory(&m))
            .transpose()
            .map_err(|e| SandboxError(format!("limits.memory: {e}")))?;
        let cpu_millis = cpu
            .map(|c| parse_cpu_millis(&c))
            .transpose()
            .map_err(|e| SandboxError(format!("limits.cpu: {e}")))?;
        if memory_bytes == Some(0) {
            return Err(SandboxError::new(
                "limits.memory is 0: no process can run in it; set a size like '128Mi' or remove it",
            ));
        }
        if cpu_millis == Some(0) {
            return Err(SandboxError::new(
                "limits.cpu is 0: no process can run on it; set an amount like '500m' or remove it",
            ));
        }
        if pids < 4 {
            return Err(SandboxError(format!(
                "a pids limit of {pids} leaves no room for the function: bwrap needs two \
                 processes of its own; allow at least 4"
            )));
        }
        Ok(Limits {
            memory_bytes,
            cpu_millis,
            pids,
        })
    }

    /// The memory limit as people write it: `128Mi`, `1Gi`, else bytes.
    pub fn memory_text(&self) -> Option<String> {
        self.memory_bytes.map(format_bytes)
    }
}

/// `bytes` in the largest binary unit that divides it exactly (`128Mi`), else in bytes.
fn format_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("Ti", 1 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ];
    UNITS
        .iter()
        .find(|(_, size)| bytes >= *size && bytes.is_multiple_of(*size))
        .map_or_else(
            || bytes.to_string(),
            |(unit, size)| format!("{}{unit}", bytes / size),
        )
}

/// Everything that defines one replica's sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxSpec {
    /// The function it runs.
    pub function: FunctionRef,
    /// The replica's name (`[A-Za-z0-9._-]`): its hostname.
    pub replica: String,
    /// Its cgroup's name (`[A-Za-z0-9._-]`), unique on the machine: a cgroup left by an
    /// earlier run under the same name is removed, processes and all.
    pub cgroup: String,
    /// The uid/gid it runs as (see [`UidAllocator`]).
    pub identity: Identity,
    /// The unpacked bundle on the host, shown read-only at [`BUNDLE_DIR`].
    pub bundle_dir: PathBuf,
    /// The replica's own socket directory on the host, shown writable at [`SOCKET_DIR`]. It
    /// must be private to this replica (other replicas' sockets would be reachable through
    /// it) and owned by the function's uid: see [`prepare_owned_dir`].
    pub socket_dir: Option<PathBuf>,
    /// A private writable directory on the host, shown at [`WORK_DIR`]; `None` when the
    /// function has a read-only root file system.
    pub work_dir: Option<PathBuf>,
    /// The function's secrets on the host, shown read-only at [`SECRETS_DIR`]: only the
    /// secrets it declares, each mode 0400 and owned by its uid (see [`write_secrets`]).
    pub secrets_dir: Option<PathBuf>,
    /// Whether it shares the host's network; `false` gives it a network namespace with only
    /// a loopback interface (it is still reached over its Unix socket).
    pub network: bool,
    /// Its memory, CPU and pids limits.
    pub limits: Limits,
    /// Host paths it must not see at all: the platform's data dir, at least.
    pub hidden: Vec<PathBuf>,
    /// The size of its `/tmp` (tmpfs, counted against its memory limit); `None` for the
    /// kernel's default (half the RAM), which the memory limit still caps.
    pub tmp_size: Option<u64>,
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    fn resources(memory: &str, cpu: &str) -> FunctionResources {
        FunctionResources {
            memory: memory.into(),
            cpu: cpu.into(),
            ..Default::default()
        }
    }

    #[test]
    fn limits_from_quantities() {
        let l = Limits::from_resources(Some(&resources("128Mi", "500m")), 64).unwrap();
        assert_eq!(l.memory_bytes, Some(128 << 20));
        assert_eq!(l.cpu_millis, Some(500));
        assert_eq!(l.pids, 64);
        assert_eq!(l.memory_text().as_deref(), Some("128Mi"));
        let none = Limits::from_resources(Some(&resources(" ", "")), 64).unwrap();
        assert_eq!((none.memory_bytes, none.cpu_millis), (None, None));
        assert_eq!(Limits::from_resources(None, 64).unwrap(), none);
    }

    #[test]
    fn bad_limits_are_explained() {
        let err = |m: &str, c: &str, p: u64| {
            Limits::from_resources(Some(&resources(m, c)), p)
                .unwrap_err()
                .0
        };
        assert!(err("lots", "", 64).starts_with("limits.memory: 'lots'"));
        assert!(err("", "fast", 64).starts_with("limits.cpu: 'fast'"));
        assert!(err("0", "", 64).contains("limits.memory is 0"));
        assert!(err("", "0m", 64).contains("limits.cpu is 0"));
        assert!(err("", "", 2).contains("at least 4"));
    }

    #[test]
    fn the_network_annotation_turns_it_off() {
        let mut spec = FunctionSpec::default();
        assert!(wants_network(&spec));
        spec.annotations = Some(
            [(NETWORK_ANNOTATION.to_string(), "none".to_string())]
                .into_iter()
                .collect(),
        );
        assert!(!wants_network(&spec));
    }

    #[test]
    fn byte_counts_read_like_limits() {
        assert_eq!(format_bytes(64 << 20), "64Mi");
        assert_eq!(format_bytes(1 << 30), "1Gi");
        assert_eq!(format_bytes(1536 << 20), "1536Mi");
        assert_eq!(format_bytes(1000), "1000");
    }
}
