//! Whether this machine can sandbox replicas, and if not, what exactly is missing and how to
//! fix it: for `ironfaas doctor` and the one warning at start-up. Without sandboxing the
//! platform still runs, with replicas as plain processes of its own user.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::cgroup::CgroupRoot;
use super::{FunctionRef, Identity, Limits, Sandbox, SandboxError, SandboxSpec};

/// The uid the probe sandbox runs as: just below the functions' default range.
const PROBE_UID: u32 = 199_999;
/// Probes started by this process, for unique cgroup names.
static PROBES: AtomicU64 = AtomicU64::new(0);
/// How long the probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// What sandboxing needs, each part found or not (with what to do about it).
#[derive(Debug, Clone)]
pub struct SandboxSupport {
    root: Result<(), String>,
    bwrap: Result<(PathBuf, String), String>,
    cgroups: Result<CgroupRoot, String>,
    /// `None` when not tried: something the test sandbox needs is missing.
    probe: Option<Result<(), String>>,
}

impl SandboxSupport {
    /// Looks at this machine: root, bubblewrap, cgroup controllers, and then starts one
    /// throwaway sandbox to prove namespaces, mounts, cgroups and seccomp work together.
    pub async fn detect() -> SandboxSupport {
        let root = if nix::unistd::geteuid().is_root() {
            Ok(())
        } else {
            Err(
                "ironfaas does not run as root: sandboxes need it to give each function its \
                 own uid and cgroup limits; run it as root (for example from the systemd unit)"
                    .to_string(),
            )
        };
        let bwrap = find_bwrap().await;
        let cgroups = CgroupRoot::detect().map_err(|e| e.0);
        let mut support = SandboxSupport {
            root,
            bwrap,
            cgroups,
            probe: None,
        };
        if support.root.is_ok() && support.bwrap.is_ok() && support.cgroups.is_ok() {
            // The probe builds its sandbox through the same checks as a replica's, which
            // require a passed probe: let it through for the test itself.
            support.probe = Some(Ok(()));
            support.probe = Some(probe(&support).await);
        }
        support
    }

    /// Whether replicas can be sandboxed.
    pub fn is_ready(&self) -> bool {
        self.missing().is_empty()
    }

    /// What is missing, one sentence each with how to fix it; empty when ready.
    pub fn missing(&self) -> Vec<String> {
        [
            self.root.as_ref().err(),
            self.bwrap.as_ref().err(),
            self.cgroups.as_ref().err(),
            self.probe.as_ref().and_then(|p| p.as_ref().err()),
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect()
    }

    /// Ok when the platform runs as root (sandboxes need it), else why it should.
    pub fn root(&self) -> Result<(), &str> {
        self.root.as_ref().map_err(String::as_str).copied()
    }

    /// bubblewrap's path and version (`bubblewrap 0.8.0`), else how to install it.
    pub fn bwrap(&self) -> Result<(&Path, &str), &str> {
        match &self.bwrap {
            Ok((path, version)) => Ok((path, version)),
            Err(e) => Err(e),
        }
    }

    /// Where replicas' cgroups go, else which controllers are missing.
    pub fn cgroups(&self) -> Result<&CgroupRoot, &str> {
        self.cgroups.as_ref().map_err(String::as_str)
    }

    /// Whether a test sandbox built exactly as a replica's ran; `None` when it was not tried
    /// because root, bubblewrap or the cgroups are missing.
    pub fn probe(&self) -> Option<Result<(), &str>> {
        self.probe
            .as_ref()
            .map(|p| p.as_ref().map_err(String::as_str).copied())
    }

    /// bubblewrap and the cgroup root, or everything that is missing.
    pub(crate) fn ready(&self) -> Result<(&Path, &CgroupRoot), SandboxError> {
        match (&self.root, &self.bwrap, &self.cgroups, &self.probe) {
            (Ok(()), Ok((bwrap, _)), Ok(cgroups), Some(Ok(()))) => Ok((bwrap, cgroups)),
            _ => Err(SandboxError(format!(
                "this machine cannot sandbox replicas: {}",
                self.missing().join("; ")
            ))),
        }
    }
}

impl fmt::Display for SandboxSupport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.bwrap, &self.cgroups, self.missing()) {
            (Ok((path, version)), Ok(cgroups), missing) if missing.is_empty() => write!(
                f,
                "replicas run sandboxed: {version} ({}), cgroup {:?} in {}",
                path.display(),
                cgroups.version(),
                cgroups
                    .dirs()
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            (_, _, missing) => write!(
                f,
                "replicas run unsandboxed, as plain processes of the platform's user, without \
                 memory, CPU or process limits: {}",
                missing.join("; ")
            ),
        }
    }
}

async fn find_bwrap() -> Result<(PathBuf, String), String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("bwrap"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            "bubblewrap (bwrap) is not installed: `apt-get install bubblewrap` (Debian, \
             Ubuntu), `dnf install bubblewrap` (Fedora), `apk add bubblewrap` (Alpine)"
                .to_string()
        })?;
    let output = tokio::process::Command::new(&found)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("cannot run {}: {e}", found.display()))?;
    let version = String::from_utf8_lossy(&output.stdout).trim().to_string();
    Ok((found, version))
}

/// Why a test sandbox did not start, with what bubblewrap needs.
fn sandbox_failed(why: String) -> String {
    format!(
        "a test sandbox did not start: {why}. bubblewrap needs user namespaces \
         (sysctl kernel.unprivileged_userns_clone=1 and user.max_user_namespaces > 0; \
         not blocked by AppArmor or a container's seccomp profile) and version 0.8 or \
         later"
    )
}

/// `/usr/bin/true` (or `/bin/true`): what test sandboxes run.
fn true_program() -> Result<&'static Path, String> {
    ["/usr/bin/true", "/bin/true"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .ok_or_else(|| sandbox_failed("neither /usr/bin/true nor /bin/true exists".into()))
}

/// Runs `bwrap` once as this process's user, with a user and PID namespace, a fresh `/proc`
/// and the host's root read-only: whether bubblewrap works here at all, for `ironfaas doctor`
/// when the full test sandbox (root only) cannot run or failed.
pub async fn try_bwrap(bwrap: &Path) -> Result<(), String> {
    let program = true_program()?;
    let mut cmd = tokio::process::Command::new(bwrap);
    cmd.args(["--unshare-user", "--unshare-pid", "--die-with-parent"])
        .args(["--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev"])
        .arg(program)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let run = async {
        let output = cmd
            .output()
            .await
            .map_err(|e| format!("cannot start {}: {e}", bwrap.display()))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "bwrap said: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    };
    tokio::time::timeout(PROBE_TIMEOUT, run)
        .await
        .map_err(|_| format!("it did not finish in {}s", PROBE_TIMEOUT.as_secs()))
        .and_then(|r| r)
        .map_err(sandbox_failed)
}

/// Runs `true` in a sandbox built exactly as a replica's, with every feature turned on.
async fn probe(support: &SandboxSupport) -> Result<(), String> {
    let fail = sandbox_failed;
    let program = true_program()?;
    let bundle = program.parent().unwrap_or(Path::new("/"));
    let replica = format!(
        "probe-{}-{}",
        std::process::id(),
        PROBES.fetch_add(1, Ordering::Relaxed)
    );
    let spec = SandboxSpec {
        function: FunctionRef::new("probe", "ironfaas"),
        cgroup: replica.clone(),
        replica,
        identity: Identity {
            uid: PROBE_UID,
            gid: PROBE_UID,
        },
        bundle_dir: bundle.to_path_buf(),
        socket_dir: None,
        work_dir: None,
        secrets_dir: None,
        network: false,
        limits: Limits {
            memory_bytes: Some(64 << 20),
            cpu_millis: Some(1000),
            pids: 16,
        },
        hidden: Vec::new(),
        tmp_size: Some(1 << 20),
    };
    let sandbox = Sandbox::new(support, spec).map_err(|e| fail(e.0))?;
    let mut cmd = sandbox.command(program, &[], &[]).map_err(|e| fail(e.0))?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let run = async {
        let output = cmd
            .output()
            .await
            .map_err(|e| format!("cannot start bwrap: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "bwrap said: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    };
    let result = tokio::time::timeout(PROBE_TIMEOUT, run)
        .await
        .map_err(|_| format!("it did not finish in {}s", PROBE_TIMEOUT.as_secs()))
        .and_then(|r| r);
    drop(sandbox);
    result.map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_missing_is_said_with_the_fix() {
        let support = SandboxSupport {
            root: Err("ironfaas does not run as root: run it as root".into()),
            bwrap: Err("bubblewrap (bwrap) is not installed: `apt-get install bubblewrap`".into()),
            cgroups: Err("no cgroup hierarchy offers the memory controller".into()),
            probe: None,
        };
        assert!(!support.is_ready());
        assert_eq!(
            support.missing().len(),
            3,
            "the untried probe is not a finding"
        );
        let text = support.to_string();
        assert!(text.starts_with("replicas run unsandboxed"), "{text}");
        assert!(text.contains("apt-get install bubblewrap"), "{text}");
        let err = support.ready().unwrap_err();
        assert!(err.0.contains("does not run as root"), "{err}");
    }
}
