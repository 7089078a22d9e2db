//! Finding the program a start command names: relative to the bundle, or on PATH. A Python
//! launcher that is a script (a pyenv shim adds ~60 ms to every start) is replaced once by the
//! interpreter it launches.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Resolves program names to executable paths, remembering what it found.
#[derive(Debug, Default)]
pub(crate) struct Resolver {
    cache: Mutex<HashMap<String, PathBuf>>,
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn is_script(path: &Path) -> bool {
    let mut head = [0u8; 2];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head == b"#!"
}

fn is_python(name: &str) -> bool {
    name == "python"
        || name.strip_prefix("python3").is_some_and(|rest| {
            rest.is_empty()
                || rest
                    .strip_prefix('.')
                    .is_some_and(|v| v.bytes().all(|b| b.is_ascii_digit()))
        })
}

/// Asks a Python launcher which interpreter it runs.
fn real_python(launcher: &Path) -> Option<PathBuf> {
    let out = std::process::Command::new(launcher)
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    (out.status.success() && is_executable(&path)).then_some(path)
}

impl Resolver {
    /// The executable for `program`: a path is taken relative to `cwd`, a bare name is looked
    /// up on `path_var`. The error says what was looked for and where.
    pub fn resolve(&self, program: &str, cwd: &Path, path_var: &str) -> Result<PathBuf, String> {
        if program.contains('/') {
            let path = cwd.join(program);
            return if is_executable(&path) {
                Ok(path)
            } else if path.exists() {
                Err(format!(
                    "'{program}' in the bundle is not executable; make it executable (chmod +x) \
                     before building, or start it through its interpreter (e.g. 'bash {program}')"
                ))
            } else {
                Err(format!(
                    "'{program}' does not exist in the function's bundle"
                ))
            };
        }
        if let Some(found) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(program)
        {
            return Ok(found.clone());
        }
        let found = std::env::split_paths(path_var)
            .map(|dir| dir.join(program))
            .find(|p| is_executable(p))
            .ok_or_else(|| {
                format!("'{program}' was not found on PATH ({path_var}); install it or give its full path")
            })?;
        let found = if is_python(program) && is_script(&found) {
            real_python(&found).unwrap_or(found)
        } else {
            found
        };
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(program.to_string(), found.clone());
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_programs_on_path_and_in_bundle() {
        let r = Resolver::default();
        let path = std::env::var("PATH").unwrap();
        let sh = r.resolve("sh", Path::new("/"), &path).unwrap();
        assert!(sh.is_absolute() && is_executable(&sh));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("handler"), "#!/bin/sh\n").unwrap();
        let err = r.resolve("./handler", dir.path(), &path).unwrap_err();
        assert!(err.contains("not executable"), "{err}");
        std::fs::set_permissions(
            dir.path().join("handler"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        assert_eq!(
            r.resolve("./handler", dir.path(), &path).unwrap(),
            dir.path().join("./handler")
        );
        assert!(
            r.resolve("./missing", dir.path(), &path)
                .unwrap_err()
                .contains("does not exist")
        );
        assert!(
            r.resolve("no-such-program-x", dir.path(), &path)
                .unwrap_err()
                .contains("not found on PATH")
        );
    }

    #[test]
    fn python_names() {
        assert!(is_python("python3") && is_python("python3.11") && is_python("python"));
        assert!(!is_python("python3-config") && !is_python("pythonista"));
    }

    #[test]
    fn python_shim_is_replaced_by_the_interpreter() {
        let r = Resolver::default();
        let path = std::env::var("PATH").unwrap();
        let python = r.resolve("python3", Path::new("/"), &path).unwrap();
        assert!(
            !is_script(&python),
            "{} is still a script",
            python.display()
        );
    }
}
