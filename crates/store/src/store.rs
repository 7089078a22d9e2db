//! The function store: bundles kept once by digest (`blobs/sha256/<hex>`), and image
//! references pointing at digests (`refs/<escaped image>`), over `object_store`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use crate::digest::Digest;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The image reference is not in the store.
    #[error(
        "image '{image}' is not in the function store at {location}; build it first with \
         `ironfaas build` (or `ironfaas up`) using the same data dir"
    )]
    NotFound {
        /// The image reference.
        image: String,
        /// The store's location.
        location: String,
    },
    /// A bundle's bytes do not match its digest.
    #[error(
        "bundle {expected} in the function store is corrupt (its content hashes to {actual}); rebuild and push it again"
    )]
    Corrupt {
        /// The digest it is stored under.
        expected: Digest,
        /// The digest of what was read.
        actual: Digest,
    },
    /// The backend failed.
    #[error("function store at {location}: {message}")]
    Backend {
        /// The store's location.
        location: String,
        /// What failed.
        message: String,
    },
}

/// What a ref object holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RefRecord {
    image: String,
    digest: String,
}

/// Bundles by digest and image references, in a local directory or object storage.
#[derive(Clone)]
pub struct FunctionStore {
    inner: Arc<dyn ObjectStore>,
    location: String,
}

impl std::fmt::Debug for FunctionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionStore")
            .field("location", &self.location)
            .finish()
    }
}

fn ref_key(image: &str) -> ObjectPath {
    let escaped = image
        .replace('%', "%25")
        .replace('/', "%2F")
        .replace(':', "%3A");
    ObjectPath::from(format!("refs/{escaped}"))
}

fn blob_key(digest: &Digest) -> ObjectPath {
    ObjectPath::from(format!("blobs/sha256/{}", digest.hex()))
}

impl FunctionStore {
    /// A store in the local directory `dir` (created if missing).
    pub fn local(dir: &Path) -> Result<FunctionStore, StoreError> {
        let location = dir.display().to_string();
        let backend = |message: String| StoreError::Backend {
            location: location.clone(),
            message,
        };
        std::fs::create_dir_all(dir).map_err(|e| backend(format!("cannot create it: {e}")))?;
        let fs = LocalFileSystem::new_with_prefix(dir).map_err(|e| backend(e.to_string()))?;
        Ok(FunctionStore {
            inner: Arc::new(fs),
            location,
        })
    }

    /// Where the store is, for messages.
    pub fn location(&self) -> &str {
        &self.location
    }

    fn backend_err(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Backend {
            location: self.location.clone(),
            message: e.to_string(),
        }
    }

    /// Stores the bundle file `path` (of digest `digest`) and points `image` at it.
    pub async fn put_bundle(
        &self,
        image: &str,
        path: &Path,
        digest: &Digest,
    ) -> Result<(), StoreError> {
        let key = blob_key(digest);
        if self.inner.head(&key).await.is_err() {
            let bytes = tokio::fs::read(path)
                .await
                .map_err(|e| self.backend_err(e))?;
            let actual = Digest::of(&bytes);
            if actual != *digest {
                return Err(StoreError::Corrupt {
                    expected: *digest,
                    actual,
                });
            }
            self.inner
                .put(&key, PutPayload::from(bytes))
                .await
                .map_err(|e| self.backend_err(e))?;
        }
        self.tag(image, digest).await
    }

    /// Points `image` at the stored bundle `digest`.
    pub async fn tag(&self, image: &str, digest: &Digest) -> Result<(), StoreError> {
        let record = RefRecord {
            image: image.to_string(),
            digest: digest.to_string(),
        };
        let json = serde_json::to_vec(&record).map_err(|e| self.backend_err(e))?;
        self.inner
            .put(&ref_key(image), PutPayload::from(json))
            .await
            .map(|_| ())
            .map_err(|e| self.backend_err(e))
    }

    /// The digest `image` points at.
    pub async fn resolve(&self, image: &str) -> Result<Digest, StoreError> {
        let result = self.inner.get(&ref_key(image)).await;
        let bytes = match result {
            Ok(found) => found.bytes().await.map_err(|e| self.backend_err(e))?,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(StoreError::NotFound {
                    image: image.to_string(),
                    location: self.location.clone(),
                });
            }
            Err(e) => return Err(self.backend_err(e)),
        };
        let record: RefRecord = serde_json::from_slice(&bytes)
            .map_err(|e| self.backend_err(format!("ref of '{image}' is unreadable: {e}")))?;
        record
            .digest
            .parse()
            .map_err(|e| self.backend_err(format!("ref of '{image}': {e}")))
    }

    /// The bundle `digest`, checked against its digest.
    pub async fn fetch(&self, digest: &Digest) -> Result<Bytes, StoreError> {
        let found = self
            .inner
            .get(&blob_key(digest))
            .await
            .map_err(|e| self.backend_err(e))?;
        let bytes = found.bytes().await.map_err(|e| self.backend_err(e))?;
        let actual = Digest::of(&bytes);
        if actual != *digest {
            return Err(StoreError::Corrupt {
                expected: *digest,
                actual,
            });
        }
        Ok(bytes)
    }

    /// Every image reference and the digest it points at, sorted by image.
    pub async fn list(&self) -> Result<Vec<(String, Digest)>, StoreError> {
        let prefix = ObjectPath::from("refs");
        let metas: Vec<_> = self
            .inner
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| self.backend_err(e))?;
        let mut out = Vec::with_capacity(metas.len());
        for meta in metas {
            let bytes = self
                .inner
                .get(&meta.location)
                .await
                .map_err(|e| self.backend_err(e))?
                .bytes()
                .await
                .map_err(|e| self.backend_err(e))?;
            if let Ok(record) = serde_json::from_slice::<RefRecord>(&bytes)
                && let Ok(digest) = record.digest.parse()
            {
                out.push((record.image, digest));
            }
        }
        out.sort();
        Ok(out)
    }
}

/// The default location of the local store inside a data dir.
pub fn local_store_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("store")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::pack;

    async fn store_with_bundle() -> (tempfile::TempDir, FunctionStore, Digest) {
        let dir = tempfile::tempdir().unwrap();
        let src = tempfile::tempdir().unwrap();
        std::fs::write(src.path().join("f"), "x").unwrap();
        let packed = pack(src.path()).unwrap();
        let store = FunctionStore::local(&dir.path().join("store")).unwrap();
        store
            .put_bundle("team/fn:1.0", packed.file.path(), &packed.digest)
            .await
            .unwrap();
        (dir, store, packed.digest)
    }

    #[tokio::test]
    async fn put_resolve_fetch_list() {
        let (_dir, store, digest) = store_with_bundle().await;
        assert_eq!(store.resolve("team/fn:1.0").await.unwrap(), digest);
        let bytes = store.fetch(&digest).await.unwrap();
        assert_eq!(Digest::of(&bytes), digest);
        store.tag("other:latest", &digest).await.unwrap();
        let list = store.list().await.unwrap();
        assert_eq!(
            list,
            vec![
                ("other:latest".into(), digest),
                ("team/fn:1.0".into(), digest)
            ]
        );
    }

    #[tokio::test]
    async fn unknown_image_says_how_to_build() {
        let (_dir, store, _) = store_with_bundle().await;
        let err = store.resolve("nope:latest").await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound { .. }));
        assert!(err.to_string().contains("ironfaas build"), "{err}");
    }

    #[tokio::test]
    async fn corrupt_blob_is_refused() {
        let (dir, store, digest) = store_with_bundle().await;
        let blob = dir.path().join("store/blobs/sha256").join(digest.hex());
        std::fs::write(&blob, b"tampered").unwrap();
        let err = store.fetch(&digest).await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    }
}
