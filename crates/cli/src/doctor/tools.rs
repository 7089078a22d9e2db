//! Programs outside ironfaas that functions or options need: the interpreters of the
//! templates (python3, node) and, for a NATS queue, nats-server.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use super::{Check, Status};

/// Where a system-wide program is: sandboxed replicas run as their own user and see the host
/// as such a user does, so an interpreter under /root or /home is out of their reach.
const SYSTEM_DIRS: [&str; 5] = ["/usr/bin", "/usr/local/bin", "/bin", "/usr/sbin", "/sbin"];
/// How long `PROGRAM --version` may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(5);

/// The checks of python3, node and nats-server.
pub async fn checks() -> Vec<Check> {
    vec![
        interpreter("python3", "python3-http", "python3").await,
        interpreter("node", "node", "nodejs").await,
        nats_server().await,
    ]
}

/// `name` in the system's directories, else on `$PATH` (the second is `true` then).
fn find(name: &str) -> Option<(PathBuf, bool)> {
    let system = SYSTEM_DIRS.iter().map(|dir| Path::new(dir).join(name));
    if let Some(found) = system.into_iter().find(|p| is_executable(p)) {
        return Some((found, false));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
        .map(|p| (p, true))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The first line `PROGRAM --version` prints, if it answers in time.
async fn version(program: &Path) -> Option<String> {
    let run = tokio::process::Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(VERSION_TIMEOUT, run)
        .await
        .ok()?
        .ok()?;
    let text = if output.stdout.is_empty() {
        output.stderr
    } else {
        output.stdout
    };
    String::from_utf8_lossy(&text)
        .lines()
        .next()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
}

/// The interpreter `name` that the template `template` runs on (Debian package `package`).
async fn interpreter(name: &str, template: &str, package: &str) -> Check {
    let recommended = format!("{name} in /usr/bin");
    let Some((path, elsewhere)) = find(name) else {
        return Check::new(name, Status::Warn, "not found")
            .recommended(recommended)
            .why(format!("functions of the {template} template run on it"))
            .fix(format!(
                "`apt-get install {package}` (or your distribution's package) if you deploy \
                 {template} functions"
            ));
    };
    let value = match version(&path).await {
        Some(version) => format!("{version} at {}", shown_with_target(&path)),
        None => shown_with_target(&path),
    };
    if !elsewhere {
        return Check::new(name, Status::Ok, value).recommended(recommended);
    }
    Check::new(name, Status::Warn, value)
        .recommended(recommended)
        .why(format!(
            "only found outside the system's directories: sandboxed {template} replicas run as \
             their own user and may not reach it"
        ))
        .fix(format!(
            "`apt-get install {package}` so that /usr/bin/{name} exists (or use --sandbox off)"
        ))
}

/// `path`, and the file it really is when it is a symlink (`/usr/bin/python3 ->
/// /usr/bin/python3.11`): the one replicas run.
fn shown_with_target(path: &Path) -> String {
    match path.canonicalize() {
        Ok(real) if real != path => format!("{} -> {}", path.display(), real.display()),
        _ => path.display().to_string(),
    }
}

/// nats-server: only for `--queue nats://`; the embedded queue needs nothing.
async fn nats_server() -> Check {
    let Some((path, _)) = find("nats-server") else {
        return Check::new("nats-server", Status::NotApplicable, "not installed").why(
            "only needed to run a NATS JetStream queue here (--queue nats://); the embedded \
             queue needs nothing",
        );
    };
    let value = match version(&path).await {
        Some(version) => format!("{version} at {}", path.display()),
        None => path.display().to_string(),
    };
    Check::new("nats-server", Status::Ok, value)
}
