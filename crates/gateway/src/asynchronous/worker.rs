//! The worker pool: leases stored calls within a global and a per-function limit, makes each
//! call while extending its lease, then acks, retries later or dead-letters it, and delivers
//! the callback.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use ironfaas_queue::{Lease, LeaseRequest, Outcome, Queue, Room};
use ironfaas_spec::names::FunctionRef;
use ironfaas_spec::retry::RetryPolicy;
use tokio::sync::Semaphore;

use super::callback::{Callback, Callbacks};
use super::invoker::{Answer, Invoker};
use super::stats::{AsyncStats, End};

/// How the worker pool runs.
#[derive(Debug, Clone, Copy)]
pub struct WorkerConfig {
    /// Stored calls made at once, over all functions.
    pub concurrency: usize,
    /// How long a lease lasts without being extended; a call that runs longer keeps its lease
    /// by extending it every third of this.
    pub lease: Duration,
    /// How long one lease request waits for work.
    pub poll: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            concurrency: 64,
            lease: Duration::from_secs(30),
            poll: Duration::from_secs(1),
        }
    }
}

/// Calls running now, per function.
#[derive(Default)]
struct Running(Mutex<HashMap<FunctionRef, usize>>);

impl Running {
    fn change(&self, function: &FunctionRef, up: bool) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(function.clone()).or_default();
        *n = if up { *n + 1 } else { n.saturating_sub(1) };
    }

    fn snapshot(&self) -> HashMap<FunctionRef, usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// What the pool shares with each call.
struct Shared {
    queue: Arc<dyn Queue>,
    invoker: Arc<dyn Invoker>,
    stats: Option<Arc<AsyncStats>>,
    callbacks: Callbacks,
    config: WorkerConfig,
    running: Running,
    limits: Mutex<HashMap<FunctionRef, usize>>,
}

/// Runs the worker pool until `shutdown` resolves; calls in flight then finish. `stats`, when
/// given, counts what the calls did (for `/metrics`).
pub async fn run_workers(
    queue: Arc<dyn Queue>,
    invoker: Arc<dyn Invoker>,
    config: WorkerConfig,
    stats: Option<Arc<AsyncStats>>,
    shutdown: impl Future<Output = ()>,
) {
    let shared = Arc::new(Shared {
        queue,
        invoker,
        stats,
        callbacks: Callbacks::new(),
        config,
        running: Running::default(),
        limits: Mutex::new(HashMap::new()),
    });
    let slots = Arc::new(Semaphore::new(config.concurrency));
    tokio::pin!(shutdown);
    loop {
        let free = tokio::select! {
            () = &mut shutdown => break,
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(permit) => { drop(permit); slots.available_permits() }
                Err(_) => break,
            },
        };
        let room = shared.room();
        let request = LeaseRequest::new(free, config.lease, config.poll).with_room(room);
        let leases = tokio::select! {
            () = &mut shutdown => break,
            leased = shared.queue.lease(&request) => leased,
        };
        let leases = match leases {
            Ok(leases) => leases,
            Err(e) => {
                tracing::warn!("async workers: cannot lease calls: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        for lease in leases {
            let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
                break;
            };
            let shared = Arc::clone(&shared);
            shared.running.change(&lease.job.function, true);
            let job = &lease.job;
            shared.count(|s| s.started(&job.function, job.attempt, job.enqueued_at));
            tokio::spawn(async move {
                let function = lease.job.function.clone();
                shared.process(lease).await;
                shared.running.change(&function, false);
                shared.count(|s| s.stopped(&function));
                drop(permit);
            });
        }
    }
    // Let the calls in flight finish (they keep their leases alive meanwhile).
    let _ = slots.acquire_many(config.concurrency as u32).await;
}

/// A random number in 0..1 for jitter, without a random-number crate.
fn jitter() -> f64 {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    f64::from(nanos % 1000) / 1000.0
}

impl Shared {
    /// Counts with the stats, if this pool keeps any.
    fn count(&self, f: impl FnOnce(&AsyncStats)) {
        if let Some(stats) = &self.stats {
            f(stats);
        }
    }

    /// How many more calls of each function may start now.
    fn room(&self) -> Room {
        let running = self.running.snapshot();
        let limits = self.limits.lock().unwrap_or_else(|p| p.into_inner());
        let mut room = Room::unlimited();
        for (function, limit) in limits.iter() {
            let busy = running.get(function).copied().unwrap_or(0);
            room.set(function.clone(), limit.saturating_sub(busy));
        }
        room
    }

    /// Runs `work` while keeping `lease` alive, so that a call or a callback slower than the
    /// lease period is not handed to another worker meanwhile.
    async fn keeping<T>(&self, lease: &Lease, work: impl Future<Output = T>) -> T {
        let every = self.config.lease / 3;
        tokio::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return out,
                () = tokio::time::sleep(every) => {
                    if let Err(e) = self.queue.extend(lease, self.config.lease).await {
                        tracing::warn!("async call {}: cannot extend its lease: {e}", lease.job.id);
                    }
                }
            }
        }
    }

    /// Makes the call of `lease` while keeping the lease alive.
    async fn call(&self, lease: &Lease, policy: Option<&RetryPolicy>) -> Result<Answer, String> {
        if policy.is_none() {
            return Err(format!("function {} not found", lease.job.function));
        }
        self.keeping(lease, self.invoker.invoke(&lease.job)).await
    }

    /// Runs one leased call to its end: done, retried later, or dead-lettered.
    async fn process(&self, lease: Lease) {
        let started = Instant::now();
        let job = lease.job.clone();
        // Not found: the call fails (404). Cannot tell now (the gateway unreachable, its
        // credentials refused): the call is retried like any transport error.
        let (policy, lookup) = match self.invoker.policy(&job.function).await {
            Ok(policy) => (policy, None),
            Err(e) => (None, Some(e)),
        };
        if let Some(limit) = policy.as_ref().and_then(|p| p.max_inflight) {
            self.limits
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(job.function.clone(), limit);
        }
        let answer = match &lookup {
            Some(e) => Err(e.clone()),
            None => self.call(&lease, policy.as_ref()).await,
        };
        let policy_or_default = policy.clone().unwrap_or_default();
        let (status, error, retryable) = match &answer {
            Ok(a) => {
                let retryable =
                    policy_or_default.retries(a.status) || (a.internal && a.status >= 500);
                let error = if a.status >= 400 {
                    format!("the function answered {}", a.status)
                } else {
                    String::new()
                };
                (a.status, error, retryable)
            }
            Err(e) if policy.is_none() && lookup.is_none() => (404, e.clone(), false),
            Err(e) => (503, e.clone(), true),
        };
        let attempts_left = job.attempt < job.max_attempts;
        if retryable && attempts_left {
            let wait = policy_or_default.backoff(
                job.attempt,
                jitter(),
                answer.as_ref().ok().and_then(|a| a.retry_after),
            );
            tracing::info!(
                "async call {} to {}: attempt {} got {status}; retrying in {wait:?}",
                job.id,
                job.function,
                job.attempt
            );
            // Counted first: once scheduled, the next attempt may end before this task goes on.
            self.count(|s| s.retried(&job.function));
            if let Err(e) = self
                .queue
                .retry_later(lease, SystemTime::now() + wait, error)
                .await
            {
                tracing::warn!("async call {}: cannot schedule its retry: {e}", job.id);
            }
            return;
        }
        if let Some(url) = job.callback_url.as_deref() {
            let (headers, body) = match &answer {
                Ok(a) => (a.headers.clone(), a.body.clone()),
                Err(_) => (http::HeaderMap::new(), bytes::Bytes::new()),
            };
            let callback = Callback {
                url,
                call_id: &job.id,
                function: job.function.to_string(),
                status,
                duration: started.elapsed(),
                headers,
                body,
                retry: job.attempt.saturating_sub(1),
                retry_max: job.max_attempts.saturating_sub(1),
            };
            let delivered = self
                .keeping(&lease, self.callbacks.deliver(&callback))
                .await;
            if let Err(e) = &delivered {
                tracing::warn!("async call {} to {}: {e}", job.id, job.function);
            }
            self.count(|s| s.callback(&job.function, delivered.is_ok()));
        }
        let end = match (retryable, status < 400) {
            (true, _) => End::DeadLettered,
            (false, true) => End::Succeeded,
            (false, false) => End::Failed,
        };
        self.count(|s| s.ended(&job.function, end));
        let done = match end {
            End::DeadLettered => {
                tracing::warn!(
                    "async call {} to {} failed {} times; dead-lettered: {error}",
                    job.id,
                    job.function,
                    job.attempt
                );
                self.queue.dead_letter(lease, error).await
            }
            End::Succeeded => self.queue.ack(lease, Outcome::Succeeded { status }).await,
            End::Failed => {
                self.queue
                    .ack(lease, Outcome::Failed { status, error })
                    .await
            }
        };
        if let Err(e) = done {
            tracing::warn!("async call {}: cannot record its end: {e}", job.id);
        }
    }
}
