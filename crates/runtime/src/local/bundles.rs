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
        let bytes = self.store.fetch(digest).await.map_err(|e| e.to_string())?;
        let dest = path.clone();
        tokio::task::spawn_blocking(move || unpack(&bytes[..], &dest, &UnpackLimits::default()))
            .await
            .map_err(|e| format!("unpacking {digest} failed: {e}"))?
            .map_err(|e| format!("bundle {digest}: {e}"))?;
        Ok(path)
    }
}
