//! `/system/async`: what happened to asynchronous calls. One call's state by its id, the
//! queue depth per function, and the dead letters with replay (one, or all at once).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use futures_util::StreamExt;
use ironfaas_queue::{DeadLetterQuery, JobRecord, Queue, QueueError, unix_ms};
use ironfaas_spec::names::FunctionRef;
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
        QueueError::Full { .. } => StatusCode::TOO_MANY_REQUESTS,
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
                "no asynchronous call with id {id} (finished calls are kept 24 hours with the \
                 embedded queue, 7 days with NATS)"
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

/// Dead letters listed when `limit` is not given.
const DEFAULT_LIMIT: usize = 100;
/// The most dead letters one request lists or replays.
const MAX_LIMIT: usize = 1000;
/// Dead letters replayed at once by a bulk replay.
const REPLAYS_AT_ONCE: usize = 16;

/// Reads `?function=NAME[.NAMESPACE]&until=UNIX_MS&limit=N`.
fn dead_letter_query(q: &HashMap<String, String>) -> Result<DeadLetterQuery, ApiError> {
    let number = |key: &str, what: &str| -> Result<Option<u64>, ApiError> {
        q.get(key)
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    ApiError::bad_request(format!("invalid {key} {v:?}: expected {what}"))
                })
            })
            .transpose()
    };
    let limit = match number("limit", "a whole number from 1 to 1000")? {
        None => DEFAULT_LIMIT,
        Some(n @ 1..) if n <= MAX_LIMIT as u64 => n as usize,
        Some(n) => {
            return Err(ApiError::bad_request(format!(
                "invalid limit {n}: expected a whole number from 1 to {MAX_LIMIT}"
            )));
        }
    };
    let function = match q.get("function").map(String::as_str) {
        None | Some("") => None,
        Some(f) => Some(FunctionRef::parse(f)),
    };
    Ok(DeadLetterQuery {
        function,
        until: number("until", "a time in milliseconds since the epoch")?,
        limit,
    })
}

pub(super) async fn dead_letters(
    State(gw): State<Arc<Gateway>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Vec<JobRecord>>, ApiError> {
    let query = dead_letter_query(&q)?;
    Ok(Json(
        queue(&gw)?
            .dead_letters(&query)
            .await
            .map_err(queue_error)?,
    ))
}

/// A dead letter a bulk replay could not put back.
#[derive(Debug, Serialize)]
pub(super) struct NotReplayed {
    id: String,
    error: String,
}

/// What a bulk replay did.
#[derive(Debug, Serialize)]
pub(super) struct Replayed {
    /// The calls queued again.
    replayed: Vec<String>,
    /// The dead letters that stay, with why.
    failed: Vec<NotReplayed>,
    /// The time the dead letters were taken up to: pass it as `until` to go on with the same
    /// set without replaying calls that died again since.
    until: u64,
    /// Whether more dead letters matched than `limit`.
    more: bool,
}

/// `POST /system/async/dead-letters/replay?function=&until=&limit=`: replays up to `limit`
/// dead letters (oldest first) that died at or before `until` (default: now).
pub(super) async fn replay_all(
    State(gw): State<Arc<Gateway>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Replayed>, ApiError> {
    let queue = queue(&gw)?;
    let mut query = dead_letter_query(&q)?;
    let until = query
        .until
        .unwrap_or_else(|| unix_ms(std::time::SystemTime::now()));
    query.until = Some(until);
    let limit = query.limit;
    query.limit += 1;
    let mut dead = queue.dead_letters(&query).await.map_err(queue_error)?;
    let more = dead.len() > limit;
    dead.truncate(limit);
    let results: Vec<(String, Result<(), QueueError>)> =
        futures_util::stream::iter(dead.into_iter().map(|record| async move {
            let r = queue.replay(&record.id).await;
            (record.id, r)
        }))
        .buffer_unordered(REPLAYS_AT_ONCE)
        .collect()
        .await;
    let mut out = Replayed {
        replayed: Vec::new(),
        failed: Vec::new(),
        until,
        more,
    };
    for (id, r) in results {
        match r {
            Ok(()) => out.replayed.push(id),
            Err(e) => out.failed.push(NotReplayed {
                id,
                error: e.to_string(),
            }),
        }
    }
    Ok(Json(out))
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
    forget_id(&gw, &id).await
}

/// `DELETE /system/async/dead-letters/replay`: the dead letter whose call id is `replay` (the
/// path of the bulk replay, so it needs its own route).
pub(super) async fn forget_replay(State(gw): State<Arc<Gateway>>) -> Result<StatusCode, ApiError> {
    forget_id(&gw, "replay").await
}

async fn forget_id(gw: &Gateway, id: &str) -> Result<StatusCode, ApiError> {
    queue(gw)?
        .delete_dead_letter(id)
        .await
        .map_err(queue_error)?;
    Ok(StatusCode::ACCEPTED)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::query_of as q;

    #[test]
    fn reads_the_dead_letter_query() {
        let all = dead_letter_query(&q(&[])).unwrap();
        assert_eq!(all, DeadLetterQuery::first(DEFAULT_LIMIT));
        let some = dead_letter_query(&q(&[
            ("function", "resize.media"),
            ("until", "1700000000000"),
            ("limit", "1000"),
        ]))
        .unwrap();
        assert_eq!(
            some,
            DeadLetterQuery {
                function: Some(FunctionRef::new("resize", "media")),
                until: Some(1_700_000_000_000),
                limit: 1000,
            }
        );
        let short = dead_letter_query(&q(&[("function", "resize")])).unwrap();
        assert_eq!(short.function, Some(FunctionRef::parse("resize")));
    }

    #[test]
    fn refuses_bad_dead_letter_queries() {
        for (key, value, says) in [
            ("limit", "0", "from 1 to 1000"),
            ("limit", "1001", "from 1 to 1000"),
            ("limit", "ten", "from 1 to 1000"),
            ("until", "yesterday", "milliseconds since the epoch"),
        ] {
            let err = dead_letter_query(&q(&[(key, value)])).unwrap_err();
            assert_eq!(err.status, StatusCode::BAD_REQUEST);
            assert!(
                err.message.contains(key) && err.message.contains(says),
                "{}",
                err.message
            );
        }
    }
}
