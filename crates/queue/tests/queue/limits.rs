//! A queue with a limit on the jobs waiting or running refuses more with `Full`, storing
//! nothing, and takes them again once a job has ended; a duplicate id is still a duplicate.
//! With a limit on dead letters, the oldest go.

use std::sync::Arc;
use std::time::Duration;

use ironfaas_queue::{
    DeadLetterQuery, EmbeddedOptions, EmbeddedQueue, Enqueued, LeaseRequest, NatsOptions, Outcome,
    Queue, QueueError,
};

use crate::common::{NatsServer, connect_with, embedded_with, test_options};
use crate::suite::job;

/// Enqueues `id` once the queue has room: an ack makes room at once in the embedded queue,
/// a moment later with NATS (JetStream removes an acked message after the plain ack).
async fn enqueue_when_room(q: &Arc<dyn Queue>, id: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match q.enqueue(job(id, "busy")).await {
            Ok(enqueued) => return assert_eq!(enqueued, Enqueued::New),
            Err(QueueError::Full { .. }) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("{id}: {e}"),
        }
    }
}

async fn refuses_beyond_its_limit(q: Arc<dyn Queue>) {
    for id in ["a", "b", "c"] {
        assert_eq!(q.enqueue(job(id, "busy")).await.unwrap(), Enqueued::New);
    }
    let refused = q.enqueue(job("d", "busy")).await.unwrap_err();
    assert!(
        matches!(refused, QueueError::Full { limit: 3 }),
        "{refused:?}"
    );
    assert!(
        refused.to_string().contains("limit of 3 calls"),
        "{refused}"
    );
    assert!(q.get("d").await.unwrap().is_none(), "nothing of it stored");
    assert_eq!(
        q.enqueue(job("a", "busy")).await.unwrap(),
        Enqueued::Duplicate,
        "a known id is a duplicate, full or not"
    );

    let req = LeaseRequest::new(1, Duration::from_secs(30), Duration::from_secs(5));
    let lease = q.lease(&req).await.unwrap().pop().expect("a job to run");
    assert!(
        matches!(
            q.enqueue(job("d", "busy")).await,
            Err(QueueError::Full { .. })
        ),
        "a running job still counts"
    );
    q.ack(lease, Outcome::Succeeded { status: 200 })
        .await
        .unwrap();
    enqueue_when_room(&q, "d").await;
    let mut ids = Vec::new();
    while ids.len() < 3 {
        for lease in q.lease(&req).await.unwrap() {
            ids.push(lease.job.id.clone());
            q.ack(lease, Outcome::Succeeded { status: 200 })
                .await
                .unwrap();
        }
    }
    ids.sort();
    assert!(ids.contains(&"d".to_string()), "{ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_refuses_beyond_its_limit() {
    let (q, _dir) = embedded_with(EmbeddedOptions {
        max_live: 3,
        ..EmbeddedOptions::default()
    });
    refuses_beyond_its_limit(q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_counts_its_limit_across_a_restart() {
    let dir = tempfile::TempDir::new().unwrap();
    let options = EmbeddedOptions {
        max_live: 2,
        ..EmbeddedOptions::default()
    };
    let q = EmbeddedQueue::open_with(dir.path(), options.clone()).unwrap();
    for id in ["a", "b"] {
        assert_eq!(q.enqueue(job(id, "busy")).await.unwrap(), Enqueued::New);
    }
    drop(q);
    let q = EmbeddedQueue::open_with(dir.path(), options).unwrap();
    assert!(matches!(
        q.enqueue(job("c", "busy")).await,
        Err(QueueError::Full { limit: 2 })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_refuses_beyond_its_limit() {
    let server = NatsServer::start();
    // A queue connected as a gateway with a limit on the jobs (`None`: as a worker).
    let with_limit = |max_jobs: Option<u64>| {
        let options = NatsOptions {
            max_jobs,
            ..test_options()
        };
        let url = server.url();
        async move { Arc::new(connect_with(&url, options).await) as Arc<dyn Queue> }
    };
    // A stream made without a limit gets the one a gateway asks for.
    drop(with_limit(None).await);
    // Kept open to the end: its last acks are plain messages, which a closed connection might
    // not have sent.
    let first = with_limit(Some(3)).await;
    refuses_beyond_its_limit(Arc::clone(&first)).await;
    // A worker (no limit of its own) leaves it; a gateway with 0 lifts it.
    drop(with_limit(None).await);
    let q = with_limit(Some(3)).await;
    for id in ["e", "f", "g"] {
        enqueue_when_room(&q, id).await;
    }
    assert!(matches!(
        q.enqueue(job("h", "busy")).await,
        Err(QueueError::Full { limit: 3 })
    ));
    let q = with_limit(Some(0)).await;
    assert_eq!(q.enqueue(job("h", "busy")).await.unwrap(), Enqueued::New);
    drop(first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_a_queued_duplicate_is_accepted_when_full() {
    let server = NatsServer::start();
    let options = NatsOptions {
        max_jobs: Some(1),
        duplicate_window: Duration::from_secs(1),
        ..test_options()
    };
    let q = connect_with(&server.url(), options).await;
    assert_eq!(q.enqueue(job("a", "busy")).await.unwrap(), Enqueued::New);
    // Past JetStream's duplicate window its copy is sent again, which the full stream refuses:
    // the call was accepted before, so it is still a duplicate.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        q.enqueue(job("a", "busy")).await.unwrap(),
        Enqueued::Duplicate
    );
    assert!(matches!(
        q.enqueue(job("b", "busy")).await,
        Err(QueueError::Full { limit: 1 })
    ));
}

/// Dead-letters three jobs, a then b then c, in a queue that keeps two dead letters.
async fn the_oldest_dead_letters_go(q: Arc<dyn Queue>) {
    let req = LeaseRequest::new(1, Duration::from_secs(30), Duration::from_secs(5));
    for id in ["a", "b", "c"] {
        q.enqueue(job(id, "broken")).await.unwrap();
        let lease = q.lease(&req).await.unwrap().pop().expect("the job");
        q.dead_letter(lease, "500".into()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let ids = loop {
        let dead = q.dead_letters(&DeadLetterQuery::first(10)).await.unwrap();
        let ids: Vec<String> = dead.into_iter().map(|r| r.id).collect();
        if ids.len() <= 2 || tokio::time::Instant::now() > deadline {
            break ids;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(ids, ["b", "c"], "the oldest went");
    let depth = q.depth().await.unwrap();
    assert_eq!(depth.iter().map(|(_, c)| c.dead).sum::<u64>(), 2);
    assert!(matches!(
        q.replay("a").await,
        Err(QueueError::NotFound { .. })
    ));
    assert!(q.get("a").await.unwrap().is_none());
    q.replay("b").await.unwrap();
    // Two more: c is now the oldest of three, and deleting it finds it gone.
    for id in ["d", "e"] {
        q.enqueue(job(id, "broken")).await.unwrap();
        loop {
            let leases = q.lease(&req).await.unwrap();
            let Some(lease) = leases.into_iter().next() else {
                continue;
            };
            if lease.job.id == id {
                q.dead_letter(lease, "500".into()).await.unwrap();
                break;
            }
            q.ack(lease, Outcome::Succeeded { status: 200 })
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while q
        .dead_letters(&DeadLetterQuery::first(10))
        .await
        .unwrap()
        .len()
        > 2
    {
        assert!(tokio::time::Instant::now() < deadline, "c was not dropped");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(matches!(
        q.delete_dead_letter("c").await,
        Err(QueueError::NotFound { .. })
    ));
    assert!(q.get("c").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_keeps_its_limit_of_dead_letters() {
    let (q, _dir) = embedded_with(EmbeddedOptions {
        max_dead: 2,
        prune_interval: Duration::ZERO,
        ..EmbeddedOptions::default()
    });
    the_oldest_dead_letters_go(q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_keeps_its_limit_of_dead_letters() {
    let server = NatsServer::start();
    let options = NatsOptions {
        max_dead: Some(2),
        ..test_options()
    };
    let q = connect_with(&server.url(), options).await;
    the_oldest_dead_letters_go(Arc::new(q)).await;
}
