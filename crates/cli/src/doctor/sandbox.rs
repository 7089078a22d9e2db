//! The sandbox's needs, judged by the runtime's own detection (the one `ironfaas serve` uses,
//! so the two never disagree): root, user namespaces, bubblewrap, cgroups, seccomp, and a test
//! sandbox built exactly as a replica's.

use std::path::Path;

use ironfaas_runtime::sandbox::{
    CgroupVersion, SandboxSupport, seccomp_support, try_bwrap, user_namespaces,
};

use super::{Check, Status};
use crate::platform::SandboxMode;

/// The checks of the sandbox's needs, for `serve --sandbox MODE`.
pub async fn checks(mode: SandboxMode) -> Vec<Check> {
    let support = SandboxSupport::detect().await;
    // A missing part fails `--sandbox on`, only weakens `auto`, and does not matter with `off`.
    let missing = match mode {
        SandboxMode::On => Status::Fail,
        SandboxMode::Auto => Status::Warn,
        SandboxMode::Off => Status::NotApplicable,
    };
    let from = |name: &str, found: Result<String, String>, absent: &str| match found {
        Ok(value) => Check::new(name, Status::Ok, value),
        Err(fix) => Check::new(name, missing, absent).fix(fix),
    };
    let uid = nix::unistd::geteuid();
    vec![
        from(
            "root",
            support
                .root()
                .map(|()| "uid 0".to_string())
                .map_err(String::from),
            &format!("uid {uid}"),
        )
        .recommended("root, for sandboxes"),
        from("user-namespaces", user_namespaces(), "not allowed"),
        bubblewrap(&support, missing).await,
        cgroups(&support, missing),
        from("seccomp", seccomp_support(), "not available"),
        overall(&support, mode, missing),
    ]
}

/// bubblewrap installed, and starting: through the test sandbox, else on its own.
async fn bubblewrap(support: &SandboxSupport, missing: Status) -> Check {
    let (path, version) = match support.bwrap() {
        Ok(found) => found,
        Err(fix) => return Check::new("bubblewrap", missing, "not installed").fix(fix),
    };
    let found = format!("{version} at {}", path.display());
    if let Some(Ok(())) = support.probe() {
        return Check::new(
            "bubblewrap",
            Status::Ok,
            format!("{found}, ran a test sandbox"),
        );
    }
    match try_bwrap(path).await {
        Ok(()) => Check::new(
            "bubblewrap",
            Status::Ok,
            format!("{found}, starts a user namespace"),
        ),
        Err(fix) => Check::new("bubblewrap", missing, format!("{found}, does not start")).fix(fix),
    }
}

/// The memory, cpu and pids controllers found, and whether this process may create cgroups.
fn cgroups(support: &SandboxSupport, missing: Status) -> Check {
    let root = match support.cgroups() {
        Ok(root) => root,
        Err(fix) => return Check::new("cgroups", missing, "controllers missing").fix(fix),
    };
    let places: Vec<&Path> = root.dirs().iter().filter_map(|d| d.parent()).collect();
    let version = match root.version() {
        CgroupVersion::V1 => "v1",
        CgroupVersion::V2 => "v2",
    };
    let value = format!(
        "memory, cpu, pids ({version}: {})",
        places
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let writable = places.iter().try_for_each(|place| {
        nix::unistd::access(*place, nix::unistd::AccessFlags::W_OK)
            .map_err(|e| format!("{}: {}", place.display(), e.desc()))
    });
    match writable {
        Ok(()) => Check::new("cgroups", Status::Ok, value),
        Err(e) => Check::new("cgroups", missing, format!("{value}, not writable")).fix(format!(
            "cannot create cgroups here ({e}): run ironfaas as root with the cgroup file \
             system mounted read-write (in a container: give it a writable cgroup of its own)"
        )),
    }
}

/// What `serve --sandbox MODE` will do: the runtime's own verdict.
fn overall(support: &SandboxSupport, mode: SandboxMode, missing: Status) -> Check {
    if mode == SandboxMode::Off {
        return Check::new("sandbox", Status::NotApplicable, "off (--sandbox off)")
            .why("replicas run as plain processes of the platform's user, without limits");
    }
    if support.is_ready() {
        return Check::new("sandbox", Status::Ok, "replicas run sandboxed")
            .recommended("sandboxed");
    }
    let value = match mode {
        SandboxMode::On => "cannot sandbox: `serve --sandbox on` refuses to start",
        _ => "replicas run unsandboxed",
    };
    let fix = match support.probe() {
        Some(Err(probe)) => probe.to_string(),
        _ => "fix what the checks above say (root, bubblewrap, cgroups), or accept it with \
              --sandbox off"
            .to_string(),
    };
    Check::new("sandbox", missing, value)
        .recommended("sandboxed")
        .why(
            "without a sandbox, functions see what the platform's user sees (the data dir with \
             every function's secrets included) and have no memory, CPU or process limits",
        )
        .fix(fix)
}
