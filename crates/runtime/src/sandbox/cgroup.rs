//! One cgroup per replica for its memory, CPU and pids limits, under an `ironfaas` group at
//! the top of each hierarchy: `/sys/fs/cgroup/{memory,cpu,pids}/ironfaas/REPLICA` with cgroup
//! v1 (including the hybrid layout, whose v2 mount has no controllers), or
//! `/sys/fs/cgroup/ironfaas/REPLICA` when the controllers are on a cgroup2 mount. It also
//! tells, after the fact, whether the kernel killed something for going over the memory limit.

use std::fs;
use std::io::ErrorKind;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::{Limits, SandboxError};

/// The CFS period used for CPU limits: 100 ms, the kernel's default.
const CPU_PERIOD_US: u64 = 100_000;
/// The smallest CFS quota the kernel accepts.
const MIN_CPU_QUOTA_US: u64 = 1_000;
/// How long [`Cgroup::remove`] waits for killed processes to leave.
const REMOVE_PATIENCE: Duration = Duration::from_secs(2);

/// Which cgroup interface holds the controllers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    /// One hierarchy per controller.
    V1,
    /// The unified hierarchy.
    V2,
}

/// Where replicas' cgroups go: the `ironfaas` group in each hierarchy that matters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupRoot {
    version: CgroupVersion,
    /// v1: the memory, cpu and pids `ironfaas` dirs, in that order; v2: the one `ironfaas` dir.
    dirs: Vec<PathBuf>,
}

/// The controllers the limits need.
const CONTROLLERS: [&str; 3] = ["memory", "cpu", "pids"];
/// The group all replicas' cgroups go in.
const GROUP: &str = "ironfaas";

/// A mounted cgroup hierarchy: v1 with its controllers, or v2.
struct Hierarchy {
    mount_point: PathBuf,
    v1_controllers: Option<Vec<String>>,
}

fn hierarchies(mountinfo: &str) -> Vec<Hierarchy> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let mount_point = before.split(' ').nth(4)?;
            let mut after = after.split(' ');
            let fstype = after.next()?;
            let super_options = after.nth(1)?;
            let mount_point = PathBuf::from(unescape_mount_path(mount_point));
            match fstype {
                "cgroup2" => Some(Hierarchy {
                    mount_point,
                    v1_controllers: None,
                }),
                "cgroup" => Some(Hierarchy {
                    mount_point,
                    v1_controllers: Some(super_options.split(',').map(String::from).collect()),
                }),
                _ => None,
            }
        })
        .collect()
}

/// Mount paths in mountinfo escape space, tab, newline and backslash as octal.
fn unescape_mount_path(path: &str) -> String {
    path.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

impl CgroupRoot {
    /// Finds the memory, cpu and pids controllers from this process's mount table; creates
    /// nothing.
    pub fn detect() -> Result<CgroupRoot, SandboxError> {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").map_err(|e| {
            SandboxError(format!(
                "cannot read /proc/self/mountinfo to find the cgroup controllers: {e}"
            ))
        })?;
        CgroupRoot::from_hierarchies(&hierarchies(&mountinfo), |path| {
            fs::read_to_string(path).unwrap_or_default()
        })
    }

    /// The root from the mounted hierarchies; `read` gives a file's text (empty if absent).
    fn from_hierarchies(
        found: &[Hierarchy],
        read: impl Fn(&Path) -> String,
    ) -> Result<CgroupRoot, SandboxError> {
        let v1: Vec<Option<&Hierarchy>> = CONTROLLERS
            .iter()
            .map(|c| {
                found.iter().find(|h| {
                    h.v1_controllers
                        .as_ref()
                        .is_some_and(|cs| cs.iter().any(|x| x == c))
                })
            })
            .collect();
        if v1.iter().all(Option::is_some) {
            return Ok(CgroupRoot {
                version: CgroupVersion::V1,
                dirs: v1
                    .into_iter()
                    .flatten()
                    .map(|h| h.mount_point.join(GROUP))
                    .collect(),
            });
        }
        let mut missing_v2 = Vec::new();
        for h in found.iter().filter(|h| h.v1_controllers.is_none()) {
            let available = read(&h.mount_point.join("cgroup.controllers"));
            let missing: Vec<&str> = CONTROLLERS
                .iter()
                .copied()
                .filter(|c| !available.split_whitespace().any(|a| a == *c))
                .collect();
            if missing.is_empty() {
                return Ok(CgroupRoot {
                    version: CgroupVersion::V2,
                    dirs: vec![h.mount_point.join(GROUP)],
                });
            }
            missing_v2.push(format!(
                "{} lacks {}",
                h.mount_point.display(),
                missing.join(", ")
            ));
        }
        let v1_missing: Vec<&str> = CONTROLLERS
            .iter()
            .zip(&v1)
            .filter(|(_, h)| h.is_none())
            .map(|(c, _)| *c)
            .collect();
        let mut why = format!(
            "no cgroup hierarchy offers the memory, cpu and pids controllers (cgroup v1 lacks {})",
            v1_missing.join(", ")
        );
        if !missing_v2.is_empty() {
            why.push_str(&format!("; cgroup v2: {}", missing_v2.join("; ")));
        }
        why.push_str(
            ". Mount them (systemd does this at boot; in a container, start it with its cgroups \
             writable) so replicas' memory, CPU and process limits can be enforced",
        );
        Err(SandboxError(why))
    }

    /// v1 or v2.
    pub fn version(&self) -> CgroupVersion {
        self.version
    }

    /// The `ironfaas` group's directories (to hide from replicas: it lists their names).
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Creates the `ironfaas` groups if needed; with v2, delegates the controllers to them.
    pub fn ensure(&self) -> Result<(), SandboxError> {
        for dir in &self.dirs {
            match fs::create_dir(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(SandboxError(format!(
                        "cannot create the cgroup {}: {e}; run ironfaas as root, with the \
                         cgroup file system mounted read-write",
                        dir.display()
                    )));
                }
            }
        }
        if self.version == CgroupVersion::V2 {
            for dir in &self.dirs {
                if let Some(parent) = dir.parent() {
                    enable_controllers(parent)?;
                }
                enable_controllers(dir)?;
            }
        }
        Ok(())
    }
}

fn enable_controllers(dir: &Path) -> Result<(), SandboxError> {
    let file = dir.join("cgroup.subtree_control");
    let enabled = fs::read_to_string(&file).unwrap_or_default();
    let wanted: Vec<String> = CONTROLLERS
        .iter()
        .filter(|c| !enabled.split_whitespace().any(|e| e == **c))
        .map(|c| format!("+{c}"))
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    fs::write(&file, wanted.join(" ")).map_err(|e| {
        SandboxError(format!(
            "cannot enable {} in {}: {e}. With cgroup v2 a group that holds processes cannot \
             hand controllers to its children: run ironfaas in its own cgroup outside {} (for \
             example as a systemd service) or on the host rather than in a container",
            wanted.join(" "),
            file.display(),
            dir.display()
        ))
    })
}

/// One replica's cgroup (one directory per hierarchy); removed when dropped.
#[derive(Debug)]
pub struct Cgroup {
    version: CgroupVersion,
    /// v1: memory, cpu, pids; v2: one.
    dirs: Vec<PathBuf>,
    removed: bool,
}

impl Cgroup {
    /// Creates the cgroup `name` under `root` with `limits` written; a leftover of the same
    /// name (from a crash) is emptied and replaced.
    pub fn create(root: &CgroupRoot, name: &str, limits: &Limits) -> Result<Cgroup, SandboxError> {
        let valid = !name.is_empty()
            && name != "."
            && name != ".."
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !valid {
            return Err(SandboxError(format!(
                "'{name}' cannot name a cgroup: use letters, digits, '.', '_' and '-'"
            )));
        }
        root.ensure()?;
        let mut cgroup = Cgroup {
            version: root.version,
            dirs: root.dirs.iter().map(|d| d.join(name)).collect(),
            removed: false,
        };
        if cgroup.dirs.iter().any(|d| d.exists()) {
            cgroup.remove()?;
            cgroup.removed = false;
        }
        for dir in &cgroup.dirs {
            fs::create_dir(dir).map_err(|e| {
                SandboxError(format!("cannot create the cgroup {}: {e}", dir.display()))
            })?;
        }
        cgroup.apply(limits)?;
        Ok(cgroup)
    }

    fn apply(&self, limits: &Limits) -> Result<(), SandboxError> {
        let quota = limits
            .cpu_millis
            .map(|m| (m.saturating_mul(CPU_PERIOD_US) / 1000).max(MIN_CPU_QUOTA_US));
        match self.version {
            CgroupVersion::V1 => {
                let [memory, cpu, pids] = self.v1_dirs();
                if let Some(bytes) = limits.memory_bytes {
                    write(memory, "memory.limit_in_bytes", &bytes.to_string())?;
                    // With swap accounting, memory plus swap gets the same limit: no swap.
                    if memory.join("memory.memsw.limit_in_bytes").exists() {
                        write(memory, "memory.memsw.limit_in_bytes", &bytes.to_string())?;
                    }
                }
                if let Some(quota) = quota {
                    write(cpu, "cpu.cfs_period_us", &CPU_PERIOD_US.to_string())?;
                    write(cpu, "cpu.cfs_quota_us", &quota.to_string())?;
                }
                write(pids, "pids.max", &limits.pids.to_string())?;
            }
            CgroupVersion::V2 => {
                let dir = &self.dirs[0];
                if let Some(bytes) = limits.memory_bytes {
                    write(dir, "memory.max", &bytes.to_string())?;
                    if dir.join("memory.swap.max").exists() {
                        write(dir, "memory.swap.max", "0")?;
                    }
                    // An out-of-memory kill takes the whole replica, not one of its processes.
                    if dir.join("memory.oom.group").exists() {
                        write(dir, "memory.oom.group", "1")?;
                    }
                }
                if let Some(quota) = quota {
                    write(dir, "cpu.max", &format!("{quota} {CPU_PERIOD_US}"))?;
                }
                write(dir, "pids.max", &limits.pids.to_string())?;
            }
        }
        Ok(())
    }

    fn v1_dirs(&self) -> [&PathBuf; 3] {
        [&self.dirs[0], &self.dirs[1], &self.dirs[2]]
    }

    /// Its directories: v1 memory, cpu and pids; v2 the one.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// The directory whose files describe memory use.
    fn memory_dir(&self) -> &Path {
        &self.dirs[0]
    }

    /// The file of each directory a child writes `0` to, to join: v1 `tasks`, v2
    /// `cgroup.procs`. On v1, `0` written to `tasks` moves only the writing thread (a child
    /// between fork and exec has one), which the kernel does without the global
    /// thread-group lock that a write to `cgroup.procs` takes: that lock waits for an RCU
    /// grace period, measured here at 5.8 ms median per start against 0.3 ms for `tasks`.
    pub(crate) fn open_join_files(&self) -> Result<Vec<OwnedFd>, SandboxError> {
        let file = match self.version {
            CgroupVersion::V1 => "tasks",
            CgroupVersion::V2 => "cgroup.procs",
        };
        self.dirs
            .iter()
            .map(|dir| {
                let path = dir.join(file);
                fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map(OwnedFd::from)
                    .map_err(|e| SandboxError(format!("cannot open {}: {e}", path.display())))
            })
            .collect()
    }

    /// The processes in it now.
    pub fn pids(&self) -> Vec<i32> {
        fs::read_to_string(self.memory_dir().join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// How many of its processes the kernel killed for going over the memory limit
    /// (`oom_kill` in v1's memory.oom_control, v2's memory.events).
    pub fn oom_kills(&self) -> u64 {
        let file = match self.version {
            CgroupVersion::V1 => "memory.oom_control",
            CgroupVersion::V2 => "memory.events",
        };
        fs::read_to_string(self.memory_dir().join(file))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Whether the memory limit killed any of its processes.
    pub fn oom_killed(&self) -> bool {
        self.oom_kills() > 0
    }

    /// The most memory it used at once, in bytes, when the kernel reports it.
    pub fn memory_peak(&self) -> Option<u64> {
        let file = match self.version {
            CgroupVersion::V1 => "memory.max_usage_in_bytes",
            CgroupVersion::V2 => "memory.peak",
        };
        fs::read_to_string(self.memory_dir().join(file))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    /// How many times it hit the pids limit (a fork or thread refused), when reported.
    pub fn pids_refused(&self) -> u64 {
        let dir = match self.version {
            CgroupVersion::V1 => &self.dirs[2],
            CgroupVersion::V2 => &self.dirs[0],
        };
        fs::read_to_string(dir.join("pids.events"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("max "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }

    /// SIGKILLs everything in it, until it is empty or [`REMOVE_PATIENCE`] passed.
    pub fn kill_all(&self) {
        if self.version == CgroupVersion::V2 && self.dirs[0].join("cgroup.kill").exists() {
            let _ = fs::write(self.dirs[0].join("cgroup.kill"), "1");
        }
        let until = Instant::now() + REMOVE_PATIENCE;
        loop {
            let pids = self.pids();
            if pids.is_empty() || Instant::now() >= until {
                return;
            }
            for pid in pids {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Kills what is left in it and deletes its directories.
    pub fn remove(&mut self) -> Result<(), SandboxError> {
        if self.removed {
            return Ok(());
        }
        self.kill_all();
        let until = Instant::now() + REMOVE_PATIENCE;
        for dir in &self.dirs {
            loop {
                match fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == ErrorKind::NotFound => break,
                    // Killed processes may take a moment to leave.
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < until => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(e) => {
                        return Err(SandboxError(format!(
                            "cannot remove the cgroup {}: {e} (processes still in it: {:?})",
                            dir.display(),
                            self.pids()
                        )));
                    }
                }
            }
        }
        self.removed = true;
        Ok(())
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            tracing::warn!("{e}");
        }
    }
}

fn write(dir: &Path, file: &str, value: &str) -> Result<(), SandboxError> {
    fs::write(dir.join(file), value).map_err(|e| {
        SandboxError(format!(
            "cannot set {file}={value} in the cgroup {}: {e}",
            dir.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
35 25 0:30 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
36 35 0:31 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw
39 35 0:34 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:14 - cgroup cgroup rw,cpu,cpuacct
40 35 0:35 / /sys/fs/cgroup/memory rw,nosuid shared:15 - cgroup cgroup rw,memory
41 35 0:36 / /sys/fs/cgroup/pids rw,nosuid shared:16 - cgroup cgroup rw,pids
";

    #[test]
    fn v1_controllers_win_in_the_hybrid_layout() {
        let root = CgroupRoot::from_hierarchies(&hierarchies(HYBRID), |_| String::new()).unwrap();
        assert_eq!(root.version(), CgroupVersion::V1);
        assert_eq!(
            root.dirs(),
            [
                PathBuf::from("/sys/fs/cgroup/memory/ironfaas"),
                PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/ironfaas"),
                PathBuf::from("/sys/fs/cgroup/pids/ironfaas"),
            ]
        );
    }

    #[test]
    fn a_missing_controller_is_named() {
        let no_pids: String =
            HYBRID
                .lines()
                .filter(|l| !l.contains("pids"))
                .fold(String::new(), |mut s, l| {
                    s.push_str(l);
                    s.push('\n');
                    s
                });
        let err =
            CgroupRoot::from_hierarchies(&hierarchies(&no_pids), |_| String::new()).unwrap_err();
        assert!(err.0.contains("cgroup v1 lacks pids"), "{err}");
        assert!(err.0.contains("lacks memory, cpu, pids"), "{err}");
    }

    #[test]
    fn a_cgroup2_mount_with_the_controllers_is_used() {
        let unified = "30 25 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        let root = CgroupRoot::from_hierarchies(&hierarchies(unified), |path| {
            assert_eq!(path, Path::new("/sys/fs/cgroup/cgroup.controllers"));
            "cpuset cpu io memory hugetlb pids rdma misc".to_string()
        })
        .unwrap();
        assert_eq!(root.version(), CgroupVersion::V2);
        assert_eq!(root.dirs(), [PathBuf::from("/sys/fs/cgroup/ironfaas")]);
        let err =
            CgroupRoot::from_hierarchies(&hierarchies(unified), |_| "cpu io".into()).unwrap_err();
        assert!(err.0.contains("/sys/fs/cgroup lacks memory, pids"), "{err}");
    }

    #[test]
    fn mount_paths_are_unescaped() {
        assert_eq!(unescape_mount_path("/a\\040b"), "/a b");
    }
}
