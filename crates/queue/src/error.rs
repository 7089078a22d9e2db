//! Why a queue operation failed.

/// Why a queue operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The job was refused before anything was stored.
    #[error("job '{id}' was not queued: {reason}")]
    InvalidJob {
        /// The job's id.
        id: String,
        /// What is wrong with it and how to fix it.
        reason: String,
    },
    /// No job with this id is in the queue.
    #[error(
        "no job with id '{id}' in the queue; finished jobs are kept only for the retention \
         period, and a deleted dead letter is gone"
    )]
    NotFound {
        /// The id asked for.
        id: String,
    },
    /// Replay or delete of a job that is not a dead letter.
    #[error(
        "job '{id}' is {state}, not dead-lettered; only dead letters can be replayed or deleted"
    )]
    NotDeadLettered {
        /// The job's id.
        id: String,
        /// Its current state.
        state: &'static str,
    },
    /// The lease ran out and the job was leased again or finished elsewhere; this worker's
    /// result is discarded.
    #[error(
        "the lease on job '{id}' was lost: it expired and the job was leased again (or already \
         finished); extend leases well before `lease_for` runs out"
    )]
    LeaseLost {
        /// The job's id.
        id: String,
    },
    /// A lease from another backend was handed to this one.
    #[error(
        "the lease on job '{id}' belongs to another queue backend; use the queue that leased it"
    )]
    ForeignLease {
        /// The job's id.
        id: String,
    },
    /// The embedded store failed.
    #[error("embedded queue at {location}: {operation} failed: {message}")]
    Storage {
        /// The queue's directory.
        location: String,
        /// What was being done.
        operation: &'static str,
        /// What failed, with the hint to fix it.
        message: String,
    },
    /// NATS JetStream failed or could not be reached.
    #[error(
        "NATS JetStream queue at {url}: {operation} failed: {message}; check that nats-server \
         is running there with JetStream enabled (-js)"
    )]
    Nats {
        /// The server URL.
        url: String,
        /// What was being done.
        operation: &'static str,
        /// What failed.
        message: String,
    },
    /// A stored job could not be read back.
    #[error("job '{id}' in the queue is unreadable: {message}")]
    Corrupt {
        /// The job's id (or its storage key).
        id: String,
        /// What is wrong.
        message: String,
    },
    /// The queue holds as many calls waiting or running as it may; nothing was stored.
    #[error(
        "the queue is full: it holds its limit of {limit} calls waiting or running; try again \
         once the workers have made room"
    )]
    Full {
        /// The limit.
        limit: u64,
    },
    /// The queue was shut down.
    #[error("the queue at {location} is shut down")]
    Closed {
        /// The queue's location.
        location: String,
    },
}
