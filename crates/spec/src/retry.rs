//! How asynchronous calls are retried: the `com.openfaas.retry.*` annotations (compat §3.2)
//! and `com.openfaas.queue.max_inflight`, parsed into a typed policy.

use std::time::Duration;

use crate::duration::parse_duration;
use crate::wire::FunctionSpec;

/// Annotation: attempts in all, the first included.
pub const ANNOTATION_ATTEMPTS: &str = "com.openfaas.retry.attempts";
/// Annotation: the status codes that are retried, comma-separated.
pub const ANNOTATION_CODES: &str = "com.openfaas.retry.codes";
/// Annotation: the first wait before a retry.
pub const ANNOTATION_MIN_WAIT: &str = "com.openfaas.retry.min_wait";
/// Annotation: the longest wait before a retry.
pub const ANNOTATION_MAX_WAIT: &str = "com.openfaas.retry.max_wait";
/// Annotation: asynchronous calls of the function run at once at most.
pub const ANNOTATION_MAX_INFLIGHT: &str = "com.openfaas.queue.max_inflight";

/// Status codes retried by default (those the OpenFaaS Pro queue-worker retries).
pub const DEFAULT_CODES: [u16; 6] = [408, 429, 500, 502, 503, 504];

/// How a function's asynchronous calls are retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Status codes that are retried (transport errors always are).
    pub codes: Vec<u16>,
    /// The wait before the first retry; it doubles per attempt.
    pub min_wait: Duration,
    /// The longest wait.
    pub max_wait: Duration,
    /// Asynchronous calls of this function at once; `None` is no limit but the global one.
    pub max_inflight: Option<usize>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 10,
            codes: DEFAULT_CODES.to_vec(),
            min_wait: Duration::from_secs(2),
            max_wait: Duration::from_secs(120),
            max_inflight: None,
        }
    }
}

impl RetryPolicy {
    /// Reads the policy from a function's annotations; the error names the annotation.
    pub fn from_spec(spec: &FunctionSpec) -> Result<RetryPolicy, String> {
        let mut policy = RetryPolicy::default();
        if let Some(v) = spec.annotation(ANNOTATION_ATTEMPTS) {
            policy.attempts = v.trim().parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                format!("annotation {ANNOTATION_ATTEMPTS}='{v}' must be a whole number ≥ 1 (attempts, the first included)")
            })?;
        }
        if let Some(v) = spec.annotation(ANNOTATION_CODES) {
            policy.codes = v
                .split(',')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(|c| c.parse::<u16>().ok().filter(|n| (100..600).contains(n)))
                .collect::<Option<Vec<u16>>>()
                .ok_or_else(|| format!("annotation {ANNOTATION_CODES}='{v}' must list HTTP status codes, e.g. 429,503"))?;
        }
        let wait = |key: &str, default: Duration| -> Result<Duration, String> {
            match spec.annotation(key) {
                None => Ok(default),
                Some(v) => parse_duration(v).map_err(|e| format!("annotation {key}: {e}")),
            }
        };
        policy.min_wait = wait(ANNOTATION_MIN_WAIT, policy.min_wait)?;
        policy.max_wait = wait(ANNOTATION_MAX_WAIT, policy.max_wait)?;
        if policy.min_wait > policy.max_wait {
            return Err(format!(
                "annotation {ANNOTATION_MIN_WAIT} is longer than {ANNOTATION_MAX_WAIT}; make min ≤ max"
            ));
        }
        if let Some(v) = spec.annotation(ANNOTATION_MAX_INFLIGHT) {
            policy.max_inflight =
                Some(v.trim().parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    format!("annotation {ANNOTATION_MAX_INFLIGHT}='{v}' must be a whole number ≥ 1")
                })?);
        }
        Ok(policy)
    }

    /// Whether an answer with `status` is retried.
    pub fn retries(&self, status: u16) -> bool {
        self.codes.contains(&status)
    }

    /// The wait after attempt number `attempt` (1 for the first) failed: exponential from
    /// `min_wait`, at most `max_wait`, with `jitter` (0..1) taking up to half of it off, and
    /// never shorter than `retry_after` when the function asked for that (but never below
    /// `min_wait`).
    pub fn backoff(&self, attempt: u32, jitter: f64, retry_after: Option<Duration>) -> Duration {
        let exponent = attempt.saturating_sub(1).min(30);
        let base = self
            .min_wait
            .saturating_mul(1u32 << exponent)
            .min(self.max_wait);
        // NaN would make mul_f64 panic; any jitter outside 0..=1 counts as its nearest end.
        let jitter = if jitter.is_nan() {
            0.0
        } else {
            jitter.clamp(0.0, 1.0)
        };
        let jittered = base.mul_f64(1.0 - 0.5 * jitter).max(self.min_wait);
        match retry_after {
            Some(asked) => jittered.max(asked.min(self.max_wait)),
            None => jittered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_jitter_gives_a_wait_within_the_bounds() {
        let policy = RetryPolicy::default();
        for jitter in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -3.0, 0.5, 7.0] {
            let wait = policy.backoff(3, jitter, None);
            assert!(
                wait >= policy.min_wait && wait <= policy.max_wait,
                "{jitter}: {wait:?}"
            );
        }
    }

    fn spec(pairs: &[(&str, &str)]) -> FunctionSpec {
        FunctionSpec {
            annotations: Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_and_annotations() {
        assert_eq!(
            RetryPolicy::from_spec(&FunctionSpec::default()),
            Ok(RetryPolicy::default())
        );
        let p = RetryPolicy::from_spec(&spec(&[
            (ANNOTATION_ATTEMPTS, "3"),
            (ANNOTATION_CODES, "503, 429"),
            (ANNOTATION_MIN_WAIT, "100ms"),
            (ANNOTATION_MAX_WAIT, "1s"),
            (ANNOTATION_MAX_INFLIGHT, "4"),
        ]))
        .unwrap();
        assert_eq!(
            (p.attempts, p.codes.clone(), p.max_inflight),
            (3, vec![503, 429], Some(4))
        );
        assert!(p.retries(503) && !p.retries(500));
    }

    #[test]
    fn refuses_bad_annotations() {
        for pairs in [
            [(ANNOTATION_ATTEMPTS, "0")],
            [(ANNOTATION_CODES, "5xx")],
            [(ANNOTATION_MIN_WAIT, "soon")],
            [(ANNOTATION_MAX_INFLIGHT, "-2")],
        ] {
            assert!(RetryPolicy::from_spec(&spec(&pairs)).is_err(), "{pairs:?}");
        }
        let e = RetryPolicy::from_spec(&spec(&[
            (ANNOTATION_MIN_WAIT, "5s"),
            (ANNOTATION_MAX_WAIT, "1s"),
        ]))
        .unwrap_err();
        assert!(e.contains("min ≤ max"), "{e}");
    }

    #[test]
    fn backoff_grows_is_capped_and_honours_retry_after() {
        let p = RetryPolicy {
            min_wait: Duration::from_millis(100),
            max_wait: Duration::from_secs(1),
            ..Default::default()
        };
        assert_eq!(p.backoff(1, 0.0, None), Duration::from_millis(100));
        assert_eq!(p.backoff(3, 0.0, None), Duration::from_millis(400));
        assert_eq!(p.backoff(10, 0.0, None), Duration::from_secs(1));
        assert_eq!(p.backoff(10, 1.0, None), Duration::from_millis(500));
        assert_eq!(
            p.backoff(1, 1.0, None),
            Duration::from_millis(100),
            "never below min_wait"
        );
        assert_eq!(
            p.backoff(1, 0.0, Some(Duration::from_millis(700))),
            Duration::from_millis(700)
        );
        assert_eq!(
            p.backoff(1, 0.0, Some(Duration::from_secs(60))),
            Duration::from_secs(1),
            "capped by max_wait"
        );
    }
}
