//! The file system a sandboxed function sees, as a list of bwrap mount operations.
//!
//! The host's root is shown read-only. Because a read-only bind cannot get new mount points,
//! the root (and any directory on the way to a mount point the host lacks, such as
//! `/var/openfaas/secrets`) is rebuilt instead: a directory on bwrap's own root tmpfs with
//! each host entry bound into it read-only (symbolic links recreated as such). Hidden paths
//! are left out when their parent is rebuilt, or covered with an empty read-only tmpfs
//! otherwise. `/proc`, `/dev`, `/tmp` and `/run` are the sandbox's own. The root, `/dev` and
//! `/run` are made read-only at the end, so only `/tmp`, `/dev/shm` and the writable binds
//! remain writable.

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// One bwrap mount operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op {
    /// Bind a host path read-only.
    RoBind { src: PathBuf, dst: PathBuf },
    /// Bind a host path writable.
    Bind { src: PathBuf, dst: PathBuf },
    /// Create a symbolic link.
    Symlink { target: PathBuf, dst: PathBuf },
    /// Create a directory on the sandbox's root tmpfs.
    Dir { dst: PathBuf },
    /// Mount a fresh tmpfs (writable by the function), optionally size-limited.
    Tmpfs { dst: PathBuf, size: Option<u64> },
    /// Mount the sandbox's own procfs.
    Proc { dst: PathBuf },
    /// Mount a minimal /dev.
    Dev { dst: PathBuf },
    /// Make a mount read-only (not its submounts).
    RemountRo { dst: PathBuf },
}

impl Op {
    /// Appends the operation's bwrap arguments.
    pub(crate) fn push_args(&self, args: &mut Vec<OsString>) {
        let mut push = |parts: &[&OsStr]| args.extend(parts.iter().map(|p| p.to_os_string()));
        match self {
            Op::RoBind { src, dst } => push(&["--ro-bind".as_ref(), src.as_ref(), dst.as_ref()]),
            Op::Bind { src, dst } => push(&["--bind".as_ref(), src.as_ref(), dst.as_ref()]),
            Op::Symlink { target, dst } => {
                push(&["--symlink".as_ref(), target.as_ref(), dst.as_ref()])
            }
            Op::Dir { dst } => push(&["--dir".as_ref(), dst.as_ref()]),
            Op::Tmpfs { dst, size } => {
                if let Some(size) = size {
                    let size = OsString::from(size.to_string());
                    push(&["--size".as_ref(), &size]);
                }
                push(&["--tmpfs".as_ref(), dst.as_ref()]);
            }
            Op::Proc { dst } => push(&["--proc".as_ref(), dst.as_ref()]),
            Op::Dev { dst } => push(&["--dev".as_ref(), dst.as_ref()]),
            Op::RemountRo { dst } => push(&["--remount-ro".as_ref(), dst.as_ref()]),
        }
    }
}

/// What a host path is, as far as planning needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Nothing there.
    Missing,
    /// A directory; `searchable` when any user may enter it (others have `x`).
    Dir { searchable: bool },
    /// A symbolic link to this target.
    Symlink(PathBuf),
    /// A file, socket, device...
    Other,
}

/// Read access to the host's tree (a fake one in tests).
pub(crate) trait Host {
    /// What is at `path`, not following a final symbolic link.
    fn kind(&self, path: &Path) -> Kind;
    /// The names in the directory `path`, sorted.
    fn children(&self, path: &Path) -> Vec<OsString>;
}

/// The real file system.
pub(crate) struct RealHost;

impl Host for RealHost {
    fn kind(&self, path: &Path) -> Kind {
        match fs::symlink_metadata(path) {
            Err(_) => Kind::Missing,
            Ok(m) if m.file_type().is_symlink() => {
                fs::read_link(path).map_or(Kind::Other, Kind::Symlink)
            }
            Ok(m) if m.is_dir() => Kind::Dir {
                searchable: m.permissions().mode() & 0o001 != 0,
            },
            Ok(_) => Kind::Other,
        }
    }

    fn children(&self, path: &Path) -> Vec<OsString> {
        let mut names: Vec<OsString> = fs::read_dir(path)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok().map(|e| e.file_name()))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

/// A host path shown at `inside`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// The host path.
    pub source: PathBuf,
    /// Where the sandbox shows it.
    pub inside: PathBuf,
    /// Whether the function may write to it.
    pub writable: bool,
}

/// Top-level directories the sandbox brings its own of.
const REPLACED: [&str; 4] = ["/proc", "/dev", "/tmp", "/run"];

fn is_replaced_or_under(path: &Path) -> bool {
    REPLACED.iter().any(|r| path.starts_with(r))
}

/// The mount operations for a sandbox showing `targets` and hiding `hidden`, with a `/tmp`
/// (and `/dev/shm`) of at most `tmp_size` bytes.
pub(crate) fn plan(
    host: &dyn Host,
    targets: &[Target],
    hidden: &[PathBuf],
    tmp_size: Option<u64>,
) -> Vec<Op> {
    let target_paths: BTreeSet<&Path> = targets.iter().map(|t| t.inside.as_path()).collect();
    let hidden: BTreeSet<&Path> = hidden.iter().map(PathBuf::as_path).collect();

    // Directories to rebuild: the root, and every existing ancestor of a mount point that
    // the host lacks (a read-only bind could not take the new directory).
    let mut rebuild: BTreeSet<PathBuf> = BTreeSet::from([PathBuf::from("/")]);
    for target in targets.iter().filter(|t| !is_replaced_or_under(&t.inside)) {
        if matches!(host.kind(&target.inside), Kind::Dir { .. }) {
            continue;
        }
        for ancestor in target.inside.ancestors().skip(1) {
            rebuild.insert(ancestor.to_path_buf());
        }
    }

    let mut ops = vec![
        Op::Proc {
            dst: "/proc".into(),
        },
        Op::Dev { dst: "/dev".into() },
        Op::Tmpfs {
            dst: "/dev/shm".into(),
            size: tmp_size,
        },
        Op::Tmpfs {
            dst: "/tmp".into(),
            size: tmp_size,
        },
        Op::Tmpfs {
            dst: "/run".into(),
            size: Some(1 << 20),
        },
    ];
    let mut walk = vec![PathBuf::from("/")];
    while let Some(dir) = walk.pop() {
        let kind = host.kind(&dir);
        if dir != Path::new("/") {
            ops.push(Op::Dir { dst: dir.clone() });
        }
        // A hidden or closed directory shows nothing of its own; entries on the way to a
        // mount point are still made.
        let open =
            matches!(kind, Kind::Dir { searchable: true }) && !hidden.contains(dir.as_path());
        let mut names: BTreeSet<OsString> = if open {
            host.children(&dir).into_iter().collect()
        } else {
            BTreeSet::new()
        };
        names.extend(
            rebuild
                .iter()
                .filter(|r| r.parent() == Some(dir.as_path()))
                .filter_map(|r| r.file_name().map(OsStr::to_os_string)),
        );
        let mut subdirs = Vec::new();
        for name in names {
            let path = dir.join(&name);
            if is_replaced_or_under(&path) {
                continue;
            }
            if rebuild.contains(&path) {
                subdirs.push(path);
                continue;
            }
            if target_paths.contains(path.as_path()) || hidden.contains(path.as_path()) {
                continue;
            }
            match host.kind(&path) {
                Kind::Missing => {}
                Kind::Symlink(target) => ops.push(Op::Symlink { target, dst: path }),
                Kind::Dir { .. } | Kind::Other => ops.push(Op::RoBind {
                    src: path.clone(),
                    dst: path,
                }),
            }
        }
        // Depth first, in name order.
        walk.extend(subdirs.into_iter().rev());
    }

    // Hidden paths inside a bound (not rebuilt) directory get covered.
    let mut covered = Vec::new();
    for path in &hidden {
        let parent_rebuilt = path.parent().is_some_and(|p| rebuild.contains(p));
        if parent_rebuilt || rebuild.contains(*path) || is_replaced_or_under(path) {
            continue;
        }
        match host.kind(path) {
            Kind::Dir { .. } => {
                ops.push(Op::Tmpfs {
                    dst: path.to_path_buf(),
                    size: Some(4096),
                });
                covered.push(path.to_path_buf());
            }
            Kind::Other | Kind::Symlink(_) => ops.push(Op::RoBind {
                src: "/dev/null".into(),
                dst: path.to_path_buf(),
            }),
            Kind::Missing => {}
        }
    }

    let mut targets: Vec<&Target> = targets.iter().collect();
    targets.sort_by(|a, b| a.inside.cmp(&b.inside));
    for t in targets {
        let (src, dst) = (t.source.clone(), t.inside.clone());
        ops.push(if t.writable {
            Op::Bind { src, dst }
        } else {
            Op::RoBind { src, dst }
        });
    }

    for dst in covered {
        ops.push(Op::RemountRo { dst });
    }
    for dst in ["/run", "/dev", "/"] {
        ops.push(Op::RemountRo { dst: dst.into() });
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A host described by path -> kind; children are the paths one level below.
    struct FakeHost(BTreeMap<PathBuf, Kind>);

    impl FakeHost {
        fn new(entries: &[(&str, Kind)]) -> FakeHost {
            FakeHost(
                entries
                    .iter()
                    .map(|(p, k)| (PathBuf::from(p), k.clone()))
                    .collect(),
            )
        }
    }

    impl Host for FakeHost {
        fn kind(&self, path: &Path) -> Kind {
            self.0.get(path).cloned().unwrap_or(Kind::Missing)
        }
        fn children(&self, path: &Path) -> Vec<OsString> {
            self.0
                .keys()
                .filter(|p| p.parent() == Some(path) && p.as_path() != path)
                .filter_map(|p| p.file_name().map(OsStr::to_os_string))
                .collect()
        }
    }

    const DIR: Kind = Kind::Dir { searchable: true };
    const CLOSED: Kind = Kind::Dir { searchable: false };

    fn host() -> FakeHost {
        FakeHost::new(&[
            ("/", DIR),
            ("/bin", Kind::Symlink("usr/bin".into())),
            ("/usr", DIR),
            ("/etc", DIR),
            ("/proc", DIR),
            ("/tmp", DIR),
            ("/root", CLOSED),
            ("/root/.ssh", DIR),
            ("/var", DIR),
            ("/var/log", DIR),
            ("/var/lib", DIR),
            ("/var/lib/ironfaas", DIR),
            ("/var/lib/ironfaas/bundles", DIR),
            ("/srv", DIR),
            ("/srv/data", DIR),
        ])
    }

    fn ro(src: &str, dst: &str) -> Op {
        Op::RoBind {
            src: src.into(),
            dst: dst.into(),
        }
    }

    fn dir(dst: &str) -> Op {
        Op::Dir { dst: dst.into() }
    }

    fn targets() -> Vec<Target> {
        vec![
            Target {
                source: "/var/lib/ironfaas/bundles/f".into(),
                inside: "/home/app".into(),
                writable: false,
            },
            Target {
                source: "/var/lib/ironfaas/secrets/f".into(),
                inside: "/var/openfaas/secrets".into(),
                writable: false,
            },
            Target {
                source: "/var/lib/ironfaas/run/r1".into(),
                inside: "/run/ironfaas".into(),
                writable: true,
            },
        ]
    }

    #[test]
    fn the_root_is_rebuilt_from_read_only_binds() {
        let ops = plan(&host(), &targets(), &["/var/lib/ironfaas".into()], None);
        let position = |op: &Op| ops.iter().position(|o| o == op);
        for expected in [
            ro("/usr", "/usr"),
            ro("/etc", "/etc"),
            ro("/root", "/root"),
            ro("/srv", "/srv"),
            ro("/var/log", "/var/log"),
            dir("/home"),
            dir("/var"),
            dir("/var/openfaas"),
            Op::Symlink {
                target: "usr/bin".into(),
                dst: "/bin".into(),
            },
        ] {
            assert!(
                position(&expected).is_some(),
                "{expected:?} missing in {ops:#?}"
            );
        }
        // /var/lib is bound whole, so the data dir below it is covered, then made read-only.
        let cover = Op::Tmpfs {
            dst: "/var/lib/ironfaas".into(),
            size: Some(4096),
        };
        assert!(position(&ro("/var/lib", "/var/lib")) < position(&cover));
        assert!(position(&cover).is_some());
        assert!(
            position(&Op::RemountRo {
                dst: "/var/lib/ironfaas".into()
            })
            .is_some()
        );
        // Mount points come after the directories they need, the root goes read-only last.
        let bundle = ro("/var/lib/ironfaas/bundles/f", "/home/app");
        assert!(position(&dir("/home")) < position(&bundle));
        assert!(
            position(&dir("/var/openfaas"))
                < position(&ro("/var/lib/ironfaas/secrets/f", "/var/openfaas/secrets"))
        );
        assert_eq!(ops.last(), Some(&Op::RemountRo { dst: "/".into() }));
        // The host's /proc and /tmp are never bound.
        assert!(!ops.iter().any(|o| matches!(o, Op::RoBind { src, .. } if src.starts_with("/proc") || src.starts_with("/tmp"))));
        assert!(ops.contains(&Op::Bind {
            src: "/var/lib/ironfaas/run/r1".into(),
            dst: "/run/ironfaas".into()
        }));
    }

    #[test]
    fn hidden_children_of_rebuilt_dirs_are_left_out() {
        let ops = plan(&host(), &targets(), &["/srv".into()], None);
        assert!(
            !ops.iter()
                .any(|o| matches!(o, Op::RoBind { dst, .. } if dst.starts_with("/srv")))
        );
        assert!(
            !ops.iter()
                .any(|o| matches!(o, Op::Tmpfs { dst, .. } if dst.starts_with("/srv")))
        );
    }

    #[test]
    fn closed_dirs_on_the_way_show_only_the_mount_point() {
        let t = vec![Target {
            source: "/x".into(),
            inside: "/root/inner/x".into(),
            writable: false,
        }];
        let ops = plan(&host(), &t, &[], None);
        assert!(ops.contains(&dir("/root")));
        assert!(ops.contains(&dir("/root/inner")));
        assert!(
            !ops.iter()
                .any(|o| matches!(o, Op::RoBind { dst, .. } if dst.starts_with("/root/.ssh")))
        );
    }

    #[test]
    fn ops_become_bwrap_arguments() {
        let mut args = Vec::new();
        Op::Tmpfs {
            dst: "/tmp".into(),
            size: Some(1024),
        }
        .push_args(&mut args);
        ro("/a", "/b").push_args(&mut args);
        assert_eq!(
            args,
            ["--size", "1024", "--tmpfs", "/tmp", "--ro-bind", "/a", "/b"].map(OsString::from)
        );
    }
}
