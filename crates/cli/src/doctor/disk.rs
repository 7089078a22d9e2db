//! The data dir: whether it can be used, which file system and disk it is on (tmpfs loses
//! the queue and the functions at reboot; a spinning disk slows every durable write), and
//! how much room is left.

use std::fs;
use std::path::{Path, PathBuf};

use super::{Check, Status};
use crate::output::size;

/// Below this much free space the platform cannot keep bundles and the queue: a failure.
const FREE_REQUIRED: u64 = 100 << 20;
/// Below this much free space a few bundles fill the disk: a warning.
const FREE_RECOMMENDED: u64 = 1 << 30;

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The device's major and minor numbers (major 0 for file systems without one).
    pub device: (u32, u32),
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// Its file system type (`ext4`, `tmpfs`, `overlay`, …).
    pub fstype: String,
    /// What is mounted: a device path like `/dev/vda1`, or a name.
    pub source: String,
}

/// The mounts listed in a mountinfo text; lines that do not parse are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let mut fields = before.split(' ');
            let (major, minor) = fields.nth(2)?.split_once(':')?;
            let mount_point = fields.nth(1)?;
            let mut after = after.split(' ');
            Some(Mount {
                device: (major.parse().ok()?, minor.parse().ok()?),
                mount_point: PathBuf::from(unescape(mount_point)),
                fstype: after.next()?.to_string(),
                source: unescape(after.next()?),
            })
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// The mount `path` (absolute, without symlinks) is on: of the mounts above it, the last
/// mounted (a later mount hides what it covers), preferring those of `device` (the path's
/// `st_dev`) when it is known.
pub fn mount_of<'a>(
    mounts: &'a [Mount],
    path: &Path,
    device: Option<(u32, u32)>,
) -> Option<&'a Mount> {
    let above = || mounts.iter().filter(|m| path.starts_with(&m.mount_point));
    above()
        .rev()
        .find(|m| Some(m.device) == device)
        .or_else(|| above().next_back())
}

/// The device numbers of the file system `path` is on.
fn device_of(path: &Path) -> Option<(u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    let dev = fs::metadata(path).ok()?.dev();
    let (major, minor) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
    Some((u32::try_from(major).ok()?, u32::try_from(minor).ok()?))
}

/// Whether the mount's disk turns (`/sys/.../queue/rotational`), read under `sys` (`/sys`);
/// `None` when it has no block device or the kernel does not say.
pub fn rotational(sys: &Path, mount: &Mount) -> Option<bool> {
    let (major, minor) = mount.device;
    let by_number = sys.join(format!("dev/block/{major}:{minor}"));
    let device = if major != 0 && by_number.exists() {
        by_number
    } else {
        // btrfs and others report an anonymous device number: go by the source's name.
        let name = mount.source.strip_prefix("/dev/")?.rsplit('/').next()?;
        sys.join("class/block").join(name)
    };
    let device = device.canonicalize().ok()?;
    // A partition has no queue of its own: its disk, one level up, has.
    [
        device.join("queue/rotational"),
        device.join("../queue/rotational"),
    ]
    .iter()
    .find_map(|file| fs::read_to_string(file).ok())
    .map(|text| text.trim() == "1")
}

/// The nearest directory at or above `path` that exists, without symlinks.
fn existing_ancestor(path: &Path) -> Option<PathBuf> {
    path.ancestors()
        .filter(|p| !p.as_os_str().is_empty())
        .find_map(|p| p.canonicalize().ok())
        .or_else(|| std::env::current_dir().ok())
}

/// The checks of the data dir `dir`: usable, its disk, its free space.
pub fn checks(dir: &Path) -> Vec<Check> {
    let Some(existing) = existing_ancestor(dir) else {
        return vec![
            Check::new("data-dir", Status::Fail, dir.display().to_string()).fix(
                "no part of this path exists or can be read: choose another with --data-dir or \
             IRONFAAS_DATA_DIR",
            ),
        ];
    };
    let mounts = fs::read_to_string("/proc/self/mountinfo")
        .map(|text| parse_mountinfo(&text))
        .unwrap_or_default();
    vec![
        access(dir, &existing),
        disk(
            mount_of(&mounts, &existing, device_of(&existing)),
            Path::new("/sys"),
        ),
        free_space(&existing),
    ]
}

/// Whether the platform can create and write the data dir.
fn access(dir: &Path, existing: &Path) -> Check {
    use nix::unistd::{AccessFlags, access};
    let shown = dir.display().to_string();
    let uid = nix::unistd::geteuid();
    let exists = existing == dir.canonicalize().ok().as_deref().unwrap_or(Path::new(""));
    if exists && !existing.is_dir() {
        return Check::new(
            "data-dir",
            Status::Fail,
            format!("{shown} (not a directory)"),
        )
        .fix("it must be a directory: choose another with --data-dir or IRONFAAS_DATA_DIR");
    }
    match access(existing, AccessFlags::W_OK | AccessFlags::X_OK) {
        Ok(()) if exists => Check::new("data-dir", Status::Ok, format!("{shown} (writable)")),
        Ok(()) => Check::new(
            "data-dir",
            Status::Ok,
            format!("{shown} (created at start)"),
        ),
        Err(e) => {
            Check::new("data-dir", Status::Fail, format!("{shown} (not writable)")).fix(format!(
                "uid {uid} cannot write {}: {}; create the data dir for the platform's user \
                 (`install -d -m 700 -o USER {shown}`) or choose another with --data-dir",
                existing.display(),
                e.desc()
            ))
        }
    }
}

/// Which file system and disk the data dir is on.
fn disk(mount: Option<&Mount>, sys: &Path) -> Check {
    let Some(mount) = mount else {
        return Check::new(
            "data-dir-disk",
            Status::NotApplicable,
            "not found in mountinfo",
        );
    };
    let kind = rotational(sys, mount);
    let value = format!(
        "{} on {}{}",
        mount.fstype,
        mount.source,
        match kind {
            Some(true) => " (rotational)",
            Some(false) => " (solid state)",
            None => "",
        }
    );
    let check = Check::new("data-dir-disk", Status::Warn, value)
        .recommended("a local file system on a solid-state disk");
    match mount.fstype.as_str() {
        "tmpfs" | "ramfs" => check
            .why(
                "it is in memory: deployed functions, bundles, secrets and the queue of \
                 asynchronous calls are lost at reboot",
            )
            .fix("put the data dir on a disk: --data-dir or IRONFAAS_DATA_DIR"),
        "overlay" | "aufs" => check
            .why(
                "it is a container's writable layer: lost when the container is recreated, \
                 and slow for the queue's synchronous writes",
            )
            .fix("mount a volume at the data dir (or point --data-dir at one)"),
        "nfs" | "nfs4" | "cifs" | "smb3" | "9p" | "virtiofs" | "fuse.sshfs" | "glusterfs" => check
            .why(
                "it is a network file system: the embedded queue's SQLite database needs \
                     local locking and fast fsync",
            )
            .fix("put the data dir on a local disk: --data-dir or IRONFAAS_DATA_DIR"),
        _ if kind == Some(true) => check
            .why(
                "the kernel reports the disk as rotational: every accepted asynchronous call \
                 waits for a sync to disk, which a spinning disk does about a hundred times a \
                 second (virtual disks often report rotational without being so: ask your \
                 provider)",
            )
            .fix("put the data dir on an SSD (--data-dir), or confirm the virtual disk is one"),
        _ => Check {
            status: Status::Ok,
            ..check
        },
    }
}

/// How much room is left for bundles, unpacked functions and the queue.
fn free_space(existing: &Path) -> Check {
    let stats = match nix::sys::statvfs::statvfs(existing) {
        Ok(stats) => stats,
        Err(e) => {
            return Check::new("data-dir-space", Status::Warn, "unknown").fix(format!(
                "cannot read the free space of {}: {}",
                existing.display(),
                e.desc()
            ));
        }
    };
    let block = stats.fragment_size();
    let free = stats.blocks_available().saturating_mul(block);
    let total = stats.blocks().saturating_mul(block);
    let value = format!("{} free of {}", size(free), size(total));
    let status = if free < FREE_REQUIRED {
        Status::Fail
    } else if free < FREE_RECOMMENDED {
        Status::Warn
    } else {
        Status::Ok
    };
    let check = Check::new("data-dir-space", status, value)
        .recommended(format!("at least {}", size(FREE_RECOMMENDED)));
    if status == Status::Ok {
        return check;
    }
    check
        .why(
            "bundles, unpacked functions, logs and queued calls live there; a full disk makes \
             deploys and asynchronous calls fail",
        )
        .fix(format!(
            "free space on the file system of {} (`ironfaas store gc` removes unused bundles) \
             or move the data dir with --data-dir",
            existing.display()
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24684084k
50 27 8:17 / /srv/my\\040data rw - xfs /dev/sdb1 rw
51 27 0:40 / /var/lib/docker/overlay2/x/merged rw - overlay overlay rw,lowerdir=a
52 27 0:41 / /srv rw - tmpfs tmpfs rw
garbage line
";

    #[test]
    fn mountinfo_lines_are_parsed() {
        let mounts = parse_mountinfo(MOUNTINFO);
        assert_eq!(mounts.len(), 5, "the garbage line is skipped");
        assert_eq!(
            mounts[0],
            Mount {
                device: (254, 0),
                mount_point: PathBuf::from("/"),
                fstype: "ext4".into(),
                source: "/dev/vda".into(),
            }
        );
        assert_eq!(mounts[2].mount_point, PathBuf::from("/srv/my data"));
        assert_eq!(mounts[2].device, (8, 17));
    }

    #[test]
    fn the_last_mount_above_a_path_holds_it() {
        let mounts = parse_mountinfo(MOUNTINFO);
        let on = |p: &str, dev| mount_of(&mounts, Path::new(p), dev).unwrap().fstype.clone();
        assert_eq!(on("/var/lib/ironfaas", None), "ext4");
        assert_eq!(on("/dev/shm/x", None), "tmpfs");
        assert_eq!(
            on("/dev/shmem", None),
            "ext4",
            "a prefix of a name is not a parent"
        );
        // The tmpfs mounted on /srv after the xfs on /srv/my data hides it...
        assert_eq!(on("/srv/my data/ironfaas", None), "tmpfs");
        assert_eq!(on("/srv/other", Some((0, 41))), "tmpfs");
        // ...unless the path's own device says otherwise.
        assert_eq!(on("/srv/my data/ironfaas", Some((8, 17))), "xfs");
    }

    #[test]
    fn disks_and_partitions_tell_whether_they_rotate() {
        let sys = tempfile::tempdir().unwrap();
        let disk = sys.path().join("devices/virtual/block/sdb");
        fs::create_dir_all(disk.join("queue")).unwrap();
        fs::create_dir_all(disk.join("sdb1")).unwrap();
        fs::write(disk.join("queue/rotational"), "1\n").unwrap();
        fs::create_dir_all(sys.path().join("dev/block")).unwrap();
        fs::create_dir_all(sys.path().join("class/block")).unwrap();
        std::os::unix::fs::symlink(disk.join("sdb1"), sys.path().join("dev/block/8:17")).unwrap();
        std::os::unix::fs::symlink(&disk, sys.path().join("class/block/sdb")).unwrap();
        let mounts = parse_mountinfo(MOUNTINFO);
        assert_eq!(
            rotational(sys.path(), &mounts[2]),
            Some(true),
            "a partition"
        );
        let btrfs = Mount {
            device: (0, 44),
            source: "/dev/sdb".into(),
            ..mounts[2].clone()
        };
        assert_eq!(
            rotational(sys.path(), &btrfs),
            Some(true),
            "by the source's name"
        );
        assert_eq!(
            rotational(sys.path(), &mounts[1]),
            None,
            "tmpfs has no disk"
        );
        fs::write(disk.join("queue/rotational"), "0\n").unwrap();
        assert_eq!(rotational(sys.path(), &mounts[2]), Some(false));
    }

    #[test]
    fn tmpfs_and_spinning_disks_are_warned_about() {
        let mounts = parse_mountinfo(MOUNTINFO);
        let no_sys = Path::new("/nonexistent");
        let tmpfs = disk(Some(&mounts[1]), no_sys);
        assert_eq!(tmpfs.status, Status::Warn);
        assert!(tmpfs.why.unwrap().contains("lost at reboot"));
        assert_eq!(
            disk(Some(&mounts[3]), no_sys).status,
            Status::Warn,
            "overlay"
        );
        let ext4 = disk(Some(&mounts[0]), no_sys);
        assert_eq!(
            (ext4.status, ext4.found.as_str()),
            (Status::Ok, "ext4 on /dev/vda")
        );
    }
}
