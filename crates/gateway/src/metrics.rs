//! The gateway's own counters of invocations per function, read by `GET /system/functions`
//! as `invocationCount`.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Invocation counters, by `name.namespace`.
#[derive(Default)]
pub(crate) struct Metrics {
    invocations: RwLock<HashMap<String, AtomicU64>>,
}

impl Metrics {
    /// Counts one completed call of `function`.
    pub fn count(&self, function: &str) {
        if let Some(count) = self
            .invocations
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(function)
        {
            count.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut map = self.invocations.write().unwrap_or_else(|p| p.into_inner());
        map.entry(function.to_string())
            .or_default()
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Calls of `function` so far.
    pub fn invocations(&self, function: &str) -> u64 {
        let map = self.invocations.read().unwrap_or_else(|p| p.into_inner());
        map.get(function).map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_function() {
        let m = Metrics::default();
        m.count("a.ns");
        m.count("a.ns");
        m.count("b.ns");
        assert_eq!(
            (
                m.invocations("a.ns"),
                m.invocations("b.ns"),
                m.invocations("c.ns")
            ),
            (2, 1, 0)
        );
    }
}
