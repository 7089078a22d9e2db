//! One sandboxed replica process: its cgroup, its bwrap command line, and what happens in the
//! child between fork and exec (join the cgroup, drop to the function's uid).

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use nix::sys::signal::{Signal, kill};
use nix::unistd::{Gid, Pid, Uid, setgroups, setresgid, setresuid};

use super::cgroup::Cgroup;
use super::mounts::{RealHost, Target, plan, replaced};
use super::seccomp::{StartGate, held_program_pipe, program_pipe};
use super::{
    BUNDLE_DIR, SECRETS_DIR, SOCKET_DIR, SandboxError, SandboxSpec, SandboxSupport, WORK_DIR,
};

/// A replica's sandbox: its cgroup with the limits, and how to start its process in it.
/// Dropping it kills whatever is left in the cgroup and removes the cgroup.
#[derive(Debug)]
pub struct Sandbox {
    spec: SandboxSpec,
    bwrap: PathBuf,
    cgroup: Cgroup,
}

impl Sandbox {
    /// Checks `spec` and creates the replica's cgroup with its limits; fails with what is
    /// missing when `support` says this machine cannot sandbox.
    pub fn new(support: &SandboxSupport, spec: SandboxSpec) -> Result<Sandbox, SandboxError> {
        let (bwrap, cgroups) = support.ready()?;
        check_spec(&spec)?;
        let cgroup = Cgroup::create(cgroups, &spec.cgroup, &spec.limits)?;
        Ok(Sandbox {
            bwrap: bwrap.to_path_buf(),
            spec,
            cgroup,
        })
    }

    /// The sandbox's definition.
    pub fn spec(&self) -> &SandboxSpec {
        &self.spec
    }

    /// The replica's cgroup: its processes, out-of-memory kills, peak memory.
    pub fn cgroup(&self) -> &Cgroup {
        &self.cgroup
    }

    /// The command that runs `program` with `args` and exactly the environment `env` in the
    /// sandbox. Host paths into the bundle, socket, secrets and work dirs are rewritten in
    /// all three (see the module docs). Pass the complete environment here (including
    /// `IRONFAAS_SOCKET` and `HOSTNAME`): variables added to the command later reach bwrap,
    /// not the function. Set stdio and spawn it once; a second spawn needs a new command.
    pub fn command(
        &self,
        program: &Path,
        args: &[String],
        env: &[(String, String)],
    ) -> Result<tokio::process::Command, SandboxError> {
        self.build(program, args, env, program_pipe()?)
    }

    /// Like [`Sandbox::command`], but the process builds the sandbox and then waits, before
    /// the program starts, until the returned gate opens: a sandbox made ahead of time, for a
    /// start from zero that then costs only the program's own start.
    pub fn held_command(
        &self,
        program: &Path,
        args: &[String],
        env: &[(String, String)],
    ) -> Result<(tokio::process::Command, StartGate), SandboxError> {
        let (seccomp, gate) = held_program_pipe()?;
        Ok((self.build(program, args, env, seccomp)?, gate))
    }

    fn build(
        &self,
        program: &Path,
        args: &[String],
        env: &[(String, String)],
        seccomp: OwnedFd,
    ) -> Result<tokio::process::Command, SandboxError> {
        let spec = &self.spec;
        let rewrite = Rewrite::new(spec);
        let mut inside_program = PathBuf::from(rewrite.value(&program.to_string_lossy()));
        // A program outside the bundle that the sandbox would hide (the platform's own
        // watchdog, when ironfaas lives under /tmp or /home) is shown alone, read-only.
        let mut shown_alone = None;
        if inside_program == program {
            if hidden_by_sandbox(spec, program) {
                shown_alone = Some(program_shown_alone(spec, program)?);
                inside_program = PathBuf::from(SHOWN_PROGRAM);
            } else {
                check_program_visible(spec, program)?;
            }
        }
        let procs = self.cgroup.open_join_files()?;

        let mut bwrap_args: Vec<OsString> = [
            "--unshare-user",
            "--uid",
            &spec.identity.uid.to_string(),
            "--gid",
            &spec.identity.gid.to_string(),
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup",
            "--hostname",
            &spec.replica,
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        if !spec.network {
            bwrap_args.push("--unshare-net".into());
        }
        let mut hidden = spec.hidden.clone();
        hidden.extend(self.cgroup_roots());
        let mut shown = targets(spec);
        if let Some(source) = shown_alone {
            shown.push(Target {
                source,
                inside: SHOWN_PROGRAM.into(),
                writable: false,
            });
        }
        for op in plan(&RealHost, &shown, &hidden, spec.tmp_size) {
            op.push_args(&mut bwrap_args);
        }
        bwrap_args.extend(
            [
                "--chdir",
                BUNDLE_DIR,
                "--seccomp",
                &seccomp.as_raw_fd().to_string(),
                "--",
            ]
            .map(OsString::from),
        );
        bwrap_args.push(inside_program.into_os_string());
        bwrap_args.extend(args.iter().map(|a| OsString::from(rewrite.value(a))));

        let mut cmd = tokio::process::Command::new(&self.bwrap);
        cmd.args(&bwrap_args)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, rewrite.value(v))))
            .current_dir("/");
        let child = ChildSetup {
            procs,
            seccomp,
            uid: Uid::from_raw(spec.identity.uid),
            gid: Gid::from_raw(spec.identity.gid),
        };
        #[allow(unsafe_code)]
        // SAFETY: the closure runs in the child between fork and exec. It only makes system
        // calls (write, setgroups, setresgid, setresuid, prctl, close_range, fcntl, getrlimit)
        // on values prepared before the fork, and allocates nothing.
        unsafe {
            cmd.pre_exec(move || child.run());
        }
        Ok(cmd)
    }

    /// The cgroup tree, which names every replica: hidden from the function. One cover over
    /// the usual mount point is cheaper than one per hierarchy.
    fn cgroup_roots(&self) -> Vec<PathBuf> {
        let usual = Path::new("/sys/fs/cgroup");
        if self.cgroup.dirs().iter().all(|d| d.starts_with(usual)) {
            return vec![usual.to_path_buf()];
        }
        self.cgroup
            .dirs()
            .iter()
            .filter_map(|d| d.parent().map(Path::to_path_buf))
            .collect()
    }

    /// Sends `signal` to the function's processes: everything in the cgroup but bwrap (the
    /// process started, `bwrap_pid`) and bwrap's namespace init (its child), which would
    /// otherwise end the sandbox at once instead of letting the function shut down.
    pub fn signal(&self, bwrap_pid: u32, signal: Signal) {
        for pid in self.cgroup.pids() {
            let Ok(own) = u32::try_from(pid) else {
                continue;
            };
            if own == bwrap_pid || parent_pid(pid) == Some(bwrap_pid) {
                continue;
            }
            let _ = kill(Pid::from_raw(pid), signal);
        }
    }

    /// SIGKILLs everything in the sandbox.
    pub fn kill(&self) {
        self.cgroup.kill_all();
    }

    /// Why the replica died, when its limits did it: `killed: out of memory (limit 128Mi)`.
    pub fn exit_reason(&self) -> Option<String> {
        if !self.cgroup.oom_killed() {
            return None;
        }
        Some(match self.spec.limits.memory_text() {
            Some(limit) => format!("killed: out of memory (limit {limit})"),
            None => "killed: out of memory".to_string(),
        })
    }
}

/// What the child does between fork and exec.
struct ChildSetup {
    procs: Vec<OwnedFd>,
    seccomp: OwnedFd,
    uid: Uid,
    gid: Gid,
}

impl ChildSetup {
    /// Joins the cgroups (while still root), drops to the function's uid/gid with no other
    /// groups, forbids new privileges, dies with the platform, hands the filter to bwrap.
    fn run(&self) -> io::Result<()> {
        for fd in &self.procs {
            // "0" moves the writing process itself.
            nix::unistd::write(fd, b"0")?;
        }
        setgroups(&[])?;
        setresgid(self.gid, self.gid, self.gid)?;
        setresuid(self.uid, self.uid, self.uid)?;
        nix::sys::prctl::set_no_new_privs()?;
        // Changing uid cleared the parent-death signal: set it again.
        nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
        // Descriptors the platform inherited without close-on-exec would reach the function
        // (bwrap passes on what it gets): close them all at exec but the filter's.
        close_all_on_exec()?;
        fcntl(&self.seccomp, FcntlArg::F_SETFD(FdFlag::empty()))?;
        Ok(())
    }
}

/// Marks every descriptor from 3 up close-on-exec.
fn close_all_on_exec() -> io::Result<()> {
    #[allow(unsafe_code)]
    // SAFETY: close_range only changes descriptor flags; no memory is passed.
    let marked = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if marked == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::ENOSYS) && err.raw_os_error() != Some(libc::EINVAL) {
        return Err(err);
    }
    // Kernels before 5.11: one by one, up to the descriptor limit.
    let mut limit = libc::rlimit {
        rlim_cur: 1024,
        rlim_max: 1024,
    };
    #[allow(unsafe_code)]
    // SAFETY: getrlimit writes one rlimit into the local it is given.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
    }
    let limit = i32::try_from(limit.rlim_cur.min(1 << 16)).unwrap_or(1024);
    for fd in 3..limit {
        #[allow(unsafe_code)]
        // SAFETY: fcntl on a number that may not be an open descriptor fails with EBADF and
        // changes nothing.
        unsafe {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
    }
    Ok(())
}

/// The parent of `pid`, from /proc/PID/stat.
fn parent_pid(pid: i32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name in parentheses may hold spaces: parse after its closing bracket.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(1)?.parse().ok()
}

/// Host directories and where the sandbox shows them.
fn targets(spec: &SandboxSpec) -> Vec<Target> {
    let mut targets = vec![Target {
        source: spec.bundle_dir.clone(),
        inside: BUNDLE_DIR.into(),
        writable: false,
    }];
    let optional = [
        (&spec.secrets_dir, SECRETS_DIR, false),
        (&spec.socket_dir, SOCKET_DIR, true),
        (&spec.work_dir, WORK_DIR, true),
    ];
    for (source, inside, writable) in optional {
        if let Some(source) = source {
            targets.push(Target {
                source: source.clone(),
                inside: inside.into(),
                writable,
            });
        }
    }
    // A resolv.conf that links into the host's /run would dangle in the sandbox's own /run.
    if spec.network
        && let Ok(resolv) = fs::canonicalize("/etc/resolv.conf")
        && resolv.starts_with("/run")
    {
        targets.push(Target {
            source: resolv.clone(),
            inside: resolv,
            writable: false,
        });
    }
    targets
}

/// Host path prefixes and what the sandbox calls them.
struct Rewrite(Vec<(String, &'static str)>);

impl Rewrite {
    fn new(spec: &SandboxSpec) -> Rewrite {
        let mut pairs: Vec<(String, &'static str)> = [
            (Some(&spec.bundle_dir), BUNDLE_DIR),
            (spec.secrets_dir.as_ref(), SECRETS_DIR),
            (spec.socket_dir.as_ref(), SOCKET_DIR),
            (spec.work_dir.as_ref(), WORK_DIR),
        ]
        .into_iter()
        .filter_map(|(host, inside)| {
            let host = host?.to_string_lossy().trim_end_matches('/').to_string();
            (!host.is_empty()).then_some((host, inside))
        })
        .collect();
        // The longest prefix wins when one dir lies inside another.
        pairs.sort_by_key(|(host, _)| std::cmp::Reverse(host.len()));
        Rewrite(pairs)
    }

    /// `value` with each `:`-separated part that starts with a known host dir rewritten.
    fn value(&self, value: &str) -> String {
        value
            .split(':')
            .map(|part| self.part(part))
            .collect::<Vec<_>>()
            .join(":")
    }

    fn part(&self, part: &str) -> String {
        for (host, inside) in &self.0 {
            if let Some(rest) = part.strip_prefix(host.as_str())
                && (rest.is_empty() || rest.starts_with('/') || rest.starts_with(' '))
            {
                return format!("{inside}{rest}");
            }
        }
        part.to_string()
    }
}

fn check_spec(spec: &SandboxSpec) -> Result<(), SandboxError> {
    if spec.identity.uid == 0 || spec.identity.gid == 0 {
        return Err(SandboxError(format!(
            "function {} would run as uid {} gid {}: a sandboxed function never runs as root; \
             give it an identity from UidAllocator",
            spec.function, spec.identity.uid, spec.identity.gid
        )));
    }
    let dirs = [
        ("bundle dir", Some(&spec.bundle_dir)),
        ("secrets dir", spec.secrets_dir.as_ref()),
        ("socket dir", spec.socket_dir.as_ref()),
        ("work dir", spec.work_dir.as_ref()),
    ];
    for (what, dir) in dirs {
        let Some(dir) = dir else { continue };
        if !dir.is_absolute() {
            return Err(SandboxError(format!(
                "the {what} {} is not an absolute path",
                dir.display()
            )));
        }
        let canonical = fs::canonicalize(dir)
            .map_err(|e| SandboxError(format!("the {what} {}: {e}", dir.display())))?;
        if !canonical.is_dir() {
            return Err(SandboxError(format!(
                "the {what} {} is not a directory",
                dir.display()
            )));
        }
        reachable(&canonical, spec.identity.uid).map_err(|why| {
            SandboxError(format!(
                "the {what} {} cannot be mounted for function {} (uid {}): {why}",
                dir.display(),
                spec.function,
                spec.identity.uid
            ))
        })?;
    }
    for (what, dir) in [
        ("socket dir", &spec.socket_dir),
        ("work dir", &spec.work_dir),
    ] {
        if let Some(dir) = dir {
            let owner = fs::metadata(dir).map(|m| m.uid()).unwrap_or(0);
            if owner != spec.identity.uid {
                return Err(SandboxError(format!(
                    "the {what} {} belongs to uid {owner}, not to function {} (uid {}): it \
                     could not write there; create it with prepare_owned_dir",
                    dir.display(),
                    spec.function,
                    spec.identity.uid
                )));
            }
        }
    }
    Ok(())
}

/// Whether `uid` (with no groups) can walk down to `path`: bwrap runs as the function's uid
/// and opens each mount source itself.
fn reachable(path: &Path, uid: u32) -> Result<(), String> {
    for dir in path.ancestors().skip(1) {
        let meta = fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mode = meta.mode();
        let enter = if meta.uid() == uid {
            mode & 0o100 != 0
        } else {
            mode & 0o001 != 0
        };
        if !enter {
            return Err(format!(
                "{} (mode {:o}) does not let other users pass; `chmod o+x {}` (0711 lets them \
                 pass without listing it)",
                dir.display(),
                mode & 0o7777,
                dir.display()
            ));
        }
    }
    Ok(())
}

/// Where a program the sandbox would hide is shown, alone (on the sandbox's own `/run`).
const SHOWN_PROGRAM: &str = "/run/ironfaas-program";

/// Whether `program` is in a place the sandbox hides or replaces with its own.
fn hidden_by_sandbox(spec: &SandboxSpec, program: &Path) -> bool {
    spec.hidden.iter().any(|h| program.starts_with(h)) || replaced(program)
}

/// The host file to show alone at [`SHOWN_PROGRAM`]: it must exist and be executable by
/// everyone (the function's uid cannot be its owner), since the directories above it no
/// longer matter once it is shown on its own.
fn program_shown_alone(spec: &SandboxSpec, program: &Path) -> Result<PathBuf, SandboxError> {
    use std::os::unix::fs::PermissionsExt;
    let fail = |why: String| {
        SandboxError(format!(
            "the program {} of function {} is in a place its sandbox hides (its own /proc, \
             /dev, /tmp, /run, /var and /home replace the host's; hidden: {:?}) and cannot be \
             shown on its own: {why}; install it elsewhere (for example /usr/local/bin) or put \
             it in the bundle",
            program.display(),
            spec.function,
            spec.hidden
        ))
    };
    let canonical = fs::canonicalize(program).map_err(|e| fail(e.to_string()))?;
    let meta = fs::metadata(&canonical).map_err(|e| fail(e.to_string()))?;
    if !meta.is_file() || meta.permissions().mode() & 0o001 == 0 {
        return Err(fail("it is not a file that every user may run".into()));
    }
    Ok(canonical)
}

/// A program outside the bundle must be visible in the sandbox and executable by the function.
fn check_program_visible(spec: &SandboxSpec, program: &Path) -> Result<(), SandboxError> {
    let canonical = fs::canonicalize(program).map_err(|e| {
        SandboxError(format!(
            "the program {} of function {}: {e}",
            program.display(),
            spec.function
        ))
    })?;
    reachable(&canonical, spec.identity.uid).map_err(|why| {
        SandboxError(format!(
            "function {} (uid {}) cannot run {}: {why}",
            spec.function,
            spec.identity.uid,
            program.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::{FunctionRef, Identity, Limits};

    fn spec() -> SandboxSpec {
        SandboxSpec {
            function: FunctionRef::new("f", "ns"),
            replica: "f-1".into(),
            cgroup: "f-1".into(),
            identity: Identity {
                uid: 200_001,
                gid: 200_001,
            },
            bundle_dir: "/data/bundles/f/".into(),
            socket_dir: Some("/data/run/r1".into()),
            work_dir: None,
            secrets_dir: Some("/data/secrets/f".into()),
            network: false,
            limits: Limits {
                memory_bytes: None,
                cpu_millis: None,
                pids: 64,
            },
            hidden: vec!["/data".into()],
            tmp_size: None,
        }
    }

    #[test]
    fn host_paths_are_rewritten_to_sandbox_paths() {
        let r = Rewrite::new(&spec());
        assert_eq!(r.value("/data/run/r1/r1.sock"), "/run/ironfaas/r1.sock");
        assert_eq!(
            r.value("/data/bundles/f/bin/handler --port 1"),
            "/home/app/bin/handler --port 1"
        );
        assert_eq!(
            r.value("/data/bundles/f/lib:/usr/lib:/data/bundles/f"),
            "/home/app/lib:/usr/lib:/home/app"
        );
        assert_eq!(r.value("/data/bundles/fx"), "/data/bundles/fx");
        assert_eq!(r.value("plain"), "plain");
    }

    #[test]
    fn root_is_refused() {
        let mut s = spec();
        s.identity = Identity { uid: 0, gid: 0 };
        assert!(check_spec(&s).unwrap_err().0.contains("never runs as root"));
    }

    #[test]
    fn programs_in_hidden_places_are_shown_alone_when_everyone_may_run_them() {
        use std::os::unix::fs::PermissionsExt;
        let spec = spec();
        assert!(hidden_by_sandbox(&spec, Path::new("/data/bin/x")));
        assert!(hidden_by_sandbox(&spec, Path::new("/var/lib/x")));
        assert!(hidden_by_sandbox(&spec, Path::new("/tmp/build/ironfaas")));
        assert!(!hidden_by_sandbox(&spec, Path::new("/usr/bin/env")));
        let err = program_shown_alone(&spec, Path::new("/tmp/no/such/program")).unwrap_err();
        assert!(err.0.contains("cannot be shown on its own"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join("watchdog");
        fs::write(&program, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&program, fs::Permissions::from_mode(0o700)).unwrap();
        let err = program_shown_alone(&spec, &program).unwrap_err();
        assert!(err.0.contains("every user may run"), "{err}");
        fs::set_permissions(&program, fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            program_shown_alone(&spec, &program).unwrap(),
            fs::canonicalize(&program).unwrap()
        );
    }

    #[test]
    fn parent_pids_come_from_proc() {
        let me = std::process::id();
        let parent = parent_pid(i32::try_from(me).unwrap()).unwrap();
        assert_eq!(parent, std::os::unix::process::parent_id());
    }
}
