//! The file system a sandboxed function sees, as a list of bwrap mount operations.
//!
//! The host's root is bound read-only as a whole (one recursive bind: the cheapest way to
//! show it, measured against rebuilding `/` entry by entry). The sandbox brings its own
//! `/proc`, `/dev`, `/tmp` and `/run`, and empty `/var` and `/home`: host state (logs,
//! services' databases, users' files, the default data dir `/var/lib/ironfaas`) stays out, and
//! the function's own directories are mounted there (`/home/app`, `/var/openfaas/...`,
//! `/run/ironfaas`). Other hidden paths are covered with an empty read-only tmpfs. At the end
//! everything but `/tmp`, `/dev/shm` and the writable binds is read-only.

use std::ffi::{OsStr, OsString};
use std::fs;
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
    /// Mount a fresh tmpfs (writable by the function until remounted), of at most `size`.
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

/// What a host path is, as far as hiding it needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Nothing there.
    Missing,
    /// A directory.
    Dir,
    /// Anything else.
    Other,
}

/// What is at a host path (a fake in tests).
pub(crate) trait Host {
    /// What is at `path`, not following a final symbolic link.
    fn kind(&self, path: &Path) -> Kind;
}

/// The real file system.
pub(crate) struct RealHost;

impl Host for RealHost {
    fn kind(&self, path: &Path) -> Kind {
        match fs::symlink_metadata(path) {
            Err(_) => Kind::Missing,
            Ok(m) if m.is_dir() => Kind::Dir,
            Ok(_) => Kind::Other,
        }
    }
}

/// A host path shown at `inside`, which must lie in one of the sandbox's own directories
/// ([`OWN_DIRS`]): the host's read-only tree cannot take new mount points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// The host path.
    pub source: PathBuf,
    /// Where the sandbox shows it.
    pub inside: PathBuf,
    /// Whether the function may write to it.
    pub writable: bool,
}

/// Directories the sandbox brings its own (empty, read-only) of, besides /proc, /dev, /tmp.
pub(crate) const OWN_DIRS: [&str; 3] = ["/run", "/var", "/home"];

/// Whether the host's `path` is out of sight anyway, under one of the sandbox's own dirs.
pub(crate) fn replaced(path: &Path) -> bool {
    ["/proc", "/dev", "/tmp"]
        .iter()
        .chain(OWN_DIRS.iter())
        .any(|own| path.starts_with(own))
}

/// The mount operations for a sandbox showing `targets` and hiding `hidden`, with a `/tmp`
/// (and `/dev/shm`) of at most `tmp_size` bytes.
pub(crate) fn plan(
    host: &dyn Host,
    targets: &[Target],
    hidden: &[PathBuf],
    tmp_size: Option<u64>,
) -> Vec<Op> {
    let mut ops = vec![
        Op::RoBind {
            src: "/".into(),
            dst: "/".into(),
        },
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
    ];
    for dir in OWN_DIRS {
        // Only mount points and a few links go there.
        ops.push(Op::Tmpfs {
            dst: dir.into(),
            size: Some(1 << 20),
        });
    }
    for (target, link) in [
        ("../run", "/var/run"),
        ("../run/lock", "/var/lock"),
        ("../tmp", "/var/tmp"),
    ] {
        ops.push(Op::Symlink {
            target: target.into(),
            dst: link.into(),
        });
    }

    let mut covered = Vec::new();
    for path in hidden.iter().filter(|p| !replaced(p)) {
        match host.kind(path) {
            Kind::Dir => {
                ops.push(Op::Tmpfs {
                    dst: path.clone(),
                    size: Some(4096),
                });
                covered.push(path.clone());
            }
            Kind::Other => ops.push(Op::RoBind {
                src: "/dev/null".into(),
                dst: path.clone(),
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

    for dst in covered
        .into_iter()
        .chain(OWN_DIRS.iter().map(PathBuf::from))
        .chain([PathBuf::from("/dev")])
    {
        ops.push(Op::RemountRo { dst });
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    struct FakeHost(BTreeMap<PathBuf, Kind>);

    impl Host for FakeHost {
        fn kind(&self, path: &Path) -> Kind {
            self.0.get(path).copied().unwrap_or(Kind::Missing)
        }
    }

    fn host() -> FakeHost {
        FakeHost(
            [
                ("/srv/ironfaas", Kind::Dir),
                ("/etc/ironfaas.toml", Kind::Other),
                ("/var/lib/ironfaas", Kind::Dir),
            ]
            .into_iter()
            .map(|(p, k)| (PathBuf::from(p), k))
            .collect(),
        )
    }

    fn targets() -> Vec<Target> {
        vec![
            Target {
                source: "/srv/ironfaas/secrets/f".into(),
                inside: "/var/openfaas/secrets".into(),
                writable: false,
            },
            Target {
                source: "/srv/ironfaas/bundles/f".into(),
                inside: "/home/app".into(),
                writable: false,
            },
            Target {
                source: "/srv/ironfaas/run/r1".into(),
                inside: "/run/ironfaas".into(),
                writable: true,
            },
        ]
    }

    #[test]
    fn the_host_is_read_only_with_the_sandboxs_own_dirs_over_it() {
        let hidden = [
            PathBuf::from("/srv/ironfaas"),
            "/etc/ironfaas.toml".into(),
            "/var/lib/ironfaas".into(),
            "/nonexistent".into(),
        ];
        let ops = plan(&host(), &targets(), &hidden, Some(1024));
        let at = |op: &Op| {
            ops.iter()
                .position(|o| o == op)
                .unwrap_or_else(|| panic!("{op:?} missing in {ops:#?}"))
        };
        assert_eq!(
            ops[0],
            Op::RoBind {
                src: "/".into(),
                dst: "/".into()
            }
        );
        let cover = at(&Op::Tmpfs {
            dst: "/srv/ironfaas".into(),
            size: Some(4096),
        });
        at(&Op::RoBind {
            src: "/dev/null".into(),
            dst: "/etc/ironfaas.toml".into(),
        });
        // Already out of sight under the sandbox's own /var; nothing there to cover.
        assert!(!ops.iter().any(|o| matches!(o, Op::Tmpfs { dst, .. } | Op::RoBind { dst, .. } if dst.starts_with("/var/lib") || dst.starts_with("/nonexistent"))));
        let var = at(&Op::Tmpfs {
            dst: "/var".into(),
            size: Some(1 << 20),
        });
        let bundle = at(&Op::RoBind {
            src: "/srv/ironfaas/bundles/f".into(),
            dst: "/home/app".into(),
        });
        let secrets = at(&Op::RoBind {
            src: "/srv/ironfaas/secrets/f".into(),
            dst: "/var/openfaas/secrets".into(),
        });
        at(&Op::Bind {
            src: "/srv/ironfaas/run/r1".into(),
            dst: "/run/ironfaas".into(),
        });
        assert!(var < secrets && cover < bundle);
        for read_only in ["/srv/ironfaas", "/var", "/home", "/run", "/dev"] {
            assert!(
                at(&Op::RemountRo {
                    dst: read_only.into()
                }) > secrets
            );
        }
        at(&Op::Tmpfs {
            dst: "/tmp".into(),
            size: Some(1024),
        });
    }

    #[test]
    fn ops_become_bwrap_arguments() {
        let mut args = Vec::new();
        Op::Tmpfs {
            dst: "/tmp".into(),
            size: Some(1024),
        }
        .push_args(&mut args);
        Op::RoBind {
            src: "/a".into(),
            dst: "/b".into(),
        }
        .push_args(&mut args);
        assert_eq!(
            args,
            ["--size", "1024", "--tmpfs", "/tmp", "--ro-bind", "/a", "/b"].map(OsString::from)
        );
    }
}
