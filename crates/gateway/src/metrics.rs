//! The gateway's own counters of invocations per function, read by `GET /system/functions`
//! as `invocationCount`.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use ironfaas_spec::names::FunctionRef;

/// Invocation counters, by namespace and name.
#[derive(Default)]
pub(crate) struct Metrics {
    invocations: RwLock<HashMap<String, HashMap<String, AtomicU64>>>,
}

impl Metrics {
    /// Counts one call of `function`.
    pub fn count(&self, function: &FunctionRef) {
        {
            let map = self.invocations.read().unwrap_or_else(|p| p.into_inner());
            if let Some(count) = map
                .get(&function.namespace)
                .and_then(|m| m.get(&function.name))
            {
                count.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        let mut map = self.invocations.write().unwrap_or_else(|p| p.into_inner());
        map.entry(function.namespace.clone())
            .or_default()
            .entry(function.name.clone())
            .or_default()
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Calls of `function` so far.
    pub fn invocations(&self, function: &FunctionRef) -> u64 {
        let map = self.invocations.read().unwrap_or_else(|p| p.into_inner());
        map.get(&function.namespace)
            .and_then(|m| m.get(&function.name))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_function() {
        let m = Metrics::default();
        let (a, b) = (FunctionRef::new("a", "ns"), FunctionRef::new("b", "ns"));
        m.count(&a);
        m.count(&a);
        m.count(&b);
        let c = FunctionRef::new("a", "other");
        assert_eq!(
            (m.invocations(&a), m.invocations(&b), m.invocations(&c)),
            (2, 1, 0)
        );
    }
}
