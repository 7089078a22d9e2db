//! Starting and signalling child processes: each child leads its own process group (so a
//! signal reaches everything it forked) and dies with the process that started it.

use std::io;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// Makes `cmd` start in a new process group that is killed if this process dies.
pub fn isolate_group(cmd: &mut tokio::process::Command) {
    cmd.process_group(0).kill_on_drop(true);
    #[allow(unsafe_code)]
    // SAFETY: the closure runs between fork and exec and only makes the prctl system call,
    // which is async-signal-safe; it touches no memory shared with the parent.
    unsafe {
        cmd.pre_exec(|| nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(io::Error::from));
    }
}

/// Sends `signal` to the process group led by `pid`; a group that is gone already is fine.
pub fn signal_group(pid: u32, signal: Signal) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = killpg(Pid::from_raw(pid), signal);
    }
}
