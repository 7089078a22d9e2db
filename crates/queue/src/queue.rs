//! The `Queue` trait the gateway's async path and workers use, and the lease they hold.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use ironfaas_spec::names::FunctionRef;

use crate::error::QueueError;
use crate::job::{DeadLetterQuery, DepthCounts, Enqueued, Job, JobRecord, LeaseRequest, Outcome};

/// A job leased by a worker: it is not given to anyone else until the lease runs out.
#[derive(Debug)]
pub struct Lease {
    /// The job, with `attempt` set to the number of this attempt (1 for the first).
    pub job: Job,
    pub(crate) token: LeaseToken,
}

/// What a backend needs to recognise its own lease.
#[derive(Debug)]
pub(crate) enum LeaseToken {
    /// The embedded backend's lease number (unique per lease).
    Embedded(i64),
    /// The NATS backend's delivered message and state-record revision.
    Nats(Box<crate::nats::NatsLease>),
}

/// A durable queue of async jobs with leases, retries and dead letters.
///
/// Delivery is at least once: a job whose lease runs out without `extend`, `ack`,
/// `retry_later` or `dead_letter` is leased again (as a new attempt). A job is never leased for
/// more than `max_attempts` attempts: one due for another goes to the dead letters instead.
#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// Stores `job` durably (on disk, or acknowledged by JetStream) before returning; a job
    /// whose id was already accepted is not added again.
    async fn enqueue(&self, job: Job) -> Result<Enqueued, QueueError>;

    /// Leases up to `req.max` due jobs, shared across functions in turn and within each
    /// function's room; returns as soon as at least one is due, or empty after `req.wait`.
    /// Dropping the call after the backend leased jobs leaves them leased until their lease
    /// runs out (they then come back as a new attempt).
    async fn lease(&self, req: &LeaseRequest) -> Result<Vec<Lease>, QueueError>;

    /// Keeps a lease for `lease_for` from now (call it well before the lease runs out).
    async fn extend(&self, lease: &Lease, lease_for: Duration) -> Result<(), QueueError>;

    /// Finishes the job with its final outcome.
    async fn ack(&self, lease: Lease, outcome: Outcome) -> Result<(), QueueError>;

    /// Makes the job leasable again at `at` (not before), recording why this attempt failed.
    async fn retry_later(
        &self,
        lease: Lease,
        at: SystemTime,
        error: String,
    ) -> Result<(), QueueError>;

    /// Moves the job to the dead-letter list.
    async fn dead_letter(&self, lease: Lease, error: String) -> Result<(), QueueError>;

    /// The job's record, or `None` if the id is unknown (or its record was pruned).
    async fn get(&self, id: &str) -> Result<Option<JobRecord>, QueueError>;

    /// The dead letters `query` asks for, oldest first.
    async fn dead_letters(&self, query: &DeadLetterQuery) -> Result<Vec<JobRecord>, QueueError>;

    /// Puts a dead letter back in the queue with its attempts reset.
    async fn replay(&self, id: &str) -> Result<(), QueueError>;

    /// Deletes a dead letter for good.
    async fn delete_dead_letter(&self, id: &str) -> Result<(), QueueError>;

    /// The number of jobs in each live state, per function that has any, sorted by function.
    async fn depth(&self) -> Result<Vec<(FunctionRef, DepthCounts)>, QueueError>;
}

/// Checks what every backend refuses before storing a job.
pub(crate) fn validate(job: &Job) -> Result<(), QueueError> {
    let invalid = |reason: String| QueueError::InvalidJob {
        id: job.id.clone(),
        reason,
    };
    if job.id.is_empty() || job.id.len() > 256 {
        return Err(invalid(
            "the id must have 1 to 256 characters (a UUID is usual)".to_string(),
        ));
    }
    if job.id.chars().any(char::is_control) {
        return Err(invalid(
            "the id has a control character; use printable characters".to_string(),
        ));
    }
    if job.max_attempts == 0 {
        return Err(invalid(
            "max_attempts is 0; a job needs at least 1 attempt".to_string(),
        ));
    }
    job.function
        .validate()
        .map_err(|e| invalid(format!("function '{}': {e}", job.function)))
}
