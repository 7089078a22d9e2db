//! The function store against a real S3 server (s3s-fs over HTTP on loopback, SigV4 auth),
//! and the upload paths (`receive`) on both backends.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::time::Duration;

use bytes::Bytes;
use futures_util::{StreamExt, stream};
use ironfaas_store::test_support::S3TestServer;
use ironfaas_store::{Digest, FunctionStore, S3Config, StoreError, StoreLocation};

const KEY: &str = "ironfaas-test";
const SECRET: &str = "ironfaas-test-secret";
const BUCKET: &str = "functions";
const PREFIX: &str = "team/store";

struct S3 {
    _dir: tempfile::TempDir,
    server: S3TestServer,
}

fn s3_server() -> S3 {
    let dir = tempfile::tempdir().unwrap();
    let server = S3TestServer::start(&dir.path().join("s3"), KEY, SECRET).unwrap();
    server.create_bucket(BUCKET).unwrap();
    S3 { _dir: dir, server }
}

impl S3 {
    async fn store(&self) -> FunctionStore {
        FunctionStore::s3(self.config()).await.unwrap()
    }

    fn config(&self) -> S3Config {
        self.server.config(BUCKET, PREFIX)
    }

    /// The file s3s-fs keeps the object `key` (under the store's prefix) in.
    fn object(&self, key: &str) -> std::path::PathBuf {
        self.server.object_path(BUCKET, &format!("{PREFIX}/{key}"))
    }

    /// Multipart uploads s3s-fs still holds parts of (none once completed or aborted).
    fn upload_parts(&self) -> Vec<String> {
        std::fs::read_dir(self.server.root())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(".upload_id-"))
            .collect()
    }
}

/// A bundle-like file of `len` bytes that do not repeat, and its digest.
fn bundle_file(len: usize, seed: u64) -> (tempfile::NamedTempFile, Digest) {
    let bytes = pseudo_random(len, seed);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &bytes).unwrap();
    (file, Digest::of(&bytes))
}

fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn chunks(bytes: &[u8], size: usize) -> Vec<Result<Bytes, String>> {
    bytes
        .chunks(size)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect()
}

#[tokio::test]
async fn put_resolve_fetch_list_remove_gc() {
    let s3 = s3_server();
    let store = s3.store().await;
    assert!(
        store
            .location()
            .starts_with("s3://functions/team/store at http://127.0.0.1:")
    );
    let (one, d1) = bundle_file(10_000, 1);
    let (two, d2) = bundle_file(20_000, 2);
    store
        .put_bundle("team/fn:1.0", one.path(), &d1)
        .await
        .unwrap();
    store
        .put_bundle("team/fn:2.0", two.path(), &d2)
        .await
        .unwrap();
    // Stored once, by digest, in the same layout as the local store.
    store
        .put_bundle("alias:latest", one.path(), &d1)
        .await
        .unwrap();
    assert!(s3.object(&format!("blobs/sha256/{}", d1.hex())).is_file());
    assert_eq!(std::fs::read_dir(s3.object("refs")).unwrap().count(), 3);

    assert_eq!(store.resolve("team/fn:1.0").await.unwrap(), d1);
    assert_eq!(Digest::of(&store.fetch(&d2).await.unwrap()), d2);
    assert_eq!(store.blob_size(&d2).await.unwrap(), 20_000);
    assert_eq!(
        store.list().await.unwrap(),
        vec![
            ("alias:latest".to_string(), d1),
            ("team/fn:1.0".to_string(), d1),
            ("team/fn:2.0".to_string(), d2),
        ]
    );
    let blobs = store.list_blobs().await.unwrap();
    let mut want = vec![(d1, 10_000), (d2, 20_000)];
    want.sort();
    assert_eq!(
        blobs.iter().map(|b| (b.digest, b.size)).collect::<Vec<_>>(),
        want
    );

    assert_eq!(store.remove("team/fn:2.0").await.unwrap(), d2);
    assert!(matches!(
        store.remove("team/fn:2.0").await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.resolve("team/fn:2.0").await,
        Err(StoreError::NotFound { .. })
    ));

    // d2 is unreferenced now, but fresh: the default grace period spares it.
    let report = store.gc(&[]).await.unwrap();
    assert_eq!(
        (report.removed.len(), report.recent, report.kept),
        (0, 1, 1)
    );
    // Pinned by a running deployment: kept.
    let report = store.gc_with_grace(&[d2], Duration::ZERO).await.unwrap();
    assert_eq!((report.removed.len(), report.kept), (0, 2));
    let report = store.gc_with_grace(&[], Duration::ZERO).await.unwrap();
    assert_eq!(report.removed, vec![(d2, 20_000)]);
    assert_eq!(report.freed_bytes, 20_000);
    assert!(matches!(
        store.fetch(&d2).await,
        Err(StoreError::MissingBlob { .. })
    ));
    assert_eq!(Digest::of(&store.fetch(&d1).await.unwrap()), d1);

    // A new instance (as after a restart) reads the same store.
    drop(store);
    let reopened = s3.store().await;
    assert_eq!(reopened.resolve("alias:latest").await.unwrap(), d1);
    assert_eq!(Digest::of(&reopened.fetch(&d1).await.unwrap()), d1);
    // Another prefix in the same bucket is another store.
    let other = FunctionStore::s3(s3.server.config(BUCKET, "elsewhere"))
        .await
        .unwrap();
    assert!(other.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn opens_from_a_url_and_the_environment() {
    let s3 = s3_server();
    let (file, digest) = bundle_file(1000, 3);
    s3.store()
        .await
        .put_bundle("fn:1", file.path(), &digest)
        .await
        .unwrap();
    let url = format!("s3://{BUCKET}/{PREFIX}");
    let StoreLocation::S3(config) = StoreLocation::parse(&url).unwrap() else {
        panic!("{url} is not an S3 location");
    };
    let env = s3.server.env();
    let config =
        config.with_env_from(|name| env.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone()));
    let store = FunctionStore::s3(config).await.unwrap();
    assert_eq!(store.resolve("fn:1").await.unwrap(), digest);

    // Everything but the credentials in the URL.
    let url = format!(
        "s3://{BUCKET}/{PREFIX}?endpoint={}&allow_http=true&region=us-east-1",
        s3.server.endpoint()
    );
    let StoreLocation::S3(config) = StoreLocation::parse(&url).unwrap() else {
        panic!("{url} is not an S3 location");
    };
    let store = FunctionStore::s3(config.with_credentials(KEY, SECRET))
        .await
        .unwrap();
    assert_eq!(store.resolve("fn:1").await.unwrap(), digest);
}

#[tokio::test]
async fn wrong_credentials_say_so() {
    let s3 = s3_server();
    let mut wrong_secret = s3.config();
    wrong_secret.secret_access_key = Some("not-the-secret".into());
    let err = FunctionStore::s3(wrong_secret).await.unwrap_err();
    assert!(matches!(err, StoreError::Credentials { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("SignatureDoesNotMatch"), "{text}");
    assert!(text.contains("AWS_SECRET_ACCESS_KEY"), "{text}");
    assert!(!text.contains("not-the-secret"), "{text}");

    let mut unknown_key = s3.config();
    unknown_key.access_key_id = Some("nobody".into());
    let err = FunctionStore::s3(unknown_key).await.unwrap_err();
    assert!(matches!(err, StoreError::Credentials { .. }), "{err}");
    assert!(err.to_string().contains("access key 'nobody'"), "{err}");
}

#[tokio::test]
async fn missing_bucket_says_so() {
    let s3 = s3_server();
    let err = FunctionStore::s3(s3.server.config("no-such-bucket", ""))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::BucketNotFound { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("bucket 'no-such-bucket' does not exist"),
        "{text}"
    );
    assert!(text.contains("mc mb"), "{text}");
}

#[tokio::test]
async fn unreachable_endpoint_says_so() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = S3Config::new(BUCKET)
        .with_endpoint(format!("http://127.0.0.1:{port}"))
        .with_credentials(KEY, SECRET);
    let config = S3Config {
        allow_http: true,
        ..config
    };
    let started = std::time::Instant::now();
    let err = FunctionStore::s3(config).await.unwrap_err();
    assert!(matches!(err, StoreError::Unreachable { .. }), "{err}");
    assert!(
        err.to_string().contains("check that the server is running"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn corrupt_blob_is_refused_and_a_push_repairs_it() {
    let s3 = s3_server();
    let store = s3.store().await;
    let (file, digest) = bundle_file(5000, 4);
    store
        .put_bundle("fn:1", file.path(), &digest)
        .await
        .unwrap();
    std::fs::write(
        s3.object(&format!("blobs/sha256/{}", digest.hex())),
        b"bad bytes",
    )
    .unwrap();
    let err = store.fetch(&digest).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    let out = tempfile::tempdir().unwrap();
    let err = store
        .fetch_to(&digest, &out.path().join("b"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(!out.path().join("b").exists());
    // Pushing the same bundle again replaces the corrupt copy.
    store
        .put_bundle("fn:1", file.path(), &digest)
        .await
        .unwrap();
    assert_eq!(Digest::of(&store.fetch(&digest).await.unwrap()), digest);
    assert_eq!(
        store
            .fetch_to(&digest, &out.path().join("b"))
            .await
            .unwrap(),
        5000
    );
}

#[tokio::test]
async fn a_file_that_is_not_its_digest_is_not_stored() {
    let s3 = s3_server();
    let store = s3.store().await;
    let (file, _) = bundle_file(5000, 5);
    let claimed = Digest::of(b"something else");
    let err = store
        .put_bundle("fn:1", file.path(), &claimed)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Mismatch { .. }), "{err}");
    assert!(err.to_string().contains("bundle file"), "{err}");
    assert!(store.list_blobs().await.unwrap().is_empty());
    assert!(store.list().await.unwrap().is_empty());
}

/// The upload checks, run on a store of either backend. `part` is its part size.
async fn receive_checks(store: &FunctionStore, part: usize) -> Vec<&'static str> {
    let mut checked = Vec::new();
    // Small (one request) and large (multipart: three parts) bodies.
    for (len, seed) in [(100_000, 10u64), (part * 2 + 1234, 11)] {
        let bytes = pseudo_random(len, seed);
        let digest = Digest::of(&bytes);
        let gone = |store: &FunctionStore| {
            let store = store.clone();
            async move {
                matches!(
                    store.blob_size(&digest).await,
                    Err(StoreError::MissingBlob { .. })
                ) && store.list_blobs().await.unwrap().is_empty()
            }
        };

        // Broken off: the body fails after half of it.
        let mut body = chunks(&bytes[..len / 2], 64 * 1024);
        body.push(Err("connection reset by peer".to_string()));
        let err = store
            .receive(stream::iter(body), &digest, u64::MAX)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Interrupted { .. }), "{err}");
        assert!(
            err.to_string().contains("connection reset by peer"),
            "{err}"
        );
        assert!(gone(store).await, "interrupted upload left a blob");

        // Truncated: the body ends early without an error.
        let body = chunks(&bytes[..len - 1], 64 * 1024);
        let err = store
            .receive(stream::iter(body), &digest, u64::MAX)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Mismatch { size, .. } if size == len as u64 - 1));
        assert!(err.to_string().contains("nothing was stored"), "{err}");
        assert!(gone(store).await, "truncated upload left a blob");

        // Over the limit: refused as soon as the limit is passed.
        let limit = len as u64 / 2;
        let err = store
            .receive(stream::iter(chunks(&bytes, 64 * 1024)), &digest, limit)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::TooLarge { .. }), "{err}");
        assert!(
            err.to_string().contains(&format!("limit of {limit} bytes")),
            "{err}"
        );
        assert!(gone(store).await, "oversize upload left a blob");

        // Another body than announced.
        let other = pseudo_random(len, seed + 100);
        let err = store
            .receive(stream::iter(chunks(&other, 64 * 1024)), &digest, u64::MAX)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Mismatch { .. }), "{err}");
        assert!(gone(store).await, "mismatched upload left a blob");

        // Cancelled mid-way (the client went away and the handler's future was dropped).
        let pending = stream::iter(chunks(&bytes[..len - 10], 64 * 1024))
            .chain(stream::pending::<Result<Bytes, String>>());
        let cancelled = tokio::time::timeout(
            Duration::from_millis(500),
            store.receive(pending, &digest, u64::MAX),
        )
        .await;
        assert!(cancelled.is_err());
        assert!(gone(store).await, "cancelled upload left a blob");

        // Exactly the limit is fine; then the blob is there and intact.
        let got = store
            .receive(stream::iter(chunks(&bytes, 64 * 1024)), &digest, len as u64)
            .await
            .unwrap();
        assert_eq!(got, digest);
        assert_eq!(store.blob_size(&digest).await.unwrap(), len as u64);
        assert_eq!(store.fetch(&digest).await.unwrap().as_ref(), &bytes[..]);

        // Again: already stored, the body is still checked, nothing is rewritten.
        let err = store
            .receive(stream::iter(chunks(&other, 64 * 1024)), &digest, u64::MAX)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Mismatch { .. }), "{err}");
        store
            .receive(stream::iter(chunks(&bytes, 64 * 1024)), &digest, u64::MAX)
            .await
            .unwrap();
        store.gc_with_grace(&[], Duration::ZERO).await.unwrap();
        checked.push(if len > part { "multipart" } else { "single" });
    }
    checked
}

#[tokio::test]
async fn receive_on_s3() {
    let s3 = s3_server();
    let mut config = s3.config();
    config.part_size = ironfaas_store::MIN_PART_SIZE;
    let store = FunctionStore::s3(config).await.unwrap();
    let checked = receive_checks(&store, ironfaas_store::MIN_PART_SIZE).await;
    assert_eq!(checked, ["single", "multipart"]);
    // Aborted multipart uploads leave no parts behind on the server (give the abort that
    // followed the cancelled upload a moment: it runs in the background).
    // Up to 10 s: the abort waits half a second for parts still being written, and a busy
    // machine (the whole suite at once) once needed more than 1 s.
    for _ in 0..200 {
        if s3.upload_parts().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(s3.upload_parts(), Vec::<String>::new());
}

#[tokio::test]
async fn receive_on_the_local_backend() {
    let dir = tempfile::tempdir().unwrap();
    let store = FunctionStore::local(dir.path()).unwrap();
    // The local backend's parts are 8 MiB.
    let checked = receive_checks(&store, 8 * 1024 * 1024).await;
    assert_eq!(checked, ["single", "multipart"]);
    // No staging files left beside the blobs (the cancelled upload's abort comes after half
    // a second).
    let leftovers = || -> Vec<_> {
        std::fs::read_dir(dir.path().join("blobs/sha256"))
            .map(|d| d.map(|e| e.unwrap().file_name()).collect())
            .unwrap_or_default()
    };
    for _ in 0..200 {
        if leftovers().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(leftovers().is_empty(), "{:?}", leftovers());
}
