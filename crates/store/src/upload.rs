//! Streaming, verified, atomic blob uploads.
//!
//! Bytes are hashed as they pass. A bundle no larger than one part is held until its end and
//! sent in one request, only if it hashed right. A larger one goes up as a multipart upload
//! straight to its final key: S3 (and the local backend, which stages parts in a temporary
//! file) shows nothing at that key until the upload is completed, and it is completed only
//! once the whole body hashed to the expected digest; any failure aborts it. At most
//! `(concurrency + 1) * part_size` bytes are held in memory, whatever the bundle's size.

use std::pin::pin;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload, WriteMultipart};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncReadExt;

use crate::digest::Digest;
use crate::error::StoreError;
use crate::store::{FunctionStore, blob_key};

/// How long a cancelled multipart upload waits before its abort (see `Drop`).
const CANCELLED_ABORT_DELAY: std::time::Duration = std::time::Duration::from_millis(500);

/// How much of a file is read at once.
const FILE_CHUNK: usize = 256 * 1024;

/// The chunks of `file`, read as they are consumed.
pub(crate) fn file_chunks(
    file: tokio::fs::File,
) -> impl Stream<Item = Result<Bytes, String>> + Send {
    futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buf = BytesMut::with_capacity(FILE_CHUNK);
        match file.read_buf(&mut buf).await {
            Ok(0) => None,
            Ok(_) => Some((Ok(buf.freeze()), Some(file))),
            Err(e) => Some((Err(e.to_string()), None)),
        }
    })
}

/// An upload of one blob under way.
struct BlobUpload<'a> {
    store: &'a FunctionStore,
    key: ObjectPath,
    /// Bytes not yet handed to a multipart upload (all of them while it is not started).
    pending: Vec<Bytes>,
    pending_len: usize,
    multipart: Option<WriteMultipart>,
}

impl BlobUpload<'_> {
    async fn push(&mut self, chunk: Bytes) -> Result<(), StoreError> {
        let tuning = self.store.tuning;
        if let Some(multipart) = &mut self.multipart {
            multipart
                .wait_for_capacity(tuning.concurrency)
                .await
                .map_err(|e| self.store.ctx.error(e))?;
            multipart.put(chunk);
            return Ok(());
        }
        self.pending_len += chunk.len();
        self.pending.push(chunk);
        if self.pending_len > tuning.part_size {
            // Larger than one request: go multipart, invisible until completed.
            let upload = self
                .store
                .inner
                .put_multipart(&self.key)
                .await
                .map_err(|e| self.store.ctx.error(e))?;
            let mut multipart = WriteMultipart::new_with_chunk_size(upload, tuning.part_size);
            for chunk in self.pending.drain(..) {
                multipart.put(chunk);
            }
            self.pending_len = 0;
            self.multipart = Some(multipart);
        }
        Ok(())
    }

    /// Makes the blob visible.
    async fn complete(mut self) -> Result<(), StoreError> {
        match self.multipart.take() {
            Some(multipart) => multipart
                .finish()
                .await
                .map(|_| ())
                .map_err(|e| self.store.ctx.error(e)),
            None => {
                let payload: PutPayload = std::mem::take(&mut self.pending).into_iter().collect();
                self.store
                    .inner
                    .put(&self.key, payload)
                    .await
                    .map(|_| ())
                    .map_err(|e| self.store.ctx.error(e))
            }
        }
    }

    /// Drops what was sent; the error of the abort itself is dropped too, since the upload's
    /// own error is the one to report (an incomplete multipart upload is invisible anyway).
    async fn abort(mut self) {
        if let Some(multipart) = self.multipart.take() {
            let _ = multipart.abort().await;
        }
    }
}

impl Drop for BlobUpload<'_> {
    fn drop(&mut self) {
        // Cancelled mid-way (the caller's future was dropped): abort in the background, after a
        // moment. A part whose body had reached the server may still be being written; an abort
        // that came first would leave that part behind for good (S3 says the same of parts in
        // flight during an abort).
        if let Some(multipart) = self.multipart.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                tokio::time::sleep(CANCELLED_ABORT_DELAY).await;
                let _ = multipart.abort().await;
            });
        }
    }
}

/// Counts and hashes a body, enforcing `max_size`.
struct Meter<'a> {
    expected: &'a Digest,
    max_size: u64,
    hasher: Sha256,
    size: u64,
}

impl<'a> Meter<'a> {
    fn new(expected: &'a Digest, max_size: u64) -> Self {
        Meter {
            expected,
            max_size,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    fn feed(&mut self, item: Result<Bytes, String>) -> Result<Bytes, StoreError> {
        let chunk = item.map_err(|message| StoreError::Interrupted {
            digest: *self.expected,
            received: self.size,
            message,
        })?;
        let size = self.size.saturating_add(chunk.len() as u64);
        if size > self.max_size {
            return Err(StoreError::TooLarge {
                digest: *self.expected,
                limit: self.max_size,
            });
        }
        self.size = size;
        self.hasher.update(&chunk);
        Ok(chunk)
    }

    fn check(self, what: &str) -> Result<u64, StoreError> {
        let actual = Digest::from_hasher(self.hasher);
        if actual != *self.expected {
            return Err(StoreError::Mismatch {
                what: what.to_string(),
                expected: *self.expected,
                actual,
                size: self.size,
            });
        }
        Ok(self.size)
    }
}

/// Stores `body` as the blob `expected`, visible only if it hashed to `expected`; returns
/// its size. `what` names the body in errors.
pub(crate) async fn upload<S>(
    store: &FunctionStore,
    body: S,
    expected: &Digest,
    max_size: u64,
    what: &str,
) -> Result<u64, StoreError>
where
    S: Stream<Item = Result<Bytes, String>> + Send,
{
    let mut body = pin!(body);
    let mut meter = Meter::new(expected, max_size);
    let mut up = BlobUpload {
        store,
        key: blob_key(expected),
        pending: Vec::new(),
        pending_len: 0,
        multipart: None,
    };
    while let Some(item) = body.next().await {
        let sent = match meter.feed(item) {
            Ok(chunk) => up.push(chunk).await,
            Err(e) => Err(e),
        };
        if let Err(e) = sent {
            up.abort().await;
            return Err(e);
        }
    }
    let size = match meter.check(what) {
        Ok(size) => size,
        Err(e) => {
            up.abort().await;
            return Err(e);
        }
    };
    up.complete().await?;
    Ok(size)
}

/// Reads `body` through, checking its size and digest without storing it (the blob is
/// already stored); returns its size.
pub(crate) async fn verify_only<S>(
    body: S,
    expected: &Digest,
    max_size: u64,
    what: &str,
) -> Result<u64, StoreError>
where
    S: Stream<Item = Result<Bytes, String>> + Send,
{
    let mut body = pin!(body);
    let mut meter = Meter::new(expected, max_size);
    while let Some(item) = body.next().await {
        meter.feed(item)?;
    }
    meter.check(what)
}
