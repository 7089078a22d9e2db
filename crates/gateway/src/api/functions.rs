//! `/system/functions`: list (GET), deploy (POST), update (PUT), remove (DELETE).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use bytes::Bytes;
use ironfaas_spec::names::FunctionRef;
use ironfaas_spec::wire::{DeleteFunctionRequest, FunctionDeployment, FunctionStatus};

use super::{ApiError, NamespaceQuery, json_body};
use crate::Gateway;

pub(super) async fn list(
    State(gw): State<Arc<Gateway>>,
    Query(q): Query<NamespaceQuery>,
) -> Result<Json<Vec<FunctionStatus>>, ApiError> {
    let mut functions = gw.provider.list(&q.namespace).await?;
    for f in &mut functions {
        gw.metrics.annotate(f);
    }
    Ok(Json(functions))
}

fn deployment(body: &Bytes) -> Result<FunctionDeployment, ApiError> {
    let d: FunctionDeployment = json_body(body, "FunctionDeployment")?;
    if d.service.trim().is_empty() {
        return Err(ApiError::bad_request(
            "service (the function name) is required".into(),
        ));
    }
    if d.spec.image.trim().is_empty() {
        return Err(ApiError::bad_request(format!(
            "image is required for function {}",
            d.service
        )));
    }
    Ok(d)
}

pub(super) async fn deploy(
    State(gw): State<Arc<Gateway>>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let d = deployment(&body)?;
    gw.routes.check(&d).map_err(ApiError::bad_request)?;
    let deployed = gw.provider.deploy(d).await;
    gw.routes.refresh(gw.provider.as_ref()).await;
    deployed?;
    Ok(StatusCode::ACCEPTED)
}

pub(super) async fn update(
    State(gw): State<Arc<Gateway>>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let d = deployment(&body)?;
    gw.routes.check(&d).map_err(ApiError::bad_request)?;
    let updated = gw.provider.update(d).await;
    gw.routes.refresh(gw.provider.as_ref()).await;
    updated?;
    Ok(StatusCode::ACCEPTED)
}

pub(super) async fn remove(
    State(gw): State<Arc<Gateway>>,
    Query(q): Query<NamespaceQuery>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let req: DeleteFunctionRequest = json_body(&body, "DeleteFunctionRequest")?;
    if req.function_name.trim().is_empty() {
        return Err(ApiError::bad_request("functionName is required".into()));
    }
    let namespace = if req.namespace.is_empty() {
        q.namespace
    } else {
        req.namespace
    };
    let removed = gw
        .provider
        .remove(&FunctionRef::new(req.function_name, namespace))
        .await;
    gw.routes.refresh(gw.provider.as_ref()).await;
    removed?;
    Ok(StatusCode::ACCEPTED)
}
