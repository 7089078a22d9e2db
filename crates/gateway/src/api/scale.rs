//! `POST /system/scale-function/{name}`: set a function's replicas.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use bytes::Bytes;
use ironfaas_spec::names::FunctionRef;
use ironfaas_spec::wire::ScaleServiceRequest;

use super::{ApiError, json_body};
use crate::Gateway;

pub(super) async fn scale(
    State(gw): State<Arc<Gateway>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let req: ScaleServiceRequest = json_body(&body, "ScaleServiceRequest")?;
    let key = if req.namespace.is_empty() {
        FunctionRef::parse(&name)
    } else {
        FunctionRef::new(name, req.namespace)
    };
    gw.provider.scale(&key, req.replicas).await?;
    Ok(StatusCode::ACCEPTED)
}
