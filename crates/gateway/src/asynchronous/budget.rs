//! The memory the bodies of asynchronous calls may take while they are read and stored: each
//! is held whole until the queue has it, so without a budget `--max-connections` clients could
//! make the gateway hold that many `--max-async-body` bodies at once.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bytes per permit.
const UNIT: u64 = 1024;

/// Permits for `bytes` (rounded up).
fn units(bytes: u64) -> u64 {
    bytes.div_ceil(UNIT)
}

/// Room for the bodies being read and stored at once.
pub(crate) struct BodyBudget {
    room: Arc<Semaphore>,
    bytes: u64,
}

/// Room taken for one body; given back when dropped.
pub(crate) struct Reserved(OwnedSemaphorePermit);

impl BodyBudget {
    /// A budget of `bytes` in all.
    pub fn new(bytes: u64) -> BodyBudget {
        let permits = usize::try_from(units(bytes))
            .unwrap_or(usize::MAX)
            .min(Semaphore::MAX_PERMITS);
        BodyBudget {
            room: Arc::new(Semaphore::new(permits)),
            bytes,
        }
    }

    /// The whole budget in bytes.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Takes room for a body of up to `bytes`, or `None` while the bodies already being read
    /// leave too little.
    pub fn take(&self, bytes: u64) -> Option<Reserved> {
        let n = u32::try_from(units(bytes)).unwrap_or(u32::MAX);
        Arc::clone(&self.room)
            .try_acquire_many_owned(n)
            .ok()
            .map(Reserved)
    }
}

impl Reserved {
    /// Gives back what a body of `bytes` does not need.
    pub fn shrink_to(&mut self, bytes: u64) {
        let keep = usize::try_from(units(bytes)).unwrap_or(usize::MAX);
        let held = self.0.num_permits();
        if held > keep {
            drop(self.0.split(held - keep));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_is_taken_shrunk_and_given_back() {
        let budget = BodyBudget::new(10 * 1024);
        let mut big = budget.take(8 * 1024).expect("room for 8 KiB");
        assert!(budget.take(4 * 1024).is_none(), "2 KiB left");
        let small = budget.take(2000).expect("2000 bytes fit in 2 KiB");
        drop(small);
        big.shrink_to(1);
        assert!(budget.take(9 * 1024).is_some(), "1 KiB held");
        drop(big);
        assert!(budget.take(10 * 1024).is_some(), "all given back");
        assert!(
            budget.take(11 * 1024).is_none(),
            "never more than the budget"
        );
    }
}
