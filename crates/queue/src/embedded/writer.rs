//! The single writer thread: group commit. It takes every command that arrived while the
//! previous transaction was being committed, runs them all in one transaction, commits once
//! (one fsync, `synchronous=FULL`), and only then answers each caller.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ironfaas_spec::names::FunctionRef;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use tokio::sync::{Notify, mpsc, oneshot};

use super::schema::{self, DEAD, FAILED, QUEUED, RETRYING, RUNNING, SUCCEEDED, int};
use crate::error::QueueError;
use crate::job::{DepthCounts, Enqueued, Outcome, Room, now_ms};

/// Where a caller's answer goes.
pub(super) type Reply<T> = oneshot::Sender<Result<T, QueueError>>;

/// The live counts per function, shared with readers.
pub(super) type Counters = Arc<Mutex<BTreeMap<FunctionRef, DepthCounts>>>;

/// What the writer thread is asked to do.
pub(super) enum Cmd {
    /// Store a new job.
    Enqueue(NewJob, Reply<Enqueued>),
    /// Lease due jobs.
    Lease(LeaseCmd, Reply<LeaseBatch>),
    /// Push a lease's end out.
    Extend {
        id: String,
        lease_id: i64,
        until: u64,
        reply: Reply<()>,
    },
    /// End a lease with a verdict.
    Finish {
        id: String,
        function: FunctionRef,
        lease_id: i64,
        verdict: Verdict,
        reply: Reply<()>,
    },
    /// A dead letter back to queued.
    Replay(String, Reply<()>),
    /// Delete a dead letter.
    DeleteDead(String, Reply<()>),
}

/// A job to store, encoded by the caller (so the writer thread only writes).
pub(super) struct NewJob {
    pub id: String,
    pub function: FunctionRef,
    pub function_key: String,
    pub max_attempts: u32,
    pub enqueued_at: u64,
    pub payload: Vec<u8>,
}

/// A job leased by the writer; the caller decodes the payload.
pub(super) struct Leased {
    pub id: String,
    pub function: FunctionRef,
    pub attempt: u32,
    pub lease_id: i64,
    pub payload: Vec<u8>,
}

/// A lease request as the writer runs it.
pub(super) struct LeaseCmd {
    pub max: usize,
    pub lease_ms: u64,
    pub room: Room,
}

/// What a lease command returns.
pub(super) struct LeaseBatch {
    /// The leased jobs.
    pub leased: Vec<Leased>,
    /// When nothing was leased: the earliest time a job of a function with room is due.
    pub next_due: Option<u64>,
    /// Whether more jobs were due than were leased.
    pub more: bool,
}

/// How a lease ends.
pub(super) enum Verdict {
    /// Final outcome; `header` is the job re-encoded without its body.
    Done(Outcome, Vec<u8>),
    /// Leasable again at `at` (unix ms).
    Retry { at: u64, error: String },
    /// To the dead letters.
    Dead { error: String },
}

/// Settings the writer needs.
pub(super) struct WriterConfig {
    pub location: String,
    pub max_batch: usize,
    pub prune_interval: Duration,
    pub finished_retention: Duration,
    pub max_finished: u64,
    /// Jobs waiting or running at most (0: no limit).
    pub max_live: u64,
    /// Dead letters kept at most, the oldest dropped first (0: no limit).
    pub max_dead: u64,
}

/// An answer held back until the transaction that produced it is committed.
enum Held {
    Enqueue(Reply<Enqueued>, Result<Enqueued, QueueError>),
    Lease(Reply<LeaseBatch>, Result<LeaseBatch, QueueError>),
    Unit(Reply<()>, Result<(), QueueError>),
}

impl Held {
    /// Sends the answer, or `failure` in place of a success the commit did not make durable.
    fn send(self, failure: Option<&dyn Fn() -> QueueError>) {
        fn pick<T>(
            r: Result<T, QueueError>,
            f: Option<&dyn Fn() -> QueueError>,
        ) -> Result<T, QueueError> {
            match (r, f) {
                (Ok(_), Some(f)) => Err(f()),
                (r, _) => r,
            }
        }
        // A caller that went away no longer needs its answer.
        match self {
            Held::Enqueue(tx, r) => drop(tx.send(pick(r, failure))),
            Held::Lease(tx, r) => drop(tx.send(pick(r, failure))),
            Held::Unit(tx, r) => drop(tx.send(pick(r, failure))),
        }
    }
}

/// The writer's state between batches.
pub(super) struct Writer {
    conn: Connection,
    config: WriterConfig,
    counters: Counters,
    /// Finished records kept (succeeded + failed), for the retention cap.
    finished: u64,
    /// Jobs waiting or running (queued, running, retrying), for `max_live`.
    live: u64,
    next_lease_id: i64,
    /// Where the next lease starts its round over functions.
    cursor: usize,
    notify: Arc<Notify>,
    last_prune: Instant,
}

/// The batch's working copy of what the commit will make true.
struct Work {
    counts: BTreeMap<FunctionRef, DepthCounts>,
    finished: u64,
    /// Jobs waiting or running (queued, running, retrying).
    live: u64,
    wake: bool,
}

fn is_live(state: i64) -> bool {
    matches!(state, QUEUED | RUNNING | RETRYING)
}

fn bump(counts: &mut BTreeMap<FunctionRef, DepthCounts>, f: &FunctionRef, state: i64, up: bool) {
    if !matches!(state, QUEUED | RUNNING | RETRYING | DEAD) {
        return;
    }
    let c = counts.entry(f.clone()).or_default();
    let slot = match state {
        QUEUED => &mut c.queued,
        RUNNING => &mut c.running,
        RETRYING => &mut c.retrying,
        _ => &mut c.dead,
    };
    *slot = if up {
        slot.saturating_add(1)
    } else {
        slot.saturating_sub(1)
    };
    if *c == DepthCounts::default() {
        counts.remove(f);
    }
}

impl Work {
    fn transition(&mut self, f: &FunctionRef, from: Option<i64>, to: Option<i64>) {
        if let Some(s) = from {
            bump(&mut self.counts, f, s, false);
            if is_live(s) {
                self.live = self.live.saturating_sub(1);
            }
            if s == SUCCEEDED || s == FAILED {
                self.finished = self.finished.saturating_sub(1);
            }
        }
        if let Some(s) = to {
            bump(&mut self.counts, f, s, true);
            if is_live(s) {
                self.live += 1;
            }
            if s == SUCCEEDED || s == FAILED {
                self.finished += 1;
            }
        }
    }
}

impl Writer {
    /// Loads the counters from the file and returns the writer with them.
    pub(super) fn new(
        conn: Connection,
        config: WriterConfig,
        notify: Arc<Notify>,
    ) -> rusqlite::Result<(Writer, Counters)> {
        let mut counts = BTreeMap::new();
        {
            let mut stmt = conn.prepare(
                "SELECT function, state, COUNT(*) FROM jobs WHERE state IN (0, 1, 2, 5) \
                 GROUP BY function, state",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?;
            for row in rows {
                let (function, state, n) = row?;
                let c: &mut DepthCounts = counts.entry(FunctionRef::parse(&function)).or_default();
                let n = schema::uint(n);
                match state {
                    QUEUED => c.queued = n,
                    RUNNING => c.running = n,
                    RETRYING => c.retrying = n,
                    _ => c.dead = n,
                }
            }
        }
        let finished: i64 =
            conn.query_row("SELECT COUNT(*) FROM jobs WHERE state IN (3, 4)", [], |r| {
                r.get(0)
            })?;
        let last_lease: i64 =
            conn.query_row("SELECT COALESCE(MAX(lease_id), 0) FROM jobs", [], |r| {
                r.get(0)
            })?;
        let live = counts
            .values()
            .map(|c: &DepthCounts| c.queued + c.running + c.retrying)
            .sum();
        let counters = Arc::new(Mutex::new(counts));
        Ok((
            Writer {
                conn,
                config,
                counters: counters.clone(),
                finished: schema::uint(finished),
                live,
                next_lease_id: last_lease + 1,
                cursor: 0,
                notify,
                last_prune: Instant::now(),
            },
            counters,
        ))
    }

    /// Runs until every sender is gone.
    pub(super) fn run(mut self, mut rx: mpsc::UnboundedReceiver<Cmd>) {
        let mut batch = Vec::with_capacity(self.config.max_batch);
        while let Some(first) = rx.blocking_recv() {
            batch.push(first);
            while batch.len() < self.config.max_batch {
                match rx.try_recv() {
                    Ok(cmd) => batch.push(cmd),
                    Err(_) => break,
                }
            }
            self.commit_batch(&mut batch);
            if self.last_prune.elapsed() >= self.config.prune_interval
                || self.finished > self.config.max_finished + 10_000
            {
                self.prune();
            }
        }
    }

    fn storage_error(&self, operation: &'static str, e: impl std::fmt::Display) -> QueueError {
        QueueError::Storage {
            location: self.config.location.clone(),
            operation,
            message: format!("{e}; check that the disk is writable and not full"),
        }
    }

    fn commit_batch(&mut self, batch: &mut Vec<Cmd>) {
        let mut work = Work {
            counts: lock(&self.counters).clone(),
            finished: self.finished,
            live: self.live,
            wake: false,
        };
        let location = &self.config.location;
        let tx = match self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
        {
            Ok(tx) => tx,
            Err(e) => {
                let err = QueueError::Storage {
                    location: location.clone(),
                    operation: "starting a transaction",
                    message: format!("{e}; check that the disk is writable and not full"),
                };
                for cmd in batch.drain(..) {
                    fail(cmd, &err);
                }
                return;
            }
        };
        let mut held = Vec::with_capacity(batch.len());
        let mut next_lease_id = self.next_lease_id;
        let mut cursor = self.cursor;
        for cmd in batch.drain(..) {
            let err = |op, e: rusqlite::Error| QueueError::Storage {
                location: location.clone(),
                operation: op,
                message: format!("{e}; check that the disk is writable and not full"),
            };
            held.push(match cmd {
                Cmd::Enqueue(job, reply) => {
                    let r = enqueue(&tx, &job, self.config.max_live, &mut work)
                        .unwrap_or_else(|e| Err(err("storing a job", e)));
                    Held::Enqueue(reply, r)
                }
                Cmd::Lease(req, reply) => {
                    let r = lease(&tx, &req, &mut work, &mut next_lease_id, cursor)
                        .map_err(|e| err("leasing jobs", e));
                    cursor = cursor.wrapping_add(1);
                    Held::Lease(reply, r)
                }
                Cmd::Extend {
                    id,
                    lease_id,
                    until,
                    reply,
                } => {
                    let r = tx
                        .prepare_cached(
                            "UPDATE jobs SET due_at = ?1 WHERE id = ?2 AND state = 1 AND lease_id = ?3",
                        )
                        .and_then(|mut s| s.execute(params![int(until), id, lease_id]))
                        .map_err(|e| err("extending a lease", e))
                        .and_then(|n| lost_if_zero(n, &id));
                    Held::Unit(reply, r)
                }
                Cmd::Finish {
                    id,
                    function,
                    lease_id,
                    verdict,
                    reply,
                } => {
                    let r = finish(&tx, &id, &function, lease_id, verdict, &mut work)
                        .map_err(|e| err("recording a job's result", e))
                        .and_then(|n| lost_if_zero(n, &id));
                    Held::Unit(reply, r)
                }
                Cmd::Replay(id, reply) => {
                    let r = replay(&tx, &id, &mut work).unwrap_or_else(|e| Err(err("replaying", e)));
                    Held::Unit(reply, r)
                }
                Cmd::DeleteDead(id, reply) => {
                    let r = delete_dead(&tx, &id, &mut work)
                        .unwrap_or_else(|e| Err(err("deleting a dead letter", e)));
                    Held::Unit(reply, r)
                }
            });
        }
        match tx.commit() {
            Ok(()) => {
                self.next_lease_id = next_lease_id;
                self.cursor = cursor;
                self.finished = work.finished;
                self.live = work.live;
                *lock(&self.counters) = work.counts;
                for h in held {
                    h.send(None);
                }
                if work.wake {
                    self.notify.notify_waiters();
                }
            }
            Err(e) => {
                let err = self.storage_error("committing", &e);
                let make = || clone_err(&err);
                for h in held {
                    h.send(Some(&make));
                }
            }
        }
    }

    /// Deletes finished records past their retention time or over the cap, a slice at a time.
    fn prune(&mut self) {
        self.last_prune = Instant::now();
        let cutoff = now_ms().saturating_sub(crate::job::millis(self.config.finished_retention));
        let over = self.finished.saturating_sub(self.config.max_finished);
        let result = (|| -> rusqlite::Result<u64> {
            let tx = self.conn.transaction()?;
            let mut deleted = tx.execute(
                "DELETE FROM jobs WHERE seq IN (SELECT seq FROM jobs WHERE state IN (3, 4) \
                 AND updated_at < ?1 LIMIT 10000)",
                params![int(cutoff)],
            )?;
            if over > 0 {
                deleted += tx.execute(
                    "DELETE FROM jobs WHERE seq IN (SELECT seq FROM jobs WHERE state IN (3, 4) \
                     ORDER BY updated_at LIMIT ?1)",
                    params![int(over.min(10_000))],
                )?;
            }
            tx.commit()?;
            Ok(u64::try_from(deleted).unwrap_or(0))
        })();
        match result {
            Ok(n) => self.finished = self.finished.saturating_sub(n),
            Err(e) => tracing::warn!(
                location = %self.config.location,
                error = %e,
                "embedded queue: pruning finished job records failed; will try again"
            ),
        }
        if let Err(e) = self.drop_oldest_dead() {
            tracing::warn!(
                location = %self.config.location,
                error = %e,
                "embedded queue: dropping dead letters over the limit failed; will try again"
            );
        }
    }

    /// Deletes the oldest dead letters beyond `max_dead`.
    fn drop_oldest_dead(&mut self) -> rusqlite::Result<()> {
        let dead: u64 = lock(&self.counters).values().map(|c| c.dead).sum();
        let over = match self.config.max_dead {
            0 => 0,
            max => dead.saturating_sub(max).min(10_000),
        };
        if over == 0 {
            return Ok(());
        }
        let tx = self.conn.transaction()?;
        let dropped = tx
            .prepare(
                "SELECT id, function FROM jobs WHERE state = 5 ORDER BY updated_at, seq LIMIT ?1",
            )?
            .query_map(params![int(over)], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        {
            let mut delete = tx.prepare("DELETE FROM jobs WHERE id = ?1")?;
            for (id, _) in &dropped {
                delete.execute([id])?;
            }
        }
        tx.commit()?;
        let mut counts = lock(&self.counters);
        for (_, function) in &dropped {
            bump(&mut counts, &FunctionRef::parse(function), DEAD, false);
        }
        let shown: Vec<&str> = dropped.iter().take(5).map(|(id, _)| id.as_str()).collect();
        tracing::warn!(
            location = %self.config.location,
            "embedded queue: dropped the {} oldest dead letter(s) over the limit of {} ({}{})",
            dropped.len(),
            self.config.max_dead,
            shown.join(", "),
            if dropped.len() > shown.len() { ", …" } else { "" }
        );
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn clone_err(e: &QueueError) -> QueueError {
    match e {
        QueueError::Storage {
            location,
            operation,
            message,
        } => QueueError::Storage {
            location: location.clone(),
            operation,
            message: message.clone(),
        },
        other => QueueError::Storage {
            location: String::new(),
            operation: "committing",
            message: other.to_string(),
        },
    }
}

fn fail(cmd: Cmd, err: &QueueError) {
    let held = match cmd {
        Cmd::Enqueue(_, r) => Held::Enqueue(r, Err(clone_err(err))),
        Cmd::Lease(_, r) => Held::Lease(r, Err(clone_err(err))),
        Cmd::Extend { reply, .. } | Cmd::Finish { reply, .. } => {
            Held::Unit(reply, Err(clone_err(err)))
        }
        Cmd::Replay(_, r) | Cmd::DeleteDead(_, r) => Held::Unit(r, Err(clone_err(err))),
    };
    held.send(None);
}

fn lost_if_zero(changed: usize, id: &str) -> Result<(), QueueError> {
    if changed == 0 {
        Err(QueueError::LeaseLost { id: id.to_string() })
    } else {
        Ok(())
    }
}

/// Stores `job` unless its id is known (a duplicate) or `max_live` jobs are live already.
fn enqueue(
    tx: &Transaction<'_>,
    job: &NewJob,
    max_live: u64,
    work: &mut Work,
) -> rusqlite::Result<Result<Enqueued, QueueError>> {
    if max_live > 0 && work.live >= max_live {
        let known = tx
            .prepare_cached("SELECT 1 FROM jobs WHERE id = ?1")?
            .exists(params![job.id])?;
        return Ok(if known {
            Ok(Enqueued::Duplicate)
        } else {
            Err(QueueError::Full { limit: max_live })
        });
    }
    let now = int(now_ms());
    let n = tx
        .prepare_cached(
            "INSERT INTO jobs (id, function, state, due_at, attempt, max_attempts, enqueued_at, \
             updated_at, payload) VALUES (?1, ?2, 0, ?3, 0, ?4, ?5, ?3, ?6) \
             ON CONFLICT (id) DO NOTHING",
        )?
        .execute(params![
            job.id,
            job.function_key,
            now,
            job.max_attempts,
            int(job.enqueued_at),
            job.payload
        ])?;
    if n == 0 {
        return Ok(Ok(Enqueued::Duplicate));
    }
    work.transition(&job.function, None, Some(QUEUED));
    work.wake = true;
    Ok(Ok(Enqueued::New))
}

/// Leases in rounds over the functions that have live jobs and room: the first round gives
/// each an equal share of `max`, the second fills what is left in turn. The round starts one
/// function further on each call, so no function is always first.
fn lease(
    tx: &Transaction<'_>,
    req: &LeaseCmd,
    work: &mut Work,
    next_lease_id: &mut i64,
    cursor: usize,
) -> rusqlite::Result<LeaseBatch> {
    let now = now_ms();
    let mut functions: Vec<(FunctionRef, usize)> = work
        .counts
        .iter()
        .filter(|(_, c)| c.queued + c.running + c.retrying > 0)
        .map(|(f, _)| (f.clone(), req.room.for_function(f)))
        .filter(|(_, room)| *room > 0)
        .collect();
    let mut batch = LeaseBatch {
        leased: Vec::new(),
        next_due: None,
        more: false,
    };
    if functions.is_empty() || req.max == 0 {
        return Ok(batch);
    }
    let n = functions.len();
    functions.rotate_left(cursor % n);
    let share = req.max.div_ceil(n).max(1);
    let mut exhausted = vec![false; n];
    for round in 0..2 {
        for (i, (function, room)) in functions.iter_mut().enumerate() {
            let remaining = req.max - batch.leased.len();
            if remaining == 0 {
                batch.more = true;
                break;
            }
            if exhausted[i] || *room == 0 {
                continue;
            }
            let want = if round == 0 { share } else { remaining }
                .min(*room)
                .min(remaining);
            let got = lease_function(tx, function, want, now, req.lease_ms, work, next_lease_id)?;
            if got.len() < want {
                exhausted[i] = true;
            }
            *room -= got.len();
            batch.leased.extend(got);
        }
    }
    if batch.leased.is_empty() {
        let mut stmt =
            tx.prepare_cached("SELECT MIN(due_at) FROM jobs WHERE function = ?1 AND state < 3")?;
        for (function, _) in &functions {
            let due: Option<i64> = stmt.query_row([function.to_string()], |r| r.get(0))?;
            if let Some(due) = due.map(schema::uint) {
                batch.next_due = Some(batch.next_due.map_or(due, |d| d.min(due)));
            }
        }
    }
    Ok(batch)
}

/// A live job that is due.
struct DueRow {
    seq: i64,
    id: String,
    state: i64,
    attempt: i64,
    max_attempts: i64,
    last_error: String,
    payload: Vec<u8>,
}

/// Leases up to `want` due jobs of one function, oldest due first. A job due for an attempt
/// past its `max_attempts` (its last lease ran out without an answer) is dead-lettered.
fn lease_function(
    tx: &Transaction<'_>,
    function: &FunctionRef,
    want: usize,
    now: u64,
    lease_ms: u64,
    work: &mut Work,
    next_lease_id: &mut i64,
) -> rusqlite::Result<Vec<Leased>> {
    let mut leased = Vec::new();
    // Rows dead-lettered here do not count towards `want`, so read a few more rounds if needed.
    while leased.len() < want {
        let rows: Vec<DueRow> = {
            let mut stmt = tx.prepare_cached(
                "SELECT seq, id, state, attempt, max_attempts, last_error, payload FROM jobs \
                 WHERE function = ?1 AND state < 3 AND due_at <= ?2 ORDER BY due_at, seq LIMIT ?3",
            )?;
            let rows = stmt.query_map(
                params![
                    function.to_string(),
                    int(now),
                    int((want - leased.len()) as u64)
                ],
                |r| {
                    Ok(DueRow {
                        seq: r.get(0)?,
                        id: r.get(1)?,
                        state: r.get(2)?,
                        attempt: r.get(3)?,
                        max_attempts: r.get(4)?,
                        last_error: r.get(5)?,
                        payload: r.get(6)?,
                    })
                },
            )?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        if rows.is_empty() {
            break;
        }
        for DueRow {
            seq,
            id,
            state,
            attempt,
            max_attempts,
            last_error,
            payload,
        } in rows
        {
            let attempt = attempt.saturating_add(1);
            if attempt > max_attempts {
                let error = if state == RUNNING {
                    format!(
                        "attempt {} of {max_attempts} ran out of its lease without an answer \
                         (the worker died or hung)",
                        attempt - 1
                    )
                } else {
                    last_error
                };
                tx.prepare_cached(
                    "UPDATE jobs SET state = 5, last_error = ?1, updated_at = ?2 WHERE seq = ?3",
                )?
                .execute(params![error, int(now), seq])?;
                work.transition(function, Some(state), Some(DEAD));
                continue;
            }
            let lease_id = *next_lease_id;
            *next_lease_id += 1;
            tx.prepare_cached(
                "UPDATE jobs SET state = 1, attempt = ?1, due_at = ?2, lease_id = ?3, since = ?4, \
                 updated_at = ?4 WHERE seq = ?5",
            )?
            .execute(params![
                attempt,
                int(now.saturating_add(lease_ms)),
                lease_id,
                int(now),
                seq
            ])?;
            work.transition(function, Some(state), Some(RUNNING));
            leased.push(Leased {
                id,
                function: function.clone(),
                attempt: u32::try_from(attempt).unwrap_or(u32::MAX),
                lease_id,
                payload,
            });
        }
    }
    Ok(leased)
}

fn finish(
    tx: &Transaction<'_>,
    id: &str,
    function: &FunctionRef,
    lease_id: i64,
    verdict: Verdict,
    work: &mut Work,
) -> rusqlite::Result<usize> {
    let now = int(now_ms());
    let (to, n) = match verdict {
        Verdict::Done(outcome, header) => {
            let (state, status, error) = match outcome {
                Outcome::Succeeded { status } => (SUCCEEDED, status, String::new()),
                Outcome::Failed { status, error } => (FAILED, status, error),
            };
            let n = tx
                .prepare_cached(
                    "UPDATE jobs SET state = ?1, status = ?2, last_error = ?3, updated_at = ?4, \
                     due_at = 0, payload = ?5 WHERE id = ?6 AND state = 1 AND lease_id = ?7",
                )?
                .execute(params![state, status, error, now, header, id, lease_id])?;
            (state, n)
        }
        Verdict::Retry { at, error } => {
            let n = tx
                .prepare_cached(
                    "UPDATE jobs SET state = 2, due_at = ?1, last_error = ?2, updated_at = ?3 \
                     WHERE id = ?4 AND state = 1 AND lease_id = ?5",
                )?
                .execute(params![int(at), error, now, id, lease_id])?;
            (RETRYING, n)
        }
        Verdict::Dead { error } => {
            let n = tx
                .prepare_cached(
                    "UPDATE jobs SET state = 5, last_error = ?1, updated_at = ?2 \
                     WHERE id = ?3 AND state = 1 AND lease_id = ?4",
                )?
                .execute(params![error, now, id, lease_id])?;
            (DEAD, n)
        }
    };
    if n > 0 {
        work.transition(function, Some(RUNNING), Some(to));
        if to == RETRYING {
            work.wake = true;
        }
    }
    Ok(n)
}

/// The function and state of a job, if it exists.
fn state_of(tx: &Transaction<'_>, id: &str) -> rusqlite::Result<Option<(String, i64)>> {
    tx.prepare_cached("SELECT function, state FROM jobs WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
}

fn not_dead(id: &str, found: Option<(String, i64)>) -> Result<FunctionRef, QueueError> {
    match found {
        None => Err(QueueError::NotFound { id: id.to_string() }),
        Some((function, DEAD)) => Ok(FunctionRef::parse(&function)),
        Some((_, state)) => Err(QueueError::NotDeadLettered {
            id: id.to_string(),
            state: state_name(state),
        }),
    }
}

fn state_name(state: i64) -> &'static str {
    match state {
        QUEUED => "queued",
        RUNNING => "running",
        RETRYING => "retrying",
        SUCCEEDED => "succeeded",
        FAILED => "failed",
        _ => "dead-lettered",
    }
}

fn replay(
    tx: &Transaction<'_>,
    id: &str,
    work: &mut Work,
) -> rusqlite::Result<Result<(), QueueError>> {
    let function = match not_dead(id, state_of(tx, id)?) {
        Ok(f) => f,
        Err(e) => return Ok(Err(e)),
    };
    let now = int(now_ms());
    tx.prepare_cached(
        "UPDATE jobs SET state = 0, attempt = 0, due_at = ?1, updated_at = ?1, last_error = '' \
         WHERE id = ?2",
    )?
    .execute(params![now, id])?;
    work.transition(&function, Some(DEAD), Some(QUEUED));
    work.wake = true;
    Ok(Ok(()))
}

fn delete_dead(
    tx: &Transaction<'_>,
    id: &str,
    work: &mut Work,
) -> rusqlite::Result<Result<(), QueueError>> {
    let function = match not_dead(id, state_of(tx, id)?) {
        Ok(f) => f,
        Err(e) => return Ok(Err(e)),
    };
    tx.prepare_cached("DELETE FROM jobs WHERE id = ?1")?
        .execute([id])?;
    work.transition(&function, Some(DEAD), None);
    Ok(Ok(()))
}

/// A snapshot of the live counts.
pub(super) fn snapshot(counters: &Counters) -> Vec<(FunctionRef, DepthCounts)> {
    lock(counters)
        .iter()
        .map(|(f, c)| (f.clone(), *c))
        .collect()
}
