//! The gateway's metrics, with OpenFaaS' names and labels (compat §9.1) so existing Grafana
//! dashboards and alert rules keep working, in the Prometheus text format.
//!
//! Written by hand rather than with `prometheus-client`: its OpenMetrics encoder appends
//! `_total` to every counter, and OpenFaaS' `gateway_function_invocation_started` has none.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ironfaas_spec::names::FunctionRef;

/// Prometheus' default histogram buckets, as the OpenFaaS gateway uses them.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A histogram over a fixed set of upper bounds ([`BUCKETS`] by default).
#[derive(Debug)]
pub(crate) struct Histogram {
    bounds: &'static [f64],
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::with_bounds(&BUCKETS)
    }
}

impl Histogram {
    /// A histogram with these upper bounds (in seconds, ascending).
    pub fn with_bounds(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub fn observe(&self, value: Duration) {
        let seconds = value.as_secs_f64();
        for (bound, bucket) in self.bounds.iter().zip(&self.buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(value.as_micros() as u64, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Writes the `_bucket`, `_sum` and `_count` lines of `name` with `labels`.
    pub fn render(&self, out: &mut String, name: &str, labels: &str) {
        for (bound, bucket) in self.bounds.iter().zip(&self.buckets) {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels},le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.count();
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

/// Calls answered with one status code.
#[derive(Debug, Default)]
struct CodeMetrics {
    total: AtomicU64,
    seconds: Histogram,
}

/// The live counters of one function.
#[derive(Debug)]
pub(crate) struct FunctionMetrics {
    /// `name.namespace`, the `function_name` label.
    label: String,
    started: AtomicU64,
    codes: RwLock<Vec<(u16, Arc<CodeMetrics>)>>,
    last_call_ms: AtomicU64,
    /// Starts from zero replicas.
    pub cold_starts: Histogram,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

impl FunctionMetrics {
    fn new(function: &FunctionRef) -> Self {
        FunctionMetrics {
            label: function.to_string(),
            started: AtomicU64::new(0),
            codes: RwLock::new(Vec::new()),
            last_call_ms: AtomicU64::new(0),
            cold_starts: Histogram::default(),
        }
    }

    /// A call started.
    pub fn started(&self) {
        self.started.fetch_add(1, Ordering::Relaxed);
        self.last_call_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// Calls started so far.
    pub fn started_total(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    /// A call finished with `code` after `took`.
    pub fn finished(&self, code: u16, took: Duration) {
        let found = {
            let codes = self.codes.read().unwrap_or_else(|p| p.into_inner());
            codes
                .iter()
                .find(|(c, _)| *c == code)
                .map(|(_, m)| Arc::clone(m))
        };
        let metrics = found.unwrap_or_else(|| {
            let mut codes = self.codes.write().unwrap_or_else(|p| p.into_inner());
            if let Some((_, m)) = codes.iter().find(|(c, _)| *c == code) {
                return Arc::clone(m);
            }
            let m = Arc::new(CodeMetrics::default());
            codes.push((code, Arc::clone(&m)));
            codes.sort_by_key(|(c, _)| *c);
            m
        });
        metrics.total.fetch_add(1, Ordering::Relaxed);
        metrics.seconds.observe(took);
    }

    /// Finished calls, whatever their status.
    pub fn invocations(&self) -> u64 {
        let codes = self.codes.read().unwrap_or_else(|p| p.into_inner());
        codes
            .iter()
            .map(|(_, m)| m.total.load(Ordering::Relaxed))
            .sum()
    }

    /// When the last call started, if any.
    pub fn last_call(&self) -> Option<SystemTime> {
        match self.last_call_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(UNIX_EPOCH + Duration::from_millis(ms)),
        }
    }
}

/// Gauges read from the provider when metrics are scraped.
#[derive(Debug, Clone, Default)]
pub(crate) struct ServiceGauges {
    /// `name.namespace`.
    pub label: String,
    /// Desired replicas.
    pub desired: u64,
    /// Ready replicas.
    pub ready: u64,
    /// Calls in flight over all replicas.
    pub inflight: u64,
}

/// Every function's counters, by namespace and name.
#[derive(Default)]
pub(crate) struct Metrics {
    functions: RwLock<HashMap<String, HashMap<String, Arc<FunctionMetrics>>>>,
}

impl Metrics {
    /// The counters of `function`, created on first use.
    pub fn function(&self, function: &FunctionRef) -> Arc<FunctionMetrics> {
        {
            let map = self.functions.read().unwrap_or_else(|p| p.into_inner());
            if let Some(m) = map
                .get(&function.namespace)
                .and_then(|m| m.get(&function.name))
            {
                return Arc::clone(m);
            }
        }
        let mut map = self.functions.write().unwrap_or_else(|p| p.into_inner());
        Arc::clone(
            map.entry(function.namespace.clone())
                .or_default()
                .entry(function.name.clone())
                .or_insert_with(|| Arc::new(FunctionMetrics::new(function))),
        )
    }

    /// The counters of `function` if it was ever called.
    pub fn get(&self, function: &FunctionRef) -> Option<Arc<FunctionMetrics>> {
        let map = self.functions.read().unwrap_or_else(|p| p.into_inner());
        map.get(&function.namespace)?.get(&function.name).cloned()
    }

    /// Adds the gateway's counters of the function to its status.
    pub fn annotate(&self, status: &mut ironfaas_spec::wire::FunctionStatus) {
        let function = FunctionRef::new(&status.name, &status.spec.namespace);
        if let Some(m) = self.get(&function) {
            status.invocation_count = m.invocations() as f64;
            status.cold_starts = m.cold_starts.count();
            status.last_invocation = m
                .last_call()
                .map(ironfaas_spec::timestamp::format_rfc3339)
                .unwrap_or_default();
        }
    }

    fn all(&self) -> Vec<Arc<FunctionMetrics>> {
        let map = self.functions.read().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<_> = map.values().flat_map(|m| m.values().cloned()).collect();
        all.sort_by(|a, b| a.label.cmp(&b.label));
        all
    }

    /// The Prometheus text exposition, with `services` gauges and extra `queue` lines.
    pub fn render(&self, services: &[ServiceGauges], extra: &str) -> String {
        let mut out = String::with_capacity(4096);
        let all = self.all();
        let label = |f: &str| format!("function_name=\"{}\"", escape(f));

        header(
            &mut out,
            "gateway_function_invocation_total",
            "counter",
            "Function metrics",
        );
        for f in &all {
            for (code, m) in f.codes.read().unwrap_or_else(|p| p.into_inner()).iter() {
                let _ = writeln!(
                    out,
                    "gateway_function_invocation_total{{code=\"{code}\",{}}} {}",
                    label(&f.label),
                    m.total.load(Ordering::Relaxed)
                );
            }
        }
        header(
            &mut out,
            "gateway_functions_seconds",
            "histogram",
            "Function time taken",
        );
        for f in &all {
            for (code, m) in f.codes.read().unwrap_or_else(|p| p.into_inner()).iter() {
                m.seconds.render(
                    &mut out,
                    "gateway_functions_seconds",
                    &format!("code=\"{code}\",{}", label(&f.label)),
                );
            }
        }
        header(
            &mut out,
            "gateway_function_invocation_started",
            "counter",
            "The total number of function HTTP requests started.",
        );
        for f in &all {
            let _ = writeln!(
                out,
                "gateway_function_invocation_started{{{}}} {}",
                label(&f.label),
                f.started_total()
            );
        }
        header(
            &mut out,
            "gateway_service_count",
            "gauge",
            "Desired replicas of the function",
        );
        for s in services {
            let _ = writeln!(
                out,
                "gateway_service_count{{{}}} {}",
                label(&s.label),
                s.desired
            );
        }
        header(
            &mut out,
            "gateway_service_ready_count",
            "gauge",
            "Ready replicas of the function",
        );
        for s in services {
            let _ = writeln!(
                out,
                "gateway_service_ready_count{{{}}} {}",
                label(&s.label),
                s.ready
            );
        }
        header(
            &mut out,
            "gateway_function_invocation_inflight",
            "gauge",
            "Calls of the function in flight",
        );
        for s in services {
            let _ = writeln!(
                out,
                "gateway_function_invocation_inflight{{{}}} {}",
                label(&s.label),
                s.inflight
            );
        }
        header(
            &mut out,
            "ironfaas_cold_starts_total",
            "counter",
            "Starts of the function from zero replicas",
        );
        for f in &all {
            let _ = writeln!(
                out,
                "ironfaas_cold_starts_total{{{}}} {}",
                label(&f.label),
                f.cold_starts.count()
            );
        }
        header(
            &mut out,
            "ironfaas_cold_start_seconds",
            "histogram",
            "Time from a call arriving at zero replicas to a ready replica",
        );
        for f in &all {
            f.cold_starts
                .render(&mut out, "ironfaas_cold_start_seconds", &label(&f.label));
        }
        out.push_str(extra);
        out
    }
}

/// Writes the `# HELP` and `# TYPE` lines of a metric.
pub(crate) fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Escapes a label value (backslash, quote, newline).
pub(crate) fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_function_and_code() {
        let m = Metrics::default();
        let a = FunctionRef::new("a", "ns");
        let fa = m.function(&a);
        fa.started();
        fa.finished(200, Duration::from_millis(3));
        fa.started();
        fa.finished(502, Duration::from_millis(700));
        assert_eq!(fa.invocations(), 2);
        assert!(fa.last_call().is_some());
        assert!(m.get(&FunctionRef::new("b", "ns")).is_none());
        let text = m.render(&[], "");
        assert!(
            text.contains(
                "gateway_function_invocation_total{code=\"200\",function_name=\"a.ns\"} 1\n"
            ),
            "{text}"
        );
        assert!(text.contains(
            "gateway_function_invocation_total{code=\"502\",function_name=\"a.ns\"} 1\n"
        ));
        assert!(text.contains("gateway_function_invocation_started{function_name=\"a.ns\"} 2\n"));
        assert!(text.contains(
            "gateway_functions_seconds_bucket{code=\"200\",function_name=\"a.ns\",le=\"0.005\"} 1\n"
        ));
        assert!(text.contains(
            "gateway_functions_seconds_bucket{code=\"502\",function_name=\"a.ns\",le=\"0.5\"} 0\n"
        ));
        assert!(text.contains(
            "gateway_functions_seconds_bucket{code=\"502\",function_name=\"a.ns\",le=\"1\"} 1\n"
        ));
        assert!(
            text.contains(
                "gateway_functions_seconds_count{code=\"502\",function_name=\"a.ns\"} 1\n"
            )
        );
    }

    #[test]
    fn service_gauges_render() {
        let m = Metrics::default();
        let s = ServiceGauges {
            label: "f.ns".into(),
            desired: 3,
            ready: 2,
            inflight: 7,
        };
        let text = m.render(&[s], "# extra\n");
        assert!(text.contains("gateway_service_count{function_name=\"f.ns\"} 3\n"));
        assert!(text.contains("gateway_service_ready_count{function_name=\"f.ns\"} 2\n"));
        assert!(text.contains("gateway_function_invocation_inflight{function_name=\"f.ns\"} 7\n"));
        assert!(text.ends_with("# extra\n"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\n"), "a\\\"b\\\\c\\n");
    }
}
