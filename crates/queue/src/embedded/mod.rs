//! The embedded queue: one SQLite file (WAL, `synchronous=FULL`) in a directory of the data
//! dir, written by a single thread that group-commits (see [`writer`]).
//!
//! Retention: finished jobs (succeeded or failed) keep their record, without the body, for
//! [`EmbeddedOptions::finished_retention`] and at most [`EmbeddedOptions::max_finished`] of
//! them; after that the same id would be accepted as a new job. Dead letters are kept until
//! replayed or deleted. Live jobs are never pruned.

mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use ironfaas_spec::names::FunctionRef;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use tokio::sync::{Notify, mpsc, oneshot};

use crate::codec;
use crate::error::QueueError;
use crate::job::{
    DeadLetterQuery, DepthCounts, Enqueued, Job, JobRecord, LeaseRequest, Outcome, millis, now_ms,
    unix_ms,
};
use crate::queue::{Lease, LeaseToken, Queue, validate};
use writer::{Cmd, Counters, LeaseCmd, Leased, NewJob, Reply, Verdict, Writer, WriterConfig};

/// The file the queue lives in, inside its directory.
pub const DB_FILE: &str = "queue.sqlite3";

/// Settings of the embedded queue.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// How long finished job records are kept for inspection (default 24 hours).
    pub finished_retention: Duration,
    /// At most this many finished job records are kept; the oldest go first (default 100,000).
    pub max_finished: u64,
    /// At most this many requests are committed in one transaction (default 4096).
    pub max_batch: usize,
    /// How often finished records past their retention are deleted (default 10 s; it happens
    /// after a commit, so an idle queue prunes at its next request).
    pub prune_interval: Duration,
    /// At most this many jobs waiting or running (queued, leased, waiting for a retry); an
    /// enqueue beyond is refused with [`QueueError::Full`]. 0 (the default) sets no limit.
    pub max_live: u64,
    /// At most this many dead letters are kept; beyond, the oldest are deleted at the next
    /// prune (each deletion is logged). 0 (the default) keeps them all.
    pub max_dead: u64,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        EmbeddedOptions {
            finished_retention: Duration::from_secs(24 * 3600),
            max_finished: 100_000,
            max_batch: 4096,
            prune_interval: Duration::from_secs(10),
            max_live: 0,
            max_dead: 0,
        }
    }
}

/// The embedded durable queue. Cheap to clone; the writer thread stops when the last clone
/// is dropped (after committing what it already took).
#[derive(Clone)]
pub struct EmbeddedQueue {
    inner: Arc<Inner>,
}

struct Inner {
    location: String,
    cmds: mpsc::UnboundedSender<Cmd>,
    reader: Arc<Mutex<Connection>>,
    counters: Counters,
    notify: Arc<Notify>,
    /// Dropped with the queue, which ends the checkpoint thread.
    _stop_checkpoints: std::sync::mpsc::Sender<()>,
}

/// Copies the WAL into the database file every 200 ms on its own connection, so the writer's
/// commits do not wait for it (the writer only checkpoints itself as a fallback, when the WAL
/// passes 64 MiB).
fn checkpoint_loop(conn: Connection, stop: std::sync::mpsc::Receiver<()>) {
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
        stop.recv_timeout(Duration::from_millis(200))
    {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "embedded queue: WAL checkpoint failed; will try again");
        }
    }
}

impl std::fmt::Debug for EmbeddedQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedQueue")
            .field("location", &self.inner.location)
            .finish()
    }
}

impl EmbeddedQueue {
    /// Opens (or creates) the queue in `dir` with default settings.
    pub fn open(dir: &Path) -> Result<EmbeddedQueue, QueueError> {
        EmbeddedQueue::open_with(dir, EmbeddedOptions::default())
    }

    /// Opens (or creates) the queue in `dir`.
    pub fn open_with(dir: &Path, options: EmbeddedOptions) -> Result<EmbeddedQueue, QueueError> {
        let location = dir.display().to_string();
        let storage = |operation, message: String| QueueError::Storage {
            location: location.clone(),
            operation,
            message,
        };
        std::fs::create_dir_all(dir).map_err(|e| {
            storage(
                "creating the directory",
                format!("{e}; check the data dir's permissions"),
            )
        })?;
        let path: PathBuf = dir.join(DB_FILE);
        let hint = |e: rusqlite::Error| {
            format!(
                "{e}; check that {} is a readable, writable SQLite file not used by another \
                 ironfaas",
                path.display()
            )
        };
        let conn = Connection::open(&path).map_err(|e| storage("opening", hint(e)))?;
        schema::prepare(&conn).map_err(|e| storage("preparing the schema", hint(e)))?;
        let reader = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .and_then(|c| schema::prepare_reader(&c).map(|()| c))
        .map_err(|e| storage("opening a reader", hint(e)))?;
        let notify = Arc::new(Notify::new());
        let config = WriterConfig {
            location: location.clone(),
            max_batch: options.max_batch.max(1),
            prune_interval: options.prune_interval,
            finished_retention: options.finished_retention,
            max_finished: options.max_finished,
            max_live: options.max_live,
            max_dead: options.max_dead,
        };
        let (writer, counters) = Writer::new(conn, config, notify.clone())
            .map_err(|e| storage("loading the queue's counts", hint(e)))?;
        let checkpointer = Connection::open(&path)
            .and_then(|c| schema::prepare_reader(&c).map(|()| c))
            .map_err(|e| storage("opening the checkpointer", hint(e)))?;
        let (stop_checkpoints, stopped) = std::sync::mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("queue-checkpoint".to_string())
            .spawn(move || checkpoint_loop(checkpointer, stopped))
            .map_err(|e| storage("starting the checkpoint thread", e.to_string()))?;
        let (cmds, rx) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("queue-writer".to_string())
            .spawn(move || writer.run(rx))
            .map_err(|e| storage("starting the writer thread", e.to_string()))?;
        Ok(EmbeddedQueue {
            inner: Arc::new(Inner {
                location,
                cmds,
                reader: Arc::new(Mutex::new(reader)),
                counters,
                notify,
                _stop_checkpoints: stop_checkpoints,
            }),
        })
    }

    fn closed(&self) -> QueueError {
        QueueError::Closed {
            location: self.inner.location.clone(),
        }
    }

    /// Sends a command to the writer and waits for its answer (after the commit).
    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Cmd) -> Result<T, QueueError> {
        let (tx, rx) = oneshot::channel();
        self.inner.cmds.send(make(tx)).map_err(|_| self.closed())?;
        rx.await.map_err(|_| self.closed())?
    }

    /// Runs a read on the reader connection off the async threads.
    async fn read<T: Send + 'static>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&Connection) -> rusqlite::Result<Result<T, QueueError>> + Send + 'static,
    ) -> Result<T, QueueError> {
        let reader = self.inner.reader.clone();
        let location = self.inner.location.clone();
        let storage = move |message: String| QueueError::Storage {
            location,
            operation,
            message,
        };
        let storage2 = storage.clone();
        tokio::task::spawn_blocking(move || {
            let conn = reader.lock().unwrap_or_else(|p| p.into_inner());
            f(&conn).map_err(|e| storage(e.to_string()))?
        })
        .await
        .map_err(|e| storage2(format!("the read task failed: {e}")))?
    }

    fn token(lease: &Lease) -> Result<i64, QueueError> {
        match &lease.token {
            LeaseToken::Embedded(id) => Ok(*id),
            LeaseToken::Nats(_) => Err(QueueError::ForeignLease {
                id: lease.job.id.clone(),
            }),
        }
    }

    /// Decodes a leased job; an unreadable one is dead-lettered with the reason.
    async fn decode_leased(&self, leased: Leased) -> Result<Option<Lease>, QueueError> {
        match codec::decode(&Bytes::from(leased.payload), leased.attempt) {
            Ok(job) => Ok(Some(Lease {
                job,
                token: LeaseToken::Embedded(leased.lease_id),
            })),
            Err(e) => {
                tracing::error!(job = %leased.id, error = %e, "embedded queue: unreadable job dead-lettered");
                self.call(|reply| Cmd::Finish {
                    id: leased.id,
                    function: leased.function,
                    lease_id: leased.lease_id,
                    verdict: Verdict::Dead {
                        error: format!("the stored job is unreadable: {e}"),
                    },
                    reply,
                })
                .await?;
                Ok(None)
            }
        }
    }

    async fn finish(&self, lease: Lease, verdict: Verdict) -> Result<(), QueueError> {
        let lease_id = Self::token(&lease)?;
        let Lease { job, .. } = lease;
        self.call(|reply| Cmd::Finish {
            id: job.id,
            function: job.function,
            lease_id,
            verdict,
            reply,
        })
        .await
    }
}

fn corrupt((id, message): (String, String)) -> QueueError {
    QueueError::Corrupt { id, message }
}

#[async_trait]
impl Queue for EmbeddedQueue {
    async fn enqueue(&self, job: Job) -> Result<Enqueued, QueueError> {
        validate(&job)?;
        let new = NewJob {
            payload: codec::encode(&job),
            function_key: job.function.to_string(),
            id: job.id,
            function: job.function,
            max_attempts: job.max_attempts,
            enqueued_at: job.enqueued_at,
        };
        self.call(|reply| Cmd::Enqueue(new, reply)).await
    }

    async fn lease(&self, req: &LeaseRequest) -> Result<Vec<Lease>, QueueError> {
        let deadline = tokio::time::Instant::now() + req.wait;
        loop {
            // Listen before asking, so an enqueue committed in between still wakes us.
            let notified = self.inner.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let cmd = LeaseCmd {
                max: req.max,
                lease_ms: millis(req.lease_for),
                room: req.room.clone(),
            };
            let batch = self.call(|reply| Cmd::Lease(cmd, reply)).await?;
            if !batch.leased.is_empty() || req.max == 0 {
                let mut leases = Vec::with_capacity(batch.leased.len());
                for leased in batch.leased {
                    if let Some(lease) = self.decode_leased(leased).await? {
                        leases.push(lease);
                    }
                }
                if !leases.is_empty() || batch.more || req.max == 0 {
                    return Ok(leases);
                }
                continue;
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            let wake_at = match batch.next_due {
                Some(due) => {
                    let in_ms = due.saturating_sub(now_ms());
                    deadline.min(now + Duration::from_millis(in_ms.max(1)))
                }
                None => deadline,
            };
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep_until(wake_at) => {}
            }
        }
    }

    async fn extend(&self, lease: &Lease, lease_for: Duration) -> Result<(), QueueError> {
        let lease_id = Self::token(lease)?;
        let until = now_ms().saturating_add(millis(lease_for));
        let id = lease.job.id.clone();
        self.call(|reply| Cmd::Extend {
            id,
            lease_id,
            until,
            reply,
        })
        .await
    }

    async fn ack(&self, lease: Lease, outcome: Outcome) -> Result<(), QueueError> {
        let mut header_only = lease.job.clone();
        header_only.body = Bytes::new();
        let header = codec::encode(&header_only);
        self.finish(lease, Verdict::Done(outcome, header)).await
    }

    async fn retry_later(
        &self,
        lease: Lease,
        at: SystemTime,
        error: String,
    ) -> Result<(), QueueError> {
        self.finish(
            lease,
            Verdict::Retry {
                at: unix_ms(at),
                error,
            },
        )
        .await
    }

    async fn dead_letter(&self, lease: Lease, error: String) -> Result<(), QueueError> {
        self.finish(lease, Verdict::Dead { error }).await
    }

    async fn get(&self, id: &str) -> Result<Option<JobRecord>, QueueError> {
        let id = id.to_string();
        self.read("reading a job", move |conn| {
            let sql = format!("SELECT {} FROM jobs WHERE id = ?1", schema::RECORD_COLUMNS);
            let found = conn
                .prepare_cached(&sql)?
                .query_row([&id], schema::record)
                .optional()?;
            Ok(found.transpose().map_err(corrupt))
        })
        .await
    }

    async fn dead_letters(&self, query: &DeadLetterQuery) -> Result<Vec<JobRecord>, QueueError> {
        let limit = schema::int(query.limit as u64);
        let function = query.function.as_ref().map(FunctionRef::to_string);
        let until = query.until.map(schema::int);
        self.read("listing dead letters", move |conn| {
            let sql = format!(
                "SELECT {} FROM jobs WHERE state = 5 AND (?2 IS NULL OR function = ?2) \
                 AND (?3 IS NULL OR updated_at <= ?3) ORDER BY updated_at, seq LIMIT ?1",
                schema::RECORD_COLUMNS
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![limit, function, until], schema::record)?;
            let mut out = Vec::new();
            for row in rows {
                match row? {
                    Ok(record) => out.push(record),
                    Err(e) => return Ok(Err(corrupt(e))),
                }
            }
            Ok(Ok(out))
        })
        .await
    }

    async fn replay(&self, id: &str) -> Result<(), QueueError> {
        let id = id.to_string();
        self.call(|reply| Cmd::Replay(id, reply)).await
    }

    async fn delete_dead_letter(&self, id: &str) -> Result<(), QueueError> {
        let id = id.to_string();
        self.call(|reply| Cmd::DeleteDead(id, reply)).await
    }

    async fn depth(&self) -> Result<Vec<(FunctionRef, DepthCounts)>, QueueError> {
        Ok(writer::snapshot(&self.inner.counters))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Outcome;

    #[test]
    fn the_file_is_wal_with_fsync_on_every_commit() {
        let dir = tempfile::TempDir::new().unwrap();
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        schema::prepare(&conn).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "synchronous=FULL");
    }

    #[tokio::test]
    async fn finished_records_are_pruned_and_dead_letters_kept() {
        let dir = tempfile::TempDir::new().unwrap();
        let options = EmbeddedOptions {
            finished_retention: Duration::from_millis(500),
            prune_interval: Duration::from_millis(10),
            ..EmbeddedOptions::default()
        };
        let q = EmbeddedQueue::open_with(dir.path(), options).unwrap();
        let f = FunctionRef::new("f", "");
        q.enqueue(Job::new("done", f.clone(), 1)).await.unwrap();
        q.enqueue(Job::new("dead", f.clone(), 1)).await.unwrap();
        let req = LeaseRequest::new(2, Duration::from_secs(60), Duration::from_secs(5));
        let mut leases = q.lease(&req).await.unwrap();
        assert_eq!(leases.len(), 2);
        leases.sort_by(|a, b| a.job.id.cmp(&b.job.id));
        let done = leases.pop().unwrap();
        let dead = leases.pop().unwrap();
        q.ack(done, Outcome::Succeeded { status: 200 })
            .await
            .unwrap();
        q.dead_letter(dead, "no".into()).await.unwrap();
        assert!(q.get("done").await.unwrap().is_some());
        tokio::time::sleep(Duration::from_millis(600)).await;
        // Pruning runs after the next commit, before the writer takes the one after.
        q.enqueue(Job::new("next", f.clone(), 1)).await.unwrap();
        q.enqueue(Job::new("after", f, 1)).await.unwrap();
        assert!(q.get("done").await.unwrap().is_none());
        assert!(q.get("dead").await.unwrap().is_some());
        assert_eq!(
            q.dead_letters(&DeadLetterQuery::first(10))
                .await
                .unwrap()
                .len(),
            1
        );
    }

    #[tokio::test]
    async fn a_finished_record_keeps_the_request_but_not_the_body() {
        let dir = tempfile::TempDir::new().unwrap();
        let q = EmbeddedQueue::open(dir.path()).unwrap();
        let mut job = Job::new("j", FunctionRef::new("f", ""), 1);
        job.body = Bytes::from(vec![7u8; 10_000]);
        job.path = "/p".into();
        q.enqueue(job).await.unwrap();
        let req = LeaseRequest::new(1, Duration::from_secs(60), Duration::from_secs(5));
        let lease = q.lease(&req).await.unwrap().pop().unwrap();
        q.ack(lease, Outcome::Succeeded { status: 200 })
            .await
            .unwrap();
        assert_eq!(q.get("j").await.unwrap().unwrap().path, "/p");
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        let size: i64 = conn
            .query_row("SELECT length(payload) FROM jobs WHERE id = 'j'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert!(size < 1000, "the body was kept: {size} bytes");
    }
}
