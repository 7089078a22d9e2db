//! Unpacking an untrusted bundle, as the local provider does with whatever the function
//! store (or a `PUT /system/store/...` upload) hands it.
//!
//! The first byte picks how the rest is read: odd, as a bundle as is (zstd-compressed tar);
//! even, as a tar, which the target compresses first, so that the fuzzer can work on tar
//! headers without having to find valid zstd frames. Beyond "no panic, no hang", it asserts:
//! - nothing is written outside the destination: a sibling folder and its file are
//!   untouched, and nothing but the destination appears beside it (no staging folder left
//!   behind, whatever the outcome);
//! - a refused bundle leaves nothing at the destination;
//! - an unpacked bundle holds only folders, regular files (mode 644 or 755) and symlinks
//!   whose targets resolve inside the destination (through other symlinks too), within the
//!   limits; reading its manifest answers (an error or a manifest) without panicking.

#![no_main]

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use ironfaas_store::manifest::Manifest;
use ironfaas_store::unpack::{UnpackLimits, unpack};
use libfuzzer_sys::fuzz_target;

const LIMITS: UnpackLimits = UnpackLimits {
    max_bytes: 1 << 20,
    max_entries: 1000,
};

const CANARY: &[u8] = b"must stay as it is";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let bundle = if mode % 2 == 1 {
        rest.to_vec()
    } else {
        zstd::encode_all(rest, 1).expect("compress in memory")
    };
    let sandbox = tempfile::tempdir().expect("a temporary folder");
    let outside = sandbox.path().join("outside");
    fs::create_dir(&outside).expect("create the outside folder");
    fs::write(outside.join("canary"), CANARY).expect("write the canary");
    let work = sandbox.path().join("work");
    let dest = work.join("out");

    let result = unpack(&bundle[..], &dest, &LIMITS);

    assert_eq!(
        names(sandbox.path()),
        ["outside", "work"],
        "beside the work folder"
    );
    assert_eq!(names(&outside), ["canary"], "in the outside folder");
    assert_eq!(
        fs::read(outside.join("canary")).expect("read the canary"),
        CANARY
    );
    match result {
        Err(err) => {
            assert!(!err.to_string().is_empty());
            assert!(names(&work).is_empty(), "{err} but left {:?}", names(&work));
        }
        Ok(()) => {
            assert_eq!(names(&work), ["out"], "beside the destination");
            let root = fs::canonicalize(&dest).expect("the destination resolves");
            let mut total = 0;
            check_tree(&root, &root, &mut total);
            assert!(total <= LIMITS.max_bytes, "{total} bytes unpacked");
            let _ = Manifest::read_from(&dest);
        }
    }
});

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("list a folder")
        .map(|e| {
            e.expect("read a folder entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// Checks every entry below `dir` (in the unpacked tree at `root`).
fn check_tree(root: &Path, dir: &Path, total: &mut u64) {
    for entry in fs::read_dir(dir).expect("list an unpacked folder") {
        let path = entry.expect("read an unpacked entry").path();
        let meta = fs::symlink_metadata(&path).expect("stat an unpacked entry");
        let kind = meta.file_type();
        if kind.is_dir() {
            check_tree(root, &path, total);
        } else if kind.is_file() {
            let mode = meta.permissions().mode() & 0o7777;
            assert!(mode == 0o644 || mode == 0o755, "{path:?} has mode {mode:o}");
            *total += meta.len();
        } else if kind.is_symlink() {
            let rel = path.strip_prefix(root).expect("below the root");
            if let Err(why) = resolve_inside(root, rel) {
                panic!("symlink {rel:?} leads outside the bundle: {why}");
            }
        } else {
            panic!("{path:?} is a {kind:?}");
        }
    }
}

/// Resolves `rel` below `root` step by step, following symlinks (their targets read from the
/// disk) as the kernel would, and fails if that ever leaves `root`. Where the path stops
/// existing, the rest is taken lexically.
fn resolve_inside(root: &Path, rel: &Path) -> Result<(), String> {
    let mut at: Vec<OsString> = Vec::new();
    // The steps still to take, the next one last.
    let mut todo = steps(rel)?;
    let mut hops = 0;
    while let Some(step) = todo.pop() {
        match step {
            Step::Up => {
                if at.pop().is_none() {
                    return Err(format!("'..' above the root (from {at:?})"));
                }
            }
            Step::Down(name) => {
                at.push(name);
                let here: PathBuf = at.iter().collect();
                if let Ok(target) = fs::read_link(root.join(&here)) {
                    hops += 1;
                    if hops > 40 {
                        return Ok(()); // a loop: the kernel refuses it (ELOOP)
                    }
                    at.pop();
                    todo.extend(steps(&target).map_err(|e| format!("{here:?} -> {e}"))?);
                }
            }
        }
    }
    Ok(())
}

enum Step {
    Up,
    Down(OsString),
}

/// The steps of a relative path, the first one last.
fn steps(path: &Path) -> Result<Vec<Step>, String> {
    let mut out = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(name) => out.push(Step::Down(name.to_os_string())),
            Component::ParentDir => out.push(Step::Up),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!("{path:?} is absolute"));
            }
        }
    }
    out.reverse();
    Ok(out)
}
