//! The function store: bundles kept once by digest (`blobs/sha256/<hex>`), and image
//! references pointing at digests (`refs/<escaped image>`), over `object_store`: a local
//! directory, or an S3 bucket (see [`crate::s3`]) under a prefix.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt;

use crate::digest::Digest;
use crate::error::{ErrorContext, StoreError, is_missing_object};
use crate::s3::{S3Config, StoreLocation};

/// Part size of multipart uploads on the local backend (which has no minimum).
const LOCAL_PART_SIZE: usize = 8 * 1024 * 1024;

/// How old an unreferenced blob must be before [`FunctionStore::gc`] removes it: a bundle is
/// uploaded first and tagged afterwards (by a second request, for the gateway), and a
/// collection in between must not take it.
pub const GC_GRACE: Duration = Duration::from_secs(15 * 60);

/// What a ref object holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RefRecord {
    image: String,
    digest: String,
}

/// A stored bundle blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written.
    pub last_modified: std::time::SystemTime,
}

/// What [`FunctionStore::gc`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// The blobs removed, with their sizes.
    pub removed: Vec<(Digest, u64)>,
    /// How many blobs are still referenced by an image or pinned by `keep`.
    pub kept: usize,
    /// How many unreferenced blobs were left because they are younger than the grace period.
    pub recent: usize,
    /// The bytes freed.
    pub freed_bytes: u64,
}

/// How uploads are cut into parts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UploadTuning {
    /// Bundles up to this size are sent in one request; larger ones in parts of this size.
    pub part_size: usize,
    /// How many parts may be in flight at once (memory is about `(this + 1) * part_size`).
    pub concurrency: usize,
}

/// Bundles by digest and image references, in a local directory or object storage.
#[derive(Clone)]
pub struct FunctionStore {
    pub(crate) inner: Arc<dyn ObjectStore>,
    pub(crate) ctx: ErrorContext,
    pub(crate) tuning: UploadTuning,
}

impl std::fmt::Debug for FunctionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionStore")
            .field("location", &self.ctx.location)
            .finish()
    }
}

pub(crate) fn ref_key(image: &str) -> ObjectPath {
    let escaped = image
        .replace('%', "%25")
        .replace('/', "%2F")
        .replace(':', "%3A");
    ObjectPath::from(format!("refs/{escaped}"))
}

pub(crate) fn blob_key(digest: &Digest) -> ObjectPath {
    ObjectPath::from(format!("blobs/sha256/{}", digest.hex()))
}

impl FunctionStore {
    /// A store in the local directory `dir` (created if missing).
    pub fn local(dir: &Path) -> Result<FunctionStore, StoreError> {
        let ctx = ErrorContext {
            location: dir.display().to_string(),
            s3: None,
        };
        std::fs::create_dir_all(dir).map_err(|e| {
            ctx.other(format!(
                "cannot create the directory: {e}; choose a writable data dir"
            ))
        })?;
        let fs = LocalFileSystem::new_with_prefix(dir).map_err(|e| ctx.error(e))?;
        Ok(FunctionStore {
            inner: Arc::new(fs),
            ctx,
            tuning: UploadTuning {
                part_size: LOCAL_PART_SIZE,
                concurrency: 1,
            },
        })
    }

    /// A store in the S3 bucket of `config`, checked by listing it once (so wrong credentials,
    /// a missing bucket or an unreachable endpoint fail here, with an error that says which).
    pub async fn s3(config: S3Config) -> Result<FunctionStore, StoreError> {
        crate::s3::open(config).await
    }

    /// The store at `location`: a directory path, `file:///dir`, or
    /// `s3://BUCKET[/PREFIX][?endpoint=URL&region=R&allow_http=true&virtual_hosted_style=true]`
    /// with what the URL leaves out taken from the usual `AWS_*` environment variables.
    pub async fn open(location: &str) -> Result<FunctionStore, StoreError> {
        match StoreLocation::parse(location)? {
            StoreLocation::Local(dir) => FunctionStore::local(&dir),
            StoreLocation::S3(config) => FunctionStore::s3(config.with_env()).await,
        }
    }

    /// A store over any `object_store` backend (for tests and embedding); `location` is for
    /// messages.
    pub fn from_object_store(inner: Arc<dyn ObjectStore>, location: &str) -> FunctionStore {
        FunctionStore {
            inner,
            ctx: ErrorContext {
                location: location.to_string(),
                s3: None,
            },
            tuning: UploadTuning {
                part_size: LOCAL_PART_SIZE,
                concurrency: 1,
            },
        }
    }

    /// Where the store is, for messages.
    pub fn location(&self) -> &str {
        &self.ctx.location
    }

    /// Stores the bundle file `path` (of digest `digest`) and points `image` at it.
    ///
    /// The file is streamed, never read whole into memory, and hashed on the way: the blob
    /// becomes visible only once its bytes proved to match `digest`. A bundle already stored
    /// (and intact) is not sent again.
    pub async fn put_bundle(
        &self,
        image: &str,
        path: &Path,
        digest: &Digest,
    ) -> Result<(), StoreError> {
        if !self.blob_intact(digest).await? {
            let what = format!("bundle file {}", path.display());
            let file = tokio::fs::File::open(path).await.map_err(|e| {
                self.ctx
                    .other(format!("cannot read {what}: {e}; pack the function again"))
            })?;
            let body = crate::upload::file_chunks(file);
            let what_for_err = what.clone();
            crate::upload::upload(self, body, digest, u64::MAX, &what)
                .await
                .map_err(|e| match e {
                    StoreError::Interrupted { message, .. } => self.ctx.other(format!(
                        "cannot read {what_for_err}: {message}; pack the function again"
                    )),
                    other => other,
                })?;
        }
        self.tag(image, digest).await
    }

    /// Receives a bundle upload (what the gateway's upload endpoint calls with the request
    /// body) and returns its digest once it is stored.
    ///
    /// The body is streamed: at most `max_size` bytes are accepted ([`StoreError::TooLarge`]
    /// past that), the sha256 is computed as bytes arrive, and the blob becomes visible only
    /// after the whole body hashed to `expected` ([`StoreError::Mismatch`] otherwise; a failed
    /// body gives [`StoreError::Interrupted`]). In every failure nothing is left visible.
    pub async fn receive<S, E>(
        &self,
        body: S,
        expected: &Digest,
        max_size: u64,
    ) -> Result<Digest, StoreError>
    where
        S: futures_util::Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let body = body.map(|item| item.map_err(|e| e.to_string()));
        let stored = self.blob_intact(expected).await?;
        if stored {
            crate::upload::verify_only(body, expected, max_size, "upload").await?;
        } else {
            crate::upload::upload(self, body, expected, max_size, "upload").await?;
        }
        Ok(*expected)
    }

    /// Whether the blob `digest` is stored and hashes to its name (a corrupt copy counts as
    /// absent, so that the next upload replaces it).
    pub(crate) async fn blob_intact(&self, digest: &Digest) -> Result<bool, StoreError> {
        let found = match self.inner.get(&blob_key(digest)).await {
            Ok(found) => found,
            Err(e) if is_missing_object(&e) => return Ok(false),
            Err(e) => return Err(self.ctx.error(e)),
        };
        let mut stream = found.into_stream();
        let mut hasher = Sha256::new();
        while let Some(chunk) = stream.next().await {
            hasher.update(chunk.map_err(|e| self.ctx.error(e))?);
        }
        Ok(Digest::from_hasher(hasher) == *digest)
    }

    /// Points `image` at the stored bundle `digest`.
    pub async fn tag(&self, image: &str, digest: &Digest) -> Result<(), StoreError> {
        let record = RefRecord {
            image: image.to_string(),
            digest: digest.to_string(),
        };
        let json = serde_json::to_vec(&record).map_err(|e| self.ctx.other(e))?;
        self.inner
            .put(&ref_key(image), PutPayload::from(json))
            .await
            .map(|_| ())
            .map_err(|e| self.ctx.error(e))
    }

    /// The digest `image` points at.
    pub async fn resolve(&self, image: &str) -> Result<Digest, StoreError> {
        let result = self.inner.get(&ref_key(image)).await;
        let bytes = match result {
            Ok(found) => found.bytes().await.map_err(|e| self.ctx.error(e))?,
            Err(e) if is_missing_object(&e) => {
                return Err(StoreError::NotFound {
                    image: image.to_string(),
                    location: self.ctx.location.clone(),
                });
            }
            Err(e) => return Err(self.ctx.error(e)),
        };
        let record: RefRecord = serde_json::from_slice(&bytes).map_err(|e| {
            self.ctx.other(format!(
                "ref of '{image}' is unreadable: {e}; push the image again"
            ))
        })?;
        record.digest.parse().map_err(|e| {
            self.ctx
                .other(format!("ref of '{image}': {e}; push the image again"))
        })
    }

    /// Removes the image reference `image` (not its bundle: see [`FunctionStore::gc`]) and
    /// returns the digest it pointed at.
    pub async fn remove(&self, image: &str) -> Result<Digest, StoreError> {
        let digest = self.resolve(image).await?;
        self.inner
            .delete(&ref_key(image))
            .await
            .map_err(|e| self.ctx.error(e))?;
        Ok(digest)
    }

    /// The bundle `digest`, checked against its digest.
    pub async fn fetch(&self, digest: &Digest) -> Result<Bytes, StoreError> {
        let found = self.get_blob(digest).await?;
        let bytes = found.bytes().await.map_err(|e| self.ctx.error(e))?;
        let actual = Digest::of(&bytes);
        if actual != *digest {
            return Err(StoreError::Corrupt {
                expected: *digest,
                actual,
            });
        }
        Ok(bytes)
    }

    /// Streams the bundle `digest` into the file `dest` (written beside it, then renamed into
    /// place only once it hashed to `digest`) and returns its size.
    pub async fn fetch_to(&self, digest: &Digest, dest: &Path) -> Result<u64, StoreError> {
        let dir = dest.parent().unwrap_or(Path::new("."));
        let io_err = |e: std::io::Error| {
            self.ctx.other(format!(
                "cannot write bundle {digest} to {}: {e}; check that the directory is writable",
                dest.display()
            ))
        };
        let tmp = tempfile::NamedTempFile::new_in(dir).map_err(io_err)?;
        let found = self.get_blob(digest).await?;
        let mut file = tokio::fs::File::from_std(tmp.reopen().map_err(io_err)?);
        let mut stream = found.into_stream();
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.ctx.error(e))?;
            hasher.update(&chunk);
            size += chunk.len() as u64;
            file.write_all(&chunk).await.map_err(io_err)?;
        }
        file.sync_all().await.map_err(io_err)?;
        drop(file);
        let actual = Digest::from_hasher(hasher);
        if actual != *digest {
            return Err(StoreError::Corrupt {
                expected: *digest,
                actual,
            });
        }
        tmp.persist(dest).map_err(|e| io_err(e.error))?;
        Ok(size)
    }

    async fn get_blob(&self, digest: &Digest) -> Result<object_store::GetResult, StoreError> {
        match self.inner.get(&blob_key(digest)).await {
            Ok(found) => Ok(found),
            Err(e) if is_missing_object(&e) => Err(StoreError::MissingBlob {
                digest: *digest,
                location: self.ctx.location.clone(),
            }),
            Err(e) => Err(self.ctx.error(e)),
        }
    }

    /// The size in bytes of the stored bundle `digest`.
    pub async fn blob_size(&self, digest: &Digest) -> Result<u64, StoreError> {
        match self.inner.head(&blob_key(digest)).await {
            Ok(meta) => Ok(meta.size),
            Err(e) if is_missing_object(&e) => Err(StoreError::MissingBlob {
                digest: *digest,
                location: self.ctx.location.clone(),
            }),
            Err(e) => Err(self.ctx.error(e)),
        }
    }

    /// Every image reference and the digest it points at, sorted by image.
    pub async fn list(&self) -> Result<Vec<(String, Digest)>, StoreError> {
        let prefix = ObjectPath::from("refs");
        let metas: Vec<_> = self
            .inner
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| self.ctx.error(e))?;
        let mut out = Vec::with_capacity(metas.len());
        for meta in metas {
            let bytes = match self.inner.get(&meta.location).await {
                Ok(found) => found.bytes().await.map_err(|e| self.ctx.error(e))?,
                // Removed since it was listed.
                Err(e) if is_missing_object(&e) => continue,
                Err(e) => return Err(self.ctx.error(e)),
            };
            if let Ok(record) = serde_json::from_slice::<RefRecord>(&bytes)
                && let Ok(digest) = record.digest.parse()
            {
                out.push((record.image, digest));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Every stored bundle blob with its size, sorted by digest.
    pub async fn list_blobs(&self) -> Result<Vec<BlobInfo>, StoreError> {
        let prefix = ObjectPath::from("blobs/sha256");
        let metas: Vec<_> = self
            .inner
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| self.ctx.error(e))?;
        let mut out: Vec<BlobInfo> = metas
            .into_iter()
            .filter_map(|meta| {
                let name = meta.location.filename()?;
                let digest = Digest::from_hex(name).filter(|d| d.hex() == name)?;
                Some(BlobInfo {
                    digest,
                    size: meta.size,
                    last_modified: meta.last_modified.into(),
                })
            })
            .collect();
        out.sort_by_key(|b| b.digest);
        Ok(out)
    }

    /// Removes the bundles that no image points at and that are not in `keep` (the digests
    /// running deployments pin), leaving those younger than [`GC_GRACE`].
    pub async fn gc(&self, keep: &[Digest]) -> Result<GcReport, StoreError> {
        self.gc_with_grace(keep, GC_GRACE).await
    }

    /// [`FunctionStore::gc`] with another grace period (zero removes fresh uploads too).
    pub async fn gc_with_grace(
        &self,
        keep: &[Digest],
        grace: Duration,
    ) -> Result<GcReport, StoreError> {
        let referenced = |refs: Vec<(String, Digest)>| -> BTreeSet<Digest> {
            refs.into_iter()
                .map(|(_, d)| d)
                .chain(keep.iter().copied())
                .collect()
        };
        let live = referenced(self.list().await?);
        let now = std::time::SystemTime::now();
        let mut report = GcReport::default();
        let mut candidates = Vec::new();
        for blob in self.list_blobs().await? {
            if live.contains(&blob.digest) {
                report.kept += 1;
            } else if now
                .duration_since(blob.last_modified)
                .is_ok_and(|age| age >= grace)
            {
                candidates.push(blob);
            } else {
                report.recent += 1;
            }
        }
        if candidates.is_empty() {
            return Ok(report);
        }
        // Tagged meanwhile? Read the refs once more right before deleting.
        let live = referenced(self.list().await?);
        for blob in candidates {
            if live.contains(&blob.digest) {
                report.kept += 1;
                continue;
            }
            match self.inner.delete(&blob_key(&blob.digest)).await {
                Ok(()) => {}
                Err(e) if is_missing_object(&e) => continue,
                Err(e) => return Err(self.ctx.error(e)),
            }
            report.freed_bytes = report.freed_bytes.saturating_add(blob.size);
            report.removed.push((blob.digest, blob.size));
        }
        Ok(report)
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
    async fn futures_can_move_between_threads() {
        // The gateway runs these inside axum handlers and spawned tasks.
        fn send<T: Send>(_: &T) {}
        let (dir, store, digest) = store_with_bundle().await;
        let body = futures_util::stream::empty::<Result<Bytes, std::io::Error>>();
        send(&store.receive(body, &digest, 1));
        send(&store.put_bundle("x:1", dir.path(), &digest));
        send(&store.fetch_to(&digest, dir.path()));
        send(&store.gc(&[]));
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
        let out = dir.path().join("out.bundle");
        let err = store.fetch_to(&digest, &out).await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        assert!(!out.exists());
    }
}
