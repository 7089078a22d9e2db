//! NATS job-state records: a dead letter outlives its job's record (records expire after
//! `record_retention`, dead letters stay until replayed or deleted) and is still listed,
//! replayed and deleted; the records keep their revisions (a bucket from an earlier version,
//! which kept one, is raised) and deleting a dead letter leaves none of them behind.

use std::time::Duration;

use futures_util::TryStreamExt;

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

/// How many messages the job-state bucket's stream holds for the record of `id`.
async fn revisions(url: &str, id: &str) -> u64 {
    let js = async_nats::jetstream::new(async_nats::connect(url).await.unwrap());
    let stream = js.get_stream("KV_IRONFAAS_JOB_STATE").await.unwrap();
    let subject = format!("$KV.IRONFAAS_JOB_STATE.{id}");
    let counts: Vec<(String, usize)> = stream
        .info_with_subjects(&subject)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    counts.iter().map(|(_, n)| *n as u64).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_dead_letter_leaves_no_revision_of_its_record() {
    let server = NatsServer::start();
    // The bucket as an earlier version created it, keeping one revision per record.
    let q = connect_with(&server.url(), test_options()).await;
    let js = async_nats::jetstream::new(async_nats::connect(server.url()).await.unwrap());
    js.delete_key_value("IRONFAAS_JOB_STATE").await.unwrap();
    js.create_key_value(async_nats::jetstream::kv::Config {
        bucket: "IRONFAAS_JOB_STATE".to_string(),
        history: 1,
        ..Default::default()
    })
    .await
    .unwrap();
    drop(q);
    let q = connect_with(&server.url(), test_options()).await;
    q.enqueue(job("gone-1", "aged")).await.unwrap();
    let lease = loop {
        let req = LeaseRequest::new(1, Duration::from_secs(30), Duration::from_secs(5));
        if let Some(lease) = q.lease(&req).await.unwrap().pop() {
            break lease;
        }
    };
    q.dead_letter(lease, "500".into()).await.unwrap();
    let kept = revisions(&server.url(), "gone-1").await;
    assert!(
        kept >= 3,
        "created, leased, dead-lettered: the bucket keeps each revision, found {kept}"
    );
    q.delete_dead_letter("gone-1").await.unwrap();
    assert!(q.get("gone-1").await.unwrap().is_none());
    assert_eq!(
        revisions(&server.url(), "gone-1").await,
        1,
        "only the purge marker is left of the deleted record"
    );
}
