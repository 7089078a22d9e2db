//! Unpacked bundles, shared by every replica that runs them: `<data dir>/bundles/<hex digest>/`,
//! unpacked once from the function store.

use std::path::PathBuf;

use ironfaas_store::manifest::MANIFEST_FILE;
use ironfaas_store::unpack::{UnpackLimits, unpack};
use ironfaas_store::{Digest, FunctionStore};

/// Unpacks bundles on first use.
pub(crate) struct BundleCache {
    dir: PathBuf,
    store: FunctionStore,
    unpacking: tokio::sync::Mutex<()>,
}

impl BundleCache {
    /// Bundles under `dir`, fetched from `store`.
    pub fn new(dir: PathBuf, store: FunctionStore) -> Self {
        BundleCache {
            dir,
            store,
            unpacking: tokio::sync::Mutex::new(()),
        }
    }

    /// The directory of the unpacked bundle `digest`, unpacking it if needed.
    pub async fn ensure(&self, digest: &Digest) -> Result<PathBuf, String> {
        let path = self.dir.join(digest.hex());
        if path.join(MANIFEST_FILE).is_file() {
            return Ok(path);
        }
        let _one_at_a_time = self.unpacking.lock().await;
        if path.join(MANIFEST_FILE).is_file() {
            return Ok(path);
        }
        if path.exists() {
            std::fs::remove_dir_all(&path).map_err(|e| {
                format!("cannot clear the incomplete bundle {}: {e}", path.display())
            })?;
        }
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
        let staged = tempfile::NamedTempFile::new_in(&self.dir).map_err(|e| {
            format!(
                "cannot stage bundle {digest} in {}: {e}",
                self.dir.display()
            )
        })?;
        self.store
            .fetch_to(digest, staged.path())
            .await
            .map_err(|e| e.to_string())?;
        let dest = path.clone();
        tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(staged.path()).map_err(|e| {
                ironfaas_store::unpack::UnpackError::Io {
                    path: staged.path().to_path_buf(),
                    source: e,
                }
            })?;
            unpack(
                std::io::BufReader::new(file),
                &dest,
                &UnpackLimits::default(),
            )
        })
        .await
        .map_err(|e| format!("unpacking {digest} failed: {e}"))?
        .map_err(|e| format!("bundle {digest}: {e}"))?;
        Ok(path)
    }
}
