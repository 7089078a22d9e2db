//! The seccomp filter bwrap installs before it runs the function: everything is allowed but
//! the usual escape routes (mounting, namespaces, kernel modules and kexec, keyrings, ptrace,
//! BPF, perf, handle-based opens, userfaultfd, io_uring), which fail with EPERM. libseccomp
//! compiles it for the native ABI and the 32-bit ones the kernel may accept (x32, i386), so
//! switching ABI does not get around it.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::sync::OnceLock;

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};

use nix::sys::memfd::{MFdFlags, memfd_create};

use super::SandboxError;

/// System calls refused outright.
const DENIED: &[&str] = &[
    // Mounts and root changes.
    "mount",
    "umount",
    "umount2",
    "pivot_root",
    "chroot",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    // Joining other namespaces.
    "setns",
    // Kernel code.
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    // Kernel keyrings.
    "add_key",
    "keyctl",
    "request_key",
    // Other processes, the kernel's programmable parts, file handles.
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "bpf",
    "perf_event_open",
    "open_by_handle_at",
    "name_to_handle_at",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    // Machine-wide switches.
    "reboot",
    "swapon",
    "swapoff",
    "syslog",
    "acct",
    "quotactl",
    "iopl",
    "ioperm",
];

/// Namespace flags `unshare` and `clone` may not carry.
const NAMESPACE_FLAGS: &[u64] = &[
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWCGROUP as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
];

/// `CLONE_NEWTIME`: valid for `unshare` only (in `clone` its bit is part of the exit signal).
const CLONE_NEWTIME: u64 = 0x80;

/// Which actions the kernel's seccomp filters may take; the deny-list needs `errno`.
const ACTIONS_AVAIL: &str = "/proc/sys/kernel/seccomp/actions_avail";

/// Whether the kernel filters system calls and libseccomp builds this sandbox's filter: the
/// library's version, else what is missing.
pub fn seccomp_support() -> Result<String, String> {
    let actions = std::fs::read_to_string(ACTIONS_AVAIL).map_err(|e| {
        format!(
            "this kernel offers no seccomp filters ({ACTIONS_AVAIL}: {e}): the sandbox needs a \
             kernel built with CONFIG_SECCOMP_FILTER (every distribution kernel is)"
        )
    })?;
    if !actions.split_whitespace().any(|a| a == "errno") {
        return Err(format!(
            "this kernel's seccomp filters cannot answer EPERM (no `errno` in {ACTIONS_AVAIL}: \
             {}); use a newer kernel",
            actions.trim()
        ));
    }
    program().map_err(|e| format!("{e}; install libseccomp 2.5 or later"))?;
    let version = libseccomp::ScmpVersion::current()
        .map_or_else(|_| "of unknown version".to_string(), |v| v.to_string());
    Ok(format!("kernel filters, libseccomp {version}"))
}

/// The compiled filter (a BPF program as bwrap reads it), built once per process.
fn program() -> Result<&'static [u8], SandboxError> {
    static PROGRAM: OnceLock<Result<Vec<u8>, String>> = OnceLock::new();
    PROGRAM
        .get_or_init(|| compile().map_err(|e| format!("cannot build the seccomp filter: {e}")))
        .as_deref()
        .map_err(|e| SandboxError(e.clone()))
}

fn compile() -> Result<Vec<u8>, String> {
    let filter = rules().map_err(|e| e.to_string())?;
    export(&filter)
}

fn rules() -> Result<ScmpFilterContext, libseccomp::error::SeccompError> {
    let eperm = ScmpAction::Errno(libc::EPERM);
    let mut filter = ScmpFilterContext::new(ScmpAction::Allow)?;
    // bwrap sets no-new-privileges itself; the filter is loaded by bwrap, not by libseccomp.
    filter.set_ctl_nnp(false)?;
    if ScmpArch::native() == ScmpArch::X8664 {
        filter.add_arch(ScmpArch::X32)?;
        filter.add_arch(ScmpArch::X86)?;
    }
    for name in DENIED {
        // A call this kernel's headers do not know cannot be made either.
        if let Ok(syscall) = ScmpSyscall::from_name(name) {
            filter.add_rule(eperm, syscall)?;
        }
    }
    let unshare = ScmpSyscall::from_name("unshare")?;
    let clone = ScmpSyscall::from_name("clone")?;
    for flag in NAMESPACE_FLAGS.iter().copied().chain([CLONE_NEWTIME]) {
        let has_flag = ScmpArgCompare::new(0, ScmpCompareOp::MaskedEqual(flag), flag);
        filter.add_rule_conditional(eperm, unshare, &[has_flag])?;
    }
    for &flag in NAMESPACE_FLAGS {
        let has_flag = ScmpArgCompare::new(0, ScmpCompareOp::MaskedEqual(flag), flag);
        filter.add_rule_conditional(eperm, clone, &[has_flag])?;
    }
    // clone3 passes its flags in memory, which seccomp cannot read: report it missing, and
    // the C library falls back to clone, whose flags the rules above check.
    if let Ok(clone3) = ScmpSyscall::from_name("clone3") {
        filter.add_rule(ScmpAction::Errno(libc::ENOSYS), clone3)?;
    }
    Ok(filter)
}

/// A pipe whose read end holds the filter followed by end-of-file, for `bwrap --seccomp FD`.
pub(crate) fn program_pipe() -> Result<OwnedFd, SandboxError> {
    let (reader, gate) = held_program_pipe()?;
    gate.open()?;
    Ok(reader)
}

/// A pipe whose read end will get the filter when the returned gate opens. bwrap reads the
/// filter after it has built the whole sandbox, right before it starts the program: until the
/// gate opens, the sandbox waits there, ready.
pub(crate) fn held_program_pipe() -> Result<(OwnedFd, StartGate), SandboxError> {
    let program = program()?;
    let (reader, writer) = std::io::pipe()
        .map_err(|e| SandboxError(format!("cannot create a pipe for the seccomp filter: {e}")))?;
    Ok((OwnedFd::from(reader), StartGate { writer, program }))
}

/// Starts a sandbox built ahead of time: see [`held_program_pipe`]. Dropping it unopened
/// makes bwrap fail (an empty filter) instead of starting the program.
#[derive(Debug)]
pub struct StartGate {
    writer: std::io::PipeWriter,
    program: &'static [u8],
}

impl StartGate {
    /// Hands bwrap its filter: the program starts.
    pub fn open(mut self) -> Result<(), SandboxError> {
        // A few KiB, well inside a pipe's buffer: this write does not block.
        self.writer
            .write_all(self.program)
            .map_err(|e| SandboxError(format!("cannot pass the seccomp filter to bwrap: {e}")))
    }
}

/// The filter as a BPF program, exported through a memory file: `seccomp_export_bpf_mem`
/// exists only from libseccomp 2.6 on.
fn export(filter: &ScmpFilterContext) -> Result<Vec<u8>, String> {
    use std::io::{Read, Seek};
    let fd = memfd_create("ironfaas-seccomp", MFdFlags::MFD_CLOEXEC)
        .map_err(|e| format!("cannot create a memory file: {e}"))?;
    let mut file = std::fs::File::from(fd);
    filter.export_bpf(&file).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.rewind()
        .and_then(|()| file.read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read the exported program back: {e}"))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_compiles_to_whole_bpf_instructions() {
        let program = program().unwrap();
        // struct sock_filter is 8 bytes.
        assert!(!program.is_empty());
        assert_eq!(program.len() % 8, 0);
    }
}
