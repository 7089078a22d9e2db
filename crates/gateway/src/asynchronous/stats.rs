//! Counters of asynchronous calls for `/metrics`: what this process accepted, is making,
//! retried, finished and called back, per function. OpenFaaS Pro's queue-worker names where it
//! has them (compat §9.4), `ironfaas_async_*` for the rest. The gateway adds them to its own
//! `/metrics`; a separate `ironfaas worker` serves them with [`serve_metrics`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use ironfaas_queue::unix_ms;
use ironfaas_spec::names::FunctionRef;

use crate::metrics::{Histogram, escape, header};

/// Upper bounds of the wait histogram, in seconds: from milliseconds to an hour, as a backlog
/// can grow that long.
const WAIT_BOUNDS: [f64; 16] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

/// How a call ended (its last attempt); also the index of its counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// Answered below 400.
    Succeeded = 0,
    /// Answered with a status not retried (or its function is gone).
    Failed = 1,
    /// Out of attempts.
    DeadLettered = 2,
}

/// Why an asynchronous call was refused; also the index of its counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The queue held `--async-max-queued` calls (429).
    QueueFull = 0,
    /// The bodies being read took all of `--async-body-memory` (503).
    BodyMemory = 1,
}

/// The `reason` label of each [`Refusal`], in its order.
const REASONS: [&str; 2] = ["queue_full", "body_memory"];

/// The `outcome` label of each [`End`], in its order.
const OUTCOMES: [&str; 3] = ["succeeded", "failed", "dead_lettered"];

#[derive(Debug)]
struct FunctionStats {
    submitted: AtomicU64,
    refused: [AtomicU64; 2],
    inflight: AtomicU64,
    ended: [AtomicU64; 3],
    retries: AtomicU64,
    /// Delivered, given up.
    callbacks: [AtomicU64; 2],
    /// From acceptance to the start of the first attempt.
    wait: Histogram,
}

impl Default for FunctionStats {
    fn default() -> Self {
        FunctionStats {
            submitted: AtomicU64::new(0),
            refused: Default::default(),
            inflight: AtomicU64::new(0),
            ended: Default::default(),
            retries: AtomicU64::new(0),
            callbacks: Default::default(),
            wait: Histogram::with_bounds(&WAIT_BOUNDS),
        }
    }
}

/// Every function's counters of asynchronous calls in this process.
#[derive(Debug, Default)]
pub struct AsyncStats {
    functions: RwLock<BTreeMap<FunctionRef, Arc<FunctionStats>>>,
}

fn get(n: &AtomicU64) -> u64 {
    n.load(Ordering::Relaxed)
}

fn bump(n: &AtomicU64) {
    n.fetch_add(1, Ordering::Relaxed);
}

impl AsyncStats {
    fn of(&self, function: &FunctionRef) -> Arc<FunctionStats> {
        if let Some(s) = self
            .functions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(function)
        {
            return Arc::clone(s);
        }
        let mut map = self.functions.write().unwrap_or_else(|p| p.into_inner());
        Arc::clone(map.entry(function.clone()).or_default())
    }

    /// A new call was stored.
    pub(crate) fn submitted(&self, function: &FunctionRef) {
        bump(&self.of(function).submitted);
    }

    /// A call was refused.
    pub(crate) fn refused(&self, function: &FunctionRef, why: Refusal) {
        bump(&self.of(function).refused[why as usize]);
    }

    /// An attempt starts on a call accepted at `enqueued_at` (unix ms).
    pub(crate) fn started(&self, function: &FunctionRef, attempt: u32, enqueued_at: u64) {
        let s = self.of(function);
        bump(&s.inflight);
        if attempt == 1 {
            let waited = unix_ms(SystemTime::now()).saturating_sub(enqueued_at);
            s.wait.observe(Duration::from_millis(waited));
        }
    }

    /// An attempt is over (whatever came of it).
    pub(crate) fn stopped(&self, function: &FunctionRef) {
        let s = self.of(function);
        let _ = s
            .inflight
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// An attempt failed and the call will be tried again.
    pub(crate) fn retried(&self, function: &FunctionRef) {
        bump(&self.of(function).retries);
    }

    /// A call ended.
    pub(crate) fn ended(&self, function: &FunctionRef, end: End) {
        bump(&self.of(function).ended[end as usize]);
    }

    /// A callback was delivered, or given up on.
    pub(crate) fn callback(&self, function: &FunctionRef, delivered: bool) {
        bump(&self.of(function).callbacks[usize::from(!delivered)]);
    }

    /// The Prometheus text of every counter.
    pub(crate) fn render(&self, out: &mut String) {
        let all: Vec<(String, Arc<FunctionStats>)> = self
            .functions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(f, s)| (escape(&f.to_string()), Arc::clone(s)))
            .collect();
        let queue = |f: &str| format!("function_name=\"{f}\",queue_name=\"faas-request\"");
        let plain = |f: &str| format!("function_name=\"{f}\"");
        // One line per function.
        let each = |out: &mut String,
                    (name, kind, help): (&str, &str, &str),
                    labels: &dyn Fn(&str) -> String,
                    value: &dyn Fn(&FunctionStats) -> u64| {
            header(out, name, kind, help);
            for (f, s) in &all {
                let _ = writeln!(out, "{name}{{{}}} {}", labels(f), value(s));
            }
        };
        each(
            out,
            (
                "queue_worker_messages_submitted_total",
                "counter",
                "Asynchronous calls accepted (OpenFaaS Pro's name)",
            ),
            &queue,
            &|s| get(&s.submitted),
        );
        each(
            out,
            (
                "queue_worker_messages_processed_total",
                "counter",
                "Asynchronous calls made to their end: succeeded, failed or dead-lettered (OpenFaaS Pro's name)",
            ),
            &queue,
            &|s| s.ended.iter().map(get).sum(),
        );
        each(
            out,
            (
                "queue_worker_function_invocation_inflight",
                "gauge",
                "Asynchronous calls being made now (OpenFaaS Pro's name)",
            ),
            &plain,
            &|s| get(&s.inflight),
        );
        each(
            out,
            (
                "ironfaas_async_retries_total",
                "counter",
                "Attempts of asynchronous calls that failed and were scheduled again",
            ),
            &plain,
            &|s| get(&s.retries),
        );
        // One line per function and value of `label`.
        let split = |out: &mut String,
                     (name, help): (&str, &str),
                     (label, values): (&str, &[&str]),
                     value: &dyn Fn(&FunctionStats, usize) -> u64| {
            header(out, name, "counter", help);
            for (f, s) in &all {
                for (i, v) in values.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "{name}{{function_name=\"{f}\",{label}=\"{v}\"}} {}",
                        value(s, i)
                    );
                }
            }
        };
        split(
            out,
            (
                "ironfaas_async_finished_total",
                "Asynchronous calls by how they ended",
            ),
            ("outcome", &OUTCOMES),
            &|s, i| get(&s.ended[i]),
        );
        split(
            out,
            (
                "ironfaas_async_refused_total",
                "Asynchronous calls refused: the queue was full (429), or the bodies being read \
                 took all of --async-body-memory (503)",
            ),
            ("reason", &REASONS),
            &|s, i| get(&s.refused[i]),
        );
        split(
            out,
            (
                "ironfaas_async_callbacks_total",
                "Callbacks to X-Callback-Url, delivered or given up after their retries",
            ),
            ("result", &["delivered", "failed"]),
            &|s, i| get(&s.callbacks[i]),
        );
        header(
            out,
            "ironfaas_async_wait_seconds",
            "histogram",
            "Time from accepting an asynchronous call to the start of its first attempt",
        );
        for (f, s) in &all {
            s.wait.render(
                out,
                "ironfaas_async_wait_seconds",
                &format!("function_name=\"{f}\""),
            );
        }
    }
}

/// Serves `GET /metrics` with the counters of `stats` on `listener` (a separate worker's,
/// which has no gateway to show them); anything else is a 404. At most 32 connections at once;
/// one that sends no request for 10 s is closed. Runs until dropped.
pub async fn serve_metrics(listener: tokio::net::TcpListener, stats: Arc<AsyncStats>) {
    serve_metrics_with(listener, stats, 32, Duration::from_secs(10)).await;
}

async fn serve_metrics_with(
    listener: tokio::net::TcpListener,
    stats: Arc<AsyncStats>,
    max_connections: usize,
    idle: Duration,
) {
    let permits = Arc::new(tokio::sync::Semaphore::new(max_connections));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(idle);
    loop {
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors, say: wait instead of spinning.
                tracing::warn!("metrics: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let stats = Arc::clone(&stats);
        let http = http.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: http::Request<_>| {
                let stats = Arc::clone(&stats);
                async move {
                    let (status, body) =
                        if req.method() == http::Method::GET && req.uri().path() == "/metrics" {
                            let mut out = String::new();
                            stats.render(&mut out);
                            (http::StatusCode::OK, out)
                        } else {
                            (
                                http::StatusCode::NOT_FOUND,
                                "404 page not found: this worker serves GET /metrics only\n".into(),
                            )
                        };
                    http::Response::builder()
                        .status(status)
                        .header(
                            http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )
                        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            // A client that goes away is no concern of the worker's.
            let _ = http.serve_connection(io, service).await;
            drop(permit);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_metrics_server_closes_idle_connections() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve_metrics_with(
            listener,
            Arc::new(AsyncStats::default()),
            2,
            Duration::from_millis(300),
        ));
        // Two connections that send nothing hold every slot, until they are closed.
        let mut idle = Vec::new();
        for _ in 0..2 {
            idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
        }
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        tokio::time::timeout(Duration::from_secs(5), client.read_to_string(&mut answer))
            .await
            .expect("served once the idle connections were closed")
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        for mut conn in idle {
            let mut buf = [0u8; 64];
            let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf))
                .await
                .expect("an idle connection is closed")
                .unwrap_or(0);
            assert_eq!(n, 0, "closed without an answer");
        }
        server.abort();
    }

    #[test]
    fn counts_each_step_of_a_call() {
        let stats = AsyncStats::default();
        let f = FunctionRef::new("resize", "media");
        stats.submitted(&f);
        let accepted = unix_ms(SystemTime::now()) - 3000;
        stats.started(&f, 1, accepted);
        let mut out = String::new();
        stats.render(&mut out);
        assert!(
            out.contains(
                "queue_worker_function_invocation_inflight{function_name=\"resize.media\"} 1"
            ),
            "{out}"
        );
        stats.retried(&f);
        stats.stopped(&f);
        stats.started(&f, 2, accepted);
        stats.ended(&f, End::DeadLettered);
        stats.callback(&f, false);
        stats.stopped(&f);
        stats.stopped(&f); // never below 0
        let mut out = String::new();
        stats.render(&mut out);
        let labels = "function_name=\"resize.media\"";
        for line in [
            format!(
                "queue_worker_messages_submitted_total{{{labels},queue_name=\"faas-request\"}} 1"
            ),
            format!(
                "queue_worker_messages_processed_total{{{labels},queue_name=\"faas-request\"}} 1"
            ),
            format!("queue_worker_function_invocation_inflight{{{labels}}} 0"),
            format!("ironfaas_async_finished_total{{{labels},outcome=\"dead_lettered\"}} 1"),
            format!("ironfaas_async_finished_total{{{labels},outcome=\"succeeded\"}} 0"),
            format!("ironfaas_async_retries_total{{{labels}}} 1"),
            format!("ironfaas_async_callbacks_total{{{labels},result=\"failed\"}} 1"),
            // The first attempt waited 3 s: counted from 5 s up, not at 2.5 s; the retry not at all.
            format!("ironfaas_async_wait_seconds_bucket{{{labels},le=\"2.5\"}} 0"),
            format!("ironfaas_async_wait_seconds_bucket{{{labels},le=\"5\"}} 1"),
            format!("ironfaas_async_wait_seconds_count{{{labels}}} 1"),
        ] {
            assert!(out.lines().any(|l| l == line), "no line {line} in:\n{out}");
        }
    }
}
