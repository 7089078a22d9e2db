//! `/system/secrets`: create, update, list (names only) and delete secrets (compat §7).
//! Values go in and never come out.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use bytes::Bytes;
use ironfaas_spec::wire::Secret;

use super::{ApiError, NamespaceQuery, json_body};
use crate::Gateway;

fn secret(body: &Bytes) -> Result<Secret, ApiError> {
    let secret: Secret = json_body(body, "Secret")?;
    if secret.name.trim().is_empty() {
        return Err(ApiError::bad_request("name is required".into()));
    }
    Ok(secret)
}

pub(super) async fn list(
    State(gw): State<Arc<Gateway>>,
    Query(q): Query<NamespaceQuery>,
) -> Result<Json<Vec<Secret>>, ApiError> {
    Ok(Json(gw.provider.list_secrets(&q.namespace).await?))
}

pub(super) async fn create(
    State(gw): State<Arc<Gateway>>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    gw.provider.create_secret(secret(&body)?).await?;
    Ok(StatusCode::CREATED)
}

pub(super) async fn update(
    State(gw): State<Arc<Gateway>>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    gw.provider.update_secret(secret(&body)?).await?;
    Ok(StatusCode::OK)
}

pub(super) async fn delete(
    State(gw): State<Arc<Gateway>>,
    Query(q): Query<NamespaceQuery>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let s = secret(&body)?;
    let namespace = if s.namespace.is_empty() {
        q.namespace
    } else {
        s.namespace
    };
    gw.provider.delete_secret(&s.name, &namespace).await?;
    Ok(StatusCode::NO_CONTENT)
}
