//! Packing a directory into a bundle: a deterministic tar (sorted entries, zero times and
//! owners) compressed with zstd. The same files always give the same digest.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::digest::{Digest, HashingWriter};

/// zstd level: fast to build, still small.
const ZSTD_LEVEL: i32 = 6;

/// A packed bundle in a temporary file.
#[derive(Debug)]
pub struct PackedBundle {
    /// The compressed bundle; deleted when dropped.
    pub file: tempfile::NamedTempFile,
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
}

/// Why packing failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot pack {path}: {source}")]
pub struct PackError {
    /// The file or directory that failed.
    pub path: PathBuf,
    /// The I/O error.
    pub source: io::Error,
}

fn pack_err(path: &Path) -> impl FnOnce(io::Error) -> PackError + '_ {
    move |source| PackError {
        path: path.to_path_buf(),
        source,
    }
}

/// Packs the directory `root` (without `.git` folders) into a bundle.
pub fn pack(root: &Path) -> Result<PackedBundle, PackError> {
    let file = tempfile::NamedTempFile::new().map_err(pack_err(root))?;
    let hashing = HashingWriter::new(io::BufWriter::new(file.reopen().map_err(pack_err(root))?));
    let encoder = zstd::Encoder::new(hashing, ZSTD_LEVEL).map_err(pack_err(root))?;
    let mut tar = tar::Builder::new(encoder);
    let mut entries = Vec::new();
    collect(root, Path::new(""), &mut entries)?;
    for rel in &entries {
        append(&mut tar, root, rel)?;
    }
    let encoder = tar.into_inner().map_err(pack_err(root))?;
    let hashing = encoder.finish().map_err(pack_err(root))?;
    let (digest, size, mut out) = hashing.finish();
    out.flush().map_err(pack_err(root))?;
    Ok(PackedBundle { file, digest, size })
}

/// Lists `dir` (relative `rel` under `root`) depth-first in sorted order.
fn collect(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> Result<(), PackError> {
    let dir = root.join(rel);
    let mut names: Vec<_> = fs::read_dir(&dir)
        .map_err(pack_err(&dir))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(pack_err(&dir))?;
    names.sort();
    for name in names {
        if name == ".git" {
            continue;
        }
        let child = rel.join(&name);
        let meta = fs::symlink_metadata(root.join(&child)).map_err(pack_err(&child))?;
        out.push(child.clone());
        if meta.is_dir() {
            collect(root, &child, out)?;
        }
    }
    Ok(())
}

fn append<W: Write>(tar: &mut tar::Builder<W>, root: &Path, rel: &Path) -> Result<(), PackError> {
    let path = root.join(rel);
    let meta = fs::symlink_metadata(&path).map_err(pack_err(&path))?;
    let mut header = tar::Header::new_gnu();
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    let executable = meta.permissions().mode() & 0o111 != 0;
    if meta.is_dir() {
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o755);
        header.set_size(0);
        tar.append_data(&mut header, rel, io::empty())
            .map_err(pack_err(&path))
    } else if meta.file_type().is_symlink() {
        let target = fs::read_link(&path).map_err(pack_err(&path))?;
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_mode(0o777);
        header.set_size(0);
        tar.append_link(&mut header, rel, target)
            .map_err(pack_err(&path))
    } else if meta.is_file() {
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(if executable { 0o755 } else { 0o644 });
        header.set_size(meta.len());
        let file = fs::File::open(&path).map_err(pack_err(&path))?;
        tar.append_data(&mut header, rel, file)
            .map_err(pack_err(&path))
    } else {
        Err(PackError {
            path,
            source: io::Error::new(
                io::ErrorKind::InvalidInput,
                "only files, folders and symlinks can go into a bundle (this is a device, socket or fifo)",
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("function/sub")).unwrap();
        fs::write(dir.path().join("index.py"), "print('hi')\n").unwrap();
        fs::write(dir.path().join("function/sub/data.txt"), "data").unwrap();
        fs::write(dir.path().join("run.sh"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(dir.path().join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
        symlink("sub/data.txt", dir.path().join("function/link")).unwrap();
        fs::create_dir_all(dir.path().join(".git")).unwrap();
        fs::write(dir.path().join(".git/HEAD"), "x").unwrap();
        dir
    }

    #[test]
    fn packing_is_deterministic() {
        let a = tree();
        let b = tree();
        // Different mtimes and creation order must not change the digest.
        std::thread::sleep(std::time::Duration::from_millis(10));
        fs::write(b.path().join("index.py"), "print('hi')\n").unwrap();
        assert_eq!(
            pack(a.path()).unwrap().digest,
            pack(b.path()).unwrap().digest
        );
        fs::write(b.path().join("index.py"), "print('changed')\n").unwrap();
        assert_ne!(
            pack(a.path()).unwrap().digest,
            pack(b.path()).unwrap().digest
        );
    }

    #[test]
    fn digest_and_size_match_the_file() {
        let packed = pack(tree().path()).unwrap();
        let bytes = fs::read(packed.file.path()).unwrap();
        assert_eq!(bytes.len() as u64, packed.size);
        assert_eq!(Digest::of(&bytes), packed.digest);
    }

    #[test]
    fn entries_keep_modes_and_skip_git() {
        let packed = pack(tree().path()).unwrap();
        let decoder = zstd::Decoder::new(fs::File::open(packed.file.path()).unwrap()).unwrap();
        let mut archive = tar::Archive::new(decoder);
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let path = entry.path().unwrap().display().to_string();
            let mode = entry.header().mode().unwrap();
            seen.push((path, mode));
        }
        assert!(seen.contains(&("run.sh".to_string(), 0o755)));
        assert!(seen.contains(&("index.py".to_string(), 0o644)));
        assert!(seen.iter().any(|(p, _)| p == "function/link"));
        assert!(!seen.iter().any(|(p, _)| p.starts_with(".git")));
    }
}
