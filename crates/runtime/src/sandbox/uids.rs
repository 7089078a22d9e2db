//! A stable unprivileged uid (and the same gid) per function, recorded in a small file.
//!
//! Each function gets a number in `base..base + count` (by default 200000..265536, above the
//! usual system and login ranges; pick another range if `/etc/subuid` hands this one to a
//! user). The first choice is `base + hash(namespace/name) % count`, so a function usually
//! gets the same uid even if the file is lost; on a collision the next free number is taken.
//! The file (`uid namespace/name` per line) keeps the choice across restarts, so a
//! function's files (secrets, work dir) stay its own. Removing a function does not free its
//! uid: a later function must not inherit files that might still carry it.

use std::collections::BTreeMap;
use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{FunctionRef, Identity, SandboxError};

/// Hands out and remembers function uids.
#[derive(Debug)]
pub struct UidAllocator {
    path: PathBuf,
    base: u32,
    count: u32,
    /// `namespace/name` -> uid.
    assigned: Mutex<BTreeMap<String, u32>>,
}

impl UidAllocator {
    /// The first uid of the default range.
    pub const DEFAULT_BASE: u32 = 200_000;
    /// How many uids the default range holds.
    pub const DEFAULT_COUNT: u32 = 65_536;

    /// Opens (or starts) the record at `path` with the default range.
    pub fn open(path: &Path) -> Result<UidAllocator, SandboxError> {
        UidAllocator::with_range(
            path,
            UidAllocator::DEFAULT_BASE,
            UidAllocator::DEFAULT_COUNT,
        )
    }

    /// Opens (or starts) the record at `path`, handing out `base..base + count`.
    pub fn with_range(path: &Path, base: u32, count: u32) -> Result<UidAllocator, SandboxError> {
        if base < 1000 || count == 0 || base.checked_add(count).is_none() {
            return Err(SandboxError(format!(
                "the uid range {base}..+{count} is not usable: it must be non-empty, start at \
                 1000 or above (below are system accounts) and end below 2^32"
            )));
        }
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == ErrorKind::NotFound => String::new(),
            Err(e) => {
                return Err(SandboxError(format!(
                    "cannot read the function uid record {}: {e}",
                    path.display()
                )));
            }
        };
        let mut assigned = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let parsed = line
                .split_once(' ')
                .and_then(|(uid, f)| Some((uid.parse::<u32>().ok()?, f.trim().to_string())));
            let Some((uid, function)) = parsed else {
                return Err(SandboxError(format!(
                    "{}:{}: '{line}' is not 'UID NAMESPACE/NAME'; fix or delete the line \
                     (the function then gets a uid again)",
                    path.display(),
                    n + 1
                )));
            };
            assigned.insert(function, uid);
        }
        Ok(UidAllocator {
            path: path.to_path_buf(),
            base,
            count,
            assigned: Mutex::new(assigned),
        })
    }

    /// The function's uid/gid, allocated and recorded on first use.
    pub fn identity(&self, function: &FunctionRef) -> Result<Identity, SandboxError> {
        let key = format!("{}/{}", function.namespace, function.name);
        let mut assigned = self.assigned.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(&uid) = assigned.get(&key) {
            return Ok(Identity { uid, gid: uid });
        }
        let taken: std::collections::BTreeSet<u32> = assigned.values().copied().collect();
        let first = fnv1a(key.as_bytes()) % u64::from(self.count);
        let uid = (0..u64::from(self.count))
            .map(|i| self.base + ((first + i) % u64::from(self.count)) as u32)
            .find(|uid| !taken.contains(uid))
            .ok_or_else(|| {
                SandboxError(format!(
                    "all {} uids from {} are taken: widen the range or remove stale lines from {}",
                    self.count,
                    self.base,
                    self.path.display()
                ))
            })?;
        assigned.insert(key, uid);
        if let Err(e) = self.save(&assigned) {
            assigned.remove(&format!("{}/{}", function.namespace, function.name));
            return Err(e);
        }
        Ok(Identity { uid, gid: uid })
    }

    fn save(&self, assigned: &BTreeMap<String, u32>) -> Result<(), SandboxError> {
        let text: String = assigned
            .iter()
            .map(|(f, uid)| format!("{uid} {f}\n"))
            .collect();
        let tmp = self.path.with_extension("tmp");
        let written = (|| {
            let mut file = fs::File::create(&tmp)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            fs::rename(&tmp, &self.path)
        })();
        written.map_err(|e| {
            SandboxError(format!(
                "cannot record function uids in {}: {e}",
                self.path.display()
            ))
        })
    }
}

/// FNV-1a, 64 bits: stable across builds and platforms, unlike the std hasher.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str) -> FunctionRef {
        FunctionRef::new(name, "openfaas-fn")
    }

    #[test]
    fn uids_are_stable_distinct_and_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("uids");
        let uids = UidAllocator::open(&path).unwrap();
        let a = uids.identity(&f("a")).unwrap();
        let b = uids.identity(&f("b")).unwrap();
        assert_ne!(a.uid, b.uid);
        assert_eq!(a.uid, a.gid);
        assert!((200_000..265_536).contains(&a.uid));
        assert_eq!(uids.identity(&f("a")).unwrap(), a);
        let again = UidAllocator::open(&path).unwrap();
        assert_eq!(again.identity(&f("b")).unwrap(), b);
        // Without the file, the hash gives the same first choice.
        let fresh = UidAllocator::open(&dir.path().join("other")).unwrap();
        assert_eq!(fresh.identity(&f("a")).unwrap(), a);
    }

    #[test]
    fn collisions_take_the_next_free_uid_until_the_range_is_full() {
        let dir = tempfile::tempdir().unwrap();
        let uids = UidAllocator::with_range(&dir.path().join("uids"), 5000, 2).unwrap();
        let a = uids.identity(&f("a")).unwrap();
        let b = uids.identity(&f("b")).unwrap();
        assert_eq!(
            [a.uid.min(b.uid), a.uid.max(b.uid)],
            [5000, 5001],
            "two functions share a range of two"
        );
        let err = uids.identity(&f("c")).unwrap_err();
        assert!(err.0.contains("all 2 uids from 5000 are taken"), "{err}");
    }

    #[test]
    fn bad_records_and_ranges_are_explained() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("uids");
        fs::write(&path, "200001 ns/a\nnonsense\n").unwrap();
        let err = UidAllocator::open(&path).unwrap_err();
        assert!(
            err.0.ends_with("the function then gets a uid again)"),
            "{err}"
        );
        assert!(err.0.contains(":2: 'nonsense'"), "{err}");
        let err = UidAllocator::with_range(&path, 0, 10).unwrap_err();
        assert!(err.0.contains("start at 1000"), "{err}");
    }
}
