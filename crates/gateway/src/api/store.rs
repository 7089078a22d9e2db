//! `/system/store`: the function store through the gateway, so a laptop or CI can push
//! bundles without access to the server's disk or S3 credentials.
//!
//! - `PUT /system/store/bundles?image=IMAGE&digest=sha256:HEX` with the bundle as the body:
//!   streamed into the store, checked against the digest and the size limit, then tagged.
//! - `GET /system/store`: every image with its digest and size.
//! - `DELETE /system/store?image=IMAGE`: forget an image (its bundle stays until gc).
//! - `POST /system/store/gc`: remove bundles no image and no deployed function uses.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use futures_util::TryStreamExt;
use ironfaas_spec::names::normalize_image;
use ironfaas_store::{Digest, FunctionStore, StoreError};
use serde::Serialize;

use super::ApiError;
use crate::Gateway;

/// One stored image.
#[derive(Debug, Serialize)]
pub(super) struct StoredImage {
    image: String,
    digest: String,
    size: u64,
}

/// What gc did.
#[derive(Debug, Serialize)]
pub(super) struct GcAnswer {
    removed: Vec<StoredBlob>,
    kept: usize,
    recent: usize,
    #[serde(rename = "freedBytes")]
    freed_bytes: u64,
}

/// A removed bundle.
#[derive(Debug, Serialize)]
pub(super) struct StoredBlob {
    digest: String,
    size: u64,
}

fn store_error(e: StoreError) -> ApiError {
    let status = match &e {
        StoreError::NotFound { .. } => StatusCode::NOT_FOUND,
        StoreError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        StoreError::Mismatch { .. } | StoreError::Interrupted { .. } => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError {
        status,
        message: e.to_string(),
    }
}

fn store(gw: &Gateway) -> Result<&FunctionStore, ApiError> {
    gw.store.as_ref().ok_or_else(|| ApiError {
        status: StatusCode::NOT_IMPLEMENTED,
        message: "this gateway's provider has no function store to push to".into(),
    })
}

fn image_param(q: &HashMap<String, String>) -> Result<String, ApiError> {
    let image = q.get("image").ok_or_else(|| {
        ApiError::bad_request("image is required, e.g. ?image=team/fn:1.0".into())
    })?;
    normalize_image(image).map_err(|e| ApiError::bad_request(e.to_string()))
}

pub(super) async fn push(
    State(gw): State<Arc<Gateway>>,
    Query(q): Query<HashMap<String, String>>,
    body: Body,
) -> Result<(StatusCode, Json<StoredImage>), ApiError> {
    let store = store(&gw)?;
    let image = image_param(&q)?;
    let digest: Digest = q
        .get("digest")
        .ok_or_else(|| ApiError::bad_request("digest is required, e.g. ?digest=sha256:…".into()))?
        .parse()
        .map_err(|e: ironfaas_store::digest::DigestParseError| {
            ApiError::bad_request(e.to_string())
        })?;
    let stream = body.into_data_stream().map_err(|e| e.to_string());
    store
        .receive(stream, &digest, gw.config.max_bundle_bytes)
        .await
        .map_err(store_error)?;
    store.tag(&image, &digest).await.map_err(store_error)?;
    let size = store.blob_size(&digest).await.unwrap_or(0);
    tracing::info!("stored {image} ({digest}, {size} bytes)");
    Ok((
        StatusCode::CREATED,
        Json(StoredImage {
            image,
            digest: digest.to_string(),
            size,
        }),
    ))
}

pub(super) async fn list(
    State(gw): State<Arc<Gateway>>,
) -> Result<Json<Vec<StoredImage>>, ApiError> {
    let store = store(&gw)?;
    let mut out = Vec::new();
    for (image, digest) in store.list().await.map_err(store_error)? {
        let size = store.blob_size(&digest).await.unwrap_or(0);
        out.push(StoredImage {
            image,
            digest: digest.to_string(),
            size,
        });
    }
    Ok(Json(out))
}

pub(super) async fn remove(
    State(gw): State<Arc<Gateway>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<StatusCode, ApiError> {
    store(&gw)?
        .remove(&image_param(&q)?)
        .await
        .map_err(store_error)?;
    Ok(StatusCode::ACCEPTED)
}

pub(super) async fn gc(State(gw): State<Arc<Gateway>>) -> Result<Json<GcAnswer>, ApiError> {
    let store = store(&gw)?;
    let mut keep = Vec::new();
    for namespace in gw.provider.namespaces().await? {
        for status in gw.provider.list(&namespace).await? {
            if let Ok(digest) = status.digest.parse() {
                keep.push(digest);
            }
        }
    }
    let report = store.gc(&keep).await.map_err(store_error)?;
    Ok(Json(GcAnswer {
        removed: report
            .removed
            .iter()
            .map(|(d, size)| StoredBlob {
                digest: d.to_string(),
                size: *size,
            })
            .collect(),
        kept: report.kept,
        recent: report.recent,
        freed_bytes: report.freed_bytes,
    }))
}
