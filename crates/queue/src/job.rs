//! What the queue holds: jobs, their states as operators see them, and the lease request.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use ironfaas_spec::names::FunctionRef;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One asynchronous call of a function, as accepted by `POST /async-function/NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The call id (`X-Call-Id`); also the idempotency key: the same id twice is one job.
    pub id: String,
    /// The function to call.
    pub function: FunctionRef,
    /// The HTTP method of the original request.
    pub method: String,
    /// The sub-path after the function name (`""` or `/foo`).
    pub path: String,
    /// The query string without the leading `?`.
    pub query: String,
    /// The request headers, in order, repeated names allowed.
    pub headers: Vec<(String, String)>,
    /// The request body.
    pub body: Bytes,
    /// Where to POST the function's answer (`X-Callback-Url`), if anywhere.
    pub callback_url: Option<String>,
    /// When the gateway accepted the call, in unix milliseconds.
    pub enqueued_at: u64,
    /// Attempts made so far: 0 when enqueued; in a [`crate::Lease`], the number of this attempt
    /// (1 for the first).
    pub attempt: u32,
    /// How many attempts the job may have in all; a job due for one more goes to the dead letters.
    pub max_attempts: u32,
}

impl Job {
    /// A job for `function` with the given id, an empty POST to `/` and at most `max_attempts`
    /// attempts, enqueued now.
    pub fn new(id: impl Into<String>, function: FunctionRef, max_attempts: u32) -> Job {
        Job {
            id: id.into(),
            function,
            method: "POST".to_string(),
            path: String::new(),
            query: String::new(),
            headers: Vec::new(),
            body: Bytes::new(),
            callback_url: None,
            enqueued_at: unix_ms(SystemTime::now()),
            attempt: 0,
            max_attempts,
        }
    }
}

/// What `enqueue` did with a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// The job is new and is now stored durably.
    New,
    /// A job with this id was already accepted; nothing was added.
    Duplicate,
}

/// The final answer of a job, given to `ack`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The function answered and the job is done (any status the worker takes as final success).
    Succeeded {
        /// The function's HTTP status.
        status: u16,
    },
    /// The function answered with a final, non-retryable failure.
    Failed {
        /// The function's HTTP status.
        status: u16,
        /// What went wrong, for operators.
        error: String,
    },
}

/// Where a job is in its life, as operators see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "state",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum JobState {
    /// Waiting to be leased for its first attempt.
    Queued,
    /// Leased by a worker.
    Running {
        /// The number of this attempt (1 for the first).
        attempt: u32,
        /// When the lease was taken, unix ms.
        since: u64,
    },
    /// Waiting for its next attempt after a retryable failure.
    Retrying {
        /// Attempts made so far.
        attempt: u32,
        /// When it becomes leasable again, unix ms.
        next_at: u64,
        /// Why the last attempt failed.
        last_error: String,
    },
    /// Finished with a successful answer.
    Succeeded {
        /// The function's HTTP status.
        status: u16,
        /// Attempts it took.
        attempts: u32,
        /// When it finished, unix ms.
        finished_at: u64,
    },
    /// Finished with a final, non-retryable failure.
    Failed {
        /// The function's HTTP status.
        status: u16,
        /// What went wrong.
        error: String,
        /// Attempts it took.
        attempts: u32,
        /// When it finished, unix ms.
        finished_at: u64,
    },
    /// Given up on; kept in the dead-letter list until replayed or deleted.
    DeadLettered {
        /// Attempts made.
        attempts: u32,
        /// Why the last attempt failed.
        last_error: String,
        /// When it was dead-lettered, unix ms.
        at: u64,
    },
}

impl JobState {
    /// The state's name as in the JSON `state` field (`queued`, `running`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running { .. } => "running",
            JobState::Retrying { .. } => "retrying",
            JobState::Succeeded { .. } => "succeeded",
            JobState::Failed { .. } => "failed",
            JobState::DeadLettered { .. } => "deadLettered",
        }
    }
}

/// One job as the inspection API shows it (camelCase JSON, times in unix ms).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobRecord {
    /// The call id.
    pub id: String,
    /// The function, as `name.namespace`.
    #[serde(serialize_with = "ser_function", deserialize_with = "de_function")]
    pub function: FunctionRef,
    /// The HTTP method of the original request.
    pub method: String,
    /// The sub-path after the function name.
    pub path: String,
    /// The callback URL, if any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub callback_url: Option<String>,
    /// Where the job is, with the details of that state.
    #[serde(flatten)]
    pub state: JobState,
    /// How many attempts the job may have.
    pub max_attempts: u32,
    /// When it was accepted, unix ms.
    pub enqueued_at: u64,
    /// When its state last changed, unix ms.
    pub updated_at: u64,
}

fn ser_function<S: Serializer>(f: &FunctionRef, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(f)
}

fn de_function<'de, D: Deserializer<'de>>(d: D) -> Result<FunctionRef, D::Error> {
    let s = String::deserialize(d)?;
    Ok(FunctionRef::parse(&s))
}

/// How many jobs of one function are in each live state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DepthCounts {
    /// Waiting for their first attempt.
    pub queued: u64,
    /// Leased (including leases that expired and wait to be leased again).
    pub running: u64,
    /// Waiting for a later attempt.
    pub retrying: u64,
    /// In the dead-letter list.
    pub dead: u64,
}

/// How many more jobs of each function a worker can take in one `lease` call: the
/// per-function concurrency limits minus the calls already running.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Room {
    per_function: HashMap<FunctionRef, usize>,
    default: Option<usize>,
}

impl Room {
    /// No per-function limit: only `max` of the lease request bounds it.
    pub fn unlimited() -> Room {
        Room::default()
    }

    /// Room for `n` more jobs of `function` (0 skips it).
    pub fn with(mut self, function: FunctionRef, n: usize) -> Room {
        self.per_function.insert(function, n);
        self
    }

    /// Sets the room for `function` (0 skips it).
    pub fn set(&mut self, function: FunctionRef, n: usize) {
        self.per_function.insert(function, n);
    }

    /// Room for `n` more jobs of each function not named with [`Room::set`].
    pub fn with_default(mut self, n: usize) -> Room {
        self.default = Some(n);
        self
    }

    /// How many more jobs of `function` may be leased.
    pub fn for_function(&self, function: &FunctionRef) -> usize {
        self.per_function
            .get(function)
            .copied()
            .or(self.default)
            .unwrap_or(usize::MAX)
    }
}

/// Which dead letters `dead_letters` lists: oldest first, at most `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterQuery {
    /// Only this function's dead letters.
    pub function: Option<FunctionRef>,
    /// Only those dead-lettered at or before this time (unix ms): a fixed set to work through
    /// while new dead letters keep arriving.
    pub until: Option<u64>,
    /// At most this many.
    pub limit: usize,
}

impl DeadLetterQuery {
    /// Up to `limit` dead letters of any function.
    pub fn first(limit: usize) -> DeadLetterQuery {
        DeadLetterQuery {
            function: None,
            until: None,
            limit,
        }
    }

    /// Whether a dead letter of `function` dead-lettered at `at` is one of these.
    pub fn matches(&self, function: &FunctionRef, at: u64) -> bool {
        self.function.as_ref().is_none_or(|f| f == function) && self.until.is_none_or(|u| at <= u)
    }
}

/// What a worker asks `lease` for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRequest {
    /// At most this many jobs.
    pub max: usize,
    /// How long each lease lasts unless extended.
    pub lease_for: Duration,
    /// How long to wait for a due job when none is due now.
    pub wait: Duration,
    /// Per-function room (concurrency limits).
    pub room: Room,
}

impl LeaseRequest {
    /// Up to `max` jobs leased for `lease_for`, waiting up to `wait`, with no per-function limit.
    pub fn new(max: usize, lease_for: Duration, wait: Duration) -> LeaseRequest {
        LeaseRequest {
            max,
            lease_for,
            wait,
            room: Room::unlimited(),
        }
    }

    /// The same request with per-function room.
    pub fn with_room(mut self, room: Room) -> LeaseRequest {
        self.room = room;
        self
    }
}

/// `t` as unix milliseconds (0 before 1970).
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The current time in unix milliseconds.
pub(crate) fn now_ms() -> u64 {
    unix_ms(SystemTime::now())
}

/// `d` in whole milliseconds, saturating.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_json_is_camel_case_with_flattened_state() {
        let record = JobRecord {
            id: "c1".into(),
            function: FunctionRef::new("resize", ""),
            method: "POST".into(),
            path: "/x".into(),
            callback_url: None,
            state: JobState::Retrying {
                attempt: 2,
                next_at: 5,
                last_error: "503".into(),
            },
            max_attempts: 3,
            enqueued_at: 1,
            updated_at: 2,
        };
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["function"], "resize.openfaas-fn");
        assert_eq!(json["state"], "retrying");
        assert_eq!(json["nextAt"], 5);
        assert_eq!(json["lastError"], "503");
        assert_eq!(json["maxAttempts"], 3);
        let back: JobRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back, record);
    }

    #[test]
    fn room_defaults_to_unlimited() {
        let f = FunctionRef::new("a", "");
        let g = FunctionRef::new("b", "");
        let room = Room::unlimited().with(f.clone(), 2);
        assert_eq!(room.for_function(&f), 2);
        assert_eq!(room.for_function(&g), usize::MAX);
        assert_eq!(room.with_default(1).for_function(&g), 1);
    }
}
