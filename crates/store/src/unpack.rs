//! Unpacking a bundle safely: every entry is checked before anything is written, nothing is
//! written through a symlink, no symlink leads outside (not even through other symlinks),
//! and the result appears at its destination all at once or not at all.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};

/// Bounds on what a bundle may unpack to.
#[derive(Debug, Clone, Copy)]
pub struct UnpackLimits {
    /// Total bytes of all files.
    pub max_bytes: u64,
    /// Number of entries.
    pub max_entries: u64,
}

impl Default for UnpackLimits {
    fn default() -> Self {
        UnpackLimits {
            max_bytes: 2 << 30,
            max_entries: 200_000,
        }
    }
}

/// Why a bundle was refused or could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// An entry is unsafe or the bundle is too big; nothing was extracted.
    #[error("bundle refused: {0}")]
    Refused(String),
    /// Reading the bundle or writing the files failed.
    #[error("cannot unpack the bundle into {path}: {source}")]
    Io {
        /// Where it failed.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> UnpackError + '_ {
    move |source| UnpackError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Checks that `path` is relative and made only of normal components (no `..`, no root).
fn clean_relative(path: &Path) -> Result<PathBuf, UnpackError> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            _ => {
                return Err(UnpackError::Refused(format!(
                    "entry '{}' leaves the bundle (absolute path or '..')",
                    path.display()
                )));
            }
        }
    }
    Ok(out)
}

/// Checks that a symlink at `link` (relative to the bundle root) pointing at `target` stays
/// inside the bundle when resolved lexically.
fn check_symlink(link: &Path, target: &Path) -> Result<(), UnpackError> {
    let refuse = || {
        UnpackError::Refused(format!(
            "symlink '{}' points outside the bundle (to '{}')",
            link.display(),
            target.display()
        ))
    };
    if target.is_absolute() {
        return Err(refuse());
    }
    let mut depth: i64 = link.components().count() as i64 - 1;
    for component in target.components() {
        match component {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            _ => return Err(refuse()),
        }
        if depth < 0 {
            return Err(refuse());
        }
    }
    Ok(())
}

/// The symlinks the kernel follows in one path lookup before it gives up (`ELOOP`).
const MAX_SYMLINK_HOPS: u32 = 40;

/// One step of a path walk.
enum Step {
    Up,
    Down(OsString),
}

/// The steps of the relative path `path`, the first one last; `None` if it is absolute.
fn steps(path: &Path) -> Option<Vec<Step>> {
    let mut out = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(name) => out.push(Step::Down(name.to_os_string())),
            Component::ParentDir => out.push(Step::Up),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    out.reverse();
    Some(out)
}

/// Checks that the symlink `link` (relative to `root`, with the whole bundle unpacked there)
/// resolves inside `root` when followed step by step through the bundle's other symlinks, as
/// the kernel would: each link's target stays inside on its own ([`check_symlink`]), but a
/// `..` after a link to a folder leaves from where that link leads. A loop longer than the
/// kernel follows is left alone: opening it fails.
fn check_resolves_inside(root: &Path, link: &Path) -> Result<(), UnpackError> {
    let refuse = || {
        UnpackError::Refused(format!(
            "symlink '{}' points outside the bundle (through other symlinks)",
            link.display()
        ))
    };
    let mut at: Vec<OsString> = Vec::new();
    let mut todo = steps(link).ok_or_else(refuse)?;
    let mut hops = 0;
    while let Some(step) = todo.pop() {
        match step {
            Step::Up => {
                at.pop().ok_or_else(refuse)?;
            }
            Step::Down(name) => {
                at.push(name);
                let here: PathBuf = at.iter().collect();
                if let Ok(target) = fs::read_link(root.join(&here)) {
                    hops += 1;
                    if hops > MAX_SYMLINK_HOPS {
                        return Ok(());
                    }
                    at.pop();
                    todo.extend(steps(&target).ok_or_else(refuse)?);
                }
            }
        }
    }
    Ok(())
}

/// Refuses to write below a path component that is a symlink, so a crafted entry cannot
/// redirect a later write outside `root`.
fn check_no_symlink_parents(root: &Path, rel: &Path) -> Result<(), UnpackError> {
    let mut current = root.to_path_buf();
    if let Some(parent) = rel.parent() {
        for part in parent.components() {
            current.push(part);
            match fs::symlink_metadata(&current) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(UnpackError::Refused(format!(
                        "entry '{}' would be written through the symlink '{}'",
                        rel.display(),
                        part.as_os_str().to_string_lossy()
                    )));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Unpacks the zstd-compressed tar `bundle` into `dest`, which must not exist yet.
///
/// Entries with absolute paths or `..`, symlinks leading outside (on their own or through
/// other symlinks), hard links, devices and fifos are refused, as is a bundle over `limits`; then nothing is left at `dest`.
pub fn unpack(bundle: impl Read, dest: &Path, limits: &UnpackLimits) -> Result<(), UnpackError> {
    let parent = dest.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(io_err(parent))?;
    let staging = tempfile::Builder::new()
        .prefix(".unpacking-")
        .tempdir_in(parent)
        .map_err(io_err(parent))?;
    extract(bundle, staging.path(), limits)?;
    let staged = staging.keep();
    fs::rename(&staged, dest).map_err(|e| {
        let _ = fs::remove_dir_all(&staged);
        UnpackError::Io {
            path: dest.to_path_buf(),
            source: e,
        }
    })
}

fn extract(bundle: impl Read, root: &Path, limits: &UnpackLimits) -> Result<(), UnpackError> {
    let decoder = zstd::Decoder::new(bundle).map_err(io_err(root))?;
    let mut archive = tar::Archive::new(decoder);
    let (mut total_bytes, mut count) = (0u64, 0u64);
    let mut symlinks = Vec::new();
    for entry in archive.entries().map_err(io_err(root))? {
        let mut entry = entry.map_err(io_err(root))?;
        count += 1;
        if count > limits.max_entries {
            return Err(UnpackError::Refused(format!(
                "it has more than {} entries",
                limits.max_entries
            )));
        }
        let raw_path = entry.path().map_err(io_err(root))?.into_owned();
        let rel = clean_relative(&raw_path)?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        check_no_symlink_parents(root, &rel)?;
        let target = root.join(&rel);
        let kind = entry.header().entry_type();
        match kind {
            tar::EntryType::Directory => {
                fs::create_dir_all(&target).map_err(io_err(&target))?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let size = entry.header().size().map_err(io_err(&target))?;
                total_bytes = total_bytes.saturating_add(size);
                if total_bytes > limits.max_bytes {
                    return Err(UnpackError::Refused(format!(
                        "it unpacks to more than {} bytes",
                        limits.max_bytes
                    )));
                }
                if let Some(dir) = target.parent() {
                    fs::create_dir_all(dir).map_err(io_err(dir))?;
                }
                let mode = entry.header().mode().map_err(io_err(&target))?;
                let mut out = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&target)
                    .map_err(io_err(&target))?;
                let copied =
                    io::copy(&mut (&mut entry).take(size), &mut out).map_err(io_err(&target))?;
                if copied != size {
                    return Err(UnpackError::Refused(format!(
                        "entry '{}' is truncated",
                        rel.display()
                    )));
                }
                let mode = if mode & 0o111 != 0 { 0o755 } else { 0o644 };
                fs::set_permissions(&target, fs::Permissions::from_mode(mode))
                    .map_err(io_err(&target))?;
            }
            tar::EntryType::Symlink => {
                let link_target = entry
                    .link_name()
                    .map_err(io_err(&target))?
                    .ok_or_else(|| {
                        UnpackError::Refused(format!("symlink '{}' has no target", rel.display()))
                    })?
                    .into_owned();
                check_symlink(&rel, &link_target)?;
                if let Some(dir) = target.parent() {
                    fs::create_dir_all(dir).map_err(io_err(dir))?;
                }
                symlink(&link_target, &target).map_err(io_err(&target))?;
                symlinks.push(rel);
            }
            other => {
                return Err(UnpackError::Refused(format!(
                    "entry '{}' is a {}; bundles may hold only files, folders and symlinks",
                    rel.display(),
                    describe(other)
                )));
            }
        }
    }
    // Only now that every link is in place: a link may lead through one unpacked after it.
    for link in &symlinks {
        check_resolves_inside(root, link)?;
    }
    Ok(())
}

fn describe(kind: tar::EntryType) -> &'static str {
    match kind {
        tar::EntryType::Link => "hard link",
        tar::EntryType::Char => "character device",
        tar::EntryType::Block => "block device",
        tar::EntryType::Fifo => "fifo",
        _ => "special entry",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::pack;

    /// Builds a raw zstd tar from hand-made headers, to craft hostile bundles.
    fn hostile(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
        let mut tar_bytes = Vec::new();
        {
            let mut builder = tar::Builder::new(&mut tar_bytes);
            for (path, kind, data, link) in entries {
                let mut header = tar::Header::new_gnu();
                header.set_entry_type(*kind);
                header.set_mode(0o644);
                header.set_size(data.len() as u64);
                // Write the name bytes directly: tar::Builder refuses '..' itself.
                let name = &mut header.as_gnu_mut().unwrap().name;
                name[..path.len()].copy_from_slice(path.as_bytes());
                if let Some(link) = link {
                    header.set_link_name(link).unwrap();
                }
                header.set_cksum();
                builder.append(&header, *data).unwrap();
            }
            builder.finish().unwrap();
        }
        zstd::encode_all(&tar_bytes[..], 1).unwrap()
    }

    fn try_unpack(bytes: &[u8]) -> (Result<(), UnpackError>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let result = unpack(bytes, &dir.path().join("out"), &UnpackLimits::default());
        (result, dir)
    }

    fn assert_refused(bytes: &[u8], needle: &str) {
        let (result, dir) = try_unpack(bytes);
        let err = result.expect_err("must be refused").to_string();
        assert!(err.contains(needle), "{err}");
        let left: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "nothing may be left behind: {left:?}");
    }

    #[test]
    fn round_trip() {
        let src = tempfile::tempdir().unwrap();
        fs::create_dir_all(src.path().join("a/b")).unwrap();
        fs::write(src.path().join("a/b/f.txt"), "hello").unwrap();
        fs::write(src.path().join("x"), "#!/bin/sh").unwrap();
        fs::set_permissions(src.path().join("x"), fs::Permissions::from_mode(0o700)).unwrap();
        symlink("../a/b/f.txt", src.path().join("a/link")).unwrap();
        let packed = pack(src.path()).unwrap();
        let (result, dir) = try_unpack(&fs::read(packed.file.path()).unwrap());
        result.unwrap();
        let out = dir.path().join("out");
        assert_eq!(fs::read_to_string(out.join("a/b/f.txt")).unwrap(), "hello");
        assert_eq!(fs::read_to_string(out.join("a/link")).unwrap(), "hello");
        let mode = fs::metadata(out.join("x")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o755);
    }

    #[test]
    fn refuses_parent_paths() {
        assert_refused(
            &hostile(&[("../evil", tar::EntryType::Regular, b"x", None)]),
            "leaves the bundle",
        );
        assert_refused(
            &hostile(&[("a/../../evil", tar::EntryType::Regular, b"x", None)]),
            "leaves",
        );
    }

    #[test]
    fn refuses_absolute_paths() {
        assert_refused(
            &hostile(&[("/tmp/evil", tar::EntryType::Regular, b"x", None)]),
            "leaves",
        );
    }

    #[test]
    fn refuses_symlinks_out() {
        let abs = hostile(&[("l", tar::EntryType::Symlink, b"", Some("/etc/passwd"))]);
        assert_refused(&abs, "points outside");
        let up = hostile(&[("a/l", tar::EntryType::Symlink, b"", Some("../../x"))]);
        assert_refused(&up, "points outside");
    }

    #[test]
    fn refuses_symlinks_out_through_other_symlinks() {
        // Each link stays inside on its own ('a/d' -> '..' is the root, 'a/d/..' is 'a'
        // lexically), but 'l' resolves through 'a/d' to the root's parent.
        let through = hostile(&[
            ("a", tar::EntryType::Directory, b"", None),
            ("a/d", tar::EntryType::Symlink, b"", Some("..")),
            ("l", tar::EntryType::Symlink, b"", Some("a/d/..")),
        ]);
        assert_refused(&through, "symlink 'l' points outside");
        // The same when the link is unpacked before the one it goes through.
        let before = hostile(&[
            ("l", tar::EntryType::Symlink, b"", Some("a/d/../escape")),
            ("a", tar::EntryType::Directory, b"", None),
            ("a/d", tar::EntryType::Symlink, b"", Some("..")),
        ]);
        assert_refused(&before, "symlink 'l' points outside");
        // Links through links that stay inside, and a loop (the kernel refuses to follow it
        // anyway), are kept.
        let inside = hostile(&[
            ("a", tar::EntryType::Directory, b"", None),
            ("a/f", tar::EntryType::Regular, b"x", None),
            ("b", tar::EntryType::Symlink, b"", Some("a")),
            ("c", tar::EntryType::Symlink, b"", Some("b/../b/f")),
            ("loop", tar::EntryType::Symlink, b"", Some("loop")),
        ]);
        let (result, dir) = try_unpack(&inside);
        result.unwrap();
        assert_eq!(fs::read_to_string(dir.path().join("out/c")).unwrap(), "x");
    }

    #[test]
    fn refuses_writes_through_symlinks() {
        let bytes = hostile(&[
            ("d", tar::EntryType::Directory, b"", None),
            ("l", tar::EntryType::Symlink, b"", Some("d")),
            ("l/f", tar::EntryType::Regular, b"x", None),
        ]);
        assert_refused(&bytes, "through the symlink");
    }

    #[test]
    fn refuses_devices_fifos_and_hard_links() {
        assert_refused(
            &hostile(&[("dev", tar::EntryType::Char, b"", None)]),
            "character device",
        );
        assert_refused(&hostile(&[("p", tar::EntryType::Fifo, b"", None)]), "fifo");
        assert_refused(
            &hostile(&[("h", tar::EntryType::Link, b"", Some("x"))]),
            "hard link",
        );
    }

    #[test]
    fn refuses_oversized_bundles() {
        let bytes = hostile(&[("big", tar::EntryType::Regular, &[0u8; 1000], None)]);
        let dir = tempfile::tempdir().unwrap();
        let limits = UnpackLimits {
            max_bytes: 999,
            max_entries: 10,
        };
        let err = unpack(&bytes[..], &dir.path().join("out"), &limits).unwrap_err();
        assert!(err.to_string().contains("more than 999 bytes"), "{err}");
        assert!(!dir.path().join("out").exists());
    }

    #[test]
    fn refuses_garbage() {
        let (result, _dir) = try_unpack(b"not a bundle at all");
        assert!(matches!(result, Err(UnpackError::Io { .. })));
    }
}
