//! `/system/async`: what happened to asynchronous calls. One call's state by its id, the
//! queue depth per function, and the dead letters with replay.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use ironfaas_queue::{JobRecord, Queue, QueueError};
use serde::Serialize;

use super::ApiError;
use crate::Gateway;

/// Queue depth of one function.
#[derive(Debug, Serialize)]
pub(super) struct Depth {
    function: String,
    queued: u64,
    running: u64,
    retrying: u64,
    dead: u64,
}

fn queue(gw: &Gateway) -> Result<&Arc<dyn Queue>, ApiError> {
    gw.queue.as_ref().ok_or_else(|| ApiError {
        status: StatusCode::NOT_IMPLEMENTED,
        message: "asynchronous calls are not enabled on this gateway".into(),
    })
}

fn queue_error(e: QueueError) -> ApiError {
    let status = match &e {
        QueueError::NotFound { .. } => StatusCode::NOT_FOUND,
        QueueError::NotDeadLettered { .. } => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError {
        status,
        message: e.to_string(),
    }
}

pub(super) async fn status(
    State(gw): State<Arc<Gateway>>,
    Path(id): Path<String>,
) -> Result<Json<JobRecord>, ApiError> {
    queue(&gw)?
        .get(&id)
        .await
        .map_err(queue_error)?
        .map(Json)
        .ok_or(ApiError {
            status: StatusCode::NOT_FOUND,
            message: format!(
                "no asynchronous call with id {id} (finished calls are kept 24 hours)"
            ),
        })
}

pub(super) async fn depth(State(gw): State<Arc<Gateway>>) -> Result<Json<Vec<Depth>>, ApiError> {
    let depths = queue(&gw)?.depth().await.map_err(queue_error)?;
    Ok(Json(
        depths
            .into_iter()
            .map(|(f, d)| Depth {
                function: f.to_string(),
                queued: d.queued,
                running: d.running,
                retrying: d.retrying,
                dead: d.dead,
            })
            .collect(),
    ))
}

pub(super) async fn dead_letters(
    State(gw): State<Arc<Gateway>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Vec<JobRecord>>, ApiError> {
    let limit = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(100);
    Ok(Json(
        queue(&gw)?.dead_letters(limit).await.map_err(queue_error)?,
    ))
}

pub(super) async fn replay(
    State(gw): State<Arc<Gateway>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    queue(&gw)?.replay(&id).await.map_err(queue_error)?;
    Ok(StatusCode::ACCEPTED)
}

pub(super) async fn forget(
    State(gw): State<Arc<Gateway>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    queue(&gw)?
        .delete_dead_letter(&id)
        .await
        .map_err(queue_error)?;
    Ok(StatusCode::ACCEPTED)
}
