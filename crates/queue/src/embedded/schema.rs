//! The embedded queue's SQLite file: pragmas, the `jobs` table, and reading a row back as a
//! record.

use bytes::Bytes;
use rusqlite::{Connection, Row};

use crate::codec;
use crate::job::{JobRecord, JobState};

/// Waiting for its first attempt.
pub(super) const QUEUED: i64 = 0;
/// Leased; `due_at` is the lease's end.
pub(super) const RUNNING: i64 = 1;
/// Waiting for a later attempt; `due_at` is when.
pub(super) const RETRYING: i64 = 2;
/// Finished with success.
pub(super) const SUCCEEDED: i64 = 3;
/// Finished with a final failure.
pub(super) const FAILED: i64 = 4;
/// In the dead-letter list.
pub(super) const DEAD: i64 = 5;

/// One row per job. `due_at` is when a live job (state < 3) can next be leased: its enqueue
/// time, its retry time, or the end of its current lease, so an expired lease is simply due.
/// `payload` is the encoded job; its body is dropped when the job finishes.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    function TEXT NOT NULL,
    state INTEGER NOT NULL,
    due_at INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    lease_id INTEGER NOT NULL DEFAULT 0,
    enqueued_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    since INTEGER NOT NULL DEFAULT 0,
    status INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_live ON jobs(function, due_at) WHERE state < 3;
CREATE INDEX IF NOT EXISTS jobs_finished ON jobs(updated_at) WHERE state IN (3, 4);
CREATE INDEX IF NOT EXISTS jobs_dead ON jobs(updated_at) WHERE state = 5;
";

/// The columns [`record`] reads, in order.
pub(super) const RECORD_COLUMNS: &str = "id, state, due_at, attempt, max_attempts, enqueued_at, \
     updated_at, since, status, last_error, payload";

/// Sets the pragmas (WAL, fsync on every commit) and creates the table if it is new.
pub(super) fn prepare(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "busy_timeout", 5000)?;
    // Checkpoints run on their own thread; this is the writer's fallback (16384 pages of 4 KiB).
    conn.pragma_update(None, "wal_autocheckpoint", 16384)?;
    conn.execute_batch(SCHEMA)
}

/// Sets the pragmas of a read-only connection.
pub(super) fn prepare_reader(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "busy_timeout", 5000)
}

/// `v` as an SQLite integer (saturating).
pub(super) fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// An SQLite integer as u64 (negative reads as 0).
pub(super) fn uint(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn u32_of(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

/// Reads a row selected with [`RECORD_COLUMNS`] as a record.
pub(super) fn record(row: &Row<'_>) -> rusqlite::Result<Result<JobRecord, (String, String)>> {
    let id: String = row.get(0)?;
    let state: i64 = row.get(1)?;
    let due_at = uint(row.get(2)?);
    let attempt = u32_of(row.get(3)?);
    let max_attempts = u32_of(row.get(4)?);
    let enqueued_at = uint(row.get(5)?);
    let updated_at = uint(row.get(6)?);
    let since = uint(row.get(7)?);
    let status = u16::try_from(row.get::<_, i64>(8)?).unwrap_or(0);
    let last_error: String = row.get(9)?;
    let payload: Vec<u8> = row.get(10)?;
    let job = match codec::decode(&Bytes::from(payload), attempt) {
        Ok(job) => job,
        Err(e) => return Ok(Err((id, e))),
    };
    let state = match state {
        QUEUED => JobState::Queued,
        RUNNING => JobState::Running { attempt, since },
        RETRYING => JobState::Retrying {
            attempt,
            next_at: due_at,
            last_error,
        },
        SUCCEEDED => JobState::Succeeded {
            status,
            attempts: attempt,
            finished_at: updated_at,
        },
        FAILED => JobState::Failed {
            status,
            error: last_error,
            attempts: attempt,
            finished_at: updated_at,
        },
        _ => JobState::DeadLettered {
            attempts: attempt,
            last_error,
            at: updated_at,
        },
    };
    Ok(Ok(JobRecord {
        id,
        function: job.function,
        method: job.method,
        path: job.path,
        callback_url: job.callback_url,
        state,
        max_attempts,
        enqueued_at,
        updated_at,
    }))
}
