//! A NATS dead letter outlives its job's state record (records expire after
//! `record_retention`, dead letters stay until replayed or deleted): it is still listed,
//! replayed and deleted.

use std::time::Duration;

use ironfaas_queue::{DeadLetterQuery, JobState, LeaseRequest, Outcome, Queue};

use crate::common::{NatsServer, connect_with, test_options};
use crate::suite::job;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_outlive_their_state_records() {
    let server = NatsServer::start();
    let options = ironfaas_queue::NatsOptions {
        record_retention: Duration::from_secs(2),
        ..test_options()
    };
    let q = connect_with(&server.url(), options).await;
    for id in ["old-1", "old-2"] {
        q.enqueue(job(id, "aged")).await.unwrap();
    }
    let mut leases = Vec::new();
    while leases.len() < 2 {
        let req = LeaseRequest::new(2, Duration::from_secs(30), Duration::from_secs(5));
        leases.extend(q.lease(&req).await.unwrap());
    }
    for lease in leases {
        q.dead_letter(lease, "500".into()).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert!(
        q.get("old-1").await.unwrap().is_none(),
        "the record expired"
    );
    let dead = q.dead_letters(&DeadLetterQuery::first(10)).await.unwrap();
    assert_eq!(dead.len(), 2, "still listed: {dead:?}");

    q.replay("old-1").await.unwrap();
    assert_eq!(
        q.get("old-1").await.unwrap().unwrap().state,
        JobState::Queued
    );
    let req = LeaseRequest::new(5, Duration::from_secs(30), Duration::from_secs(5));
    let lease = q
        .lease(&req)
        .await
        .unwrap()
        .pop()
        .expect("the replayed job");
    assert_eq!((lease.job.id.as_str(), lease.job.attempt), ("old-1", 1));
    assert_eq!(lease.job.body, job("old-1", "aged").body);
    q.ack(lease, Outcome::Succeeded { status: 200 })
        .await
        .unwrap();

    q.delete_dead_letter("old-2").await.unwrap();
    assert!(
        q.dead_letters(&DeadLetterQuery::first(10))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(q.replay("old-2").await.is_err(), "deleted for good");
}
