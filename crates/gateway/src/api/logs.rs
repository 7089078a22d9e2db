//! `GET /system/logs`: a function's output as NDJSON, one LogEntry per line, flushed as it
//! comes; `follow=true` keeps the stream open for new lines (compat §1.6).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use ironfaas_spec::names::FunctionRef;
use ironfaas_spec::provider::LogRequest;
use ironfaas_spec::timestamp::parse_rfc3339;

use super::ApiError;
use crate::Gateway;

fn unprocessable(message: String) -> ApiError {
    ApiError {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        message,
    }
}

/// Reads the query: `name` (required), `namespace`, `instance`, `tail`, `follow`, `since`.
fn request(q: &HashMap<String, String>) -> Result<LogRequest, ApiError> {
    let name = q.get("name").filter(|n| !n.is_empty()).ok_or_else(|| {
        ApiError::bad_request("name is required, e.g. /system/logs?name=echo".into())
    })?;
    let namespace = q.get("namespace").cloned().unwrap_or_default();
    let tail = match q.get("tail").map(|t| t.trim()).filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => match t.parse::<i64>() {
            Ok(n) if n > 0 => Some(n as usize),
            Ok(_) => None,
            Err(_) => return Err(unprocessable(format!("tail='{t}' is not a whole number"))),
        },
    };
    let follow = match q.get("follow").map(|f| f.trim()) {
        None | Some("") | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(other) => {
            return Err(unprocessable(format!(
                "follow='{other}' must be true or false"
            )));
        }
    };
    let since = match q.get("since").map(|s| s.trim()).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(parse_rfc3339(s).map_err(|e| unprocessable(format!("since: {e}")))?),
    };
    Ok(LogRequest {
        function: if namespace.is_empty() {
            FunctionRef::parse(name)
        } else {
            FunctionRef::new(name, namespace)
        },
        instance: q.get("instance").filter(|i| !i.is_empty()).cloned(),
        tail,
        since,
        follow,
    })
}

pub(super) async fn logs(
    State(gw): State<Arc<Gateway>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let stream = gw.provider.logs(request(&q)?).await?;
    let lines = stream.map(|entry| {
        let mut line = serde_json::to_vec(&entry).unwrap_or_default();
        line.push(b'\n');
        Ok::<_, Infallible>(Bytes::from(line))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::query_of as q;

    #[test]
    fn reads_the_query() {
        let r = request(&q(&[
            ("name", "echo"),
            ("tail", "5"),
            ("follow", "true"),
            ("since", "2024-01-01T00:00:00Z"),
        ]))
        .unwrap();
        assert_eq!(r.function, FunctionRef::parse("echo"));
        assert_eq!((r.tail, r.follow), (Some(5), true));
        assert!(r.since.is_some());
        let r = request(&q(&[
            ("name", "echo"),
            ("namespace", "team"),
            ("tail", "-1"),
        ]))
        .unwrap();
        assert_eq!(
            (r.function.namespace.as_str(), r.tail, r.follow),
            ("team", None, false)
        );
    }

    #[test]
    fn refuses_bad_queries() {
        assert_eq!(
            request(&q(&[])).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        for bad in [("tail", "x"), ("follow", "maybe"), ("since", "yesterday")] {
            let e = request(&q(&[("name", "echo"), bad])).unwrap_err();
            assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad:?}");
        }
    }
}
