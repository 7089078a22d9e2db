//! The conformance suite: every backend must pass each of these.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use ironfaas_queue::{
    DeadLetterQuery, DepthCounts, Enqueued, Job, JobState, LeaseRequest, Outcome, Queue,
    QueueError, Room,
};
use ironfaas_spec::names::FunctionRef;
use tokio::sync::Mutex;

pub fn func(name: &str) -> FunctionRef {
    FunctionRef::new(name, "")
}

pub fn job(id: &str, function: &str) -> Job {
    let mut job = Job::new(id, func(function), 3);
    job.method = "PUT".into();
    job.path = "/sub".into();
    job.query = "a=1".into();
    job.headers = vec![
        ("Content-Type".into(), "application/json".into()),
        ("X-Call-Id".into(), id.into()),
    ];
    job.body = Bytes::from(format!("{{\"id\":\"{id}\"}}"));
    job.callback_url = Some("http://127.0.0.1:9/cb".into());
    job
}

fn req(max: usize, lease_for: Duration, wait: Duration) -> LeaseRequest {
    LeaseRequest::new(max, lease_for, wait)
}

const LONG: Duration = Duration::from_secs(60);
const SOON: Duration = Duration::from_millis(300);
const PATIENT: Duration = Duration::from_secs(10);

async fn state(q: &Arc<dyn Queue>, id: &str) -> JobState {
    q.get(id).await.unwrap().expect("record").state
}

pub async fn enqueue_lease_ack(q: Arc<dyn Queue>) {
    let sent = job("j1", "echo");
    assert_eq!(q.enqueue(sent.clone()).await.unwrap(), Enqueued::New);
    let record = q.get("j1").await.unwrap().unwrap();
    assert_eq!(record.state, JobState::Queued);
    assert_eq!(record.function, func("echo"));
    assert_eq!(record.method, "PUT");
    assert_eq!(
        record.callback_url.as_deref(),
        Some("http://127.0.0.1:9/cb")
    );

    let mut leases = q.lease(&req(10, LONG, PATIENT)).await.unwrap();
    assert_eq!(leases.len(), 1);
    let lease = leases.pop().unwrap();
    let mut expected = sent;
    expected.attempt = 1;
    assert_eq!(lease.job, expected);
    assert!(matches!(
        state(&q, "j1").await,
        JobState::Running { attempt: 1, .. }
    ));

    q.ack(lease, Outcome::Succeeded { status: 200 })
        .await
        .unwrap();
    assert!(matches!(
        state(&q, "j1").await,
        JobState::Succeeded {
            status: 200,
            attempts: 1,
            ..
        }
    ));
    assert!(q.lease(&req(10, LONG, SOON)).await.unwrap().is_empty());
    assert!(q.get("unknown").await.unwrap().is_none());
}

pub async fn duplicate_id_is_one_job(q: Arc<dyn Queue>) {
    assert_eq!(q.enqueue(job("d1", "echo")).await.unwrap(), Enqueued::New);
    assert_eq!(
        q.enqueue(job("d1", "echo")).await.unwrap(),
        Enqueued::Duplicate
    );
    let leases = q.lease(&req(10, LONG, PATIENT)).await.unwrap();
    assert_eq!(leases.len(), 1);
    for lease in leases {
        q.ack(lease, Outcome::Succeeded { status: 200 })
            .await
            .unwrap();
    }
    // Still the same job once finished: its record remembers the id.
    assert_eq!(
        q.enqueue(job("d1", "echo")).await.unwrap(),
        Enqueued::Duplicate
    );
    assert!(q.lease(&req(10, LONG, SOON)).await.unwrap().is_empty());
}

pub async fn invalid_jobs_are_refused(q: Arc<dyn Queue>) {
    let mut bad = job("x", "echo");
    bad.max_attempts = 0;
    let err = q.enqueue(bad).await.unwrap_err();
    assert!(matches!(err, QueueError::InvalidJob { .. }), "{err}");
    let err = q.enqueue(job("", "echo")).await.unwrap_err();
    assert!(err.to_string().contains("1 to 256 characters"), "{err}");
    let err = q.enqueue(job("y", "Bad_Name")).await.unwrap_err();
    assert!(err.to_string().contains("Bad_Name"), "{err}");
    assert!(q.depth().await.unwrap().is_empty());
}

pub async fn lease_expiry_redelivers(q: Arc<dyn Queue>) {
    let short = Duration::from_secs(2);
    q.enqueue(job("e1", "echo")).await.unwrap();
    let first = q
        .lease(&req(1, short, PATIENT))
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(first.job.attempt, 1);
    // Not leasable while the lease lasts.
    assert!(
        q.lease(&req(1, short, Duration::from_millis(500)))
            .await
            .unwrap()
            .is_empty()
    );
    let started = Instant::now();
    let second = q
        .lease(&req(1, short, PATIENT))
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(second.job.id, "e1");
    assert_eq!(second.job.attempt, 2);
    assert!(started.elapsed() < Duration::from_secs(6));
    let err = q
        .ack(first, Outcome::Succeeded { status: 200 })
        .await
        .unwrap_err();
    assert!(matches!(err, QueueError::LeaseLost { .. }), "{err}");
    q.ack(second, Outcome::Succeeded { status: 200 })
        .await
        .unwrap();
    assert!(matches!(
        state(&q, "e1").await,
        JobState::Succeeded { attempts: 2, .. }
    ));
}

pub async fn extend_keeps_the_lease(q: Arc<dyn Queue>) {
    let period = Duration::from_millis(1500);
    q.enqueue(job("x1", "echo")).await.unwrap();
    let lease = q
        .lease(&req(1, period, PATIENT))
        .await
        .unwrap()
        .pop()
        .unwrap();
    let started = Instant::now();
    // Over three lease periods, extended every 300 ms, while another worker keeps asking.
    let other = {
        let q = q.clone();
        tokio::spawn(async move {
            let mut stolen = Vec::new();
            while started.elapsed() < Duration::from_millis(5000) {
                stolen.extend(
                    q.lease(&req(1, period, Duration::from_millis(200)))
                        .await
                        .unwrap(),
                );
            }
            stolen.len()
        })
    };
    while started.elapsed() < Duration::from_millis(5000) {
        tokio::time::sleep(Duration::from_millis(300)).await;
        q.extend(&lease, period).await.unwrap();
    }
    assert_eq!(
        other.await.unwrap(),
        0,
        "the job was leased twice while extended"
    );
    q.ack(
        lease,
        Outcome::Failed {
            status: 400,
            error: "bad input".into(),
        },
    )
    .await
    .unwrap();
    match state(&q, "x1").await {
        JobState::Failed {
            status: 400,
            error,
            attempts: 1,
            ..
        } => assert_eq!(error, "bad input"),
        other => panic!("unexpected state {other:?}"),
    }
}

pub async fn retry_later_waits_for_its_time(q: Arc<dyn Queue>) {
    q.enqueue(job("r1", "echo")).await.unwrap();
    let lease = q
        .lease(&req(1, LONG, PATIENT))
        .await
        .unwrap()
        .pop()
        .unwrap();
    let at = SystemTime::now() + Duration::from_millis(2000);
    q.retry_later(lease, at, "503 from the function".into())
        .await
        .unwrap();
    match state(&q, "r1").await {
        JobState::Retrying {
            attempt: 1,
            last_error,
            ..
        } => {
            assert_eq!(last_error, "503 from the function")
        }
        other => panic!("unexpected state {other:?}"),
    }
    assert!(
        q.lease(&req(1, LONG, Duration::from_millis(700)))
            .await
            .unwrap()
            .is_empty()
    );
    let lease = q
        .lease(&req(1, LONG, PATIENT))
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert!(SystemTime::now() >= at, "leased before its retry time");
    assert_eq!(lease.job.attempt, 2);
    assert_eq!(lease.job.body, job("r1", "echo").body);
    assert!(matches!(
        state(&q, "r1").await,
        JobState::Running { attempt: 2, .. }
    ));
    q.ack(lease, Outcome::Succeeded { status: 202 })
        .await
        .unwrap();
}

pub async fn dead_letters_list_replay_delete(q: Arc<dyn Queue>) {
    q.enqueue(job("k1", "echo")).await.unwrap();
    q.enqueue(job("k2", "echo")).await.unwrap();
    let leases = q.lease(&req(2, LONG, PATIENT)).await.unwrap();
    assert_eq!(leases.len(), 2);
    for lease in leases {
        q.dead_letter(lease, "500 three times".into())
            .await
            .unwrap();
    }
    match state(&q, "k1").await {
        JobState::DeadLettered {
            attempts: 1,
            last_error,
            ..
        } => assert_eq!(last_error, "500 three times"),
        other => panic!("unexpected state {other:?}"),
    }
    let dead = q.dead_letters(&DeadLetterQuery::first(10)).await.unwrap();
    let ids: HashSet<_> = dead.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, HashSet::from(["k1", "k2"]));
    assert!(dead.iter().all(|r| matches!(&r.state, JobState::DeadLettered { last_error, .. } if last_error == "500 three times")));
    assert_eq!(
        q.dead_letters(&DeadLetterQuery::first(1))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(q.lease(&req(1, LONG, SOON)).await.unwrap().is_empty());

    q.replay("k1").await.unwrap();
    assert_eq!(state(&q, "k1").await, JobState::Queued);
    let lease = q
        .lease(&req(5, LONG, PATIENT))
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(lease.job.id, "k1");
    assert_eq!(lease.job.attempt, 1, "replay resets the attempts");
    assert_eq!(lease.job.body, job("k1", "echo").body);

    let err = q.replay("k1").await.unwrap_err();
    assert!(
        matches!(
            err,
            QueueError::NotDeadLettered {
                state: "running",
                ..
            }
        ),
        "{err}"
    );
    let err = q.replay("nope").await.unwrap_err();
    assert!(matches!(err, QueueError::NotFound { .. }), "{err}");
    q.ack(lease, Outcome::Succeeded { status: 200 })
        .await
        .unwrap();

    q.delete_dead_letter("k2").await.unwrap();
    assert!(q.get("k2").await.unwrap().is_none());
    assert!(
        q.dead_letters(&DeadLetterQuery::first(10))
            .await
            .unwrap()
            .is_empty()
    );
    let err = q.delete_dead_letter("k2").await.unwrap_err();
    assert!(matches!(err, QueueError::NotFound { .. }), "{err}");
}

/// Leases every job of `ids` and dead-letters it.
async fn kill(q: &Arc<dyn Queue>, ids: &[&str]) {
    let mut leases = Vec::new();
    while leases.len() < ids.len() {
        leases.extend(q.lease(&req(ids.len(), LONG, PATIENT)).await.unwrap());
    }
    for lease in leases {
        assert!(ids.contains(&lease.job.id.as_str()), "{}", lease.job.id);
        q.dead_letter(lease, "500".into()).await.unwrap();
    }
}

pub async fn dead_letters_by_function_and_time(q: Arc<dyn Queue>) {
    for (id, f) in [("a1", "alpha"), ("b1", "beta")] {
        q.enqueue(job(id, f)).await.unwrap();
    }
    kill(&q, &["a1", "b1"]).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let cut = ironfaas_queue::unix_ms(SystemTime::now());
    tokio::time::sleep(Duration::from_millis(20)).await;
    q.enqueue(job("a2", "alpha")).await.unwrap();
    kill(&q, &["a2"]).await;

    let ids = |function: Option<&str>, until: Option<u64>, limit: usize| {
        let q = q.clone();
        let query = DeadLetterQuery {
            function: function.map(func),
            until,
            limit,
        };
        async move {
            let dead = q.dead_letters(&query).await.unwrap();
            dead.into_iter().map(|r| r.id).collect::<Vec<_>>()
        }
    };
    let all = ids(None, None, 10).await;
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(all.last().map(String::as_str), Some("a2"), "oldest first");
    assert_eq!(ids(Some("alpha"), None, 10).await, ["a1", "a2"]);
    assert_eq!(ids(Some("alpha"), None, 1).await, ["a1"]);
    assert_eq!(ids(Some("beta"), None, 10).await, ["b1"]);
    assert!(ids(Some("gamma"), None, 10).await.is_empty());
    let mut before: Vec<String> = ids(None, Some(cut), 10).await;
    before.sort();
    assert_eq!(
        before,
        ["a1", "b1"],
        "dead-lettered after the cut is left out"
    );
    assert_eq!(ids(Some("alpha"), Some(cut), 10).await, ["a1"]);
}

pub async fn exhausted_attempts_go_to_dead_letters(q: Arc<dyn Queue>) {
    let mut one = job("m1", "echo");
    one.max_attempts = 1;
    q.enqueue(one).await.unwrap();
    let short = Duration::from_secs(1);
    let lease = q
        .lease(&req(1, short, PATIENT))
        .await
        .unwrap()
        .pop()
        .unwrap();
    drop(lease); // the worker dies
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        assert!(
            q.lease(&req(1, short, Duration::from_millis(300)))
                .await
                .unwrap()
                .is_empty()
        );
        if let JobState::DeadLettered {
            attempts,
            last_error,
            ..
        } = state(&q, "m1").await
        {
            assert_eq!(attempts, 1);
            assert!(last_error.contains("ran out of its lease"), "{last_error}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not dead-lettered after its lease ran out"
        );
    }
    assert_eq!(
        q.dead_letters(&DeadLetterQuery::first(10))
            .await
            .unwrap()
            .len(),
        1
    );
}

pub async fn depth_per_function(q: Arc<dyn Queue>) {
    for i in 0..4 {
        q.enqueue(job(&format!("a{i}"), "alpha")).await.unwrap();
    }
    for i in 0..2 {
        q.enqueue(job(&format!("b{i}"), "beta")).await.unwrap();
    }
    let only_alpha = Room::unlimited().with(func("beta"), 0);
    let mut leases = q
        .lease(&req(3, LONG, PATIENT).with_room(only_alpha))
        .await
        .unwrap();
    assert_eq!(leases.len(), 3);
    assert!(leases.iter().all(|l| l.job.function == func("alpha")));
    let retry = leases.pop().unwrap();
    q.retry_later(retry, SystemTime::now() + LONG, "429".into())
        .await
        .unwrap();
    let dead = leases.pop().unwrap();
    q.dead_letter(dead, "gave up".into()).await.unwrap();
    let depth = q.depth().await.unwrap();
    assert_eq!(
        depth,
        vec![
            (
                func("alpha"),
                DepthCounts {
                    queued: 1,
                    running: 1,
                    retrying: 1,
                    dead: 1
                }
            ),
            (
                func("beta"),
                DepthCounts {
                    queued: 2,
                    running: 0,
                    retrying: 0,
                    dead: 0
                }
            ),
        ]
    );
}

pub async fn leases_are_shared_across_functions(q: Arc<dyn Queue>) {
    for i in 0..40 {
        q.enqueue(job(&format!("busy{i}"), "busy")).await.unwrap();
    }
    for i in 0..3 {
        q.enqueue(job(&format!("calm{i}"), "calm")).await.unwrap();
    }
    let leases = q.lease(&req(4, LONG, PATIENT)).await.unwrap();
    assert_eq!(leases.len(), 4);
    let calm = leases
        .iter()
        .filter(|l| l.job.function == func("calm"))
        .count();
    assert_eq!(calm, 2, "the backlog of 'busy' must not starve 'calm'");
    // A per-function limit of 1 gives at most one of each.
    let room = Room::unlimited().with_default(1);
    let leases = q
        .lease(&req(10, LONG, PATIENT).with_room(room))
        .await
        .unwrap();
    assert_eq!(leases.len(), 2);
    let functions: HashSet<_> = leases.iter().map(|l| l.job.function.clone()).collect();
    assert_eq!(functions.len(), 2);
}

pub async fn concurrent_jobs_are_leased_exactly_once(q: Arc<dyn Queue>) {
    const TASKS: usize = 50;
    const EACH: usize = 20;
    let mut enqueuers = Vec::new();
    for t in 0..TASKS {
        let q = q.clone();
        enqueuers.push(tokio::spawn(async move {
            for i in 0..EACH {
                let function = ["f1", "f2", "f3"][i % 3];
                let r = q
                    .enqueue(job(&format!("c{t}-{i}"), function))
                    .await
                    .unwrap();
                assert_eq!(r, Enqueued::New);
            }
        }));
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let q = q.clone();
        let seen = seen.clone();
        workers.push(tokio::spawn(async move {
            let started = Instant::now();
            loop {
                let leases = q
                    .lease(&req(32, LONG, Duration::from_millis(500)))
                    .await
                    .unwrap();
                if leases.is_empty() {
                    if seen.lock().await.len() >= TASKS * EACH
                        || started.elapsed() > Duration::from_secs(60)
                    {
                        return;
                    }
                    continue;
                }
                for lease in leases {
                    seen.lock().await.push(lease.job.id.clone());
                    q.ack(lease, Outcome::Succeeded { status: 200 })
                        .await
                        .unwrap();
                }
            }
        }));
    }
    for e in enqueuers {
        e.await.unwrap();
    }
    for w in workers {
        w.await.unwrap();
    }
    let seen = seen.lock().await;
    let distinct: HashSet<_> = seen.iter().collect();
    assert_eq!(distinct.len(), TASKS * EACH, "some jobs were never leased");
    assert_eq!(seen.len(), TASKS * EACH, "some jobs were leased twice");
    assert!(q.depth().await.unwrap().is_empty());
}

pub async fn replayed_job_can_fail_and_retry_again(q: Arc<dyn Queue>) {
    q.enqueue(job("p1", "echo")).await.unwrap();
    for round in 0..2 {
        let lease = q
            .lease(&req(1, LONG, PATIENT))
            .await
            .unwrap()
            .pop()
            .unwrap();
        assert_eq!(lease.job.attempt, 1, "round {round}");
        q.retry_later(lease, SystemTime::now(), "503".into())
            .await
            .unwrap();
        let lease = q.lease(&req(1, LONG, PATIENT)).await.unwrap().pop();
        let lease = lease.unwrap_or_else(|| panic!("the retry of round {round} was lost"));
        assert_eq!(lease.job.attempt, 2);
        q.dead_letter(lease, "503 again".into()).await.unwrap();
        q.replay("p1").await.unwrap();
    }
    let lease = q
        .lease(&req(1, LONG, PATIENT))
        .await
        .unwrap()
        .pop()
        .unwrap();
    q.ack(lease, Outcome::Succeeded { status: 200 })
        .await
        .unwrap();
}
