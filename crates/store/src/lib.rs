//! Function bundles and the function store.
//!
//! A bundle is a deterministic tar archive compressed with zstd, holding a function's runtime
//! files, its handler and a [`manifest::Manifest`]. It is named by the sha256 digest of its
//! bytes. The [`FunctionStore`] keeps bundles by digest and maps image references to digests,
//! over `object_store`: a local directory by default, or an S3 bucket ([`S3Config`]).

pub mod bundle;
pub mod digest;
#[cfg(feature = "store")]
mod error;
pub mod manifest;
#[cfg(feature = "store")]
mod s3;
#[cfg(feature = "store")]
mod store;
#[cfg(feature = "test-support")]
pub mod test_support;
pub mod unpack;
#[cfg(feature = "store")]
mod upload;

pub use digest::Digest;
#[cfg(feature = "store")]
pub use error::StoreError;
#[cfg(feature = "store")]
pub use s3::{DEFAULT_REGION, MIN_PART_SIZE, S3Config, StoreLocation};
#[cfg(feature = "store")]
pub use store::{BlobInfo, FunctionStore, GC_GRACE, GcReport, local_store_dir};
