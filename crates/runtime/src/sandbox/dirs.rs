//! Host directories a sandbox shows to its function, prepared with the right owner and mode:
//! the replica's socket dir and work dir (its own, writable), and its secrets (read-only to
//! it, unreadable to every other function).

use std::fs;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Uid, chown};

use super::{Identity, SandboxError};

/// Creates `dir` (and its parents) if needed, owned by `identity` with `mode` (e.g. 0o700).
pub fn prepare_owned_dir(dir: &Path, identity: Identity, mode: u32) -> Result<(), SandboxError> {
    fs::create_dir_all(dir)
        .map_err(|e| SandboxError(format!("cannot create {}: {e}", dir.display())))?;
    own(dir, identity, mode)
}

fn own(path: &Path, identity: Identity, mode: u32) -> Result<(), SandboxError> {
    chown(
        path,
        Some(Uid::from_raw(identity.uid)),
        Some(Gid::from_raw(identity.gid)),
    )
    .map_err(|e| {
        SandboxError(format!(
            "cannot give {} to uid {}: {e}; this needs root",
            path.display(),
            identity.uid
        ))
    })?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| SandboxError(format!("cannot set the mode of {}: {e}", path.display())))
}

/// Whether `name` can be a secret's file name: what Kubernetes allows for a Secret's name.
fn valid_secret_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
}

/// Makes `dir` hold exactly `secrets` (name, value), each a file of mode 0400 owned by
/// `identity`, the directory itself mode 0500 owned by it too; what was there is replaced.
pub fn write_secrets(
    dir: &Path,
    identity: Identity,
    secrets: &[(&str, &[u8])],
) -> Result<(), SandboxError> {
    if let Some((bad, _)) = secrets.iter().find(|(n, _)| !valid_secret_name(n)) {
        return Err(SandboxError(format!(
            "'{bad}' cannot name a secret file: use letters, digits, '-', '.' and '_'"
        )));
    }
    let staging = sibling(dir, "new")?;
    remove_if_present(&staging)?;
    fs::create_dir_all(&staging)
        .map_err(|e| SandboxError(format!("cannot create {}: {e}", staging.display())))?;
    fs::set_permissions(&staging, fs::Permissions::from_mode(0o700))
        .map_err(|e| SandboxError(format!("cannot set the mode of {}: {e}", staging.display())))?;
    for (name, value) in secrets {
        let path = staging.join(name);
        let written = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o400)
            .open(&path)
            .and_then(|mut f| f.write_all(value).and_then(|()| f.sync_all()));
        written.map_err(|e| SandboxError(format!("cannot write {}: {e}", path.display())))?;
        own(&path, identity, 0o400)?;
    }
    own(&staging, identity, 0o500)?;
    remove_if_present(dir)?;
    fs::rename(&staging, dir).map_err(|e| {
        SandboxError(format!(
            "cannot move {} to {}: {e}",
            staging.display(),
            dir.display()
        ))
    })
}

fn sibling(dir: &Path, suffix: &str) -> Result<PathBuf, SandboxError> {
    let name = dir.file_name().ok_or_else(|| {
        SandboxError(format!(
            "{} cannot be a secrets directory: it has no name",
            dir.display()
        ))
    })?;
    let mut name = name.to_os_string();
    name.push(format!(".{suffix}"));
    Ok(dir.with_file_name(name))
}

fn remove_if_present(dir: &Path) -> Result<(), SandboxError> {
    // A secrets dir is read-only (0500); its owner may still need to empty it.
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(SandboxError(format!(
            "cannot remove {}: {e}",
            dir.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn secret_names_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let me = Identity {
            uid: nix::unistd::getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
        };
        for bad in ["", "..", "a/b", "a b"] {
            let err = write_secrets(&dir.path().join("s"), me, &[(bad, b"x")]).unwrap_err();
            assert!(err.0.contains("cannot name a secret file"), "{err}");
        }
        write_secrets(&dir.path().join("s"), me, &[("db-password", b"hunter2")]).unwrap();
        let file = dir.path().join("s/db-password");
        assert_eq!(fs::metadata(&file).unwrap().mode() & 0o777, 0o400);
        assert_eq!(
            fs::metadata(dir.path().join("s")).unwrap().mode() & 0o777,
            0o500
        );
        write_secrets(&dir.path().join("s"), me, &[("other", b"x")]).unwrap();
        assert!(!file.exists(), "a rewrite replaces the whole set");
    }
}
