//! `GET /system/function/{name}`: one function's status.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ironfaas_spec::names::FunctionRef;
use ironfaas_spec::provider::ProviderError;

use super::{ApiError, NamespaceQuery};
use crate::Gateway;

pub(super) async fn status(
    State(gw): State<Arc<Gateway>>,
    Path(name): Path<String>,
    Query(q): Query<NamespaceQuery>,
) -> Response {
    let key = if q.namespace.is_empty() {
        FunctionRef::parse(&name)
    } else {
        FunctionRef::new(name, q.namespace)
    };
    match gw.provider.status(&key).await {
        Ok(mut status) => {
            gw.metrics.annotate(&mut status);
            Json(status).into_response()
        }
        // OpenFaaS answers an unknown function with an empty 404.
        Err(ProviderError::NotFound(_)) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}
