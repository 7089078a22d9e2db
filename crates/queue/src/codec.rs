//! The stored form of a job: a length-prefixed JSON header with everything but the body, then
//! the body bytes as they are (no base64).

use bytes::Bytes;
use ironfaas_spec::names::FunctionRef;
use serde::{Deserialize, Serialize};

use crate::job::Job;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    id: String,
    function: String,
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    callback_url: Option<String>,
    enqueued_at: u64,
    max_attempts: u32,
}

/// Encodes `job` (all but `attempt`).
pub(crate) fn encode(job: &Job) -> Vec<u8> {
    let header = Header {
        id: job.id.clone(),
        function: job.function.to_string(),
        method: job.method.clone(),
        path: job.path.clone(),
        query: job.query.clone(),
        headers: job.headers.clone(),
        callback_url: job.callback_url.clone(),
        enqueued_at: job.enqueued_at,
        max_attempts: job.max_attempts,
    };
    // Serialising a struct of strings and integers to a Vec cannot fail.
    let json = serde_json::to_vec(&header).unwrap_or_default();
    let len = u32::try_from(json.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(4 + json.len() + job.body.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&job.body);
    out
}

/// Decodes what [`encode`] wrote; `attempt` is set to `attempt`.
pub(crate) fn decode(bytes: &Bytes, attempt: u32) -> Result<Job, String> {
    let len_bytes: [u8; 4] = bytes
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or("shorter than its 4-byte header length")?;
    let len = u32::from_le_bytes(len_bytes) as usize;
    let json = bytes
        .get(4..4 + len)
        .ok_or("shorter than its header length says")?;
    let header: Header =
        serde_json::from_slice(json).map_err(|e| format!("header is not valid JSON: {e}"))?;
    Ok(Job {
        id: header.id,
        function: FunctionRef::parse(&header.function),
        method: header.method,
        path: header.path,
        query: header.query,
        headers: header.headers,
        body: bytes.slice(4 + len..),
        callback_url: header.callback_url,
        enqueued_at: header.enqueued_at,
        attempt,
        max_attempts: header.max_attempts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_a_job() {
        let mut job = Job::new("id-1", FunctionRef::new("f", "ns"), 3);
        job.headers = vec![("X-A".into(), "1".into()), ("X-A".into(), "2".into())];
        job.body = Bytes::from_static(b"\x00\x01binary");
        job.callback_url = Some("http://cb/".into());
        job.query = "a=b".into();
        job.path = "/p".into();
        let bytes = Bytes::from(encode(&job));
        let mut back = decode(&bytes, 2).unwrap();
        assert_eq!(back.attempt, 2);
        back.attempt = 0;
        assert_eq!(back, job);
    }

    #[test]
    fn refuses_truncated_input() {
        assert!(decode(&Bytes::from_static(b"\x10\x00"), 0).is_err());
        assert!(decode(&Bytes::from_static(b"\x10\x00\x00\x00{}"), 0).is_err());
    }
}
