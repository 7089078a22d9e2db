//! `GET /system/info`, `GET /system/namespaces` and `GET /healthz`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use ironfaas_spec::wire::{GatewayInfo, VersionInfo};

use super::ApiError;
use crate::Gateway;

pub(super) async fn info(State(gw): State<Arc<Gateway>>) -> Json<GatewayInfo> {
    Json(GatewayInfo {
        provider: gw.provider.info(),
        version: VersionInfo {
            release: env!("CARGO_PKG_VERSION").into(),
            ..VersionInfo::default()
        },
        arch: std::env::consts::ARCH.into(),
    })
}

pub(super) async fn namespaces(
    State(gw): State<Arc<Gateway>>,
) -> Result<Json<Vec<String>>, ApiError> {
    Ok(Json(gw.provider.namespaces().await?))
}

/// `GET /system/routes`: every custom route, longest prefix first.
pub(super) async fn routes(State(gw): State<Arc<Gateway>>) -> Json<Vec<crate::routes::Route>> {
    Json(gw.routes.all())
}

pub(super) async fn healthz() -> &'static str {
    "OK"
}
