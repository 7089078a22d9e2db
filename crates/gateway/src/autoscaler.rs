//! The autoscaler: from the gateway's own live counters (no Prometheus needed) to
//! `Provider::scale`, following each function's `com.openfaas.scale.*` policy.
//!
//! Every tick it measures each function's load (calls per second, or calls in flight),
//! computes `desired = ceil(load / (target × proportion))` clamped to [max(min, 1), max], scales
//! up at once, and scales down only to the highest recommendation of the last
//! `scale_down_window` (so a short lull does not shed replicas). A function with
//! `com.openfaas.scale.zero=true` goes to zero after `zero-duration` without calls.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ironfaas_spec::names::FunctionRef;
use ironfaas_spec::scaling::{ScalePolicy, ScaleType};

use crate::Gateway;

/// What the autoscaler remembers of one function between ticks.
struct Memory {
    /// Calls started at the previous tick, and when.
    last_started: (u64, Instant),
    /// Recent recommendations, newest last.
    recommendations: VecDeque<(Instant, u64)>,
    /// Since when the function has been watched at its current size: no scale-down before a
    /// whole window of recommendations was seen.
    watched_since: Instant,
}

/// The autoscaler's state.
pub(crate) struct Autoscaler {
    gateway: Arc<Gateway>,
    memory: HashMap<FunctionRef, Memory>,
    started_at: SystemTime,
}

impl Autoscaler {
    /// An autoscaler for `gateway`.
    pub(crate) fn new(gateway: Arc<Gateway>) -> Self {
        Autoscaler {
            gateway,
            memory: HashMap::new(),
            started_at: SystemTime::now(),
        }
    }

    /// Runs forever, one tick per `config.autoscale_interval`.
    pub(crate) async fn run(mut self) {
        let mut tick = tokio::time::interval(self.gateway.config.autoscale_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.tick().await;
        }
    }

    async fn tick(&mut self) {
        let provider = Arc::clone(&self.gateway.provider);
        let Ok(namespaces) = provider.namespaces().await else {
            return;
        };
        let queued: HashMap<FunctionRef, f64> = match &self.gateway.queue {
            Some(queue) => queue
                .depth()
                .await
                .unwrap_or_default()
                .into_iter()
                .map(|(f, d)| (f, d.queued as f64))
                .collect(),
            None => HashMap::new(),
        };
        let mut seen = Vec::new();
        for namespace in namespaces {
            let Ok(functions) = provider.list(&namespace).await else {
                continue;
            };
            for status in functions {
                let function = FunctionRef::new(&status.name, &namespace);
                let Ok(policy) = ScalePolicy::from_labels(status.spec.labels.as_ref()) else {
                    continue;
                };
                let waiting = queued.get(&function).copied().unwrap_or(0.0);
                if let Some(replicas) = self.decide(&function, &policy, status.replicas, waiting) {
                    tracing::info!(
                        "autoscaler: {function} from {} to {replicas} replica(s)",
                        status.replicas
                    );
                    if let Err(e) = provider.scale(&function, replicas).await {
                        tracing::warn!("autoscaler: cannot scale {function}: {e}");
                    }
                }
                seen.push(function);
            }
        }
        self.memory.retain(|f, _| seen.contains(f));
    }

    /// The replicas `function` should have now, when that differs from `current`.
    /// `queued` asynchronous calls waiting for the function count as load too.
    fn decide(
        &mut self,
        function: &FunctionRef,
        policy: &ScalePolicy,
        current: u64,
        queued: f64,
    ) -> Option<u64> {
        let now = Instant::now();
        let metrics = self.gateway.metrics.get(function);
        let started = metrics.as_ref().map_or(0, |m| m.started_total());
        let memory = self
            .memory
            .entry(function.clone())
            .or_insert_with(|| Memory {
                last_started: (started, now),
                recommendations: VecDeque::new(),
                watched_since: now,
            });
        let (before, then) = std::mem::replace(&mut memory.last_started, (started, now));
        if current == 0 {
            memory.recommendations.clear();
            memory.watched_since = now;
            return None;
        }
        if policy.zero {
            let last = metrics
                .and_then(|m| m.last_call())
                .unwrap_or(self.started_at)
                .max(self.started_at);
            if SystemTime::now().duration_since(last).unwrap_or_default() >= policy.zero_duration {
                memory.recommendations.clear();
                return Some(0);
            }
        }
        if !policy.autoscales() {
            return None;
        }
        let load = match policy.kind {
            ScaleType::Rps => {
                let seconds = now.duration_since(then).as_secs_f64();
                if seconds > 0.0 {
                    started.saturating_sub(before) as f64 / seconds
                } else {
                    0.0
                }
            }
            ScaleType::Capacity => self
                .gateway
                .provider
                .route(&function.name, &function.namespace)
                .map_or(0.0, |r| {
                    r.backends().iter().map(|b| f64::from(b.inflight())).sum()
                }),
        } + queued;
        let recommendation = policy.desired_for(load).max(1);
        let window = self.gateway.config.scale_down_window;
        memory.recommendations.push_back((now, recommendation));
        while memory
            .recommendations
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > window)
        {
            memory.recommendations.pop_front();
        }
        let desired = if recommendation >= current {
            recommendation
        } else if now.duration_since(memory.watched_since) < window {
            current
        } else {
            memory
                .recommendations
                .iter()
                .map(|(_, r)| *r)
                .max()
                .unwrap_or(recommendation)
        };
        if desired != current {
            memory.watched_since = now;
            memory.recommendations.clear();
        }
        (desired != current).then_some(desired)
    }
}

/// How often the autoscaler looks by default.
pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
