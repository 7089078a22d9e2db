//! Nothing accepted is lost: the embedded queue dropped or killed mid-enqueue, nats-server
//! killed with SIGKILL and restarted mid-run.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ironfaas_queue::{EmbeddedQueue, Enqueued, LeaseRequest, Outcome, Queue, QueueError};

use crate::common::{self, NatsServer};
use crate::suite::job;

const CHILD_DIR: &str = "IRONFAAS_QUEUE_TEST_CHILD_DIR";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_jobs_survive_a_drop_without_shutdown() {
    let dir = tempfile::TempDir::new().unwrap();
    let q = Arc::new(EmbeddedQueue::open(dir.path()).unwrap());
    let mut tasks = Vec::new();
    for t in 0..20 {
        let q = q.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..50 {
                assert_eq!(
                    q.enqueue(job(&format!("d{t}-{i}"), "keep")).await.unwrap(),
                    Enqueued::New
                );
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    drop(q);
    let q = EmbeddedQueue::open(dir.path()).unwrap();
    let depth = q.depth().await.unwrap();
    assert_eq!(depth.len(), 1);
    assert_eq!(depth[0].1.queued, 1000);
    for t in 0..20 {
        for i in 0..50 {
            assert!(q.get(&format!("d{t}-{i}")).await.unwrap().is_some());
        }
    }
}

/// Run by `embedded_enqueues_survive_sigkill` in a child process: enqueues from 64 tasks and
/// prints `ok ID` for each enqueue that returned Ok, until killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "helper: runs only as the child of embedded_enqueues_survive_sigkill"]
async fn sigkill_child_enqueuer() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let q = Arc::new(EmbeddedQueue::open(std::path::Path::new(&dir)).unwrap());
    let out = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let mut tasks = Vec::new();
    for t in 0..64 {
        let q = q.clone();
        let out = out.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                let id = format!("k{t}-{i}");
                q.enqueue(job(&id, "kill")).await.unwrap();
                let mut out = out.lock().unwrap();
                writeln!(out, "ok {id}").unwrap();
                out.flush().unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_enqueues_survive_sigkill() {
    let dir = tempfile::TempDir::new().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "durability::sigkill_child_enqueuer",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acknowledged = Vec::new();
    while acknowledged.len() < 3000 {
        let line = lines
            .next()
            .expect("the child stopped before it was killed")
            .unwrap();
        if let Some(id) = line.strip_prefix("ok ") {
            acknowledged.push(id.to_string());
        }
    }
    child.kill().unwrap(); // SIGKILL, mid-enqueue
    // Lines the child finished writing before it died count too.
    for line in lines.map_while(Result::ok) {
        if let Some(id) = line.strip_prefix("ok ") {
            acknowledged.push(id.to_string());
        }
    }
    child.wait().unwrap();
    let q = EmbeddedQueue::open(dir.path()).unwrap();
    let mut missing = Vec::new();
    for id in &acknowledged {
        if q.get(id).await.unwrap().is_none() {
            missing.push(id.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "{} acknowledged enqueues were lost: {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let queued: u64 = q.depth().await.unwrap().iter().map(|(_, c)| c.queued).sum();
    assert!(queued >= acknowledged.len() as u64);
}

/// Enqueues `id`, retrying while the server is away (a failed enqueue may or may not have been
/// stored; the same id again is then a duplicate).
async fn enqueue_until_ok(q: &dyn Queue, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match q.enqueue(job(id, "survive")).await {
            Ok(_) => return,
            Err(e @ QueueError::Nats { .. }) => {
                assert!(Instant::now() < deadline, "enqueue kept failing: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
}

/// The lease period of the NATS test: the same in every lease call, since in JetStream it is the
/// consumer's AckWait and applies to all its pending messages.
const LEASE: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_loses_nothing_when_the_server_is_killed_and_restarted() {
    let mut server = NatsServer::start();
    let q: Arc<dyn Queue> = Arc::new(common::connect(&server.url()).await);
    for i in 0..300 {
        enqueue_until_ok(q.as_ref(), &format!("before{i}")).await;
    }
    // Leases held across the crash must come back after their lease runs out.
    let held = q
        .lease(&LeaseRequest::new(10, LEASE, Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(held.len(), 10);
    let writer = {
        let q = q.clone();
        tokio::spawn(async move {
            for i in 0..300 {
                enqueue_until_ok(q.as_ref(), &format!("during{i}")).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.kill9();
    // An enqueue during the outage fails within the request timeout instead of hanging.
    let started = Instant::now();
    let err = q.enqueue(job("outage", "survive")).await.unwrap_err();
    assert!(matches!(err, QueueError::Nats { .. }), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    server.restart();
    writer.await.unwrap();
    drop(held);

    let mut expected: HashSet<String> = (0..300)
        .flat_map(|i| [format!("before{i}"), format!("during{i}")])
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !expected.is_empty() {
        assert!(
            Instant::now() < deadline,
            "{} jobs never came back, e.g. {:?}",
            expected.len(),
            expected.iter().next()
        );
        let leases = match q
            .lease(&LeaseRequest::new(64, LEASE, Duration::from_secs(1)))
            .await
        {
            Ok(l) => l,
            Err(e) => {
                eprintln!("lease after restart: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        for lease in leases {
            expected.remove(&lease.job.id);
            q.ack(lease, Outcome::Succeeded { status: 200 })
                .await
                .unwrap();
        }
    }
}
