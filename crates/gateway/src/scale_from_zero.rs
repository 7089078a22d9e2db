//! Scale from zero: a call for a function with no ready replica waits, bounded, while one
//! starts. Concurrent first calls share that one start; the start is counted and timed.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ironfaas_spec::names::FunctionRef;
use ironfaas_spec::provider::FunctionRoute;
use ironfaas_spec::scaling::ScalePolicy;

use crate::Gateway;
use crate::metrics::FunctionMetrics;

/// Functions being woken right now.
#[derive(Default)]
pub(crate) struct Waking {
    functions: Mutex<HashSet<FunctionRef>>,
}

impl Waking {
    /// Marks `function` as waking; false when another call is waking it already.
    fn begin(&self, function: &FunctionRef) -> bool {
        self.functions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(function.clone())
    }

    fn end(&self, function: &FunctionRef) {
        self.functions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(function);
    }
}

/// Why no replica became ready for a call.
pub(crate) enum NotReady {
    /// None became ready within the wait.
    TimedOut(Duration),
    /// Starting one failed.
    Failed(String),
}

/// Waits until `route` has a ready replica, starting one when the function is at zero.
pub(crate) async fn wait_for_replica(
    gateway: &Arc<Gateway>,
    route: &FunctionRoute,
    metrics: &Arc<FunctionMetrics>,
) -> Result<(), NotReady> {
    let limit = gateway.config.scale_from_zero_timeout;
    let function = &route.function;
    let status = gateway
        .provider
        .status(function)
        .await
        .map_err(|e| NotReady::Failed(e.to_string()))?;
    if status.replicas == 0 && gateway.waking.begin(function) {
        let started = Instant::now();
        let policy = ScalePolicy::from_labels(status.spec.labels.as_ref()).unwrap_or_default();
        let woke = {
            let gateway = Arc::clone(gateway);
            let function = function.clone();
            tokio::spawn(async move {
                let result = gateway
                    .provider
                    .scale(&function, policy.wake_replicas())
                    .await;
                gateway.waking.end(&function);
                result
            })
        };
        match woke.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(NotReady::Failed(e.to_string())),
            Err(e) => return Err(NotReady::Failed(e.to_string())),
        }
        if !route
            .wait_ready(limit.saturating_sub(started.elapsed()))
            .await
        {
            return Err(NotReady::TimedOut(limit));
        }
        metrics.cold_starts.observe(started.elapsed());
        tracing::info!("{function} started from zero in {:?}", started.elapsed());
        return Ok(());
    }
    if route.wait_ready(limit).await {
        Ok(())
    } else {
        Err(NotReady::TimedOut(limit))
    }
}
