//! Function bundles and the function store.
//!
//! A bundle is a deterministic tar archive compressed with zstd, holding a function's runtime
//! files, its handler and a [`manifest::Manifest`]. It is named by the sha256 digest of its
//! bytes. The [`FunctionStore`] keeps bundles by digest and maps image references to digests,
//! over `object_store` (a local directory today).

pub mod bundle;
pub mod digest;
pub mod manifest;
mod store;
pub mod unpack;

pub use digest::Digest;
pub use store::{FunctionStore, StoreError, local_store_dir};
