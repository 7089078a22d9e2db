//! The system API (`/system/*`, `/healthz`), one file per resource, answering with the exact
//! OpenFaaS JSON names and status codes.

mod function;
mod functions;
mod info;
mod jobs;
mod logs;
mod metrics;
mod scale;
mod secrets;
mod store;

use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use ironfaas_spec::provider::ProviderError;
use serde::de::DeserializeOwned;

use crate::Gateway;

/// Where bundles are uploaded (`PUT`): the one API body that may be big and slow.
pub(crate) const STORE_UPLOAD: &str = "/system/store/bundles";

/// The router of every API route.
pub(crate) fn router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route(
            "/system/functions",
            get(functions::list)
                .post(functions::deploy)
                .put(functions::update)
                .delete(functions::remove),
        )
        .route("/system/function/{name}", get(function::status))
        .route("/system/scale-function/{name}", post(scale::scale))
        .route("/system/info", get(info::info))
        .route("/system/namespaces", get(info::namespaces))
        .route("/system/logs", get(logs::logs))
        .route("/system/routes", get(info::routes))
        .route(
            "/system/secrets",
            get(secrets::list)
                .post(secrets::create)
                .put(secrets::update)
                .delete(secrets::delete),
        )
        .route("/system/async", get(jobs::depth))
        .route("/system/async/dead-letters", get(jobs::dead_letters))
        .route(
            "/system/async/dead-letters/replay",
            post(jobs::replay_all).delete(jobs::forget_replay),
        )
        .route(
            "/system/async/dead-letters/{id}",
            axum::routing::delete(jobs::forget),
        )
        .route("/system/async/dead-letters/{id}/replay", post(jobs::replay))
        .route("/system/async/{id}", get(jobs::status))
        .route("/system/store", get(store::list).delete(store::remove))
        .route("/system/store/bundles", axum::routing::put(store::push))
        .route("/system/store/gc", post(store::gc))
        .route("/healthz", get(info::healthz))
        .route("/metrics", get(metrics::metrics))
        .merge(crate::ui::router())
        .fallback(not_found)
        .with_state(gateway)
}

async fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "404 page not found".into())
}

/// A plain-text answer ending in a newline, as OpenFaaS writes errors.
pub(crate) fn text(status: StatusCode, message: String) -> Response {
    let body = if message.ends_with('\n') {
        message
    } else {
        format!("{message}\n")
    };
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

/// An error answer: a status and a plain-text message.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl ApiError {
    /// A 400 with `message`.
    pub(crate) fn bad_request(message: String) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message,
        }
    }
}

impl From<ProviderError> for ApiError {
    fn from(e: ProviderError) -> Self {
        let status = match &e {
            ProviderError::NotFound(_) | ProviderError::Missing(_) => StatusCode::NOT_FOUND,
            ProviderError::Conflict(_) => StatusCode::CONFLICT,
            ProviderError::AlreadyExists(_) => StatusCode::CONFLICT,
            ProviderError::Invalid(_) => StatusCode::BAD_REQUEST,
            ProviderError::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError {
            status,
            message: e.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        text(self.status, self.message)
    }
}

/// Parses a JSON request body; a bad body is a 400 that says what is wrong.
pub(crate) fn json_body<T: DeserializeOwned>(body: &Bytes, what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid {what} JSON: {e}")))
}

/// `?namespace=` on GET and DELETE routes.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct NamespaceQuery {
    #[serde(default)]
    namespace: String,
}

/// A query string's pairs as a handler's `Query<HashMap<String, String>>` holds them (tests).
#[cfg(test)]
pub(crate) fn query_of(pairs: &[(&str, &str)]) -> std::collections::HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
