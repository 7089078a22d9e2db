//! What the local provider persists per function, so functions come back after a restart:
//! one JSON file per function under `<data dir>/functions/<namespace>/<name>.json`, replaced
//! atomically.

use std::fs;
use std::io::{self, Write};
use std::path::PathBuf;

use ironfaas_spec::names::FunctionRef;
use ironfaas_spec::wire::FunctionDeployment;
use serde::{Deserialize, Serialize};

/// The persisted desired state of one function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct FunctionRecord {
    /// The spec as deployed (image normalised, namespace filled in).
    pub deployment: FunctionDeployment,
    /// The bundle digest the image pointed at when deployed.
    pub digest: String,
    /// When the function was first deployed (RFC 3339).
    pub created_at: String,
    /// Desired replicas.
    pub replicas: u64,
}

/// The directory of function records.
#[derive(Debug, Clone)]
pub(crate) struct RecordStore {
    dir: PathBuf,
}

impl RecordStore {
    /// Records under `dir`.
    pub fn new(dir: PathBuf) -> Self {
        RecordStore { dir }
    }

    fn path(&self, function: &FunctionRef) -> PathBuf {
        self.dir
            .join(&function.namespace)
            .join(format!("{}.json", function.name))
    }

    /// Writes the record durably: temp file, fsync, rename, fsync of the directory.
    pub fn save(&self, function: &FunctionRef, record: &FunctionRecord) -> io::Result<()> {
        let path = self.path(function);
        let dir = path.parent().unwrap_or(&self.dir);
        fs::create_dir_all(dir)?;
        let json = serde_json::to_vec_pretty(record).map_err(io::Error::other)?;
        let tmp = dir.join(format!(".{}.tmp", function.name));
        let mut file = fs::File::create(&tmp)?;
        file.write_all(&json)?;
        file.sync_all()?;
        fs::rename(&tmp, &path)?;
        fs::File::open(dir)?.sync_all()
    }

    /// Deletes the record; a missing one is fine.
    pub fn delete(&self, function: &FunctionRef) -> io::Result<()> {
        match fs::remove_file(self.path(function)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Every record on disk; unreadable ones are returned as errors naming the file.
    pub fn load_all(&self) -> Vec<Result<FunctionRecord, String>> {
        let mut out = Vec::new();
        let Ok(namespaces) = fs::read_dir(&self.dir) else {
            return out;
        };
        for ns in namespaces.flatten() {
            let Ok(files) = fs::read_dir(ns.path()) else {
                continue;
            };
            for file in files.flatten() {
                let path = file.path();
                if path.extension().is_none_or(|e| e != "json") {
                    continue;
                }
                let parsed = fs::read(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
                    .map_err(|e| format!("{}: {e}", path.display()));
                out.push(parsed);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironfaas_spec::wire::FunctionSpec;

    #[test]
    fn save_load_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = RecordStore::new(dir.path().join("functions"));
        let f = FunctionRef::new("echo", "");
        let record = FunctionRecord {
            deployment: FunctionDeployment {
                service: "echo".into(),
                spec: FunctionSpec {
                    image: "echo:latest".into(),
                    ..Default::default()
                },
            },
            digest: "sha256:00".into(),
            created_at: "2024-01-01T00:00:00Z".into(),
            replicas: 2,
        };
        store.save(&f, &record).unwrap();
        let loaded = store.load_all();
        assert_eq!(loaded, vec![Ok(record)]);
        fs::write(dir.path().join("functions/openfaas-fn/bad.json"), "{").unwrap();
        assert_eq!(store.load_all().iter().filter(|r| r.is_err()).count(), 1);
        store.delete(&f).unwrap();
        store.delete(&f).unwrap();
        assert_eq!(store.load_all().iter().filter(|r| r.is_ok()).count(), 0);
    }
}
