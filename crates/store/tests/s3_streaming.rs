//! A 20 MB bundle goes to S3 in parts, with memory far below its size (this test binary
//! counts every allocation, so it holds this one test only).

#![allow(unsafe_code)] // a counting global allocator, for the peak-memory assertion
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use ironfaas_store::test_support::S3TestServer;
use ironfaas_store::{Digest, FunctionStore, MIN_PART_SIZE};
use object_store::ObjectStoreExt;

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(size: usize) {
    let now = CURRENT.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as ours.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as ours.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns how far memory in use rose above where it started.
async fn peak_during<T>(f: impl Future<Output = T>) -> (T, usize) {
    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = f.await;
    (out, PEAK.load(Ordering::Relaxed).saturating_sub(base))
}

const SIZE: usize = 20 * 1000 * 1000;

#[tokio::test]
async fn a_20mb_bundle_streams_in_parts() {
    let dir = tempfile::tempdir().unwrap();
    let server = S3TestServer::start(&dir.path().join("s3"), "k", "secret").unwrap();
    server.create_bucket("functions").unwrap();
    let mut config = server.config("functions", "");
    config.part_size = MIN_PART_SIZE;
    config.upload_concurrency = 1;
    let store = FunctionStore::s3(config).await.unwrap();

    // The bundle file, written and hashed in pieces so that the test holds no copy of it.
    let path = dir.path().join("big.bundle");
    let digest = {
        use sha2::Digest as _;
        use std::io::Write;
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let mut hasher = sha2::Sha256::new();
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut block = vec![0u8; 1 << 20];
        let mut left = SIZE;
        while left > 0 {
            let n = left.min(block.len());
            for b in &mut block[..n] {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            file.write_all(&block[..n]).unwrap();
            hasher.update(&block[..n]);
            left -= n;
        }
        file.flush().unwrap();
        format!("sha256:{}", hex::encode(hasher.finalize()))
            .parse::<Digest>()
            .unwrap()
    };

    let (result, peak) = peak_during(store.put_bundle("big:1", &path, &digest)).await;
    result.unwrap();
    eprintln!("put_bundle of {SIZE} bytes: peak memory +{peak} bytes");
    // Client and server share this process: one part in flight and the next one filling,
    // plus what the server buffers, stays well below the whole file.
    assert!(
        peak < SIZE * 3 / 4,
        "peak +{peak} bytes for a {SIZE}-byte bundle"
    );

    // Uploaded in parts: S3's multipart ETag is "<md5 of the part md5s>-<parts>".
    let raw = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name("functions")
        .with_region(server.region())
        .with_endpoint(server.endpoint())
        .with_access_key_id(server.access_key())
        .with_secret_access_key(server.secret_key())
        .with_allow_http(true)
        .build()
        .unwrap();
    let key = object_store::path::Path::from(format!("blobs/sha256/{}", digest.hex()));
    let meta = raw.head(&key).await.unwrap();
    let parts = SIZE.div_ceil(MIN_PART_SIZE);
    assert_eq!(meta.size, SIZE as u64);
    let etag = meta.e_tag.unwrap_or_default();
    assert!(
        etag.trim_matches('"').ends_with(&format!("-{parts}")),
        "{etag}"
    );

    // And it streams back out the same way.
    let out = dir.path().join("out.bundle");
    let (size, peak) = peak_during(store.fetch_to(&digest, &out)).await;
    assert_eq!(size.unwrap(), SIZE as u64);
    eprintln!("fetch_to of {SIZE} bytes: peak memory +{peak} bytes");
    assert!(
        peak < SIZE / 4,
        "peak +{peak} bytes for a {SIZE}-byte bundle"
    );
    assert_eq!(store.resolve("big:1").await.unwrap(), digest);
}
