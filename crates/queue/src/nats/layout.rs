//! Names in JetStream: subjects, consumer names, state-record keys and message headers.

use async_nats::HeaderMap;
use ironfaas_spec::names::FunctionRef;
use serde::{Deserialize, Serialize};

use crate::job::JobRecord;

/// Attempts made before this copy of a job was published.
pub(super) const ATTEMPTS: &str = "Ironfaas-Attempts";
/// A retry copy is not to be run before this unix ms.
pub(super) const NOT_BEFORE: &str = "Ironfaas-Not-Before";
/// Why the last attempt failed (retry and dead-letter copies).
pub(super) const LAST_ERROR: &str = "Ironfaas-Last-Error";
/// When a dead letter was stored, unix ms.
pub(super) const DEAD_AT: &str = "Ironfaas-Dead-At";
/// The revision the job's state record had when this copy was published: the lease taken from
/// the copy replaces the record only if it is still at that revision.
pub(super) const RECORD_REV: &str = "Ironfaas-Record-Rev";

/// Ready jobs of `f`: `PREFIX.NAMESPACE.NAME.ready`.
pub(super) fn ready_subject(prefix: &str, f: &FunctionRef) -> String {
    format!("{prefix}.{}.{}.ready", f.namespace, f.name)
}

/// Jobs of `f` waiting for a retry: `PREFIX.NAMESPACE.NAME.retry`.
pub(super) fn retry_subject(prefix: &str, f: &FunctionRef) -> String {
    format!("{prefix}.{}.{}.retry", f.namespace, f.name)
}

/// Dead letters of `f`: `PREFIX.NAMESPACE.NAME`.
pub(super) fn dead_subject(prefix: &str, f: &FunctionRef) -> String {
    format!("{prefix}.{}.{}", f.namespace, f.name)
}

/// The subjects of `f`'s dead letters, or of every function's (`PREFIX.>`).
pub(super) fn dead_filter(prefix: &str, f: Option<&FunctionRef>) -> String {
    match f {
        Some(f) => dead_subject(prefix, f),
        None => format!("{prefix}.>"),
    }
}

/// Which kind of job subject a subject is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Kind {
    /// `.ready`
    Ready,
    /// `.retry`
    Retry,
}

/// Splits `PREFIX.NAMESPACE.NAME.KIND` back into the function and kind.
pub(super) fn parse_job_subject(prefix: &str, subject: &str) -> Option<(FunctionRef, Kind)> {
    let rest = subject.strip_prefix(prefix)?.strip_prefix('.')?;
    let mut parts = rest.split('.');
    let (ns, name, kind) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let kind = match kind {
        "ready" => Kind::Ready,
        "retry" => Kind::Retry,
        _ => return None,
    };
    Some((FunctionRef::new(name, ns), kind))
}

/// Splits `PREFIX.NAMESPACE.NAME` back into the function.
pub(super) fn parse_dead_subject(prefix: &str, subject: &str) -> Option<FunctionRef> {
    let rest = subject.strip_prefix(prefix)?.strip_prefix('.')?;
    let (ns, name) = rest.split_once('.')?;
    (!name.contains('.')).then(|| FunctionRef::new(name, ns))
}

/// The durable consumer of one function's subject (names and namespaces have no `_`).
pub(super) fn consumer_name(f: &FunctionRef, kind: Kind) -> String {
    let kind = match kind {
        Kind::Ready => "ready",
        Kind::Retry => "retry",
    };
    format!("{}_{}_{kind}", f.namespace, f.name)
}

/// The state-record key of a job id: letters, digits, `-` and `_` as they are, any other
/// byte as `=XX` (hex), so any id is a valid KV key.
pub(super) fn record_key(id: &str) -> String {
    let mut key = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            key.push(char::from(b));
        } else {
            key.push_str(&format!("={b:02X}"));
        }
    }
    key
}

/// A header value on one line, at most 1,000 bytes.
pub(super) fn one_line(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if out.len() > 1000 {
        let mut end = 1000;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    out
}

/// A header's value as a number (0 when absent or not a number).
pub(super) fn header_u64(headers: Option<&HeaderMap>, name: &str) -> u64 {
    headers
        .and_then(|h| h.get(name))
        .and_then(|v| v.as_str().parse().ok())
        .unwrap_or(0)
}

/// A header's value as text (empty when absent).
pub(super) fn header_str(headers: Option<&HeaderMap>, name: &str) -> String {
    headers
        .and_then(|h| h.get(name))
        .map(|v| v.as_str().to_string())
        .unwrap_or_default()
}

/// What the state bucket holds per job.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Stored {
    /// What operators see.
    pub record: JobRecord,
    /// The dead letter's sequence in the dead-letter stream (kept while a replay is under
    /// way, so that a replay cut short can be done again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_seq: Option<u64>,
    /// While running: the jobs-stream sequence of the copy whose lease this is (a redelivery
    /// of that copy takes the lease over; another copy of the job is stale).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_seq: Option<u64>,
}

impl Stored {
    /// A record with no dead letter and no lease.
    pub fn of(record: JobRecord) -> Stored {
        Stored {
            record,
            dead_seq: None,
            lease_seq: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_round_trip() {
        let f = FunctionRef::new("resize", "team-a");
        let s = ready_subject("ironfaas.jobs", &f);
        assert_eq!(s, "ironfaas.jobs.team-a.resize.ready");
        assert_eq!(
            parse_job_subject("ironfaas.jobs", &s),
            Some((f.clone(), Kind::Ready))
        );
        let r = retry_subject("ironfaas.jobs", &f);
        assert_eq!(
            parse_job_subject("ironfaas.jobs", &r),
            Some((f.clone(), Kind::Retry))
        );
        let d = dead_subject("ironfaas.dead", &f);
        assert_eq!(parse_dead_subject("ironfaas.dead", &d), Some(f));
        assert_eq!(
            parse_job_subject("ironfaas.jobs", "ironfaas.jobs.a.b.c"),
            None
        );
    }

    #[test]
    fn keys_escape_everything_but_safe_bytes() {
        assert_eq!(record_key("0b1c-AZ_9"), "0b1c-AZ_9");
        assert_eq!(record_key("a.b/c d"), "a=2Eb=2Fc=20d");
        assert_ne!(record_key("a=2E"), record_key("a."));
    }

    #[test]
    fn header_values_stay_on_one_line() {
        assert_eq!(one_line("a\r\nb"), "a  b");
        assert_eq!(one_line(&"é".repeat(600)).len(), 1000);
    }
}
