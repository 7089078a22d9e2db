//! The NATS JetStream queue, for several gateways sharing one queue.
//!
//! Layout (names are [`NatsOptions`] defaults):
//! - Stream `IRONFAAS_JOBS` (file storage, work-queue retention: a message is removed once
//!   acked), subjects `ironfaas.jobs.NAMESPACE.NAME.ready` (jobs to run) and
//!   `ironfaas.jobs.NAMESPACE.NAME.retry` (jobs waiting for a later attempt, with an
//!   `Ironfaas-Not-Before` header). Each message is the encoded job; `Ironfaas-Attempts` says
//!   how many attempts came before that copy, `Ironfaas-Record-Rev` the revision of the job's
//!   state record when the copy was published. `Nats-Msg-Id` is the job id and that revision,
//!   so JetStream drops a duplicate within its duplicate window.
//! - Two durable pull consumers per function, `NAMESPACE_NAME_ready` and
//!   `NAMESPACE_NAME_retry`, created on first use. Their `AckWait` is the lease period;
//!   `extend` sends an in-progress ack (which restarts the period), a lease that runs out is
//!   redelivered by JetStream and counted as a new attempt. Workers should use one lease
//!   period: a lease call with another one updates the consumer, and JetStream then applies it
//!   to every pending message of that function, and `extend` always restarts the consumer's
//!   period (its `lease_for` is not used).
//! - `retry_later` publishes a copy to the `.retry` subject and acks the original. A lease
//!   call moves retry copies whose time has come to `.ready` (at most once per poll interval
//!   per function), and NAKs the others with the delay left (NAK with delay works on
//!   nats-server 2.9).
//! - Stream `IRONFAAS_DEAD` (file storage, limits retention), subjects
//!   `ironfaas.dead.NAMESPACE.NAME`: dead letters with `Ironfaas-Last-Error`; removed when
//!   replayed or deleted, or by nats-server, oldest first, beyond [`NatsOptions::max_dead`].
//!   Replaying or deleting one whose state record has expired finds it by walking this
//!   stream; one that nats-server dropped is not found, and its record goes.
//! - Key-value bucket `IRONFAAS_JOB_STATE`: one JSON record per job id (what `get` shows),
//!   kept for [`NatsOptions::record_retention`] after its last change, with up to
//!   [`RECORD_HISTORY`] revisions (a deleted dead letter's are purged). It is also what keeps a
//!   job to one run:
//!   - `enqueue` creates the record (a record that exists means a duplicate id), then publishes
//!     the copy. A duplicate id whose job is still queued is published again under the same
//!     message id, which completes an enqueue cut short between the two steps.
//!   - A lease replaces the record (state running, naming the copy's stream sequence) only if
//!     it is still at the copy's `Ironfaas-Record-Rev`, and keeps the new revision; `ack`,
//!     `retry_later` and `dead_letter` replace it only if it is still at that revision (else
//!     the lease was lost). When the record has moved on, the copy is still leased if the job
//!     is queued (sent again, replayed) or running from this same copy (redelivered after a
//!     lease ran out); otherwise the copy is stale (a second copy, or a redelivery after the
//!     job ended and its ack was lost) and is dropped. So a job costs four writes (record,
//!     copy, lease, end) and a plain ack.
//!
//! Functions are found from the stream's subjects (refreshed at most every
//! [`NatsOptions::discovery_interval`]); an idle `lease` polls every
//! [`NatsOptions::poll_interval`].
//!
//! Durability: JetStream acknowledges a publish once the server has stored it; with a single
//! server that survives a crash of the server process. nats-server 2.9 writes its files
//! without fsync on each message, so surviving power loss needs a cluster (replicas 3).

mod layout;

/// Revisions the job-state bucket keeps per key. A job writes three (created, leased, ended),
/// so in the common case nats-server never removes an older revision on a write: with one
/// revision kept, each lease and each end also removed the one before, which cost nats-server
/// about 8 % more CPU per job (docs/BENCHMARKS.md). Older revisions go when the record expires
/// (its retention) or is deleted (a purge).
const RECORD_HISTORY: i64 = 8;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::context::Publish;
use async_nats::jetstream::kv;
use async_nats::jetstream::message::AckKind;
use async_nats::jetstream::stream::{
    self, DiscardPolicy, LastRawMessageErrorKind, RetentionPolicy, StorageType,
};
use async_nats::jetstream::{self, Context, Message};
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::join_all;
use ironfaas_spec::names::FunctionRef;
use tokio::sync::Mutex;

use crate::codec;
use crate::error::QueueError;
use crate::job::{
    DeadLetterQuery, DepthCounts, Enqueued, Job, JobRecord, JobState, LeaseRequest, Outcome,
    now_ms, unix_ms,
};
use crate::queue::{Lease, LeaseToken, Queue, validate};
use layout::{
    ATTEMPTS, DEAD_AT, Kind, LAST_ERROR, NOT_BEFORE, RECORD_REV, Stored, consumer_name,
    dead_filter, dead_subject, header_str, header_u64, one_line, parse_dead_subject,
    parse_job_subject, ready_subject, record_key, retry_subject,
};

/// Settings of the NATS JetStream queue.
#[derive(Debug, Clone)]
pub struct NatsOptions {
    /// The jobs stream (default `IRONFAAS_JOBS`).
    pub stream: String,
    /// The jobs stream's subject prefix (default `ironfaas.jobs`).
    pub subject_prefix: String,
    /// The dead-letter stream (default `IRONFAAS_DEAD`).
    pub dead_stream: String,
    /// The dead-letter stream's subject prefix (default `ironfaas.dead`).
    pub dead_prefix: String,
    /// The job-state bucket (default `IRONFAAS_JOB_STATE`).
    pub bucket: String,
    /// How long job-state records are kept after their last change (default 7 days).
    pub record_retention: Duration,
    /// JetStream's duplicate window for job ids (default 2 minutes).
    pub duplicate_window: Duration,
    /// How long one request to the server may take before it fails (default 5 s); an enqueue
    /// while the server is unreachable fails after about this long.
    pub request_timeout: Duration,
    /// How often an idle `lease` asks again (default 50 ms).
    pub poll_interval: Duration,
    /// How often the list of functions with jobs is refreshed (default 1 s).
    pub discovery_interval: Duration,
    /// At most this many messages in the jobs stream (a copy per job waiting or running); a
    /// publish beyond is refused and the enqueue fails with [`QueueError::Full`]. `Some(0)`:
    /// no limit. `None` (the default) leaves the stream's setting as it is, so a worker that
    /// does not enqueue does not change what the gateways set.
    pub max_jobs: Option<u64>,
    /// At most this many dead letters are kept; beyond, the oldest are dropped by nats-server.
    /// `Some(0)`: no limit; `None` (the default) leaves the dead-letter stream's setting.
    pub max_dead: Option<u64>,
}

impl Default for NatsOptions {
    fn default() -> Self {
        NatsOptions {
            stream: "IRONFAAS_JOBS".to_string(),
            subject_prefix: "ironfaas.jobs".to_string(),
            dead_stream: "IRONFAAS_DEAD".to_string(),
            dead_prefix: "ironfaas.dead".to_string(),
            bucket: "IRONFAAS_JOB_STATE".to_string(),
            record_retention: Duration::from_secs(7 * 24 * 3600),
            duplicate_window: Duration::from_secs(120),
            request_timeout: Duration::from_secs(5),
            poll_interval: Duration::from_millis(50),
            discovery_interval: Duration::from_secs(1),
            max_jobs: None,
            max_dead: None,
        }
    }
}

/// A lease in the NATS backend: the delivered message and the state record's revision.
#[derive(Debug)]
pub struct NatsLease {
    message: Message,
    key: String,
    revision: u64,
}

/// The NATS JetStream queue. Cheap to clone.
#[derive(Clone)]
pub struct NatsQueue {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for NatsQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsQueue")
            .field("url", &self.inner.url)
            .finish()
    }
}

struct Inner {
    url: String,
    options: NatsOptions,
    js: Context,
    jobs: stream::Stream,
    dead: stream::Stream,
    kv: kv::Store,
    functions: Mutex<Functions>,
    cursor: AtomicUsize,
}

/// The functions known to have jobs, and the consumers made for them.
#[derive(Default)]
struct Functions {
    known: Vec<FunctionRef>,
    refreshed: Option<Instant>,
    consumers: HashMap<(FunctionRef, Kind), (PullConsumer, Duration)>,
    /// When each function's retry copies were last looked at.
    retries_checked: HashMap<FunctionRef, Instant>,
}

/// Jobs per subject kind, from the stream's subject counts.
#[derive(Default, Clone, Copy)]
struct SubjectCounts {
    ready: u64,
    retry: u64,
}

impl NatsQueue {
    /// Connects to `url` (e.g. `nats://127.0.0.1:4222`) and creates the streams and the bucket
    /// if they are absent.
    pub async fn connect(url: &str, options: NatsOptions) -> Result<NatsQueue, QueueError> {
        let err = |operation, e: &dyn std::fmt::Display| QueueError::Nats {
            url: url.to_string(),
            operation,
            message: e.to_string(),
        };
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(options.request_timeout)
            .request_timeout(Some(options.request_timeout))
            .connect(url)
            .await
            .map_err(|e| err("connecting", &e))?;
        let mut js = jetstream::new(client);
        js.set_timeout(options.request_timeout);
        let jobs = js
            .get_or_create_stream(stream::Config {
                name: options.stream.clone(),
                subjects: vec![format!("{}.>", options.subject_prefix)],
                retention: RetentionPolicy::WorkQueue,
                storage: StorageType::File,
                duplicate_window: options.duplicate_window,
                max_messages: options.max_jobs.map_or(-1, max_messages),
                discard: DiscardPolicy::New,
                ..Default::default()
            })
            .await
            .map_err(|e| err("creating the jobs stream", &e))?;
        if let Some(max) = options.max_jobs {
            set_limit(&js, &jobs, max, DiscardPolicy::New)
                .await
                .map_err(|e| err("setting the jobs stream's limit", &e))?;
        }
        let dead = js
            .get_or_create_stream(stream::Config {
                name: options.dead_stream.clone(),
                subjects: vec![dead_filter(&options.dead_prefix, None)],
                retention: RetentionPolicy::Limits,
                storage: StorageType::File,
                max_messages: options.max_dead.map_or(-1, max_messages),
                discard: DiscardPolicy::Old,
                ..Default::default()
            })
            .await
            .map_err(|e| err("creating the dead-letter stream", &e))?;
        if let Some(max) = options.max_dead {
            set_limit(&js, &dead, max, DiscardPolicy::Old)
                .await
                .map_err(|e| err("setting the dead-letter stream's limit", &e))?;
        }
        let kv = match js.get_key_value(options.bucket.clone()).await {
            Ok(kv) => {
                // A bucket made by an earlier version kept one revision.
                reconfigure(&js, &kv.stream, |c| {
                    c.max_messages_per_subject = c.max_messages_per_subject.max(RECORD_HISTORY);
                })
                .await
                .map_err(|e| err("updating the job-state bucket", &e))?;
                kv
            }
            Err(_) => js
                .create_key_value(kv::Config {
                    bucket: options.bucket.clone(),
                    history: RECORD_HISTORY,
                    max_age: options.record_retention,
                    storage: StorageType::File,
                    ..Default::default()
                })
                .await
                .map_err(|e| err("creating the job-state bucket", &e))?,
        };
        Ok(NatsQueue {
            inner: Arc::new(Inner {
                url: url.to_string(),
                options,
                js,
                jobs,
                dead,
                kv,
                functions: Mutex::new(Functions::default()),
                cursor: AtomicUsize::new(0),
            }),
        })
    }

    fn err(&self, operation: &'static str, e: impl std::fmt::Display) -> QueueError {
        QueueError::Nats {
            url: self.inner.url.clone(),
            operation,
            message: e.to_string(),
        }
    }

    fn prefix(&self) -> &str {
        &self.inner.options.subject_prefix
    }

    /// Publishes and waits for JetStream's acknowledgement; [`QueueError::Full`] when the jobs
    /// stream is at its message limit.
    async fn publish(
        &self,
        operation: &'static str,
        subject: String,
        msg_id: &str,
        headers: HeaderMap,
        payload: Bytes,
    ) -> Result<jetstream::publish::PublishAck, QueueError> {
        let publish = Publish::build()
            .payload(payload)
            .headers(headers)
            .message_id(msg_id);
        let acked = self
            .inner
            .js
            .send_publish(subject, publish)
            .await
            .map_err(|e| self.err(operation, e))?
            .await;
        match acked {
            Ok(ack) => Ok(ack),
            Err(e) if e.to_string().contains("maximum messages exceeded") => {
                let limit = match self.inner.jobs.get_info().await {
                    Ok(info) => u64::try_from(info.config.max_messages).unwrap_or(0),
                    Err(_) => self.inner.options.max_jobs.unwrap_or(0),
                };
                Err(QueueError::Full { limit })
            }
            Err(e) => Err(self.err(operation, e)),
        }
    }

    /// Publishes a copy of job `id` for its first attempt, made when its record was at
    /// `revision`. The message id is the job id and that revision, so that publishing it again
    /// for the same record (a re-sent enqueue) stores one copy, while a job whose record was
    /// made anew (replayed, or deleted and enqueued again) gets a new one.
    async fn publish_first_attempt(
        &self,
        operation: &'static str,
        id: &str,
        function: &FunctionRef,
        revision: u64,
        payload: Bytes,
    ) -> Result<(), QueueError> {
        let mut headers = HeaderMap::new();
        headers.insert(ATTEMPTS, "0");
        headers.insert(RECORD_REV, revision.to_string().as_str());
        self.publish(
            operation,
            ready_subject(self.prefix(), function),
            &format!("{id}/{revision}"),
            headers,
            payload,
        )
        .await?;
        Ok(())
    }

    /// An enqueue of an id that has a record. A job still queued is published again under the
    /// same message id: JetStream keeps one copy within its duplicate window, and the copy
    /// replaces a lost one (an enqueue cut short between its record and its publish); beyond
    /// the window a second copy is stale once either has been leased.
    async fn enqueue_again(&self, job: &Job, key: &str) -> Result<Enqueued, QueueError> {
        if let Some((stored, revision)) = self.load(key).await?
            && stored.record.state == JobState::Queued
            && stored.dead_seq.is_none()
        {
            let payload = codec::encode(job).into();
            match self
                .publish_first_attempt("storing a job", &job.id, &job.function, revision, payload)
                .await
            {
                // The job was accepted before; a full stream keeps its copy from being sent
                // again now, not the job.
                Ok(()) | Err(QueueError::Full { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Enqueued::Duplicate)
    }

    async fn load(&self, key: &str) -> Result<Option<(Stored, u64)>, QueueError> {
        let entry = self
            .inner
            .kv
            .entry(key.to_string())
            .await
            .map_err(|e| self.err("reading a job record", e))?;
        match entry {
            Some(e) if e.operation == kv::Operation::Put => {
                let stored: Stored =
                    serde_json::from_slice(&e.value).map_err(|err| QueueError::Corrupt {
                        id: key.to_string(),
                        message: format!("its state record is not valid JSON: {err}"),
                    })?;
                Ok(Some((stored, e.revision)))
            }
            _ => Ok(None),
        }
    }

    async fn put(&self, key: &str, stored: &Stored) -> Result<u64, QueueError> {
        let value = serde_json::to_vec(stored).map_err(|e| self.err("encoding a record", e))?;
        self.inner
            .kv
            .put(key, value.into())
            .await
            .map_err(|e| self.err("writing a job record", e))
    }

    /// Writes the record only if it is still at `revision` (0: only if there is none);
    /// `None` if it has changed since.
    async fn replace(
        &self,
        key: &str,
        stored: &Stored,
        revision: u64,
    ) -> Result<Option<u64>, QueueError> {
        let value = serde_json::to_vec(stored).map_err(|e| self.err("encoding a record", e))?;
        match self.inner.kv.update(key, value.into(), revision).await {
            Ok(rev) => Ok(Some(rev)),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(None),
            Err(e) => Err(self.err("writing a job record", e)),
        }
    }

    /// Writes the record if the key has none (or only a deletion marker); `None` if it has one.
    async fn create(&self, key: &str, stored: &Stored) -> Result<Option<u64>, QueueError> {
        let value = serde_json::to_vec(stored).map_err(|e| self.err("encoding a record", e))?;
        match self.inner.kv.create(key, value.into()).await {
            Ok(rev) => Ok(Some(rev)),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(self.err("writing a job record", e)),
        }
    }

    /// Replaces the record only if it is still at the lease's revision; otherwise the lease is
    /// lost.
    async fn update(
        &self,
        lease: &NatsLease,
        id: &str,
        stored: &Stored,
    ) -> Result<u64, QueueError> {
        self.replace(&lease.key, stored, lease.revision)
            .await?
            .ok_or_else(|| QueueError::LeaseLost { id: id.to_string() })
    }

    fn nats_lease(lease: &Lease) -> Result<&NatsLease, QueueError> {
        match &lease.token {
            LeaseToken::Nats(l) => Ok(l),
            LeaseToken::Embedded(_) => Err(QueueError::ForeignLease {
                id: lease.job.id.clone(),
            }),
        }
    }

    /// Per function, how many messages each subject kind holds.
    async fn subject_counts(&self) -> Result<BTreeMap<FunctionRef, SubjectCounts>, QueueError> {
        let mut info = self
            .inner
            .jobs
            .info_builder()
            .subjects(format!("{}.>", self.prefix()))
            .fetch()
            .await
            .map_err(|e| self.err("listing the jobs stream's subjects", e))?;
        let mut counts: BTreeMap<FunctionRef, SubjectCounts> = BTreeMap::new();
        while let Some(item) = info.next().await {
            let (subject, n) =
                item.map_err(|e| self.err("listing the jobs stream's subjects", e))?;
            if let Some((f, kind)) = parse_job_subject(self.prefix(), &subject) {
                let c = counts.entry(f).or_default();
                match kind {
                    Kind::Ready => c.ready = c.ready.saturating_add(n as u64),
                    Kind::Retry => c.retry += n as u64,
                }
            }
        }
        Ok(counts)
    }

    /// The functions with jobs, refreshed when older than the discovery interval.
    async fn known_functions(&self, force: bool) -> Result<Vec<FunctionRef>, QueueError> {
        {
            let functions = self.inner.functions.lock().await;
            let fresh = functions
                .refreshed
                .is_some_and(|t| t.elapsed() < self.inner.options.discovery_interval);
            if fresh && !force {
                return Ok(functions.known.clone());
            }
        }
        let known: Vec<FunctionRef> = self.subject_counts().await?.into_keys().collect();
        let mut functions = self.inner.functions.lock().await;
        functions.known = known.clone();
        functions.refreshed = Some(Instant::now());
        Ok(known)
    }

    /// The durable consumer of `f`'s `kind` subject with `AckWait = lease_for`, made or
    /// updated if needed.
    async fn consumer(
        &self,
        f: &FunctionRef,
        kind: Kind,
        lease_for: Duration,
    ) -> Result<PullConsumer, QueueError> {
        let mut functions = self.inner.functions.lock().await;
        if let Some((c, ack_wait)) = functions.consumers.get(&(f.clone(), kind))
            && *ack_wait == lease_for
        {
            return Ok(c.clone());
        }
        let name = consumer_name(f, kind);
        let subject = match kind {
            Kind::Ready => ready_subject(self.prefix(), f),
            Kind::Retry => retry_subject(self.prefix(), f),
        };
        let config = pull::Config {
            durable_name: Some(name),
            filter_subject: subject,
            ack_policy: AckPolicy::Explicit,
            deliver_policy: DeliverPolicy::All,
            ack_wait: lease_for,
            max_deliver: -1,
            max_ack_pending: 1_000_000,
            ..Default::default()
        };
        // Creating a durable that exists with another AckWait updates it.
        let consumer = self
            .inner
            .jobs
            .create_consumer(config)
            .await
            .map_err(|e| self.err("creating a consumer", e))?;
        functions
            .consumers
            .insert((f.clone(), kind), (consumer.clone(), lease_for));
        Ok(consumer)
    }

    /// Up to `max` messages from `consumer` without waiting.
    async fn fetch(&self, consumer: &PullConsumer, max: usize) -> Result<Vec<Message>, QueueError> {
        let mut batch = consumer
            .fetch()
            .max_messages(max)
            .messages()
            .await
            .map_err(|e| self.err("fetching jobs", e))?;
        let mut out = Vec::new();
        while let Some(msg) = batch.next().await {
            out.push(msg.map_err(|e| self.err("fetching jobs", e))?);
        }
        Ok(out)
    }

    /// Moves `f`'s retry copies whose time has come to its ready subject; NAKs the others with
    /// the delay left. A retry copy is moved up to one poll interval after its time.
    async fn move_due_retries(
        &self,
        f: &FunctionRef,
        lease_for: Duration,
    ) -> Result<(), QueueError> {
        {
            // At most once per poll interval: a busy worker pool leases often, and an empty
            // fetch costs a round trip each time.
            let mut functions = self.inner.functions.lock().await;
            let now = Instant::now();
            let last = functions.retries_checked.get(f).copied();
            if last.is_some_and(|t| now.duration_since(t) < self.inner.options.poll_interval) {
                return Ok(());
            }
            functions.retries_checked.insert(f.clone(), now);
        }
        let consumer = self.consumer(f, Kind::Retry, lease_for).await?;
        let now = now_ms();
        for msg in self.fetch(&consumer, 256).await? {
            let not_before = header_u64(msg.headers.as_ref(), NOT_BEFORE);
            if not_before > now {
                msg.ack_with(AckKind::Nak(Some(Duration::from_millis(not_before - now))))
                    .await
                    .map_err(|e| self.err("postponing a retry", e))?;
                continue;
            }
            let attempts = header_u64(msg.headers.as_ref(), ATTEMPTS);
            let id = match codec::decode(&msg.payload, 0) {
                Ok(job) => job.id,
                Err(e) => {
                    tracing::error!(subject = %msg.subject, error = %e, "NATS queue: unreadable retry copy dropped");
                    msg.ack_with(AckKind::Term)
                        .await
                        .map_err(|e| self.err("dropping a job", e))?;
                    continue;
                }
            };
            let mut headers = HeaderMap::new();
            headers.insert(ATTEMPTS, attempts.to_string().as_str());
            headers.insert(
                LAST_ERROR,
                header_str(msg.headers.as_ref(), LAST_ERROR).as_str(),
            );
            let revision = header_str(msg.headers.as_ref(), RECORD_REV);
            if !revision.is_empty() {
                headers.insert(RECORD_REV, revision.as_str());
            }
            self.publish(
                "moving a retry to the ready jobs",
                ready_subject(self.prefix(), f),
                &format!("{id}/moved/{}", stream_seq(&msg)),
                headers,
                msg.payload.clone(),
            )
            .await?;
            msg.double_ack()
                .await
                .map_err(|e| self.err("acknowledging a moved retry", e))?;
        }
        Ok(())
    }

    /// Turns a delivered ready message into a lease, or dead-letters it when it is due for an
    /// attempt past its limit.
    async fn take(&self, msg: Message) -> Result<Option<Lease>, QueueError> {
        let delivered = msg
            .info()
            .map(|i| u64::try_from(i.delivered).unwrap_or(1))
            .unwrap_or(1);
        let before = header_u64(msg.headers.as_ref(), ATTEMPTS);
        let attempt = u32::try_from(before.saturating_add(delivered)).unwrap_or(u32::MAX);
        let job = match codec::decode(&msg.payload, attempt) {
            Ok(job) => job,
            Err(e) => {
                tracing::error!(subject = %msg.subject, error = %e, "NATS queue: unreadable job dropped");
                msg.ack_with(AckKind::Term)
                    .await
                    .map_err(|e| self.err("dropping a job", e))?;
                return Ok(None);
            }
        };
        let key = record_key(&job.id);
        let now = now_ms();
        if attempt > job.max_attempts {
            let mut error = header_str(msg.headers.as_ref(), LAST_ERROR);
            if delivered > 1 || error.is_empty() {
                error = format!(
                    "attempt {} of {} ran out of its lease without an answer (the worker died or hung)",
                    attempt - 1,
                    job.max_attempts
                );
            }
            let mut record = record_of(&job, now);
            let (stored, revision) = match self.load(&key).await? {
                Some((s, r)) => (s, r),
                None => {
                    let s = Stored::of(record);
                    let r = self.put(&key, &s).await?;
                    (s, r)
                }
            };
            record = stored.record;
            let lease = NatsLease {
                message: msg,
                key,
                revision,
            };
            self.store_dead(&job, lease, record, attempt - 1, error)
                .await?;
            return Ok(None);
        }
        let seq = stream_seq(&msg);
        let mut record = record_of(&job, now);
        record.state = JobState::Running {
            attempt,
            since: now,
        };
        let running = Stored {
            lease_seq: Some(seq),
            ..Stored::of(record)
        };
        // No revision: published by an ironfaas before record revisions.
        let published_at = header_str(msg.headers.as_ref(), RECORD_REV).parse().ok();
        let written = self
            .replace(&key, &running, published_at.unwrap_or(0))
            .await?;
        let revision = match written {
            Some(revision) => revision,
            None => match self
                .take_over(&key, &running, seq, published_at.is_none())
                .await?
            {
                Some(revision) => revision,
                None => {
                    // Another copy of the job has it, or it has ended: this copy is stale.
                    tracing::debug!(id = %job.id, seq, "NATS queue: stale copy of a job dropped");
                    msg.ack_with(AckKind::Term)
                        .await
                        .map_err(|e| self.err("dropping a stale job copy", e))?;
                    return Ok(None);
                }
            },
        };
        Ok(Some(Lease {
            job,
            token: LeaseToken::Nats(Box::new(NatsLease {
                message: msg,
                key,
                revision,
            })),
        }))
    }

    /// The record changed after the copy at `seq` was published: the lease is still this
    /// copy's when the job is queued (a re-sent enqueue, a replay) or was running from this
    /// same copy (a redelivery after a lease ran out). `None` when the copy is stale. A copy
    /// of the `older_layout` (no `Ironfaas-Record-Rev`: published by an ironfaas before it,
    /// whose copies were never stale) is leased unless the job has ended.
    async fn take_over(
        &self,
        key: &str,
        running: &Stored,
        seq: u64,
        older_layout: bool,
    ) -> Result<Option<u64>, QueueError> {
        for _ in 0..3 {
            let written = match self.load(key).await? {
                None => self.create(key, running).await?,
                Some((stored, revision)) => {
                    let ours = match stored.record.state {
                        JobState::Queued => true,
                        JobState::Running { .. } => {
                            older_layout || stored.lease_seq.is_none_or(|s| s == seq)
                        }
                        JobState::Retrying { .. } => older_layout,
                        _ => false,
                    };
                    if !ours {
                        return Ok(None);
                    }
                    self.replace(key, running, revision).await?
                }
            };
            if written.is_some() {
                return Ok(written);
            }
        }
        // Written by someone else between each look: whoever wrote it has the job.
        Ok(None)
    }

    /// Records the job as dead (if the lease still holds), stores the dead letter, acks.
    async fn store_dead(
        &self,
        job: &Job,
        lease: NatsLease,
        mut record: JobRecord,
        attempts: u32,
        error: String,
    ) -> Result<(), QueueError> {
        let now = now_ms();
        record.state = JobState::DeadLettered {
            attempts,
            last_error: error.clone(),
            at: now,
        };
        record.updated_at = now;
        let mut stored = Stored::of(record);
        self.update(&lease, &job.id, &stored).await?;
        let mut headers = HeaderMap::new();
        headers.insert(ATTEMPTS, attempts.to_string().as_str());
        headers.insert(LAST_ERROR, one_line(&error).as_str());
        headers.insert(DEAD_AT, now.to_string().as_str());
        let mut body_job = job.clone();
        body_job.attempt = 0;
        let ack = self
            .publish(
                "storing a dead letter",
                dead_subject(&self.inner.options.dead_prefix, &job.function),
                &format!("{}/dead/{}", job.id, stream_seq(&lease.message)),
                headers,
                codec::encode(&body_job).into(),
            )
            .await?;
        stored.dead_seq = Some(ack.sequence);
        self.put(&lease.key, &stored).await?;
        lease
            .message
            .double_ack()
            .await
            .map_err(|e| self.err("acknowledging a dead-lettered job", e))
    }

    /// Leases what is due now, in turn over the functions with room.
    async fn lease_once(&self, req: &LeaseRequest) -> Result<Vec<Lease>, QueueError> {
        let mut functions: Vec<(FunctionRef, usize)> = self
            .known_functions(false)
            .await?
            .into_iter()
            .map(|f| {
                let room = req.room.for_function(&f);
                (f, room)
            })
            .filter(|(_, room)| *room > 0)
            .collect();
        let mut leased = Vec::new();
        if functions.is_empty() || req.max == 0 {
            return Ok(leased);
        }
        let n = functions.len();
        let cursor = self.inner.cursor.fetch_add(1, Ordering::Relaxed);
        functions.rotate_left(cursor % n);
        let share = req.max.div_ceil(n).max(1);
        let mut exhausted = vec![false; n];
        for round in 0..2 {
            for (i, (f, room)) in functions.iter_mut().enumerate() {
                let remaining = req.max - leased.len();
                if remaining == 0 {
                    return Ok(leased);
                }
                if exhausted[i] || *room == 0 {
                    continue;
                }
                if round == 0 {
                    self.move_due_retries(f, req.lease_for).await?;
                }
                let want = if round == 0 { share } else { remaining }
                    .min(*room)
                    .min(remaining);
                let consumer = self.consumer(f, Kind::Ready, req.lease_for).await?;
                let msgs = self.fetch(&consumer, want).await?;
                if msgs.len() < want {
                    exhausted[i] = true;
                }
                // Each take writes the job's record: one round trip per job, made at once.
                let taken = join_all(msgs.into_iter().map(|msg| self.take(msg))).await;
                for result in taken {
                    match result {
                        Ok(Some(lease)) => {
                            *room = room.saturating_sub(1);
                            leased.push(lease);
                        }
                        Ok(None) => {}
                        // Leases already taken are handed out; the failed message comes back
                        // when its lease runs out.
                        Err(e) if !leased.is_empty() => {
                            tracing::warn!("NATS queue: cannot lease a job: {e}");
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Ok(leased)
    }
}

/// The message's sequence in its stream: with the job id, the `Nats-Msg-Id` of the copies made
/// from it (a retry, a move, a dead letter), so that doing it twice after a crash stores one
/// copy, while a job replayed and failing again still gets a new one.
fn stream_seq(msg: &Message) -> u64 {
    msg.info().map(|i| i.stream_sequence).unwrap_or(0)
}

/// A stream's message limit for at most `max` messages (0: no limit).
fn max_messages(max: u64) -> i64 {
    match max {
        0 => -1,
        n => i64::try_from(n).unwrap_or(i64::MAX),
    }
}

/// Applies `change` to the configuration `stream` was found with, and updates the stream if
/// that changed anything (a stream made by an earlier version, or with other limits).
async fn reconfigure(
    js: &Context,
    stream: &stream::Stream,
    change: impl FnOnce(&mut stream::Config),
) -> Result<(), async_nats::Error> {
    let found = &stream.cached_info().config;
    let mut config = found.clone();
    change(&mut config);
    if config != *found {
        js.update_stream(config).await?;
    }
    Ok(())
}

/// Gives `stream` the limit of `max` messages (0: none) and what happens at it.
async fn set_limit(
    js: &Context,
    stream: &stream::Stream,
    max: u64,
    discard: DiscardPolicy,
) -> Result<(), async_nats::Error> {
    reconfigure(js, stream, |c| {
        c.max_messages = max_messages(max);
        c.discard = discard;
    })
    .await
}

/// A fresh record of `job` in state queued.
fn record_of(job: &Job, now: u64) -> JobRecord {
    JobRecord {
        id: job.id.clone(),
        function: job.function.clone(),
        method: job.method.clone(),
        path: job.path.clone(),
        callback_url: job.callback_url.clone(),
        state: JobState::Queued,
        max_attempts: job.max_attempts,
        enqueued_at: job.enqueued_at,
        updated_at: now,
    }
}

#[async_trait]
impl Queue for NatsQueue {
    async fn enqueue(&self, job: Job) -> Result<Enqueued, QueueError> {
        validate(&job)?;
        let key = record_key(&job.id);
        // The record first: creating it is the idempotency check, and its revision goes with
        // the copy so that the lease taken from it needs no read.
        let Some(revision) = self
            .create(&key, &Stored::of(record_of(&job, now_ms())))
            .await?
        else {
            return self.enqueue_again(&job, &key).await;
        };
        let payload = codec::encode(&job).into();
        let published = self
            .publish_first_attempt("storing a job", &job.id, &job.function, revision, payload)
            .await;
        if let Err(e @ QueueError::Full { .. }) = published {
            // Refused, not stored: the record goes too, so the id can be sent again.
            let _ = self.inner.kv.purge(&key).await;
            return Err(e);
        }
        published?;
        let mut functions = self.inner.functions.lock().await;
        if !functions.known.contains(&job.function) {
            functions.known.push(job.function.clone());
        }
        Ok(Enqueued::New)
    }

    async fn lease(&self, req: &LeaseRequest) -> Result<Vec<Lease>, QueueError> {
        let deadline = Instant::now() + req.wait;
        loop {
            let leased = self.lease_once(req).await?;
            if !leased.is_empty() || req.max == 0 {
                return Ok(leased);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(leased);
            }
            tokio::time::sleep(self.inner.options.poll_interval.min(deadline - now)).await;
        }
    }

    /// Sends an in-progress ack, which restarts the lease for the consumer's `AckWait` (the
    /// `lease_for` of the lease call); `lease_for` here is not used.
    async fn extend(&self, lease: &Lease, _lease_for: Duration) -> Result<(), QueueError> {
        let nats = Self::nats_lease(lease)?;
        nats.message
            .ack_with(AckKind::Progress)
            .await
            .map_err(|e| self.err("extending a lease", e))?;
        match self.load(&nats.key).await? {
            Some((_, revision)) if revision == nats.revision => Ok(()),
            _ => Err(QueueError::LeaseLost {
                id: lease.job.id.clone(),
            }),
        }
    }

    async fn ack(&self, lease: Lease, outcome: Outcome) -> Result<(), QueueError> {
        let nats = Self::nats_lease(&lease)?;
        let now = now_ms();
        let mut record = record_of(&lease.job, now);
        let attempts = lease.job.attempt;
        record.state = match outcome {
            Outcome::Succeeded { status } => JobState::Succeeded {
                status,
                attempts,
                finished_at: now,
            },
            Outcome::Failed { status, error } => JobState::Failed {
                status,
                error,
                attempts,
                finished_at: now,
            },
        };
        self.update(nats, &lease.job.id, &Stored::of(record))
            .await?;
        // A plain ack: the record already says the job ended, so a copy delivered again
        // because this ack was lost is dropped as stale.
        nats.message
            .ack()
            .await
            .map_err(|e| self.err("acknowledging a job", e))
    }

    async fn retry_later(
        &self,
        lease: Lease,
        at: SystemTime,
        error: String,
    ) -> Result<(), QueueError> {
        let nats = Self::nats_lease(&lease)?;
        let now = now_ms();
        let next_at = unix_ms(at);
        let mut record = record_of(&lease.job, now);
        record.state = JobState::Retrying {
            attempt: lease.job.attempt,
            next_at,
            last_error: error.clone(),
        };
        let revision = self
            .update(nats, &lease.job.id, &Stored::of(record))
            .await?;
        let mut headers = HeaderMap::new();
        headers.insert(ATTEMPTS, lease.job.attempt.to_string().as_str());
        headers.insert(NOT_BEFORE, next_at.to_string().as_str());
        headers.insert(LAST_ERROR, one_line(&error).as_str());
        headers.insert(RECORD_REV, revision.to_string().as_str());
        let mut job = lease.job.clone();
        job.attempt = 0;
        self.publish(
            "storing a retry",
            retry_subject(self.prefix(), &job.function),
            &format!("{}/retry/{revision}", job.id),
            headers,
            codec::encode(&job).into(),
        )
        .await?;
        // The record says retrying: a copy delivered again because this ack was lost is stale.
        nats.message
            .ack()
            .await
            .map_err(|e| self.err("acknowledging a retried job", e))
    }

    async fn dead_letter(&self, lease: Lease, error: String) -> Result<(), QueueError> {
        let Lease { job, token } = lease;
        let nats = match token {
            LeaseToken::Nats(l) => *l,
            LeaseToken::Embedded(_) => return Err(QueueError::ForeignLease { id: job.id }),
        };
        let record = record_of(&job, now_ms());
        let attempts = job.attempt;
        self.store_dead(&job, nats, record, attempts, error).await
    }

    async fn get(&self, id: &str) -> Result<Option<JobRecord>, QueueError> {
        Ok(self.load(&record_key(id)).await?.map(|(s, _)| s.record))
    }

    async fn dead_letters(&self, query: &DeadLetterQuery) -> Result<Vec<JobRecord>, QueueError> {
        let filter = dead_filter(&self.inner.options.dead_prefix, query.function.as_ref());
        let mut out = Vec::new();
        let mut seq = 1;
        while out.len() < query.limit {
            let Some((at_seq, record)) = self.next_dead(&filter, seq).await? else {
                break;
            };
            seq = at_seq + 1;
            let record = record.map_err(|message| QueueError::Corrupt {
                id: format!("dead letter #{at_seq}"),
                message,
            })?;
            if let JobState::DeadLettered { at, .. } = record.state
                && query.matches(&record.function, at)
            {
                out.push(record);
            }
        }
        Ok(out)
    }

    async fn replay(&self, id: &str) -> Result<(), QueueError> {
        let key = record_key(id);
        let (stored, seq) = self.dead_record(id, &key).await?;
        let msg = match self.inner.dead.get_raw_message(seq).await {
            Ok(msg) => msg,
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => {
                return Err(self.dropped_dead(id, &key).await);
            }
            Err(e) => return Err(self.err("reading a dead letter", e)),
        };
        let function = stored.record.function.clone();
        let mut record = stored.record;
        record.state = JobState::Queued;
        record.updated_at = now_ms();
        // Queued, still naming its dead letter until that is removed: a replay cut short can
        // be done again.
        let queued = Stored {
            dead_seq: Some(seq),
            ..Stored::of(record)
        };
        let revision = self.put(&key, &queued).await?;
        self.publish_first_attempt(
            "replaying a dead letter",
            id,
            &function,
            revision,
            msg.payload,
        )
        .await?;
        self.inner
            .dead
            .delete_message(seq)
            .await
            .map_err(|e| self.err("removing a replayed dead letter", e))?;
        self.known_functions(true).await?;
        Ok(())
    }

    async fn delete_dead_letter(&self, id: &str) -> Result<(), QueueError> {
        let key = record_key(id);
        let (_, seq) = self.dead_record(id, &key).await?;
        match self.inner.dead.delete_message(seq).await {
            Ok(_) => {}
            Err(e) if e.to_string().contains("no message found") => {
                return Err(self.dropped_dead(id, &key).await);
            }
            Err(e) => return Err(self.err("deleting a dead letter", e)),
        }
        self.inner
            .kv
            .purge(&key)
            .await
            .map_err(|e| self.err("deleting a job record", e))
    }

    async fn depth(&self) -> Result<Vec<(FunctionRef, DepthCounts)>, QueueError> {
        let mut depth: BTreeMap<FunctionRef, DepthCounts> = BTreeMap::new();
        for (f, c) in self.subject_counts().await? {
            let running = if c.ready > 0 {
                let name = consumer_name(&f, Kind::Ready);
                match self.inner.jobs.consumer_info(&name).await {
                    Ok(info) => (info.num_ack_pending as u64).min(c.ready),
                    Err(_) => 0,
                }
            } else {
                0
            };
            depth.insert(
                f,
                DepthCounts {
                    queued: c.ready - running,
                    running,
                    retrying: c.retry,
                    dead: 0,
                },
            );
        }
        let mut info = self
            .inner
            .dead
            .info_builder()
            .subjects(dead_filter(&self.inner.options.dead_prefix, None))
            .fetch()
            .await
            .map_err(|e| self.err("counting dead letters", e))?;
        while let Some(item) = info.next().await {
            let (subject, n) = item.map_err(|e| self.err("counting dead letters", e))?;
            if let Some(f) = parse_dead_subject(&self.inner.options.dead_prefix, &subject) {
                depth.entry(f).or_default().dead += n as u64;
            }
        }
        Ok(depth.into_iter().collect())
    }
}

impl NatsQueue {
    /// The first dead letter on `filter` at or after stream sequence `seq`: its sequence and
    /// its record (or why its message cannot be read); `None` past the last.
    async fn next_dead(
        &self,
        filter: &str,
        seq: u64,
    ) -> Result<Option<(u64, Result<JobRecord, String>)>, QueueError> {
        let msg = match self
            .inner
            .dead
            .get_first_raw_message_by_subject(filter, seq)
            .await
        {
            Ok(m) => m,
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => return Ok(None),
            Err(e) => return Err(self.err("reading dead letters", e)),
        };
        let headers = Some(&msg.headers);
        let attempts = u32::try_from(header_u64(headers, ATTEMPTS)).unwrap_or(u32::MAX);
        let record = codec::decode(&msg.payload, attempts).map(|job| {
            let at = header_u64(headers, DEAD_AT);
            let mut record = record_of(&job, at);
            record.state = JobState::DeadLettered {
                attempts,
                last_error: header_str(headers, LAST_ERROR),
                at,
            };
            record
        });
        Ok(Some((msg.sequence, record)))
    }

    /// The dead letter of `id` found by walking the dead-letter stream, for one whose state
    /// record has expired (records are kept `record_retention`, dead letters until replayed or
    /// deleted).
    async fn find_dead(&self, id: &str) -> Result<Option<(Stored, u64)>, QueueError> {
        let filter = dead_filter(&self.inner.options.dead_prefix, None);
        let mut seq = 1;
        while let Some((at_seq, record)) = self.next_dead(&filter, seq).await? {
            seq = at_seq + 1;
            if let Ok(record) = record
                && record.id == id
            {
                let stored = Stored {
                    dead_seq: Some(at_seq),
                    ..Stored::of(record)
                };
                return Ok(Some((stored, at_seq)));
            }
        }
        Ok(None)
    }

    /// What replaying or deleting dead letter `id` answers when nats-server has dropped its
    /// message (one of the oldest beyond the limit): it is gone, and so goes its record.
    async fn dropped_dead(&self, id: &str, key: &str) -> QueueError {
        let _ = self.inner.kv.purge(key).await;
        QueueError::NotFound { id: id.to_string() }
    }

    /// The record of a dead letter and its sequence in the dead-letter stream.
    async fn dead_record(&self, id: &str, key: &str) -> Result<(Stored, u64), QueueError> {
        let Some((stored, _)) = self.load(key).await? else {
            return self
                .find_dead(id)
                .await?
                .ok_or_else(|| QueueError::NotFound { id: id.to_string() });
        };
        let replaying = stored.record.state == JobState::Queued && stored.dead_seq.is_some();
        if !replaying && !matches!(stored.record.state, JobState::DeadLettered { .. }) {
            return Err(QueueError::NotDeadLettered {
                id: id.to_string(),
                state: stored.record.state.name(),
            });
        }
        match stored.dead_seq {
            Some(seq) => Ok((stored.clone(), seq)),
            None => Err(QueueError::Corrupt {
                id: id.to_string(),
                message: "its dead letter is still being stored (or that failed and the job \
                          will be dead-lettered again); try again in a moment"
                    .to_string(),
            }),
        }
    }
}
