//! Async jobs for ironfaas: the [`Queue`] trait the gateway enqueues to and its workers lease
//! from, with two backends: [`EmbeddedQueue`] (one SQLite file, the default on one machine) and
//! [`NatsQueue`] (NATS JetStream, for several gateways).
//!
//! Delivery is at least once: a job is stored durably before `enqueue` returns, a leased job
//! is not given to another worker while its lease lasts (workers extend it while a call runs),
//! and a job whose lease runs out is leased again. The job id is the idempotency key.
//!
//! Fairness: `lease` goes over the functions with due jobs in turn, giving each an equal share
//! of the batch first, and starts one function further on at each call, so one function's
//! backlog does not starve another. Per-function concurrency limits are passed in
//! [`LeaseRequest::room`]: how many more jobs of each function the worker can take now.

mod codec;
pub mod embedded;
mod error;
mod job;
pub mod nats;
mod queue;

pub use embedded::{EmbeddedOptions, EmbeddedQueue};
pub use error::QueueError;
pub use job::{
    DeadLetterQuery, DepthCounts, Enqueued, Job, JobRecord, JobState, LeaseRequest, Outcome, Room,
    unix_ms,
};
pub use nats::{NatsOptions, NatsQueue};
pub use queue::{Lease, Queue};
